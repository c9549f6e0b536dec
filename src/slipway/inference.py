"""A fast inference path for HistGradientBoostingClassifier: every tree as flat numpy arrays.

scikit-learn's own ``predict_proba`` spends most of a one-row call in input validation, pandas
and the column transformer (milliseconds), not in the trees. This evaluates all trees at once, one
vectorised step per tree level, on the float matrix from :meth:`FeatureSpec.matrix`. It follows
``_predict_one_from_raw_data`` in scikit-learn's ``_predictor.pyx`` (missing values, categorical
bitsets, unknown categories as missing). The ``train`` stage checks it against scikit-learn's
``predict_proba`` before the bundle is written, and the server again at load; any other
estimator is served through scikit-learn.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from slipway.featureset import FeatureSpec

# Up to this many rows the vectorised walk wins; beyond it, scikit-learn's compiled per-tree
# predictors on the prepared matrix do (about 5 us of call overhead per tree, then fast per row).
VECTORISED_MAX_ROWS = 8


class CompiledTrees:
    def __init__(self, estimator: HistGradientBoostingClassifier, spec: FeatureSpec):
        is_categorical = np.asarray(estimator.is_categorical_ if estimator.is_categorical_ is not None
                                    else np.zeros(len(spec.columns), dtype=bool))
        columns = list(spec.columns)
        # The estimator's internal column order: categorical columns first (its ColumnTransformer).
        internal = [c for c, cat in zip(columns, is_categorical, strict=True) if cat] + \
                   [c for c, cat in zip(columns, is_categorical, strict=True) if not cat]
        self.permutation = np.array([columns.index(c) for c in internal])
        # Spec category codes to the estimator's ordinal codes (-> NaN when it never saw one).
        self.recode = {}
        if estimator._preprocessor is not None:
            encoder = estimator._preprocessor.named_transformers_["encoder"]
            for position, name in enumerate(internal[: int(is_categorical.sum())]):
                known = {str(c): i for i, c in enumerate(encoder.categories_[position])}
                self.recode[position] = np.array(
                    [known.get(c, np.nan) for c in spec.categorical[name]] + [np.nan])

        features, thresholds, children, missing_left, cat_row, values = [], [], [], [], [], []
        leaves, roots, classes_of_tree, bitsets = [], [], [], []
        offset = cat_rows = 0
        for iteration in estimator._predictors:
            for k, predictor in enumerate(iteration):
                nodes = predictor.nodes
                leaf = nodes["is_leaf"].astype(bool)
                own = np.arange(len(nodes)) + offset
                categorical = nodes["is_categorical"].astype(bool) & ~leaf
                features.append(np.where(leaf, 0, nodes["feature_idx"]))
                # NaN never compares <=: categorical nodes decide through their bitset row alone.
                thresholds.append(np.where(categorical, np.nan, nodes["num_threshold"]))
                # Column 0: right child, column 1: left child. Leaves point to themselves.
                children.append(np.column_stack([np.where(leaf, own, nodes["right"] + offset),
                                                 np.where(leaf, own, nodes["left"] + offset)]))
                missing_left.append(nodes["missing_go_to_left"].astype(bool))
                cat_row.append(np.where(categorical, nodes["bitset_idx"] + cat_rows, -1))
                values.append(nodes["value"])
                leaves.append(leaf)
                bitsets.append(predictor.raw_left_cat_bitsets)
                cat_rows += len(predictor.raw_left_cat_bitsets)
                roots.append(offset)
                classes_of_tree.append(k)
                offset += len(nodes)
        self.feature = np.concatenate(features).astype(np.intp)
        self.threshold = np.concatenate(thresholds)
        self.children = np.vstack(children).astype(np.intp)
        self.missing_left = np.concatenate(missing_left)
        self.is_leaf = np.concatenate(leaves)
        self.value = np.concatenate(values)
        self.roots = np.array(roots, dtype=np.intp)
        self.depth = max(int(p.nodes["depth"].max()) for it in estimator._predictors for p in it)
        # Left-going categories per categorical node as a boolean lookup of 256 codes; the last
        # row (index -1, used by numeric nodes) is all False.
        words = np.vstack(bitsets) if cat_rows else np.zeros((0, 8), dtype=np.uint32)
        bits = (words[:, :, None] >> np.arange(32, dtype=np.uint32)) & 1
        self.cat_left = np.vstack([bits.reshape(len(words), 256).astype(bool),
                                   np.zeros((1, 256), dtype=bool)])
        self.cat_row = np.concatenate(cat_row).astype(np.intp)
        n_classes = len(estimator.classes_)
        width = 1 if n_classes == 2 else n_classes
        self.tree_class = np.zeros((len(roots), width))
        self.tree_class[np.arange(len(roots)), classes_of_tree] = 1.0
        self.baseline = np.asarray(estimator._baseline_prediction, dtype="float64").ravel()
        self.binary = n_classes == 2
        self.predictors = [(k, p) for iteration in estimator._predictors for k, p in enumerate(iteration)]
        self.known_categories = estimator._bin_mapper.make_known_categories_bitsets()

    def prepare(self, matrix: np.ndarray) -> np.ndarray:
        """Spec column order and codes to the estimator's internal ones."""
        x = matrix[:, self.permutation]
        for position, table in self.recode.items():
            codes = x[:, position]
            x[:, position] = table[np.where(np.isnan(codes), len(table) - 1, codes).astype(np.intp)]
        return x

    def raw_predict(self, matrix: np.ndarray) -> np.ndarray:
        x = self.prepare(matrix)
        if len(x) > VECTORISED_MAX_ROWS:
            raw = np.tile(self.baseline, (len(x), 1))
            x = np.ascontiguousarray(x)
            for k, predictor in self.predictors:
                raw[:, k] += predictor.predict(x, *self.known_categories, 1)
            return raw
        missing = np.isnan(x)
        codes = np.clip(np.where(missing, 0, x), 0, 255).astype(np.intp)
        rows = np.arange(len(x))[:, None]
        node = np.broadcast_to(self.roots, (len(x), len(self.roots))).copy()
        for _ in range(self.depth):
            if self.is_leaf[node].all():
                break
            feature = self.feature[node]
            goes_left = ((x[rows, feature] <= self.threshold[node])
                         | self.cat_left[self.cat_row[node], codes[rows, feature]])
            goes_left = np.where(missing[rows, feature], self.missing_left[node], goes_left)
            node = self.children[node, goes_left.view(np.int8)]
        return self.value[node] @ self.tree_class + self.baseline

    def predict_proba(self, matrix: np.ndarray) -> np.ndarray:
        raw = self.raw_predict(matrix)
        if self.binary:
            positive = 1.0 / (1.0 + np.exp(-raw[:, 0]))
            return np.column_stack([1.0 - positive, positive])
        raw = raw - raw.max(axis=1, keepdims=True)
        exp = np.exp(raw)
        return exp / exp.sum(axis=1, keepdims=True)


def compile_estimator(estimator, spec: FeatureSpec) -> CompiledTrees | None:
    """The fast path for the estimators it supports; ``None`` means: use scikit-learn."""
    if isinstance(estimator, HistGradientBoostingClassifier):
        return CompiledTrees(estimator, spec)
    return None


# The fast path must agree with scikit-learn to within floating-point summation order.
TOLERANCE = 1e-9


def max_difference(compiled: CompiledTrees, estimator, spec: FeatureSpec, matrix: np.ndarray) -> float:
    """Largest absolute difference between the fast path and scikit-learn on these rows, through
    both of the fast path's regimes (small batches and large ones)."""
    reference = estimator.predict_proba(spec.frame(matrix))
    small = min(len(matrix), VECTORISED_MAX_ROWS)
    fast = np.vstack([compiled.predict_proba(matrix[:small]), compiled.predict_proba(matrix[small:])]) \
        if len(matrix) > small else compiled.predict_proba(matrix)
    return float(np.abs(fast - reference).max())
