"""A real Prometheus (Debian's package) on 127.0.0.1, scraping given targets every second and
evaluating the project's rules file."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from slipway import system_packages
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
def serving(binary_name: str, package: str, args: list[str], log_path: Path):
    """Run a Debian-packaged Prometheus server on a free loopback port until its /-/ready answers;
    yields its base URL."""
    binary = system_packages.find(binary_name)
    if binary is None:
        pytest.fail(f"{binary_name} not found: `make system-packages` installs Debian's {package} package")
    port = free_port()
    with open(log_path, "w") as log:
        process = subprocess.Popen([binary, *args, f"--web.listen-address=127.0.0.1:{port}"],
                                   stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                urllib.request.urlopen(url + "/-/ready", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise AssertionError(f"{binary_name} did not start:\n" + log_path.read_text())
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def prometheus(tmp_path: Path, targets: dict[str, str], alerts_without_delay: bool = False,
               pushgateway: str | None = None, alertmanager: str | None = None):
    """``targets``: track -> host:port (or several). Yields the base URL. ``alerts_without_delay``: the same
    rules with every ``for:`` set to 0s, so an alert whose expression holds fires within seconds
    (the delays themselves are covered by the promtool tests). ``pushgateway``: host:port, scraped as
    the README says (``honor_labels``, so the pushed job label is kept). ``alertmanager``: host:port
    to send alerts to."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules_file(tmp_path) if alerts_without_delay else RULES)],
        "scrape_configs": [{"job_name": "slipway", "static_configs": [
            {"targets": [address] if isinstance(address, str) else list(address), "labels": {"track": track}}
            for track, address in targets.items()]}],
    }
    if pushgateway:
        config["scrape_configs"].append({"job_name": "pushgateway", "honor_labels": True,
                                         "static_configs": [{"targets": [pushgateway]}]})
    if alertmanager:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    with serving("prometheus", "prometheus", [f"--config.file={tmp_path / 'prometheus.yml'}",
                                              f"--storage.tsdb.path={tmp_path / 'tsdb'}"],
                 tmp_path / "prometheus.log") as url:
        yield url


@contextmanager
def pushgateway(tmp_path: Path):
    """A real Pushgateway (Debian's prometheus-pushgateway), in memory only: Debian's build persists
    to /var/lib/prometheus/pushgateway.data unless told not to, and every run would start with the
    groups the runs before it pushed."""
    with serving("prometheus-pushgateway", "prometheus-pushgateway", ["--persistence.file="],
                 tmp_path / "pushgateway.log") as url:
        yield url


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


def scraped_twice(prom: str, *urls: str) -> None:
    """Each server scraped twice before the measured traffic, with no request sent: every series the
    rules and the analysis read is there from a server's start (test_a_new_servers_first_errors_...),
    so increase() over the window sees all the traffic, as it must after a rollout."""
    # Up to a minute: on a loaded machine a scrape can miss its 1 s timeout (up 0) for a while.
    assert wait_until(lambda: len(query(prom, "count_over_time(up[1m]) >= 2 and up == 1")) == len(urls), seconds=60)


def settle() -> None:
    """Two scrapes and rule evaluations after the last request, so queries see all of it."""
    time.sleep(3)


def active_alerts(url: str, name: str) -> list[dict]:
    body = json.loads(urllib.request.urlopen(f"{url}/api/v1/alerts", timeout=10).read())
    return [a for a in body["data"]["alerts"] if a["labels"]["alertname"] == name]


@contextmanager
def alertmanager(tmp_path: Path, config: dict):
    """A real Alertmanager (Debian's prometheus-alertmanager) with ``config``, clustering off."""
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(config))
    with serving("prometheus-alertmanager", "prometheus-alertmanager",
                 [f"--config.file={tmp_path / 'alertmanager.yml'}", f"--storage.path={tmp_path / 'alertmanager'}",
                  "--cluster.listen-address="], tmp_path / "alertmanager.log") as url:
        yield url
