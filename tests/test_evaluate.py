import json

import numpy as np
import pandas as pd
import pytest

from slipway import bundle
from slipway.errors import ParamsError
from slipway.featureset import FeatureSpec
from slipway.pipeline import evaluate, featurize, paths, train
from tests.conftest import build_bundle


def test_binary_scores():
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.2, 0.8]])
    result = evaluate.score(y, proba, [0, 1], 1)
    assert result["accuracy"] == 0.75 and result["roc_auc"] == 1.0
    assert result["f1"] == pytest.approx(0.8)
    assert result["per_class"]["1"] == {"precision": 2 / 3, "recall": 1.0, "f1": pytest.approx(0.8), "support": 2}


def test_multiclass_string_labels_and_a_missing_class():
    y = np.array(["a", "b", "c", "a"], dtype=object)
    proba = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.3, 0.6, 0.1]])
    result = evaluate.score(y, proba, ["a", "b", "c"], None)
    assert result["accuracy"] == 0.75 and result["roc_auc"] == pytest.approx(1.0)
    assert set(result["per_class"]) == {"a", "b", "c"}
    only_a = evaluate.score(np.array(["a", "a"], dtype=object), proba[:2], ["a", "b", "c"], None)
    assert only_a["roc_auc"] is None


def test_a_positive_class_that_sorts_first_is_the_one_scored():
    """Labels "churn" and "stay": the positive class is "churn", column 0. Scored as the last
    column, F1 would be the majority class's."""
    y = np.array(["stay"] * 6 + ["churn"] * 2, dtype=object)
    proba = np.array([[0.1, 0.9]] * 5 + [[0.7, 0.3]] + [[0.8, 0.2], [0.4, 0.6]])
    result = evaluate.score(y, proba, ["churn", "stay"], 0)
    assert result["f1"] == pytest.approx(result["per_class"]["churn"]["f1"]) == pytest.approx(0.5)
    assert result["roc_auc"] == pytest.approx(evaluate.skm.roc_auc_score(y == "churn", proba[:, 0]))
    roc = evaluate.curves(y, proba, ["churn", "stay"], 0)["roc"]
    assert {point["class"] for point in roc} == {"churn"}


def test_curves_are_resampled_per_class():
    y = np.array([0, 1, 0, 1, 1])
    proba = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.45, 0.55], [0.1, 0.9]])
    curves = evaluate.curves(y, proba, [0, 1], 1)
    assert len(curves["roc"]) == evaluate.CURVE_POINTS
    assert curves["roc"][-1] == {"class": "1", "fpr": 1.0, "tpr": 1.0}
    table = evaluate.confusion_rows(y, proba, [0, 1])
    assert table.to_dict("list") == {"actual": ["0", "1", "0", "1", "1"], "predicted": ["0", "1", "0", "1", "1"]}


def train_in_workdir(churn, params) -> FeatureSpec:
    """The features (the first 900 rows train, the rest test) and a bundle trained on them, in the
    working directory, as the stages before evaluate leave them."""
    spec = featurize.build_spec(churn, params)
    keys = featurize.key_columns(params)
    paths.FEATURES.mkdir(parents=True)
    featurize.featurize(churn.iloc[:900], spec, keys).to_parquet(paths.TRAIN_FEATURES)
    featurize.featurize(churn.iloc[900:], spec, keys).to_parquet(paths.TEST_FEATURES)
    paths.FEATURE_SPEC.write_text(json.dumps(spec.to_dict()))
    train.main(params)
    return spec


def test_main_writes_metrics_and_plots(workdir, churn, params):
    params["train"]["hyperparameters"]["max_iter"] = 30
    params["evaluate"]["importance_sample"] = 200
    spec = train_in_workdir(churn, params)
    evaluate.main(params)
    metrics = json.loads(paths.METRICS.read_text())
    assert metrics["rows"] == len(churn) - 900
    assert metrics["model_version"] == bundle.load_metadata("models")["model_version"]
    assert 0.6 < metrics["roc_auc"] <= 1.0
    importance = json.loads((paths.PLOTS / "importance.json").read_text())
    assert {row["feature"] for row in importance} == set(spec.columns)
    assert len(pd.read_csv(paths.PLOTS / "confusion.csv")) == metrics["rows"]


def test_a_bad_setting_is_refused_before_any_output_is_written(workdir, churn, params):
    params["train"]["hyperparameters"]["max_iter"] = 10
    train_in_workdir(churn, params)
    params["evaluate"]["seed"] = -1
    with pytest.raises(ParamsError, match="^params: evaluate.seed must be >= 0, got -1$"):
        evaluate.main(params)
    assert not paths.METRICS.exists() and not paths.PLOTS.exists()


def test_permutation_importance_ranks_the_informative_column_first():
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(400, 3))
    y = (matrix[:, 0] > 0).astype(int)

    def predict(m: np.ndarray) -> np.ndarray:  # the model looks at column 0 only
        p = 1 / (1 + np.exp(-4 * m[:, 0]))
        return np.column_stack([1 - p, p])

    ranked = evaluate.importances(predict, matrix, y, [0, 1], 1, ["signal", "noise", "other"], 300, 1)
    assert ranked[0]["feature"] == "signal" and ranked[0]["importance"] > 0.3
    assert {r["feature"]: r["importance"] for r in ranked[1:]} == {"noise": 0.0, "other": 0.0}
    assert ranked == evaluate.importances(predict, matrix, y, [0, 1], 1, ["signal", "noise", "other"], 300, 1)


def test_multiclass_permutation_importance_uses_accuracy():
    matrix = np.repeat(np.arange(3.0), 20)[:, None]
    labels = np.array(["a", "b", "c"], dtype=object)[matrix[:, 0].astype(int)]
    ranked = evaluate.importances(lambda m: np.eye(3)[m[:, 0].astype(int)], matrix, labels,
                                  ["a", "b", "c"], None, ["code"], 60, 0)
    assert 0.4 < ranked[0]["importance"] <= 1.0  # accuracy 1.0 falls to about a third


@pytest.mark.parametrize(("estimator", "fast"), [("hist_gradient_boosting", True), ("random_forest", True),
                                               ("logistic_regression", True), ("gradient_boosting", False)])
def test_scores_come_from_the_served_path(tmp_path, params, gradient_boosting, estimator, fast):
    """ONNX where the bundle has it (without reading the skops file), else the estimator; both
    give the estimator's probabilities."""
    params["train"]["estimator"] = estimator
    params["train"]["hyperparameters"] = {}
    model_dir = build_bundle(tmp_path, params)
    loaded = bundle.load(model_dir)
    spec = FeatureSpec.from_dict(loaded.metadata["features"])
    matrix = spec.frame_matrix(pd.read_parquet(tmp_path / "data/features/train.parquet").head(300))
    expected = loaded.estimator.predict_proba(spec.frame(matrix))
    assert (model_dir / "model.onnx").exists() is fast
    if fast:
        (model_dir / "model.skops").unlink()
    predict = evaluate.served_predictor(model_dir, loaded.metadata, spec)
    np.testing.assert_allclose(predict(matrix), expected, rtol=0, atol=1e-9)


def test_a_tampered_onnx_model_is_refused(tmp_path, bundle_dir):
    model_dir = tmp_path / "models"
    model_dir.mkdir()
    for name in ("model.json", "model.skops", "model.onnx"):
        (model_dir / name).write_bytes((bundle_dir / name).read_bytes())
    with open(model_dir / "model.onnx", "ab") as handle:
        handle.write(b"x")
    metadata = bundle.load_metadata(model_dir)
    with pytest.raises(bundle.BundleError, match="model.onnx: sha256 .* corrupt or tampered"):
        evaluate.served_predictor(model_dir, metadata, FeatureSpec.from_dict(metadata["features"]))
