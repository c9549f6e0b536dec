"""Per-feature reference distributions from the training data, stored in ``model.json``.

Numeric features get decile bin edges; categorical ones their categories. The server counts live
values into the same bins (one Prometheus counter per feature and bin, see :class:`Binner`), so drift (PSI) can be
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


def bin_edges(entry: dict) -> np.ndarray:
    """The edges a value is counted against: a value's bin is the number of edges below it.
    Numeric features use their deciles; categorical codes 0..n-1 use the half-way points."""
    if entry["kind"] == "categorical":
        return np.arange(len(entry["categories"]) - 1, dtype="float64") + 0.5
    return np.asarray(entry["edges"], dtype="float64")


def bin_index(entry: dict, column: np.ndarray) -> np.ndarray:
    """The bin of :func:`bin_labels` each value falls in; missing values in the last bin."""
    missing = len(bin_labels(entry)) - 1
    return np.where(np.isnan(column), missing, np.searchsorted(bin_edges(entry), column, side="left"))


def bin_counts(entry: dict, column: np.ndarray) -> np.ndarray:
    return np.bincount(bin_index(entry, column), minlength=len(bin_labels(entry)))


class Binner:
    """:func:`bin_index` for every referenced column of a model input matrix at once (the server
    counts each request's values this way), as positions in one flat list of all features' bins:
    ``labels[i]`` is the ``(feature, bin)`` of position ``i``."""

    def __init__(self, reference: dict[str, dict], columns: list[str]):
        names = [name for name in columns if name in reference]
        self.columns = np.array([columns.index(name) for name in names], dtype=np.intp)
        edges = [bin_edges(reference[name]) for name in names]
        # Padding edges are +inf: no value is above them.
        self.edges = np.full((len(names), max([len(e) for e in edges] + [0])), np.inf)
        for row, feature_edges in zip(self.edges, edges, strict=True):
            row[:len(feature_edges)] = feature_edges
        sizes = [len(bin_labels(reference[name])) for name in names]
        self.missing = np.array(sizes, dtype=np.intp) - 1
        self.offsets = np.cumsum([0] + sizes[:-1]).astype(np.intp)
        self.labels = [(name, label) for name in names for label in bin_labels(reference[name])]

    def positions(self, matrix: np.ndarray) -> np.ndarray:
        """``(rows, features)``: each value's position in :attr:`labels`."""
        values = matrix[:, self.columns]
        below = (values[:, :, None] > self.edges).sum(axis=2)
        return np.where(np.isnan(values), self.missing, below) + self.offsets


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
