"""Reading ``params.yaml``: every tunable number and threshold lives there.

``lookup`` names the exact key and the rule when a value is missing or of the wrong kind, and
``load`` refuses a key it does not know, so a typo in params fails the stage before any work is
done instead of leaving a default silently in force.
"""

from __future__ import annotations

import difflib
import math
import re
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML, YAMLError
from ruamel.yaml.constructor import DuplicateKeyError

from slipway.errors import ParamsError, SlipwayError

DEFAULT_PATH = Path("params.yaml")
_MISSING = object()

# Every key params.yaml may hold, by section. Values that are themselves mappings with free-form
# keys (the estimator's keyword arguments, per-column rules) are checked where they are read.
# A key your own code reads goes here too.
KNOWN_KEYS: dict[str, tuple[str, ...]] = {
    "example_data": ("start", "months", "rows_per_month", "seed", "drift", "drift_start"),
    "data": ("source", "pattern", "format", "separator", "decimal", "thousands", "encoding", "na_values", "target",
             "positive_class", "id_column", "timestamp_column", "timestamp_format", "numeric_features",
             "categorical_features", "drop_columns"),
    "ingest": ("split", "test_size", "seed"),
    "validate": ("max_null_fraction", "max_examples", "columns"),
    "featurize": ("derived", "max_categories"),
    "train": ("estimator", "seed", "hyperparameters"),
    "evaluate": ("importance_sample", "seed"),
    "gate": ("sample_size", "seed", "fail_on_check_error", "max_null_ratio", "max_mixed_type_ratio",
             "max_variant_spelling_ratio", "max_duplicate_ratio", "max_conflicting_label_ratio",
             "max_feature_label_pps",
             "max_feature_drift", "max_label_drift", "max_new_category_ratio",
             "max_train_test_mix_ratio", "min_roc_auc", "min_accuracy", "min_f1", "min_baseline_gain",
             "primary_metric", "max_regression", "champion"),
    "release": ("image_repository", "remote", "branch"),
    "canary": ("window", "min_requests", "max_error_ratio", "max_error_ratio_increase",
               "max_rejection_ratio_increase", "max_latency_p95_ratio", "min_latency_p95_seconds",
               "max_score_ks", "max_class_shift"),
    "drift": ("max_feature_drift", "min_rows", "sample_size", "seed", "window_hours"),
    "performance": ("max_drop", "min_rows", "window_hours", "max_gap_hours"),
}


def read_yaml(path: Path, error: type[SlipwayError] = ParamsError) -> Any:
    """A repository file's YAML document, read as DVC reads ``params.yaml`` (ruamel.yaml's safe
    loader, YAML 1.2), so the stages and ``dvc params diff`` see the same values: PyYAML's YAML 1.1
    read ``positive_class: Yes`` and the ``allowed: [Yes, No]`` of a Yes/No column as booleans,
    ``1e-3`` as text and ``017`` as octal. A missing or malformed file, or one that gives a key twice
    in one mapping (a second ``train:`` section), is an ``error`` naming it."""
    try:
        return YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: not found (run from the repository root)") from None
    except OSError as exc:  # a directory, no permission
        raise error(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except DuplicateKeyError as exc:  # its text goes on about how to allow duplicates
        key = re.match(r'found duplicate key "(.*?)" with value', exc.problem or "")
        raise error(f"{path}: not valid YAML: the key {key.group(1) if key else '?'!r} is given twice in one "
                    f"mapping (line {exc.problem_mark.line + 1}); DVC refuses it too") from None
    except YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}") from None
    except ValueError as exc:  # a date YAML reads unquoted (2025-02-30), an integer of over 4300 digits
        raise error(f"{path}: a value YAML reads as a date or a number is not one ({exc}); quote it if it is "
                    "text") from None


def load(path: str | Path = DEFAULT_PATH) -> dict[str, Any]:
    path = Path(path)
    params = read_yaml(path)
    if not isinstance(params, dict):
        raise ParamsError(f"{path}: must be a mapping of sections, got {type(params).__name__}")
    check_keys(params, path)
    return params


def nearest(word: str, candidates, shown=str) -> str:
    """`` (did you mean X?)`` for the candidate nearest ``word``, as ``shown`` writes it; empty when
    none is near."""
    close = difflib.get_close_matches(word, list(candidates), n=1)
    return f" (did you mean {shown(close[0])}?)" if close else ""


def _unknown(key: str, known) -> str:
    return f"unknown key {key}{nearest(key, known)}"


def check_keys(params: dict[str, Any], path: str | Path = DEFAULT_PATH) -> None:
    """Every section and key one of :data:`KNOWN_KEYS`; all the unknown ones named at once."""
    problems = []
    for section, values in params.items():
        if section not in KNOWN_KEYS:
            problems.append(_unknown(str(section), KNOWN_KEYS))
        elif not isinstance(values, dict):
            problems.append(f"{section} must be a mapping of keys, got {values!r}")
        else:
            known = [f"{section}.{key}" for key in KNOWN_KEYS[section]]
            problems += [_unknown(f"{section}.{key}", known) for key in values
                         if f"{section}.{key}" not in known]
    if problems:
        raise ParamsError(f"{path}: " + "; ".join(problems))


def is_number(value: Any) -> bool:
    """An int or a float; bool is an int subclass and never a number here."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_finite_number(value: Any) -> bool:
    """A number that is not NaN or infinite, and that a float64 holds: an int past it (YAML and JSON
    read a 1 followed by 400 zeros as one) is no more usable than infinity, and Python's own check
    raises OverflowError on it. YAML reads ``.nan`` and ``.inf`` as floats, and NaN fails every
    comparison: a limit set to it would switch its check off without a word."""
    if not is_number(value):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def shown_value(value: Any) -> str:
    """A value for a message; an integer past float64 by what it is, not its hundreds of digits."""
    if is_number(value) and isinstance(value, int) and not is_finite_number(value):
        return "an integer past float64's range"
    return repr(value)


def lookup(
    params: dict[str, Any],
    key: str,
    kind: type | tuple[type, ...],
    default: Any = _MISSING,
    *,
    choices: tuple | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
) -> Any:
    """The value at dotted ``key`` (``"ingest.test_size"``), checked against ``kind`` and bounds."""
    node: Any = params
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            if default is not _MISSING:
                return default
            raise ParamsError(f"params: {key} is required but missing")
        node = node[part]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if is_number(node) and not is_finite_number(node):
        raise ParamsError(f"params: {key} must be a finite number, got {shown_value(node)}")
    # YAML reads 1 as int where a float is meant.
    if float in kinds and isinstance(node, int) and is_number(node):
        node = float(node)
    if not isinstance(node, kinds) or (isinstance(node, bool) and bool not in kinds):
        names = " or ".join(k.__name__ if k is not type(None) else "null" for k in kinds)
        raise ParamsError(f"params: {key} must be {names}, got {node!r}")
    if choices is not None and node not in choices:
        raise ParamsError(f"params: {key} must be one of {', '.join(map(str, choices))}, got {node!r}")
    if minimum is not None and node is not None and node < minimum:
        raise ParamsError(f"params: {key} must be >= {minimum}, got {node!r}")
    if maximum is not None and node is not None and node > maximum:
        raise ParamsError(f"params: {key} must be <= {maximum}, got {node!r}")
    return node


# numpy's and pandas' random_state takes a seed in [0, 2**32 - 1]; anything else fails deep inside them.
SEED_MAX = 2**32 - 1


def random_seed(params: dict[str, Any], key: str) -> int:
    """The random seed at ``key``, checked against the range every random_state accepts."""
    return lookup(params, key, int, minimum=0, maximum=SEED_MAX)


def key_columns(params: dict[str, Any]) -> list[str]:
    """Target, id and timestamp columns (those set): carried beside the features, never fed to the model."""
    return list(named_key_columns(params))


def named_key_columns(params: dict[str, Any]) -> dict[str, str]:
    """The columns of :func:`key_columns`, each with the key that names it."""
    named = {lookup(params, "data.target", str): "data.target"}
    for key in ("data.id_column", "data.timestamp_column"):
        value = lookup(params, key, (str, type(None)), None)
        if value:
            named.setdefault(value, key)
    return named


def number_format(params: dict[str, Any]) -> tuple[str, str | None]:
    """How the data writes numbers as text: ``(data.decimal, data.thousands)``, which ``ingest``
    checks and reads them by."""
    return lookup(params, "data.decimal", str, "."), lookup(params, "data.thousands", (str, type(None)), None)


def column_list(params: dict[str, Any], key: str) -> list[str] | None:
    """A list of column names, or ``None`` for ``auto``."""
    value = lookup(params, key, (list, str), "auto")
    if value == "auto":
        return None
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise ParamsError(f"params: {key} must be 'auto' or a list of column names, got {value!r}")
    repeated = sorted({v for v in value if value.count(v) > 1})
    if repeated:
        raise ParamsError(f"params: {key} lists {', '.join(map(repr, repeated))} more than once")
    return list(value)
