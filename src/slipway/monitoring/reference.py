"""Per-feature reference distributions from the training data, stored in ``model.json``.

Numeric features get decile bin edges; categorical ones their categories. The server counts live
values into the same bins (one Prometheus counter per feature and bin), so drift (PSI) can be
computed in PromQL against these reference fractions, and offline by ``slipway drift``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from slipway.featureset import FeatureSpec

MISSING_BIN = "missing"
N_QUANTILE_BINS = 10


def bin_labels(entry: dict) -> list[str]:
    """Bin names in the order of ``fractions``: ``le_<edge>``... then ``gt_<last>``, ``missing``."""
    if entry["kind"] == "categorical":
        return list(entry["categories"]) + [MISSING_BIN]
    edges = entry["edges"]
    return [f"le_{e:.6g}" for e in edges] + [f"gt_{edges[-1]:.6g}" if edges else "all", MISSING_BIN]


def bin_index(entry: dict, values: pd.Series) -> np.ndarray:
    """Index into :func:`bin_labels` for each value (categorical values as model categories)."""
    if entry["kind"] == "categorical":
        codes = pd.Categorical(values, categories=entry["categories"]).codes.astype(np.int64)
        return np.where(codes < 0, len(entry["categories"]), codes)
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
    edges = np.asarray(entry["edges"], dtype="float64")
    index = np.searchsorted(edges, numbers, side="left")
    return np.where(np.isnan(numbers), len(edges) + 1, index)


def _entry(series: pd.Series, categorical: list[str] | None) -> dict:
    if categorical is not None:
        entry = {"kind": "categorical", "categories": list(categorical)}
    else:
        values = series.dropna().to_numpy(dtype="float64")
        quantiles = np.quantile(values, np.linspace(0, 1, N_QUANTILE_BINS + 1)[1:-1]) if len(values) else []
        entry = {"kind": "numeric", "edges": [float(e) for e in np.unique(quantiles)]}
    counts = np.bincount(bin_index(entry, series), minlength=len(bin_labels(entry)))
    entry["fractions"] = [round(float(c) / max(len(series), 1), 6) for c in counts]
    return entry


def build_reference(features: pd.DataFrame, spec: FeatureSpec) -> dict[str, dict]:
    """``{feature: {"kind", "edges"|"categories", "fractions"}}`` for every model column."""
    return {
        name: _entry(features[name], spec.categorical.get(name))
        for name in spec.columns
    }
