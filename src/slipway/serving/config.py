"""Server settings, from the environment (the image and `make serve` set them)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields
from pathlib import Path

from slipway.errors import ParamsError

UNSEEN_POLICIES = ("reject", "missing")
UNKNOWN_POLICIES = ("reject", "ignore")
# The model_info label dashboards and the canary analysis split traffic by: another value (a typo)
# would hide the pod from both.
TRACKS = ("stable", "canary")
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class ServingConfig:
    model_dir: Path = Path("models")
    # metrics.json and gate.json for the model card: beside the bundle in the image, reports/ here
    reports_dir: Path = Path("reports")
    model_name: str = "slipway"
    track: str = "stable"  # canary | stable: a label on model_info, so dashboards split tracks
    max_batch: int = 1000
    max_body_bytes: int = 4 * 1024 * 1024
    unseen_categories: str = "reject"  # reject (422) | missing (treated as missing, counted)
    # reject (422) | ignore (dropped, counted): while clients and the model change inputs, in either order
    unknown_features: str = "reject"
    prediction_log: Path | None = None  # JSON lines of sampled inputs and outputs
    prediction_log_rate: float = 0.0
    # Rotated past this size, keeping this many rotated files: a pod's log volume stays bounded.
    prediction_log_max_bytes: int = 64 * 1024 * 1024  # 0: never (an outside rotator's job)
    prediction_log_backups: int = 3

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ServingConfig:
        """``SLIPWAY_<FIELD>`` variables override the defaults (``SLIPWAY_MODEL_DIR``, ...)."""
        environ = os.environ if environ is None else environ
        values = {}
        for field in fields(cls):
            raw = environ.get(f"SLIPWAY_{field.name.upper()}")
            if raw is None or raw == "":
                continue
            try:
                values[field.name] = (Path(raw) if "Path" in str(field.type)
                                      else int(raw) if field.type == "int"
                                      else float(raw) if field.type == "float" else raw)
            except ValueError:
                kind = "an integer" if field.type == "int" else "a number"
                raise ParamsError(f"SLIPWAY_{field.name.upper()}={raw!r} is not {kind}") from None
        config = cls(**values)
        config.check()
        return config

    def check(self) -> None:
        if not MODEL_NAME.fullmatch(self.model_name):  # it is one segment of the V2 paths
            raise ParamsError(f"SLIPWAY_MODEL_NAME must be letters, digits, '.', '_' or '-' (a segment of "
                              f"/v2/models/<name>), got {self.model_name!r}")
        if self.track not in TRACKS:
            raise ParamsError(f"SLIPWAY_TRACK must be one of {TRACKS}, got {self.track!r}")
        if self.unseen_categories not in UNSEEN_POLICIES:
            raise ParamsError(f"SLIPWAY_UNSEEN_CATEGORIES must be one of {UNSEEN_POLICIES}, "
                              f"got {self.unseen_categories!r}")
        if self.unknown_features not in UNKNOWN_POLICIES:
            raise ParamsError(f"SLIPWAY_UNKNOWN_FEATURES must be one of {UNKNOWN_POLICIES}, "
                              f"got {self.unknown_features!r}")
        for name, least in (("max_batch", 1), ("max_body_bytes", 1024), ("prediction_log_max_bytes", 0),
                            ("prediction_log_backups", 0)):
            if getattr(self, name) < least:
                raise ParamsError(f"SLIPWAY_{name.upper()} must be at least {least}, got {getattr(self, name)}")
        if not 0.0 <= self.prediction_log_rate <= 1.0:
            raise ParamsError(f"SLIPWAY_PREDICTION_LOG_RATE must be within [0, 1], got {self.prediction_log_rate}")
        if self.prediction_log and self.prediction_log_rate > 0:
            os.close(open_prediction_log(self.prediction_log))


def open_prediction_log(path: Path) -> int:
    """The log opened for appending (O_APPEND: each write lands whole after the others'), and for
    reading its last byte (whether a cut-short write left a partial line)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ParamsError(f"SLIPWAY_PREDICTION_LOG={str(path)!r} cannot be written: {exc.strerror}") from None


def env_int(names: tuple[str, ...], default: int, minimum: int = 0) -> int:
    """The first of ``names`` set in the environment, as an integer of at least ``minimum``; an
    error names the variable (the server's gunicorn settings)."""
    for name in names:
        raw = os.environ.get(name, "")
        if raw:
            try:
                value = int(raw)
            except ValueError:
                raise ParamsError(f"{name}={raw!r} is not an integer") from None
            if value < minimum:
                raise ParamsError(f"{name}={raw!r} must be at least {minimum}")
            return value
    return default
