"""report-run (Pushgateway), the Alertmanager relay and canary-analysis's Prometheus address,
against HTTP servers on 127.0.0.1."""

import base64
import contextlib
import io
import json
import logging
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from slipway.errors import ParamsError, SlipwayError
from slipway.monitoring import canary
from slipway.monitoring.relay import create_relay, retrain_alerts
from tests.integration.conftest import free_port
from tests.integration.servers import alert_relay, log_entries


def slipway(*args):
    return subprocess.run([str(Path(sys.executable).parent / "slipway"), *args], capture_output=True, text=True)


def test_report_run_pushes_the_retrain_status(recorder):
    url, received = recorder
    assert slipway("report-run", "--pushgateway", url, "--status", "success").returncode == 0
    assert slipway("report-run", "--pushgateway", url, "--status", "failure").returncode == 0
    (path, _, success), (_, _, failure) = received
    assert path == "/metrics/job/slipway-retrain"
    assert "slipway_retrain_last_run_success 1" in success
    assert "slipway_retrain_last_success_timestamp_seconds " in success
    assert "slipway_retrain_last_run_success 0" in failure and "timestamp" not in failure


def test_report_run_names_an_unreachable_pushgateway():
    result = slipway("report-run", "--pushgateway", "http://127.0.0.1:9", "--status", "success")
    assert result.returncode == 2 and "report-run: Pushgateway at http://127.0.0.1:9" in result.stderr


@pytest.mark.parametrize("command", [["canary-analysis", "--prometheus-url"],
                                     ["report-run", "--status", "success", "--pushgateway"]])
@pytest.mark.parametrize("address", ["prometheus:9090", "http://", "http://[::1", "http://prometheus:90900",
                                     "http://prometheus monitoring:9090"])
def test_an_address_that_is_not_an_http_url_is_a_usage_error(command, address):
    """Not a request that fails later: 'http://[::1' was blamed on the answer not being
    Prometheus's JSON, a space on control characters in a traceback."""
    result = slipway(*command, address)
    assert result.returncode == 2
    assert f"{address!r} is not an http:// or https:// URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_report_run_pushes_a_job_name_with_a_slash_or_a_space(recorder):
    """The Pushgateway reads a slash in the job as a path separator: such a name goes base64, as
    the Pushgateway documents (a space used to be a traceback)."""
    url, received = recorder
    assert slipway("report-run", "--pushgateway", url, "--status", "success", "--job", "nightly retrain/main"
                   ).returncode == 0
    (path, _, body), = received
    assert path == "/metrics/job@base64/" + base64.urlsafe_b64encode(b"nightly retrain/main").decode()
    assert "slipway_retrain_last_run_success 1" in body


def test_report_run_refuses_an_empty_job():
    result = slipway("report-run", "--pushgateway", "http://127.0.0.1:9", "--status", "success", "--job", "")
    assert result.returncode == 2 and "Invalid value for '--job': is empty" in result.stderr


def test_canary_analysis_names_an_address_that_is_not_prometheus(recorder):
    url, _ = recorder
    result = slipway("canary-analysis", "--prometheus-url", url)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"Prometheus at {url}: the answer is not Prometheus API JSON" in result.stderr



@pytest.mark.parametrize("answer", [b'{"status": "success"}', b'{"status": "success", "data": {"result": 5}}',
                                    b'{"status": "success", "data": []}', b"[]", b"<html>"])
def test_an_answer_without_prometheus_result_list_is_named(monkeypatch, answer):
    """The first three were a KeyError or TypeError traceback."""
    monkeypatch.setattr(canary.urllib.request, "urlopen",
                        lambda *args, **kwargs: contextlib.nullcontext(io.BytesIO(answer)))
    with pytest.raises(SlipwayError, match="^Prometheus at http://p: the answer is not Prometheus API JSON"):
        canary.PrometheusClient("http://p").query("up")


ALERTS = {"alerts": [
    {"status": "firing", "labels": {"alertname": "SlipwayFeatureDrift", "action": "retrain"}},
    {"status": "firing", "labels": {"alertname": "SlipwayHighErrorRatio"}},
    {"status": "resolved", "labels": {"alertname": "SlipwayModelTooOld", "action": "retrain"}},
]}


WEBHOOK = {"Authorization": "Bearer w3bh00k"}  # what Alertmanager's http_config.authorization sends


def test_only_firing_retrain_alerts_dispatch(recorder):
    url, received = recorder
    assert retrain_alerts(ALERTS) == ["SlipwayFeatureDrift"]
    client = create_relay("org/repo", "t0ken", "w3bh00k", api=url).test_client()
    response = client.post("/alertmanager", json=ALERTS, headers=WEBHOOK)
    assert response.json == {"dispatched": True, "alerts": ["SlipwayFeatureDrift"]}
    path, headers, body = received[0]
    assert path == "/repos/org/repo/dispatches" and headers["Authorization"] == "Bearer t0ken"
    assert json.loads(body) == {"event_type": "retrain", "client_payload": {"alerts": ["SlipwayFeatureDrift"]}}
    quiet = client.post("/alertmanager", json={"alerts": ALERTS["alerts"][1:]}, headers=WEBHOOK)
    assert quiet.json["dispatched"] is False
    assert len(received) == 1
    assert client.post("/alertmanager", data="x", content_type="text/plain", headers=WEBHOOK).status_code == 400


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic w3bh00k"},
                                     {"Authorization": "Bearer"}, {"Authorization": "Bearer w3bh00k-and-more"}])
def test_only_alertmanager_with_the_webhook_token_can_start_a_retrain(recorder, headers):
    """Anything else that reaches the relay (the NetworkPolicy admits the monitoring namespace) is
    refused before its body is read: no dispatch, a 401 that says what is expected."""
    url, received = recorder
    response = create_relay("org/repo", "t0ken", "w3bh00k", api=url).test_client().post(
        "/alertmanager", json=ALERTS, headers=headers)
    assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json == {"error": "expected Authorization: Bearer <the relay's webhook token>"}
    assert received == []



def test_a_failed_dispatch_is_a_502_and_a_log_line_naming_it():
    class Collect(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    lines, handler = [], Collect()
    client = create_relay("org/repo", "t0ken", "w3bh00k", api="http://127.0.0.1:9").test_client()
    logging.getLogger("slipway.relay").addHandler(handler)
    try:
        response = client.post("/alertmanager", json=ALERTS, headers=WEBHOOK)
    finally:
        logging.getLogger("slipway.relay").removeHandler(handler)
    assert response.status_code == 502 and response.json["error"].startswith("GitHub repository_dispatch failed")
    assert len(lines) == 1
    assert lines[0].startswith("GitHub repository_dispatch to org/repo for SlipwayFeatureDrift failed: ")


@pytest.mark.parametrize(("payload", "error"), [
    ("x", 'expected Alertmanager\'s webhook JSON: an object with an "alerts" list'),
    ({"alerts": "firing"}, 'expected Alertmanager\'s webhook JSON: an object with an "alerts" list'),
    ({"alerts": [ALERTS["alerts"][0], 3]}, "alerts[1] must be an object whose labels are an object"),
    ({"alerts": [{"status": "firing", "labels": ["retrain"]}]},
     "alerts[0] must be an object whose labels are an object"),
])
def test_a_payload_that_is_not_alertmanager_json_is_a_400_that_says_why(recorder, payload, error):
    url, received = recorder
    response = create_relay("org/repo", "t0ken", "w3bh00k", api=url).test_client().post(
        "/alertmanager", json=payload, headers=WEBHOOK)
    assert (response.status_code, response.json) == (400, {"error": error})
    assert received == []


def test_the_relay_serves_under_gunicorn_as_its_deployment_runs_it(recorder, tmp_path):
    """The component's command and environment: repository, token and API from the environment."""
    url, received = recorder
    port = free_port()
    for name, value in (("github-token", "t0ken\n"), ("webhook-token", "w3bh00k\n")):  # the mounted Secret
        (tmp_path / name).write_text(value)
    env = {"SLIPWAY_RELAY_REPOSITORY": "org/repo", "GITHUB_TOKEN_FILE": str(tmp_path / "github-token"),
           "SLIPWAY_RELAY_WEBHOOK_TOKEN_FILE": str(tmp_path / "webhook-token"), "GITHUB_API_URL": url}
    with alert_relay(port, env) as relay:
        base = f"http://127.0.0.1:{port}"
        assert json.load(urllib.request.urlopen(f"{base}/healthz", timeout=1)) == {"alive": True}
        request = urllib.request.Request(f"{base}/alertmanager", data=json.dumps(ALERTS).encode(),
                                         headers={"Content-Type": "application/json", **WEBHOOK})
        assert json.load(urllib.request.urlopen(request, timeout=10))["dispatched"] is True
        assert [(path, headers["Authorization"]) for path, headers, _ in received] == [
            ("/repos/org/repo/dispatches", "Bearer t0ken")]
    assert relay.returncode == 0 and "Booting worker" in relay.output, relay.output
    assert "development server" not in relay.output
    # JSON lines, as the model server's; the access line names no header (the bearer token is one)
    access = [e for e in log_entries(relay.output) if e["logger"] == "gunicorn.access"]
    assert [(e["method"], e["path"], e["status"]) for e in access] == [("GET", "/healthz", 200)] * 2 + [
        ("POST", "/alertmanager", 200)]
    assert "w3bh00k" not in relay.output and "t0ken" not in relay.output


@pytest.mark.parametrize(("args", "env", "error"), [
    (["--repository", "org"], {"GITHUB_TOKEN": "t"}, "Invalid value for --repository: 'org' is not owner/name"),
    (["--repository", "org/repo"], {"SLIPWAY_RELAY_WEBHOOK_TOKEN": "w"},
     "error: alert-relay: GITHUB_TOKEN holds no token (a GitHub token that may dispatch to the repository)"),
    (["--repository", "org/repo"], {"GITHUB_TOKEN": "t"},
     "error: alert-relay: SLIPWAY_RELAY_WEBHOOK_TOKEN holds no token (the bearer token Alertmanager sends"),
    (["--repository", "org/repo", "--webhook-token-file", "/dev/null"], {"GITHUB_TOKEN": "t"},
     "error: alert-relay: /dev/null holds no token"),
    (["--repository", "org/repo", "--token-file", "/nonexistent"], {}, "'/nonexistent' does not exist"),
    (["--repository", "org/repo", "--github-api", "api.github.com"], {"GITHUB_TOKEN": "t"},
     "'api.github.com' is not an http:// or https:// URL"),
])
def test_the_relay_refuses_to_start_misconfigured(args, env, error):
    settings = ("GITHUB_TOKEN", "GITHUB_TOKEN_FILE", "GITHUB_API_URL", "SLIPWAY_RELAY_WEBHOOK_TOKEN",
                "SLIPWAY_RELAY_WEBHOOK_TOKEN_FILE")
    clean = {k: v for k, v in os.environ.items() if k not in settings}
    result = subprocess.run([str(Path(sys.executable).parent / "slipway"), "alert-relay", *args],
                            capture_output=True, text=True, env={**clean, **env}, timeout=30)
    assert result.returncode == 2 and error in result.stderr, result.stderr


def test_the_relay_needs_only_what_the_server_image_installs():
    """The component runs `slipway alert-relay` in the model server's image: no pipeline extras."""
    code = ("import sys, slipway.cli, slipway.monitoring.relay, gunicorn.app.base; "
            "heavy = [m for m in ('deepchecks', 'dvc', 'boto3', 'onnx', 'fsspec') if m in sys.modules]; "
            "print(heavy); sys.exit(bool(heavy))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_window_with_two_canary_models_is_inconclusive_before_judging_anything(repo_params):
    """The traffic, error, latency and score queries would judge a model by another's record."""
    asked = []

    class Prometheus(canary.PrometheusClient):
        def query(self, promql):
            asked.append(promql)
            if "count_over_time" in promql:
                return [{"metric": {"track": "canary", "model_version": v}, "value": [0, "1"]} for v in "ab"]
            return []

    result = canary.analyse(Prometheus("http://prometheus.invalid"), repo_params)
    assert result["verdict"] == "inconclusive" and result["reason"].startswith("canary ran models a, b")
    assert len(asked) == 3 and not any("status=" in q or "bucket" in q for q in asked)


def prometheus_with(refused: dict[str, str], reasons: dict[str, str] | None = None,
                    classes: dict[str, dict[str, str]] | None = None):
    """A Prometheus that saw 1000 prediction requests per track, no 5xx, p95 300 ms on the canary
    against 100 ms on stable, the same scores on both, ``refused`` 4xx answers per track, and
    ``classes`` (predictions per class per track; by default the same on both)."""
    classes = classes or {t: {"0": "700", "1": "300"} for t in ("canary", "stable")}

    class Prometheus(canary.PrometheusClient):
        def query(self, promql):
            if "count_over_time" in promql or "model_info" in promql:
                return [{"metric": {"track": t, "model_version": t}, "value": [0, "1"]} for t in ("canary", "stable")]
            if "histogram_quantile" in promql:
                return [{"metric": {"track": "canary"}, "value": [0, "0.3"]},
                        {"metric": {"track": "stable"}, "value": [0, "0.1"]}]
            if "slipway_prediction_score_bucket" in promql:
                return [{"metric": {"track": t, "le": le}, "value": [0, n]}
                        for t in ("canary", "stable") for le, n in (("0.5", "500"), ("+Inf", "1000"))]
            if "slipway_predictions_total" in promql:
                return [{"metric": {"track": t, "class": c}, "value": [0, n]}
                        for t, by_class in classes.items() for c, n in by_class.items()]
            if "slipway_rejected_requests_total" in promql:
                assert 'track="canary"' in promql
                return [{"metric": {"reason": r}, "value": [0, n]} for r, n in (reasons or {}).items()]
            if 'status=~"4.."' in promql:
                return [{"metric": {"track": t}, "value": [0, n]} for t, n in refused.items()]
            errors = 'status=~"5.."' in promql
            return [{"metric": {"track": t}, "value": [0, "0" if errors else "1000"]} for t in ("canary", "stable")]

    return Prometheus("http://prometheus.invalid")


def test_each_canary_check_says_its_limit_and_the_keys_that_set_it(repo_params):
    """The reviewers read the table before approving: a bare 1.5 beside a failed latency check did
    not say 1.5 times what, nor where to change it."""
    result = canary.analyse(prometheus_with({"stable": "3"}), repo_params)
    assert {c["check"]: c["verdict"] for c in result["checks"]} == {
        "error_ratio": "pass", "rejection_ratio": "pass", "latency_p95": "fail", "score_ks": "pass",
        "class_shift": "pass"}
    text = canary.markdown(result)
    assert "| class_shift | pass | 0.000 of predictions in another class | <= 0.15 (canary.max_class_shift) |" in text
    assert ("| rejection_ratio | pass | canary 0.0000 vs stable 0.0030 | <= stable's + 0.01 "
            "(canary.max_rejection_ratio_increase) |") in text
    assert ("| latency_p95 | fail | canary 300.0 ms vs stable 100.0 ms | <= 1.5x stable's, unless under 0.05 s "
            "(canary.max_latency_p95_ratio, canary.min_latency_p95_seconds) |") in text
    assert "| <= 0.01 and <= stable's + 0.005 (canary.max_error_ratio, canary.max_error_ratio_increase) |" in text
    assert "| score_ks | pass | max CDF gap 0.000 | <= 0.2 (canary.max_score_ks) |" in text


@pytest.mark.parametrize(("classes", "shift", "verdict"), [
    # Multiclass: the top probability alike on both tracks, a tenth of the predictions moved.
    ({"canary": {"a": "500", "b": "300", "c": "200"}, "stable": {"a": "500", "b": "400", "c": "100"}}, 0.1, "pass"),
    # A fifth moved from b to c: the score check cannot see it.
    ({"canary": {"a": "500", "b": "200", "c": "300"}, "stable": {"a": "500", "b": "400", "c": "100"}}, 0.2, "fail"),
    # A class only one model has (a retrain found a new one), and counts that differ in total.
    ({"canary": {"a": "250", "b": "250", "new": "500"}, "stable": {"a": "1000", "b": "1000"}}, 0.5, "fail"),
    ({"canary": {"a": "0", "b": "0"}, "stable": {"a": "10", "b": "10"}}, None, "fail"),  # no canary predictions
])
def test_a_canary_that_moves_predictions_between_classes_fails(repo_params, classes, shift, verdict):
    result = canary.analyse(prometheus_with({}, classes=classes), repo_params)
    check, = (c for c in result["checks"] if c["check"] == "class_shift")
    assert check["verdict"] == verdict and check["threshold"] == 0.15
    assert check["value"] == (None if shift is None else pytest.approx(shift))
    if shift is None:
        assert check["detail"] == "no prediction data for a track"


@pytest.mark.parametrize(("refused", "verdict"), [
    ({"canary": "20", "stable": "14"}, "pass"),  # 2% against 1.4%: bad clients, on both tracks
    ({"canary": "0", "stable": "14"}, "pass"),
    ({"canary": "25", "stable": "0"}, "fail"),
    ({"canary": "1000"}, "fail"),  # a track with no 4xx has no series: 0, not no data
])
def test_a_canary_that_refuses_more_requests_than_stable_fails(repo_params, refused, verdict):
    """A model that needs an input the clients do not send answers them 422, fast and without a
    5xx: neither the error nor the latency check sees it."""
    reasons = {"unknown_feature": "900", "wrong_type": "100", "missing_feature": "0"}
    result = canary.analyse(prometheus_with(refused, reasons), repo_params)
    check, = (c for c in result["checks"] if c["check"] == "rejection_ratio")
    assert check["verdict"] == verdict and result["verdict"] == "fail"  # the latency check fails in both
    assert check["value"] == int(refused["canary"]) / 1000 and check["threshold"] == 0.01
    if verdict == "fail":
        assert check["detail"] == (f"canary {int(refused['canary']) / 1000:.4f} vs stable "
                                   f"{int(refused.get('stable', 0)) / 1000:.4f}; the canary's reasons: "
                                   "unknown_feature 900, wrong_type 100")
    else:
        assert "reasons" not in check["detail"]


@pytest.mark.parametrize(("key", "value", "message"), [
    ("max_rejection_ratio_increase", 1.5, "canary.max_rejection_ratio_increase must be <= 1"),
    ("window", "10 minutes", "canary.window must be a Prometheus duration such as 10m or 1h30m, got '10 minutes'"),
    ("window", "10", "canary.window must be a Prometheus duration"),
    ("max_score_ks", 2, "canary.max_score_ks must be <= 1"),  # a KS distance is at most 1: it never fails
    ("max_error_ratio", -0.1, "canary.max_error_ratio must be >= 0"),
    ("min_requests", -1, "canary.min_requests must be >= 1"),
    ("min_requests", 0, "canary.min_requests must be >= 1"),  # was a KeyError or ZeroDivisionError with no traffic
])
def test_canary_params_are_checked_before_prometheus_is_asked(repo_params, key, value, message):
    class Prometheus(canary.PrometheusClient):
        def query(self, promql):
            raise AssertionError(f"asked {promql} with a bad canary.{key}")

    params = {**repo_params, "canary": {**repo_params["canary"], key: value}}
    with pytest.raises(ParamsError, match=f"^params: {message}"):
        canary.analyse(Prometheus("http://prometheus.invalid"), params)
