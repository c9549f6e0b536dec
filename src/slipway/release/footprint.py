"""Whether the server, holding this model, fits in the memory its pods may use.

A model's size is the server's: each gunicorn worker holds the estimator (for the check at load)
and its onnxruntime session, which for a forest takes over a hundred bytes a node (a random forest
of 100 trees on 32,000 rows of 7 classes: 530 MiB in a server of 2 workers, measured). A container
past its memory limit is killed and restarted over and over (OOMKilled): the canary would never be
ready, and only the pod's events would say why. So before an image is built, ``slipway
serve-check`` starts the server as the image runs it, with the settings each overlay gives it, has
each of its workers answer the largest batch it accepts, and compares the memory the server then
holds with the overlay's limit for the server container: each process's private pages, plus the
pages they share counted once, as the container's cgroup counts them.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from slipway.errors import SlipwayError

SERVER_CONTAINER = "server"
# The server's settings that change how much memory it holds; the rest (paths inside the image,
# the track) do not, and are the image's own.
MEMORY_SETTINGS = ("SLIPWAY_WORKERS", "WEB_CONCURRENCY", "SLIPWAY_THREADS", "SLIPWAY_MAX_BATCH")
# Kubernetes' quantity suffixes (k8s.io/apimachinery resource.Quantity).
_SUFFIXES = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
             "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60}
_QUANTITY = re.compile(r"\+?(\d+(?:\.\d*)?|\.\d+)(?:[eE]([+-]?\d+))?(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?")
READY_SECONDS = 180  # a large forest takes a while to load, twice over (scikit-learn and onnxruntime)
# The share of its memory limit the server may hold once every worker has answered its largest batch.
MAX_SHARE = 0.9
ROUNDS = 20  # of as many requests at once as the server has workers, for each of them to answer one


class FootprintError(SlipwayError):
    """The server does not fit, or could not be measured."""


def quantity_bytes(value: object, where: str) -> int:
    """A Kubernetes memory quantity (``1Gi``, ``512M``, ``1e9``, ``1073741824``) in bytes."""
    text = str(value) if isinstance(value, str | int | float) and not isinstance(value, bool) else ""
    match = _QUANTITY.fullmatch(text)
    size = float("nan")
    if match:
        number, exponent, suffix = match.groups()
        power = int(exponent or 0)
        size = math.inf if power > 308 else float(number) * 10.0 ** power * _SUFFIXES[suffix or ""]
    if not math.isfinite(size):
        raise FootprintError(f"{where}: {value!r} is not a memory quantity (such as 1Gi or 512Mi)")
    return int(size)


def mib(size: float) -> str:
    return f"{size / 2 ** 20:,.0f} MiB"


@dataclass(frozen=True)
class ServerPod:
    """What one Deployment gives the server container: its memory limit (bytes; None when it has
    none) and the settings of :data:`MEMORY_SETTINGS` it sets."""

    where: str
    limit: int | None
    settings: tuple[tuple[str, str], ...]


def server_pods(docs: list[dict], overlay: str) -> list[ServerPod]:
    """Each Deployment's server container in one overlay's rendered manifests."""
    pods = []
    for doc in docs:
        if doc.get("kind") != "Deployment":
            continue
        where = f"{overlay}: Deployment {doc.get('metadata', {}).get('name')}"
        containers = doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or []
        for container in containers:
            if container.get("name") != SERVER_CONTAINER:
                continue
            limit = ((container.get("resources") or {}).get("limits") or {}).get("memory")
            settings = tuple(sorted((e["name"], str(e["value"])) for e in container.get("env") or []
                                    if e.get("name") in MEMORY_SETTINGS and "value" in e))
            pods.append(ServerPod(where, None if limit is None else quantity_bytes(limit, f"{where}: memory limit"),
                                  settings))
    if not pods:
        raise FootprintError(f"{overlay}: no Deployment with a container named {SERVER_CONTAINER!r}")
    return pods


def request_body(test_split: Path, inputs: list[str], rows: int) -> bytes:
    """A ``/predict`` body of ``rows`` rows of the model's inputs from the test split (``ingest``'s),
    repeated when it has fewer; a missing value as null."""
    if not test_split.is_file():
        raise FootprintError(f"{test_split} not found: run the pipeline (ingest writes the test split)")
    frame = pd.read_parquet(test_split, columns=inputs)
    if frame.empty:
        raise FootprintError(f"{test_split} has no rows to send")
    frame = frame.iloc[np.resize(np.arange(len(frame)), rows)].astype(object)
    instances = frame.where(frame.notna(), None).to_dict("records")
    return json.dumps({"instances": instances}, default=str).encode()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _resident(pid: int) -> dict[str, int]:
    """A process's resident pages by kind (``Pss``, ``Private_Clean``, ...), in bytes."""
    sizes = {}
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        for line in rollup:
            key, _, value = line.partition(":")
            if key in ("Pss", "Private_Clean", "Private_Dirty", "Shared_Clean", "Shared_Dirty"):
                sizes[key] = int(value.split()[0]) * 1024
    return sizes


def server_memory(pids: list[int]) -> int:
    """What the container holds for these processes: their pages, each counted once. Two readings,
    each short of it in its own way, and the larger is taken. The sum of proportional set sizes is
    exact when only these processes map their pages, but divides a library's pages among every
    process on the machine that maps them: beside six processes that had imported numpy,
    scikit-learn and onnxruntime from the same files (uv links a venv's files to its cache), the
    example model's server read 330 MiB where it read 377 alone. Each process's private pages plus
    the shared pages of the one that shares most (workers map the master's libraries, and its heap
    until they write to it) reads 363 either way: it misses what that process does not share."""
    sizes = [_resident(pid) for pid in pids]
    proportional = sum(size["Pss"] for size in sizes)
    private = sum(size["Private_Clean"] + size["Private_Dirty"] for size in sizes)
    shared = max(size["Shared_Clean"] + size["Shared_Dirty"] for size in sizes)
    return max(proportional, private + shared)


def _children(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after the command, which may hold spaces
        except OSError:  # gone meanwhile
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def _messages(log: str) -> list[str]:
    """The ``msg`` of each whole JSON line of the server's log."""
    messages = []
    for line in log.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:  # not the server's JSON, or a line still being written
            continue
        if isinstance(entry, dict) and isinstance(entry.get("msg"), str):
            messages.append(entry["msg"])
    return messages


def _wait_ready(server: subprocess.Popen, log: Path) -> int:
    """Wait until every worker has loaded the model (each logs it); the number of workers."""
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if server.poll() is not None:
            raise FootprintError(f"the server exited ({server.returncode}) before it was ready: {text[-1500:]}")
        messages = _messages(text)
        refused = [m for m in messages if m.startswith("model not loaded")]
        if refused:
            raise FootprintError(f"the server did not load the model: {refused[0]}")
        # gunicorn forks every worker before any of them loads the model
        workers = len(_children(server.pid))
        if workers and sum(bool(re.fullmatch(r"model \w+ loaded from .*", m)) for m in messages) >= workers:
            return workers
        time.sleep(0.5)
    raise FootprintError(f"the server's workers had not loaded the model within {READY_SECONDS} s: "
                         f"{log.read_text(errors='replace')[-1500:]}")


def _predict(url: str, body: bytes) -> None:
    request = urllib.request.Request(f"{url}/predict", data=body, headers={"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(request, timeout=120).close()
    except urllib.error.HTTPError as exc:
        raise FootprintError(f"the server answered {exc.code} to rows of the test split: "
                             f"{exc.read().decode(errors='replace')[:500]}") from None
    except OSError as exc:
        raise FootprintError("the server did not answer rows of the test split: "
                             f"{getattr(exc, 'reason', exc)}") from None


def _reach_every_worker(url: str, body: bytes, server: int, workers: int, metrics_dir: Path) -> None:
    """Send ``body`` until every worker has answered it. A worker's first prediction opens its
    counts file in the metrics directory (:class:`slipway.serving.metrics.CountArray`); a sync
    worker takes one request at a time, so as many at once as there are workers spread over them."""
    from slipway.serving.metrics import COUNTS_SUFFIX

    with ThreadPoolExecutor(workers) as pool:
        for _ in range(ROUNDS):
            list(pool.map(lambda _: _predict(url, body), range(workers)))
            answered = {path.stem.rsplit("_", 1)[1] for path in metrics_dir.glob(f"*{COUNTS_SUFFIX}")}
            if all(str(pid) in answered for pid in _children(server)):
                return
    raise FootprintError(f"not every one of the server's {workers} workers had answered after {ROUNDS} rounds "
                         "of as many requests at once")


def measure(model_dir: Path, settings: dict[str, str], body: bytes) -> int:
    """The memory (bytes, :func:`server_memory`) of the server on ``model_dir`` with these settings,
    once each of its workers has answered ``body``."""
    if not Path("/proc/self/smaps_rollup").is_file():
        raise FootprintError("measuring the server's memory needs Linux's /proc (smaps_rollup)")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    # The overlay's settings alone: not this shell's (a SLIPWAY_WORKERS or prediction log set for `make serve`).
    environ = {key: value for key, value in os.environ.items()
               if not key.startswith("SLIPWAY_") and key not in ("WEB_CONCURRENCY", "PROMETHEUS_MULTIPROC_DIR")}
    gunicorn = Path(sys.executable).parent / "gunicorn"
    with tempfile.TemporaryDirectory(prefix="slipway-serve-check-") as scratch:
        log = Path(scratch) / "server.log"
        environ |= {**settings, "SLIPWAY_BIND": f"127.0.0.1:{port}",
                    "SLIPWAY_MODEL_DIR": str(Path(model_dir).resolve()),
                    "PROMETHEUS_MULTIPROC_DIR": str(Path(scratch) / "metrics")}
        with open(log, "wb") as output:
            server = subprocess.Popen([str(gunicorn), "-c", "python:slipway.serving.gunicorn_conf",
                                       "slipway.serving.wsgi:app"], env=environ, stdout=output,
                                      stderr=subprocess.STDOUT)
        try:
            workers = _wait_ready(server, log)
            _reach_every_worker(url, body, server.pid, workers, Path(scratch) / "metrics")
            return server_memory([server.pid, *_children(server.pid)])
        finally:  # gunicorn stops its workers; in our process group, a cancelled CI job stops it too
            server.terminate()
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def check(pods: list[ServerPod], measured: dict[tuple[tuple[str, str], ...], int], version: str,
          max_share: float = MAX_SHARE) -> list[str]:
    """One line per Deployment: the server's memory against the limit. Raises
    :class:`FootprintError` naming every one where it holds more than ``max_share`` of the limit."""
    lines, over = [], []
    for pod in pods:
        size = measured[pod.settings]
        shown = ", ".join(f"{k}={v}" for k, v in pod.settings) or "the image's settings"
        if pod.limit is None:
            lines.append(f"{pod.where}: the server with model {version} ({shown}) holds {mib(size)}; "
                         "the container has no memory limit")
            continue
        line = (f"{pod.where}: the server with model {version} ({shown}) holds {mib(size)}, "
                f"{size / pod.limit:.0%} of its memory limit {mib(pod.limit)}")
        lines.append(line)
        if size > max_share * pod.limit:
            over.append(line)
    if over:
        raise FootprintError(f"the server holds more than the {max_share:.0%} of its memory limit serve-check "
                             "allows (past the limit it is OOMKilled and never ready; the rest is for what no "
                             "measurement here sees: kernel memory, many connections at once): "
                             + "; ".join(over) + ". Raise the server container's resources.limits.memory "
                             "(kustomize/base/workload/deployment.yaml, or a patch in the overlay), "
                             "or fewer workers (SLIPWAY_WORKERS), or a smaller model")
    return lines


def serve_check(model_dir: Path, test_split: Path, overlays: list[Path],
                max_share: float | None = None) -> list[str]:
    """Measure the server on ``model_dir`` with each overlay's settings (once per distinct set) and
    check it against each overlay's memory limit (:func:`check`); a line per Deployment."""
    from slipway.bundle import load_metadata
    from slipway.featureset import FeatureSpec
    from slipway.release.manifests import render
    from slipway.serving.config import ServingConfig

    metadata = load_metadata(model_dir)
    inputs = FeatureSpec.from_dict(metadata["features"]).inputs
    pods = [pod for overlay in overlays for pod in server_pods(render(overlay), overlay.name)]
    measured = {}
    for settings in dict.fromkeys(pod.settings for pod in pods):
        rows = ServingConfig.from_env(dict(settings)).max_batch  # the largest batch it accepts
        measured[settings] = measure(model_dir, dict(settings), request_body(test_split, inputs, rows))
    return check(pods, measured, metadata["model_version"], MAX_SHARE if max_share is None else max_share)


def markdown(lines: list[str] | None, refusal: str | None = None) -> str:
    """The pull-request comment's section: each Deployment's line, or why the server was refused."""
    if refusal is not None:
        return f"### ⛔ Server memory\n\n{refusal}\n"
    return "### Server memory\n\n" + "".join(f"- {line}\n" for line in lines or [])
