"""The monitoring loop on one machine, as the README tries it: `slipway example-traffic` against a real
gunicorn with the prediction log on, then `slipway drift` and `slipway performance` on what it logged."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from slipway.bundle import load_metadata
from tests.conftest import make_churn
from tests.integration.servers import gunicorn

SLIPWAY = str(Path(sys.executable).parent / "slipway")
REPO = Path(__file__).resolve().parents[2]


def slipway(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([SLIPWAY, *args], capture_output=True, text=True, cwd=REPO)


@pytest.mark.parametrize("drift", [0.0, 1.0])
def test_example_traffic_feeds_the_drift_and_performance_jobs(drift, bundle_dir, tmp_path):
    log, labels, reports = tmp_path / "predictions", tmp_path / "labels.csv", tmp_path / "reports"
    started = time.time()
    with gunicorn(bundle_dir, tmp_path / "server", SLIPWAY_PREDICTION_LOG=str(log / "server.jsonl"),
                  SLIPWAY_PREDICTION_LOG_RATE="1") as (url, _):
        result = slipway("example-traffic", "--url", url, "--month", "2025-09", "--rows", "600",
                         "--drift", str(drift), "--labels", str(labels))
    assert result.returncode == 0, result.stderr
    assert f"600 customers of 2025-09 (drift {drift:g}) scored by {url}; their outcomes in {labels}" in result.stdout
    outcomes = pd.read_csv(labels)
    assert list(outcomes.columns) == ["customer_id", "event_timestamp", "churned"] and len(outcomes) == 600
    asked = pd.to_datetime(outcomes["event_timestamp"]).astype("int64") / 1e9
    assert asked.between(started, time.time()).all()  # when each prediction was asked for
    lines = [json.loads(line) for line in (log / "server.jsonl").open()]
    assert sorted(line["id"]["customer_id"] for line in lines) == sorted(outcomes["customer_id"])

    reference = tmp_path / "train.parquet"
    make_churn(months=3, rows=600).to_parquet(reference)
    result = slipway("drift", "--predictions", str(log), "--reference", str(reference),
                     "--model-dir", str(bundle_dir), "--out-dir", str(reports))
    assert result.returncode == (1 if drift else 0), result.stdout + result.stderr

    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"model_version": load_metadata(bundle_dir)["model_version"], "roc_auc": 0.5}))
    result = slipway("performance", "--predictions", str(log), "--labels", str(labels), "--model-dir",
                     str(bundle_dir), "--metrics", str(metrics), "--out-dir", str(reports))
    assert result.returncode == (1 if drift else 0), result.stdout + result.stderr
    report = json.loads((reports / "performance.json").read_text())
    assert report["rows"]["joined"] == 600 and report["max_gap_hours"] == 24
    if drift:  # the shifted rule: customers still ranked, but many given the wrong class
        assert "under the gate's floor 0.7 (gate.min_accuracy)" in report["reason"]
    else:
        assert report["served"]["roc_auc"] > 0.7  # the model learnt the example's rule, and the outcomes are its


def test_a_refused_request_stops_the_traffic_and_writes_no_labels(bundle_dir, tmp_path):
    labels = tmp_path / "labels.csv"
    with gunicorn(bundle_dir, tmp_path / "server", SLIPWAY_MAX_BATCH="50") as (url, _):
        result = slipway("example-traffic", "--url", url, "--rows", "120", "--labels", str(labels))
    assert result.returncode == 2
    assert f"{url}/predict answered 400 to instances 0-99: " in result.stderr and "batch_too_large" in result.stderr
    assert not labels.exists()
    result = slipway("example-traffic", "--url", url, "--rows", "10", "--labels", str(labels))
    assert result.returncode == 2 and f"no answer from {url} (" in result.stderr
    assert "is the server running (make serve)?" in result.stderr
    result = slipway("example-traffic", "--url", url, "--month", "2025-13", "--labels", str(labels))
    assert result.returncode == 2 and "--month must be a month as YYYY-MM, got '2025-13'" in result.stderr
