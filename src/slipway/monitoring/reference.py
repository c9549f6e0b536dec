"""Per-feature reference distributions from the training data, stored in ``model.json``.

Numeric features get decile bin edges; categorical ones their categories. The server counts live
values into the same bins (one Prometheus counter per feature and bin), so drift (PSI) can be
computed in PromQL against these reference fractions, and offline by ``slipway drift``. Both
sides bin the model's input matrix (:meth:`FeatureSpec.matrix`, categories as codes) with the
same function.
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


def bin_index(entry: dict, column: np.ndarray, edges: np.ndarray | None = None) -> np.ndarray:
    """The bin of :func:`bin_labels` each value falls in. Categorical values are codes."""
    missing = np.isnan(column)
    if entry["kind"] == "categorical":
        return np.where(missing, len(entry["categories"]), np.where(missing, 0, column)).astype(np.intp)
    edges = np.asarray(entry["edges"], dtype="float64") if edges is None else edges
    return np.where(missing, len(edges) + 1, np.searchsorted(edges, column, side="left"))


def bin_counts(entry: dict, column: np.ndarray) -> np.ndarray:
    return np.bincount(bin_index(entry, column), minlength=len(bin_labels(entry)))


class Binner:
    """Bins a model input matrix column by column against a reference; set up once per model."""

    def __init__(self, reference: dict[str, dict], columns: list[str]):
        self.features = [(name, j, reference[name], np.asarray(reference[name].get("edges", []), "float64"),
                          len(bin_labels(reference[name])))
                         for j, name in enumerate(columns) if name in reference]

    def counts(self, matrix: np.ndarray) -> dict[str, np.ndarray]:
        return {name: np.bincount(bin_index(entry, matrix[:, j], edges), minlength=n)
                for name, j, entry, edges, n in self.features}


def _entry(column: np.ndarray, categories: list[str] | None) -> dict:
    if categories is not None:
        entry = {"kind": "categorical", "categories": list(categories)}
    else:
        values = column[~np.isnan(column)]
        quantiles = np.quantile(values, np.linspace(0, 1, N_QUANTILE_BINS + 1)[1:-1]) if len(values) else []
        entry = {"kind": "numeric", "edges": [float(e) for e in np.unique(quantiles)]}
    counts = bin_counts(entry, column)
    entry["fractions"] = [round(float(c) / max(len(column), 1), 6) for c in counts]
    return entry


def build_reference(features: pd.DataFrame, spec: FeatureSpec) -> dict[str, dict]:
    """``{feature: {"kind", "edges"|"categories", "fractions"}}`` for every model column."""
    matrix = spec.frame_matrix(features)
    return {name: _entry(matrix[:, j], spec.categorical.get(name))
            for j, name in enumerate(spec.columns)}
