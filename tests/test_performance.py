"""slipway performance: the server's prediction log joined with labels known later."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from slipway.bundle import load_metadata
from slipway.errors import DataError, ParamsError
from slipway.model import example_traffic
from slipway.monitoring import performance
from slipway.serving.app import create_app
from slipway.serving.config import ServingConfig

SLIPWAY = str(Path(sys.executable).parent / "slipway")
REPO = Path(__file__).resolve().parents[1]
META = {"model_version": "m2", "classes": [0, 1], "positive_class": 1, "features": {"id_column": "customer_id"}}


@pytest.fixture(scope="module")
def served(bundle_dir, tmp_path_factory):
    """300 customers scored by the real server, with their ids; the log it wrote; their outcomes."""
    folder = tmp_path_factory.mktemp("served")
    instances, ids, churned = example_traffic.customers("2025-09", 300, seed=5, drift=0.0)
    customers = pd.DataFrame({"customer_id": ids, "churned": churned})
    client = create_app(ServingConfig(model_dir=bundle_dir, prediction_log=folder / "log" / "predictions.jsonl",
                                      prediction_log_rate=1.0)).test_client()
    probabilities = []
    for start in range(0, len(instances), 100):
        response = client.post("/predict", json={"instances": instances[start:start + 100]})
        assert response.status_code == 200
        probabilities += [p["probabilities"]["1"] for p in response.json["predictions"]]
    return folder, customers, np.array(probabilities)


def run(folder: Path, bundle_dir: Path, labels: Path, test_metrics: dict) -> subprocess.CompletedProcess:
    metrics = folder / "metrics.json"
    metrics.write_text(json.dumps(test_metrics))
    return subprocess.run([SLIPWAY, "performance", "--predictions", str(folder / "log"), "--labels", str(labels),
                           "--model-dir", str(bundle_dir), "--metrics", str(metrics),
                           "--out-dir", str(folder / "reports")], capture_output=True, text=True, cwd=REPO)


def test_labels_joined_to_the_served_predictions_score_the_model_as_it_serves(served, bundle_dir):
    folder, customers, probabilities = served
    version = load_metadata(bundle_dir)["model_version"]
    labels = folder / "labels.csv"
    customers[["customer_id", "churned"]].to_csv(labels, index=False)
    expected = roc_auc_score(customers["churned"], probabilities)
    result = run(folder, bundle_dir, labels, {"model_version": version, "roc_auc": expected + 0.04})
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((folder / "reports" / "performance.json").read_text())
    assert report["verdict"] == "pass" and report["rows"]["joined"] == 300
    assert report["served"]["roc_auc"] == pytest.approx(expected, abs=1e-12)
    assert "Served performance: PASS" in result.stdout

    result = run(folder, bundle_dir, labels, {"model_version": version, "roc_auc": expected + 0.06})
    assert result.returncode == 1
    report = json.loads((folder / "reports" / "performance.json").read_text())
    assert report["verdict"] == "fail" and report["drop"] == pytest.approx(0.06)
    assert "worse, more than 0.05 (performance.max_drop)" in report["reason"]
    assert (folder / "reports" / "performance.md").read_text() in result.stdout


def test_labels_with_their_event_time_join_the_prediction_logged_nearest_it(served, bundle_dir):
    """As a team whose scoring job stamps each request with the snapshot time: the outcome's time is a
    minute before the prediction was logged. 25 hours off, none is joined (performance.max_gap_hours 24)."""
    folder, customers, probabilities = served
    version = load_metadata(bundle_dir)["model_version"]
    lines = [json.loads(line) for path in sorted((folder / "log").glob("*.jsonl")) for line in path.open()]
    logged_at = {line["id"]["customer_id"]: line["ts"] for line in lines}
    outcomes = customers[["customer_id", "churned"]].copy()
    for offset, joined in ((-60, 300), (-25 * 3600, 0)):
        seconds = outcomes["customer_id"].map(logged_at) + offset
        outcomes["event_timestamp"] = pd.to_datetime(seconds, unit="s", utc=True).dt.strftime("%Y-%m-%dT%H:%M:%S%z")
        labels = folder / "timed.csv"
        outcomes.to_csv(labels, index=False)
        result = run(folder, bundle_dir, labels, {"model_version": version, "roc_auc": 0.75})
        report = json.loads((folder / "reports" / "performance.json").read_text())
        assert report["rows"]["joined"] == joined and report["max_gap_hours"] == 24, result.stdout + result.stderr
    assert result.returncode == 3 and "prediction logged nearest their time (at most 24 h away)" in result.stdout
    outcomes.loc[0, "event_timestamp"] = "not a date"
    outcomes.to_csv(labels, index=False)
    result = run(folder, bundle_dir, labels, {"model_version": version, "roc_auc": 0.75})
    assert result.returncode == 2
    assert f"{labels}: column 'event_timestamp', rule timestamp: 1 values are not dates" in result.stderr


def test_outcomes_unlike_the_test_set_fail_and_a_bad_labels_file_is_an_error(served, bundle_dir):
    folder, customers, probabilities = served
    version = load_metadata(bundle_dir)["model_version"]
    flipped = folder / "flipped.parquet"
    customers[["customer_id"]].assign(churned=1 - customers["churned"]).to_parquet(flipped)
    result = run(folder, bundle_dir, flipped, {"model_version": version, "roc_auc": 0.75})
    assert result.returncode == 1, result.stdout + result.stderr
    written = (folder / "reports" / "performance.json").read_text()

    unnamed = folder / "unnamed.csv"
    customers[["churned"]].to_csv(unnamed, index=False)
    result = run(folder, bundle_dir, unnamed, {"model_version": version, "roc_auc": 0.75})
    assert result.returncode == 2
    assert "the labels lack column(s) ['customer_id'] (the model's id column and target)" in result.stderr
    assert (folder / "reports" / "performance.json").read_text() == written  # the last report is kept


def predictions(*rows) -> pd.DataFrame:
    return pd.DataFrame([dict(zip(performance.LOGGED, row, strict=True)) for row in rows], dtype=object)


def labels(**outcomes) -> pd.DataFrame:
    return pd.DataFrame({"id": list(outcomes), "label": list(outcomes.values())})


GATE = {"primary_metric": "roc_auc", "min_roc_auc": 0.0, "min_accuracy": 0.0, "min_f1": 0.0}
PARAMS = {"gate": GATE, "performance": {"max_drop": 0.05, "min_rows": 2, "window_hours": None}}


def test_each_label_joins_the_latest_prediction_of_the_served_model():
    logged = predictions(("customer_id", "a", 1.0, "m2", [0.9, 0.1]), ("customer_id", "a", 2.0, "m2", [0.2, 0.8]),
                         ("customer_id", "b", 1.0, "m2", [0.7, 0.3]), ("customer_id", "b", 3.0, "m1", [0.1, 0.9]),
                         ("customer_id", "c", 1.0, "m2", [0.5, 0.5]))
    truth, proba, counts = performance.join(logged, labels(a=1, b=0), META)
    assert truth.tolist() == [0, 1] and proba.tolist() == [[0.7, 0.3], [0.2, 0.8]]  # by time: b's, then a's latest
    assert counts["joined"] == 2 and counts["other_versions"] == {"m1": 1}
    report = performance.analyse(logged, labels(a=1, b=0), META, {"model_version": "m2", "roc_auc": 0.9}, PARAMS)
    assert report["verdict"] == "pass" and report["served"]["roc_auc"] == 1.0


def test_the_gates_primary_metric_decides():
    """Ranked right (ROC AUC 1), but the churner's score under 0.5 too: accuracy 0.5."""
    logged = predictions(("customer_id", "a", 1.0, "m2", [0.6, 0.4]), ("customer_id", "b", 1.0, "m2", [0.9, 0.1]))
    tests = {"roc_auc": 0.9, "accuracy": 0.8}
    assert performance.analyse(logged, labels(a=1, b=0), META, tests, PARAMS)["verdict"] == "pass"
    params = {**PARAMS, "gate": {**GATE, "primary_metric": "accuracy"}}
    report = performance.analyse(logged, labels(a=1, b=0), META, tests, params)
    assert report["verdict"] == "fail" and report["drop"] == pytest.approx(0.3)
    with pytest.raises(ParamsError, match="gate.primary_metric must be one of roc_auc, accuracy, f1, got 'log_loss'"):
        performance.analyse(logged, labels(a=1, b=0), META, tests, {**PARAMS, "gate": {**GATE, "primary_metric":
                                                                                          "log_loss"}})


def test_a_metric_under_the_gates_floor_fails_as_the_gate_would_refuse_the_model():
    """Ranked right (ROC AUC 1, no drop), but half the customers get the wrong class: accuracy 0.5."""
    logged = predictions(("customer_id", "a", 1.0, "m2", [0.6, 0.4]), ("customer_id", "b", 1.0, "m2", [0.9, 0.1]))
    params = {**PARAMS, "gate": {**GATE, "min_accuracy": 0.7}}
    report = performance.analyse(logged, labels(a=1, b=0), META, {"roc_auc": 0.95, "accuracy": 0.8}, params)
    assert report["verdict"] == "fail" and report["floors"] == {"roc_auc": 0.0, "accuracy": 0.7, "f1": 0.0}
    assert report["reason"] == ("accuracy 0.5000 on 2 labelled predictions, under the gate's floor 0.7 "
                                "(gate.min_accuracy)")
    assert "| accuracy | 0.8000 | 0.5000 | 0.7 |" in performance.markdown(report)
    params["gate"]["min_roc_auc"] = 1.0  # as good as it gets: at the floor is not under it
    assert performance.analyse(logged, labels(a=1, b=0), META, {"roc_auc": 0.95}, params)["reason"].count(";") == 0
    report = performance.analyse(logged, labels(a=1, b=0), META, {"roc_auc": 1.2}, params)
    assert report["reason"].startswith("roc_auc 1.0000 on 2 labelled predictions against 1.2000 on the test set")
    assert report["reason"].endswith("; accuracy 0.5000 on 2 labelled predictions, under the gate's floor 0.7 "
                                     "(gate.min_accuracy)")
    params["gate"]["min_f1"] = 0.05  # the customer who left was not labelled so: F1 0
    assert performance.analyse(logged, labels(a=1, b=0), META, {"roc_auc": 0.95}, params)["reason"].endswith(
        "; f1 0.0000 on 2 labelled predictions, under the gate's floor 0.05 (gate.min_f1)")


def test_too_few_labelled_predictions_are_inconclusive():
    logged = predictions(("customer_id", "a", 1.0, "m2", [0.4, 0.6]), ("customer_id", "b", 1.0, "m1", [0.6, 0.4]))
    report = performance.analyse(logged, labels(a=1, b=0), META, {"roc_auc": 0.8}, PARAMS)
    assert report["verdict"] == "inconclusive"
    assert "1 labelled predictions of model m2, fewer than 2" in report["reason"]
    assert "Not scored, other models' rows: m1 1." in performance.markdown(report)


def test_the_summary_counts_the_label_rows_left_out():
    logged = predictions(("customer_id", "a", 1.0, "m2", [0.4, 0.6]), ("customer_id", "b", 1.0, "m2", [0.6, 0.4]))
    outcomes = labels(a=1, b=0)
    assert "Left out" not in performance.markdown(performance.analyse(logged, outcomes, META, {}, PARAMS))
    outcomes.attrs["unlabelled"] = 3
    summary = performance.markdown(performance.analyse(logged, outcomes, META, {}, PARAMS))
    assert "Left out, 3 label row(s) without an id or a label." in summary  # no time column to lack
    timed = outcomes.assign(time=[1.0, 1.0])
    params = {**PARAMS, "performance": {**PARAMS["performance"], "max_gap_hours": 24}}
    summary = performance.markdown(performance.analyse(logged, timed, META, {}, params))
    assert "Left out, 3 label row(s) without an id, a label or a time." in summary


@pytest.mark.parametrize(("logged", "outcomes", "message"), [
    (predictions(("customer_id", "a", 1.0, "m2", [0.4, 0.6])), labels(a="yes"),
     "labels ['yes'] are not classes of the model (['0', '1'])"),
    (predictions(("customer_id", "a", 1.0, "m2", [1.0])), labels(a=1),
     "1 logged prediction(s) of model m2 do not hold 2 probabilities, e.g. [1.0]"),
], ids=["label-not-a-class", "probabilities"])
def test_what_cannot_be_joined_is_named(logged, outcomes, message):
    with pytest.raises(DataError, match="^" + re.escape(message)):
        performance.join(logged, outcomes, META)


def test_only_the_labelled_ids_predictions_are_read_and_another_models_log_is_refused(tmp_path):
    def line(ts, **ids):
        return json.dumps({"ts": ts, "inputs": {}, "model_version": "m2", "probabilities": [0.5, 0.5],
                           **({"id": ids} if ids else {})}) + "\n"

    log = tmp_path / "log"
    log.mkdir()
    (log / "a.jsonl").write_text(line(1.0, customer_id="a") + line(2.0) + line(3.0, customer_id="z")
                                 + line(4.0, customer_id=7) + line(100.0, customer_id="a"))
    read = performance.read_predictions(str(log), PARAMS, 200.0, "customer_id", {"a", "7"})
    assert read["id"].tolist() == ["a", "7", "a"] and read["ts"].tolist() == [1.0, 4.0, 100.0]
    last_hour = {**PARAMS, "performance": {**PARAMS["performance"], "window_hours": 1.0}}
    recent = performance.read_predictions(str(log), last_hour, 3600.0 + 50, "customer_id", {"a", "7"})
    assert recent["ts"].tolist() == [100.0]
    assert read.attrs["unlabelled_ids"] == ["z"]
    nothing = performance.read_predictions(str(log), PARAMS, 200.0, "customer_id", {"A", "07"})
    assert list(nothing.columns) == list(performance.LOGGED)  # none kept: still the columns join reads
    assert nothing.attrs["unlabelled_ids"] == ["a", "z", "7"]  # how the log writes its ids, once each
    report = performance.analyse(nothing, labels(A=1, **{"07": 0}), META, {}, PARAMS)
    assert report["verdict"] == "inconclusive" and report["reason"] == (
        "0 labelled predictions of model m2, fewer than 2 (performance.min_rows); no logged id has a label: the "
        "log has ids such as ['a', 'z', '7'], the labels ['A', '07'] (written alike? leading zeros, case, spaces)")
    (log / "a.jsonl").write_text(line(1.0, account="a"))
    with pytest.raises(DataError, match=re.escape("the prediction log's ids are ['account'], not the model's id "
                                                  "column 'customer_id': is it another model's log?")):
        performance.read_predictions(str(log), PARAMS, 200.0, "customer_id", {"a"})
    with pytest.raises(DataError, match=re.escape("model m2 has no id column (data.id_column is null, or a derived "
                                                  "feature reads it as an input)")):
        performance.id_column({**META, "features": {}})


def test_a_model_that_reads_the_time_joins_each_label_by_the_time_its_request_sent(tmp_path):
    """A replay, or a day of events scored at once: logged days after the events, each prediction joins
    by the event time its request sent (text or epoch time, as the server read it), where it sent one."""
    day, first = 86_400.0, 1_735_689_600.0  # 2025-01-01
    sent = {"a": "2025-01-01T00:00:00Z", "b": (first + day) * 1000, "c": None}
    log = tmp_path / "log"
    log.mkdir()
    (log / "a.jsonl").write_text("".join(json.dumps({
        "ts": first + 9 * day, "inputs": {"t": when}, "id": {"customer_id": name}, "model_version": "m2",
        "probabilities": [0.7, 0.3]}) + "\n" for name, when in sent.items()))
    outcomes = pd.DataFrame({"id": ["a", "b", "c"], "label": [0, 1, 1],
                             "time": [first + 60, first + day - 60, first + 9 * day]})
    params = {**PARAMS, "performance": {**PARAMS["performance"], "max_gap_hours": 1, "min_rows": 2}}
    now = first + 10 * day
    by_event = performance.read_predictions(str(log), params, now, "customer_id", {"a", "b", "c"}, "t")
    assert by_event["ts"].tolist() == [first, first + day, first + 9 * day]  # c sent none: when it was logged
    report = performance.analyse(by_event, outcomes, META, {}, params)
    assert report["rows"]["joined"] == 3 and report["event_time"] == "t"
    assert "labels joined to its prediction whose request's 't' is nearest their time" in performance.markdown(report)
    by_logging = performance.read_predictions(str(log), params, now, "customer_id", {"a", "b", "c"})
    report = performance.analyse(by_logging, outcomes, META, {}, params)
    assert report["rows"]["joined"] == 1 and "those predictions were logged 2025-01-10 00:00" in report["reason"]
    report = performance.analyse(by_event, outcomes.assign(time=[first + 50 * day] * 3), META, {}, params)
    assert "those predictions were asked for events of (their 't') 2025-01-01 00:00 to" in report["reason"]
    # A model trained on times written '%d/%m/%Y' (data.timestamp_format) was sent them so, and read them
    (log / "a.jsonl").write_text(json.dumps({"ts": first + 9 * day, "inputs": {"t": "02/01/2025"},
                                             "id": {"customer_id": "b"}, "probabilities": [0.7, 0.3]}) + "\n")
    assert performance.read_predictions(str(log), params, now, "customer_id", {"b"}, "t")["ts"].tolist() == \
        [first + 9 * day]  # no time without the format: when it was logged
    assert performance.read_predictions(str(log), params, now, "customer_id", {"b"}, "t", "%d/%m/%Y")["ts"].tolist() \
        == [first + day]


def test_labels_are_read_one_per_id(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("customer_id,churned,other\n007,1,x\n8,0,y\n007,1,z\n,1,w\n9,,v\n")
    read = performance.read_labels(str(path), "customer_id", "churned")
    assert read["id"].tolist() == ["007", "8"] and read.attrs["unlabelled"] == 2  # ids as text: 007 is not 7
    # 9's outcome is pending, so the column reads as floats: 1.0 is still the class 1.
    logged = predictions(("customer_id", "007", 1.0, "m2", [0.2, 0.8]), ("customer_id", "8", 1.0, "m2", [0.6, 0.4]))
    assert performance.join(logged, read, META)[0].tolist() == [1, 0]
    path.write_text("customer_id,churned\n7,1\n7,0\n")
    with pytest.raises(DataError, match=r"1 id\(s\) have two different labels, e\.g\. \['7'\]"):
        performance.read_labels(str(path), "customer_id", "churned")
    with pytest.raises(DataError, match="labels must be a .csv or .parquet file"):
        performance.read_labels(str(tmp_path / "labels.xlsx"), "customer_id", "churned")
    with pytest.raises(DataError, match="the labels cannot be read"):
        performance.read_labels(str(tmp_path / "absent.csv"), "customer_id", "churned")


def test_a_label_with_a_time_joins_its_ids_prediction_logged_nearest_it():
    logged = predictions(("customer_id", "a", 1000.0, "m2", [0.8, 0.2]),
                         ("customer_id", "a", 50_000.0, "m2", [0.5, 0.5]),
                         ("customer_id", "a", 99_990.0, "m2", [0.3, 0.7]),
                         ("customer_id", "a", 100_001.0, "m1", [1, 0]),
                         ("customer_id", "b", 5000.0 + 25 * 3600, "m2", [0.1, 0.9]),
                         ("customer_id", "c", 400.0, "m2", [0.6, 0.4]), ("customer_id", "c", 600.0, "m2", [0.9, 0.1]))
    outcomes = pd.DataFrame({"id": ["a", "a", "b", "c"], "label": [0, 1, 1, 0],
                             "time": [1060.0, 100_000.0, 5000.0, 500.0]})
    truth, proba, counts = performance.join(logged, outcomes, META, 24)
    # c: 100 s before and after, the earlier; a: each outcome its own (not m1's, nearer); b: 25 h off, none
    assert truth.tolist() == [0, 0, 1] and proba.tolist() == [[0.6, 0.4], [0.8, 0.2], [0.3, 0.7]]
    assert counts["joined"] == 3 and counts["labels"] == 4 and counts["other_versions"] == {"m1": 1}
    params = {**PARAMS, "performance": {**PARAMS["performance"], "max_gap_hours": 24}}
    report = performance.analyse(logged, outcomes, META, {"model_version": "m2", "roc_auc": 0.9}, params)
    assert report["max_gap_hours"] == 24 and report["verdict"] == "pass"
    with pytest.raises(ParamsError, match="performance.max_gap_hours is required"):
        performance.analyse(logged, outcomes, META, {"roc_auc": 0.9}, PARAMS)
    assert performance.analyse(logged, labels(a=1, c=0), META, {"roc_auc": 0.9}, PARAMS)["max_gap_hours"] is None


def test_no_prediction_joins_two_outcomes():
    """a's outcomes at 0 h and 10 h are both nearest the prediction at 6 h: the 10 h one keeps it (4 h off,
    not 6) and the other takes the one at -7 h, the next nearest; b's two outcomes as near one prediction:
    the earlier keeps it, the later has no other within 24 h and is left out."""
    h = 3600.0
    logged = predictions(("customer_id", "a", -7 * h, "m2", [0.9, 0.1]), ("customer_id", "a", 6 * h, "m2", [0.2, 0.8]),
                         ("customer_id", "b", 5 * h, "m2", [0.4, 0.6]))
    outcomes = pd.DataFrame({"id": ["a", "a", "b", "b"], "label": [0, 1, 1, 0], "time": [0, 10 * h, 3 * h, 7 * h]})
    truth, proba, counts = performance.join(logged, outcomes, META, 24)
    assert truth.tolist() == [0, 1, 1] and proba.tolist() == [[0.9, 0.1], [0.4, 0.6], [0.2, 0.8]]  # by time
    assert counts["joined"] == 3 and counts["labels"] == 4
    truth, proba, counts = performance.join(logged, outcomes, META, 6.5)  # a's 0 h outcome: -7 h is too far
    assert truth.tolist() == [1, 1] and counts["joined"] == 2
    none = performance.join(logged, outcomes.assign(time=100 * h), META, 24)
    assert none[0].tolist() == [] and none[1].shape == (0, 2) and none[2]["joined"] == 0


def test_labels_with_a_time_may_give_an_id_one_outcome_per_event(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("customer_id,churned,event_timestamp\n7,0,2025-09-01T00:00:00Z\n7,1,2025-10-01T00:00:00+02:00\n"
                    "7,1,2025-10-01T00:00:00+02:00\n8,1,\n")
    read = performance.read_labels(str(path), "customer_id", "churned", "event_timestamp")
    assert read["id"].tolist() == ["7", "7"] and read.attrs["unlabelled"] == 1  # no time: no event to join
    assert read["time"].tolist() == [1756684800.0, 1759269600.0]  # UTC, as ingest reads the training data's
    path.write_text("customer_id,churned,event_timestamp\n7,0,2025-09-01\n7,1,2025-09-01\n")
    with pytest.raises(DataError, match=re.escape("1 id(s) have two different labels at one time (event_timestamp), "
                                                  "e.g. ['7']")):
        performance.read_labels(str(path), "customer_id", "churned", "event_timestamp")
    with pytest.raises(DataError, match=re.escape("e.g. ['7']: one outcome per id is joined to its latest prediction "
                                                  "(give each its time, when, to join")):
        performance.read_labels(str(path), "customer_id", "churned", "when")


def test_test_metrics_of_another_model_are_refused():
    with pytest.raises(DataError, match="the test metrics are model m1's, not m2's"):
        performance.analyse(predictions(), labels(a=1), META, {"model_version": "m1"}, PARAMS)


def test_lines_without_an_id_are_left_out():
    assert performance.logged_prediction({"ts": 1.0, "inputs": {}}) is None
    assert performance.logged_prediction({"ts": 1.0, "inputs": {}, "id": {"customer_id": None}}) is None
    line = {"ts": 1.0, "inputs": {}, "id": {"customer_id": 7}, "model_version": "m2", "probabilities": [0.5, 0.5]}
    assert performance.logged_prediction(line) == {"id_column": "customer_id", "id": "7", "ts": 1.0,
                                                   "model_version": "m2", "probabilities": [0.5, 0.5]}


def test_labels_timed_far_from_their_predictions_say_when_each_is():
    """Label times of the outcome (a month after), not of the event scored: none joins, and the reason
    shows both spans, this model's predictions only."""
    day = 86_400.0
    logged = predictions(("customer_id", "a", 1000.0, "m2", [0.8, 0.2]), ("customer_id", "b", 2000.0, "m2", [0.1, 0.9]),
                         ("customer_id", "a", 90 * day, "m1", [0.5, 0.5]))
    outcomes = pd.DataFrame({"id": ["a", "b", "c"], "label": [0, 1, 1], "time": [30 * day, 31 * day, 1000.0]})
    params = {**PARAMS, "performance": {**PARAMS["performance"], "max_gap_hours": 24}}
    report = performance.analyse(logged, outcomes, META, {}, params)
    assert report["verdict"] == "inconclusive" and report["reason"] == (
        "0 labelled predictions of model m2, fewer than 2 (performance.min_rows); 2 label(s) whose id the log has "
        "joined no prediction within 24 h of their time (performance.max_gap_hours): their times run "
        "1970-01-31 00:00 to 1970-02-01 00:00 UTC, those predictions were logged 1970-01-01 00:16 to 1970-01-01 "
        "00:33 UTC (a label's time is that of the event scored, when its prediction was asked for)")
    near = outcomes.assign(time=[1060.0, 31 * day, 1000.0])  # a joins: 1 of 2 still too far
    assert "; 1 label(s) whose id the log has joined no prediction" in performance.analyse(
        logged, near, META, {}, params)["reason"]
    untimed = performance.analyse(logged, outcomes.drop(columns="time").head(1), META, {}, PARAMS)
    assert "none within" not in untimed["reason"]
