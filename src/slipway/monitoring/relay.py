"""Alertmanager -> GitHub: a firing alert labelled ``action: retrain`` starts the retrain.

Alertmanager's webhook sends its own JSON; GitHub's ``repository_dispatch`` wants
``{"event_type": ..., "client_payload": ...}`` with a token. This small WSGI app translates:
point an Alertmanager ``webhook_configs`` receiver at ``http://<relay>/alertmanager``, with the
relay's webhook token as its bearer credentials (``http_config.authorization``): a retrain costs
a CI run and changes what the canary serves, so only Alertmanager may ask for one.

    slipway alert-relay --repository your-org/slipway   (GITHUB_TOKEN, SLIPWAY_RELAY_WEBHOOK_TOKEN)

It runs under gunicorn (Flask's own server is for development); the Kubernetes objects are the
opt-in ``kustomize/components/alert-relay``.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
import urllib.request

from flask import Flask, jsonify, request

from slipway.serving.logs import configure_logging

GITHUB_API = "https://api.github.com"
# GitHub's owner/name: letters, digits, '-', '_' and '.'.
REPOSITORY = re.compile(r"[A-Za-z0-9-]+/[A-Za-z0-9._-]+")
log = logging.getLogger("slipway.relay")


def payload_problem(payload: object) -> str | None:
    """What makes this not Alertmanager's webhook JSON (``alerts``: objects with ``labels``)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
        return 'expected Alertmanager\'s webhook JSON: an object with an "alerts" list'
    for index, alert in enumerate(payload["alerts"]):
        if not isinstance(alert, dict) or not isinstance(alert.get("labels", {}), dict):
            return f"alerts[{index}] must be an object whose labels are an object"
    return None


def retrain_alerts(payload: dict) -> list[str]:
    return sorted({str(a.get("labels", {}).get("alertname", "?")) for a in payload["alerts"]
                   if a.get("status") == "firing" and a.get("labels", {}).get("action") == "retrain"})


def dispatch(api: str, repository: str, token: str, alerts: list[str]) -> None:
    body = json.dumps({"event_type": "retrain", "client_payload": {"alerts": alerts}}).encode()
    outgoing = urllib.request.Request(f"{api}/repos/{repository}/dispatches", data=body, method="POST",
                                      headers={"Authorization": f"Bearer {token}",
                                               "Accept": "application/vnd.github+json",
                                               "Content-Type": "application/json"})
    urllib.request.urlopen(outgoing, timeout=10).close()


def authorized(header: str, webhook_token: str) -> bool:
    """``Authorization: Bearer <webhook_token>``, compared in constant time."""
    scheme, _, credentials = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode(), webhook_token.encode())


def create_relay(repository: str, token: str, webhook_token: str, api: str = GITHUB_API) -> Flask:
    configure_logging(log.name)
    app = Flask("slipway.relay")

    @app.get("/healthz")
    def healthz():
        return jsonify({"alive": True})

    @app.post("/alertmanager")
    def alertmanager():
        if not authorized(request.headers.get("Authorization", ""), webhook_token):
            return (jsonify({"error": "expected Authorization: Bearer <the relay's webhook token>"}), 401,
                    {"WWW-Authenticate": "Bearer"})
        payload = request.get_json(silent=True)
        problem = payload_problem(payload)
        if problem:
            return jsonify({"error": problem}), 400
        alerts = retrain_alerts(payload)
        if alerts:
            try:
                dispatch(api, repository, token, alerts)
            except OSError as exc:
                log.error(f"GitHub repository_dispatch to {repository} for {', '.join(alerts)} failed: {exc}")
                return jsonify({"error": f"GitHub repository_dispatch failed: {exc}"}), 502
        return jsonify({"dispatched": bool(alerts), "alerts": alerts})

    return app


def serve(app: Flask, bind: str) -> None:
    """Run ``app`` under gunicorn: one worker, a few threads (a webhook waits on GitHub's API)."""
    from gunicorn.app.base import BaseApplication

    settings = {"bind": bind, "workers": 1, "threads": 4, "timeout": 30, "accesslog": "-", "errorlog": "-",
                "logger_class": "slipway.serving.gunicorn_logger.JsonLogger",  # JSON lines, as the server's
                # as the model server: heartbeat files in memory, no control socket in $HOME
                "worker_tmp_dir": "/dev/shm" if os.path.isdir("/dev/shm") else None,
                "control_socket_disable": True}

    class Relay(BaseApplication):
        def load_config(self):
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self):
            return app

    Relay().run()
