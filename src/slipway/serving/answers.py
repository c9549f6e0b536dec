"""The shape of the server's error answers and request ids, shared by the app and by the gunicorn
workers (:mod:`slipway.serving.workers`), which import it in gunicorn's master: no pandas here."""

from __future__ import annotations

import os

# Every reason a refused request is counted under in ``slipway_rejected_requests_total``: the app's
# (``RequestError``, a body past the limit) and the gunicorn workers' (a request it cannot parse).
# Each worker creates all of them at 0 when it starts. A series born at its first refusal would hide
# that refusal from ``increase()`` and ``rate()``, which see only what changed after a series' first sample.
REFUSAL_REASONS = (
    "malformed_json", "malformed_body", "wrong_content_type", "unsupported_encoding", "body_too_large",
    "invalid_body", "invalid_shape", "empty_batch", "batch_too_large", "missing_feature", "unknown_feature",
    "wrong_type", "non_finite", "unseen_category", "model_not_found", "model_not_ready",
    "malformed_http", "request_line_too_long", "headers_too_large", "unsupported_transfer_coding",
    "expectation_failed",
)


def new_request_id() -> str:
    return os.urandom(16).hex()


def error_body(path: str, reason: str, message: str, field: str | None, request_id: str | None) -> dict:
    """An error answer's JSON: ``/predict`` and the others nest the error; V2 endpoints put the
    message in ``error``, as the Open Inference Protocol does."""
    if path.startswith("/v2/"):
        return {"error": message, "reason": reason, "field": field, "request_id": request_id}
    return {"error": {"reason": reason, "field": field, "message": message}, "request_id": request_id}
