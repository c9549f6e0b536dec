"""Offline drift: the server's sampled prediction log against the training data (deepchecks).

Reads the JSON lines written with ``SLIPWAY_PREDICTION_LOG`` (one object per row: ``ts``,
``inputs``, ``prediction``, ``probabilities``) of the last ``drift.window_hours``, compares each
input feature, and each derived feature computed from them as the server computed it, with the
training split using deepchecks' feature drift, and reports the worst score against
``params.yaml``'s ``drift`` limits.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from slipway.errors import DataError
from slipway.featureset import FeatureSpec, category_labels
from slipway.io import storage_errors
from slipway.monitoring import verdicts
from slipway.monitoring.verdicts import FAIL, INCONCLUSIVE, PASS
from slipway.params import is_finite_number, lookup, random_seed, shown_value
from slipway.serving.codec import loads
from slipway.values import missing_text, moment_seconds, number_label, text_number, trimmed

LOG_PATTERNS = ("*.jsonl", "*.jsonl.gz")
# The served frame's attrs: where lines that were not JSON were skipped, and how many rows the
# window held when the frame is a sample of them.
CUT_LINES = "cut_lines"
WINDOW_ROWS = "window_rows"


class Reservoir:
    """A uniform sample of at most ``size`` of the rows offered, in one pass (Algorithm R, seeded):
    a week of prediction logs can hold more rows than the drift job's memory, and the comparison
    uses a sample of ``drift.sample_size`` rows anyway. ``size`` ``None``: every row."""

    def __init__(self, size: int | None = None, seed: int = 0):
        self.size, self.seen, self.rows = size, 0, []
        self._random = random.Random(seed)

    def offer(self, row: dict) -> None:
        self.seen += 1
        if self.size is None or len(self.rows) < self.size:
            self.rows.append(row)
        else:
            slot = self._random.randrange(self.seen)
            if slot < self.size:
                self.rows[slot] = row


def read_served_sample(location: str, params: dict[str, Any], now: float) -> pd.DataFrame:
    """The prediction log as ``slipway drift`` reads it: the window of ``drift.window_hours`` before
    ``now``, sampled to ``drift.sample_size`` rows with ``drift.seed``."""
    return read_prediction_log(location, window_start(params, now),
                               Reservoir(lookup(params, "drift.sample_size", int, minimum=100),
                                         random_seed(params, "drift.seed")))


def logged_inputs(entry: dict) -> dict:
    return entry["inputs"]


def read_prediction_log(location: str, since: float | None = None, sample: Reservoir | None = None,
                        pick: Callable[[dict], dict | None] = logged_inputs) -> pd.DataFrame:
    """The logged predictions made at ``since`` (epoch seconds) or later, one row each as ``pick``
    takes it from the line (their inputs, by default; ``None`` leaves a line out), from the
    ``*.jsonl`` (or gzipped ``*.jsonl.gz``) files under ``location``: a local path or an ``s3://``
    prefix where a log shipper puts them; all of them, or those ``sample`` keeps (the frame's
    ``attrs[WINDOW_ROWS]`` counts them all). Files last modified before ``since`` are not read: a
    shipper writes a file after the lines in it."""
    sample = sample or Reservoir()
    import fsspec  # only the drift job reads remote storage

    try:
        fs, root = fsspec.core.url_to_fs(location)
        if fs.isfile(root):
            files = [root]
        else:
            found = {path: info for pattern in LOG_PATTERNS
                     for path, info in fs.glob(f"{root.rstrip('/')}/**/{pattern}", detail=True).items()}
            if not found:
                raise DataError(f"{location}: no prediction log (*.jsonl or *.jsonl.gz) found")
            files = sorted(path for path, info in found.items() if since is None or _modified(info) >= since)
    except (*storage_errors(), ValueError) as exc:  # unreachable, no permission; ValueError: s3://
        raise DataError(f"{location}: cannot be listed ({exc})") from None
    cut = []
    for file in files:
        shown = fs.unstrip_protocol(file) if "://" in location else file
        try:
            with fs.open(file, "rt", compression="infer", encoding="utf-8") as handle:
                skipped = _offer_lines(handle, shown, since, sample, pick)
        except (*storage_errors(), EOFError, UnicodeDecodeError) as exc:  # unreadable, a broken gzip, not text
            raise DataError(f"{shown}: cannot be read ({exc})") from None
        cut += [f"{shown}:{number}" for number in skipped]
    served = pd.DataFrame(sample.rows, dtype=object)  # as logged: pandas' inference overflows on an int past float64
    served.attrs[CUT_LINES] = cut
    served.attrs[WINDOW_ROWS] = sample.seen
    return served


def _offer_lines(lines, shown: str, since: float | None, sample: Reservoir,
                 pick: Callable[[dict], dict | None]) -> list[int]:
    """Offers the file's rows in the window to ``sample``; returns the numbers of the lines skipped
    as not JSON: a write cut short (a full disk, a killed shipper) leaves one, and one cut line must
    not stop every drift check until its file leaves the window. A file mostly not JSON is refused."""
    parsed, skipped = 0, []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = loads(line)
        except ValueError as exc:
            skipped.append((number, exc))
            continue
        parsed += 1
        try:
            logged_at, inputs = entry["ts"], entry["inputs"]
            if not is_finite_number(logged_at) or not isinstance(inputs, dict):
                raise TypeError("ts must be a finite number and inputs an object")
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{shown}:{number}: not a prediction log line ({exc})") from None
        if (since is None or logged_at >= since) and (row := pick(entry)) is not None:
            sample.offer(row)
    if len(skipped) > parsed:
        number, exc = skipped[0]
        raise DataError(f"{shown}: not a prediction log: {len(skipped)} of {len(skipped) + parsed} lines "
                        f"are not JSON (the first, line {number}: {exc})")
    return [number for number, _ in skipped]


def _modified(info: dict) -> float:
    """A file's last modification time (epoch seconds) from fsspec's details: ``mtime`` for a local
    file, ``LastModified`` (a datetime) for an S3 object."""
    stamp = info.get("mtime", info.get("LastModified"))
    return stamp.timestamp() if hasattr(stamp, "timestamp") else float(stamp)


def window_hours(params: dict[str, Any], section: str = "drift") -> float | None:
    """How many hours of the log ``section`` (drift, performance) reads; ``None``: all of it."""
    return lookup(params, f"{section}.window_hours", (float, type(None)), minimum=1)


def window_start(params: dict[str, Any], now: float, section: str = "drift") -> float | None:
    """The oldest logged time ``section`` reads (its ``window_hours`` before ``now``); ``None``: all."""
    hours = window_hours(params, section)
    return None if hours is None else now - hours * 3600


# deepchecks scores a feature only from this many values on each side (nulls do not count).
MIN_VALUES = 10


def _served_label(value: object, labels: dict[str, int]) -> object:
    """A logged category as the server read it (:func:`slipway.serving.schemas.check_columns`)."""
    if isinstance(value, str):
        return trimmed(value)
    if isinstance(value, bool) or pd.isna(value):
        return value
    return number_label(value, labels)


def _served_number(value: object, number_format: tuple[str, str | None]) -> object:
    """A logged numeric input as the server read it: text that writes a number in ``number_format`` is
    that number (:func:`slipway.values.text_number`); other values as they are, for the check of each."""
    if isinstance(value, str):
        number = text_number(value, number_format)
        return value if number is None else number
    return value


def _served_times(values: pd.Series, markers: frozenset[str], time_format: str | None) -> tuple[pd.Series, pd.Series]:
    """A logged time input as seconds since the epoch (:func:`slipway.values.moment_seconds`, as the
    server read it: text in ``time_format``, the model's, too), and the values that are no time."""
    def seconds(value: object) -> float:
        if value is None or missing_text(value, markers) or (isinstance(value, float) and math.isnan(value)):
            return math.nan
        try:
            return moment_seconds(value, time_format)
        except (ValueError, OverflowError):
            return math.inf  # no time: named below
    read = values.astype(object).map(seconds).astype(float)
    return read.where(np.isfinite(read)), values[np.isinf(read)]


def served_inputs(served: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """The logged inputs (or the sample of them read) as the model reads them (numbers as floats, numbers
    sent as text read as the server read them, ``None``, blank text and the texts of ``data.na_values``
    as NaN, categories trimmed as the server trims them). A value the server would have refused means
    the log is not this model's: every such input is named."""
    missing = [c for c in spec.inputs if c not in served.columns]
    if missing:
        raise DataError(f"prediction log lacks inputs {missing}")
    frame = served[spec.inputs].copy()
    problems = []
    markers = frozenset(spec.missing_values)
    for name in spec.inputs:
        values = frame[name]
        if name in spec.times:  # text or numbers, as the server read them: seconds since the epoch
            frame[name], bad = _served_times(values, markers, spec.time_format)
            if len(bad):
                problems.append(f"{name}: {len(bad)} value(s) like {shown_value(bad.iloc[0])}, not a time")
            continue
        if values.dtype != object:
            continue
        # " " and "?" (data.na_values) were missing values to the server, as in training, and "4039.88"
        # (written as training's data wrote numbers) that number
        values = values.mask(values.map(lambda v: missing_text(v, markers)))
        if name not in spec.categorical:  # objects still: an int past float64 is named below
            values = pd.Series([_served_number(v, spec.number_format) for v in values], values.index, object)
        frame[name] = values
        present = values[values.notna()]
        if name in spec.categorical:
            bad = present[~present.map(lambda v: isinstance(v, str | bool | int | float))]
        else:
            bad = present[~present.map(is_finite_number)]
        if len(bad):
            problems.append(f"{name}: {len(bad)} value(s) like {shown_value(bad.iloc[0])}, not "
                            f"{'a category' if name in spec.categorical else 'a finite number'}")
        elif name in spec.categorical:  # the server read " monthly " as "monthly", and 2.0 as the category "2"
            frame[name] = values.map(partial(_served_label, labels=spec.category_index[name]))
        else:
            frame[name] = values.astype(float)
    if problems:
        raise DataError("prediction log holds values this model's server refuses (is it another model's log?): "
                        + "; ".join(problems))
    return frame


def feature_drift(train: pd.DataFrame, served: pd.DataFrame, categorical: list[str]) -> tuple[Any, str | None]:
    """deepchecks' FeatureDrift of the two sides, and why its report has no plots if it has none
    (:func:`slipway.checks.run_check`)."""
    from deepchecks.tabular import Dataset
    from deepchecks.tabular.checks import FeatureDrift

    from slipway.checks import run_check

    return run_check(FeatureDrift(), Dataset(train, cat_features=categorical),
                     Dataset(served, cat_features=categorical))


def analyse(reference: pd.DataFrame, served: pd.DataFrame, spec: FeatureSpec,
            params: dict[str, Any]) -> tuple[dict, Any]:
    limit = lookup(params, "drift.max_feature_drift", float, minimum=0.0, maximum=1.0)  # a drift score is in [0, 1]
    min_rows = lookup(params, "drift.min_rows", int, minimum=1)
    size = lookup(params, "drift.sample_size", int, minimum=100)
    seed = random_seed(params, "drift.seed")
    cut = served.attrs.get(CUT_LINES, [])
    logged = served.attrs.get(WINDOW_ROWS, len(served))  # served may be a sample of them
    served = served_inputs(served, spec) if len(served) else served  # none in the window: inconclusive
    report = {"rows": {"reference": len(reference), "served": logged}, "threshold": limit,
              "window_hours": window_hours(params)}
    if cut:
        report["skipped_lines"] = {"count": len(cut), "first": cut[0]}
    if logged < min_rows:
        report.update(verdict=INCONCLUSIVE, reason=f"{logged} logged rows, fewer than {min_rows} (drift.min_rows)",
                      features={})
        return report, None

    def sampled(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame if len(frame) <= size else frame.sample(n=size, random_state=seed)
        frame = frame[spec.inputs].reset_index(drop=True)
        # Both sides as the model's category labels: the training data holds a boolean column as
        # booleans, the log holds what clients sent (true or "True"); unlabelled, they differ.
        frame = frame.assign(**{name: category_labels(frame[name]) for name in spec.categorical})
        # What the model reads of its inputs too: a time is not compared, but its hour is (clients that
        # send local times for UTC ones shift it).
        return frame.join(spec.transform(frame)[spec.derived]) if spec.derived else frame

    train_side, served_side = sampled(reference), sampled(served)
    features = [*spec.inputs, *spec.derived]
    # A feature served (almost) only as null has drifted as far as it can: an upstream stopped
    # sending it. deepchecks cannot score it, so it scores 1 here and the report says why.
    served_values, train_values = served_side.notna().sum(), train_side.notna().sum()
    unserved = {name: int(served_values[name]) for name in features
                if served_values[name] < MIN_VALUES <= train_values[name]}
    # A feature (almost) always null in training has no reference to compare with: named, unscored.
    unscored = {name: f"{int(train_values[name])} of {len(train_side)} sampled training rows have a value"
                for name in features if train_values[name] < MIN_VALUES and name not in spec.times}
    # A time moves on whatever happens: served times are all newer than training's. (Not sent, it has drifted.)
    unscored.update(dict.fromkeys((n for n in spec.times if n not in unserved), "a time, always newer than training's"))
    compared = [n for n in features if n not in unserved and n not in unscored]
    categorical = [n for n in compared if n in spec.categorical]
    result, unplotted = feature_drift(train_side[compared], served_side[compared], categorical) if compared \
        else (None, None)
    if unplotted:
        report["unplotted"] = unplotted
    scores = {name: round(float(v["Drift score"]), 6) for name, v in (result.value if result else {}).items()}
    scores.update(dict.fromkeys(unserved, 1.0))
    drifted = sorted((n for n, s in scores.items() if s > limit), key=lambda n: -scores[n])
    report.update(verdict=FAIL if drifted else PASS if scores else INCONCLUSIVE, features=scores, drifted=drifted,
                  unserved={n: f"{count} of {len(served_side)} sampled rows have a value"
                            for n, count in unserved.items()},
                  unscored=unscored)
    if not scores:
        report["reason"] = f"no input has {MIN_VALUES} or more values in the training data to compare with"
    return report, result


def markdown(report: dict) -> str:
    drifted, unserved = report.get("drifted", []), report.get("unserved", {})
    scored = [[f"{n}{' ⚠️' if n in drifted else ''}{' (not served: ' + unserved[n] + ')' if n in unserved else ''}",
               f"{s:.3f}"] for n, s in sorted(report["features"].items(), key=lambda t: -t[1])]
    unscored = [[f"{n} (not scored: {why})", "–"] for n, why in report.get("unscored", {}).items()]
    return verdicts.markdown(
        "Drift", report["verdict"],
        f"{report['rows']['served']} logged rows{_window(report)} against {report['rows']['reference']} training rows; "
        f"a feature drifts when its score is above {report['threshold']:g} (drift.max_feature_drift).{_skipped(report)}"
        + (f" The HTML report has {report['unplotted']}." if report.get("unplotted") else ""),
        report.get("reason"), ["feature", "drift score"], scored + unscored)


def _skipped(report: dict) -> str:
    skipped = report.get("skipped_lines")
    return "" if not skipped else (f" {skipped['count']} log line(s) that were not JSON (cut short) skipped, "
                                   f"the first at {skipped['first']}.")


def _window(report: dict) -> str:
    hours = report.get("window_hours")
    return "" if hours is None else f" (the last {hours:g} h)"
