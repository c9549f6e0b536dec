"""The fast inference path: the model as an ONNX graph, run by onnxruntime.

scikit-learn's own ``predict_proba`` spends most of a one-row call in input validation, pandas
and its per-tree Python loop (milliseconds), not in the model. :func:`export_onnx` writes the
fitted model as one graph (opset 21, ``ai.onnx.ml`` 5, in float64; trees as one ``TreeEnsemble``)
taking the float matrix of :meth:`FeatureSpec.matrix` (categories as the spec's codes) and
returning class probabilities; onnxruntime evaluates it in about 15 us for one row.

Three kinds of model take this path, as :mod:`slipway.model.estimator` builds them:

- a HistGradientBoostingClassifier (the default). skl2onnx cannot convert it (categorical
  splits), so its trees are translated here, node by node, following
  ``_predict_one_from_raw_data`` in scikit-learn's ``_predictor.pyx``: missing values go where
  ``missing_go_to_left`` says, categorical splits become set membership tests, and categories the
  estimator never saw count as missing;
- a random forest, extra trees or a decision tree behind the one-hot pipeline's encoder (numbers
  imputed, categories one-hot encoded): the encoder is folded into the trees, so the graph takes
  the same matrix. skl2onnx would convert the encoder from a DataFrame's columns, not from these
  codes;
- a logistic regression behind that encoder (numbers imputed and scaled): the encoder's matrix is
  computed in the graph, then the coefficients and ``predict_proba``'s link.

The ``train`` stage checks the result against scikit-learn's ``predict_proba`` before the bundle is
written, and the server again at load; any other estimator is served through scikit-learn.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import ExtraTreesClassifier, HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from slipway.featureset import FeatureSpec

# The fast path must agree with scikit-learn to within floating-point summation order.
TOLERANCE = 1e-9

# ai.onnx.ml TreeEnsemble node modes (opset 5).
BRANCH_LEQ, BRANCH_NEQ, BRANCH_MEMBER = 0, 5, 6


class NoFastPath(Exception):  # noqa: N818 (a verdict, not a failure: scikit-learn serves the model)
    """Why :func:`export_onnx` has no translation of this model (then scikit-learn serves it)."""


def _in_bitset(words: np.ndarray, value: int) -> bool:
    return bool((int(words[value // 32]) >> (value % 32)) & 1)


# ai.onnx.ml TreeEnsemble attributes of interior nodes (each prefixed "nodes_"), by element type.
_NODE_INTS = ("featureids", "truenodeids", "trueleafs", "falsenodeids", "falseleafs", "missing_value_tracks_true")


@dataclass
class _Ensemble:
    """The arrays one TreeEnsemble node is made of: per interior node (``nodes``: the
    :data:`_NODE_INTS`, ``splits`` and ``modes``), per leaf, per tree, and the members of the set
    membership nodes' sets, each set ending with NaN."""

    nodes: dict[str, np.ndarray]
    leaf_targetids: np.ndarray
    leaf_weights: np.ndarray
    tree_roots: np.ndarray
    membership: np.ndarray


class _TreeTables:
    """The ``nodes_*`` / ``leaf_*`` attribute lists of one TreeEnsemble, filled node by node."""

    def __init__(self):
        self.nodes: dict[str, list] = {k: [] for k in (
            "featureids", "splits", "modes", "truenodeids", "trueleafs", "falsenodeids", "falseleafs",
            "missing_value_tracks_true")}
        self.leaf_targetids: list[int] = []
        self.leaf_weights: list[float] = []
        self.tree_roots: list[int] = []
        self.membership: list[float] = []

    def leaf(self, target: int, value: float) -> tuple[int, bool]:
        self.leaf_targetids.append(target)
        self.leaf_weights.append(float(value))
        return len(self.leaf_weights) - 1, True

    def node(self, feature: int, split: float, missing_left: bool,
             true: tuple[int, bool], false: tuple[int, bool], mode: int = BRANCH_LEQ) -> None:
        for key, value in (("featureids", feature), ("splits", split), ("modes", mode),
                           ("truenodeids", true[0]), ("trueleafs", int(true[1])),
                           ("falsenodeids", false[0]), ("falseleafs", int(false[1])),
                           ("missing_value_tracks_true", int(missing_left))):
            self.nodes[key].append(value)

    def set_node(self, feature: int, members: list[float], missing_left: bool,
                 true: tuple[int, bool], false: tuple[int, bool]) -> None:
        """A node whose true branch takes the category codes in ``members`` (and missing values
        where ``missing_left``)."""
        if members:
            self.node(feature, 0.0, missing_left, true, false, BRANCH_MEMBER)
            self.membership += members + [np.nan]  # each node's set ends with NaN
        else:  # no category goes left (codes are >= 0): only missing values may
            self.node(feature, -1.0, missing_left, true, false)

    def ensemble(self) -> _Ensemble:
        nodes = {key: np.asarray(self.nodes[key], dtype=np.int64) for key in _NODE_INTS}
        nodes["splits"] = np.asarray(self.nodes["splits"], dtype=np.float64)
        nodes["modes"] = np.asarray(self.nodes["modes"], dtype=np.uint8)
        return _Ensemble(nodes, np.asarray(self.leaf_targetids, dtype=np.int64),
                         np.asarray(self.leaf_weights, dtype=np.float64), np.asarray(self.tree_roots, dtype=np.int64),
                         np.asarray(self.membership, dtype=np.float64))

    def add_tree(self, is_leaf: np.ndarray, leaf_value, add_split) -> None:
        """One tree, given which of its nodes are leaves, each leaf's ``(target, value)`` and a
        function that adds an interior node given its index and the ids of its two branches."""
        if is_leaf[0]:  # a tree that never split: one node whose branches both reach its leaf
            only = self.leaf(*leaf_value(0))
            self.tree_roots.append(len(self.nodes["modes"]))
            self.node(0, 0.0, True, only, only)
            return
        ids = {i: self.leaf(*leaf_value(i)) for i in np.flatnonzero(is_leaf)}
        interior = np.flatnonzero(~is_leaf)
        start = len(self.nodes["modes"])
        ids.update({i: (start + n, False) for n, i in enumerate(interior)})
        self.tree_roots.append(start)
        for i in interior:
            add_split(i, ids)


class _BoostedTrees:
    """A HistGradientBoostingClassifier's trees on the spec's matrix."""

    def __init__(self, estimator: HistGradientBoostingClassifier, spec: FeatureSpec):
        columns = list(spec.columns)
        is_categorical = (np.asarray(estimator.is_categorical_) if estimator.is_categorical_ is not None
                          else np.zeros(len(columns), dtype=bool))
        # The estimator's internal column order puts categorical columns first (its encoder).
        internal = [c for c, cat in zip(columns, is_categorical, strict=True) if cat] + \
                   [c for c, cat in zip(columns, is_categorical, strict=True) if not cat]
        self.spec_column = [columns.index(c) for c in internal]
        self.internal = internal
        self.spec = spec
        # Per internal categorical column: category name -> the estimator's ordinal code.
        self.codes: dict[int, dict[str, int]] = {}
        if estimator._preprocessor is not None:
            encoder = estimator._preprocessor.named_transformers_["encoder"]
            self.codes = {position: {str(c): i for i, c in enumerate(categories)}
                          for position, categories in enumerate(encoder.categories_)}
        self.known, self.known_row = estimator._bin_mapper.make_known_categories_bitsets()
        self.tables = _TreeTables()
        for iteration in estimator._predictors:
            for target, predictor in enumerate(iteration):
                self._add(predictor.nodes, predictor.raw_left_cat_bitsets, target)

    def _left_categories(self, node, bitsets: np.ndarray) -> list[float]:
        """Spec codes that go left: in the node's bitset, or treated as missing where missing
        values go left (categories unknown to the estimator)."""
        position = int(node["feature_idx"])
        words = bitsets[node["bitset_idx"]]
        known = self.known[self.known_row[position]]
        goes_left = []
        for spec_code, name in enumerate(self.spec.categorical[self.internal[position]]):
            code = self.codes.get(position, {}).get(name)
            if code is None or not _in_bitset(known, code):
                left = bool(node["missing_go_to_left"])
            else:
                left = _in_bitset(words, code)
            if left:
                goes_left.append(float(spec_code))
        return goes_left

    def _add(self, nodes: np.ndarray, bitsets: np.ndarray, target: int) -> None:
        def split(i, ids):
            node = nodes[i]
            column = self.spec_column[int(node["feature_idx"])]
            true, false = ids[int(node["left"])], ids[int(node["right"])]
            missing_left = bool(node["missing_go_to_left"])
            if node["is_categorical"]:
                self.tables.set_node(column, self._left_categories(node, bitsets), missing_left, true, false)
            else:
                self.tables.node(column, float(node["num_threshold"]), missing_left, true, false)

        self.tables.add_tree(nodes["is_leaf"].astype(bool), lambda i: (target, nodes["value"][i]), split)


@dataclass(frozen=True)
class _Encoded:
    """One column of the matrix a one-hot pipeline's encoder hands its model, as computed from the
    spec's matrix: a number (``fill`` imputes a missing one, ``None`` leaves it missing; then
    ``mean`` is subtracted and the result divided by ``scale``), or 1.0 where the spec column holds
    the code ``category`` and 0.0 elsewhere (``None``: a category the spec does not have, always
    0.0)."""

    column: int
    one_hot: bool
    fill: float | None = None
    mean: float = 0.0
    scale: float = 1.0
    category: int | None = None


def _numbers(name: str, transformer, columns: list[str], position: dict[str, int]) -> list[_Encoded]:
    """A numeric transformer's output columns: passed through, imputed, or imputed then scaled."""
    # A fitted ColumnTransformer holds "passthrough" as a FunctionTransformer without a function.
    if transformer == "passthrough" or (isinstance(transformer, FunctionTransformer) and transformer.func is None):
        return [_Encoded(position[c], False) for c in columns]
    steps = [s for _, s in transformer.steps] if isinstance(transformer, Pipeline) else [transformer]
    imputer, scaler = steps[0], (steps[1] if len(steps) == 2 else None)
    if not isinstance(imputer, SimpleImputer) or imputer.add_indicator or not _is_nan(imputer.missing_values) \
            or len(steps) > 2 or (scaler is not None and not isinstance(scaler, StandardScaler)):
        raise NoFastPath(f"the encoder's {name!r} columns go through "
                         f"{' then '.join(type(step).__name__ for step in steps)}, where the translation "
                         "knows a SimpleImputer of NaN (without an indicator), then optionally a StandardScaler")
    # An imputer drops a column that was empty in training, unless told to keep it.
    kept = [(c, float(fill)) for c, fill in zip(columns, imputer.statistics_, strict=True)
            if not np.isnan(fill) or imputer.keep_empty_features]
    means = scaler.mean_ if scaler is not None and scaler.mean_ is not None and scaler.with_mean else None
    scales = scaler.scale_ if scaler is not None and scaler.scale_ is not None else None
    return [_Encoded(position[c], False, fill=fill, mean=0.0 if means is None else float(means[k]),
                     scale=1.0 if scales is None else float(scales[k])) for k, (c, fill) in enumerate(kept)]


def _encoded_columns(encoder, spec: FeatureSpec) -> list[_Encoded]:
    """What each output column of the pipeline's ``ColumnTransformer`` is, where it imputes (and
    scales) numbers and one-hot encodes categories, as :mod:`slipway.model.estimator` builds it."""
    if not isinstance(encoder, ColumnTransformer):
        raise NoFastPath(f"the pipeline's first step is a {type(encoder).__name__}, not a ColumnTransformer")
    position = {name: j for j, name in enumerate(spec.columns)}
    encoded: dict[int, _Encoded] = {}
    for name, transformer, columns in encoder.transformers_:
        outputs = range(encoder.output_indices_[name].start, encoder.output_indices_[name].stop)
        if not outputs:
            continue
        if isinstance(columns, str) or any(c not in position for c in columns):
            raise NoFastPath(f"the encoder's {name!r} step reads {columns!r}, not model input columns by name")
        if isinstance(transformer, OneHotEncoder):
            if transformer.drop_idx_ is not None or transformer._infrequent_enabled \
                    or transformer.handle_unknown != "ignore":
                raise NoFastPath(f"the encoder's {name!r} OneHotEncoder drops a category, groups infrequent "
                                 "ones or refuses unknown ones")
            out = [_Encoded(position[c], True, category=spec.category_index.get(c, {}).get(value))
                   for c, categories in zip(columns, transformer.categories_, strict=True)
                   for value in categories]
        else:
            out = _numbers(name, transformer, columns, position)
            if any(spec.columns[e.column] in spec.categorical for e in out):
                raise NoFastPath(f"the encoder's {name!r} step takes categorical columns as numbers")
        if len(out) != len(outputs):
            raise NoFastPath(f"the encoder's {name!r} step gives {len(outputs)} columns where "
                             f"{len(out)} were expected")
        encoded.update(zip(outputs, out, strict=True))
    return [encoded[j] for j in range(len(encoded))]


def _is_nan(value) -> bool:
    return isinstance(value, float) and np.isnan(value)


# Tree models the one-hot pipeline may end in (ExtraTreeClassifier is a DecisionTreeClassifier).
_TREE_MODELS = RandomForestClassifier | ExtraTreesClassifier | DecisionTreeClassifier
TRANSLATED = ("HistGradientBoostingClassifier has one, and so do RandomForestClassifier, ExtraTreesClassifier, "
              "DecisionTreeClassifier and LogisticRegression behind the one-hot encoder of slipway.model.estimator")


def _behind_the_encoder(estimator, spec: FeatureSpec) -> tuple[Any, list[_Encoded]]:
    """The model of a ``Pipeline([encode, model])`` as the estimator factory builds it, when it is
    one the translation knows, with what each column the encoder hands it is."""
    if not isinstance(estimator, Pipeline) or len(estimator.steps) != 2:
        raise NoFastPath(f"{type(estimator).__name__} has no ONNX translation here ({TRANSLATED})")
    model = estimator.steps[-1][1]
    if not isinstance(model, _TREE_MODELS | LogisticRegression):
        raise NoFastPath(f"{type(model).__name__} has no ONNX translation here ({TRANSLATED})")
    encoded = _encoded_columns(estimator.steps[0][1], spec)
    if len(encoded) != model.n_features_in_:
        raise NoFastPath(f"the encoder gives {len(encoded)} columns, the model takes {model.n_features_in_}")
    return model, encoded


# An ONNX model is one protobuf message, which cannot pass 2 GiB. A forest takes about 20 bytes a
# node, and with more than two classes 8 bytes per class per leaf (its shares); one larger than
# this is left to scikit-learn (it would take gigabytes to build, too).
MAX_FOREST_BYTES = 1_000_000_000


def _forest_ensemble(forest, encoded: list[_Encoded], n_targets: int) -> tuple[_Ensemble, np.ndarray | None, int]:
    """A random forest's (extra trees', a decision tree's) trees behind the one-hot encoder, on the
    spec's matrix; the table of each leaf's share of each class where the graph looks them up (with
    more than two classes); and the number of trees. :class:`NoFastPath` past
    :data:`MAX_FOREST_BYTES`. Built with arrays, a tree at a time: a forest fitted on a million rows
    has millions of nodes.

    An imputed number's missing branch is where its imputed value goes, compared as scikit-learn
    compares it: in float32 (the graph rounds the matrix so too). A one-hot column is 1.0 for one
    code: a split on it (a threshold between 0 and 1) sends every other code and a missing value
    left, a not-equal test.

    A leaf adds its weight to one target. With two classes (``n_targets`` 1) that is the positive
    class's share, summed over the trees. With more, each tree is a target of its own and each
    leaf's weight is its row of the shares table: one walk down each tree, where a copy of the tree
    per class made the graph and the walks grow with the classes (with 8 classes: 2.8 times the
    graph, 16 times the time for 100 rows)."""
    trees = [t.tree_ for t in forest.estimators_] if hasattr(forest, "estimators_") else [forest.tree_]
    node_count = sum(t.node_count for t in trees)
    leaf_count = sum(int((t.children_left == -1).sum()) for t in trees)
    size = 20 * node_count + (8 * n_targets * leaf_count if n_targets > 1 else 0)
    if size > MAX_FOREST_BYTES:
        classes = f", {n_targets} classes" if n_targets > 1 else ""
        raise NoFastPath(f"the forest's ONNX model would be about {size:,} bytes ({len(trees)} trees, "
                         f"{node_count:,} nodes{classes}), past the {MAX_FOREST_BYTES:,} a model may be "
                         "(inference.MAX_FOREST_BYTES)")
    column = np.array([e.column for e in encoded], dtype=np.int64)
    one_hot = np.array([e.one_hot for e in encoded])
    category = np.array([np.nan if e.category is None else e.category for e in encoded], dtype=np.float64)
    fill = np.array([np.nan if e.fill is None else float(np.float32(e.fill)) for e in encoded])
    parts: dict[str, list[np.ndarray]] = {key: [] for key in (*_NODE_INTS, "splits", "modes", "leaf_targetids",
                                                               "leaf_weights", "tree_roots", "shares")}
    node_base = leaf_base = 0
    for number, tree in enumerate(trees):
        is_leaf = tree.children_left == -1
        interior, leaves = np.flatnonzero(~is_leaf), np.flatnonzero(is_leaf)
        value = tree.value[leaves, 0, :]
        total = value.sum(axis=1, keepdims=True)
        shares = value / np.where(total == 0.0, 1.0, total)  # DecisionTreeClassifier.predict_proba
        if len(interior) == 0:  # a tree that never split: one node whose branches both reach its leaf
            nodes = {"featureids": [0], "truenodeids": [0], "trueleafs": [1], "falsenodeids": [0],
                     "falseleafs": [1], "missing_value_tracks_true": [1], "splits": [0.0], "modes": [BRANCH_LEQ]}
        else:
            nodes = _forest_splits(tree, interior, is_leaf, column, one_hot, category, fill)
        for key in (*_NODE_INTS, "splits", "modes"):
            values = np.asarray(nodes[key])
            if key in ("truenodeids", "falsenodeids"):
                values = values + np.where(np.asarray(nodes[key.replace("nodeids", "leafs")]) == 1,
                                           leaf_base, node_base)
            parts[key].append(values)
        parts["tree_roots"].append(np.array([node_base]))
        if n_targets == 1:
            parts["leaf_targetids"].append(np.zeros(len(leaves)))
            parts["leaf_weights"].append(shares[:, 1])
        else:
            parts["leaf_targetids"].append(np.full(len(leaves), number))
            parts["leaf_weights"].append(np.arange(leaf_base, leaf_base + len(leaves), dtype=np.float64))
            parts["shares"].append(shares)
        node_base += len(nodes["modes"])
        leaf_base += len(leaves)
    joined = {key: np.concatenate(values) for key, values in parts.items() if values}
    nodes = {key: joined[key].astype(np.int64) for key in _NODE_INTS}
    nodes["splits"] = joined["splits"].astype(np.float64)
    nodes["modes"] = joined["modes"].astype(np.uint8)
    ensemble = _Ensemble(nodes, joined["leaf_targetids"].astype(np.int64), joined["leaf_weights"].astype(np.float64),
                         joined["tree_roots"].astype(np.int64), np.empty(0))
    return ensemble, joined.get("shares"), len(trees)


def _forest_splits(tree, interior: np.ndarray, is_leaf: np.ndarray, column: np.ndarray, one_hot: np.ndarray,
                   category: np.ndarray, fill: np.ndarray) -> dict[str, np.ndarray]:
    """One tree's interior nodes (ids within the tree: interior nodes, then leaves, each in order)."""
    ids = np.empty(len(is_leaf), dtype=np.int64)
    ids[interior] = np.arange(len(interior))
    ids[is_leaf] = np.arange(int(is_leaf.sum()))
    left, right = tree.children_left[interior], tree.children_right[interior]
    encoded = tree.feature[interior]
    threshold = tree.threshold[interior].astype(np.float64)
    hot, code = one_hot[encoded], category[encoded]
    imputed = fill[encoded]
    missing_left = np.where(np.isnan(imputed), tree.missing_go_to_left[interior].astype(bool), imputed <= threshold)
    splits, modes = threshold.copy(), np.full(len(interior), BRANCH_LEQ, dtype=np.uint8)
    # A one-hot column's value is 0.0 or 1.0 (0.0 when missing); a threshold in [0, 1) separates its
    # code from the rest, one past either end sends every row the same way.
    zero_left, one_left = threshold >= 0.0, threshold >= 1.0
    not_equal = hot & zero_left & ~one_left & ~np.isnan(code)
    modes[not_equal], splits[not_equal] = BRANCH_NEQ, code[not_equal]
    everything = hot & ~not_equal
    splits[everything] = np.where(zero_left[everything], np.inf, -np.inf)
    missing_left[hot] = zero_left[hot]
    return {"featureids": column[encoded], "truenodeids": ids[left], "trueleafs": is_leaf[left].astype(np.int64),
            "falsenodeids": ids[right], "falseleafs": is_leaf[right].astype(np.int64),
            "missing_value_tracks_true": missing_left.astype(np.int64), "splits": splits, "modes": modes}


def _doubles(name: str, values):
    from onnx import numpy_helper

    return numpy_helper.from_array(np.asarray(values, dtype=np.float64), name)


def _constant(name: str, values):
    from onnx import helper

    return helper.make_node("Constant", [], [name], value=_doubles(name, values))


def _tree_ensemble(ensemble: _Ensemble, source: str, n_targets: int):
    """The TreeEnsemble node: ``source`` rows in, per-target sums of the leaves they reach out."""
    from onnx import helper, numpy_helper

    attributes = {f"nodes_{key}": ensemble.nodes[key].tolist() for key in _NODE_INTS}
    attributes["nodes_splits"] = _doubles("nodes_splits", ensemble.nodes["splits"])
    attributes["nodes_modes"] = numpy_helper.from_array(ensemble.nodes["modes"], "nodes_modes")
    if len(ensemble.membership):
        attributes["membership_values"] = _doubles("membership_values", ensemble.membership)
    return helper.make_node("TreeEnsemble", [source], ["sums"], domain="ai.onnx.ml",
                            n_targets=n_targets, aggregate_function=1,  # SUM
                            leaf_targetids=ensemble.leaf_targetids.tolist(),
                            leaf_weights=_doubles("leaf_weights", ensemble.leaf_weights),
                            tree_roots=ensemble.tree_roots.tolist(), **attributes)


def _boosted_graph(estimator: HistGradientBoostingClassifier, spec: FeatureSpec, n_targets: int) -> list:
    """The trees' sums plus the baseline, through the link function."""
    from onnx import helper

    nodes = [_tree_ensemble(_BoostedTrees(estimator, spec).tables.ensemble(), "matrix", n_targets),
             _constant("baseline", np.asarray(estimator._baseline_prediction).reshape(1, n_targets)),
             helper.make_node("Add", ["sums", "baseline"], ["raw"])]
    if n_targets == 1:
        return [*nodes, helper.make_node("Sigmoid", ["raw"], ["positive"])]
    return [*nodes, helper.make_node("Softmax", ["raw"], ["probabilities"], axis=1)]


def _forest_graph(forest, encoded: list[_Encoded], n_targets: int) -> list:
    """The trees' average (their sum divided by their number, as ForestClassifier.predict_proba)
    of the matrix rounded to float32; with more than two classes, the sum of the shares of the
    leaves each tree reaches (:func:`_forest_ensemble`)."""
    from onnx import TensorProto, helper

    if any(not e.one_hot and (e.mean, e.scale) != (0.0, 1.0) for e in encoded):
        raise NoFastPath("the forest's thresholds are on scaled numbers (a StandardScaler before a tree model)")
    if forest.n_outputs_ != 1:
        raise NoFastPath(f"the forest predicts {forest.n_outputs_} outputs")
    ensemble, shares, n_trees = _forest_ensemble(forest, encoded, n_targets)
    nodes = [helper.make_node("Cast", ["matrix"], ["single"], to=TensorProto.FLOAT),
             helper.make_node("Cast", ["single"], ["rounded"], to=TensorProto.DOUBLE),
             _tree_ensemble(ensemble, "rounded", n_targets if shares is None else n_trees),
             _constant("n_trees", [[n_trees]])]
    if shares is None:
        return [*nodes, helper.make_node("Div", ["sums", "n_trees"], ["positive"])]
    return [*nodes,
            helper.make_node("Cast", ["sums"], ["leaves"], to=TensorProto.INT64),  # per row, each tree's leaf
            _constant("shares", shares),
            helper.make_node("Gather", ["shares", "leaves"], ["reached"], axis=0),
            helper.make_node("Constant", [], ["trees_axis"], value=helper.make_tensor(
                "trees_axis", TensorProto.INT64, [1], [1])),
            helper.make_node("ReduceSum", ["reached", "trees_axis"], ["total"], keepdims=0),
            helper.make_node("Div", ["total", "n_trees"], ["probabilities"])]


def _linear_graph(model: LogisticRegression, encoded: list[_Encoded]) -> list:
    """The encoder's matrix, computed from the spec's, times the coefficients plus the intercept,
    through ``LogisticRegression.predict_proba``'s link: the logistic function for two classes,
    softmax for a multinomial model, else one logistic per class, normalised."""
    from onnx import TensorProto, helper

    if any(not e.one_hot and e.fill is None for e in encoded):
        raise NoFastPath("the logistic regression takes numbers no imputer fills (scikit-learn refuses a "
                         "missing one)")
    n_classes = len(model.classes_)
    multi_class = getattr(model, "multi_class", "deprecated")
    one_vs_rest = multi_class in ("ovr", "warn") or (
        multi_class in ("auto", "deprecated") and (n_classes <= 2 or model.solver == "liblinear"))
    one_hot = np.array([e.one_hot for e in encoded])
    nodes = [
        helper.make_node("Constant", [], ["columns"], value=helper.make_tensor(
            "columns", TensorProto.INT64, [len(encoded)], [e.column for e in encoded])),
        helper.make_node("Gather", ["matrix", "columns"], ["values"], axis=1),
        # numbers: imputed, then scaled
        helper.make_node("IsNaN", ["values"], ["missing"]),
        _constant("fills", [[0.0 if e.one_hot else e.fill for e in encoded]]),
        helper.make_node("Where", ["missing", "fills", "values"], ["filled"]),
        _constant("means", [[e.mean for e in encoded]]),
        helper.make_node("Sub", ["filled", "means"], ["centred"]),
        _constant("scales", [[e.scale for e in encoded]]),
        helper.make_node("Div", ["centred", "scales"], ["scaled"]),
        # categories: 1.0 where the code is the column's (-1 for a category the spec lacks: none is)
        _constant("codes", [[-1.0 if e.category is None else e.category for e in encoded]]),
        helper.make_node("Equal", ["values", "codes"], ["is_code"]),
        helper.make_node("Cast", ["is_code"], ["indicators"], to=TensorProto.DOUBLE),
        helper.make_node("Constant", [], ["one_hot"], value=helper.make_tensor(
            "one_hot", TensorProto.BOOL, [1, len(encoded)], one_hot.tolist())),
        helper.make_node("Where", ["one_hot", "indicators", "scaled"], ["encoded"]),
        _constant("coefficients", model.coef_.T),
        helper.make_node("MatMul", ["encoded", "coefficients"], ["product"]),
        _constant("intercept", model.intercept_.reshape(1, -1)),
        helper.make_node("Add", ["product", "intercept"], ["decision"]),
    ]
    if n_classes == 2:
        return [*nodes, helper.make_node("Sigmoid", ["decision"], ["positive"])]
    if not one_vs_rest:
        return [*nodes, helper.make_node("Softmax", ["decision"], ["probabilities"], axis=1)]
    return [*nodes, helper.make_node("Sigmoid", ["decision"], ["each"]),
            helper.make_node("Constant", [], ["classes_axis"], value=helper.make_tensor(
                "classes_axis", TensorProto.INT64, [1], [1])),
            helper.make_node("ReduceSum", ["each", "classes_axis"], ["total"], keepdims=1),
            helper.make_node("Div", ["each", "total"], ["probabilities"])]


def export_onnx(estimator, spec: FeatureSpec) -> bytes:
    """The estimator as ONNX bytes (matrix -> probabilities). Raises :class:`NoFastPath`, saying
    why, for a model the translation does not know (then scikit-learn serves it)."""
    from onnx import TensorProto, checker, helper

    n_classes = len(estimator.classes_)
    n_targets = 1 if n_classes == 2 else n_classes  # two classes: the positive one's score alone
    if isinstance(estimator, HistGradientBoostingClassifier):
        nodes, name = _boosted_graph(estimator, spec, n_targets), "slipway_trees"
    else:
        model, encoded = _behind_the_encoder(estimator, spec)
        if isinstance(model, LogisticRegression):
            nodes, name = _linear_graph(model, encoded), "slipway_linear"
        else:
            nodes, name = _forest_graph(model, encoded, n_targets), "slipway_trees"
    if n_classes == 2:  # the positive class's probability; the negative's is what it leaves
        nodes += [_constant("one", [[1.0]]), helper.make_node("Sub", ["one", "positive"], ["negative"]),
                  helper.make_node("Concat", ["negative", "positive"], ["probabilities"], axis=1)]
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("matrix", TensorProto.DOUBLE, [None, len(spec.columns)])],
        [helper.make_tensor_value_info("probabilities", TensorProto.DOUBLE, [None, n_classes])])
    onnx_model = helper.make_model(graph, producer_name="slipway", opset_imports=[
        helper.make_opsetid("", 21), helper.make_opsetid("ai.onnx.ml", 5)])
    checker.check_model(onnx_model, full_check=True)
    return onnx_model.SerializeToString()


# Rows per onnxruntime call. A multiclass forest's graph holds a double per row, tree and class at
# once (100 trees of 7 classes: 5.6 MB per 1,000 rows), so a larger matrix, such as evaluate's
# whole test split, goes in slices of this many.
ROWS_PER_CALL = 1000


class OnnxPredictor:
    """Runs the exported model: the float matrix in, class probabilities out."""

    def __init__(self, model: bytes):
        # onnxruntime (1.32 on Linux) uploads usage telemetry to Microsoft and writes a device id
        # under $HOME/.cache when imported, unless this is set first: a server behind a no-egress
        # NetworkPolicy with a read-only root filesystem must do neither. ORT_DISABLE_TELEMETRY=0
        # in the environment opts back in.
        os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
        import onnxruntime

        options = onnxruntime.SessionOptions()
        # One thread: each gunicorn worker is one process per core (see gunicorn_conf).
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        self._outputs = ["probabilities"]

    def predict_proba(self, matrix: np.ndarray) -> np.ndarray:
        matrix = np.ascontiguousarray(matrix, dtype=np.float64)
        if len(matrix) <= ROWS_PER_CALL:
            return self._session.run(self._outputs, {"matrix": matrix})[0]
        return np.concatenate([self._session.run(self._outputs, {"matrix": matrix[start:start + ROWS_PER_CALL]})[0]
                               for start in range(0, len(matrix), ROWS_PER_CALL)])


def max_difference(predictor: OnnxPredictor, estimator, spec: FeatureSpec, matrix: np.ndarray) -> float:
    """Largest absolute difference between the fast path and scikit-learn on these rows, for the
    whole batch and for one row at a time on the first few (the server's common case)."""
    reference = estimator.predict_proba(spec.frame(matrix))
    batch = np.abs(predictor.predict_proba(matrix) - reference).max()
    single = max(np.abs(predictor.predict_proba(matrix[i:i + 1]) - reference[i]).max()
                 for i in range(min(len(matrix), 8)))
    return float(max(batch, single))
