"""JSON lines on stderr: the app's log and its per-request line, in one shape that
:mod:`slipway.serving.gunicorn_logger` gives gunicorn's own messages too."""

from __future__ import annotations

import logging
import sys
import time

from slipway.serving import codec

APP_LOGGER = "slipway.serving"
# gunicorn's access-log atoms kept in a line; the others include every request header, so a
# bearer token among them would be written to the log.
ACCESS_FIELDS = {"m": "method", "U": "path", "s": "status", "M": "duration_ms"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``msg`` and the record's ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": round(record.created, 3), "level": record.levelname.lower(), "logger": record.name}
        if record.name == "gunicorn.access" and isinstance(record.args, dict):
            entry["msg"] = "request"
            entry.update({name: record.args.get(atom) for atom, name in ACCESS_FIELDS.items()})
            if str(entry["status"]).isdigit():  # gunicorn has it as text; the app's line as a number
                entry["status"] = int(entry["status"])
        else:
            entry["msg"] = record.getMessage()
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return codec.dumps(entry, default=str).decode()


def configure_logging(name: str = APP_LOGGER) -> None:
    """The app's logger writes JSON lines to stderr (also outside gunicorn: tests, `flask run`)."""
    log = logging.getLogger(name)
    if any(isinstance(h.formatter, JsonFormatter) for h in log.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def access_log(fields: dict) -> None:
    """The per-request line, in :class:`JsonFormatter`'s shape but written straight to stderr:
    through logging's records, handlers and formatter it cost more than the prediction itself."""
    sys.stderr.write(codec.dumps({"ts": round(time.time(), 3), "level": "info", "logger": "slipway.access",
                                  "msg": "request", **fields}).decode() + "\n")

