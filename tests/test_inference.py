import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import ExtraTreesClassifier, HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, QuantileTransformer, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from slipway import inference
from slipway.featureset import FeatureSpec
from slipway.inference import TOLERANCE, NoFastPath, OnnxPredictor, export_onnx, max_difference
from slipway.model import estimator as estimator_module
from slipway.model.estimator import make_estimator


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


def behind_the_encoder(name: str, classes: int, categorical: bool, **hyperparameters):
    """``train.estimator`` ``name`` as the factory builds it (the one-hot pipeline), fitted on
    :func:`fitted`'s data."""
    boosted, spec, matrix = fitted(classes, categorical)
    frame = spec.frame(matrix)
    target = boosted.predict(frame)
    return make_estimator(name, hyperparameters, 0, spec).fit(frame, target), spec, matrix


FORESTS = {"random_forest": RandomForestClassifier, "extra_trees": ExtraTreesClassifier,
           "decision_tree": DecisionTreeClassifier}


@pytest.fixture
def forests(monkeypatch):
    """The factory's table with extra trees and a decision tree added, as a team would add them."""
    for name in ("extra_trees", "decision_tree"):
        monkeypatch.setitem(estimator_module.ESTIMATORS, name, (FORESTS[name], True, False))


@pytest.mark.parametrize("name", list(FORESTS))
@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("categorical", [True, False])
def test_a_forest_behind_the_one_hot_encoder_gives_scikit_learns_probabilities(forests, name, classes, categorical):
    estimator, spec, matrix = behind_the_encoder(name, classes, categorical, min_samples_leaf=3,
                                                 **({} if name == "decision_tree" else {"n_estimators": 15}))
    predictor = OnnxPredictor(export_onnx(estimator, spec))
    assert max_difference(predictor, estimator, spec, matrix) <= TOLERANCE
    assert predictor.predict_proba(matrix[:1]).shape == (1, classes)


def test_a_forest_compares_numbers_in_float32_as_scikit_learn_does(forests):
    """scikit-learn's trees round each input to float32 before comparing it with the float64
    threshold: a number between a threshold and the float32 next to it goes the way its float32
    goes. Rows at, and one float64 and one float32 step either side of, every numeric threshold;
    missing numbers, missing categories and a category never seen in training."""
    estimator, spec, matrix = behind_the_encoder("extra_trees", 3, True, n_estimators=15)
    rows = []
    for tree in estimator.steps[-1][1].estimators_:
        for feature, threshold in zip(tree.tree_.feature, tree.tree_.threshold, strict=True):
            if feature in (0, 1):  # "a" and "b" come first out of the encoder
                single = np.float32(threshold)
                for value in (threshold, np.nextafter(threshold, np.inf), np.nextafter(threshold, -np.inf),
                              np.nextafter(single, np.float32(np.inf)), np.nextafter(single, np.float32(-np.inf))):
                    row = matrix[len(rows) % len(matrix)].copy()
                    row[feature] = value
                    rows.append(row)
    rows = np.array(rows)
    rows[::7, 0] = np.nan
    rows[1::7, 2] = np.nan
    rows[2::7, 2] = spec.categorical["colour"].index("w")
    rows = np.vstack([rows, rows.astype(np.float32).astype(np.float64)])
    predictor = OnnxPredictor(export_onnx(estimator, spec))
    reference = estimator.predict_proba(spec.frame(rows))
    np.testing.assert_allclose(predictor.predict_proba(rows), reference, atol=TOLERANCE, rtol=0)


@pytest.mark.parametrize("threshold", [1.5, -0.5])
def test_a_one_hot_split_past_either_end_sends_every_row_one_way(threshold):
    """scikit-learn puts a one-hot column's threshold between 0 and 1; one past either end (a tree
    edited, or grown by another trainer) sends every code, and a missing category, the same way."""
    estimator, spec, matrix = behind_the_encoder("random_forest", 3, True, n_estimators=5)
    before = estimator.predict_proba(spec.frame(matrix))
    for tree in estimator.steps[-1][1].estimators_:
        tree.tree_.threshold[tree.tree_.feature >= 2] = threshold  # the colour's one-hot columns
    rows = matrix.copy()
    rows[::3, 2] = np.nan
    reference = estimator.predict_proba(spec.frame(rows))
    assert np.abs(estimator.predict_proba(spec.frame(matrix)) - before).max() > 0.1  # the edit took
    np.testing.assert_allclose(OnnxPredictor(export_onnx(estimator, spec)).predict_proba(rows), reference,
                               atol=TOLERANCE, rtol=0)


def test_trees_that_never_split_are_exported():
    estimator, spec, matrix = behind_the_encoder("random_forest", 3, True, n_estimators=4, min_impurity_decrease=1.0)
    assert all(tree.tree_.node_count == 1 for tree in estimator.steps[-1][1].estimators_)
    assert max_difference(OnnxPredictor(export_onnx(estimator, spec)), estimator, spec, matrix) <= TOLERANCE


@pytest.mark.parametrize("classes", [2, 3])
def test_a_forest_too_large_for_one_onnx_model_is_left_to_scikit_learn(monkeypatch, classes):
    """About 20 bytes a node, and with more than two classes 8 bytes per class per leaf."""
    estimator, spec, _ = behind_the_encoder("random_forest", classes, True, n_estimators=5)
    trees = [tree.tree_ for tree in estimator.steps[-1][1].estimators_]
    nodes = sum(tree.node_count for tree in trees)
    leaves = sum(int((tree.children_left == -1).sum()) for tree in trees)
    size = 20 * nodes + (8 * classes * leaves if classes > 2 else 0)
    monkeypatch.setattr(inference, "MAX_FOREST_BYTES", size)
    export_onnx(estimator, spec)
    monkeypatch.setattr(inference, "MAX_FOREST_BYTES", size - 1)
    described = f"5 trees, {nodes:,} nodes" + (f", {classes} classes" if classes > 2 else "")
    with pytest.raises(NoFastPath, match=rf"^the forest's ONNX model would be about {size:,} bytes \({described}\), "
                                         rf"past the {size - 1:,} a model may be \(inference.MAX_FOREST_BYTES\)$"):
        export_onnx(estimator, spec)


@pytest.mark.parametrize("classes", [2, 3, 8])
def test_each_tree_of_a_forest_is_walked_once_whatever_the_number_of_classes(classes):
    """Each tree is in the graph once, and its leaves hold every class's share (a copy of each tree
    per class grew the graph and the time with the classes)."""
    import onnx

    estimator, spec, matrix = behind_the_encoder("random_forest", classes, True, n_estimators=7, min_samples_leaf=3)
    model = export_onnx(estimator, spec)
    (trees,) = [node for node in onnx.load_from_string(model).graph.node if node.op_type == "TreeEnsemble"]
    roots = next(a for a in trees.attribute if a.name == "tree_roots").ints
    assert len(roots) == 7
    assert max_difference(OnnxPredictor(model), estimator, spec, matrix) <= TOLERANCE


class RecordingSession:
    """An onnxruntime session that records how many rows each call is given."""

    def __init__(self, session):
        self.session, self.rows = session, []

    def run(self, outputs, feeds):
        self.rows.append(len(feeds["matrix"]))
        return self.session.run(outputs, feeds)


def test_a_large_matrix_goes_to_onnxruntime_in_slices(monkeypatch):
    """A multiclass forest's graph holds rows x trees x classes doubles at once: evaluate's whole
    test split must not be one call."""
    estimator, spec, matrix = behind_the_encoder("random_forest", 3, True, n_estimators=7)
    predictor = OnnxPredictor(export_onnx(estimator, spec))
    whole = predictor.predict_proba(matrix[:700])
    predictor._session = RecordingSession(predictor._session)
    monkeypatch.setattr(inference, "ROWS_PER_CALL", 700)
    sliced = predictor.predict_proba(matrix)
    assert predictor._session.rows == [700, 700, 700, 700, 200]
    np.testing.assert_array_equal(sliced[:700], whole)
    assert np.abs(sliced - estimator.predict_proba(spec.frame(matrix))).max() <= TOLERANCE


def test_numbers_passed_through_to_a_forest_go_where_its_trees_send_missing_values():
    """Without an imputer a missing number reaches the trees, which send it where they learnt to
    (scikit-learn's trees take NaN since 1.4)."""
    _, spec, matrix = fitted(2, categorical=True)
    frame = spec.frame(matrix)
    encoder = ColumnTransformer([("numeric", "passthrough", ["a", "b"]),
                                 ("categorical", OneHotEncoder(categories=[spec.categorical["colour"]],
                                                               handle_unknown="ignore"), ["colour"])])
    estimator = Pipeline([("encode", encoder), ("model", RandomForestClassifier(n_estimators=10, random_state=0))])
    estimator.fit(frame, (np.nan_to_num(matrix[:, 0], nan=-5.0) > 0.5).astype(int))  # missing: with the low
    # some split on "a" sends its missing values left, with the low values
    assert any((tree.tree_.missing_go_to_left.astype(bool) & (tree.tree_.feature == 0)).any()
               for tree in estimator.steps[-1][1].estimators_)
    assert max_difference(OnnxPredictor(export_onnx(estimator, spec)), estimator, spec, matrix) <= TOLERANCE


def test_an_imputed_number_is_compared_in_float32_as_scikit_learn_does():
    """The imputed value of a missing number is set a float64 step past the root's threshold, where
    its float32 is not: scikit-learn's tree sends it left, as the float32 says."""
    _, spec, matrix = fitted(2, categorical=True)
    frame = spec.frame(matrix)
    estimator = make_estimator("random_forest", {"n_estimators": 1, "max_depth": 1, "bootstrap": False,
                                                 "max_features": None}, 0, spec)
    estimator.fit(frame, (np.nan_to_num(matrix[:, 0]) > 0.3).astype(int))
    root = estimator.steps[-1][1].estimators_[0].tree_
    assert root.feature[0] == 0  # "a"
    threshold = root.threshold[0]
    below = np.float32(threshold) if np.float32(threshold) <= threshold else np.nextafter(np.float32(threshold),
                                                                                           np.float32(-np.inf))
    imputed = np.nextafter(threshold, np.inf)
    assert imputed > threshold and np.float32(imputed) == below  # float64 says right, float32 left
    estimator.steps[0][1].named_transformers_["numeric"].steps[0][1].statistics_[0] = imputed
    rows = matrix[:20].copy()
    rows[:, 0] = np.nan
    reference = estimator.predict_proba(spec.frame(rows))
    assert (reference[:, 1] == root.value[root.children_left[0], 0, 1]).all()  # left, as float32 says
    np.testing.assert_allclose(OnnxPredictor(export_onnx(estimator, spec)).predict_proba(rows), reference,
                               atol=TOLERANCE, rtol=0)


@pytest.mark.filterwarnings("ignore:Skipping features without any observed values")
def test_an_imputer_that_dropped_a_column_empty_in_training_is_followed():
    """SimpleImputer leaves out a column that had no value in training: the encoder's columns
    after it move up one, and the translation follows them."""
    _, spec, matrix = fitted(2, categorical=True)
    matrix = matrix.copy()
    matrix[:, 0] = np.nan
    frame = spec.frame(matrix)
    estimator = make_estimator("random_forest", {"n_estimators": 10}, 0, spec).fit(frame, np.arange(len(frame)) % 2)
    assert estimator.steps[-1][1].n_features_in_ == matrix.shape[1] - 1 + 5  # b, then 6 colours
    matrix[:5, 0] = 1.0
    assert max_difference(OnnxPredictor(export_onnx(estimator, spec)), estimator, spec, matrix) <= TOLERANCE


@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("categorical", [True, False])
@pytest.mark.parametrize("solver", ["lbfgs", "liblinear"])
@pytest.mark.filterwarnings("ignore:Using the 'liblinear' solver for multiclass")
def test_the_logistic_regression_gives_scikit_learns_probabilities(classes, categorical, solver):
    """Imputed, scaled numbers and one-hot categories computed in the graph; the logistic link for
    two classes, softmax (lbfgs, multinomial) or normalised one-vs-rest logistics (liblinear) for
    more."""
    estimator, spec, matrix = behind_the_encoder("logistic_regression", classes, categorical, solver=solver)
    predictor = OnnxPredictor(export_onnx(estimator, spec))
    assert max_difference(predictor, estimator, spec, matrix) <= TOLERANCE
    assert predictor.predict_proba(matrix[:1]).shape == (1, classes)


@pytest.mark.parametrize("name", ["random_forest", "logistic_regression"])
def test_missing_values_and_a_category_never_seen_behind_the_encoder_follow_scikit_learn(name):
    estimator, spec, matrix = behind_the_encoder(name, 3, True)
    rows = matrix[:40].copy()
    rows[:10, 2] = np.nan
    rows[10:20, 2] = spec.categorical["colour"].index("w")
    rows[20:30, 0] = np.nan
    rows[30:, :2] = np.nan
    reference = estimator.predict_proba(spec.frame(rows))
    np.testing.assert_allclose(OnnxPredictor(export_onnx(estimator, spec)).predict_proba(rows), reference,
                               atol=TOLERANCE, rtol=0)


def test_other_estimators_are_left_to_scikit_learn_saying_so(gradient_boosting):
    estimator, spec, _ = behind_the_encoder(gradient_boosting, 2, True, n_estimators=5)
    with pytest.raises(NoFastPath, match=r"^GradientBoostingClassifier has no ONNX translation here "
                                         r"\(HistGradientBoostingClassifier has one, and so do RandomForestClassifier"):
        export_onnx(estimator, spec)
    spec = FeatureSpec(numeric=["a"], categorical={})
    bare = LogisticRegression().fit(pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]}), [0, 0, 1, 1])
    # not behind the encoder: its input is not the spec's matrix
    with pytest.raises(NoFastPath, match="^LogisticRegression has no ONNX translation here"):
        export_onnx(bare, spec)


@pytest.mark.parametrize(("name", "step", "reason"), [
    ("random_forest", StandardScaler(), r"the forest's thresholds are on scaled numbers \(a StandardScaler before "
                                        r"a tree model\)"),
    ("random_forest", QuantileTransformer(n_quantiles=10),
     "the encoder's 'numeric' columns go through SimpleImputer then QuantileTransformer, where the translation "
     "knows a SimpleImputer of NaN"),
    ("logistic_regression", QuantileTransformer(n_quantiles=10),
     "the encoder's 'numeric' columns go through SimpleImputer then StandardScaler then QuantileTransformer")])
def test_a_model_behind_an_encoder_that_does_more_is_left_to_scikit_learn(name, step, reason):
    """A step the translation does not know, or scaled numbers under trees' thresholds, stay with
    scikit-learn."""
    _, spec, matrix = fitted(2, categorical=True)
    frame = spec.frame(matrix)
    estimator = make_estimator(name, {}, 0, spec)
    estimator.steps[0][1].transformers[0][1].steps.append(("more", step))
    estimator.fit(frame, np.arange(len(frame)) % 2)
    with pytest.raises(NoFastPath, match=f"^{reason}"):
        export_onnx(estimator, spec)


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
