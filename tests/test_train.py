import pandas as pd
import pytest
from sklearn.datasets import load_wine

from slipway import bundle
from slipway.errors import DataError, ParamsError
from slipway.featureset import infer_spec
from slipway.model.estimator import make_estimator
from slipway.pipeline import featurize, paths, train


def prepare(workdir, frame, params):
    spec = featurize.build_spec(frame, params)
    features = featurize.featurize(frame, spec, featurize.key_columns(params))
    paths.FEATURES.mkdir(parents=True, exist_ok=True)
    features.to_parquet(paths.TRAIN_FEATURES)
    return spec, features


def test_train_writes_a_verifiable_bundle_with_reference_distributions(workdir, churn, params):
    params["train"]["hyperparameters"]["max_iter"] = 30
    spec, features = prepare(workdir, churn, params)
    (workdir / "data/features/spec.json").write_text(__import__("json").dumps(spec.to_dict()))
    train.main(params)
    model = bundle.load("models")
    meta = model.metadata
    assert meta["task"] == "binary" and meta["classes"] == [0, 1] and meta["positive_class"] == 1
    assert meta["features"] == spec.to_dict()
    assert meta["params"]["train"]["hyperparameters"]["max_iter"] == 30
    assert meta["training"]["rows"] == len(churn)
    newest = churn["event_timestamp"].max()
    assert meta["training"]["data_until"] == f"{newest:%Y-%m-%dT%H:%M:%S}Z"
    contract = meta["reference"]["contract"]
    assert contract["categories"] == spec.categorical["contract"]
    assert sum(contract["fractions"]) == pytest.approx(1.0, abs=1e-4)
    age = meta["reference"]["age"]
    assert len(age["edges"]) == 9 and sum(age["fractions"]) == pytest.approx(1.0, abs=1e-4)


def test_a_model_without_the_fast_path_says_why(workdir, churn, params, gradient_boosting, capsys):
    """model.json records why scikit-learn serves the model, and train says it: a one-row request
    then costs milliseconds where the fast path takes microseconds."""
    params["train"].update(estimator=gradient_boosting, hyperparameters={"n_estimators": 5})
    spec, _ = prepare(workdir, churn, params)
    (workdir / "data/features/spec.json").write_text(__import__("json").dumps(spec.to_dict()))
    train.main(params)
    inference = bundle.load("models").metadata["inference"]
    assert inference["engine"] == "scikit-learn"
    assert inference["reason"].startswith("GradientBoostingClassifier has no ONNX translation here")
    assert ("train: the server will call scikit-learn's predict_proba, not the ONNX fast path: "
            + inference["reason"]) in capsys.readouterr().out
    assert not (workdir / "models/model.onnx").exists()


def test_training_is_deterministic(workdir, churn, params):
    params["train"]["hyperparameters"]["max_iter"] = 20
    spec, features = prepare(workdir, churn, params)
    first = train.fit(features, spec, params)
    again = train.fit(features, spec, params)
    assert bundle.content_version(first, {}) == bundle.content_version(again, {})


@pytest.mark.parametrize("name", ["hist_gradient_boosting", "logistic_regression", "random_forest"])
def test_every_estimator_fits_multiclass_data_and_loads_back(tmp_path, name):
    wine = load_wine(as_frame=True)
    frame = wine.frame.assign(target=wine.target.map(dict(enumerate(wine.target_names))))
    frame["grade"] = pd.cut(frame["alcohol"], 3, labels=["low", "mid", "high"]).astype(str)
    spec = infer_spec(frame, exclude=["target"], numeric=None, categorical=None, derived=[],
                      max_categories=10)
    assert spec.categorical == {"grade": ["high", "low", "mid"]}
    hyper = {"max_iter": 30} if name == "hist_gradient_boosting" else {}
    estimator = make_estimator(name, hyper, 0, spec).fit(spec.transform(frame), frame["target"])
    bundle.save(tmp_path, estimator, {"target": "target", "classes": list(estimator.classes_),
                                      "features": spec.to_dict()})
    loaded = bundle.load(tmp_path).estimator
    assert list(loaded.classes_) == ["class_0", "class_1", "class_2"]
    assert (loaded.predict(spec.transform(frame)) == frame["target"]).mean() > 0.85
    # The model card and the train log name the model, not the pipeline that encodes its inputs.
    assert train.estimator_name(estimator) == {"hist_gradient_boosting": "HistGradientBoostingClassifier",
                                               "logistic_regression": "LogisticRegression",
                                               "random_forest": "RandomForestClassifier"}[name]


def test_estimator_params_errors(churn, params):
    spec = featurize.build_spec(churn, params)
    with pytest.raises(ParamsError, match="train.estimator must be one of"):
        make_estimator("xgboost", {}, 0, spec)
    with pytest.raises(ParamsError, match=r"^params: train.hyperparameters: HistGradientBoostingClassifier takes no "
                                          r"l2_regularisation \(did you mean l2_regularization\?\); "
                                          r"HistGradientBoostingClassifier takes no depth "
                                          r"\(did you mean max_depth\?\)$"):
        make_estimator("hist_gradient_boosting", {"l2_regularisation": 0.1, "max_iter": 3, "depth": 2}, 0, spec)
    with pytest.raises(ParamsError, match=r"^params: train.hyperparameters: LogisticRegression takes no "
                                          r"learning_rate$"):
        make_estimator("logistic_regression", {"learning_rate": 0.1}, 0, spec)
    with pytest.raises(ParamsError, match=r"^params: train.hyperparameters: remove categorical_features \(set by "
                                          r"the feature spec \(data.categorical_features\)\), random_state "
                                          r"\(set by train.seed\)$"):
        make_estimator("hist_gradient_boosting", {"random_state": 1, "categorical_features": None}, 0, spec)


def test_hyperparameters_left_empty_are_the_estimators_defaults(churn, params):
    """``hyperparameters:`` with every line under it commented out is null to YAML: no hyperparameters,
    not an error."""
    params["train"].update(estimator="logistic_regression", hyperparameters=None)
    spec = featurize.build_spec(churn, params)
    fitted = train.fit(featurize.featurize(churn, spec, ["churned"]), spec, params)
    assert fitted.steps[-1][1].get_params()["C"] == 1.0


def test_an_estimator_that_takes_any_keyword_is_given_every_hyperparameter(churn, params, monkeypatch):
    """LightGBM's classifier takes **kwargs and passes them on: a name its signature lacks is not an error."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from slipway.model import estimator

    class TakesAny(HistGradientBoostingClassifier):
        def __init__(self, *, categorical_features="from_dtype", random_state=None, max_iter=100, **kwargs):
            super().__init__(categorical_features=categorical_features, random_state=random_state, max_iter=max_iter)
            self.extra = kwargs

    monkeypatch.setitem(estimator.ESTIMATORS, "takes_any", (TakesAny, False, False))
    made = make_estimator("takes_any", {"num_leaves": 7, "max_iter": 3}, 0, featurize.build_spec(churn, params))
    assert (made.extra, made.max_iter) == ({"num_leaves": 7}, 3)
    with pytest.raises(ParamsError, match=r"^params: train.hyperparameters.max_iter: true is a boolean"):
        make_estimator("takes_any", {"max_iter": True}, 0, featurize.build_spec(churn, params))


@pytest.mark.parametrize(("name", "hyperparameters", "message"), [
    ("hist_gradient_boosting", {"learning_rate": "fast"},
     "The 'learning_rate' parameter of HistGradientBoostingClassifier must be a float"),
    ("logistic_regression", {"C": -1.0}, "The 'C' parameter of LogisticRegression must be a float"),
])
def test_a_bad_hyperparameter_value_is_a_params_error(churn, params, name, hyperparameters, message):
    """scikit-learn checks values only when fitting: that is a params error too, not a traceback."""
    params = {**params, "train": {**params["train"], "estimator": name, "hyperparameters": hyperparameters}}
    features = featurize.featurize(churn, featurize.build_spec(churn, params), ["churned"])
    with pytest.raises(ParamsError) as refused:
        train.fit(features, featurize.build_spec(churn, params), params)
    assert str(refused.value).startswith(f"params: train.hyperparameters: {message}")


def test_a_boolean_for_a_number_is_refused(churn, params):
    """scikit-learn would fit ``max_iter: yes`` (YAML's true) as one iteration."""
    spec = featurize.build_spec(churn, params)
    with pytest.raises(ParamsError, match=r"^params: train.hyperparameters.max_iter: true is a boolean, where "
                                          r"HistGradientBoostingClassifier takes a number \(default 100\)$"):
        make_estimator("hist_gradient_boosting", {"max_iter": True}, 0, spec)
    with pytest.raises(ParamsError, match="train.hyperparameters.C: false is a boolean, where LogisticRegression"):
        make_estimator("logistic_regression", {"C": False}, 0, spec)
    assert make_estimator("hist_gradient_boosting", {"early_stopping": True}, 0, spec).early_stopping is True


def test_data_the_estimator_cannot_take_is_a_data_error_that_names_it(churn, params):
    """HistGradientBoosting takes at most 255 categories per feature, whatever
    featurize.max_categories allows: a clear error, not a traceback."""
    frame = churn.assign(postcode=[f"p{i % 300}" for i in range(len(churn))])
    params["featurize"]["max_categories"] = 400
    spec = featurize.build_spec(frame, params)
    features = featurize.featurize(frame, spec, ["churned"])
    with pytest.raises(DataError, match="^train: HistGradientBoostingClassifier cannot fit these features: "
                                        "Categorical feature 'postcode' is expected to have a cardinality <= 255"):
        train.fit(features, spec, params)


def test_data_hashes_come_from_dvc_lock(tmp_path):
    lock = tmp_path / "dvc.lock"
    assert train.data_hashes(lock) == {}
    lock.write_text(
        "schema: '2.0'\nstages:\n  ingest:\n    deps:\n"
        "    - path: data/raw\n      md5: abc.dir\n"
        "    - path: src/slipway/pipeline/ingest.py\n      md5: def\n"
    )
    assert train.data_hashes(lock) == {"data/raw": "abc.dir"}


@pytest.mark.parametrize(("labels", "setting", "expected"), [
    ([0, 1], None, 1), ([False, True], None, True), (["no", "yes"], None, "yes"),
    (["churn", "stay"], "churn", "churn"), ([0, 1], 0, 0), ([0, 1], "0", 0), ([False, True], False, False),
])
def test_the_positive_class_is_the_named_one_or_the_last(params, labels, setting, expected):
    params["data"]["positive_class"] = setting
    series = pd.Series(labels * 3, name="churned")
    assert train.positive_class(series, params) == expected


def test_a_positive_class_that_is_not_a_label_fails_before_the_fit(workdir, churn, params):
    spec, _ = prepare(workdir, churn, params)
    (workdir / "data/features/spec.json").write_text(__import__("json").dumps(spec.to_dict()))
    params["data"]["positive_class"] = "churned"
    with pytest.raises(ParamsError, match=r"data.positive_class 'churned' is not a class of churned: \[0, 1\]"):
        train.main(params)
    assert not (workdir / "models").exists()
    params["data"]["positive_class"] = "a"
    with pytest.raises(ParamsError, match="but churned has 3 classes; it applies to binary targets only"):
        train.positive_class(pd.Series([1, 2, 3], name="churned"), params)
