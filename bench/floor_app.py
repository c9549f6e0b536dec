"""The floor of bench/serve.sh: Flask under the same gunicorn settings, answering a constant JSON.

``steps(n)`` is the floor plus the first ``n`` things every request to a server that meets the
issue must cost, whatever it does besides, still answering the constant (``--floor-steps``):

1. ``json``: read the request body and parse it (with the server's parser, orjson);
2. ``metrics``: prometheus-flask-exporter, installed as the server installs it;
3. ``model``: one prediction of one row by the served model (``SLIPWAY_MODEL_DIR``), as the server
   makes it: labelled ``onnx`` for a model with the fast path (one onnxruntime call), ``sklearn``
   for one served through scikit-learn (:func:`step_labels`).
"""

import os
from pathlib import Path

import numpy as np
from flask import Flask, jsonify, request

ANSWER = {"model_version": "constant", "predictions": [{"label": 0, "probabilities": {"0": 1.0, "1": 0.0}}]}
STEPS = ("json", "metrics", "model")


def create(per_request=None) -> Flask:
    app = Flask(__name__)

    @app.post("/predict")
    def predict():
        if per_request is not None:
            per_request()
        return jsonify(ANSWER)

    @app.get("/healthz")
    def healthz():
        return jsonify({"live": True})

    return app


def step_labels(model_dir: Path) -> list[str]:
    """:data:`STEPS` as the tables print them, the model step by how the server runs the model."""
    from slipway import bundle

    runs_onnx = bool(bundle.load_metadata(model_dir).get("onnx"))
    return [step if step != "model" else "onnx" if runs_onnx else "sklearn" for step in STEPS]


def model_call():
    """One prediction of one row of the served model's input width, as the server makes it."""
    from slipway import bundle
    from slipway.serving.model import ServedModel

    served = ServedModel(bundle.load(os.environ["SLIPWAY_MODEL_DIR"]))
    row = np.zeros((1, len(served.spec.columns)))
    return lambda: served.predict_matrix(row)


def steps(n: int) -> Flask:
    """The floor plus the first ``n`` (1 to 3) of :data:`STEPS`."""
    from slipway.serving.codec import loads
    from slipway.serving.metrics import RecordingRegistry, install_http_metrics

    work = [lambda: loads(request.get_data(cache=False))]
    if n >= STEPS.index("model") + 1:
        work.append(model_call())
    app = create(lambda: [step() for step in work])
    if n >= STEPS.index("metrics") + 1:
        install_http_metrics(app, RecordingRegistry())
    return app


app = create()
