"""The fast inference path: a HistGradientBoostingClassifier as an ONNX model, run by onnxruntime.

scikit-learn's own ``predict_proba`` spends most of a one-row call in input validation, pandas
and its per-tree Python loop (milliseconds), not in the trees. :func:`export_onnx` writes the
fitted trees as one ``ai.onnx.ml`` ``TreeEnsemble`` (opset 5, in float64) followed by the link
function, taking the float matrix of :meth:`FeatureSpec.matrix` (categories as the spec's codes)
and returning class probabilities; onnxruntime evaluates it in about 15 us for one row.

skl2onnx cannot convert this estimator (categorical splits), so the trees are translated here,
node by node, following ``_predict_one_from_raw_data`` in scikit-learn's ``_predictor.pyx``:
missing values go where ``missing_go_to_left`` says, categorical splits become set membership
tests, and categories the estimator never saw count as missing. The ``train`` stage checks the
result against scikit-learn's ``predict_proba`` before the bundle is written, and the server again
at load; any other estimator is served through scikit-learn.
"""

from __future__ import annotations

import os

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from slipway.featureset import FeatureSpec

# The fast path must agree with scikit-learn to within floating-point summation order.
TOLERANCE = 1e-9

# ai.onnx.ml TreeEnsemble node modes (opset 5).
BRANCH_LEQ, BRANCH_MEMBER = 0, 6


def _in_bitset(words: np.ndarray, value: int) -> bool:
    return bool((int(words[value // 32]) >> (value % 32)) & 1)


class _TreeTables:
    """The ``nodes_*`` / ``leaf_*`` attribute lists of one TreeEnsemble, filled tree by tree."""

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
        self.nodes: dict[str, list] = {k: [] for k in (
            "featureids", "splits", "modes", "truenodeids", "trueleafs", "falsenodeids", "falseleafs",
            "missing_value_tracks_true")}
        self.leaf_targetids: list[int] = []
        self.leaf_weights: list[float] = []
        self.tree_roots: list[int] = []
        self.membership: list[float] = []

    def _leaf(self, target: int, value: float) -> int:
        self.leaf_targetids.append(target)
        self.leaf_weights.append(float(value))
        return len(self.leaf_weights) - 1

    def _node(self, feature: int, split: float, mode: int, missing_left: bool,
              true: tuple[int, bool], false: tuple[int, bool]) -> None:
        for key, value in (("featureids", feature), ("splits", split), ("modes", mode),
                           ("truenodeids", true[0]), ("trueleafs", int(true[1])),
                           ("falsenodeids", false[0]), ("falseleafs", int(false[1])),
                           ("missing_value_tracks_true", int(missing_left))):
            self.nodes[key].append(value)

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

    def add_tree(self, nodes: np.ndarray, bitsets: np.ndarray, target: int) -> None:
        leaf = nodes["is_leaf"].astype(bool)
        if leaf[0]:  # a tree that never split: one node whose branches both reach its leaf
            only = (self._leaf(target, nodes["value"][0]), True)
            self.tree_roots.append(len(self.nodes["modes"]))
            self._node(0, 0.0, BRANCH_LEQ, True, only, only)
            return
        ids = {}
        for i in np.flatnonzero(leaf):
            ids[i] = (self._leaf(target, nodes["value"][i]), True)
        interior = np.flatnonzero(~leaf)
        start = len(self.nodes["modes"])
        ids.update({i: (start + n, False) for n, i in enumerate(interior)})
        self.tree_roots.append(start)
        for i in interior:
            node = nodes[i]
            column = self.spec_column[int(node["feature_idx"])]
            true, false = ids[int(node["left"])], ids[int(node["right"])]
            missing_left = bool(node["missing_go_to_left"])
            if not node["is_categorical"]:
                self._node(column, float(node["num_threshold"]), BRANCH_LEQ, missing_left, true, false)
                continue
            members = self._left_categories(node, bitsets)
            if members:
                self._node(column, 0.0, BRANCH_MEMBER, missing_left, true, false)
                self.membership += members + [np.nan]  # each node's set ends with NaN
            else:  # no known category goes left (codes are >= 0): only missing values may
                self._node(column, -1.0, BRANCH_LEQ, missing_left, true, false)


def export_onnx(estimator, spec: FeatureSpec) -> bytes | None:
    """The estimator as ONNX bytes (matrix -> probabilities), or ``None`` when this path does
    not support it (then scikit-learn serves it)."""
    if not isinstance(estimator, HistGradientBoostingClassifier):
        return None
    from onnx import TensorProto, checker, helper, numpy_helper

    tables = _TreeTables(estimator, spec)
    for iteration in estimator._predictors:
        for target, predictor in enumerate(iteration):
            tables.add_tree(predictor.nodes, predictor.raw_left_cat_bitsets, target)
    n_classes = len(estimator.classes_)
    n_targets = 1 if n_classes == 2 else n_classes

    def doubles(name: str, values) -> TensorProto:
        return numpy_helper.from_array(np.asarray(values, dtype=np.float64), name)

    attributes = {f"nodes_{key}": values for key, values in tables.nodes.items() if key not in ("splits", "modes")}
    attributes["nodes_splits"] = doubles("nodes_splits", tables.nodes["splits"])
    attributes["nodes_modes"] = numpy_helper.from_array(np.asarray(tables.nodes["modes"], dtype=np.uint8),
                                                        "nodes_modes")
    if tables.membership:
        attributes["membership_values"] = doubles("membership_values", tables.membership)
    trees = helper.make_node("TreeEnsemble", ["matrix"], ["sums"], domain="ai.onnx.ml",
                             n_targets=n_targets, aggregate_function=1,  # SUM
                             leaf_targetids=tables.leaf_targetids,
                             leaf_weights=doubles("leaf_weights", tables.leaf_weights),
                             tree_roots=tables.tree_roots, **attributes)
    baseline = helper.make_node("Constant", [], ["baseline"], value=doubles(
        "baseline", np.asarray(estimator._baseline_prediction, dtype=np.float64).reshape(1, n_targets)))
    raw = helper.make_node("Add", ["sums", "baseline"], ["raw"])
    if n_classes == 2:
        link = [helper.make_node("Sigmoid", ["raw"], ["positive"]),
                helper.make_node("Constant", [], ["one"], value=doubles("one", [[1.0]])),
                helper.make_node("Sub", ["one", "positive"], ["negative"]),
                helper.make_node("Concat", ["negative", "positive"], ["probabilities"], axis=1)]
    else:
        link = [helper.make_node("Softmax", ["raw"], ["probabilities"], axis=1)]
    graph = helper.make_graph(
        [trees, baseline, raw, *link], "slipway_trees",
        [helper.make_tensor_value_info("matrix", TensorProto.DOUBLE, [None, len(spec.columns)])],
        [helper.make_tensor_value_info("probabilities", TensorProto.DOUBLE, [None, n_classes])])
    model = helper.make_model(graph, producer_name="slipway",
                              opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("ai.onnx.ml", 5)])
    checker.check_model(model, full_check=True)
    return model.SerializeToString()


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
        return self._session.run(self._outputs, {"matrix": np.ascontiguousarray(matrix, dtype=np.float64)})[0]


def max_difference(predictor: OnnxPredictor, estimator, spec: FeatureSpec, matrix: np.ndarray) -> float:
    """Largest absolute difference between the fast path and scikit-learn on these rows, for the
    whole batch and for one row at a time on the first few (the server's common case)."""
    reference = estimator.predict_proba(spec.frame(matrix))
    batch = np.abs(predictor.predict_proba(matrix) - reference).max()
    single = max(np.abs(predictor.predict_proba(matrix[i:i + 1]) - reference[i]).max()
                 for i in range(min(len(matrix), 8)))
    return float(max(batch, single))
