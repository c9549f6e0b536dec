"""Monitoring against a real Prometheus scraping real gunicorn servers on 127.0.0.1: the
dashboard's queries, canary analysis verdicts, drift from a shifted month, and the retrain alerts
through a real Pushgateway and Alertmanager."""

import copy
import json
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from slipway.monitoring import canary
from tests.conftest import build_bundle, churn_instances, make_churn
from tests.integration.conftest import free_port
from tests.integration.prometheus import (
    REPO,
    RULES,
    active_alerts,
    alertmanager,
    prometheus,
    pushgateway,
    query,
    wait_until,
)
from tests.integration.servers import alert_relay, gunicorn, post


def address(url: str) -> str:
    return url.removeprefix("http://")


def scraped_twice(prom: str, *urls: str) -> None:
    """Each server scraped twice before the measured traffic, with no request sent: every series the
    rules and the analysis read is there from a server's start (test_a_new_servers_first_errors_...),
    so increase() over the window sees all the traffic, as it must after a rollout."""
    assert wait_until(lambda: len(query(prom, "count_over_time(up[1m]) >= 2 and up == 1")) == len(urls), seconds=30)


def send(url: str, instances_per_request: int, requests: int, drift: float = 0.0, seed: int = 0) -> None:
    for i in range(requests):
        status, _ = post(url, "/predict", {"instances": churn_instances(instances_per_request, seed=seed + i,
                                                                            drift=drift)})
        assert status in (200, 422, 503)


def settle() -> None:
    """Two scrapes and rule evaluations after the last request, so queries see all of it."""
    time.sleep(3)


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


@pytest.fixture(scope="module")
def other_bundle(tmp_path_factory, repo_params):
    """A model that scores differently: barely trained."""
    params = copy.deepcopy(repo_params)
    params["train"]["hyperparameters"].update(learning_rate=0.01)
    directory = build_bundle(tmp_path_factory.mktemp("weak"), params)
    meta = json.loads((directory / "model.json").read_text())
    assert meta["model_version"]
    return directory


@pytest.fixture(scope="module")
def narrower_bundle(tmp_path_factory, repo_params):
    """A model trained without one input the clients send: it refuses their requests."""
    params = copy.deepcopy(repo_params)
    params["data"]["drop_columns"] = [*params["data"]["drop_columns"], "age"]
    return build_bundle(tmp_path_factory.mktemp("narrower"), params)


def test_a_window_that_mixes_two_canary_models_is_inconclusive(bundle_dir, other_bundle, tmp_path, repo_params):
    """A rollout in progress: pods of the old and the new canary model both served in the window."""
    with gunicorn(bundle_dir, tmp_path / "stable") as (stable, _), \
            gunicorn(bundle_dir, tmp_path / "old-canary", SLIPWAY_TRACK="canary") as (old, _), \
            gunicorn(other_bundle, tmp_path / "new-canary", SLIPWAY_TRACK="canary") as (new, _), \
            prometheus(tmp_path, {"stable": address(stable), "canary": [address(old), address(new)]}) as prom:
        scraped_twice(prom, stable, old, new)
        for url in (stable, old, new):
            send(url, 1, 60, seed=0)
        settle()
        result = analyse(prom, repo_params)
    models = sorted(json.loads((d / "model.json").read_text())["model_version"] for d in (bundle_dir, other_bundle))
    assert result["verdict"] == "inconclusive", result
    assert result["reason"] == (f"canary ran models {models[0]}, {models[1]} within 1m: analyse again once each "
                                "track has run one model for a whole window")


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


def analyse(prom: str, repo_params: dict, **limits) -> dict:
    params = copy.deepcopy(repo_params)
    params["canary"].update({"window": "1m", "min_requests": 40, **limits})
    return wait_until(lambda: (r := canary.analyse(canary.PrometheusClient(prom), params))["verdict"] != "inconclusive"
                      and r, seconds=20) or canary.analyse(canary.PrometheusClient(prom), params)


def probe(url: str, requests: int) -> None:
    """What the kubelet and a V2 client's readiness checks send: no predictions."""
    for i in range(requests):
        path = ("/healthz", "/readyz", "/v2/health/ready", "/v2/models/slipway/ready")[i % 4]
        with urllib.request.urlopen(url + path, timeout=10) as response:
            assert response.status == 200


def test_a_new_servers_first_errors_and_refusals_are_counted_by_increase(bundle_dir, tmp_path):
    """No warm-up, as after a rollout: Prometheus scrapes two new servers before any request, then
    the first prediction requests each ever answers are 503s (its bundle does not load) or 400s
    (empty batches). increase(), which the alerts and the canary analysis use, counts every one:
    the series were there at 0 from the start, not born at the first answer."""
    broken = tmp_path / "broken"
    shutil.copytree(bundle_dir, broken)
    (broken / "model.skops").write_bytes(b"broken")
    answered = f'{canary.REQUESTS}{{{canary.PREDICTIONS}, status=~"400|503"}}'
    with gunicorn(bundle_dir, tmp_path / "stable") as (stable, _), \
            gunicorn(broken, tmp_path / "canary", wait_ready=False, SLIPWAY_TRACK="canary") as (canary_url, _), \
            prometheus(tmp_path, {"stable": address(stable), "canary": address(canary_url)}) as prom:
        # Two scrapes of each series before any request: 2 endpoints x 2 statuses x 2 servers.
        assert wait_until(lambda: len(query(prom, f"count_over_time({answered}[1m]) >= 2 and {answered} == 0")) == 8)
        for _ in range(10):
            assert post(stable, "/predict", {"instances": []})[0] == 400
            assert post(canary_url, "/predict", {"instances": churn_instances(1)})[0] == 503
        settle()
        counted = {(s["metric"]["track"], s["metric"]["status"]): float(s["value"][1]) for s in query(
            prom, f"sum by (track, status) (increase({answered}[1m]))")}
    assert counted[("stable", "400")] >= 10 and counted[("canary", "503")] >= 10, counted
    assert counted[("stable", "503")] == 0 and counted[("canary", "400")] == 0, counted


@pytest.mark.parametrize("scenario", ["healthy", "errors", "refusals", "slow", "scores", "no-traffic",
                                      "probes-only"])
def test_canary_analysis(scenario, bundle_dir, other_bundle, narrower_bundle, tmp_path, repo_params):
    canary_dir = {"scores": other_bundle, "refusals": narrower_bundle}.get(scenario, bundle_dir)
    if scenario == "errors":
        canary_dir = tmp_path / "broken"
        shutil.copytree(bundle_dir, canary_dir)
        (canary_dir / "model.skops").write_bytes(b"broken")
    with gunicorn(bundle_dir, tmp_path / "stable") as (stable, _), \
            gunicorn(canary_dir, tmp_path / "canary", wait_ready=scenario != "errors",
                     SLIPWAY_TRACK="canary") as (canary_url, _), \
            prometheus(tmp_path, {"stable": address(stable), "canary": address(canary_url)}) as prom:
        scraped_twice(prom, stable, canary_url)
        if scenario == "probes-only":  # a canary nobody calls yet, probed well past min_requests
            send(stable, 1, 60, seed=0)
            probe(canary_url, 120)
        elif scenario != "no-traffic":
            send(stable, 1, 60, seed=0)
            send(canary_url, 400 if scenario == "slow" else 1, 60, seed=0)
        settle()
        # The slow canary is ~10x slower, still milliseconds: the absolute floor must not hide it.
        result = analyse(prom, repo_params, **({"min_latency_p95_seconds": 0.002} if scenario == "slow" else {}))
    expected = {"healthy": "pass", "no-traffic": "inconclusive", "probes-only": "inconclusive"}.get(scenario, "fail")
    assert result["verdict"] == expected, result
    failed = {c["check"] for c in result["checks"] if c["verdict"] == "fail"}
    assert failed == {"healthy": set(), "no-traffic": set(), "probes-only": set(),
                      "errors": {"error_ratio", "latency_p95", "score_ks"},
                      "refusals": {"rejection_ratio", "score_ks", "class_shift"},  # no canary predictions
                      "slow": {"latency_p95"}, "scores": {"score_ks"}}[scenario] or scenario == "errors"
    if scenario == "errors":
        assert "error_ratio" in failed
    if scenario == "healthy":  # every check had data from both tracks
        assert all(c["value"] is not None for c in result["checks"]), result
    if scenario == "refusals":  # every request names age, which the canary's model does not take
        refusals, = (c for c in result["checks"] if c["check"] == "rejection_ratio")
        assert refusals["value"] > 0.95, refusals
        assert re.fullmatch(r"canary (1\.0000|0\.9\d+) vs stable 0\.0000; the canary's reasons: unknown_feature "
                            r"\d+", refusals["detail"]), refusals
    if scenario == "no-traffic":
        assert result["reason"].startswith("too little traffic in 1m: canary 0, stable 0")
    if scenario == "probes-only":
        assert result["reason"].startswith("too little traffic in 1m: canary 0, stable 6")
    text = canary.markdown(result)
    assert f"Canary analysis: {expected.upper()}" in text


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
