"""gunicorn's own messages (worker boots and exits, timeouts, signals) as the app's JSON lines.

A log collector parses one JSON object per line without configuration, but not a stream that mixes
JSON with gunicorn's plain text. gunicorn's ``logconfig_dict`` setting could restyle its loggers
too, but any logging config turns on gunicorn's access log (a second line per request, and the
cost of building it); this keeps gunicorn's handlers, and its settings, and changes only the format.
"""

from __future__ import annotations

from gunicorn import glogging

from slipway.serving.logs import JsonFormatter


class JsonLogger(glogging.Logger):
    """``logger_class``: gunicorn's logger, every handler writing :class:`JsonFormatter` lines."""

    def setup(self, cfg):
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(JsonFormatter())
