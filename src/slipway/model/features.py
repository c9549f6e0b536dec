"""Derived features of the example model, defined once.

Training (the ``featurize`` stage) and serving both compute them through
:class:`slipway.featureset.FeatureSpec`, from this table. Each entry names the raw columns it
reads; ``compute`` gets those columns as numpy arrays (numbers as float64 with NaN for missing,
categories as objects, and a column of dates, such as ``data.timestamp_column``, as float64 seconds
since 1970-01-01 UTC, which a request sends as ISO 8601 text or epoch time) and returns one float
array, the same way for a million training rows and for one request. An entry may read any column
of the data but the target. A team adds, edits or removes entries here; ``featurize.derived: []`` uses the
raw columns only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

Columns = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class DerivedFeature:
    inputs: tuple[str, ...]
    compute: Callable[[Columns], np.ndarray]
    description: str


def _charges_ratio(cols: Columns) -> np.ndarray:
    expected = cols["monthly_charges"] * cols["tenure_months"]
    ratio = np.full(expected.shape, np.nan)
    np.divide(cols["total_charges"], expected, out=ratio, where=expected > 0)
    return ratio


DERIVED_FEATURES: dict[str, DerivedFeature] = {
    "tenure_years": DerivedFeature(
        ("tenure_months",),
        lambda cols: cols["tenure_months"] / 12.0,
        "tenure in years",
    ),
    "charges_ratio": DerivedFeature(
        ("total_charges", "monthly_charges", "tenure_months"),
        _charges_ratio,
        "billed total over monthly charge times tenure (discounts, missed bills)",
    ),
    "support_calls_per_product": DerivedFeature(
        ("num_support_calls", "num_products"),
        lambda cols: cols["num_support_calls"] / np.maximum(cols["num_products"], 1),
        "support calls per product held",
    ),
}
