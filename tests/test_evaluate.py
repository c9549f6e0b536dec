import json

import numpy as np
import pandas as pd
import pytest

from slipway import bundle
from slipway.pipeline import evaluate, featurize, paths, train


def test_binary_scores():
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.2, 0.8]])
    result = evaluate.score(y, proba, [0, 1])
    assert result["accuracy"] == 0.75 and result["roc_auc"] == 1.0
    assert result["f1"] == pytest.approx(0.8)
    assert result["per_class"]["1"] == {"precision": 2 / 3, "recall": 1.0, "f1": pytest.approx(0.8), "support": 2}


def test_multiclass_string_labels_and_a_missing_class():
    y = np.array(["a", "b", "c", "a"], dtype=object)
    proba = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.3, 0.6, 0.1]])
    result = evaluate.score(y, proba, ["a", "b", "c"])
    assert result["accuracy"] == 0.75 and result["roc_auc"] == pytest.approx(1.0)
    assert set(result["per_class"]) == {"a", "b", "c"}
    only_a = evaluate.score(np.array(["a", "a"], dtype=object), proba[:2], ["a", "b", "c"])
    assert only_a["roc_auc"] is None


def test_curves_are_resampled_per_class():
    y = np.array([0, 1, 0, 1, 1])
    proba = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.45, 0.55], [0.1, 0.9]])
    curves = evaluate.curves(y, proba, [0, 1])
    assert len(curves["roc"]) == evaluate.CURVE_POINTS
    assert curves["roc"][-1] == {"class": "1", "fpr": 1.0, "tpr": 1.0}
    table = evaluate.confusion_rows(y, proba, [0, 1])
    assert table.to_dict("list") == {"actual": ["0", "1", "0", "1", "1"], "predicted": ["0", "1", "0", "1", "1"]}


def test_main_writes_metrics_and_plots(workdir, churn, params):
    params["train"]["hyperparameters"]["max_iter"] = 30
    params["evaluate"]["importance_sample"] = 200
    spec = featurize.build_spec(churn, params)
    keys = featurize.key_columns(params)
    paths.FEATURES.mkdir(parents=True)
    featurize.featurize(churn.iloc[:900], spec, keys).to_parquet(paths.TRAIN_FEATURES)
    featurize.featurize(churn.iloc[900:], spec, keys).to_parquet(paths.TEST_FEATURES)
    paths.FEATURE_SPEC.write_text(json.dumps(spec.to_dict()))
    train.main(params)
    evaluate.main(params)
    metrics = json.loads(paths.METRICS.read_text())
    assert metrics["rows"] == len(churn) - 900
    assert metrics["model_version"] == bundle.load_metadata("models")["model_version"]
    assert 0.6 < metrics["roc_auc"] <= 1.0
    importance = json.loads((paths.PLOTS / "importance.json").read_text())
    assert {row["feature"] for row in importance} == set(spec.columns)
    assert len(pd.read_csv(paths.PLOTS / "confusion.csv")) == metrics["rows"]
