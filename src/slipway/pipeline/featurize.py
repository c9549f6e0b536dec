"""featurize: infer the feature spec from the training split and compute the model's inputs.

The spec (``data/features/spec.json``) and :meth:`FeatureSpec.transform` are what the server
uses too, so a feature is computed the same way in training and in serving.
"""

from __future__ import annotations

import sys
from typing import Any

import pandas as pd

from slipway import io
from slipway.featureset import FeatureSpec, infer_spec
from slipway.params import column_list, key_columns, lookup, number_format
from slipway.pipeline import paths


def build_spec(train: pd.DataFrame, params: dict[str, Any]) -> FeatureSpec:
    return infer_spec(
        train,
        exclude=key_columns(params),
        drop=lookup(params, "data.drop_columns", list, []),
        numeric=column_list(params, "data.numeric_features"),
        categorical=column_list(params, "data.categorical_features"),
        derived=lookup(params, "featurize.derived", list, []),
        max_categories=lookup(params, "featurize.max_categories", int, 250, minimum=2),
        missing_values=lookup(params, "data.na_values", list, []),
        number_format=number_format(params),
        id_column=lookup(params, "data.id_column", (str, type(None)), None),
        target=lookup(params, "data.target", str),
        time_format=lookup(params, "data.timestamp_format", (str, type(None)), None),
    )


# Rows looked at before a whole column is compared with its first value: most columns differ within them.
PROBE_ROWS = 1000


def single_valued(train: pd.DataFrame, spec: FeatureSpec) -> dict[str, Any]:
    """Features that hold one value in every training row, with that value: the model learns nothing
    from them, yet every request must send them. (One value beside missing ones is two: the model
    can branch on missing.)"""
    found = {}
    for name in [*spec.numeric, *spec.categorical]:
        values = train[name]
        first = values.iloc[0]
        if not pd.isna(first) and (values.head(PROBE_ROWS) == first).all() and (values == first).all():
            found[name] = first.item() if hasattr(first, "item") else first
    return found


def featurize(raw: pd.DataFrame, spec: FeatureSpec, keys: list[str]) -> pd.DataFrame:
    features = spec.transform(raw)
    return pd.concat([features, raw[keys]], axis=1)


def main(params: dict[str, Any]) -> None:
    train = io.read_parquet(paths.TRAIN_RAW)
    test = io.read_parquet(paths.TEST_RAW)
    spec = build_spec(train, params)
    if constant := single_valued(train, spec):
        print(f"featurize: warning: {', '.join(f'{n!r} is {v!r}' for n, v in constant.items())} in all {len(train)} "
              "training rows: the model learns nothing from such a feature, yet every request must send it; leave "
              "it out (data.drop_columns) unless later data varies", file=sys.stderr)
    keys = key_columns(params)
    with io.together():
        io.write_parquet(paths.TRAIN_FEATURES, featurize(train, spec, keys))
        io.write_parquet(paths.TEST_FEATURES, featurize(test, spec, keys))
        io.write_json(paths.FEATURE_SPEC, spec.to_dict())
    print(f"featurize: {len(spec.columns)} features "
          f"({len(spec.numeric)} numeric, {len(spec.derived)} derived, {len(spec.categorical)} categorical)")
