"""Offline drift: the server's sampled prediction log against the training data (deepchecks).

Reads JSON lines written with ``SLIPWAY_PREDICTION_LOG`` (one object per row: ``inputs``,
``prediction``, ``probabilities``), compares each input feature with the training split using
deepchecks' feature drift, and reports the worst score against ``params.yaml``'s ``drift`` limits.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from slipway.errors import DataError
from slipway.featureset import FeatureSpec, category_labels
from slipway.monitoring import verdicts
from slipway.monitoring.verdicts import FAIL, INCONCLUSIVE, PASS
from slipway.params import is_number, lookup


def read_prediction_log(path: Path) -> pd.DataFrame:
    """Every ``*.jsonl`` under ``path`` (or the file itself), one row per logged prediction."""
    files = sorted(path.rglob("*.jsonl")) if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        raise DataError(f"{path}: no prediction log (*.jsonl) found")
    rows = []
    for file in files:
        for number, line in enumerate(file.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line)["inputs"])
            except (ValueError, KeyError, TypeError) as exc:
                raise DataError(f"{file}:{number}: not a prediction log line ({exc})") from None
    return pd.DataFrame(rows)


# deepchecks scores a feature only from this many values on each side (nulls do not count).
MIN_VALUES = 10


def served_inputs(served: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """The logged inputs as the model reads them (numbers as floats, ``None`` as NaN). A value the
    server would have refused means the log is not this model's: every such input is named."""
    missing = [c for c in spec.inputs if c not in served.columns]
    if missing:
        raise DataError(f"prediction log lacks inputs {missing}")
    frame = served[spec.inputs].copy()
    problems = []
    for name in spec.inputs:
        values = frame[name]
        if values.dtype != object:
            continue
        present = values[values.notna()]
        if name in spec.categorical:
            bad = present[~present.map(lambda v: isinstance(v, str | bool | int | float))]
        else:
            bad = present[~present.map(is_number)]
        if len(bad):
            problems.append(f"{name}: {len(bad)} value(s) like {bad.iloc[0]!r}, not "
                            f"{'a category' if name in spec.categorical else 'a number'}")
        elif name not in spec.categorical:
            frame[name] = values.astype(float)
    if problems:
        raise DataError("prediction log holds values this model's server refuses (is it another model's log?): "
                        + "; ".join(problems))
    return frame


def analyse(reference: pd.DataFrame, served: pd.DataFrame, spec: FeatureSpec,
            params: dict[str, Any]) -> tuple[dict, Any]:
    from deepchecks.tabular import Dataset
    from deepchecks.tabular.checks import FeatureDrift

    limit = lookup(params, "drift.max_feature_drift", float)
    min_rows = lookup(params, "drift.min_rows", int, minimum=1)
    size = lookup(params, "drift.sample_size", int, minimum=100)
    seed = lookup(params, "drift.seed", int)
    served = served_inputs(served, spec)
    report = {"rows": {"reference": len(reference), "served": len(served)}, "threshold": limit}
    if len(served) < min_rows:
        report.update(verdict=INCONCLUSIVE, reason=f"{len(served)} logged rows, fewer than {min_rows}",
                      features={})
        return report, None

    def sampled(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame if len(frame) <= size else frame.sample(n=size, random_state=seed)
        frame = frame[spec.inputs].reset_index(drop=True)
        # Both sides as the model's category labels: the training data holds a boolean column as
        # booleans, the log holds what clients sent (true or "True"); unlabelled, they differ.
        return frame.assign(**{name: category_labels(frame[name]) for name in spec.categorical})

    train_side, served_side = sampled(reference), sampled(served)
    # A feature served (almost) only as null has drifted as far as it can: an upstream stopped
    # sending it. deepchecks cannot score it, so it scores 1 here and the report says why.
    served_values, train_values = served_side.notna().sum(), train_side.notna().sum()
    unserved = {name: int(served_values[name]) for name in spec.inputs
                if served_values[name] < MIN_VALUES <= train_values[name]}
    # A feature (almost) always null in training has no reference to compare with: named, unscored.
    unscored = {name: int(train_values[name]) for name in spec.inputs if train_values[name] < MIN_VALUES}
    compared = [n for n in spec.inputs if n not in unserved and n not in unscored]
    categorical = [n for n in compared if n in spec.categorical]
    result = FeatureDrift().run(Dataset(train_side[compared], cat_features=categorical),
                                Dataset(served_side[compared], cat_features=categorical)) if compared else None
    scores = {name: round(float(v["Drift score"]), 6) for name, v in (result.value if result else {}).items()}
    scores.update(dict.fromkeys(unserved, 1.0))
    drifted = sorted((n for n, s in scores.items() if s > limit), key=lambda n: -scores[n])
    report.update(verdict=FAIL if drifted else PASS if scores else INCONCLUSIVE, features=scores, drifted=drifted,
                  unserved={n: f"{count} of {len(served_side)} sampled rows have a value"
                            for n, count in unserved.items()},
                  unscored={n: f"{count} of {len(train_side)} sampled training rows have a value"
                            for n, count in unscored.items()})
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
        f"{report['rows']['served']} logged rows against {report['rows']['reference']} training rows; "
        f"a feature drifts above {report['threshold']:g}.",
        report.get("reason"), ["feature", "drift score"], scored + unscored)
