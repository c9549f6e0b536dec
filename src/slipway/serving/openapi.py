"""The OpenAPI 3.1 description of every endpoint, with the instance schema of the served model."""

from __future__ import annotations

import sys

from slipway.serving.config import ServingConfig
from slipway.serving.schemas import ID_INTEGERS, json_forms
from slipway.values import ISO_TIME, number_pattern, pattern_text, time_format_pattern, written_like

JSON_TYPES = {str: "string", bool: "boolean", int: "integer", float: "number"}

# A time input (:func:`slipway.values.moment_seconds`) as text; the server also refuses a day that does
# not exist (2025-02-30), which a pattern cannot tell.
TIME_TEXT = {"type": "string", "pattern": ISO_TIME.pattern}
TIME_DESCRIPTION = ("A time: ISO 8601 text (2025-01-31T09:30:00Z; without a zone, UTC) or epoch time as a number "
                    "(seconds, ms, us or ns, told apart by size; a whole number such as 20250131 is that day).")

ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict:
    text = {400: "Malformed or invalid request body", 404: "No such model or version",
            413: "Body larger than the limit", 415: "Content-Type is not application/json",
            422: "A feature value breaks a rule (missing, unknown, wrong type, non-finite, unseen "
                 "category)",
            500: "Internal error (quote the request id)", 503: "The model is not loaded"}
    return {str(code): _json(ERROR, text[code]) for code in codes}


def _markers(model) -> str:
    markers = list(model.spec.missing_values) if model else []
    return f"; the texts {markers} are missing values too (data.na_values)" if markers else ""


def trimmed_text_schema(labels: list[str], markers: list[str]) -> dict:
    """The texts the server reads once the spaces around them are trimmed (as ``ingest`` read the
    training data): these category labels, and blank text or a ``data.na_values`` marker, which are a
    missing value in any input (:func:`slipway.values.missing_text`)."""
    escaped = "|".join(map(pattern_text, [*labels, *markers]))
    missing = "blank text" + (", or one of data.na_values (spaces around it or not)" if markers else "")
    return {"type": "string", "pattern": rf"^\s*(?:{escaped})?\s*$" if escaped else r"^\s*$",
            "description": ("a category, spaces around it or not; or " if labels else "")
            + f"{missing}: a missing value, as null is"}


def time_format_schema(time_format: str | None) -> list[dict]:
    """A time as text in the format training read the times in (``data.timestamp_format``), if it had one.
    Its pattern (:func:`slipway.values.time_format_pattern`) holds for formats of numbers alone; one with
    month names or AM/PM is checked by the server only."""
    if time_format is None:
        return []
    pattern = time_format_pattern(time_format)
    return [{"type": "string", "description": f"a time as the training data wrote them: {time_format!r} (strptime)"
             + ("" if pattern else "; the server checks its shape"), **({"pattern": pattern} if pattern else {})}]


def number_text_schema(number_format: tuple[str, str | None]) -> dict:
    """A number sent as text, written as training's data wrote numbers (:func:`slipway.values.text_number`)."""
    return {"type": "string", "pattern": rf"^\s*{number_pattern(number_format)}\s*$",
            "description": f"a number as text, as the training data wrote them ({written_like(number_format)!r}); "
                           "one past float64 (1e999) fits the pattern, and is refused"}


def instance_schema(model, ignore_unknown: bool = False) -> dict:
    """One instance: each input the model takes, and optionally its id column; others refused, or
    dropped with ``SLIPWAY_UNKNOWN_FEATURES=ignore``."""
    if model is None:
        return {"type": "object", "description": "The model is not loaded: its inputs are unknown."}
    properties = {}
    markers = list(model.spec.missing_values)  # data.na_values: missing, as training read them
    for name in model.spec.inputs:
        if name in model.spec.categorical:
            labels = model.spec.categorical[name]
            values = [form for label in labels for form in json_forms(label)]
            types = sorted({JSON_TYPES[type(value)] for value in values}) + ["null"]
            properties[name] = {"anyOf": [{"type": types, "enum": [*values, None]},
                                          trimmed_text_schema(labels, markers)]}
        else:
            # Bounded: an integer past float64 (10**400) is valid JSON, and refused as not finite.
            properties[name] = {"anyOf": [{"type": ["number", "null"], "minimum": -sys.float_info.max,
                                           "maximum": sys.float_info.max}, trimmed_text_schema([], markers)]}
            if name in model.spec.times:
                properties[name]["anyOf"][1:1] = [TIME_TEXT, *time_format_schema(model.spec.time_format)]
                properties[name]["description"] = TIME_DESCRIPTION
            else:
                properties[name]["anyOf"].insert(1, number_text_schema(model.spec.number_format))
    if model.spec.id_column:
        properties[model.spec.id_column] = {
            "anyOf": [{"type": ["string", "null"]},
                      {"type": "integer", "minimum": ID_INTEGERS[0], "maximum": ID_INTEGERS[1]}],
            "description": "Optional, not an input: the id the prediction log keeps, to join labels known later by."}
    return {"type": "object", "properties": properties, "required": list(model.spec.inputs),
            "additionalProperties": ignore_unknown, "examples": [model.example_instance()]}


def prediction_schema(model) -> dict:
    """One prediction: the label is one of the classes as JSON has them (true/false for a boolean
    target, 0.0/1.0 for float classes), with a probability for each class."""
    if model is None:
        return {"type": "object", "description": "The model is not loaded: its classes are unknown."}
    return {"type": "object", "required": ["label", "probabilities"], "additionalProperties": False,
            "properties": {"label": {"enum": list(model.classes)}, "probabilities": {
                "type": "object", "required": [str(c) for c in model.classes], "additionalProperties": False,
                "properties": {str(c): {"type": "number", "minimum": 0, "maximum": 1} for c in model.classes}}}}


def _tensor(direction: str) -> dict:
    return {
        "type": "object", "required": ["name", "shape", "datatype"] + (["data"] if direction == "in" else []),
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
            "datatype": {"type": "string", "enum": ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64",
                                                    "INT8", "INT16", "INT32", "INT64", "FP16",
                                                    "FP32", "FP64", "BYTES"]},
            "parameters": {"type": "object"},
            "data": {"type": "array"},
        },
    }


def build_openapi(model, config: ServingConfig) -> dict:
    name_param = {"name": "name", "in": "path", "required": True, "schema": {"type": "string",
                  "enum": [config.model_name]}}
    version_param = {"name": "version", "in": "path", "required": True, "schema": {"type": "string"}}
    health = {"200": _json({"type": "object"}, "Alive")}

    # A request body may be compressed (tritonclient's request_compression_algorithm).
    encoding_param = {"name": "Content-Encoding", "in": "header", "required": False,
                      "schema": {"type": "string", "enum": ["identity", "gzip", "deflate"]}}

    def v2(op: dict, versioned: bool) -> dict:
        return {**op, "parameters": [name_param] + ([version_param] if versioned else [])
                + op.get("parameters", [])}

    metadata = {"get": {"summary": "V2 model metadata: inputs, outputs, versions",
                        "responses": {"200": _json({"$ref": "#/components/schemas/ModelMetadata"},
                                                   "Model metadata"), **_errors(404, 503)}}}
    model_ready = {"get": {"summary": "V2 model readiness",
                           "responses": {"200": _json({"type": "object"}, "Ready"), **_errors(404, 503)}}}
    infer = {"post": {
        "summary": "V2 inference: one tensor per input (shape [rows] or [rows, 1]) or one row-major "
                   "tensor [rows, inputs]; the binary tensor extension is accepted",
        "parameters": [encoding_param],
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/InferRequest"}},
            "application/octet-stream": {"schema": {
                "type": "string", "format": "binary", "description": "The binary tensor extension: "
                "an InferRequest header of Inference-Header-Content-Length bytes, then each tensor "
                "with parameters.binary_data_size as raw little-endian data"}}}},
        "responses": {"200": _json({"$ref": "#/components/schemas/InferResponse"}, "Outputs: label, "
                                   "probabilities"), **_errors(400, 404, 413, 415, 422, 500, 503)}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": f"Slipway model server: {config.model_name}", "version":
                 model.version if model else "not loaded",
                 "description": "Predictions from the model bundle built by the pipeline. null is a "
                                "missing value; NaN and infinity are refused; categories are read "
                                "without surrounding spaces, and a text of spaces only is missing in any "
                                f"input, as training read them{_markers(model)}; unseen categories: "
                                f"{config.unseen_categories}; "
                                f"features the model does not take: {config.unknown_features}. "
                                f"Batches up to {config.max_batch} rows."},
        "paths": {
            "/": {"get": {"summary": "Model card (HTML)", "responses": {"200": {
                "description": "The model card", "content": {"text/html": {"schema": {"type": "string"}}}}}}},
            "/healthz": {"get": {"summary": "Liveness", "responses": health}},
            "/readyz": {"get": {"summary": "Readiness: model loaded and verified",
                                "responses": {"200": _json({"type": "object"}, "Ready"),
                                              "503": _json({"type": "object"}, "Not ready, with the reason")}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {
                "description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/openapi.json": {"get": {"summary": "This description",
                                      "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1")}}},
            "/predict": {"post": {
                "summary": "Predict classes and probabilities for a batch of instances",
                "parameters": [encoding_param],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["instances"], "additionalProperties": False,
                    "properties": {"instances": {"type": "array", "minItems": 1,
                                                 "maxItems": config.max_batch,
                                                 "items": {"$ref": "#/components/schemas/Instance"}}}}}}},
                "responses": {"200": _json({"$ref": "#/components/schemas/PredictResponse"},
                                           "One prediction per instance"),
                              **_errors(400, 413, 415, 422, 500, 503)}}},
            "/v2": {"get": {"summary": "V2 server metadata: name, version, protocol extensions",
                            "responses": {"200": _json({"$ref": "#/components/schemas/ServerMetadata"},
                                                       "Server metadata")}}},
            "/v2/health/live": {"get": {"summary": "V2 server liveness", "responses": health}},
            "/v2/health/ready": {"get": {"summary": "V2 server readiness",
                                         "responses": {"200": _json({"type": "object"}, "Ready"),
                                                       "503": _json({"type": "object"}, "Not ready")}}},
            "/v2/models/{name}": {k: v2(op, False) for k, op in metadata.items()},
            "/v2/models/{name}/versions/{version}": {k: v2(op, True) for k, op in metadata.items()},
            "/v2/models/{name}/ready": {k: v2(op, False) for k, op in model_ready.items()},
            "/v2/models/{name}/versions/{version}/ready": {k: v2(op, True) for k, op in model_ready.items()},
            "/v2/models/{name}/infer": {k: v2(op, False) for k, op in infer.items()},
            "/v2/models/{name}/versions/{version}/infer": {k: v2(op, True) for k, op in infer.items()},
        },
        "components": {"schemas": {
            "Instance": instance_schema(model, config.unknown_features == "ignore"),
            "PredictResponse": {"type": "object", "required": ["model_version", "predictions"],
                                "properties": {"model_version": {"type": "string"}, "predictions": {
                                    "type": "array", "items": prediction_schema(model)}}},
            "Error": {"type": "object", "required": ["error"], "properties": {
                "error": {"description": "/predict: {reason, field, message}; V2: the message",
                          "oneOf": [{"type": "string"}, {"type": "object", "properties": {
                              "reason": {"type": "string"}, "field": {"type": ["string", "null"]},
                              "message": {"type": "string"}}}]},
                "reason": {"type": "string"}, "field": {"type": ["string", "null"]},
                "request_id": {"type": "string"}}},
            "ServerMetadata": {"type": "object", "required": ["name", "version", "extensions"],
                               "properties": {"name": {"type": "string"}, "version": {"type": "string"},
                                              "extensions": {"type": "array", "items": {"type": "string"}}}},
            "ModelMetadata": {"type": "object", "required": ["name", "versions", "platform", "inputs", "outputs"],
                              "properties": {"name": {"type": "string"},
                                             "versions": {"type": "array", "items": {"type": "string"}},
                                             "platform": {"type": "string"},
                                             "inputs": {"type": "array", "items": _tensor("meta")},
                                             "outputs": {"type": "array", "items": _tensor("meta")},
                                             "parameters": {"type": "object"}}},
            "InferRequest": {"type": "object", "required": ["inputs"], "properties": {
                "id": {"type": "string"}, "parameters": {"type": "object"},
                "inputs": {"type": "array", "minItems": 1, "items": _tensor("in")},
                "outputs": {"type": "array", "items": {"type": "object", "properties": {
                    "name": {"type": "string", "enum": ["label", "probabilities"]}}}}}},
            "InferResponse": {"type": "object", "required": ["model_name", "outputs"], "properties": {
                "model_name": {"type": "string"}, "model_version": {"type": "string"},
                "id": {"type": "string"}, "outputs": {"type": "array", "items": _tensor("in")}}},
        }},
    }
