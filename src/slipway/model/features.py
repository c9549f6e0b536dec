"""Derived features of the example model, defined once.

Training (the ``featurize`` stage) and serving both call :func:`slipway.featureset.FeatureSpec`
``.transform``, which computes the features listed in ``params.yaml`` (``featurize.derived``)
from this table. Each entry names the raw columns it needs, so the server knows which inputs a
request must carry. A team adds, edits or removes entries here; ``featurize.derived: []`` uses
the raw columns only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class DerivedFeature:
    inputs: tuple[str, ...]
    compute: Callable[[pd.DataFrame], pd.Series]
    description: str


def _charges_ratio(df: pd.DataFrame) -> pd.Series:
    expected = df["monthly_charges"] * df["tenure_months"]
    return (df["total_charges"] / expected.where(expected > 0)).astype("float64")


DERIVED_FEATURES: dict[str, DerivedFeature] = {
    "tenure_years": DerivedFeature(
        ("tenure_months",),
        lambda df: (df["tenure_months"] / 12.0).astype("float64"),
        "tenure in years",
    ),
    "charges_ratio": DerivedFeature(
        ("total_charges", "monthly_charges", "tenure_months"),
        _charges_ratio,
        "billed total over monthly charge times tenure (discounts, missed bills)",
    ),
    "support_calls_per_product": DerivedFeature(
        ("num_support_calls", "num_products"),
        lambda df: (df["num_support_calls"] / np.maximum(df["num_products"], 1)).astype("float64"),
        "support calls per product held",
    ),
}
