"""The served model: a verified bundle plus what serving needs at hand (spec, classes, bins)."""

from __future__ import annotations

import ctypes
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from slipway import bundle
from slipway.featureset import FeatureSpec
from slipway.inference import TOLERANCE, OnnxPredictor, max_difference
from slipway.serving.logs import APP_LOGGER

log = logging.getLogger(APP_LOGGER)


@dataclass
class ServedModel:
    bundle: bundle.Bundle
    spec: FeatureSpec = field(init=False)
    classes: list = field(init=False)
    fast: OnnxPredictor | None = field(init=False)

    def __post_init__(self) -> None:
        self.spec = FeatureSpec.from_dict(self.bundle.metadata["features"])
        # Python values, so labels serialise as the training data had them (1, not "1").
        self.classes = [c.item() if isinstance(c, np.generic) else c for c in self.bundle.estimator.classes_]
        self.fast = OnnxPredictor(self.bundle.onnx) if self.bundle.onnx else None

    @property
    def version(self) -> str:
        return self.bundle.version

    @property
    def metadata(self) -> dict:
        return self.bundle.metadata

    def predict_proba(self, raw: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Model input matrix (the pipeline's own feature code) and class probabilities."""
        matrix = self.spec.matrix(raw)
        return matrix, self.predict_matrix(matrix)

    def predict_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """Class probabilities of model input rows: onnxruntime when the bundle has the fast path,
        else the estimator's own ``predict_proba``."""
        if self.fast is not None:
            return self.fast.predict_proba(matrix)
        return self.bundle.estimator.predict_proba(self.spec.frame(matrix))

    def example_instance(self) -> dict:
        """One typical request row, for the model card and the OpenAPI description: each numeric
        input at its training median, each categorical one at its most common training category
        (``null`` for an input the reference does not describe); a time input at the newest moment
        of the training data, as ISO 8601 text."""
        reference = self.metadata.get("reference", {})
        example = {}
        for name in self.spec.inputs:
            entry = reference.get(name, {})
            if name in self.spec.categorical:
                categories = self.spec.categorical[name]
                shares = entry.get("fractions", [])[:len(categories)]  # the last bin is "missing"
                example[name] = categories[int(np.argmax(shares))] if len(shares) == len(categories) > 0 else None
            elif name in self.spec.times:
                example[name] = self.metadata.get("training", {}).get("data_until")
            elif entry.get("edges"):
                median = float(f"{entry['edges'][len(entry['edges']) // 2]:.6g}")  # deciles: the middle edge
                example[name] = int(median) if median.is_integer() else median
            else:
                example[name] = None
        return example

    def probe_rows(self) -> dict[str, np.ndarray]:
        """Plausible rows built from the reference distributions, to verify predictions work:
        every category of each categorical input, numeric inputs at their reference edges."""
        reference = self.metadata.get("reference", {})
        n = max([len(c) for c in self.spec.categorical.values()] + [len(e.get("edges", []))
                 for e in reference.values()] + [2])
        rows = {}
        for name in self.spec.inputs:
            if name in self.spec.categorical:
                cats = self.spec.categorical[name] or [None]
                rows[name] = np.array([cats[i % len(cats)] for i in range(n)], dtype=object)
            else:
                edges = reference.get(name, {}).get("edges") or [0.0]
                rows[name] = np.array([edges[i % len(edges)] for i in range(n)], dtype="float64")
        return rows


def load(model_dir: Path) -> tuple[ServedModel | None, str | None]:
    """The verified model, or ``None`` and the reason (the server stays up, not ready)."""
    try:
        model = ServedModel(bundle.load(model_dir))
        matrix, proba = model.predict_proba(model.probe_rows())
        if not np.isfinite(proba).all() or not np.allclose(proba.sum(axis=1), 1.0):
            raise bundle.BundleError(f"probe prediction returned {proba!r}")
        if model.fast is not None:
            difference = max_difference(model.fast, model.bundle.estimator, model.spec, matrix)
            if difference > TOLERANCE:
                raise bundle.BundleError(f"fast inference path differs from scikit-learn by {difference:.3g}")
            # onnxruntime answers alone from here, so the estimator goes: a forest's is about a fifth
            # of a worker's memory (the 7-class forest's server: 643 MiB with it, 529 without).
            model.bundle = replace(model.bundle, estimator=None)
    except Exception as exc:  # any failure leaves the server up but not ready
        reason = str(exc) if isinstance(exc, bundle.BundleError) else f"{type(exc).__name__}: {exc}"
        return None, reason
    release_freed_memory()
    return model, None


def release_freed_memory() -> None:
    """Hand the C heap's free pages back to the system (glibc's ``malloc_trim``). Loading a model
    frees most of what it built on the way, onnxruntime's session of a forest above all, and glibc
    keeps freed pages for later use: in each worker, for good. Measured: a 307k-node forest's session
    held 117 MiB, 35 after this; a 487k-node one 183, then 59. Not glibc (macOS, musl): nothing to do."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.malloc_trim(0)
