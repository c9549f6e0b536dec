"""A real Prometheus (Debian's package) on 127.0.0.1, scraping given targets every second and
evaluating the project's rules file."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "k8s/monitoring/rules.yaml"


def rules_file(tmp_path: Path) -> Path:
    rules = yaml.safe_load(RULES.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "0s"
    path = tmp_path / "rules-no-delay.yaml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    return path


@contextmanager
def prometheus(tmp_path: Path, targets: dict[str, str], alerts_without_delay: bool = False):
    """``targets``: track -> host:port (or several). Yields the base URL. ``alerts_without_delay``: the same
    rules with every ``for:`` set to 0s, so an alert whose expression holds fires within seconds
    (the delays themselves are covered by the promtool tests)."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus not found: .ci/run installs Debian's prometheus package")
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules_file(tmp_path) if alerts_without_delay else RULES)],
        "scrape_configs": [{"job_name": "slipway", "static_configs": [
            {"targets": [address] if isinstance(address, str) else list(address), "labels": {"track": track}}
            for track, address in targets.items()]}],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    with open(tmp_path / "prometheus.log", "w") as log:
        process = subprocess.Popen(
            [binary, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                urllib.request.urlopen(url + "/-/ready", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise AssertionError("prometheus did not start:\n" + (tmp_path / "prometheus.log").read_text())
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def query(url: str, promql: str) -> list[dict]:
    address = f"{url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    body = json.loads(urllib.request.urlopen(address, timeout=10).read())
    assert body["status"] == "success", body
    return body["data"]["result"]


def wait_until(check, seconds: float = 30, step: float = 0.5):
    deadline = time.time() + seconds
    while True:
        value = check()
        if value or time.time() > deadline:
            return value
        time.sleep(step)


def active_alerts(url: str, name: str) -> list[dict]:
    body = json.loads(urllib.request.urlopen(f"{url}/api/v1/alerts", timeout=10).read())
    return [a for a in body["data"]["alerts"] if a["labels"]["alertname"] == name]
