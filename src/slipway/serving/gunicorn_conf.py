"""gunicorn settings for the server, from the environment (the image and `make serve` use it).

    gunicorn -c python:slipway.serving.gunicorn_conf slipway.serving.wsgi:app

Why these defaults (measured on 2 cores with 2 workers before this server was written; the
server's own figures are in bench/README.md): ``sync`` workers spread connections evenly where
threaded workers with keep-alive piled them onto one worker; and each worker gets exactly one
OpenMP/BLAS thread, since scikit-learn's tree ensembles otherwise start one thread per core in
every worker and throughput collapses (about 30x).
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import tempfile

from slipway.serving import config as _config
from slipway.serving import recycling

# The app's own settings, checked here in the master: a bad value stops gunicorn with one line
# naming the variable, before any worker imports the model libraries and fails on it.
_settings = _config.ServingConfig.from_env()

# Before any worker imports numpy or scikit-learn (workers import the app after the fork).
_threads_per_worker = str(_config.env_int(("SLIPWAY_THREADS_PER_WORKER",), 1, minimum=1))
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = _threads_per_worker

bind = os.environ.get("SLIPWAY_BIND", f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8080')}")
workers = _config.env_int(("SLIPWAY_WORKERS", "WEB_CONCURRENCY"), 2, minimum=1)
threads = _config.env_int(("SLIPWAY_THREADS",), 1, minimum=1)
# gunicorn's sync and gthread workers, answering what gunicorn refuses itself as the app does, and
# replaced one at a time (slipway.serving.workers).
worker_class = "slipway.serving.workers." + ("SlipwaySyncWorker" if threads == 1 else "SlipwayThreadWorker")
timeout = _config.env_int(("SLIPWAY_TIMEOUT",), 30)
graceful_timeout = _config.env_int(("SLIPWAY_GRACEFUL_TIMEOUT",), 30)
keepalive = _config.env_int(("SLIPWAY_KEEPALIVE",), 5)
max_requests = _config.env_int(("SLIPWAY_MAX_REQUESTS",), 0)
max_requests_jitter = max_requests // 10
accesslog = None  # the app logs one JSON line per request itself
errorlog = "-"
logger_class = "slipway.serving.gunicorn_logger.JsonLogger"  # gunicorn's messages as JSON lines too
# Heartbeat files in memory, not on a (possibly read-only) root filesystem; and no control socket
# in $HOME (gunicorn opens one there by default), which a read-only container cannot create.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
control_socket_disable = True

# Prometheus multiprocess mode: every worker writes its samples to files here, /metrics sums them.
_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if not _metrics_dir:
    _metrics_dir = tempfile.mkdtemp(prefix="slipway-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir


def on_starting(server):
    """A restart must not add the previous run's counts: the previous run's sample files go, and
    its workers' markers (slipway.serving.recycling). Only those: the directory is the operator's
    to name, and anything else in it stays."""
    from pathlib import Path

    from slipway.serving.metrics import sample_files

    os.makedirs(_metrics_dir, exist_ok=True)
    for path in sample_files(Path(_metrics_dir)):
        path.unlink()
    recycling.reset()


# The signals that stop a worker (gunicorn's own handlers take them once the worker is set up).
_STOPPING = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)


def _exit_now(signum, frame):
    os._exit(0)


def post_fork(server, worker):
    """A stop that reaches a worker between its fork and gunicorn's setting of its signal handlers went
    to the copy of the master's handler, which only queues it for a master the worker is not: it was
    lost, the worker booted and served on, and the server took SLIPWAY_GRACEFUL_TIMEOUT to stop (a pod
    stopped as it started). Until those handlers are set, a stop ends the worker at once, including
    one the copy already queued; it has served nothing. (Not by the default actions: SIGQUIT's
    would dump core.)"""
    for stop in _STOPPING:
        signal.signal(stop, _exit_now)
    queued = []  # the worker's copy of the master's queue: the master's own is untouched
    with contextlib.suppress(queue.Empty):
        while True:
            queued.append(server.SIG_QUEUE.get_nowait())
    if any(sig in _STOPPING for sig in queued):
        os._exit(0)


def post_worker_init(worker):
    """The worker has loaded the app and serves: so the others, once past SLIPWAY_MAX_REQUESTS,
    may be replaced (slipway.serving.recycling)."""
    recycling.mark_serving(worker.pid)


def when_ready(server):
    """Where to look, said once the address is bound (not before: on a port in use gunicorn retries,
    then gives up)."""
    for listener in server.LISTENERS:
        server.log.info(f"Serving on {listener}/ (model card), /predict, "
                        f"/v2/models/{_settings.model_name}/infer, /metrics")


def child_exit(server, worker):
    """A worker exited (recycled after SLIPWAY_MAX_REQUESTS, or died): it no longer counts as
    serving, its live gauges go, its counts join the archive (see slipway.serving.metrics)."""
    from pathlib import Path

    from prometheus_client import multiprocess

    from slipway.serving.metrics import archive_exited_worker

    recycling.forget(worker.pid)
    multiprocess.mark_process_dead(worker.pid)
    archive_exited_worker(Path(_metrics_dir), worker.pid)
