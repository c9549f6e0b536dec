"""Offline drift (deepchecks) of the prediction log against the training data."""

import numpy as np
import pandas as pd
import pytest

from slipway.featureset import FeatureSpec
from slipway.monitoring import drift
from slipway.monitoring.verdicts import FAIL, PASS

SPEC = FeatureSpec(["x"], {"organic": ["False", "True"], "grade": ["1", "2", "3"]})


def frame(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(shift, 1.0, rows), "organic": rng.random(rows) < 0.3,
                         "grade": rng.integers(1, 4, rows)})


@pytest.mark.parametrize("sent", ["json values", "labels"])
def test_boolean_and_integer_categories_compare_as_the_model_labels_them(repo_params, sent):
    """Training holds booleans and integers; clients send true or "True", 2 or "2"."""
    served = frame(1000, seed=2)
    if sent == "labels":
        served = served.astype({"organic": str, "grade": str})
    report, _ = drift.analyse(frame(3000, seed=1), served, SPEC, repo_params)
    assert report["verdict"] == PASS, report
    assert report["features"]["organic"] < 0.05 and report["features"]["grade"] < 0.05


def test_a_shifted_feature_drifts(repo_params):
    report, _ = drift.analyse(frame(3000, seed=1), frame(1000, seed=2, shift=1.5), SPEC, repo_params)
    assert report["verdict"] == FAIL and report["drifted"] == ["x"]
