"""Canary analysis (``slipway canary-analysis``) against a real Prometheus scraping real gunicorn
servers on 127.0.0.1, a stable and a canary track: each verdict, from the traffic that earns it."""

import copy
import json
import re
import shutil
import urllib.request

import pytest

from slipway.monitoring import canary
from tests.conftest import build_bundle, churn_instances
from tests.integration.prometheus import prometheus, query, scraped_twice, settle, wait_until
from tests.integration.servers import address, gunicorn, post, send


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
