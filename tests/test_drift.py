"""Offline drift (deepchecks) of the prediction log against the training data."""

import gzip
import json
import os
import time

import numpy as np
import pandas as pd
import pytest

from slipway.errors import DataError, ParamsError
from slipway.featureset import FeatureSpec
from slipway.monitoring import drift
from slipway.monitoring.verdicts import FAIL, INCONCLUSIVE, PASS
from tests.conftest import UNLISTABLE_S3

NOW = time.time()
SPEC = FeatureSpec(["x"], {"organic": ["False", "True"], "grade": ["1", "2", "3"]})


def frame(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(shift, 1.0, rows), "organic": rng.random(rows) < 0.3,
                         "grade": rng.integers(1, 4, rows)})


@pytest.mark.parametrize("sent", ["json values", "labels", "padded labels", "floats"])
def test_boolean_and_integer_categories_compare_as_the_model_labels_them(repo_params, sent):
    """Training holds booleans and integers; clients send true or "True", 2 or "2" (or " 2 "), or 2.0
    (JSON's 2; pandas writes an integer column with a null so)."""
    served = frame(1000, seed=2)
    if sent in ("labels", "padded labels"):
        served = served.astype({"organic": str, "grade": str})
    if sent == "padded labels":  # the server reads " 2 " as "2", so the log is read so too
        served = served.assign(grade=" " + served["grade"] + "  ")
    if sent == "floats":  # the log as sent: read back, 2.0 is a float beside the nulls
        served = served.astype({"grade": float}).astype({"grade": object})
        served.loc[served.index[::50], "grade"] = None
        assert drift.served_inputs(served, SPEC)["grade"].dropna().isin(["1", "2", "3"]).all()
    report, _ = drift.analyse(frame(3000, seed=1), served, SPEC, repo_params)
    assert report["verdict"] == PASS, report
    assert report["features"]["organic"] < 0.05 and report["features"]["grade"] < 0.05


def test_texts_training_read_as_missing_are_missing_in_the_log(repo_params):
    """The server reads data.na_values ('?') as missing; the log keeps what was sent."""
    from dataclasses import replace

    served = frame(1000, seed=2).astype({"x": object, "grade": str})
    served.loc[served.index[::10], ["x", "grade"]] = "?"
    spec = replace(SPEC, missing_values=("?",))
    read = drift.served_inputs(served, spec)
    assert read["x"].dtype == float and read["x"].isna().sum() == 100 and read["grade"].isna().sum() == 100
    with pytest.raises(DataError, match="x: 100 value"):
        drift.served_inputs(served, SPEC)  # a log of '?' for a model that never read it so
    served.loc[served.index[1::10], "x"] = " "  # blank: missing to the server whatever data.na_values says
    assert drift.served_inputs(served, spec)["x"].isna().sum() == 200


def test_numbers_sent_as_text_are_read_as_the_server_read_them(repo_params):
    """A client's CSV column of numbers with a blank in it is text ("4039.88"): the server read it as the
    number, in the marks training read (data.decimal), so the drift job does too."""
    from dataclasses import replace

    served = frame(1000, seed=2)
    written = served.astype({"x": object})
    written["x"] = [f"{x:.6f}" for x in served["x"]]
    assert drift.served_inputs(written, SPEC)["x"].to_numpy() == pytest.approx(served["x"].to_numpy(), abs=1e-6)
    european = written.assign(x=written["x"].str.replace(".", ",", regex=False))
    assert drift.served_inputs(european, replace(SPEC, number_format=(",", None)))["x"].to_numpy() == \
        pytest.approx(served["x"].to_numpy(), abs=1e-6)
    with pytest.raises(DataError, match="x: 1000 value"):  # not how this model's data wrote numbers
        drift.served_inputs(european, SPEC)


def test_a_shifted_feature_drifts(repo_params):
    report, _ = drift.analyse(frame(3000, seed=1), frame(1000, seed=2, shift=1.5), SPEC, repo_params)
    assert report["verdict"] == FAIL and report["drifted"] == ["x"]


def test_a_drift_limit_no_score_can_exceed_is_refused(repo_params):
    params = {**repo_params, "drift": {**repo_params["drift"], "max_feature_drift": 1.5}}
    with pytest.raises(ParamsError, match=r"^params: drift.max_feature_drift must be <= 1.0, got 1.5"):
        drift.analyse(frame(300, seed=1), frame(300, seed=2), SPEC, params)


def test_a_feature_served_only_as_null_drifts_with_the_reason(repo_params):
    """An upstream that stops sending a feature: deepchecks cannot score it (too few values)."""
    served = frame(1000, seed=2).astype({"x": object})
    served["x"] = None
    report, _ = drift.analyse(frame(3000, seed=1), served, SPEC, repo_params)
    assert report["verdict"] == FAIL and report["drifted"] == ["x"]
    assert report["features"]["x"] == 1.0 and report["features"]["organic"] < 0.05
    assert report["unserved"] == {"x": "0 of 1000 sampled rows have a value"}
    assert "| x ⚠️ (not served: 0 of 1000 sampled rows have a value) | 1.000 |" in drift.markdown(report)


@pytest.mark.parametrize(("column", "value", "message"), [
    ("x", "forty", "x: 500 value(s) like 'forty', not a finite number"),
    ("x", True, "x: 500 value(s) like True, not a finite number"),
    ("x", float("inf"), "x: 500 value(s) like inf, not a finite number"),
    ("x", 10**400, "x: 500 value(s) like an integer past float64's range, not a finite number"),
    ("grade", ["a"], "grade: 500 value(s) like ['a'], not a category"),
])
def test_values_the_server_refuses_mean_another_models_log(repo_params, column, value, message):
    served = frame(1000, seed=2).astype({column: object})
    served.loc[served.index[::2], column] = pd.Series([value] * 500, index=served.index[::2], dtype=object)
    with pytest.raises(DataError) as refused:
        drift.analyse(frame(3000, seed=1), served, SPEC, repo_params)
    assert str(refused.value) == ("prediction log holds values this model's server refuses (is it another "
                                  f"model's log?): {message}")


def test_a_feature_almost_always_null_in_training_is_named_unscored(repo_params):
    """No reference to compare with: listed with the reason, never silently dropped."""
    reference = frame(3000, seed=1).astype({"x": object})
    reference.loc[reference.index[9:], "x"] = None
    report, _ = drift.analyse(reference, frame(1000, seed=2), SPEC, repo_params)
    assert report["verdict"] == PASS and "x" not in report["features"]
    assert report["unscored"] == {"x": "9 of 3000 sampled training rows have a value"}
    assert "| x (not scored: 9 of 3000 sampled training rows have a value) | – |" in drift.markdown(report)


def working_hours(first: str, rows: int, shift_hours: int = 0) -> pd.DatetimeIndex:
    """Events between 09:00 and 17:00, nine a day from ``first`` on."""
    steps = np.arange(rows)
    return (pd.Timestamp(first) + pd.to_timedelta(steps // 9, unit="D")
            + pd.to_timedelta(9 + steps % 9 + shift_hours, unit="h"))


def test_a_time_input_is_not_compared_but_what_the_model_reads_of_it_is(repo_params):
    """A time moves on whatever happens (every served one is newer than training's): not compared,
    and said so. The hour a derived feature reads of it is compared, as the server computed it: from
    the log's text or epoch numbers. Clients that send their local times for UTC ones shift it."""
    from dataclasses import replace

    from slipway.model.features import DerivedFeature

    hour = DerivedFeature(("t",), lambda cols: (cols["t"] // 3600) % 24, "hour")
    spec = FeatureSpec(["x"], {}, ["hour"], {"hour": hour}, times=("t",))
    reference = frame(3000, seed=1)[["x"]].assign(t=working_hours("2025-01-01", 3000))

    def served(shift_hours: int = 0) -> pd.DataFrame:
        times = working_hours("2026-01-01", 1000, shift_hours)
        sent = [[t.isoformat() + "Z", t.timestamp(), t.timestamp() * 1000, None][i % 4] for i, t in enumerate(times)]
        return frame(1000, seed=2)[["x"]].assign(t=sent)

    read = drift.served_inputs(served(), spec)["t"]
    np.testing.assert_array_equal(read[:4], [*working_hours("2026-01-01", 3).map(pd.Timestamp.timestamp), np.nan])
    report, _ = drift.analyse(reference, served(), spec, repo_params)
    assert report["verdict"] == PASS and sorted(report["features"]) == ["hour", "x"], report
    assert report["unscored"] == {"t": "a time, always newer than training's"}
    report, _ = drift.analyse(reference, served(shift_hours=5), spec, repo_params)
    assert report["verdict"] == FAIL and report["drifted"] == ["hour"]
    logged = served().astype({"t": object})
    logged.loc[logged.index[::2], "t"] = "yesterday"
    with pytest.raises(DataError, match=r"server refuses .*: t: 500 value\(s\) like 'yesterday', not a time$"):
        drift.analyse(reference, logged, spec, repo_params)
    # A model trained on times written '%d.%m.%Y %H:%M' (data.timestamp_format) was sent them so too
    european = served().assign(t=[t.strftime("%d.%m.%Y %H:%M") for t in working_hours("2026-01-01", 1000)])
    with pytest.raises(DataError, match=r"t: 1000 value\(s\) like '01.01.2026 09:00', not a time$"):
        drift.served_inputs(european, spec)
    formatted = replace(spec, time_format="%d.%m.%Y %H:%M")
    assert drift.served_inputs(european, formatted)["t"].tolist() == \
        working_hours("2026-01-01", 1000).map(pd.Timestamp.timestamp).tolist()


def test_nothing_to_compare_is_inconclusive(repo_params):
    spec = FeatureSpec(["x"], {})
    reference = frame(3000, seed=1).astype({"x": object})
    reference["x"] = None
    report, _ = drift.analyse(reference, frame(1000, seed=2), spec, repo_params)
    assert report["verdict"] == INCONCLUSIVE and report["features"] == {}
    assert report["reason"] == "no input has 10 or more values in the training data to compare with"


def log_line(logged_at: float, x: float) -> str:
    return json.dumps({"ts": logged_at, "inputs": {"x": x}}) + "\n"


def test_the_log_is_read_from_every_jsonl_file_and_gzipped_one_below(tmp_path):
    (tmp_path / "2026/11/26").mkdir(parents=True)
    (tmp_path / "top.jsonl").write_text(log_line(NOW, 1) + "\n" + log_line(NOW, 2))
    with gzip.open(tmp_path / "2026/11/26/worker-1.jsonl.gz", "wt") as handle:  # as a shipper wraps it
        handle.write(json.dumps({"date": NOW, "pod": "slipway-1", "ts": NOW, "inputs": {"x": 3}}) + "\n")
    (tmp_path / "notes.txt").write_text("not a log")
    assert sorted(drift.read_prediction_log(str(tmp_path)).x) == [1, 2, 3]
    assert drift.read_prediction_log(str(tmp_path / "top.jsonl")).x.tolist() == [1, 2]


def test_the_servers_own_log_lines_are_read_back(tmp_path):
    """What the server writes (orjson: UTF-8; the json module's escapes for a lone surrogate)."""
    from slipway.serving.state import PredictionLog

    log = PredictionLog(tmp_path / "predictions.jsonl", rate=1.0)
    log.write("r1", "v1", {"city": ["Île-de-France", "\ud800"], "x": [1.5, None]}, [0, 1], [[0.4, 0.6], [0.9, 0.1]])
    served = drift.read_prediction_log(str(tmp_path))
    assert served.city.tolist() == ["Île-de-France", "\ud800"]
    assert served.x.tolist()[0] == 1.5 and pd.isna(served.x.tolist()[1])


def test_a_number_past_float64_in_the_log_is_named(tmp_path, repo_params):
    """JSON holds integers of any size; building the frame of them raised pandas' OverflowError."""
    (tmp_path / "p.jsonl").write_text("\n".join(log_line(NOW, x) for x in [1, 10**400, 2]))
    spec = FeatureSpec(["x"], {})
    with pytest.raises(DataError, match=r"x: 1 value\(s\) like an integer past float64's range, not a finite number"):
        drift.served_inputs(drift.read_prediction_log(str(tmp_path)), spec)


def test_values_too_large_to_plot_still_get_scores(repo_params):
    """deepchecks' density plot fails on values past about 1e154, which the server takes as numbers:
    the scores are computed without the plots, and the report says so."""
    served = frame(1000, seed=2)
    served.loc[0, "x"] = 1e200
    report, result = drift.analyse(frame(3000, seed=1), served, SPEC, repo_params)
    assert report["verdict"] == PASS and report["features"]["x"] < 0.05
    assert report["unplotted"].startswith("no plots: deepchecks could not draw them (")
    assert "The HTML report has no plots: deepchecks could not draw them" in drift.markdown(report)
    assert result is not None


def test_only_predictions_in_the_window_are_read(tmp_path, repo_params):
    """A daily check of the last week: older lines, and files last written before it, are skipped."""
    week = drift.window_start(repo_params, NOW)
    assert week == NOW - 168 * 3600
    (tmp_path / "mixed.jsonl").write_text(log_line(NOW - 1, 1) + log_line(week - 1, 2) + log_line(week, 3))
    (tmp_path / "stale.jsonl").write_text(log_line(NOW, 4))  # written before the week: not opened
    os.utime(tmp_path / "stale.jsonl", (week - 1, week - 1))
    assert sorted(drift.read_prediction_log(str(tmp_path), week).x) == [1, 3]
    assert drift.window_start({**repo_params, "drift": {**repo_params["drift"], "window_hours": None}}, NOW) is None


def test_the_reservoir_keeps_a_uniform_seeded_sample_of_bounded_size():
    """A week of logs can outgrow the drift job's memory (3M logged rows took 7.1 GiB when every row
    was kept); the comparison uses a sample anyway."""
    def kept(seed, size=100):
        reservoir = drift.Reservoir(size, seed)
        for value in range(10_000):
            reservoir.offer({"x": value})
        assert reservoir.seen == 10_000 and len(reservoir.rows) == size
        return [row["x"] for row in reservoir.rows]

    sample = kept(seed=1)
    assert 35 <= sum(value >= 5_000 for value in sample) <= 65  # from the whole log, not its start
    assert len(set(sample)) == 100
    assert kept(seed=1) == sample and kept(seed=2) != sample
    every = drift.Reservoir()
    for value in range(3):
        every.offer({"x": value})
    assert [row["x"] for row in every.rows] == [0, 1, 2]


def test_drift_reads_a_sample_of_the_window_and_counts_every_row(tmp_path, repo_params):
    params = {**repo_params, "drift": {**repo_params["drift"], "sample_size": 100}}
    rng = np.random.default_rng(5)
    (tmp_path / "big.jsonl").write_text("".join(log_line(NOW, float(x)) for x in rng.normal(0, 1, 1000))
                                        + log_line(NOW - 1000 * 3600, 9.0))  # past the window
    served = drift.read_served_sample(str(tmp_path), params, NOW)
    assert len(served) == 100 and served.attrs[drift.WINDOW_ROWS] == 1000
    assert drift.read_served_sample(str(tmp_path), params, NOW).equals(served)  # seeded: the same rows
    reference = frame(3000, seed=1).drop(columns=["organic", "grade"])
    report, _ = drift.analyse(reference, served, FeatureSpec(["x"], {}), params)
    assert report["rows"]["served"] == 1000 and report["verdict"] == PASS
    assert "1000 logged rows (the last 168 h)" in drift.markdown(report)
    assert "a feature drifts when its score is above 0.2 (drift.max_feature_drift)." in drift.markdown(report)


def test_no_prediction_in_the_window_is_inconclusive(tmp_path, repo_params):
    (tmp_path / "old.jsonl").write_text(log_line(NOW - 1000 * 3600, 1))
    served = drift.read_prediction_log(str(tmp_path), drift.window_start(repo_params, NOW))
    report, _ = drift.analyse(frame(3000, seed=1), served, SPEC, repo_params)
    assert report["verdict"] == INCONCLUSIVE and report["reason"] == "0 logged rows, fewer than 200 (drift.min_rows)"
    assert "0 logged rows (the last 168 h) against 3000 training rows" in drift.markdown(report)


@pytest.mark.parametrize(("line", "problem"), [
    ('{"inputs": {"x": 1}}', "'ts'"),
    ('{"ts": "yesterday", "inputs": {"x": 1}}', "ts must be a finite number and inputs an object"),
    ('{"ts": 1, "inputs": [1]}', "ts must be a finite number and inputs an object"),
    # Python's json reads NaN: a line no window could place, left out of every one without a word.
    ('{"ts": NaN, "inputs": {"x": 1}}', "ts must be a finite number and inputs an object"),
])
def test_a_line_that_is_not_the_servers_is_named(tmp_path, line, problem):
    (tmp_path / "a.jsonl").write_text(log_line(NOW, 1) + line + "\n")
    with pytest.raises(DataError) as refused:
        drift.read_prediction_log(str(tmp_path))
    assert str(refused.value) == f"{tmp_path / 'a.jsonl'}:2: not a prediction log line ({problem})"


def test_no_log_file_is_named(tmp_path):
    with pytest.raises(DataError, match=r"no prediction log \(\*.jsonl or \*.jsonl.gz\) found"):
        drift.read_prediction_log(str(tmp_path))


@pytest.mark.parametrize(("name", "content", "problem"), [
    ("broken.jsonl.gz", b"not gzip at all", "cannot be read (Not a gzipped file"),
    ("latin.jsonl", "{\"ts\": 1, \"inputs\": {\"x\": \"caf\u00e9\"}}\n".encode("latin-1"), "cannot be read ("),
])
def test_a_file_that_cannot_be_read_is_named(tmp_path, name, content, problem):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DataError) as refused:
        drift.read_prediction_log(str(tmp_path))
    assert str(refused.value).startswith(f"{tmp_path / name}: {problem}")


@pytest.mark.parametrize(("location", "problem"), UNLISTABLE_S3)
def test_a_log_location_that_cannot_be_listed_is_named(no_aws_credentials, location, problem):
    with pytest.raises(DataError, match=f"^{location}: cannot be listed \\({problem}"):
        drift.read_prediction_log(location)


def test_a_line_cut_short_is_skipped_and_reported(tmp_path, repo_params):
    """A full disk or a killed shipper cuts a line: the check goes on, and says it skipped it."""
    lines = [json.dumps({"ts": NOW, "inputs": row}) + "\n" for row in frame(301, seed=2).to_dict("records")]
    (tmp_path / "a.jsonl").write_text("".join(lines[:300]) + lines[300][:12] + "\n" + lines[300])
    served = drift.read_prediction_log(str(tmp_path))
    assert len(served) == 301
    report, _ = drift.analyse(frame(3000, seed=1), served, SPEC, repo_params)
    assert report["skipped_lines"] == {"count": 1, "first": f"{tmp_path / 'a.jsonl'}:301"}
    assert f"1 log line(s) that were not JSON (cut short) skipped, the first at {tmp_path / 'a.jsonl'}:301" \
        in drift.markdown(report)


def test_a_file_mostly_not_json_is_refused(tmp_path):
    (tmp_path / "a.jsonl").write_text("x,ts\n1,2\n" + log_line(NOW, 1))
    with pytest.raises(DataError) as refused:
        drift.read_prediction_log(str(tmp_path))
    assert str(refused.value).startswith(f"{tmp_path / 'a.jsonl'}: not a prediction log: 2 of 3 lines are not "
                                         "JSON (the first, line 1: ")
