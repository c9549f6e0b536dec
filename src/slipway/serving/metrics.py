"""Prometheus metrics: HTTP metrics from prometheus-flask-exporter plus the model's own.

Under gunicorn (``PROMETHEUS_MULTIPROC_DIR`` set) every worker writes its samples to files in that
directory and ``/metrics``, whichever worker answers it, aggregates all of them: counters stay exact
across workers and scrapes. Without it (tests, ``flask run``) metrics live in a per-app registry.

The per-prediction counts (predictions by class, the score histogram and about 150 drift bins)
are not prometheus_client children: incrementing twenty of those per request cost more than the
rest of the request (each is a lock and an mmap write). Each process keeps them instead in one
float64 array, file-backed in multiprocess mode, and adds a request's counts with one vectorised
operation; :class:`PredictionCounts` sums every process's array at scrape time and exports the
same series prometheus_client would.
"""

from __future__ import annotations

import fcntl
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, multiprocess
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.mmap_dict import MmapedDict

from slipway.bundle import positive_index
from slipway.monitoring.reference import Binner, bin_labels
from slipway.serving.answers import REFUSAL_REASONS

SCORE_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
COUNTS_SUFFIX = ".counts"


ARCHIVE = "archive"  # the file name's "pid" part for the counts of every worker that has exited
LOCK_FILE = ".slipway-metrics.lock"


# What a server run leaves in the multiprocess directory: prometheus_client's <kind>_<pid>.db, our
# <name>_<pid>.counts, each also with "archive" for the pid, and an interrupted archive's .partial.
SAMPLE_FILE = re.compile(rf"(?:(?:counter|histogram|summary|gauge_[a-z]+)_(?:\d+|{ARCHIVE})\.db"
                         rf"|\.?\w+_(?:\d+|{ARCHIVE}){re.escape(COUNTS_SUFFIX)}(?:\.partial)?)")


def sample_files(directory: Path) -> list[Path]:
    return [path for path in directory.iterdir() if SAMPLE_FILE.fullmatch(path.name) and path.is_file()]


def multiprocess_dir() -> Path | None:
    value = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(value) if value else None


@contextmanager
def files_locked(directory: Path, exclusive: bool) -> Iterator[None]:
    """Scrapes read the files under a shared lock, :func:`archive_exited_worker` folds them under
    an exclusive one: a scrape sees an exited worker's counts exactly once."""
    with open(directory / LOCK_FILE, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield


def _added(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    return a[0] + b[0], max(a[1], b[1])


# How prometheus_client's collector combines one sample across processes, by file kind: these are
# folded into an archive. (Gauges in a live* mode are mark_process_dead's; mode "all" is per pid.)
FOLDS = {"counter": _added, "histogram": _added, "summary": _added, "gauge_sum": _added,
         "gauge_max": lambda a, b: max(a, b, key=lambda sample: sample[0]),
         "gauge_min": lambda a, b: min(a, b, key=lambda sample: sample[0]),
         "gauge_mostrecent": lambda a, b: max(a, b, key=lambda sample: sample[1])}


def archive_exited_worker(directory: Path, pid: int) -> None:
    """Fold an exited worker's samples (prometheus_client's ``<kind>_<pid>.db`` and our
    ``<name>_<pid>.counts``) into one archive file per kind, combined as a scrape combines them,
    then delete its files. Without it a server that recycles workers (``SLIPWAY_MAX_REQUESTS``)
    keeps every dead worker's files: each scrape reads more of them, and they fill the in-memory
    volume they live on."""
    with files_locked(directory, exclusive=True):
        for kind, fold in FOLDS.items():
            exited = directory / f"{kind}_{pid}.db"
            if not exited.exists():
                continue
            path = directory / f"{kind}_{ARCHIVE}.db"
            samples = {}
            if path.exists():
                samples = {key: (value, ts) for key, value, ts, _ in MmapedDict.read_all_values_from_file(str(path))}
            for key, value, ts, _ in MmapedDict.read_all_values_from_file(str(exited)):
                samples[key] = fold(samples[key], (value, ts)) if key in samples else (value, ts)
            archive = MmapedDict(str(path))
            try:
                for key, (value, ts) in samples.items():
                    archive.write_value(key, value, ts)
            finally:
                archive.close()
            exited.unlink()
        suffix = f"_{pid}{COUNTS_SUFFIX}"
        for exited in directory.glob(f"*{suffix}"):
            archive = directory / f"{exited.name.removesuffix(suffix)}_{ARCHIVE}{COUNTS_SUFFIX}"
            values = np.fromfile(exited, dtype=np.float64)
            if archive.exists():
                values = values + np.fromfile(archive, dtype=np.float64)
            partial = directory / f".{archive.name}.partial"  # no match for the totals' glob
            values.tofile(partial)
            os.replace(partial, archive)
            exited.unlink()


# What the alerts and the canary analysis read the request histogram of, and every status these
# endpoints answer: a success, the refusals (RequestError's and werkzeug's 413) and the errors.
PREDICTION_ENDPOINTS = ("api.predict", "api.v2_infer")
PREDICTION_STATUSES = (200, 400, 404, 413, 415, 422, 500, 503)
REQUEST_HISTOGRAM = "slipway_http_request_duration_seconds"


class RecordingRegistry(CollectorRegistry):
    """A registry that keeps, by metric name, the collectors registered in it: prometheus-flask-exporter
    keeps no handle to the request histogram it registers, and its series must be made before the first
    request (:func:`install_http_metrics`)."""

    def __init__(self):
        super().__init__()
        self.collectors: dict[str, object] = {}

    def register(self, collector) -> None:
        super().register(collector)
        if hasattr(collector, "describe"):  # prometheus_client's metrics; collectors such as ours need not have it
            self.collectors.update((family.name, collector) for family in collector.describe())


def install_http_metrics(app, registry: RecordingRegistry):
    """Request count and latency histograms by endpoint and status (``/metrics`` is ours). Each
    prediction endpoint's series of each status it answers is made at 0 when the app is: a series
    born at a new server's first 500 (every rollout's) would hide that 500, and the ones in the same
    scrape, from the error-ratio alerts and the canary analysis, as increase() and rate() see only
    what changed after a series' first sample."""
    from prometheus_flask_exporter import PrometheusMetrics

    exporter = PrometheusMetrics(app, path=None, registry=registry, group_by="endpoint",
                                 defaults_prefix="slipway", buckets=LATENCY_BUCKETS,
                                 excluded_paths=["^/metrics$"])
    histogram = registry.collectors[REQUEST_HISTOGRAM]
    for endpoint in PREDICTION_ENDPOINTS:
        for status in PREDICTION_STATUSES:
            histogram.labels(method="POST", endpoint=endpoint, status=status)
    return exporter


class CountArray:
    """This process's counts: in memory, or in ``<directory>/<name>_<pid>.counts`` where every
    process's file is summed by :meth:`totals`. The file is opened by the process that first adds
    to it, so workers forked after the app was created each get their own."""

    def __init__(self, size: int, directory: Path | None, name: str):
        self.size, self.directory, self.name = size, directory, name
        self._pid = None
        self._array = np.zeros(size) if directory is None else None
        self._lock = threading.Lock()  # gthread workers share the array between threads

    def _own(self) -> np.ndarray:
        if self.directory is not None and self._pid != os.getpid():
            self._pid = os.getpid()
            path = self.directory / f"{self.name}_{self._pid}{COUNTS_SUFFIX}"
            mapped = np.memmap(path, dtype=np.float64, mode="r+" if path.exists() else "w+", shape=(self.size,))
            self._array = mapped.view(np.ndarray)  # plain ndarray arithmetic; the view keeps the map open
        return self._array

    def add(self, increments: np.ndarray) -> None:
        with self._lock:
            array = self._own()
            array += increments

    def totals(self) -> np.ndarray:
        if self.directory is None:
            return self._array.copy()
        total = np.zeros(self.size)
        for path in self.directory.glob(f"{self.name}_*{COUNTS_SUFFIX}"):
            values = np.fromfile(path, dtype=np.float64)
            if len(values) == self.size:  # a file still being created is skipped, not misread
                total += values
        return total


class PredictionCounts:
    """Predictions by class, the score histogram and the drift bins of one model, as a collector.

    Layout of the count array: one slot per class, one per score bucket (the last is +Inf), the
    score sum, then one per drift bin (:attr:`Binner.labels`).
    """

    def __init__(self, model, directory: Path | None):
        self.version = model.version
        self.classes = [str(c) for c in model.classes]
        self.positive = positive_index(model.metadata)
        self.binner = Binner(model.metadata.get("reference", {}), model.spec.columns)
        self.bucket_offset = len(self.classes)
        self.sum_slot = self.bucket_offset + len(SCORE_BUCKETS) + 1
        self.bin_offset = self.sum_slot + 1
        size = self.bin_offset + len(self.binner.labels)
        self.counts = CountArray(size, directory, f"slipway_predictions_{model.version}")
        self._bounds = np.array(SCORE_BUCKETS)

    def observe(self, proba: np.ndarray, matrix: np.ndarray) -> None:
        scores = proba[:, self.positive] if self.positive is not None else proba.max(axis=1)
        positions = np.concatenate([
            proba.argmax(axis=1),
            self.bucket_offset + np.searchsorted(self._bounds, scores, side="left"),  # le buckets
            self.bin_offset + self.binner.positions(matrix).ravel(),
        ])
        increments = np.bincount(positions, minlength=self.counts.size).astype(np.float64)
        increments[self.sum_slot] = scores.sum()
        self.counts.add(increments)

    def collect(self):
        totals = self.counts.totals()
        predictions = CounterMetricFamily("slipway_predictions", "Predictions by predicted class",
                                          labels=["model_version", "class"])
        for index, name in enumerate(self.classes):
            predictions.add_metric([self.version, name], totals[index])
        yield predictions
        buckets = np.cumsum(totals[self.bucket_offset:self.sum_slot])
        score = HistogramMetricFamily("slipway_prediction_score", "Positive-class probability (binary) "
                                      "or top probability (multiclass)", labels=["model_version"])
        score.add_metric([self.version], [(f"{b}", float(c)) for b, c in zip(
            [*SCORE_BUCKETS, "+Inf"], buckets, strict=True)], sum_value=float(totals[self.sum_slot]))
        yield score
        bins = CounterMetricFamily("slipway_feature_bin", "Served feature values per training "
                                   "reference bin (drift is computed from these)", labels=["feature", "bin"])
        for (feature, label), value in zip(self.binner.labels, totals[self.bin_offset:], strict=True):
            bins.add_metric([feature, label], value)
        yield bins


class ModelMetrics:
    """The model's metrics: the per-prediction counts plus prometheus_client metrics for what
    changes rarely (rejections, unseen categories, the loaded model)."""

    def __init__(self, registry: CollectorRegistry):
        kwargs = {"registry": registry}
        self.registry = registry
        self.rejected = Counter("slipway_rejected_requests", "Requests refused as bad input, "
                                "by reason", ["reason"], **kwargs)
        for reason in REFUSAL_REASONS:
            self.rejected.labels(reason)
        self.unseen = Counter("slipway_unseen_categories", "Unseen category values treated as "
                              "missing", ["feature"], **kwargs)
        # No label: the names are the client's to choose, and each would be a series.
        self.ignored_inputs = Counter("slipway_ignored_inputs", "Requests that sent inputs the model "
                                      "does not take, dropped (SLIPWAY_UNKNOWN_FEATURES=ignore)", **kwargs)
        # Which lenient policies are on: SlipwayUnknownInputsIgnoredUnneeded fires when ignore
        # outlives the input change it was set for.
        self.input_policy = Gauge("slipway_input_policy", "How inputs the model does not know are answered "
                                  "(value 1): SLIPWAY_UNKNOWN_FEATURES and SLIPWAY_UNSEEN_CATEGORIES",
                                  ["unknown_features", "unseen_categories"], multiprocess_mode="livemax", **kwargs)
        self.log_dropped = Counter("slipway_prediction_log_dropped_lines", "Sampled prediction log "
                                   "lines lost to a failed write (a full disk)", **kwargs)
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
        self.predictions: PredictionCounts | None = None

    def model_loaded(self, model, name: str, track: str, trained_at: float | None) -> None:
        self.model_info.labels(name, model.version, track).set(1)
        self.model_ready.set(1)
        if trained_at is not None:
            self.trained_at.set(trained_at)
        directory = multiprocess_dir()
        self.predictions = PredictionCounts(model, directory)
        if directory is None:  # in multiprocess mode exposition() registers it per scrape
            self.registry.register(self.predictions)
        for feature, entry in model.metadata.get("reference", {}).items():
            for label, fraction in zip(bin_labels(entry), entry["fractions"], strict=True):
                self.reference.labels(feature, label).set(fraction)
        for feature in model.spec.categorical:  # at 0 from the start, as the refusal reasons
            self.unseen.labels(feature)

    def model_failed(self) -> None:
        self.model_ready.set(0)

    def observe(self, proba: np.ndarray, matrix: np.ndarray) -> None:
        self.predictions.observe(proba, matrix)

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The ``/metrics`` body: every process's samples in multiprocess mode, else this app's."""
        encoder, content_type = choose_encoder(accept)
        directory = multiprocess_dir()
        if directory is None:
            return encoder(self.registry), content_type
        registry = CollectorRegistry()  # a registry per scrape, as prometheus_client advises
        multiprocess.MultiProcessCollector(registry)
        if self.predictions is not None:
            registry.register(self.predictions)
        with files_locked(directory, exclusive=False):
            return encoder(registry), content_type
