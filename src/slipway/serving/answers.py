"""The shape of the server's error answers and request ids, shared by the app and by the gunicorn
workers (:mod:`slipway.serving.workers`), which import it in gunicorn's master: no pandas here."""

from __future__ import annotations

import os


def new_request_id() -> str:
    return os.urandom(16).hex()


def error_body(path: str, reason: str, message: str, field: str | None, request_id: str | None) -> dict:
    """An error answer's JSON: ``/predict`` and the others nest the error; V2 endpoints put the
    message in ``error``, as the Open Inference Protocol does."""
    if path.startswith("/v2/"):
        return {"error": message, "reason": reason, "field": field, "request_id": request_id}
    return {"error": {"reason": reason, "field": field, "message": message}, "request_id": request_id}
