import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from slipway.featureset import FeatureSpec
from slipway.inference import TOLERANCE, OnnxPredictor, export_onnx, max_difference


def fitted(classes: int, categorical: bool, seed: int = 0, **hyperparameters):
    """A model on numeric and (optionally) categorical columns with missing values in both; the
    spec knows one category the estimator never saw ("w")."""
    rng = np.random.default_rng(seed)
    n = 3000
    a = rng.normal(size=n)
    a[rng.random(n) < 0.1] = np.nan
    b = rng.uniform(0, 10, n)
    frame = pd.DataFrame({"a": a, "b": b})
    score = np.nan_to_num(a) + b / 5
    categorical_features = {}
    if categorical:
        colour = rng.choice(["red", "green", "blue", "cyan", "plum"], n).astype(object)
        colour[rng.random(n) < 0.05] = None
        # The estimator's categories lack "w"; the spec's codes agree on the others.
        frame["colour"] = pd.Categorical(colour, categories=["blue", "cyan", "green", "plum", "red"])
        score = score + np.isin(colour, ["red", "plum"]) * 1.5
        categorical_features = {"colour": ["blue", "cyan", "green", "plum", "red", "w"]}
    target = np.digitize(score + rng.normal(scale=0.5, size=n),
                         np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1]))
    spec = FeatureSpec(numeric=["a", "b"], categorical=categorical_features)
    estimator = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=seed,
                                               max_iter=60, **hyperparameters).fit(frame, target)
    return estimator, spec, spec.frame_matrix(frame)


@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("categorical", [True, False])
def test_onnx_gives_scikit_learns_probabilities(classes, categorical):
    estimator, spec, matrix = fitted(classes, categorical)
    predictor = OnnxPredictor(export_onnx(estimator, spec))
    assert max_difference(predictor, estimator, spec, matrix) <= TOLERANCE
    assert predictor.predict_proba(matrix[:1]).shape == (1, classes)


def test_missing_unknown_and_unseen_categories_follow_scikit_learn():
    estimator, spec, matrix = fitted(2, categorical=True)
    rows = matrix[:40].copy()
    rows[:10, 2] = np.nan  # missing category
    rows[10:20, 2] = spec.categorical["colour"].index("w")  # known to the spec, never seen in training
    rows[20:30, 0] = np.nan  # missing number
    predictor = OnnxPredictor(export_onnx(estimator, spec))
    reference = estimator.predict_proba(spec.frame(rows))
    np.testing.assert_allclose(predictor.predict_proba(rows), reference, atol=TOLERANCE, rtol=0)
    # "w" is treated as missing, exactly as scikit-learn treats an unknown category
    missing = rows[10:20].copy()
    missing[:, 2] = np.nan
    np.testing.assert_allclose(predictor.predict_proba(rows[10:20]), predictor.predict_proba(missing))


def test_a_single_leaf_tree_is_exported():
    estimator, spec, matrix = fitted(2, categorical=False, max_depth=2, min_samples_leaf=2000)
    assert any(p.nodes["is_leaf"][0] for iteration in estimator._predictors for p in iteration)
    assert max_difference(OnnxPredictor(export_onnx(estimator, spec)), estimator, spec, matrix) <= TOLERANCE


def test_other_estimators_are_left_to_scikit_learn():
    spec = FeatureSpec(numeric=["a"], categorical={})
    estimator = LogisticRegression().fit(pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]}), [0, 0, 1, 1])
    assert export_onnx(estimator, spec) is None


def test_onnxruntime_writes_nothing_to_home_and_sends_no_telemetry(tmp_path):
    """onnxruntime's telemetry (a device id under $HOME/.cache, uploads to Microsoft) stays off:
    the image's root filesystem is read-only and its NetworkPolicy allows no egress."""
    estimator, spec, matrix = fitted(2, categorical=True)
    (tmp_path / "model.onnx").write_bytes(export_onnx(estimator, spec))
    home = tmp_path / "home"
    home.mkdir()
    probe = ("import numpy as np; from slipway.inference import OnnxPredictor; "
             f"p = OnnxPredictor(open({str(tmp_path / 'model.onnx')!r}, 'rb').read()); "
             f"print(p.predict_proba(np.zeros((1, {matrix.shape[1]}))).shape)")
    environment = {k: v for k, v in os.environ.items() if k not in ("ORT_DISABLE_TELEMETRY", "XDG_CACHE_HOME")}
    result = subprocess.run([sys.executable, "-c", probe], env={**environment, "HOME": str(home)},
                            capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "(1, 2)"
    assert list(home.rglob("*")) == []
