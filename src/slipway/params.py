"""Reading ``params.yaml``: every tunable number and threshold lives there.

``lookup`` names the exact key and the rule when a value is missing or of the wrong kind, so a
typo in params fails the stage before any work is done.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from slipway.errors import ParamsError

DEFAULT_PATH = Path("params.yaml")
_MISSING = object()


def load(path: str | Path = DEFAULT_PATH) -> dict[str, Any]:
    path = Path(path)
    try:
        params = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path}: not found (run from the repository root)") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(params, dict):
        raise ParamsError(f"{path}: must be a mapping of sections, got {type(params).__name__}")
    return params


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
    # YAML reads 1 as int where a float is meant; bool is an int subclass and never a number here.
    if float in kinds and isinstance(node, int) and not isinstance(node, bool):
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


def key_columns(params: dict[str, Any]) -> list[str]:
    """Target, id and timestamp columns (those set): carried beside the features, never fed to the model."""
    names = [lookup(params, "data.target", str)]
    for key in ("data.id_column", "data.timestamp_column"):
        value = lookup(params, key, (str, type(None)), None)
        if value:
            names.append(value)
    return names


def column_list(params: dict[str, Any], key: str) -> list[str] | None:
    """A list of column names, or ``None`` for ``auto``."""
    value = lookup(params, key, (list, str), "auto")
    if value == "auto":
        return None
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise ParamsError(f"params: {key} must be 'auto' or a list of column names, got {value!r}")
    return list(value)
