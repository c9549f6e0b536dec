"""Real gunicorn servers on 127.0.0.1 for the integration tests, and small HTTP helpers."""

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import churn_instances
from tests.integration.conftest import free_port

GUNICORN = [str(Path(sys.executable).parent / "gunicorn"), "-c", "python:slipway.serving.gunicorn_conf",
            "slipway.serving.wsgi:app"]


@contextmanager
def gunicorn(model_dir: Path, tmp_path: Path, workers: int = 2, wait_ready: bool = True, **env):
    port = free_port()
    tmp_path.mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, "SLIPWAY_MODEL_DIR": str(model_dir), "SLIPWAY_BIND": f"127.0.0.1:{port}",
                   "SLIPWAY_WORKERS": str(workers), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom"),
                   **env}
    with open(tmp_path / "gunicorn.log", "w") as log:
        process = subprocess.Popen(GUNICORN, env=environment, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(url + ("/readyz" if wait_ready else "/healthz"), timeout=2)
                # One ready worker answers /readyz; the tests want every worker serving (a worker
                # still loading counts slipway_model_ready as 0).
                if not wait_ready or (tmp_path / "gunicorn.log").read_text().count(" loaded from ") >= workers:
                    break
            except urllib.error.HTTPError as exc:
                if not wait_ready and exc.code:
                    break
            except OSError:
                pass
            if time.time() > deadline or process.poll() is not None:
                raise AssertionError("gunicorn did not start:\n" + (tmp_path / "gunicorn.log").read_text())
            time.sleep(0.2)
        yield url, process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


@contextmanager
def alert_relay(port: int, env: dict[str, str], *args: str):
    """``slipway alert-relay`` on 127.0.0.1:``port`` (under gunicorn, as its Deployment runs it);
    yields the process once ``/healthz`` answers. Stopped on leaving; then ``process.output`` holds
    what it printed."""
    process = subprocess.Popen([str(Path(sys.executable).parent / "slipway"), "alert-relay", *args,
                                "--host", "127.0.0.1", "--port", str(port)], env={**os.environ, **env},
                               text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        process.output = process.communicate(timeout=30)[0]


def log_entries(output: str) -> list[dict]:
    """Every line a server wrote, each of which must be one JSON object (the collector's contract)."""
    entries = []
    for number, line in enumerate(output.splitlines(), start=1):
        try:
            entries.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"log line {number} is not JSON: {line!r}") from None
    return entries


def messages(output: str, logger: str) -> list[str]:
    return [entry["msg"] for entry in log_entries(output) if entry["logger"] == logger]


sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import proxy  # noqa: E402 (bench/ is not a package)


@contextmanager
def buffering_proxy(server_url: str, tmp_path: Path):
    """The buffering-proxy component's nginx in front of ``server_url`` (bench/proxy.py); yields
    the proxy's URL once it answers."""
    port, scratch = free_port(), tmp_path / "nginx"
    with open(tmp_path / "nginx.log", "w") as log:
        process = subprocess.Popen(proxy.command(server_url, port, scratch), stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 20
        while True:
            try:
                urllib.request.urlopen(url + "/healthz", timeout=2)
                break
            except OSError:
                if time.time() > deadline or process.poll() is not None:
                    raise AssertionError("nginx did not start:\n" + (tmp_path / "nginx.log").read_text()) from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def post(url: str, path: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def address(url: str) -> str:
    return url.removeprefix("http://")


def send(url: str, instances_per_request: int, requests: int, drift: float = 0.0, seed: int = 0) -> None:
    for i in range(requests):
        status, _ = post(url, "/predict", {"instances": churn_instances(instances_per_request, seed=seed + i,
                                                                            drift=drift)})
        assert status in (200, 422, 503)


def scrape(url: str, name: str, labels: str = "") -> float:
    """The sum of the samples of metric ``name`` whose labels match the regex ``labels``."""
    text = urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if re.match(rf"{name}[{{ ]", line) and re.search(labels, line))
