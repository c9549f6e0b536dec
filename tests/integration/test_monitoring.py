"""Monitoring against a real Prometheus scraping real gunicorn servers on 127.0.0.1: the rules and
their promtool tests, the dashboard's queries, drift from a shifted month, and the retrain alerts
through a real Pushgateway and Alertmanager. Canary analysis: test_canary.py."""

import json
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from tests.conftest import make_churn
from tests.integration.conftest import free_port
from tests.integration.prometheus import (
    REPO,
    RULES,
    active_alerts,
    alertmanager,
    prometheus,
    pushgateway,
    query,
    scraped_twice,
    settle,
    wait_until,
)
from tests.integration.servers import address, alert_relay, gunicorn, post, send


def test_rules_check_and_unit_tests_pass():
    checked = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(["promtool", "test", "rules", "tests/alerts_test.yaml"], capture_output=True,
                            text=True, cwd=RULES.parent)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    alerts = {r["alert"] for g in __import__("yaml").safe_load(RULES.read_text())["groups"]
              for r in g["rules"] if "alert" in r}
    tests_text = (RULES.parent / "tests/alerts_test.yaml").read_text()
    assert all(f"alertname: {name}" in tests_text for name in alerts)


def test_prometheusrule_is_built_from_the_rules_file():
    result = subprocess.run([str(Path(__import__("sys").executable).parent / "slipway"), "monitoring-rules",
                             "--check"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr


def test_every_dashboard_query_returns_data(bundle_dir, tmp_path):
    dashboard = json.loads((REPO / "k8s/monitoring/dashboard.json").read_text())
    expressions = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    with gunicorn(bundle_dir, tmp_path / "stable") as (stable, _), \
            gunicorn(bundle_dir, tmp_path / "canary", SLIPWAY_TRACK="canary") as (canary_url, _), \
            prometheus(tmp_path, {"stable": address(stable), "canary": address(canary_url)}) as prom:
        send(stable, 2, 30)
        send(canary_url, 2, 10)
        post(stable, "/predict", {"instances": []})
        settle()
        for expression in expressions:
            assert wait_until(lambda e=expression: query(prom, e), seconds=30), f"no data for {expression}"


@pytest.mark.parametrize("drift", [0.0, 2.0])
def test_drift_recording_rule_and_alert_follow_a_shifted_month(drift, bundle_dir, tmp_path):
    log = tmp_path / "predictions" / "server.jsonl"
    with gunicorn(bundle_dir, tmp_path / "stable", SLIPWAY_PREDICTION_LOG=str(log),
                  SLIPWAY_PREDICTION_LOG_RATE="1.0") as (stable, _), \
            prometheus(tmp_path, {"stable": address(stable)}, alerts_without_delay=True) as prom:
        scraped_twice(prom, stable)
        send(stable, 20, 40, drift=drift, seed=100)
        settle()
        psi = wait_until(lambda: query(prom, "slipway:feature_psi:1h"), seconds=30)
        assert psi
        worst = max(float(s["value"][1]) for s in psi)
        if drift:
            assert worst > 0.2
            firing = wait_until(lambda: [a for a in active_alerts(prom, "SlipwayFeatureDrift")
                                         if a["state"] == "firing"], seconds=20)
            assert firing and {a["labels"]["track"] for a in firing} == {"stable"}
        else:
            assert worst < 0.2
            assert active_alerts(prom, "SlipwayFeatureDrift") == []
    # The offline check on the server's sampled prediction log agrees.
    reference = tmp_path / "train.parquet"
    make_churn(months=3, rows=600).to_parquet(reference)
    result = subprocess.run([str(Path(sys.executable).parent / "slipway"), "drift", "--predictions",
                             str(log.parent), "--reference", str(reference), "--model-dir", str(bundle_dir),
                             "--out-dir", str(tmp_path / "reports")], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == (1 if drift else 0), result.stdout + result.stderr
    report = json.loads((tmp_path / "reports/drift.json").read_text())
    assert report["rows"]["served"] == 40 * 20
    assert (report["verdict"], bool(report["drifted"])) == (("fail", True) if drift else ("pass", False))
    assert (tmp_path / "reports/drift.html").stat().st_size > 10000


def test_the_retrain_alert_follows_the_runs_ci_pushes(tmp_path):
    """``slipway report-run`` into a real Pushgateway, scraped as the README says: a failed run
    raises SlipwayRetrainFailing, the next successful one clears it and records its time."""
    def report(status: str) -> None:
        result = subprocess.run([str(Path(sys.executable).parent / "slipway"), "report-run", "--pushgateway",
                                 gateway, "--status", status], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr

    def firing() -> list[dict]:
        return [a for a in active_alerts(prom, "SlipwayRetrainFailing") if a["state"] == "firing"]

    last_success = 'slipway_retrain_last_success_timestamp_seconds{job="slipway-retrain"}'

    with pushgateway(tmp_path) as gateway, \
            prometheus(tmp_path, {}, alerts_without_delay=True, pushgateway=address(gateway)) as prom:
        report("success")
        assert wait_until(lambda: query(prom, last_success))
        first_success = float(query(prom, last_success)[0]["value"][1])
        assert abs(first_success - time.time()) < 60
        report("failure")
        alerts = wait_until(firing, seconds=20)
        assert [a["labels"]["job"] for a in alerts] == ["slipway-retrain"]
        # A failure keeps the last success's time: the stale-retrain alert still counts from it.
        assert float(query(prom, last_success)[0]["value"][1]) == first_success
        report("success")
        assert wait_until(lambda: not firing(), seconds=20)


def readme_alertmanager_receiver() -> dict:
    """The route and receiver the README tells a platform engineer to add to Alertmanager."""
    section = (REPO / "README.md").read_text().split("Give Alertmanager the same webhook token", 1)[1]
    return yaml.safe_load(section.split("```yaml", 1)[1].split("```", 1)[0])


def test_a_retrain_alert_reaches_github_through_alertmanager_and_the_relay(bundle_dir, tmp_path, recorder):
    """The feedback loop from a served model to the retrain workflow, all real but GitHub: a model
    past its age limit, Prometheus with the rules, Alertmanager with the README's route and
    receiver, the relay as its Deployment runs it; GitHub's API is recorded."""
    github, received = recorder
    stale = tmp_path / "stale-model"
    shutil.copytree(bundle_dir, stale)
    metadata = json.loads((stale / "model.json").read_text())
    metadata["trained_at"] = (datetime.now(UTC) - timedelta(days=45)).isoformat(timespec="seconds")
    (stale / "model.json").write_text(json.dumps(metadata))
    relay_port = free_port()
    readme = readme_alertmanager_receiver()
    (tmp_path / "webhook-token").write_text("w3bh00k\n")  # as the Secret mounts it in Alertmanager
    for receiver in readme["receivers"]:
        for webhook in receiver["webhook_configs"]:  # the relay's Service, here on loopback
            webhook["url"] = webhook["url"].replace("slipway-alert-relay.slipway.svc:9095", f"127.0.0.1:{relay_port}")
            webhook["http_config"]["authorization"]["credentials_file"] = str(tmp_path / "webhook-token")
    config = {"route": {"receiver": "default", "group_wait": "1s", **readme["route"]},
              "receivers": [{"name": "default"}, *readme["receivers"]]}
    with alert_relay(relay_port, {"GITHUB_TOKEN": "t0ken", "SLIPWAY_RELAY_WEBHOOK_TOKEN": "w3bh00k",
                                  "GITHUB_API_URL": github}, "--repository", "org/repo"), \
            gunicorn(stale, tmp_path / "stable") as (stable, _), \
            alertmanager(tmp_path, config) as manager, \
            prometheus(tmp_path, {"stable": address(stable)}, alerts_without_delay=True,
                       alertmanager=address(manager)):
        dispatches = wait_until(lambda: [body for path, _, body in received if path == "/repos/org/repo/dispatches"],
                                seconds=60)
    assert dispatches, (tmp_path / "alertmanager.log").read_text()
    assert json.loads(dispatches[0]) == {"event_type": "retrain", "client_payload": {"alerts": ["SlipwayModelTooOld"]}}
