"""One worker replaced at a time when ``SLIPWAY_MAX_REQUESTS`` recycles them.

gunicorn replaces a worker once it has served ``max_requests`` requests (plus a random jitter of up
to a tenth here). ``sync`` workers share requests evenly, so every worker of a server reaches its
limit within moments of the others and all were replaced together: while the replacements import
the libraries and load the model (seconds), no worker accepted, and every request waited.

Here a worker past its limit goes only when every one of the server's workers is serving (has
loaded the app); otherwise it serves on and asks again with its next request. So the replacement
boots while the others answer. It waits at most gunicorn's ``timeout`` (``SLIPWAY_TIMEOUT``, 30 s):
the limit is a guard against leaks, which a bounded delay keeps, and a replacement that has not
loaded by then is stuck, or the server runs fewer workers than configured (gunicorn's TTOU signal).
A model that takes longer than that to load wants a longer ``SLIPWAY_TIMEOUT``.

The workers keep one marker file each in ``<PROMETHEUS_MULTIPROC_DIR>/.slipway-workers/`` (the
server's own writable directory), named by pid, from the app loaded until the decision to go (or the
master's reaping of a worker that died); the decision is taken under a lock, so two workers
cannot both count the other as serving and leave together. This is on the request path: if the
directory cannot be used, a worker goes at its limit as gunicorn would have it, and says why.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from pathlib import Path

SERVING_DIR = ".slipway-workers"
LOCK_FILE = ".lock"
log = logging.getLogger("gunicorn.error")  # among gunicorn's messages about its workers


def serving_dir() -> Path | None:
    # Read here, not through slipway.serving.metrics: gunicorn's master imports this module, and
    # must not import numpy (see gunicorn_conf).
    metrics = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(metrics) / SERVING_DIR if metrics else None


def reset() -> None:
    """A new server run: markers a previous run left (its master killed) name no worker of this one."""
    directory = serving_dir()
    if directory and directory.is_dir():
        for name in os.listdir(directory):
            if name.isdigit():
                (directory / name).unlink(missing_ok=True)


def mark_serving(pid: int) -> None:
    """The worker has loaded the app and accepts requests (gunicorn's ``post_worker_init``)."""
    directory = serving_dir()
    if directory:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            (directory / str(pid)).touch()
        except OSError as exc:
            log.warning(f"worker {pid} could not say it serves ({exc}): others past "
                        "SLIPWAY_MAX_REQUESTS wait for it until SLIPWAY_TIMEOUT")


def forget(pid: int) -> None:
    """The worker exited (the master's ``child_exit``): whatever way it went, it serves no more."""
    directory = serving_dir()
    if directory:
        try:
            (directory / str(pid)).unlink(missing_ok=True)
        except OSError as exc:
            log.warning(f"worker {pid} still counts as serving ({exc})")


def leave_if_all_serving(pid: int, workers: int) -> bool:
    """Whether the worker ``pid`` may go now: every one of the ``workers`` is serving. If so its
    marker goes in the same step, so the others wait for its replacement."""
    directory = serving_dir()
    if directory is None or not directory.is_dir():
        return True
    try:
        with open(directory / LOCK_FILE, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            serving = sum(1 for name in os.listdir(directory) if name.isdigit())
            if serving < workers:
                return False
            (directory / str(pid)).unlink(missing_ok=True)
            return True
    except OSError as exc:
        log.warning(f"worker {pid} goes at its limit without asking whether the others serve ({exc})")
        return True


class OneRecycleAtATime:
    """Mixed into a gunicorn worker class, before it. gunicorn asks ``nr >= max_requests`` after
    every request; past the limit, the answer is yes only when :func:`leave_if_all_serving` says so,
    or once the worker has waited gunicorn's ``timeout``."""

    _limit: int
    _waiting_since: float | None = None

    @property
    def max_requests(self) -> int:
        if self.nr < self._limit:
            return self._limit
        if self._waiting_since is None:
            self._waiting_since = time.monotonic()
        if time.monotonic() - self._waiting_since >= self.cfg.timeout:
            forget(os.getpid())
            return self._limit
        if leave_if_all_serving(os.getpid(), self.cfg.workers):
            return self._limit
        return self.nr + 1  # not yet: another worker is being replaced

    @max_requests.setter
    def max_requests(self, limit: int) -> None:
        self._limit = limit
