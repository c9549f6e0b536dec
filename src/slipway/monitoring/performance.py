"""Served performance: the prediction log joined with the labels known later, scored as ``evaluate``
scored the test set.

The server keeps the id column (``data.id_column``) a request sends in each sampled log line, as
``"id": {name: value}``. Once the outcomes are known (did the customer churn?), ``slipway
performance`` reads them (a CSV or Parquet file of the id column and the target, a local path or
``s3://``), joins each label to a prediction the served model logged for that id, and compares the
gate's primary metric with the model's test metrics (``reports/metrics.json``). A drop past
``performance.max_drop`` fails: the model does worse on today's customers than on the test set,
as drift can only suggest, and CI can start the next retrain on it as on drift. So does a metric
under the gate's floors (``gate.min_roc_auc``, ``gate.min_accuracy``, ``gate.min_f1``): a model that
scored so on its test set would not have been released.

Which prediction: when the labels carry the time column (``data.timestamp_column``), each outcome is
of the event at that time, as a training row's is, and an id may have one per event; it joins the
prediction logged for its id nearest that time, at most ``performance.max_gap_hours`` away, and no
prediction joins two outcomes. A prediction's time is when it was logged, or, for a model that reads
the time column as an input (a derived feature's), the event's time the request sent: a day of
events scored at once, a replay, is joined so too. Labels without it hold one outcome per id, joined
to the id's latest logged prediction.

Only the model in ``models/`` is scored: the log does not name the classes of other models' outputs.
Rows those logged are counted in the report.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

import numpy as np
import pandas as pd

from slipway.bundle import positive_index
from slipway.errors import DataError
from slipway.io import read_parquet, storage_errors
from slipway.monitoring import verdicts
from slipway.monitoring.drift import read_prediction_log, window_hours, window_start
from slipway.monitoring.verdicts import FAIL, INCONCLUSIVE, PASS
from slipway.params import is_finite_number, lookup
from slipway.pipeline.evaluate import METRIC_FLOORS, PRIMARY_METRICS, score
from slipway.pipeline.ingest import parse_timestamps
from slipway.values import moment_seconds

SCORED = (*PRIMARY_METRICS, "log_loss")
LOGGED = ("id_column", "id", "ts", "model_version", "probabilities")
EXAMPLES = 3  # values an error names


def logged_prediction(entry: dict) -> dict | None:
    """A log line's id, time, model version and probabilities; ``None`` for a line without an id
    (the request sent none)."""
    ids = entry.get("id")
    if not isinstance(ids, dict) or len(ids) != 1:
        return None
    (name, value), = ids.items()
    if value is None:
        return None
    return dict(zip(LOGGED, (name, str(value), entry["ts"], entry.get("model_version"), entry.get("probabilities")),
                    strict=True))


def sent_time(entry: dict, name: str, time_format: str | None = None) -> float | None:
    """A log line's input ``name``, a time, in seconds since the epoch as the server read it (text in
    ``time_format``, the model's, too); ``None`` when the request sent none (or the line is not the server's)."""
    try:
        return moment_seconds(entry["inputs"][name], time_format)
    except (KeyError, TypeError, ValueError, OverflowError):
        return None


def read_predictions(location: str, params: dict[str, Any], now: float, name: str, ids: set[str],
                     event_time: str | None = None, time_format: str | None = None) -> pd.DataFrame:
    """The predictions logged for ``ids`` of the id column ``name`` (the labelled ones: months of logs hold
    far more rows than there are labels, and only these are kept) in the last ``performance.window_hours``
    before ``now``. A log whose lines carry ids of another name is refused: it is another model's.
    ``event_time``: the model's time input that is the event's time; each prediction's time is then
    the one its request sent, where it sent one, read as the server read it (``time_format``: the model's)."""
    seen: set[str] = set()
    unlabelled: list[str] = []  # a few logged ids without a label: how the log writes them

    def pick(entry: dict) -> dict | None:
        row = logged_prediction(entry)
        if row is None:
            return None
        seen.add(row["id_column"])
        if row["id_column"] != name:
            return None
        if row["id"] in ids:
            if event_time is not None and (sent := sent_time(entry, event_time, time_format)) is not None:
                row["ts"] = sent
            return row
        if len(unlabelled) < EXAMPLES and row["id"] not in unlabelled:
            unlabelled.append(row["id"])
        return None

    predictions = read_prediction_log(location, window_start(params, now, "performance"), pick=pick)
    if seen and name not in seen:
        raise DataError(f"the prediction log's ids are {sorted(map(str, seen))}, not the model's id column "
                        f"{name!r}: is it another model's log?")
    predictions = predictions if len(predictions) else pd.DataFrame(columns=list(LOGGED))
    predictions.attrs["unlabelled_ids"] = unlabelled
    predictions.attrs["event_time"] = event_time
    return predictions


def read_labels(location: str, id_column: str, target: str, time_column: str | None = None,
                time_format: str | None = None) -> pd.DataFrame:
    """The labels: ``id_column`` and ``target`` of a CSV or Parquet file (by its suffix), ids as text,
    and, when the file has ``time_column``, the time of each outcome's event (epoch seconds, parsed as
    ingest parses the training data's, with ``time_format``): one label per id, or per id and time.
    Rows without an id, a label or a time are left out (counted in ``attrs["unlabelled"]``)."""
    suffixes = PurePath(location.split("://", 1)[-1]).suffixes
    try:
        if ".parquet" in suffixes:
            frame = read_parquet(location)
        elif ".csv" in suffixes:
            frame = pd.read_csv(location, dtype={id_column: str}, keep_default_na=True)
        else:
            raise DataError(f"{location}: labels must be a .csv or .parquet file (.csv.gz too)")
    except (*storage_errors(), ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{location}: the labels cannot be read ({exc})") from None
    missing = [c for c in (id_column, target) if c not in frame.columns]
    if missing:
        raise DataError(f"{location}: the labels lack column(s) {missing} (the model's id column and target); "
                        f"they have {list(frame.columns)[:10]}")
    timed = time_column is not None and time_column != id_column and time_column in frame.columns
    frame = frame[[id_column, target, *([time_column] if timed else [])]]
    labelled = frame.dropna()
    labels = pd.DataFrame({"id": labelled[id_column].astype(str).to_numpy(), "label": labelled[target].to_numpy()})
    if timed:
        try:
            times = parse_timestamps(labelled[[time_column]].copy(), time_column, time_format)[time_column]
        except DataError as exc:
            raise DataError(f"{location}: {exc}") from None
        labels["time"] = ((times - pd.Timestamp(0)) / pd.Timedelta(seconds=1)).to_numpy()
    labels = labels.drop_duplicates()
    key = ["id", "time"] if timed else ["id"]
    twice = labels[labels.duplicated(key)].drop_duplicates(key)
    if len(twice):
        examples = list(twice["id"][:EXAMPLES])
        if timed:
            rule = f" at one time ({time_column}), e.g. {examples}: one outcome per event is joined to its prediction"
        else:
            rule = f", e.g. {examples}: one outcome per id is joined to its latest prediction"
            if time_column:
                rule += f" (give each its time, {time_column}, to join each to the prediction of its event)"
        raise DataError(f"{location}: {len(twice)} id(s) have two different labels{rule}")
    labels.attrs["unlabelled"] = len(frame) - len(labelled)
    return labels


def id_column(metadata: dict) -> str:
    """The model's id column: what its requests may send, and its log lines keep, to join labels by."""
    name = metadata["features"].get("id_column")
    if name is None:
        raise DataError(f"model {metadata['model_version']} has no id column (data.id_column is null, or a derived "
                        "feature reads it as an input): its log lines carry no id to join labels by")
    return name


def class_index(label: Any, classes: list) -> int | None:
    """Which of the model's classes ``label`` is: the one written alike, or, for a number, the one of
    the same value (a CSV column of outcomes with some still pending reads as floats: 1.0 is 1)."""
    for i, known in enumerate(classes):
        if str(known) == str(label):
            return i
    if is_finite_number(label) and not isinstance(label, bool | np.bool_):
        for i, known in enumerate(classes):
            if is_finite_number(known) and not isinstance(known, bool) and float(known) == float(label):
                return i
    return None


def nearest_predictions(labels: pd.DataFrame, predicted: pd.DataFrame, max_gap: float) -> pd.DataFrame:
    """Each outcome (``labels`` with their time) beside its id's prediction logged nearest that time, at
    most ``max_gap`` seconds away, and no prediction beside two outcomes: of outcomes that would share
    one (two events of a customer close in time, one of them not logged), the nearer keeps it (the earlier
    of two as near) and the other takes its next nearest, if one is near enough. Outcomes without one
    are left out."""
    pending = labels.sort_values(["time", "id"], kind="stable").assign(outcome=lambda f: np.arange(len(f)))
    unclaimed = predicted.sort_values("ts", kind="stable").assign(prediction=lambda f: np.arange(len(f)))
    joined = []
    while len(pending) and len(unclaimed):
        # An as-of join, not a merge on the id: a customer scored daily with monthly outcomes would
        # pair each outcome with every prediction (12 x 365 rows an id) before keeping one.
        pairs = pd.merge_asof(pending, unclaimed, left_on="time", right_on="ts", by="id", direction="nearest",
                              tolerance=max_gap)
        pairs = pairs[pairs["ts"].notna()]
        if not len(pairs):
            break
        pairs = (pairs.assign(gap=(pairs["time"] - pairs["ts"]).abs()).sort_values(["gap", "time"], kind="stable")
                 .drop_duplicates("prediction"))
        joined.append(pairs)
        pending = pending[~pending["outcome"].isin(pairs["outcome"])]
        unclaimed = unclaimed[~unclaimed["prediction"].isin(pairs["prediction"])]
    if not joined:
        return pd.DataFrame(columns=list(dict.fromkeys([*labels.columns, *predicted.columns])))
    return pd.concat(joined).sort_values("outcome").drop(columns=["outcome", "prediction", "gap"])


def join(predictions: pd.DataFrame, labels: pd.DataFrame, metadata: dict,
         max_gap_hours: float | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """The labels and the probabilities of the model's logged prediction for each (:func:`read_predictions`'
    rows), and the counts behind them (the model's rows; those of other models, by version). A label with
    a time joins its id's prediction logged nearest it, at most ``max_gap_hours`` away (the earlier of two
    as near); one without, its id's latest."""
    classes, version = [str(c) for c in metadata["classes"]], metadata["model_version"]
    counts = {"logged": len(predictions), "labels": len(labels), "unlabelled": labels.attrs.get("unlabelled", 0)}
    labelled = predictions[predictions["id"].isin(labels["id"])]
    others = labelled[labelled["model_version"] != version]
    counts["other_versions"] = {str(v): int(n) for v, n in others.groupby("model_version").size().items()}
    ours = labelled[labelled["model_version"] == version]
    if "time" in labels.columns:
        ours = nearest_predictions(labels, ours.assign(ts=ours["ts"].astype(float)), max_gap_hours * 3600)
    else:
        ours = ours.merge(labels, on="id").sort_values("ts", kind="stable").drop_duplicates("id", keep="last")
    counts["joined"] = len(ours)
    indices = [class_index(v, metadata["classes"]) for v in ours["label"]]
    unknown = sorted({str(v) for v, i in zip(ours["label"], indices, strict=True) if i is None})
    if unknown:
        raise DataError(f"labels {unknown[:EXAMPLES]} are not classes of the model ({classes}): is the target "
                        "column the model's?")
    bad = [p for p in ours["probabilities"] if not (isinstance(p, list) and len(p) == len(classes)
                                                   and all(map(is_finite_number, p)))]
    if bad:
        raise DataError(f"{len(bad)} logged prediction(s) of model {version} do not hold {len(classes)} probabilities, "
                        f"e.g. {str(bad[0])[:80]}: is the log this model's?")
    truth = np.array(indices, dtype=np.int64)
    proba = np.array(list(ours["probabilities"]), dtype=np.float64).reshape(len(ours), len(classes))
    return truth, proba, counts


def times_apart(labels: pd.DataFrame, logged: pd.DataFrame, joined: int, max_gap_hours: float) -> str:
    """Why labels whose ids the log has did not join: when each time is, theirs and the log's (a label
    time of the outcome, weeks after the prediction, rather than of the event scored)."""
    event_time = logged.attrs.get("event_time")
    when = f"were asked for events of (their {event_time!r})" if event_time else "were logged"
    logged = logged[logged["id"].isin(labels["id"])]
    labels = labels[labels["id"].isin(logged["id"])]
    apart = len(labels) - joined
    if apart <= 0:
        return ""

    def span(seconds: pd.Series) -> str:
        ends = pd.to_datetime([seconds.min(), seconds.max()], unit="s", utc=True)
        return " to ".join(ends.strftime("%Y-%m-%d %H:%M"))

    return (f"; {apart} label(s) whose id the log has joined no prediction within {max_gap_hours:g} h of their "
            f"time (performance.max_gap_hours): their times run {span(labels['time'])} UTC, those predictions "
            f"{when} {span(logged['ts'].astype(float))} UTC (a label's time is that of the event scored, when "
            "its prediction was asked for)")


def analyse(predictions: pd.DataFrame, labels: pd.DataFrame, metadata: dict, test_metrics: dict,
            params: dict[str, Any]) -> dict:
    metric = lookup(params, "gate.primary_metric", str, choices=PRIMARY_METRICS)
    max_drop = lookup(params, "performance.max_drop", float, minimum=0.0)
    min_rows = lookup(params, "performance.min_rows", int, minimum=1)
    floors = {name: lookup(params, f"gate.{key}", float, minimum=0.0, maximum=1.0) for name, key in METRIC_FLOORS}
    if test_metrics.get("model_version") not in (None, metadata["model_version"]):
        raise DataError(f"the test metrics are model {test_metrics['model_version']}'s, not "
                        f"{metadata['model_version']}'s: run `dvc repro` (evaluate) or pass this model's metrics")
    max_gap = lookup(params, "performance.max_gap_hours", float, minimum=0.0) if "time" in labels.columns else None
    truth, proba, counts = join(predictions, labels, metadata, max_gap)
    report = {"model_version": metadata["model_version"], "metric": metric, "max_drop": max_drop, "rows": counts,
              "window_hours": window_hours(params, "performance"), "max_gap_hours": max_gap,
              "event_time": predictions.attrs.get("event_time") if max_gap is not None else None,
              "floors": floors, "test": {k: test_metrics.get(k) for k in SCORED}, "served": {}}
    if counts["joined"] < min_rows:
        reason = (f"{counts['joined']} labelled predictions of model {metadata['model_version']}, fewer than "
                  f"{min_rows} (performance.min_rows)")
        logged_ids = predictions.attrs.get("unlabelled_ids")
        if not counts["logged"] and logged_ids and len(labels):  # an id written two ways never joins
            reason += (f"; no logged id has a label: the log has ids such as {logged_ids}, the labels "
                       f"{labels['id'].head(EXAMPLES).tolist()} (written alike? leading zeros, case, spaces)")
        if max_gap is not None:
            reason += times_apart(labels, predictions[predictions["model_version"] == metadata["model_version"]],
                                  counts["joined"], max_gap)
        report.update(verdict=INCONCLUSIVE, reason=reason)
        return report
    # score() decodes labels by the classes given: the indices join() computed are those classes.
    served = score(truth, proba, list(range(len(metadata["classes"]))), positive_index(metadata))
    report["served"] = {k: served[k] for k in SCORED}
    test, now = report["test"][metric], served[metric]
    if test is None or now is None:
        report.update(verdict=INCONCLUSIVE, reason=f"{metric} is undefined on the "
                      f"{'test set' if test is None else 'labelled predictions'} (a class is absent)")
        return report
    drop = test - now
    report["drop"] = round(drop, 6)
    reasons = [f"{metric} {now:.4f} on {counts['joined']} labelled predictions against {test:.4f} on the test set: "
               f"{drop:.4f} worse, more than {max_drop:g} (performance.max_drop)"] if drop > max_drop else []
    reasons += [f"{name} {served[name]:.4f} on {counts['joined']} labelled predictions, under the gate's floor "
                f"{floors[name]:g} (gate.{key})" for name, key in METRIC_FLOORS
                if served[name] is not None and served[name] < floors[name]]
    report["verdict"] = FAIL if reasons else PASS
    if reasons:
        report["reason"] = "; ".join(reasons)
    return report


def markdown(report: dict) -> str:
    floors = report.get("floors") or {}
    rows = [[f"{k}{' (gate.primary_metric)' if k == report['metric'] else ''}", _shown(report["test"].get(k)),
             _shown(report["served"].get(k)), "–" if k not in floors else f"{floors[k]:g}"] for k in SCORED]
    counts = report["rows"]
    others = counts.get("other_versions") or {}
    window = "" if report.get("window_hours") is None else f" in the last {report['window_hours']:g} h"
    gap = report.get("max_gap_hours")
    if gap is None:
        joined = f"labelled ids joined to its latest logged prediction{window}"
    else:
        timed = f"whose request's {report['event_time']!r} is" if report.get("event_time") else "logged"
        joined = f"labels joined to its prediction {timed} nearest their time (at most {gap:g} h away){window}"
    summary = (f"Model {report['model_version']}: {counts['joined']} of {counts['labels']} {joined} "
               f"({counts['logged']} logged predictions of these ids); "
               f"fails when {report['metric']} is more than {report['max_drop']:g} worse than on the test set "
               "(performance.max_drop), or a metric is under the gate's floor.")
    if counts.get("unlabelled"):
        lacking = "an id or a label" if gap is None else "an id, a label or a time"
        summary += f" Left out, {counts['unlabelled']} label row(s) without {lacking}."
    if others:
        summary += " Not scored, other models' rows: " + ", ".join(f"{v} {n}" for v, n in others.items()) + "."
    return verdicts.markdown("Served performance", report["verdict"], summary, report.get("reason"),
                             ["metric", "test set", "served", "gate floor"], rows if report["served"] else [])


def _shown(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"
