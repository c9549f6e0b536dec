"""The estimator factory: which model to fit, from ``params.yaml``'s ``train`` section.

``hist_gradient_boosting`` (the default) takes the categorical columns natively. The other
choices one-hot encode them. A team may add its own entry to :data:`ESTIMATORS`; the trusted types
for loading it back are listed in :mod:`slipway.bundle`.
"""

from __future__ import annotations

import inspect
from typing import Any

from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from slipway.errors import ParamsError
from slipway.featureset import FeatureSpec
from slipway.params import nearest

# Each choice of train.estimator: the scikit-learn class, whether categorical columns reach it
# one-hot encoded (else it takes them natively), and whether numeric columns are scaled.
ESTIMATORS = {
    "hist_gradient_boosting": (HistGradientBoostingClassifier, False, False),
    "logistic_regression": (LogisticRegression, True, True),
    "random_forest": (RandomForestClassifier, True, False),
}


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


def _check_hyperparameters(estimator_class: type, hyperparameters: dict[str, Any]) -> None:
    """Every name one the estimator takes (a misspelt one named with the nearest it does take); and
    no boolean where the estimator's default is a number: scikit-learn takes ``true`` as the number 1
    (``max_iter: yes`` would fit one tree)."""
    defaults = inspect.signature(estimator_class).parameters
    # An estimator that takes **kwargs (LightGBM's passes them on to its core) takes any name.
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in defaults.values())
    unknown = [] if takes_any else [key for key in hyperparameters if key not in defaults]
    if unknown:
        raise ParamsError("params: train.hyperparameters: " + "; ".join(
            f"{estimator_class.__name__} takes no {key}{nearest(key, defaults)}" for key in unknown))
    for key, value in hyperparameters.items():
        default = defaults[key].default if key in defaults else None
        if isinstance(value, bool) and isinstance(default, int | float) and not isinstance(default, bool):
            raise ParamsError(f"params: train.hyperparameters.{key}: {str(value).lower()} is a boolean, where "
                              f"{estimator_class.__name__} takes a number (default {default})")


def make_estimator(name: str, hyperparameters: dict[str, Any], seed: int, spec: FeatureSpec):
    if name not in ESTIMATORS:
        raise ParamsError(f"params: train.estimator must be one of {', '.join(ESTIMATORS)}, got {name!r}")
    clashes = sorted(set(hyperparameters) & set(SET_BY_THE_FACTORY))
    if clashes:
        raise ParamsError("params: train.hyperparameters: remove " + ", ".join(
            f"{key} (set by {SET_BY_THE_FACTORY[key]})" for key in clashes))
    estimator_class, one_hot, scale = ESTIMATORS[name]
    _check_hyperparameters(estimator_class, hyperparameters)
    if not one_hot:
        return estimator_class(categorical_features="from_dtype", random_state=seed, **hyperparameters)
    return Pipeline([("encode", _one_hot(spec, scale)),
                     ("model", estimator_class(random_state=seed, **hyperparameters))])
