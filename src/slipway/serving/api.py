"""Prediction endpoints: ``POST /predict`` and the Open Inference Protocol (V2) model endpoints."""

from __future__ import annotations

import math
import zlib

import numpy as np
from flask import Blueprint, g, jsonify, request
from werkzeug.exceptions import HTTPException

from slipway.serving import codec
from slipway.serving.schemas import (
    RequestError,
    check_batch_size,
    check_columns,
    check_ids,
    counterpart,
    id_column_note,
    instance_field,
    instances_to_columns,
    shown,
)
from slipway.serving.state import state

api = Blueprint("api", __name__)

# The protocol's tensor datatypes, by the numpy type of their binary form.
BINARY_DTYPES = {"BOOL": "?", "UINT8": "<u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
                 "INT8": "<i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8", "FP16": "<f2",
                 "FP32": "<f4", "FP64": "<f8"}
DATATYPES = ("BYTES", *BINARY_DTYPES)
OUTPUTS = ("label", "probabilities")


def ready_model():
    model = state().model
    if model is None:
        raise RequestError(503, "model_not_ready", "the model is not loaded; see /readyz")
    return model


# What a body may be compressed with (tritonclient's request_compression_algorithm), as zlib's
# wbits: gzip's header and trailer, or zlib's (HTTP's "deflate").
CONTENT_ENCODINGS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def request_body() -> bytes:
    """The body, decompressed per its Content-Encoding; SLIPWAY_MAX_BODY_BYTES bounds it after
    decompression too (a few kB of gzip can hold gigabytes)."""
    limit = state().config.max_body_bytes
    try:
        raw = request.get_data(cache=False)
        # A body sent in chunks has no Content-Length to refuse it by: werkzeug reads it up to the
        # limit and stops there without a word, and the cut JSON would be answered as malformed.
        beyond = request.content_length is None and len(raw) >= limit and request.environ["wsgi.input"].read(1)
    except HTTPException:
        raise
    except Exception as exc:  # noqa: BLE001 (the WSGI server's error: gunicorn's InvalidChunkSize, say)
        # Reading the body is reading what the client sent: a malformed chunk is its error, not ours
        # (it was a 500, an error to the canary analysis and the alerts).
        raise RequestError(400, "malformed_body", f"the body cannot be read: {type(exc).__name__}: {exc}") from None
    if beyond:
        raise RequestError(413, "body_too_large", f"the body is larger than {limit} bytes (SLIPWAY_MAX_BODY_BYTES)")
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding not in CONTENT_ENCODINGS:
        raise RequestError(415, "unsupported_encoding", f"Content-Encoding {encoding!r} is not supported; "
                           f"send the body as is, or with {' or '.join(CONTENT_ENCODINGS)}")
    decompressor = zlib.decompressobj(CONTENT_ENCODINGS[encoding])
    try:
        body = decompressor.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise RequestError(400, "malformed_body", f"the body is not {encoding} data: {exc}") from None
    if len(body) > limit:
        raise RequestError(413, "body_too_large", f"the body decompresses to more than {limit} bytes "
                           "(SLIPWAY_MAX_BODY_BYTES)")
    if not decompressor.eof:
        raise RequestError(400, "malformed_body", f"the {encoding} body ends before its compressed data does")
    if decompressor.unused_data:  # a second gzip member, or bytes after the stream: not read, so refused
        raise RequestError(400, "malformed_body", f"the body goes on after its {encoding} stream ends "
                           f"({len(decompressor.unused_data)} bytes); send one {encoding} stream")
    return body


def read_json_body():
    if not request.is_json:
        raise RequestError(415, "wrong_content_type", "expected Content-Type: application/json, "
                           f"got {request.content_type or 'none'!r}")
    return parse_json(request_body(), "the body")


def parse_json(raw: bytes, what: str):
    try:
        return codec.loads(raw)
    except ValueError as exc:
        raise RequestError(400, "malformed_json", f"{what} is not valid JSON: {exc}") from None
    except RecursionError:  # the parser recurses per level of nesting
        raise RequestError(400, "malformed_json", f"{what} nests arrays or objects too deeply") from None


def predict_columns(columns: dict[str, list], where, ids: list | None) -> tuple[list, np.ndarray]:
    """Validate, compute features, predict, count, log (``ids``: the id column's values, or
    ``None``). Returns labels and probabilities."""
    st = state()
    model = ready_model()
    batch = check_columns(columns, model.spec, st.config.unseen_categories, where)
    for feature, count in batch.unseen.items():
        st.metrics.unseen.labels(feature).inc(count)
    matrix, proba = model.predict_proba(batch.columns)
    st.metrics.observe(proba, matrix)
    labels = [model.classes[i] for i in proba.argmax(axis=1).tolist()]
    g.rows = len(labels)
    if st.prediction_log.rate:
        st.prediction_log.write(g.request_id, model.version, columns, labels, proba.tolist(),
                                (model.spec.id_column, ids) if ids else None)
    return labels, proba


def count_ignored(names: set[str]) -> None:
    """Requests that sent inputs the model does not take (``SLIPWAY_UNKNOWN_FEATURES=ignore``): when
    it stays at zero, the clients have stopped sending them and the policy can go back to reject."""
    if names:
        state().metrics.ignored_inputs.inc()


@api.post("/predict")
def predict():
    """``{"instances": [{feature: value}]}`` to a class and per-class probabilities per instance."""
    model = ready_model()
    config = state().config
    columns, ignored, ids = instances_to_columns(read_json_body(), model.spec, config.max_batch,
                                                 config.unknown_features == "ignore")
    count_ignored(ignored)
    labels, proba = predict_columns(columns, lambda name, i: instance_field(i, name), ids)
    names = [str(c) for c in model.classes]
    return jsonify({
        "model_version": model.version,
        "predictions": [
            {"label": label, "probabilities": dict(zip(names, row, strict=True))}
            for label, row in zip(labels, proba.tolist(), strict=True)
        ],
    })


# --- Open Inference Protocol (V2) -------------------------------------------------------------


def v2_model(name: str, version: str | None = None):
    model = ready_model()
    if name != state().config.model_name or (version is not None and version != model.version):
        wanted = f"{name} version {version}" if version else name
        raise RequestError(404, "model_not_found", f"model {wanted!r} is not served here; "
                           f"this server serves {state().config.model_name!r} version {model.version}")
    return model


def label_datatype(classes: list) -> str:
    """The label tensor's datatype, from the classes' JSON types (a bool is also an int in Python)."""
    if all(isinstance(c, bool) for c in classes):
        return "BOOL"
    if any(isinstance(c, bool) or not isinstance(c, int | float) for c in classes):
        return "BYTES"
    return "INT64" if all(isinstance(c, int) for c in classes) else "FP64"


@api.get("/v2/models/<name>")
@api.get("/v2/models/<name>/versions/<version>")
def v2_metadata(name: str, version: str | None = None):
    model = v2_model(name, version)
    spec = model.spec
    inputs = [{"name": n, "datatype": "BYTES" if n in spec.categorical else "FP64", "shape": [-1]}
              for n in spec.inputs]
    parameters = {
        "classes": model.classes,
        "row_major_input": {"shape": [-1, len(spec.inputs)], "columns": spec.inputs,
                            "datatype": "FP64 when every input is numeric, else BYTES (numbers as text or numbers)"},
    }
    if spec.id_column:  # not among the inputs: a client that sends what they list must still be answered
        parameters["id_input"] = {"name": spec.id_column, "datatype": "BYTES or INT64", "shape": [-1],
                                  "optional": True, "use": "kept in the prediction log, to join later labels by"}
    if spec.times:
        texts = "ISO 8601 text" + (f", or text in {spec.time_format!r}" if spec.time_format else "")
        parameters["time_inputs"] = {"names": list(spec.times), "datatype": "FP64 or INT64 (epoch time: s, ms, us "
                                     f"or ns by size) or BYTES ({texts})"}
    return jsonify({
        "name": name,
        "versions": [model.version],
        "platform": "scikit-learn",
        "inputs": inputs,
        "outputs": [
            {"name": "label", "datatype": label_datatype(model.classes), "shape": [-1]},
            {"name": "probabilities", "datatype": "FP64", "shape": [-1, len(model.classes)]},
        ],
        "parameters": parameters,
    })


@api.get("/v2/models/<name>/ready")
@api.get("/v2/models/<name>/versions/<version>/ready")
def v2_model_ready(name: str, version: str | None = None):
    v2_model(name, version)
    return jsonify({"name": name, "ready": True})


def _flatten(data: list) -> list:
    """V2 ``data`` may be flat or nested row-major; the protocol's element order is row-major.
    Without recursion: the nesting depth is the client's to choose."""
    flat, pending = [], [iter(data)]
    while pending:
        for item in pending[-1]:
            if isinstance(item, list):
                pending.append(iter(item))
                break
            flat.append(item)
        else:
            pending.pop()
    return flat


def _decode_binary(raw: bytes, datatype: object, field: str) -> list:
    """The binary tensor extension (what tritonclient sends by default)."""
    if datatype == "BYTES":  # each element: a 4-byte little-endian length, then the UTF-8 bytes
        values, offset = [], 0
        while offset < len(raw):
            end = offset + 4 + int.from_bytes(raw[offset:offset + 4], "little")
            if end > len(raw):
                raise RequestError(400, "invalid_body", "a BYTES element runs past binary_data_size", field)
            try:
                values.append(raw[offset + 4:end].decode("utf-8", errors="strict"))
            except UnicodeDecodeError:
                raise RequestError(422, "wrong_type", "BYTES element is not UTF-8", field) from None
            offset = end
        return values
    dtype = BINARY_DTYPES.get(datatype) if isinstance(datatype, str) else None
    if dtype is None:
        raise RequestError(422, "wrong_type", f"unsupported datatype {shown(datatype)}", field)
    width = np.dtype(dtype).itemsize
    if len(raw) % width:
        raise RequestError(400, "invalid_body", f"binary_data_size {len(raw)} is not a whole number of "
                           f"{datatype} elements ({width} bytes each)", field)
    return np.frombuffer(raw, dtype=dtype).tolist()


def read_infer_request() -> dict:
    """JSON, or JSON header plus binary tensors (``Inference-Header-Content-Length``)."""
    header_length = request.headers.get("Inference-Header-Content-Length")
    if header_length is None:
        body = read_json_body()
    else:
        raw = request_body()
        try:
            length = int(header_length)
        except ValueError:
            length = -1
        if not 0 < length <= len(raw):
            raise RequestError(400, "invalid_body", f"Inference-Header-Content-Length {header_length!r} "
                               f"is not a byte count within the {len(raw)}-byte body")
        body = parse_json(raw[:length], "the inference header")
    if not isinstance(body, dict):
        raise RequestError(400, "invalid_body", 'expected a JSON object {"inputs": [...]}')
    if header_length is not None:
        _attach_binary_data(body, raw, length)
    return body


def _attach_binary_data(body: dict, raw: bytes, offset: int) -> None:
    """Each input with ``parameters.binary_data_size`` takes its data from the bytes after the header."""
    inputs = body.get("inputs")
    for index, tensor in enumerate(inputs if isinstance(inputs, list) else []):
        if not isinstance(tensor, dict):
            continue
        field = f"inputs[{index}]"
        check_parameters(tensor, field)
        size = (tensor.get("parameters") or {}).get("binary_data_size")
        if size is None:
            continue
        if type(size) is not int or size < 0:
            raise RequestError(400, "invalid_body", f"binary_data_size must be a byte count, got {shown(size)}",
                               f"{field}.parameters.binary_data_size")
        chunk = raw[offset:offset + size]
        if len(chunk) != size:
            raise RequestError(400, "invalid_body", "binary data shorter than binary_data_size", field)
        tensor["data"] = _decode_binary(chunk, tensor.get("datatype"), field)
        offset += size


def check_parameters(part: dict, field: str | None = None) -> None:
    """The protocol's ``parameters`` of a request or a tensor: an object, when present."""
    parameters = part.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise RequestError(400, "invalid_body", f"parameters must be an object, got {shown(parameters)}",
                           f"{field}.parameters" if field else "parameters")


def tensors_to_columns(body: dict, spec, max_batch: int,
                       ignore_unknown: bool = False) -> tuple[dict[str, list], int, set[str], list | None]:
    """V2 input tensors to one list per input column, the row count, the tensors dropped as
    unknown (``ignore_unknown``; else an unknown name is refused), and the values of the spec's id
    column, when a tensor of that name was sent beside the inputs."""
    tensors = body.get("inputs")
    if not isinstance(tensors, list) or not tensors:
        raise RequestError(400, "invalid_body", "inputs must be a non-empty list of tensors", "inputs")
    for i, tensor in enumerate(tensors):
        if not isinstance(tensor, dict) or not {"name", "shape", "datatype", "data"} <= tensor.keys():
            raise RequestError(400, "invalid_body", "each input needs name, shape, datatype and data",
                               f"inputs[{i}]")
        if not isinstance(tensor["name"], str):
            raise RequestError(400, "invalid_body", f"name must be a string, got {shown(tensor['name'])}",
                               f"inputs[{i}].name")
        check_parameters(tensor, f"inputs[{i}]")
        shape = tensor["shape"]
        if not (isinstance(shape, list) and shape and all(type(d) is int and d >= 0 for d in shape)):
            raise RequestError(400, "invalid_body", f"shape must be a list of sizes, got {shown(shape)}",
                               f"inputs[{i}].shape")
        tensor["data"] = _flatten(tensor["data"]) if isinstance(tensor["data"], list) else tensor["data"]
        if not isinstance(tensor["data"], list) or len(tensor["data"]) != math.prod(shape):
            raise RequestError(400, "invalid_body", f"data must hold {math.prod(shape)} elements "
                               f"for shape {shape}", f"inputs[{i}].data")
        if not isinstance(tensor["datatype"], str) or tensor["datatype"] not in DATATYPES:
            raise RequestError(400, "invalid_body", f"unknown datatype {shown(tensor['datatype'])}",
                               f"inputs[{i}].datatype")
    inputs = spec.inputs
    id_tensor = next((t for t in tensors if t["name"] == spec.id_column), None) if spec.id_column else None
    if id_tensor is not None:
        tensors = [t for t in tensors if t is not id_tensor]
    if len(tensors) == 1 and tensors[0]["name"] not in spec.input_names:  # one row-major tensor
        tensor = tensors[0]
        if len(tensor["shape"]) != 2 or tensor["shape"][1] != len(inputs):
            raise RequestError(422, "invalid_shape", f"a single tensor must have shape [rows, "
                               f"{len(inputs)}] with columns {inputs}", "inputs[0].shape")
        check_batch_size(tensor["shape"][0], max_batch, "inputs[0]")
        data = tensor["data"]
        return ({name: data[j::len(inputs)] for j, name in enumerate(inputs)}, tensor["shape"][0], set(),
                tensor_ids(id_tensor, tensor["shape"][0]))
    unknown = [t["name"] for t in tensors if t["name"] not in spec.input_names]
    by_name = {t["name"]: t for t in tensors if t["name"] in spec.input_names}
    missing = [n for n in inputs if n not in by_name]
    if unknown and not ignore_unknown:
        meant = counterpart(unknown[0], missing)
        raise RequestError(422, "unknown_feature", f"unknown input {shown(unknown[0])}"
                           + (f" (the model's {meant!r}? names are exact)" if meant else "")
                           + f"; the model takes {inputs}" + id_column_note(spec), f"inputs[{unknown[0]}]")
    if missing:
        sent = counterpart(missing[0], unknown)
        raise RequestError(422, "missing_feature", f"missing input {shown(missing[0])}"
                           + (f" (the request names it {shown(sent)}; names are exact)" if sent else ""),
                           f"inputs[{missing[0]}]")
    rows = {len(t["data"]) for t in by_name.values()}
    if len(rows) != 1 or any(len(t["shape"]) > 2 or (len(t["shape"]) == 2 and t["shape"][1] != 1)
                             for t in by_name.values()):
        raise RequestError(422, "invalid_shape", "every input tensor must have shape [rows] or "
                           "[rows, 1], with the same rows", "inputs")
    n_rows = rows.pop()
    check_batch_size(n_rows, max_batch, "inputs")
    # A BYTES tensor may carry any input: categories, times as text, and numbers as text, read as the
    # training data wrote them (a client's DataFrame column of numbers with a blank in it is text).
    return {name: by_name[name]["data"] for name in inputs}, n_rows, set(unknown), tensor_ids(id_tensor, n_rows)


# The datatypes an id tensor may have: text, or whole numbers.
ID_DATATYPES = frozenset({"BYTES", *(name for name in BINARY_DTYPES if "INT" in name)})


def tensor_ids(tensor: dict | None, n_rows: int) -> list | None:
    """The id column's values, one per row, from the tensor of its name (``None`` when not sent)."""
    if tensor is None:
        return None
    field = f"inputs[{tensor['name']}]"
    if tensor["datatype"] not in ID_DATATYPES:
        raise RequestError(422, "wrong_type", f"the id must be BYTES or an integer datatype, got "
                           f"{tensor['datatype']}", f"{field}.datatype")
    if len(tensor["data"]) != n_rows or tensor["shape"][1:] not in ([], [1]):
        raise RequestError(422, "invalid_shape", f"the id tensor must have shape [{n_rows}] or [{n_rows}, 1], "
                           "one id per row", f"{field}.shape")
    return check_ids(tensor["data"], lambda i: f"{field}.data[{i}]")


@api.post("/v2/models/<name>/infer")
@api.post("/v2/models/<name>/versions/<version>/infer")
def v2_infer(name: str, version: str | None = None):
    model = v2_model(name, version)
    body = read_infer_request()
    outputs = body.get("outputs") or []
    if not isinstance(outputs, list):
        raise RequestError(400, "invalid_body", 'outputs must be a list of {"name": ...}', "outputs")
    requested = [o.get("name") if isinstance(o, dict) else o for o in outputs]
    unknown = [o for o in requested if o not in OUTPUTS]
    if unknown:
        raise RequestError(400, "invalid_body", f"unknown output {shown(unknown[0])}; outputs are "
                           f"{list(OUTPUTS)}", "outputs")
    check_parameters(body)
    request_id = body.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise RequestError(400, "invalid_body", f"id must be a string, got {request_id!r}", "id")
    config = state().config
    columns, n_rows, ignored, ids = tensors_to_columns(body, model.spec, config.max_batch,
                                                       config.unknown_features == "ignore")
    count_ignored(ignored)
    labels, proba = predict_columns(columns, lambda feature, i: f"inputs[{feature}].data[{i}]", ids)
    outputs = {
        "label": {"name": "label", "shape": [n_rows], "datatype": label_datatype(model.classes),
                  "data": labels},
        "probabilities": {"name": "probabilities", "shape": [n_rows, len(model.classes)],
                          "datatype": "FP64", "data": proba.ravel().tolist()},
    }
    response = {"model_name": name, "model_version": model.version,
                "outputs": [outputs[o] for o in (requested or OUTPUTS)]}
    if request_id is not None:
        response["id"] = request_id
    return jsonify(response)
