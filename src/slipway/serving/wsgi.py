"""The WSGI entry point gunicorn loads: the app configured from ``SLIPWAY_*`` variables."""

import gc

from slipway.serving.app import create_app

app = create_app()
# Everything loaded so far (libraries, the model) lives as long as the worker: keep it out of
# the garbage collector's generations, so collections during requests only scan request garbage.
gc.freeze()
