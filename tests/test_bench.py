"""The benchmark's floor apps still answer, so ``bench/serve.sh --floor-steps`` does not rot."""

import json
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


def test_the_in_process_benchmark_times_every_app_answering_200(bundle_dir):
    import inprocess
    from serving import payloads

    from slipway import bundle

    body = json.dumps(payloads(bundle.load(bundle_dir), 1)[0]).encode()
    served = inprocess.apps(bundle_dir)
    assert list(served) == ["floor", "+json", "+metrics", "+onnx", "slipway"]
    for app in served.values():
        assert inprocess.call(app, body) == "200 OK"
        assert inprocess.per_request_us(app, body, 3) > 0


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
