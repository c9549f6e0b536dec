"""The Flask app factory: ``create_app(config)``. gunicorn runs ``slipway.serving.wsgi:app``."""

from __future__ import annotations

import logging
import re
import time

from flask import Flask, g, jsonify, request
from werkzeug.exceptions import HTTPException

from slipway.serving import model as model_loader
from slipway.serving.answers import error_body, new_request_id
from slipway.serving.api import api
from slipway.serving.codec import OrjsonProvider
from slipway.serving.config import ServingConfig
from slipway.serving.logs import APP_LOGGER, access_log, configure_logging
from slipway.serving.metrics import ModelMetrics, RecordingRegistry, install_http_metrics
from slipway.serving.pages import pages
from slipway.serving.schemas import RequestError
from slipway.serving.state import PredictionLog, ServingState, trained_timestamp

log = logging.getLogger(APP_LOGGER)
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
HTTP_REASONS = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}
# How much of a body the app did not read (a refused one: too large, wrong type, no model) is read
# and dropped before the answer. gunicorn closes the connection after each answer, and a close with
# more than 64 kB unread resets it: the client, still sending, got a broken pipe instead of the
# error, and a proxy in front a 502. Past this much, the reset is the lesser harm.
UNREAD_BODY_LIMIT = 64 * 1024 * 1024


def drain_unread_body() -> None:
    declared = request.content_length
    if declared is not None and declared > UNREAD_BODY_LIMIT:
        return
    stream, left = request.environ["wsgi.input"], UNREAD_BODY_LIMIT
    try:
        while left > 0:
            chunk = stream.read(min(left, 1024 * 1024))
            if not chunk:
                return
            left -= len(chunk)
    except Exception:  # noqa: BLE001 (the client stopped sending: nothing left to save)
        return


def error_response(status: int, reason: str, message: str, field: str | None = None):
    return jsonify(error_body(request.path, reason, message, field, getattr(g, "request_id", None))), status


def register_hooks(app: Flask) -> None:
    # These two run on every request: each reads the request context once (a context proxy costs a
    # lookup per use).
    @app.before_request
    def start():
        context = g._get_current_object()
        supplied = request.headers.get("X-Request-ID", "")
        context.request_id = supplied if REQUEST_ID.match(supplied) else new_request_id()
        context.start = time.perf_counter()
        context.rows = 0

    @app.after_request
    def finish(response):
        drain_unread_body()
        context = g._get_current_object()
        response.headers["X-Request-ID"] = context.request_id
        environ = request.environ
        if environ["PATH_INFO"] != "/metrics":
            access_log({"request_id": context.request_id, "method": environ["REQUEST_METHOD"],
                        "path": environ["PATH_INFO"], "status": response.status_code, "rows": context.rows,
                        "duration_ms": round(1000 * (time.perf_counter() - context.start), 3)})
        return response

    @app.errorhandler(RequestError)
    def bad_request(exc: RequestError):
        app.extensions["slipway"].metrics.rejected.labels(exc.reason).inc()
        return error_response(exc.status, exc.reason, exc.message, exc.field)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        reason = HTTP_REASONS.get(exc.code, "http_error")
        if exc.code == 413:
            app.extensions["slipway"].metrics.rejected.labels(reason).inc()
        return error_response(exc.code, reason, exc.description or exc.name)

    @app.errorhandler(Exception)
    def internal_error(exc: Exception):
        log.error("internal error", exc_info=exc, extra={"fields": {"request_id": g.get("request_id")}})
        return error_response(500, "internal_error", "internal error; quote the request id "
                              "when reporting it")


def create_app(config: ServingConfig | None = None) -> Flask:
    """The server for ``config.model_dir``. A missing or bad bundle leaves it up but not ready."""
    configure_logging()
    config = config or ServingConfig.from_env()
    app = Flask("slipway.serving")
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.json = OrjsonProvider(app)
    # In multiprocess mode this registry only holds the metric objects; /metrics reads the files.
    registry = RecordingRegistry()
    metrics = ModelMetrics(registry)
    metrics.input_policy.labels(config.unknown_features, config.unseen_categories).set(1)
    if config.unknown_features == "ignore":
        log.warning("SLIPWAY_UNKNOWN_FEATURES=ignore: inputs the model does not take are dropped, not refused; "
                    "set it back to reject once the clients send the model's inputs")
    model, error = model_loader.load(config.model_dir)
    if model is None:
        metrics.model_failed()
        log.error(f"model not loaded from {config.model_dir}: {error}; serving not ready")
    else:
        metrics.model_loaded(model, config.model_name, config.track, trained_timestamp(model.metadata))
        log.info(f"model {model.version} loaded from {config.model_dir}")
    app.extensions["slipway"] = ServingState(
        config, model, error, metrics,
        PredictionLog(config.prediction_log, config.prediction_log_rate, dropped=metrics.log_dropped,
                      max_bytes=config.prediction_log_max_bytes, backups=config.prediction_log_backups))
    register_hooks(app)
    app.register_blueprint(pages)
    app.register_blueprint(api)
    install_http_metrics(app, registry)
    return app
