"""The WSGI entry point gunicorn loads: the app configured from ``SLIPWAY_*`` variables."""

from slipway.serving.app import create_app

app = create_app()
