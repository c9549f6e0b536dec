import ast
import multiprocessing
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from gunicorn.http import errors
from prometheus_client import CollectorRegistry, generate_latest

from slipway.featureset import FeatureSpec
from slipway.monitoring import canary
from slipway.serving import app, workers
from slipway.serving.answers import REFUSAL_REASONS
from slipway.serving.app import create_app
from slipway.serving.config import ServingConfig
from slipway.serving.metrics import (
    PREDICTION_ENDPOINTS,
    PREDICTION_STATUSES,
    CountArray,
    ModelMetrics,
    PredictionCounts,
)


def _add_in_child(counts: CountArray, value: float) -> None:
    counts.add(np.full(counts.size, value))


def test_counts_of_every_process_are_summed(tmp_path):
    counts = CountArray(3, tmp_path, "demo")
    counts.add(np.array([1.0, 0.0, 2.0]))
    context = multiprocessing.get_context("fork")  # as gunicorn forks its workers
    for value in (10.0, 100.0):
        child = context.Process(target=_add_in_child, args=(counts, value))
        child.start()
        child.join()
        assert child.exitcode == 0
    assert len(list(tmp_path.glob("demo_*.counts"))) == 3  # one file per process
    (tmp_path / "demo_999999.counts").write_bytes(b"\0" * 8)  # a file still being created
    np.testing.assert_array_equal(counts.totals(), [111.0, 110.0, 112.0])


def test_prediction_counts_export_what_prometheus_client_would():
    model = SimpleNamespace(
        version="v1", classes=[0, 1], spec=FeatureSpec(numeric=["x"], categorical={}),
        metadata={"classes": [0, 1], "positive_class": 1,
                  "reference": {"x": {"kind": "numeric", "edges": [1.0], "fractions": [0.5, 0.5, 0.0]}}})
    predictions = PredictionCounts(model, None)
    proba = np.array([[0.5, 0.5], [0.9, 0.1], [0.2, 0.8]])
    predictions.observe(proba, np.array([[0.0], [3.0], [np.nan]]))
    registry = CollectorRegistry()
    registry.register(predictions)
    text = generate_latest(registry).decode()
    # a tie predicts the first class, as argmax does everywhere else
    assert 'slipway_predictions_total{class="0",model_version="v1"} 2.0' in text
    assert 'slipway_predictions_total{class="1",model_version="v1"} 1.0' in text
    # le buckets: 0.5 counts in le="0.5"; the histogram is cumulative
    assert 'slipway_prediction_score_bucket{le="0.1",model_version="v1"} 1.0' in text
    assert 'slipway_prediction_score_bucket{le="0.45",model_version="v1"} 1.0' in text
    assert 'slipway_prediction_score_bucket{le="0.5",model_version="v1"} 2.0' in text
    assert 'slipway_prediction_score_bucket{le="+Inf",model_version="v1"} 3.0' in text
    assert 'slipway_prediction_score_count{model_version="v1"} 3.0' in text
    assert 'slipway_prediction_score_sum{model_version="v1"} 1.4' in text
    assert 'slipway_feature_bin_total{bin="le_1",feature="x"} 1.0' in text
    assert 'slipway_feature_bin_total{bin="gt_1",feature="x"} 1.0' in text
    assert 'slipway_feature_bin_total{bin="missing",feature="x"} 1.0' in text


def test_an_exited_workers_samples_fold_into_the_archive_and_scrape_the_same(tmp_path):
    """Every kind prometheus_client keeps per process, folded as its collector combines them: the
    exposition is the same before and after, and only the live worker's files and the archives remain."""
    from prometheus_client.mmap_dict import MmapedDict, mmap_key
    from prometheus_client.multiprocess import MultiProcessCollector

    from slipway.serving.metrics import archive_exited_worker

    samples = {"counter": ("requests", "requests_total", [3.0, 4.0, 5.0]),
               "gauge_max": ("info", "info", [1.0, 7.0, 2.0]),
               "gauge_min": ("ready", "ready", [1.0, 0.0, 1.0]),
               "gauge_mostrecent": ("seen", "seen", [5.0, 9.0, 6.0]),
               "histogram": ("latency", "latency_bucket", [2.0, 1.0, 4.0])}
    for pid in (11, 12, 13):
        for kind, (metric, sample, values) in samples.items():
            labels = {"le": "0.5"} if kind == "histogram" else {}
            data = MmapedDict(str(tmp_path / f"{kind}_{pid}.db"))
            data.write_value(mmap_key(metric, sample, list(labels), list(labels.values()), "help"),
                             values[pid - 11], float(pid if pid != 12 else 100))
            data.close()
        np.array([pid, 1.0]).tofile(tmp_path / f"demo_{pid}.counts")  # as CountArray keeps them

    def scraped() -> list[str]:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(tmp_path))
        return sorted(generate_latest(registry).decode().splitlines())  # in the order of the files

    before, totals = scraped(), CountArray(2, tmp_path, "demo").totals()
    archive_exited_worker(tmp_path, 11)
    archive_exited_worker(tmp_path, 12)
    assert scraped() == before
    np.testing.assert_array_equal(CountArray(2, tmp_path, "demo").totals(), totals)
    assert {"seen 9.0", "ready 0.0", "info 7.0", "requests_total 12.0"} <= set(before)
    left = {path.name for path in tmp_path.iterdir() if not path.name.startswith(".")}
    assert left == {f"{kind}_{pid}.db" for kind in samples for pid in (13, "archive")} | {
        "demo_13.counts", "demo_archive.counts"}


def test_the_score_is_the_named_positive_class_probability():
    """Labels "churn" and "stay" with data.positive_class churn: the score histogram (what the
    canary analysis and the alerts read) is churn's probability, column 0."""
    model = SimpleNamespace(version="v1", classes=["churn", "stay"], spec=FeatureSpec(numeric=["x"], categorical={}),
                            metadata={"classes": ["churn", "stay"], "positive_class": "churn", "reference": {}})
    predictions = PredictionCounts(model, None)
    predictions.observe(np.array([[0.9, 0.1], [0.8, 0.2]]), np.array([[0.0], [1.0]]))
    registry = CollectorRegistry()
    registry.register(predictions)
    assert registry.get_sample_value("slipway_prediction_score_sum", {"model_version": "v1"}) == pytest.approx(1.7)


def test_every_refusal_reason_is_exported_at_zero_before_any_refusal():
    """So that increase() over the window of a reason's first refusals counts them."""
    registry = CollectorRegistry()
    ModelMetrics(registry)
    text = generate_latest(registry).decode()
    for reason in REFUSAL_REASONS:
        assert f'slipway_rejected_requests_total{{reason="{reason}"}} 0.0' in text


def test_every_reason_a_refusal_is_counted_under_is_listed():
    serving = Path(app.__file__).parent
    raised = {call.args[1].value for path in serving.glob("*.py") for call in ast.walk(ast.parse(path.read_text()))
              if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "RequestError"}
    assert {"malformed_json", "non_finite", "model_not_ready"} <= raised  # the scan finds them
    parsed = {reason for _, _, reason in workers.STATUSES.values()} | {workers.refusal(errors.InvalidHeader("X"))[2]}
    assert raised | parsed | {app.HTTP_REASONS[413]} == set(REFUSAL_REASONS)


@pytest.fixture(scope="module")
def served(bundle_dir):
    return create_app(ServingConfig(model_dir=bundle_dir))


def test_each_status_of_each_prediction_endpoint_is_exported_at_zero_before_any_request(served):
    """The error-ratio alerts and the canary analysis read these: a series born at a new server's
    first 500 would hide it from increase(), as the refusals' would (test_canary runs this
    against a real Prometheus)."""
    text = served.test_client().get("/metrics").get_data(as_text=True)
    for endpoint in PREDICTION_ENDPOINTS:
        for status in PREDICTION_STATUSES:
            assert (f'slipway_http_request_duration_seconds_count{{endpoint="{endpoint}",method="POST",'
                    f'status="{status}"}} 0.0') in text


def test_the_prediction_statuses_are_those_the_endpoints_are_documented_to_answer(served):
    document = served.test_client().get("/openapi.json").json
    documented = {int(status) for path in ("/predict", "/v2/models/{name}/infer")
                  for status in document["paths"][path]["post"]["responses"]}
    assert documented == set(PREDICTION_STATUSES)


def test_the_prediction_endpoints_are_those_the_rules_and_the_canary_analysis_select(served):
    """The series made at 0 are the ones the selectors read: each selector matches these endpoints
    and no other endpoint of the app."""
    rules = yaml.safe_load((Path(__file__).resolve().parents[1] / "k8s/monitoring/rules.yaml").read_text())
    expressions = [rule["expr"] for group in rules["groups"] for rule in group["rules"]] + [canary.PREDICTIONS]
    selectors = {m for e in expressions for m in re.findall(r'endpoint=~"((?:[^"\\]|\\.)*)"', e)}
    assert selectors, "no endpoint selector found"
    endpoints = {rule.endpoint for rule in served.url_map.iter_rules()}
    for selector in selectors:
        pattern = selector.encode().decode("unicode_escape")  # PromQL's string escapes: \\. is \.
        assert {e for e in endpoints if re.fullmatch(pattern, e)} == set(PREDICTION_ENDPOINTS), selector
