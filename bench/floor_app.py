"""The floor of bench/serve.sh: Flask under the same gunicorn settings, answering a constant JSON.

``steps(n)`` is the floor plus the first ``n`` things every request to a server that meets the
issue must cost, whatever it does besides, still answering the constant (``--floor-steps``):

1. ``json``: read the request body and parse it (with the server's parser, orjson);
2. ``metrics``: prometheus-flask-exporter, installed as the server installs it;
3. ``onnx``: one onnxruntime call with the served model's ONNX graph (``SLIPWAY_MODEL_DIR``).
"""

import os

import numpy as np
from flask import Flask, jsonify, request

ANSWER = {"model_version": "constant", "predictions": [{"label": 0, "probabilities": {"0": 1.0, "1": 0.0}}]}
STEPS = ("json", "metrics", "onnx")


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


def onnx_call():
    """One onnxruntime call on one row of the served model's input width."""
    from slipway import bundle
    from slipway.featureset import FeatureSpec
    from slipway.inference import OnnxPredictor

    directory = os.environ["SLIPWAY_MODEL_DIR"]
    metadata = bundle.load_metadata(directory)
    predictor = OnnxPredictor(bundle.load_onnx(directory, metadata))
    row = np.zeros((1, len(FeatureSpec.from_dict(metadata["features"]).columns)))
    return lambda: predictor.predict_proba(row)


def steps(n: int) -> Flask:
    """The floor plus the first ``n`` (1 to 3) of :data:`STEPS`."""
    from slipway.serving.codec import loads
    from slipway.serving.metrics import RecordingRegistry, install_http_metrics

    work = [lambda: loads(request.get_data(cache=False))]
    if n >= STEPS.index("onnx") + 1:
        work.append(onnx_call())
    app = create(lambda: [step() for step in work])
    if n >= STEPS.index("metrics") + 1:
        install_http_metrics(app, RecordingRegistry())
    return app


app = create()
