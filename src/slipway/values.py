"""How values are read: what counts as a number (validate's rules, featurize's numeric features) and
what a text value is once read (ingest's training data and the server's requests alike)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.api import types as ptypes


def trimmed(text: str) -> str | None:
    """``text`` without surrounding spaces, ``None`` (missing) if it is spaces only: training reads
    every text value so (``ingest``), and the server reads a request's categories the same way."""
    return text.strip() or None


def as_numbers(values: pd.Series) -> pd.Series:
    """``values`` as floats, NaN where a value is missing or not a number. Numbers stored as text (a
    Parquet string column, ``"12.5"``, ``"inf"``) are numbers, as :meth:`FeatureSpec.transform`
    reads them; booleans and dates are not."""
    if ptypes.is_numeric_dtype(values) and not ptypes.is_bool_dtype(values):
        return values.astype("float64")
    if not (ptypes.is_object_dtype(values) or ptypes.is_string_dtype(values)
            or isinstance(values.dtype, pd.CategoricalDtype)):
        return pd.Series(np.nan, index=values.index)
    objects = values.astype(object)
    flags = objects.map(lambda v: isinstance(v, bool | np.bool_))
    return pd.to_numeric(objects.where(~flags), errors="coerce").astype("float64")


def decimal_comma_numbers(values: pd.Series) -> bool:
    """Whether ``values`` are numbers written as text with a decimal comma (``"17,99"``): a European
    export read without ``data.decimal: ","``, which featurize would otherwise take for categories."""
    present = values.dropna()
    if present.empty or ptypes.is_numeric_dtype(present) or ptypes.is_bool_dtype(present):
        return False
    text = present.astype(str)
    # A decimal point anywhere means another convention (or a typo, 12,50 among 12.5s): no advice.
    return bool(text.str.contains(",", regex=False).any()) and not text.str.contains(".", regex=False).any() \
        and bool(np.isfinite(as_numbers(text.str.replace(",", ".", regex=False))).all())
