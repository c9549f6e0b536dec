"""Alertmanager -> GitHub: a firing alert labelled ``action: retrain`` starts the retrain.

Alertmanager's webhook sends its own JSON; GitHub's ``repository_dispatch`` wants
``{"event_type": ..., "client_payload": ...}`` with a token. This small WSGI app translates:
point an Alertmanager ``webhook_configs`` receiver at ``http://<relay>/alertmanager``.

    slipway alert-relay --repository your-org/slipway   (GITHUB_TOKEN in the environment)
"""

from __future__ import annotations

import json
import urllib.request

from flask import Flask, jsonify, request

GITHUB_API = "https://api.github.com"


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


def create_relay(repository: str, token: str, api: str = GITHUB_API) -> Flask:
    app = Flask("slipway.relay")

    @app.post("/alertmanager")
    def alertmanager():
        payload = request.get_json(silent=True)
        problem = payload_problem(payload)
        if problem:
            return jsonify({"error": problem}), 400
        alerts = retrain_alerts(payload)
        if alerts:
            try:
                dispatch(api, repository, token, alerts)
            except OSError as exc:
                return jsonify({"error": f"GitHub repository_dispatch failed: {exc}"}), 502
        return jsonify({"dispatched": bool(alerts), "alerts": alerts})

    return app
