"""The model bundle: ``model.skops`` plus ``model.json``, written by ``train``, read by the server.

Where the estimator has one, the bundle also holds ``model.onnx``: the same model for the server's
fast inference path (:mod:`slipway.inference`), verified against the estimator before release.

skops loads only the types it is told to trust; :data:`TRUSTED_TYPES` is that explicit list (on
top of skops' own defaults for scikit-learn estimators). A bundle that asks for anything else is
refused, as is one whose bytes do not match the sha256 recorded in ``model.json``. ``save`` refuses
too, so a team that adds an estimator needing more types learns it from ``train``, not from a
server that never becomes ready.
"""

from __future__ import annotations

import hashlib
import json
import math
import pickle
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from slipway.errors import SlipwayError
from slipway.io import atomic_path, read_json, remove, sha256_file, together, write_bytes, write_json

MODEL_FILE = "model.skops"
ONNX_FILE = "model.onnx"
METADATA_FILE = "model.json"

# Beyond skops' defaults, what the estimators in slipway.model.estimator need to load back.
TRUSTED_TYPES = frozenset(
    {
        "functools.partial",
        "numpy.dtype",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.tree._tree.Tree",
        "sklearn.utils.validation.check_array",
    }
)


class BundleError(SlipwayError):
    """The bundle is missing, corrupt, tampered with or asks to load an untrusted type."""


@dataclass
class Bundle:
    estimator: Any
    metadata: dict[str, Any]
    onnx: bytes | None = None

    @property
    def version(self) -> str:
        return self.metadata["model_version"]


# What model.json tells the server beside the estimator: how it reads a request (the feature spec: the
# inputs, their categories, missing-value markers, the id column, time inputs and their format, the marks
# of numbers sent as text), which class its score is of, and the drift reference. A change to any of them
# serves otherwise with the same estimator (an id column set to join labels by, a positive class named),
# so it is another version, and so another image tag: the registry's image under the old tag holds the
# old model.json.
SERVED_FIELDS = ("target", "classes", "positive_class", "features", "inputs", "reference")


def content_version(estimator: Any, metadata: dict[str, Any]) -> str:
    """A hash of the fitted estimator's state and of what ``metadata`` tells the server of it
    (:data:`SERVED_FIELDS`): the same training inputs give the same version.

    (The skops file itself is not byte-stable: its zip entries carry timestamps and object ids.)
    The pickle here is only hashed, never written or loaded.
    """
    digest = hashlib.sha256(pickle.dumps(estimator, protocol=5))
    served = {field: metadata.get(field) for field in SERVED_FIELDS}
    digest.update(json.dumps(served, sort_keys=True, allow_nan=False, default=str).encode())
    return digest.hexdigest()[:16]


def save(directory: str | Path, estimator: Any, metadata: dict[str, Any],
         onnx: bytes | None = None) -> dict[str, Any]:
    """Write the model (and its ONNX form), then ``model.json`` naming their sha256. Returns the
    full metadata.

    The files replace the previous bundle's together (:func:`slipway.io.together`): an interrupted
    or failed save leaves the previous bundle whole. A reader in the microseconds of the renames
    sees a sha256 mismatch and refuses the bundle rather than serving a mix of two models.
    """
    import skops.io as sio  # here, not at the top: its import walks all of scikit-learn (~0.5 s)

    directory = Path(directory)
    with together():
        with atomic_path(directory / MODEL_FILE) as tmp:
            sio.dump(estimator, tmp)
            refused = refused_types(tmp)
            if refused:
                raise BundleError(f"the fitted model needs types that slipway.bundle.TRUSTED_TYPES does not "
                                  f"list, so the server would refuse it: {refused}; add them there if they "
                                  f"are safe to load")
            digest = sha256_file(tmp)
        full = {**metadata, "model_version": content_version(estimator, metadata),
                "model_file": MODEL_FILE, "sha256": digest}
        if onnx is None:  # a previous model's ONNX file must not outlive it
            remove(directory / ONNX_FILE)
        else:
            write_bytes(directory / ONNX_FILE, onnx)
            full["onnx"] = {"file": ONNX_FILE, "sha256": hashlib.sha256(onnx).hexdigest()}
        write_json(directory / METADATA_FILE, full)
    # A save killed outright (SIGKILL, the OOM killer) leaves its temporary files, and DVC would
    # track them in models/ and the image would carry them.
    for name in (MODEL_FILE, ONNX_FILE, METADATA_FILE):
        for leftover in directory.glob(f".{name}.*.tmp"):
            leftover.unlink()
    return full


def positive_index(metadata: dict[str, Any]) -> int | None:
    """A binary model's positive class as a column of its probabilities (``positive_class`` in
    ``model.json``: ``data.positive_class``, or the last class); ``None`` for a multiclass model."""
    classes = [str(c) for c in metadata["classes"]]
    if len(classes) != 2:
        return None
    positive = metadata.get("positive_class")  # null, as absent: the last class
    return classes.index(str(metadata["classes"][-1] if positive is None else positive))


def _names(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(name, str) for name in value)


def _numbers(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)


def _categories(value: Any) -> bool:
    """Labels, as featurize writes them: distinct text (a request's value is looked up among them)."""
    return _names(value) and len(set(value)) == len(value)


def _number_format(value: Any) -> bool:
    """A way of writing numbers that ingest reads: ``[",", "."]`` is ``1.234,5``."""
    from slipway.values import NUMBER_FORMATS  # here: a model.json without it is read without pandas

    return isinstance(value, list) and tuple(value) in NUMBER_FORMATS


def _features(value: Any) -> bool:
    return (isinstance(value, dict) and _names(value.get("numeric")) and _names(value.get("derived", []))
            and _names(value.get("times", [])) and _names(value.get("missing_values", []))
            and ("number_format" not in value or _number_format(value["number_format"]))
            and isinstance(value.get("time_format", ""), str)
            and isinstance(value.get("categorical"), list) and isinstance(value.get("id_column", ""), str)
            and all(isinstance(entry, dict) and isinstance(entry.get("name"), str)
                    and _categories(entry.get("categories")) for entry in value["categorical"]))


def _distribution(entry: Any) -> bool:
    """One feature's reference: numeric, finite ascending edges; categorical, its categories; and a
    fraction for each bin, the last for missing values (``slipway.monitoring.reference``)."""
    if not isinstance(entry, dict) or not _numbers(entry.get("fractions")):
        return False
    if entry.get("kind") == "numeric":
        edges = entry.get("edges")
        if not (_numbers(edges) and all(map(math.isfinite, edges)) and edges == sorted(edges)):
            return False
        bins = len(edges) + 1  # one up to each edge, one above the last
    elif entry.get("kind") == "categorical" and _categories(entry.get("categories")):
        bins = len(entry["categories"])
    else:
        return False
    return len(entry["fractions"]) == bins + 1  # and the missing values'


def _reference(value: Any) -> bool:
    return isinstance(value, dict) and all(map(_distribution, value.values()))


def _timestamp(value: Any) -> bool:
    try:
        datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return False
    return True


# What the pipeline, the gate and the server read from model.json, and what each must be. The
# file is written by `train`, but a bundle may have been edited by hand, or fetched from a release
# made by another version: wrong, it is named here, not found out as a KeyError where it is read,
# or as a server that crashes on start instead of staying up not ready.
METADATA_FIELDS: dict[str, tuple[Any, str]] = {
    "model_version": (lambda v: isinstance(v, str) and bool(v), "a non-empty string"),
    "sha256": (lambda v: isinstance(v, str), "a string"),
    "model_file": (lambda v: isinstance(v, str) and bool(v), "a file name"),
    "target": (lambda v: isinstance(v, str), "a column name"),
    "classes": (lambda v: isinstance(v, list) and len(v) >= 2
                and all(isinstance(c, str | int | float) for c in v), "a list of two or more classes"),
    "features": (_features, "an object of numeric and derived lists of names, categorical entries "
                            "(name, categories) and optionally times and missing_values (lists of names and "
                            "texts), an id_column name, a number_format ([decimal mark, thousands separator]) "
                            "and a time_format (strptime)"),
    "inputs": (_names, "a list of names"),
    "reference": (_reference, "an object of distributions (kind numeric with edges, or categorical with "
                              "categories; fractions)"),
    "onnx": (lambda v: v is None or isinstance(v, dict) and isinstance(v.get("file"), str)
             and isinstance(v.get("sha256"), str), "null or an object with file and sha256"),
    "trained_at": (_timestamp, "an ISO 8601 time"),
    "git_commit": (lambda v: v is None or isinstance(v, str), "null or a commit"),
    "git_uncommitted": (lambda v: v is None or isinstance(v, list) and all(isinstance(p, str) for p in v),
                        "null or a list of paths"),
    **dict.fromkeys(("data", "params", "training", "inference"), (lambda v: isinstance(v, dict), "an object")),
}
# What a bundle needs to be scored or served.
MODEL_FIELDS = ("model_version", "sha256", "target", "classes", "features")


def check_metadata(metadata: Any, where: str) -> dict[str, Any]:
    """``metadata`` when every field of :data:`MODEL_FIELDS` is there and every known field is what
    it must be; otherwise a :class:`BundleError` listing each problem."""
    if not isinstance(metadata, dict):
        raise BundleError(f"{where}: not a JSON object")
    problems = [f"{key} is missing" for key in MODEL_FIELDS if key not in metadata]
    problems += [f"{key} must be {what}, got {str(metadata[key])[:60]!r}"
                 for key, (valid, what) in METADATA_FIELDS.items() if key in metadata and not valid(metadata[key])]
    classes = metadata.get("classes")
    positive = metadata.get("positive_class")
    if positive is not None and isinstance(classes, list) and str(positive) not in map(str, classes):
        problems.append(f"positive_class {positive!r} is not one of classes {classes}")
    if not problems and "reference" in metadata:  # the server counts codes of the features' categories
        categories = {entry["name"]: entry["categories"] for entry in metadata["features"]["categorical"]}
        problems += [f"reference {name!r} does not hold the categories features gives it, {categories[name]}"
                     for name, entry in metadata["reference"].items()
                     if name in categories and entry.get("categories") != categories[name]]
    if problems:
        raise BundleError(f"{where}: " + "; ".join(problems) + " (edited by hand, or written by another version?)")
    return metadata


def load_metadata(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / METADATA_FILE
    return check_metadata(read_json(path, BundleError), str(path))


def _verified_bytes(path: Path, expected: str | None) -> bytes:
    if not path.is_file():
        raise BundleError(f"{path}: not found")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected:
        raise BundleError(
            f"{path}: sha256 {digest[:12]}… does not match model.json "
            f"({str(expected)[:12]}…): corrupt or tampered"
        )
    return data


def load_onnx(directory: str | Path, metadata: dict[str, Any]) -> bytes | None:
    """The bundle's verified ONNX model; ``None`` when it has none."""
    entry = metadata.get("onnx")
    if not entry:
        return None
    return _verified_bytes(Path(directory) / Path(entry["file"]).name, entry.get("sha256"))


def refused_types(model_path: Path) -> list[str]:
    """What the skops file asks to load beyond skops' defaults and :data:`TRUSTED_TYPES`."""
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=model_path)
    except Exception as exc:
        raise BundleError(f"{model_path}: not a readable skops file: {exc}") from None
    return sorted(set(untrusted) - TRUSTED_TYPES)


def load(directory: str | Path) -> Bundle:
    """Load and verify a bundle; raises :class:`BundleError` naming what is wrong."""
    import skops.io as sio

    directory = Path(directory)
    metadata = load_metadata(directory)
    model_path = directory / Path(metadata.get("model_file", MODEL_FILE)).name  # in the bundle, as the ONNX file
    _verified_bytes(model_path, metadata.get("sha256"))
    onnx = load_onnx(directory, metadata)
    refused = refused_types(model_path)
    if refused:
        raise BundleError(f"{model_path}: refuses to load untrusted types {refused}")
    try:
        estimator = sio.load(model_path, trusted=sorted(TRUSTED_TYPES))
    except Exception as exc:
        raise BundleError(f"{model_path}: cannot be loaded: {exc}") from None
    fitted = [str(c) for c in getattr(estimator, "classes_", [])]
    if fitted and [str(c) for c in metadata["classes"]] != fitted:
        raise BundleError(f"{directory / METADATA_FILE}: classes {metadata['classes']} are not the model's, {fitted}")
    return Bundle(estimator, metadata, onnx)
