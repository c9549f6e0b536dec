"""The benchmarks' floor apps still answer and their requests are the model's own rows, so
``bench/serve.sh`` and ``bench/inprocess.py`` do not rot, whatever model a team serves."""

import json
import re
import sys
from pathlib import Path

import pytest

from slipway.serving import metrics

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import floor_app  # noqa: E402 (bench/ is not a package)


def test_floor_answers_the_constant():
    response = floor_app.app.test_client().post("/predict", json={"instances": [{}]})
    assert response.status_code == 200
    assert response.get_json() == floor_app.ANSWER


def test_each_step_still_answers_the_constant(bundle_dir, monkeypatch):
    monkeypatch.setenv("SLIPWAY_MODEL_DIR", str(bundle_dir))
    for n in range(1, len(floor_app.STEPS) + 1):
        client = floor_app.steps(n).test_client()
        response = client.post("/predict", json={"instances": [{}]})
        assert response.status_code == 200, floor_app.STEPS[n - 1]
        assert response.get_json() == floor_app.ANSWER


def test_the_json_step_parses_the_body():
    app = floor_app.steps(1)
    app.testing = True
    with pytest.raises(json.JSONDecodeError):
        app.test_client().post("/predict", data=b"{not json", content_type="application/json")


def test_the_metrics_step_counts_requests(monkeypatch):
    registry = metrics.RecordingRegistry()
    monkeypatch.setattr(metrics, "RecordingRegistry", lambda: registry)
    client = floor_app.steps(2).test_client()
    for _ in range(3):
        client.post("/predict", json={"instances": [{}]})
    labels = {"method": "POST", "status": "200", "endpoint": "predict"}
    assert registry.get_sample_value("slipway_http_request_duration_seconds_count", labels) == 3


@pytest.fixture
def test_split(tmp_path, repo_params) -> Path:
    """The example's test split, as ingest writes it: the rows the benchmarks send."""
    from slipway.pipeline import ingest
    from tests.conftest import make_churn

    path = tmp_path / "test.parquet"
    ingest.split(make_churn(), repo_params)[1].to_parquet(path)
    return path


def test_the_in_process_benchmark_times_every_app_answering_200(bundle_dir, test_split):
    import inprocess
    from serving import payloads

    from slipway import bundle

    body = json.dumps(payloads(bundle.load(bundle_dir), 1, test_split)[0]).encode()
    served = inprocess.apps(bundle_dir)
    assert list(served) == ["floor", "+json", "+metrics", "+onnx", "slipway"]
    for app in served.values():
        assert inprocess.call(app, body) == "200 OK"
        assert inprocess.per_request_us(app, body, 3) > 0


def test_a_model_served_through_scikit_learn_is_benchmarked_with_its_own_call(tmp_path, params, test_split,
                                                                             gradient_boosting):
    """A team's gradient boosting has no ONNX graph: its model step is one scikit-learn call, and says so."""
    import inprocess
    from serving import payloads

    from slipway import bundle
    from tests.conftest import build_bundle

    params["train"].update(estimator=gradient_boosting, hyperparameters={"n_estimators": 10})
    model_dir = build_bundle(tmp_path / "boosting", params)
    body = json.dumps(payloads(bundle.load(model_dir), 1, test_split)[0]).encode()
    served = inprocess.apps(model_dir)
    assert list(served) == ["floor", "+json", "+metrics", "+sklearn", "slipway"]
    for app in served.values():
        assert inprocess.call(app, body) == "200 OK"


def test_a_time_the_model_reads_is_sent_as_iso_text(tmp_path, params, test_split, monkeypatch):
    """The test split holds the time column as dates, which JSON has not: a client sends ISO 8601 text,
    and MLServer gets the model's columns, the hour among them."""
    import inprocess
    import pandas as pd
    from serving import payloads

    from slipway import bundle
    from slipway.model.features import DERIVED_FEATURES, DerivedFeature
    from tests.conftest import build_bundle

    monkeypatch.setitem(DERIVED_FEATURES, "event_hour", DerivedFeature(
        ("event_timestamp",), lambda cols: (cols["event_timestamp"] // 3600) % 24, "hour of the event"))
    params["featurize"]["derived"] = ["event_hour"]
    model_dir = build_bundle(tmp_path / "timed", params)
    ours, peer = payloads(bundle.load(model_dir), 5, test_split)
    sent = [pd.Timestamp(row["event_timestamp"]) for row in ours["instances"]]
    hours = next(t["data"] for t in peer["inputs"] if t["name"] == "event_hour")
    assert hours == [float(t.hour) for t in sent]
    body = json.dumps({"instances": ours["instances"][:1]}).encode()
    assert inprocess.call(inprocess.apps(model_dir)["slipway"], body) == "200 OK"


def test_the_requests_are_rows_of_the_models_own_data(bundle_dir, test_split):
    """Rows of the test split, the model's inputs only, sent as a client would (a missing value as
    null); MLServer is sent the same rows as the model's input columns."""
    import pandas as pd
    from serving import payloads

    from slipway import bundle
    from slipway.featureset import FeatureSpec

    model = bundle.load(bundle_dir)
    spec = FeatureSpec.from_dict(model.metadata["features"])
    ours, peer = payloads(model, 200, test_split)
    rows = pd.read_parquet(test_split)[spec.inputs]
    assert len(ours["instances"]) == 200 and all(list(row) == spec.inputs for row in ours["instances"])
    json.dumps(ours, allow_nan=False)  # a missing value is null, as JSON has no NaN
    sent = pd.DataFrame(ours["instances"])
    assert sent.merge(rows.drop_duplicates(), how="left", indicator=True)["_merge"].eq("both").all()
    assert [t["name"] for t in peer["inputs"]] == spec.columns
    assert all(t["shape"] == [200] for t in peer["inputs"])


def test_without_rows_to_send_the_benchmark_says_what_to_run(bundle_dir, tmp_path):
    import pandas as pd
    from serving import payloads

    from slipway import bundle

    model = bundle.load(bundle_dir)
    with pytest.raises(SystemExit, match=r"no rows to send: .*missing.parquet is not a file; run `make pipeline`"):
        payloads(model, 1, tmp_path / "missing.parquet")
    other = tmp_path / "other.csv"
    pd.DataFrame({"amount": [1.0], "tenure_months": [3]}).to_csv(other, index=False)
    with pytest.raises(SystemExit, match=r"other.csv lacks the model's inputs \['monthly_charges', "):
        payloads(model, 1, other)


def test_the_probabilities_are_compared_class_by_class():
    from serving import check_same_probabilities

    ours = [{"label": "fraud", "probabilities": {"fraud": 0.9, "ok": 0.1}},
            {"label": "ok", "probabilities": {"fraud": 0.2, "ok": 0.8}}]
    check_same_probabilities(["fraud", "ok"], ours, [0.9, 0.1, 0.2, 0.8])
    with pytest.raises(AssertionError):
        check_same_probabilities(["fraud", "ok"], ours, [0.1, 0.9, 0.8, 0.2])


def test_the_pipeline_benchmark_copies_everything_the_stages_read(tmp_path):
    """Its scratch project holds every file a stage depends on that no stage writes: without one,
    `make bench` stops at that stage."""
    import functools
    import os
    import re

    import pipeline
    import yaml

    root = tmp_path / "repo"
    root.mkdir()
    env = {**os.environ, "PATH": f"{pipeline.BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
    pipeline.scratch_project(root, 600, env)
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"].values()
    written = {name for stage in stages for kind in ("outs", "metrics", "plots")
               for entry in stage.get(kind, []) for name in ([entry] if isinstance(entry, str) else entry)}
    params = yaml.safe_load((root / "params.yaml").read_text())

    def resolved(dep: str) -> str:  # dvc.yaml's ${data.source}
        return re.sub(r"\$\{([^}]+)\}", lambda m: str(functools.reduce(dict.get, m[1].split("."), params)), dep)

    read = {resolved(dep) for stage in stages for dep in stage.get("deps", [])}
    assert sorted(dep for dep in read - written if not (root / dep).exists()) == []


def test_the_pipeline_benchmark_runs_on_the_example_and_says_so_after_adoption(repo_params, params):
    """Its scratch project generates churn data and its plain script fits HistGradientBoosting."""
    import pipeline

    assert pipeline.adopted_settings(repo_params) == []
    params["data"].update(source="data/own", target="label")
    params["train"]["estimator"] = "random_forest"
    assert pipeline.adopted_settings(params) == [
        "data.source is 'data/own', not 'data/raw'", "data.target is 'label', not 'churned'",
        "train.estimator is 'random_forest', not 'hist_gradient_boosting'"]


def test_a_refused_request_stops_the_benchmark_with_the_servers_answer():
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from serving import post

    class Refusing(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            self.rfile.read(int(self.headers["Content-Length"]))
            body = b'{"error": {"reason": "unknown_feature"}}'
            self.send_response(422)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/predict"
        with pytest.raises(SystemExit, match=re.escape(f'{url} answered the benchmark\'s request 422: '
                                                       '{"error": {"reason": "unknown_feature"}}')):
            post(url, {"instances": [{}]})
    finally:
        server.shutdown()
        server.server_close()
