"""The estimator factory: which model to fit, from ``params.yaml``'s ``train`` section.

``hist_gradient_boosting`` (the default) takes the categorical columns natively. The other
choices one-hot encode them. A team may add its own entry; the trusted types for loading it back
are listed in :mod:`slipway.bundle`.
"""

from __future__ import annotations

from typing import Any

from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from slipway.errors import ParamsError
from slipway.featureset import FeatureSpec

ESTIMATORS = ("hist_gradient_boosting", "logistic_regression", "random_forest")


def _one_hot(spec: FeatureSpec, scale: bool) -> ColumnTransformer:
    numeric = [c for c in spec.columns if c not in spec.categorical]
    numeric_steps = [SimpleImputer(strategy="median")] + ([StandardScaler()] if scale else [])
    return ColumnTransformer(
        [
            ("numeric", make_pipeline(*numeric_steps), numeric),
            (
                "categorical",
                OneHotEncoder(
                    categories=[spec.categorical[c] for c in spec.categorical],
                    handle_unknown="ignore",
                ),
                list(spec.categorical),
            ),
        ]
    )


# Arguments the factory sets itself, and from what: a hyperparameter may not set them again.
SET_BY_THE_FACTORY = {"random_state": "train.seed",
                      "categorical_features": "the feature spec (data.categorical_features)"}


def make_estimator(name: str, hyperparameters: dict[str, Any], seed: int, spec: FeatureSpec):
    clashes = sorted(set(hyperparameters) & set(SET_BY_THE_FACTORY))
    if clashes:
        raise ParamsError("params: train.hyperparameters: remove " + ", ".join(
            f"{key} (set by {SET_BY_THE_FACTORY[key]})" for key in clashes))
    try:
        if name == "hist_gradient_boosting":
            return HistGradientBoostingClassifier(
                categorical_features="from_dtype", random_state=seed, **hyperparameters
            )
        if name == "logistic_regression":
            return Pipeline(
                [("encode", _one_hot(spec, scale=True)),
                 ("model", LogisticRegression(random_state=seed, **hyperparameters))]
            )
        if name == "random_forest":
            return Pipeline(
                [("encode", _one_hot(spec, scale=False)),
                 ("model", RandomForestClassifier(random_state=seed, **hyperparameters))]
            )
    except TypeError as exc:  # an unknown hyperparameter name
        raise ParamsError(f"params: train.hyperparameters: {exc}") from None
    raise ParamsError(f"params: train.estimator must be one of {', '.join(ESTIMATORS)}, got {name!r}")
