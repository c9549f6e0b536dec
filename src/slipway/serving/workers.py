"""gunicorn's workers as the server runs them: they refuse what gunicorn itself refuses as the app
refuses bad input, and are replaced one at a time.

A request gunicorn cannot parse (a request line or headers past its limits, an invalid header)
never reaches the app: gunicorn answered it with an HTML page, the
rejected-requests counter did not count it, and no log line said which request it was. These
workers answer it with the app's JSON error (a reason, a message and a request id), count it in
``slipway_rejected_requests_total`` and log it as the app logs a request. gunicorn's status for each
is kept; what is not a client's error (the app's own failures, a TLS or configuration problem)
goes to gunicorn as before.

When ``SLIPWAY_MAX_REQUESTS`` recycles them, one worker goes at a time
(:mod:`slipway.serving.recycling`).
"""

from __future__ import annotations

from gunicorn import util
from gunicorn.http import errors
from gunicorn.workers.gthread import ThreadWorker
from gunicorn.workers.sync import SyncWorker

from slipway.serving import codec
from slipway.serving.answers import error_body, new_request_id
from slipway.serving.logs import access_log
from slipway.serving.recycling import OneRecycleAtATime

# gunicorn's status for the errors that have their own; any other parse error is a 400.
STATUSES: dict[type[Exception], tuple[int, str, str]] = {
    errors.LimitRequestLine: (414, "URI Too Long", "request_line_too_long"),
    errors.LimitRequestHeaders: (431, "Request Header Fields Too Large", "headers_too_large"),
    errors.UnsupportedTransferCoding: (501, "Not Implemented", "unsupported_transfer_coding"),
    errors.ExpectationFailed: (417, "Expectation Failed", "expectation_failed"),
}
# Not the client's request: the app's response headers, or the server's configuration (forwarded
# headers, the PROXY protocol's allowed addresses).
NOT_REFUSALS = (errors.InvalidResponseHeader, errors.InvalidResponseHeaderName, errors.ConfigurationProblem,
                errors.ForbiddenProxyRequest)


def refusal(exc: Exception) -> tuple[int, str, str] | None:
    """Status, status text and reason for a request gunicorn could not parse; None for anything else."""
    if not isinstance(exc, errors.ParseException) or isinstance(exc, NOT_REFUSALS):
        return None
    return next((answer for kind, answer in STATUSES.items() if isinstance(exc, kind)),
                (400, "Bad Request", "malformed_http"))


def response(status: int, text: str, reason: str, message: str, path: str) -> tuple[bytes, str]:
    """The whole HTTP answer, and its request id. The connection closes after it: gunicorn does
    not know where the unparsable request ends."""
    request_id = new_request_id()
    body = codec.dumps(error_body(path, reason, message, None, request_id))
    head = (f"HTTP/1.1 {status} {text}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nX-Request-ID: {request_id}\r\n\r\n")
    return head.encode("latin-1") + body, request_id


class JsonRefusals:
    """Mixed into a gunicorn worker class, before it."""

    def handle_error(self, req, client, addr, exc):
        answer = refusal(exc)
        if answer is None:
            return super().handle_error(req, client, addr, exc)
        status, text, reason = answer
        path = getattr(req, "path", None) or ""
        state = getattr(self.wsgi, "extensions", {}).get("slipway")
        if state is not None:
            state.metrics.rejected.labels(reason).inc()
        data, request_id = response(status, text, reason, str(exc), path)
        access_log({"request_id": request_id, "method": getattr(req, "method", None), "path": path or None,
                    "status": status, "rows": 0, "reason": reason, "error": str(exc)})
        try:
            util.write_nonblock(client, data)
        except OSError:
            self.log.debug("could not send the refusal: the client is gone")


class SlipwaySyncWorker(JsonRefusals, OneRecycleAtATime, SyncWorker):
    """gunicorn's ``sync`` worker (one request at a time per worker), answering what gunicorn
    refuses as the app does, and replaced one at a time."""


class SlipwayThreadWorker(JsonRefusals, OneRecycleAtATime, ThreadWorker):
    """gunicorn's ``gthread`` worker (``SLIPWAY_THREADS`` above 1), likewise."""
