"""What one app instance holds: its config, the model (or why there is none), its metrics."""

from __future__ import annotations

import json
import logging
import os
import random
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from flask import current_app
from prometheus_client import Counter

from slipway.serving.config import ServingConfig, open_prediction_log
from slipway.serving.metrics import ModelMetrics
from slipway.serving.model import ServedModel

log = logging.getLogger("slipway.serving")


class PredictionLog:
    """Sampled predictions as JSON lines, for drift analysis and joining with later labels.

    Each line is one ``write`` on a file opened with O_APPEND, so lines from several workers
    interleave whole. A write that fails (a full disk) drops the lines, never the prediction: the
    ``dropped`` counter counts them and the error is logged at most once a minute.
    """

    COMPLAINT_INTERVAL = 60.0  # seconds between two log lines about failing writes

    def __init__(self, path: Path | None, rate: float, seed: int | None = None, dropped: Counter | None = None):
        self.path = path
        self.rate = rate if path else 0.0
        self._random = random.Random(seed)
        self._dropped = dropped
        self._last_complaint = -self.COMPLAINT_INTERVAL
        self._fd = None
        if self.rate > 0:
            self._fd = open_prediction_log(path)

    def write(self, request_id: str, version: str, columns: dict[str, list], labels: list,
              probabilities: list[list[float]]) -> None:
        """``columns``: the request's raw values, one list per input."""
        if not self._fd:
            return
        now = time.time()
        lines = []
        for i, (label, proba) in enumerate(zip(labels, probabilities, strict=True)):
            if self._random.random() < self.rate:
                row = {name: values[i] for name, values in columns.items()}
                lines.append(json.dumps({"ts": now, "request_id": request_id, "model_version": version,
                                         "inputs": row, "prediction": label,
                                         "probabilities": proba}, default=str) + "\n")
        if lines:
            try:
                os.write(self._fd, "".join(lines).encode())
            except OSError as exc:
                self._drop(len(lines), exc)

    def _drop(self, count: int, exc: OSError) -> None:
        if self._dropped is not None:
            self._dropped.inc(count)
        now = time.monotonic()
        if now - self._last_complaint >= self.COMPLAINT_INTERVAL:
            self._last_complaint = now
            log.error(f"prediction log {self.path}: write failed ({exc}); predictions go on, their log "
                      f"lines are dropped (slipway_prediction_log_dropped_lines_total)")


@dataclass
class ServingState:
    config: ServingConfig
    model: ServedModel | None
    load_error: str | None
    metrics: ModelMetrics
    prediction_log: PredictionLog

    def report(self, name: str) -> dict | None:
        """metrics.json / gate.json for the model card, beside the bundle or in reports_dir."""
        for folder in (self.config.model_dir, self.config.reports_dir):
            path = Path(folder) / name
            if path.is_file():
                try:
                    return json.loads(path.read_text())
                except ValueError:
                    return None
        return None


def trained_timestamp(metadata: dict) -> float | None:
    value = metadata.get("trained_at")
    try:
        return datetime.fromisoformat(value).timestamp() if value else None
    except ValueError:
        return None


def state() -> ServingState:
    return current_app.extensions["slipway"]
