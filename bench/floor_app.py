"""The floor of bench/serve.sh: Flask under the same gunicorn settings, answering a constant JSON."""

from flask import Flask, jsonify

app = Flask(__name__)
ANSWER = {"model_version": "constant", "predictions": [{"label": 0, "probabilities": {"0": 1.0, "1": 0.0}}]}


@app.post("/predict")
def predict():
    return jsonify(ANSWER)


@app.get("/healthz")
def healthz():
    return jsonify({"live": True})
