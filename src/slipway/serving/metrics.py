"""Prometheus metrics: HTTP metrics from prometheus-flask-exporter plus the model's own.

Under gunicorn (``PROMETHEUS_MULTIPROC_DIR`` set) every worker writes its samples to files in that
directory and ``/metrics``, whichever worker answers it, aggregates all of them: counters stay exact
across workers and scrapes. Without it (tests, ``flask run``) metrics live in a per-app registry.
"""

from __future__ import annotations

import os

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from slipway.monitoring.reference import bin_labels

SCORE_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def multiprocess_mode() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def install_http_metrics(app, registry: CollectorRegistry | None):
    """Request count and latency histograms by endpoint and status, and the /metrics endpoint."""
    common = dict(group_by="endpoint", defaults_prefix="slipway", buckets=LATENCY_BUCKETS,
                  excluded_paths=["^/metrics$"])
    if registry is None:
        from prometheus_flask_exporter.multiprocess import GunicornInternalPrometheusMetrics

        return GunicornInternalPrometheusMetrics(app, **common)
    from prometheus_flask_exporter import PrometheusMetrics

    return PrometheusMetrics(app, registry=registry, **common)


class ModelMetrics:
    """The model's metrics. Label children are created once, so the hot path only increments."""

    def __init__(self, registry: CollectorRegistry | None):
        kwargs = {"registry": registry}
        self.predictions = Counter("slipway_predictions", "Predictions by predicted class",
                                   ["model_version", "class"], **kwargs)
        self.score = Histogram("slipway_prediction_score", "Positive-class probability (binary) "
                               "or top probability (multiclass)", ["model_version"],
                               buckets=SCORE_BUCKETS, **kwargs)
        self.rejected = Counter("slipway_rejected_requests", "Requests refused as bad input, "
                                "by reason", ["reason"], **kwargs)
        self.unseen = Counter("slipway_unseen_categories", "Unseen category values treated as "
                              "missing", ["feature"], **kwargs)
        self.feature_bins = Counter("slipway_feature_bin", "Served feature values per training "
                                    "reference bin (drift is computed from these)",
                                    ["feature", "bin"], **kwargs)
        self.reference = Gauge("slipway_feature_reference_fraction", "Share of the training data in "
                               "each reference bin (model.json), for drift in PromQL",
                               ["feature", "bin"], multiprocess_mode="livemax", **kwargs)
        self.model_info = Gauge("slipway_model_info", "The served model (value 1)",
                                ["model_name", "model_version", "track"],
                                multiprocess_mode="livemax", **kwargs)
        self.model_ready = Gauge("slipway_model_ready", "1 when the model is loaded and verified",
                                 multiprocess_mode="livemin", **kwargs)
        self.trained_at = Gauge("slipway_model_trained_timestamp_seconds", "When the served model "
                                "was trained (unix time)", multiprocess_mode="livemax", **kwargs)
        self._bin_children: dict[str, list] = {}
        self._class_children: list = []
        self._score_child = None
        self._positive = -1

    def model_loaded(self, model, name: str, track: str, trained_at: float | None) -> None:
        version = model.version
        self.model_info.labels(name, version, track).set(1)
        self.model_ready.set(1)
        if trained_at is not None:
            self.trained_at.set(trained_at)
        self._class_children = [self.predictions.labels(version, str(c)) for c in model.classes]
        self._score_child = self.score.labels(version)
        self._positive = 1 if len(model.classes) == 2 else -1
        for feature, entry in model.metadata.get("reference", {}).items():
            self._bin_children[feature] = [self.feature_bins.labels(feature, label)
                                           for label in bin_labels(entry)]
            for label, fraction in zip(bin_labels(entry), entry["fractions"], strict=True):
                self.reference.labels(feature, label).set(fraction)

    def model_failed(self) -> None:
        self.model_ready.set(0)

    def observe(self, proba: np.ndarray, bins: dict[str, np.ndarray]) -> None:
        for index, count in enumerate(np.bincount(proba.argmax(axis=1), minlength=proba.shape[1])):
            if count:
                self._class_children[index].inc(int(count))
        scores = proba[:, 1] if self._positive == 1 else proba.max(axis=1)
        for value in scores.tolist():
            self._score_child.observe(value)
        for feature, counts in bins.items():
            children = self._bin_children[feature]
            for index in np.flatnonzero(counts).tolist():
                children[index].inc(int(counts[index]))
