"""What one app instance holds: its config, the model (or why there is none), its metrics."""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from flask import current_app
from prometheus_client import Counter

from slipway.errors import ParamsError
from slipway.serving import codec
from slipway.serving.config import ServingConfig, open_prediction_log
from slipway.serving.logs import APP_LOGGER
from slipway.serving.metrics import ModelMetrics
from slipway.serving.model import ServedModel

log = logging.getLogger(APP_LOGGER)


class PredictionLog:
    """Sampled predictions as JSON lines, for drift analysis and joining with later labels.

    Each line is one ``write`` on a file opened with O_APPEND, so lines from several workers
    interleave whole. A write that fails (a full disk) drops the lines, never the prediction: the
    ``dropped`` counter counts them and the error is logged at most once a minute. A write cut
    short ends its last line there; the next write, whichever worker's, starts on a new line, so
    only that one line is broken (the drift job skips it).

    The log stays within ``max_bytes`` times ``backups + 1``: past ``max_bytes`` the worker that
    notices renames the file to ``<name>.<UTC time><suffix>`` (an flock on it keeps two workers from
    both doing so) and deletes the oldest beyond ``backups``, compressed ones included; every
    worker then writes to a new file at ``path``, as it also does when something else renamed or
    deleted it (a log rotator).
    """

    COMPLAINT_INTERVAL = 60.0  # seconds between two log lines about failing writes

    def __init__(self, path: Path | None, rate: float, seed: int | None = None, dropped: Counter | None = None,
                 max_bytes: int = 0, backups: int = 0):
        self.path = path
        self.rate = rate if path else 0.0
        self.max_bytes, self.backups = max_bytes, backups
        self._random = random.Random(seed)
        self._dropped = dropped
        self._last_complaint = -self.COMPLAINT_INTERVAL
        self._fd = None
        self._lock = threading.Lock()
        if self.rate > 0:
            self._fd = open_prediction_log(path)

    def write(self, request_id: str, version: str, columns: dict[str, list], labels: list,
              probabilities: list[list[float]], ids: tuple[str, list] | None = None) -> None:
        """``columns``: the request's raw values, one list per input; ``ids``: the id column's name
        and its value per row, logged as ``"id": {name: value}`` to join labels known later by."""
        if not self._fd:
            return
        now = time.time()
        lines = []
        for i, (label, proba) in enumerate(zip(labels, probabilities, strict=True)):
            if self._random.random() < self.rate:
                line = {"ts": now, "request_id": request_id, "model_version": version,
                        "inputs": {name: values[i] for name, values in columns.items()},
                        "prediction": label, "probabilities": proba}
                if ids:
                    line["id"] = {ids[0]: ids[1][i]}
                lines.append(codec.dumps(line, default=str) + b"\n")
        if lines:
            with self._lock:  # gthread workers: one thread's reopen must not close another's fd mid-write
                self._append(b"".join(lines), len(lines))

    def _append(self, body: bytes, count: int) -> None:
        try:
            size = self._follow_path().st_size
            # A write cut short (by any worker) left the file in the middle of a line: start a new one.
            start = b"\n" if size and os.pread(self._fd, 1, size - 1) != b"\n" else b""
            written = os.write(self._fd, start + body)
        except (OSError, ParamsError) as exc:  # ParamsError: the reopened path cannot be created
            self._drop(count, exc)
            return
        if written < len(start) + len(body):  # a full disk: the kernel wrote what fitted
            whole = body[:max(written - len(start), 0)].count(b"\n")
            self._drop(count - whole, OSError(errno.ENOSPC, f"wrote {written} of {len(start) + len(body)} bytes"))
        elif self.max_bytes and size + written >= self.max_bytes:
            self._rotate()

    def _follow_path(self) -> os.stat_result:
        """Reopen ``path`` when it no longer names the open file (rotated or deleted meanwhile);
        returns the status of the file now open."""
        opened = os.fstat(self._fd)
        if not _same_file(self.path, opened):
            fresh = open_prediction_log(self.path)
            os.close(self._fd)
            self._fd, opened = fresh, os.fstat(fresh)
        return opened

    def _rotate(self) -> None:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                if _same_file(self.path, os.fstat(self._fd)):  # no other worker rotated it meanwhile
                    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
                    os.rename(self.path, self.path.with_name(f"{self.path.stem}.{stamp}{self.path.suffix}"))
                    # Also those a shipper compressed since (.jsonl.gz): they count against the bound too.
                    rotated = sorted(self.path.parent.glob(f"{self.path.stem}.*T*{self.path.suffix}*"))
                    for stale in rotated[:max(len(rotated) - self.backups, 0)]:
                        stale.unlink(missing_ok=True)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        except OSError as exc:  # no locks on this filesystem, a read-only directory: the log goes on
            self._complain(f"prediction log {self.path}: rotation failed ({exc}); writing on")

    def _drop(self, count: int, exc: Exception) -> None:
        if self._dropped is not None:
            self._dropped.inc(count)
        self._complain(f"prediction log {self.path}: write failed ({exc}); predictions go on, their log "
                       f"lines are dropped (slipway_prediction_log_dropped_lines_total)")

    def _complain(self, message: str) -> None:
        now = time.monotonic()
        if now - self._last_complaint >= self.COMPLAINT_INTERVAL:
            self._last_complaint = now
            log.error(message)


def _same_file(path: Path, opened: os.stat_result) -> bool:
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


@dataclass
class ServingState:
    config: ServingConfig
    model: ServedModel | None
    load_error: str | None
    metrics: ModelMetrics
    prediction_log: PredictionLog

    def report(self, name: str) -> dict | None:
        """metrics.json / gate.json for the model card, beside the bundle or in reports_dir; ``None``
        when there is none, or it is not a JSON object (the card then says so)."""
        for folder in (self.config.model_dir, self.config.reports_dir):
            path = Path(folder) / name
            if path.is_file():
                try:
                    document = json.loads(path.read_text())
                except ValueError:
                    return None
                return document if isinstance(document, dict) else None
        return None


def trained_timestamp(metadata: dict) -> float | None:
    value = metadata.get("trained_at")
    try:
        return datetime.fromisoformat(value).timestamp() if value else None
    except ValueError:
        return None


def state() -> ServingState:
    return current_app.extensions["slipway"]
