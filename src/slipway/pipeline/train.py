"""train: fit the estimator from ``params.yaml`` and write the model bundle to ``models/``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from sklearn.utils._param_validation import InvalidParameterError  # what fit raises; no public name

from slipway import bundle, io
from slipway.errors import DataError, ParamsError, SlipwayError
from slipway.featureset import FeatureSpec
from slipway.inference import TOLERANCE, NoFastPath, OnnxPredictor, export_onnx, max_difference
from slipway.model.estimator import make_estimator
from slipway.monitoring.reference import build_reference
from slipway.params import lookup, random_seed
from slipway.pipeline import paths
from slipway.provenance import git_commit, uncommitted_changes

DVC_LOCK = Path("dvc.lock")


def data_hashes(lock_path: Path = DVC_LOCK) -> dict[str, str]:
    """md5 of the raw data as ``dvc.lock`` records it for the ``ingest`` stage (DVC writes each
    stage's lock entry when the stage finishes, so it is there by the time ``train`` runs)."""
    if not lock_path.is_file():
        return {}
    lock = yaml.safe_load(lock_path.read_text()) or {}
    deps = lock.get("stages", {}).get("ingest", {}).get("deps", [])
    return {d["path"]: d.get("md5") or d.get("etag") or "" for d in deps
            if not str(d["path"]).endswith(".py")}


def json_value(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def fit(features: pd.DataFrame, spec: FeatureSpec, params: dict[str, Any]):
    target = lookup(params, "data.target", str)
    estimator = make_estimator(
        lookup(params, "train.estimator", str),
        # Empty (every line under it commented out, which YAML reads as null): the estimator's defaults
        lookup(params, "train.hyperparameters", (dict, type(None)), {}) or {},
        random_seed(params, "train.seed"),
        spec,
    )
    try:
        return estimator.fit(features[spec.columns], features[target])
    except InvalidParameterError as exc:  # scikit-learn checks the values when fitting
        raise ParamsError(f"params: train.hyperparameters: {exc}") from None
    except ValueError as exc:  # what the estimator cannot take (HistGradientBoosting: <= 255 categories)
        raise DataError(f"train: {estimator_name(estimator)} cannot fit these features: {exc}") from None


def positive_class(labels: pd.Series, params: dict[str, Any]) -> Any:
    """``data.positive_class``, one of the labels; unset, the last in sorted order (1, True,
    "yes"). F1, the ROC and precision-recall curves and the served score are that class's: with
    labels such as "churn" and "stay", the last is the wrong one. Checked before the fit, so a
    typo costs no training."""
    classes = sorted(labels.dropna().unique().tolist())
    wanted = lookup(params, "data.positive_class", (str, int, bool, type(None)), None)
    if len(classes) != 2:
        if wanted is not None:
            raise ParamsError(f"params: data.positive_class is {wanted!r}, but {labels.name} has "
                              f"{len(classes)} classes; it applies to binary targets only")
        return None
    if wanted is None:
        return json_value(classes[-1])
    matches = [c for c in classes if str(c) == str(wanted)]
    if not matches:
        raise ParamsError(f"params: data.positive_class {wanted!r} is not a class of {labels.name}: "
                          f"{[json_value(c) for c in classes]}")
    return json_value(matches[0])


def estimator_name(estimator) -> str:
    """What the model is: the last step of a scikit-learn pipeline (encoding first, then the model)."""
    steps = getattr(estimator, "steps", None)
    return type(steps[-1][1] if steps else estimator).__name__


def metadata(estimator, features: pd.DataFrame, spec: FeatureSpec, params: dict[str, Any], positive: Any) -> dict:
    classes = [json_value(c) for c in estimator.classes_]
    target = lookup(params, "data.target", str)
    timestamp = lookup(params, "data.timestamp_column", (str, type(None)), None)
    return {
        "task": "binary" if len(classes) == 2 else "multiclass",
        "target": target,
        "classes": classes,
        "positive_class": positive,
        "estimator": estimator_name(estimator),
        "features": spec.to_dict(),
        "inputs": spec.inputs,
        "reference": build_reference(features, spec),
        "training": {
            "rows": len(features),
            # ingest leaves the timestamps naive UTC; the model card shows this as it is.
            "data_until": features[timestamp].max().isoformat(timespec="seconds") + "Z" if timestamp else None,
            "class_fractions": {
                str(k): round(float(v), 6)
                for k, v in features[target].value_counts(normalize=True).sort_index().items()
            },
        },
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        # dvc.lock and the uncached outputs change as `dvc repro` runs: the pipeline's own writes.
        "git_uncommitted": uncommitted_changes((str(DVC_LOCK), *paths.uncached_outputs(Path(".")))),
        "data": {
            "raw": data_hashes(),
            "train_features_sha256": io.sha256_file(paths.TRAIN_FEATURES),
        },
        # The feature params are in "features" (the spec); these are the estimator's.
        "params": {"train": lookup(params, "train", dict)},
    }


def fast_inference(estimator, features: pd.DataFrame, spec: FeatureSpec,
                   rows: int = 5000) -> tuple[bytes | None, dict]:
    """The server's fast path (ONNX) and its record for ``model.json``. It must give
    scikit-learn's probabilities; checked here, before release. A model without one is served
    through scikit-learn, and the record says why."""
    try:
        onnx = export_onnx(estimator, spec)
    except NoFastPath as exc:
        return None, {"engine": "scikit-learn", "reason": str(exc)}
    matrix = spec.frame_matrix(features.head(rows)[spec.columns])
    difference = max_difference(OnnxPredictor(onnx), estimator, spec, matrix)
    if difference > TOLERANCE:
        raise SlipwayError(f"train: the ONNX inference path differs from scikit-learn by "
                           f"{difference:.3g} (> {TOLERANCE:g}); not releasing this bundle")
    return onnx, {"engine": "onnxruntime", "max_abs_difference": difference, "rows_checked": len(matrix)}


def main(params: dict[str, Any]) -> None:
    spec = FeatureSpec.from_dict(io.read_json(paths.FEATURE_SPEC))
    features = io.read_parquet(paths.TRAIN_FEATURES)
    positive = positive_class(features[lookup(params, "data.target", str)], params)  # before the fit
    estimator = fit(features, spec, params)
    meta = metadata(estimator, features, spec, params, positive)
    onnx, meta["inference"] = fast_inference(estimator, features, spec)
    meta = bundle.save(paths.MODELS, estimator, meta, onnx)
    # Said every time: unset, the positive class is merely the last label in sorted order.
    positive_note = "" if positive is None else f", positive class {positive!r}"
    print(f"train: {meta['estimator']} on {len(features)} rows -> model {meta['model_version']}{positive_note}")
    if "reason" in meta["inference"]:  # a one-row request costs milliseconds, not microseconds
        print(f"train: the server will call scikit-learn's predict_proba, not the ONNX fast path: "
              f"{meta['inference']['reason']}")
