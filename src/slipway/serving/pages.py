"""Health, readiness, metrics, the model card and the OpenAPI description."""

from __future__ import annotations

import json
import shlex
from functools import cache
from importlib.metadata import PackageNotFoundError, version

from flask import Blueprint, Response, jsonify, render_template_string, request

from slipway.provenance import describe_source
from slipway.serving.openapi import build_openapi
from slipway.serving.state import state
from slipway.values import written_like

pages = Blueprint("pages", __name__)


@pages.get("/healthz")
@pages.get("/v2/health/live")
def live():
    """The process answers: Kubernetes' liveness probe (it never depends on the model)."""
    return jsonify({"live": True})


@cache  # read from the installed distribution once, not on every request
def server_version() -> str:
    try:
        return version("slipway")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


# The Open Inference Protocol's extensions this server implements (Triton's names).
V2_EXTENSIONS = ["binary_tensor_data"]


@pages.get("/v2")
def server_metadata():
    """V2 server metadata, part of the protocol's required API (tritonclient's get_server_metadata)."""
    return jsonify({"name": "slipway", "version": server_version(), "extensions": V2_EXTENSIONS})


@pages.get("/readyz")
@pages.get("/v2/health/ready")
def ready():
    """Ready only with a loaded, verified model: Kubernetes routes traffic only then."""
    st = state()
    if st.model is None:
        return jsonify({"ready": False, "reason": st.load_error}), 503
    return jsonify({"ready": True, "model_version": st.model.version})


@pages.get("/metrics")
def metrics():
    """Prometheus exposition (OpenMetrics when the scraper asks for it)."""
    body, content_type = state().metrics.exposition(request.headers.get("Accept"))
    return Response(body, content_type=content_type)


@pages.get("/openapi.json")
def openapi():
    st = state()
    return jsonify(build_openapi(st.model, st.config))


CARD = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ name }} model card</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border:1px solid #ccc;padding:.25rem .6rem;text-align:left}
th{background:#f4f4f4}.pass{color:#16794a;font-weight:bold}.fail{color:#b3261e;font-weight:bold}
code{background:#f4f4f4;padding:0 .2rem}pre{white-space:pre-wrap}
</style></head><body>
<h1>{{ name }} <small>model card</small></h1>
{% if model is none %}
<p class="fail">No model is loaded: {{ error }}</p>
{% else %}
<table>
<tr><th>model version</th><td><code>{{ model.version }}</code></td></tr>
<tr><th>track</th><td>{{ track }}</td></tr>
<tr><th>task</th><td>{{ meta.task }} ({{ meta.estimator }}), target <code>{{ meta.target }}</code>, classes {{ meta.classes }}{% if meta.positive_class is not none %}, positive <code>{{ meta.positive_class }}</code>{% endif %}</td></tr>
{% set inference = meta.inference if meta.inference is mapping else {} %}
<tr><th>inference</th><td>{% if model.fast is not none %}onnxruntime{% if inference.max_abs_difference is number %}, at most
{{ "%.1e" | format(inference.max_abs_difference) }} from scikit-learn on {{ inference.rows_checked }} training rows{% endif %}
{% else %}scikit-learn's <code>predict_proba</code>{% if inference.reason %}: {{ inference.reason }}{% endif %}{% endif %}</td></tr>
<tr><th>trained at</th><td>{{ meta.trained_at or "unknown" }}</td></tr>
<tr><th>trained from</th><td>{{ trained_from }}</td></tr>
<tr><th>training rows</th><td>{{ meta.training.rows if meta.training else "unknown" }}{% if meta.training and meta.training.data_until %}, data until {{ meta.training.data_until }}{% endif %}</td></tr>
{% set raw = (meta.data or {}).get("raw") %}
{% for path, digest in (raw if raw is mapping else {}).items() %}
<tr><th>data <code>{{ path }}</code></th><td><code>{{ digest }}</code></td></tr>
{% endfor %}
<tr><th>bundle sha256</th><td><code>{{ meta.sha256 }}</code></td></tr>
</table>
<h2>Release gate</h2>
{% if gate %}
<p class="{{ gate.verdict }}">{{ gate.verdict | upper }}{% if gate.models and gate.models.champion %} against production {{ gate.models.champion }}{% endif %}</p>
{% if gate.failed is sequence and gate.failed is not string %}<ul>{% for line in gate.failed %}<li>{{ line }}</li>{% endfor %}</ul>{% endif %}
{% else %}<p>No gate report with this model.</p>{% endif %}
<h2>Test metrics</h2>
{% if metrics %}
<table><tr><th>metric</th><th>value</th></tr>
{% for key in ["roc_auc", "accuracy", "f1", "log_loss", "rows"] if metrics[key] is number and metrics[key] is not boolean %}
<tr><td>{{ key }}</td><td>{{ metrics[key] | round(4) }}</td></tr>{% endfor %}
</table>
{% else %}<p>No metrics with this model.</p>{% endif %}
<h2>Features</h2>
<table><tr><th>input</th><th>kind</th><th>allowed values</th></tr>
{% for name in model.spec.inputs %}
<tr><td><code>{{ name }}</code></td>
{% if name in model.spec.categorical %}<td>categorical</td><td>{{ model.spec.categorical[name] | join(", ") }}</td>
{% elif name in model.spec.times %}<td>time</td><td>ISO 8601 text (<code>2025-01-31T09:30:00Z</code>; without a zone,
UTC), {% if model.spec.time_format %}text as the training data wrote it (<code>{{ model.spec.time_format }}</code>),
{% endif %}epoch time as a number (seconds, ms, us or ns, told apart by size), or null</td>
{% else %}<td>numeric</td><td>number (or its text, as the training data wrote them:
<code>{{ number_text }}</code>) or null</td>{% endif %}</tr>
{% endfor %}</table>
{% if model.spec.id_column %}<p>Beside the inputs, a request may send the id <code>{{ model.spec.id_column }}</code>
(text, a whole number or null): the model does not read it; the prediction log keeps it, to join the outcomes
known later.</p>{% endif %}
{% if model.spec.derived %}<p>Derived: {{ model.spec.derived | join(", ") }}</p>{% endif %}
<p>Missing values: null or blank text{% if model.spec.missing_values %}, or any of
{{ model.spec.missing_values | join(", ") }} (<code>data.na_values</code>){% endif %}, in any input.</p>
<h2>Try it</h2>
<p>One typical instance (numbers at their training median, categories at their most common value{% if
model.spec.times %}, times at the newest of the training data{% endif %}):</p>
<pre>{{ example_command }}</pre>
<h2>Training parameters</h2>
<pre>{{ (meta.params or {}) | tojson(indent=2) }}</pre>
{% endif %}
<p>API: <a href="/openapi.json">/openapi.json</a> · <a href="/metrics">/metrics</a> · <a href="/readyz">/readyz</a></p>
</body></html>
"""


@pages.get("/")
def card():
    st = state()
    model = st.model
    return render_template_string(
        CARD, name=st.config.model_name, model=model, error=st.load_error, track=st.config.track,
        meta=model.metadata if model else {}, gate=st.report("gate.json"),
        metrics=st.report("metrics.json"), example_command=model and example_command(model),
        number_text=model and written_like(model.spec.number_format),
        trained_from=describe_source(model.metadata.get("git_commit"), model.metadata.get("git_uncommitted"))
        if model else None,
    )


def example_command(model) -> str:
    """A curl command that posts :meth:`ServedModel.example_instance` to this server."""
    body = json.dumps({"instances": [model.example_instance()]}, ensure_ascii=False)
    return (f"curl -s {shlex.quote(request.host_url + 'predict')} -H 'Content-Type: application/json' "
            f"-d {shlex.quote(body)}")
