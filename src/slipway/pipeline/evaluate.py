"""evaluate: test-set metrics to ``reports/metrics.json`` and the data behind ``dvc plots``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from slipway import bundle, io
from slipway.featureset import FeatureSpec
from slipway.inference import OnnxPredictor
from slipway.params import lookup, random_seed
from slipway.pipeline import paths

# The metrics models are ranked by (gate.primary_metric): each is better higher.
PRIMARY_METRICS = ("roc_auc", "accuracy", "f1")
# The gate's floors (metric, gate.<key>): a model under one on the test set is not released, and one
# serving under one (slipway performance) is due for a retrain.
METRIC_FLOORS = (("roc_auc", "min_roc_auc"), ("accuracy", "min_accuracy"), ("f1", "min_f1"))
CURVE_POINTS = 201  # curves are resampled so the plot files stay small at any test-set size
PERMUTATION_REPEATS = 3

Predict = Callable[[np.ndarray], np.ndarray]  # model input matrix -> class probabilities


def served_predictor(model_dir: Path, metadata: dict, spec: FeatureSpec) -> Predict:
    """Class probabilities the way the server computes them: through the bundle's ONNX model
    where it has one (``train`` checked it against scikit-learn), else through the estimator.
    So the metrics are those of what is served, and the ONNX path never loads the skops file."""
    onnx = bundle.load_onnx(model_dir, metadata)
    if onnx is not None:
        return OnnxPredictor(onnx).predict_proba
    estimator = bundle.load(model_dir).estimator
    return lambda matrix: estimator.predict_proba(spec.frame(matrix))


def class_codes(y_true: np.ndarray, classes: list) -> np.ndarray:
    """Each label's index in ``classes`` (-1 for a label the model never saw)."""
    return pd.Categorical(y_true, categories=classes).codes.astype(np.int64)


def score(y_true: np.ndarray, proba: np.ndarray, classes: list, positive: int | None) -> dict[str, Any]:
    """The metrics the gate and ``dvc metrics diff`` read. ``positive``: the binary model's positive
    class, as an index into ``classes`` (:func:`slipway.bundle.positive_index`); ``None`` when
    multiclass (F1 is then the macro average, ROC AUC one-vs-rest).

    Labels are compared as indices into ``classes``, so int and string labels work alike. ROC AUC
    is ``None`` when the test set lacks a class (it is undefined then).
    """
    truth = class_codes(y_true, classes)
    predicted = proba.argmax(axis=1)
    indices = np.arange(len(classes))
    binary = positive is not None
    result = {
        "rows": len(truth),
        "accuracy": float(skm.accuracy_score(truth, predicted)),
        "log_loss": float(skm.log_loss(truth, proba, labels=indices)),
        "f1": float(skm.f1_score(truth, predicted, labels=indices, zero_division=0,
                                 average="binary" if binary else "macro", pos_label=positive if binary else 1)),
        "roc_auc": None,
    }
    if set(np.unique(truth)) == set(indices):
        result["roc_auc"] = float(
            skm.roc_auc_score(truth == positive, proba[:, positive]) if binary
            else skm.roc_auc_score(truth, proba, multi_class="ovr", labels=indices))
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        truth, predicted, labels=indices, zero_division=0)
    result["per_class"] = {
        str(c): {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for c, p, r, f, s in zip(classes, precision, recall, f1, support, strict=True)
    }
    return result


def _resample(x: np.ndarray, y: np.ndarray, grid: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    return np.interp(grid, x[order], y[order])


def curves(y_true: np.ndarray, proba: np.ndarray, classes: list, positive: int | None) -> dict[str, list]:
    """ROC and precision-recall points: the positive class if binary, one-vs-rest if multiclass."""
    grid = np.linspace(0, 1, CURVE_POINTS)
    roc, pr = [], []
    columns = [positive] if positive is not None else range(len(classes))
    for column in columns:
        members = y_true == classes[column]
        if members.all() or not members.any():
            continue
        fpr, tpr, _ = skm.roc_curve(members, proba[:, column])
        precision, recall, _ = skm.precision_recall_curve(members, proba[:, column])
        name = str(classes[column])
        roc += [{"class": name, "fpr": round(float(f), 5), "tpr": round(float(t), 5)}
                for f, t in zip(grid, _resample(fpr, tpr, grid), strict=True)]
        pr += [{"class": name, "recall": round(float(r), 5), "precision": round(float(p), 5)}
               for r, p in zip(grid, _resample(recall, precision, grid), strict=True)]
    return {"roc": roc, "precision_recall": pr}


def confusion_rows(y_true: np.ndarray, proba: np.ndarray, classes: list) -> pd.DataFrame:
    """One row per test example, the shape ``dvc plots``' confusion template counts."""
    predicted = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
    return pd.DataFrame({"actual": pd.Series(y_true).astype(str), "predicted": pd.Series(predicted).astype(str)})


def importances(predict: Predict, matrix: np.ndarray, y_true: np.ndarray, classes: list, positive: int | None,
                columns: list[str], sample: int, seed: int) -> list[dict]:
    """Permutation importance on a seeded sample of the test rows: the mean drop in ROC AUC
    (binary) or accuracy when one column's values are shuffled. (scikit-learn's
    ``permutation_importance`` wants a fitted estimator; this shuffles the served model's input.)"""
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(matrix), size=min(sample, len(matrix)), replace=False)
    matrix, truth = matrix[rows], class_codes(y_true[rows], classes)
    if positive is not None and set(np.unique(truth)) == {0, 1}:
        def quality(m: np.ndarray) -> float:
            return skm.roc_auc_score(truth == positive, predict(m)[:, positive])
    else:
        def quality(m: np.ndarray) -> float:
            return skm.accuracy_score(truth, predict(m).argmax(axis=1))
    baseline = quality(matrix)
    drops = []
    for j in range(matrix.shape[1]):
        shuffled = matrix.copy()
        permuted = []
        for _ in range(PERMUTATION_REPEATS):
            shuffled[:, j] = rng.permutation(matrix[:, j])
            permuted.append(quality(shuffled))
        drops.append(baseline - float(np.mean(permuted)))
    ranked = sorted(zip(columns, drops, strict=True), key=lambda t: -t[1])
    return [{"feature": name, "importance": round(value, 6)} for name, value in ranked]


def main(params: dict[str, Any]) -> None:
    importance_sample = lookup(params, "evaluate.importance_sample", int, minimum=10)
    seed = random_seed(params, "evaluate.seed")
    metadata = bundle.load_metadata(paths.MODELS)
    spec = FeatureSpec.from_dict(metadata["features"])
    predict = served_predictor(paths.MODELS, metadata, spec)
    classes, positive = metadata["classes"], bundle.positive_index(metadata)
    test = io.read_parquet(paths.TEST_FEATURES)
    y_true = test[metadata["target"]].to_numpy()
    matrix = spec.frame_matrix(test)
    proba = predict(matrix)

    result = {**score(y_true, proba, classes, positive), "model_version": metadata["model_version"]}
    plot_data = curves(y_true, proba, classes, positive)
    confusion = confusion_rows(y_true, proba, classes)
    importance = importances(predict, matrix, y_true, classes, positive, spec.columns, importance_sample, seed)
    with io.together():
        io.write_json(paths.PLOTS / "roc.json", plot_data["roc"])
        io.write_json(paths.PLOTS / "precision_recall.json", plot_data["precision_recall"])
        with io.atomic_path(paths.PLOTS / "confusion.csv") as tmp:
            confusion.to_csv(tmp, index=False)
        io.write_json(paths.PLOTS / "importance.json", importance)
        io.write_json(paths.METRICS, result)
    print("evaluate: " + ", ".join(f"{k}={v:.4f}" for k, v in result.items() if isinstance(v, float)))
