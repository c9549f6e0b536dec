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
from slipway.params import lookup


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


def analyse(reference: pd.DataFrame, served: pd.DataFrame, spec: FeatureSpec,
            params: dict[str, Any]) -> tuple[dict, Any]:
    from deepchecks.tabular import Dataset
    from deepchecks.tabular.checks import FeatureDrift

    limit = lookup(params, "drift.max_feature_drift", float)
    min_rows = lookup(params, "drift.min_rows", int, minimum=1)
    size = lookup(params, "drift.sample_size", int, minimum=100)
    seed = lookup(params, "drift.seed", int)
    missing = [c for c in spec.inputs if c not in served.columns]
    if missing:
        raise DataError(f"prediction log lacks inputs {missing}")
    report = {"rows": {"reference": len(reference), "served": len(served)}, "threshold": limit}
    if len(served) < min_rows:
        report.update(verdict=INCONCLUSIVE, reason=f"{len(served)} logged rows, fewer than {min_rows}",
                      features={})
        return report, None
    categorical = list(spec.categorical)

    def dataset(frame: pd.DataFrame) -> Dataset:
        frame = frame if len(frame) <= size else frame.sample(n=size, random_state=seed)
        frame = frame[spec.inputs].reset_index(drop=True)
        # Both sides as the model's category labels: the training data holds a boolean column as
        # booleans, the log holds what clients sent (true or "True"); unlabelled, they differ.
        return Dataset(frame.assign(**{name: category_labels(frame[name]) for name in categorical}),
                       cat_features=categorical)

    result = FeatureDrift().run(dataset(reference), dataset(served))
    scores = {name: round(float(v["Drift score"]), 6) for name, v in result.value.items()}
    drifted = sorted((n for n, s in scores.items() if s > limit), key=lambda n: -scores[n])
    report.update(verdict=FAIL if drifted else PASS, features=scores, drifted=drifted)
    return report, result


def markdown(report: dict) -> str:
    drifted = report.get("drifted", [])
    return verdicts.markdown(
        "Drift", report["verdict"],
        f"{report['rows']['served']} logged rows against {report['rows']['reference']} training rows; "
        f"a feature drifts above {report['threshold']:g}.",
        report.get("reason"), ["feature", "drift score"],
        [[f"{n}{' ⚠️' if n in drifted else ''}", f"{s:.3f}"]
         for n, s in sorted(report["features"].items(), key=lambda t: -t[1])])
