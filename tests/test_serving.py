"""The server through Flask's test client: every endpoint, every kind of bad input."""

import gzip
import html
import io
import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import zlib
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from unittest.mock import ANY

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from slipway import bundle
from slipway.errors import ParamsError
from slipway.featureset import FeatureSpec
from slipway.monitoring import canary
from slipway.serving import api
from slipway.serving.app import create_app
from slipway.serving.config import ServingConfig
from slipway.serving.logs import APP_LOGGER
from slipway.serving.state import PredictionLog
from tests.conftest import churn_instances


@pytest.fixture
def config(bundle_dir, tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "gate.json").write_text(json.dumps({"verdict": "pass", "failed": [], "models": {}}))
    (reports / "metrics.json").write_text(json.dumps({"roc_auc": 0.81234, "accuracy": 0.8}))
    return ServingConfig(model_dir=bundle_dir, reports_dir=reports, max_batch=50,
                         max_body_bytes=64 * 1024)


@pytest.fixture
def app(config):
    return create_app(config)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def reference_model(bundle_dir):
    return bundle.load(bundle_dir)


def assert_documented(app, method: str, path: str, response) -> None:
    """``/openapi.json`` documents the response's status for this route, and its JSON body fits the
    documented schema."""
    document = app.test_client().get("/openapi.json").json
    rule, _ = app.url_map.bind("localhost").match(path, method=method, return_rule=True)
    operation = document["paths"][re.sub(r"<(\w+)>", r"{\1}", rule.rule)][method.lower()]
    documented = operation["responses"].get(str(response.status_code))
    assert documented, f"{method} {path}: status {response.status_code} is not documented"
    content = documented.get("content", {})
    assert response.mimetype in content, f"{method} {path}: {response.mimetype} is not documented"
    if response.mimetype == "application/json":
        schema = {**content["application/json"]["schema"], "components": document["components"]}
        Draft202012Validator(schema).validate(response.json)


def metric(client, name: str, **labels) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    total = 0.0
    for line in text.splitlines():
        if line.startswith((name + "{", name + " ")) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_health_and_readiness(client, reference_model):
    assert client.get("/healthz").json == {"live": True}
    assert client.get("/v2/health/live").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json["model_version"] == reference_model.version
    assert client.get("/v2/health/ready").status_code == 200


def pipeline_probabilities(model: bundle.Bundle, instances: list[dict]) -> np.ndarray:
    """What the pipeline's own code gives for these instances: its feature code, then the estimator."""
    import pandas as pd

    spec = FeatureSpec.from_dict(model.metadata["features"])
    return model.estimator.predict_proba(spec.transform(pd.DataFrame(instances)))


def served_probabilities(body: dict) -> np.ndarray:
    """A binary ``/predict`` answer's probabilities, one row per instance."""
    return np.array([[p["probabilities"]["0"], p["probabilities"]["1"]] for p in body["predictions"]])


def test_predict_matches_the_pipeline_model(client, reference_model):
    instances = churn_instances(20)
    response = client.post("/predict", json={"instances": instances})
    assert response.status_code == 200
    body = response.json
    assert body["model_version"] == reference_model.version
    expected = pipeline_probabilities(reference_model, instances)
    served = served_probabilities(body)
    # Unrounded: a probability of 1e-8 is served as that, not as 0 (which a log loss computed from
    # the prediction log would turn into infinity).
    np.testing.assert_allclose(served, expected, rtol=0, atol=1e-9)
    assert [p["label"] for p in body["predictions"]] == expected.argmax(axis=1).tolist()
    assert response.headers["X-Request-ID"]


@pytest.mark.parametrize(("estimator", "hyperparameters", "fast"), [
    ("logistic_regression", {}, True), ("random_forest", {"n_estimators": 20, "min_samples_leaf": 5}, True),
    ("gradient_boosting", {"n_estimators": 20}, False)])
def test_train_estimators_other_choices_are_served_with_the_pipelines_answers(tmp_path, params, gradient_boosting,
                                                                              estimator, hyperparameters, fast):
    """The logistic regression and the random forest behind the one-hot encoder have an ONNX
    model; a team's gradient boosting has none, and the server predicts with the estimator itself.
    Either way, from the same feature code, with the pipeline's answers and the same counts as the
    default model."""
    from tests.conftest import build_bundle

    params["train"].update(estimator=estimator, hyperparameters=hyperparameters)
    model_dir = build_bundle(tmp_path, params)
    assert (model_dir / "model.onnx").exists() is fast
    app = create_app(ServingConfig(model_dir=model_dir, unseen_categories="missing"))
    served = app.extensions["slipway"].model
    assert (served.fast is not None) is fast
    # checked against the estimator at load, ONNX answers alone and the estimator's memory goes
    assert (served.bundle.estimator is None) is fast
    client = app.test_client()
    assert client.get("/readyz").status_code == 200
    instances = churn_instances(12)
    instances[1]["contract"] = None
    instances[2]["age"] = None
    instances[3]["region"] = "mars"  # unseen: missing under this policy, as spec.transform reads it
    response = client.post("/predict", json={"instances": instances})
    assert response.status_code == 200, response.json
    expected = pipeline_probabilities(bundle.load(model_dir), instances)
    np.testing.assert_allclose(served_probabilities(response.json), expected, rtol=0, atol=1e-12)
    inferred = client.post("/v2/models/slipway/infer", json={"inputs": tensors(instances[4:])})
    assert inferred.status_code == 200, inferred.json
    probabilities = np.reshape(inferred.json["outputs"][1]["data"], (-1, 2))
    np.testing.assert_allclose(probabilities, expected[4:], rtol=0, atol=1e-12)
    assert metric(client, "slipway_predictions_total") == 20
    assert metric(client, "slipway_unseen_categories_total", feature="region") == 1
    if not fast:  # the model card says what serves the model, and why not the fast path
        page = html.unescape(client.get("/").get_data(as_text=True))
        assert "scikit-learn's <code>predict_proba</code>: GradientBoostingClassifier has no ONNX translation" in page


def test_a_time_a_derived_feature_reads_is_the_same_moment_in_training_and_in_any_form_a_request_sends(
        tmp_path, params, monkeypatch):
    """data.timestamp_column read by a team's derived feature (the event's hour): training holds it as
    dates, a request sends ISO 8601 text or epoch time; the served answer is the pipeline's for that
    moment, whichever form it came in, and a value that is no time is named."""
    import pandas as pd

    from slipway.model.features import DERIVED_FEATURES, DerivedFeature
    from tests.conftest import build_bundle

    monkeypatch.setitem(DERIVED_FEATURES, "event_hour", DerivedFeature(
        ("event_timestamp",), lambda cols: (cols["event_timestamp"] // 3600) % 24, "hour of the event"))
    params["featurize"]["derived"] = [*params["featurize"]["derived"], "event_hour"]
    model_dir = build_bundle(tmp_path, params)
    features = pd.read_parquet(tmp_path / "data/features/train.parquet")
    assert (features["event_hour"] == features["event_timestamp"].dt.hour).all()
    client = create_app(ServingConfig(model_dir=model_dir)).test_client()
    forms = ["2025-09-03T17:45:00Z", "2025-09-03 19:45:00+02:00", "2025-09-03T17:45", 1756921500, 1756921500000]
    instances = [{**instance, "event_timestamp": form}
                 for instance, form in zip(churn_instances(5), forms, strict=True)]
    moments = [{**instance, "event_timestamp": pd.Timestamp("2025-09-03 17:45")} for instance in instances]
    expected = pipeline_probabilities(bundle.load(model_dir), moments)
    response = client.post("/predict", json={"instances": instances})
    assert response.status_code == 200, response.json
    np.testing.assert_allclose(served_probabilities(response.json), expected, rtol=0, atol=1e-12)
    other_hours = [[{**moment, "event_timestamp": pd.Timestamp(f"2025-09-03 {hour:02}:45")} for moment in moments]
                   for hour in range(24)]
    model = bundle.load(model_dir)
    # the model reads the hour
    assert any(not np.allclose(pipeline_probabilities(model, rows), expected) for rows in other_hours)
    inferred = client.post("/v2/models/slipway/infer", json={"inputs": tensors(instances[:3])})  # BYTES text
    np.testing.assert_allclose(np.reshape(inferred.json["outputs"][1]["data"], (-1, 2)), expected[:3],
                               rtol=0, atol=1e-12)
    day_first = {**instances[1], "event_timestamp": "03/09/2025"}
    refused = client.post("/predict", json={"instances": [instances[0], day_first]})
    assert refused.status_code == 422 and refused.json["error"] == {
        "reason": "wrong_type", "field": "instances[1].event_timestamp",
        "message": "expected a time (ISO 8601 text such as '2025-01-31T09:30:00Z', or epoch time as a number) "
                   "or null, got '03/09/2025'"}
    openapi = client.get("/openapi.json").json
    schema = Draft202012Validator(openapi["components"]["schemas"]["Instance"])
    assert all(schema.is_valid(instance) for instance in instances)
    assert not schema.is_valid(day_first)
    example = openapi["components"]["schemas"]["Instance"]["examples"][0]
    assert example["event_timestamp"] == json.loads((model_dir / "model.json").read_text())["training"]["data_until"]
    assert client.post("/predict", json={"instances": [example]}).status_code == 200
    assert client.get("/v2/models/slipway").json["parameters"]["time_inputs"]["names"] == ["event_timestamp"]
    assert "<td>time</td>" in client.get("/").get_data(as_text=True)


def test_each_request_is_one_json_log_line(client, capsys):
    client.post("/predict", json={"instances": churn_instances(2)}, headers={"X-Request-ID": "log-1"})
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if '"log-1"' in line]
    assert len(lines) == 1
    assert lines[0]["msg"] == "request" and lines[0]["path"] == "/predict"
    assert lines[0]["status"] == 200 and lines[0]["rows"] == 2 and lines[0]["duration_ms"] > 0


def test_request_id_is_echoed(client):
    response = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"


VALID = churn_instances(1)[0]


def body_with(**changes):
    return {"instances": [{**VALID, **changes}]}


@pytest.mark.parametrize(
    ("kwargs", "status", "reason", "field", "message"),
    [
        (dict(data="{not json", content_type="application/json"), 400, "malformed_json", None,
         "not valid JSON"),
        (dict(data="instances=1", content_type="text/plain"), 415, "wrong_content_type", None,
         "expected Content-Type: application/json"),
        (dict(json=[1, 2]), 400, "invalid_body", None, '{"instances": [...]}'),
        (dict(json={"instances": {}}), 400, "invalid_body", "instances", "list of objects"),
        (dict(json={"instances": [], }), 400, "empty_batch", "instances", "empty"),
        (dict(json={"instances": [VALID] * 51}), 400, "batch_too_large", "instances",
         "51 rows, more than the limit of 50"),
        (dict(json={"instances": [VALID], "extra": 1}), 400, "invalid_body", "extra", "unexpected keys"),
        (dict(json={"instances": [3]}), 400, "invalid_body", "instances[0]", "must be an object"),
        (dict(json={"instances": [{k: v for k, v in VALID.items() if k != "age"}]}), 422,
         "missing_feature", "instances[0].age", "missing feature 'age'"),
        (dict(json=body_with(agee=3)), 422, "unknown_feature", "instances[0].agee", "unknown feature 'agee'"),
        (dict(json={"instances": [{("Plan Tier" if k == "plan_tier" else k): v for k, v in VALID.items()}]}), 422,
         "missing_feature", "instances[0].plan_tier",
         "missing feature 'plan_tier' (the instance names it 'Plan Tier'; names are exact)"),
        # A lone surrogate is valid JSON but not UTF-8: the error names it all the same.
        (dict(data=json.dumps(body_with(agee=3)).replace("agee", "\\ud800"), content_type="application/json"),
         422, "unknown_feature", 'instances[0]["\\ud800"]', "unknown feature '\\ud800'"),
        (dict(json=body_with(age="forty")), 422, "wrong_type", "instances[0].age", "expected a number"),
        (dict(json=body_with(age=True)), 422, "wrong_type", "instances[0].age", "got True"),
        (dict(json=body_with(contract=[3])), 422, "wrong_type", "instances[0].contract",
         "expected a string, a boolean, a number or null, got [3]"),
        (dict(json=body_with(contract=3)), 422, "unseen_category", "instances[0].contract",
         "'3' is not a category"),
        (dict(json=body_with(customer_id=1.5)), 422, "wrong_type", "instances[0].customer_id",
         "expected a string, an integer or null for the id, got 1.5"),
        (dict(json=body_with(customer_id=2**70)), 422, "wrong_type", "instances[0].customer_id",
         "the id is an integer past 64 bits, which is read as the number 1.18059e+21: send it as a string"),
        (dict(data=json.dumps(body_with(contract=1.5)).replace("1.5", "Infinity"),
              content_type="application/json"), 422, "non_finite", "instances[0].contract", "inf"),
        (dict(data=json.dumps(body_with()).replace('"age": ' + str(VALID["age"]), '"age": NaN'),
              content_type="application/json"), 422, "non_finite", "instances[0].age", "send null"),
        (dict(data=json.dumps(body_with()).replace('"age": ' + str(VALID["age"]), '"age": -Infinity'),
              content_type="application/json"), 422, "non_finite", "instances[0].age", "-inf"),
        (dict(json=body_with(age=10**400)), 422, "non_finite", "instances[0].age", "finite float64"),
        (dict(json=body_with(contract="lifetime")), 422, "unseen_category", "instances[0].contract",
         "expected one of ['month-to-month', 'one-year', 'two-year']"),
        (dict(data="x" * (70 * 1024), content_type="application/json"), 413, "body_too_large", None, ""),
        (dict(data='{"instances": ' + "[" * 20000 + "]" * 20000 + "}", content_type="application/json"), 400,
         "malformed_json", None, "the body nests arrays or objects too deeply"),
    ],
    ids=["malformed", "content-type", "not-object", "not-list", "empty", "too-many", "extra-key",
         "not-instance", "missing", "unknown", "misnamed", "surrogate", "string-number", "bool", "list-category",
         "number-category", "float-id", "huge-id", "infinite-category", "nan",
         "infinity", "beyond-float64", "unseen-category", "body-too-large", "deep-nesting"],
)
def test_bad_input_gets_a_clear_4xx(app, client, kwargs, status, reason, field, message):
    response = client.post("/predict", **kwargs)
    assert response.status_code == status
    assert_documented(app, "POST", "/predict", response)
    error = response.json["error"]
    assert error["reason"] == reason and error["field"] == field
    assert message in error["message"]
    assert response.json["request_id"]
    assert metric(client, "slipway_rejected_requests_total", reason=reason) == 1


@pytest.mark.parametrize(("encoding", "data", "status", "reason", "message"), [
    ("gzip", gzip.compress(json.dumps(body_with()).encode()), 200, None, None),
    ("deflate", zlib.compress(json.dumps(body_with()).encode()), 200, None, None),
    ("br", b"\x0b\x02\x80{}\x03", 415, "unsupported_encoding",
     "Content-Encoding 'br' is not supported; send the body as is, or with gzip or deflate"),
    ("gzip", json.dumps(body_with()).encode(), 400, "malformed_body", "the body is not gzip data: "),
    ("gzip", gzip.compress(json.dumps(body_with()).encode())[:-12], 400, "malformed_body",
     "the gzip body ends before its compressed data does"),
    ("gzip", gzip.compress(json.dumps(body_with()).encode()) + gzip.compress(b" "), 400, "malformed_body",
     "the body goes on after its gzip stream ends (21 bytes); send one gzip stream"),
    # A few hundred bytes that would decompress to 10 MB: bounded like an uncompressed body.
    ("gzip", gzip.compress(b" " * 10_000_000), 413, "body_too_large",
     "the body decompresses to more than 65536 bytes (SLIPWAY_MAX_BODY_BYTES)"),
])
def test_a_compressed_body_is_read_and_bounded(app, client, encoding, data, status, reason, message):
    """tritonclient's request_compression_algorithm: gzip or deflate (zlib) bodies."""
    response = client.post("/predict", data=data, content_type="application/json",
                           headers={"Content-Encoding": encoding})
    assert response.status_code == status, response.json
    assert_documented(app, "POST", "/predict", response)
    if reason:
        assert response.json["error"]["reason"] == reason and response.json["error"]["message"].startswith(message)
        assert metric(client, "slipway_rejected_requests_total", reason=reason) == 1
    else:
        assert response.json == client.post("/predict", json=body_with()).json


@pytest.mark.parametrize(("extra", "status"), [(0, 200), (1, 413)], ids=["at-the-limit", "past-the-limit"])
def test_a_body_sent_in_chunks_is_bounded_like_any_other(config, extra, status):
    """Transfer-Encoding: chunked has no Content-Length to refuse the body by: werkzeug read it up
    to the limit and stopped, and the cut JSON was answered as malformed_json."""
    body = json.dumps(body_with()).encode()
    client = create_app(replace(config, max_body_bytes=len(body))).test_client()
    response = client.post("/predict", input_stream=io.BytesIO(body + b" " * extra), content_type="application/json",
                           headers={"Transfer-Encoding": "chunked"}, environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == status
    if status == 413:
        message = f"the body is larger than {len(body)} bytes (SLIPWAY_MAX_BODY_BYTES)"
        assert response.json["error"] == {"reason": "body_too_large", "field": None, "message": message}


def test_booleans_and_numbers_stand_for_the_labels_training_gave_them():
    """A boolean or integer column becomes a categorical feature labelled "True" or "2"; a client
    sends the values as JSON has them."""
    from slipway.serving.openapi import instance_schema
    from slipway.serving.schemas import RequestError, check_columns

    spec = FeatureSpec(["x"], {"organic": ["False", "True"], "grade": ["1", "2", "3"]})
    batch = check_columns({"x": [1.0, 2.0], "organic": [True, "False"], "grade": [2, None]}, spec,
                          "reject", lambda name, i: f"{name}[{i}]")
    assert batch.columns["organic"].tolist() == ["True", "False"]
    assert batch.columns["grade"].tolist() == ["2", None]
    np.testing.assert_array_equal(spec.matrix(batch.columns)[:, 1:], [[1.0, 1.0], [0.0, np.nan]])
    # JSON's 2.0 is the number 2 (a JSON Schema enum agrees): the category "2", not an unseen "2.0".
    floats = check_columns({"x": [1.0, 2.0], "organic": [False, True], "grade": [2.0, 3]}, spec, "reject",
                           lambda name, i: f"{name}[{i}]")
    assert floats.columns["grade"].tolist() == ["2", "3"]
    halves = FeatureSpec(["x"], {"size": ["0.5", "2.0"]})
    assert check_columns({"x": [1.0, 1.0], "size": [0.5, 2]}, halves, "reject",
                         lambda name, i: f"{name}[{i}]").columns["size"].tolist() == ["0.5", "2.0"]
    codes = FeatureSpec(["x"], {"zone": ["007", "1e3"]})  # codes written so are not the numbers 7 and 1000
    for number in (7, 1000):
        with pytest.raises(RequestError, match="is not a category the model was trained on"):
            check_columns({"x": [1.0], "zone": [number]}, codes, "reject", lambda name, i: f"{name}[{i}]")
    with pytest.raises(RequestError) as unseen:
        check_columns({"x": [1.0], "organic": [False], "grade": [4]}, spec, "reject", lambda n, i: f"{n}[{i}]")
    assert (unseen.value.reason, unseen.value.field) == ("unseen_category", "grade[0]")
    assert "'4' is not a category the model was trained on; expected one of ['1', '2', '3']" in unseen.value.message
    properties = instance_schema(SimpleNamespace(spec=spec, example_instance=dict))["properties"]
    assert properties["organic"]["anyOf"][0] == {"type": ["boolean", "string", "null"],
                                                 "enum": ["False", False, "True", True, None]}
    assert properties["grade"]["anyOf"][0] == {"type": ["integer", "string", "null"],
                                               "enum": ["1", 1, "2", 2, "3", 3, None]}


@settings(max_examples=300, deadline=None, derandomize=bool(os.environ.get("CI")))
@given(st.one_of(st.none(), st.booleans(), st.integers(-3, 1100), st.sampled_from([2.0, 0.5, 7.0, 1e3, -0.0]),
                 st.sampled_from(["007", "7", "2", "2.0", "1e3", "True", "true", " 2 ", "", "0.5"])))
def test_the_schema_of_a_category_takes_exactly_the_values_the_server_reads_as_it(value):
    """Codes, numbers and booleans as categories: "007" is a code (7 is not it), "2" is JSON's 2 and
    2.0, "2.0" JSON's 2 too, "True" is true."""
    from slipway.serving.openapi import instance_schema
    from slipway.serving.schemas import RequestError, check_columns

    spec = FeatureSpec(["x"], {"zone": ["007", "1e3", "2", "True"], "size": ["0.5", "2.0"]})
    properties = instance_schema(SimpleNamespace(spec=spec, example_instance=dict))["properties"]
    for name in spec.categorical:
        try:
            check_columns({"x": [1.0], "zone": ["2"], "size": ["0.5"], name: [value]}, spec, "reject",
                          lambda feature, i: f"{feature}[{i}]")
            answered = True
        except RequestError:
            answered = False
        assert Draft202012Validator(properties[name]).is_valid(value) == answered, (name, value)


@pytest.mark.parametrize("value", [
    "2025-01-31", "2025-01-31T09:30:00.5Z", " 2025-01-31 09:30+02:00 ", "2025-01-31T09:30+0200", "2025-01-31Z",
    "31.01.2025", "2025-W05-1", "20250131T0930", "", " ", 1738315800, 1738315800000, 20250131, 1.5e300, True, None,
    [2025]])
def test_the_schema_of_a_time_takes_exactly_the_values_the_server_reads_as_one(value):
    """Only a day that does not exist (2025-02-30) has the shape the schema checks and is refused."""
    from slipway.model.features import DerivedFeature
    from slipway.serving.openapi import instance_schema
    from slipway.serving.schemas import RequestError, check_columns

    spec = FeatureSpec(["x"], {}, ["hour"], {"hour": DerivedFeature(("t",), lambda cols: cols["t"] % 24, "")},
                       times=("t",))
    schema = instance_schema(SimpleNamespace(spec=spec, example_instance=dict))["properties"]["t"]
    try:
        check_columns({"x": [1.0], "t": [value]}, spec, "reject", lambda feature, i: f"{feature}[{i}]")
        answered = True
    except RequestError as refused:
        assert (refused.reason, refused.field) == ("wrong_type", "t[0]")
        answered = False
    assert Draft202012Validator(schema).is_valid(value) == answered
    with pytest.raises(RequestError, match="expected a time"):
        check_columns({"x": [1.0], "t": ["2025-02-30"]}, spec, "reject", lambda feature, i: f"{feature}[{i}]")


@pytest.mark.parametrize("value", ["31.01.2025 09:30", " 1.2.2025 9:30 ", "2025-01-31T09:30:00Z", 1738315800,
                                   "31.01.2025", "01/31/2025 09:30", "30.02.2025 09:30", "", None])
def test_a_time_in_the_training_format_is_read_and_the_schema_takes_exactly_those(value):
    """A model trained on times written '%d.%m.%Y %H:%M' (data.timestamp_format) reads a time sent so,
    besides ISO 8601 and epoch time; its schema agrees but on a day that does not exist (30.02.)."""
    from slipway.model.features import DerivedFeature
    from slipway.serving.openapi import instance_schema
    from slipway.serving.schemas import RequestError, check_columns

    spec = FeatureSpec(["x"], {}, ["hour"], {"hour": DerivedFeature(("t",), lambda cols: cols["t"] % 24, "")},
                       times=("t",), time_format="%d.%m.%Y %H:%M")
    schema = instance_schema(SimpleNamespace(spec=spec, example_instance=dict))["properties"]["t"]
    try:
        read = check_columns({"x": [1.0], "t": [value]}, spec, "reject", lambda feature, i: f"{feature}[{i}]")
        answered = True
    except RequestError as refused:
        assert (refused.reason, refused.field) == ("wrong_type", "t[0]")
        assert "text in the training data's format '%d.%m.%Y %H:%M'" in refused.message
        answered = False
    assert Draft202012Validator(schema).is_valid(value) == (answered or value == "30.02.2025 09:30")
    if value == "31.01.2025 09:30":
        assert read.columns["t"][0] == 1738315800


@pytest.mark.parametrize("value", ["17,99", " 1.234,5 ", "-3", ",5", "2e3", "17.99", "1,234.5", "12,", "1.2.3", "", " ",
                                   "?", 17.99, True, None, [1]])
def test_a_number_as_text_is_read_with_training_marks_and_the_schema_takes_exactly_those(value):
    """A model trained on a European export (``data.decimal: ","``, ``data.thousands: "."``) reads
    "17,99" as 17.99, and "17.99" (which its data never wrote so) not at all; its OpenAPI schema agrees."""
    from slipway.serving.openapi import instance_schema
    from slipway.serving.schemas import RequestError, check_columns

    spec = FeatureSpec(["x"], {}, missing_values=("?",), number_format=(",", "."))
    schema = instance_schema(SimpleNamespace(spec=spec, example_instance=dict))["properties"]["x"]
    try:
        read = check_columns({"x": [value]}, spec, "reject", lambda feature, i: f"{feature}[{i}]").columns["x"][0]
        answered = True
    except RequestError as refused:
        assert (refused.reason, refused.field) == ("wrong_type", "x[0]")
        assert "such as '-1.234,5'" in refused.message or not isinstance(value, str)
        answered = False
    assert Draft202012Validator(schema).is_valid(value) == answered
    if value in ("17,99", " 1.234,5 "):
        assert read == {"17,99": 17.99, " 1.234,5 ": 1234.5}[value]


def test_a_batch_becomes_one_list_per_input_and_a_bad_value_is_named_by_its_instance():
    """The rows of a batch are turned into columns in one go; what is wrong with a later instance is
    named by that instance, and a model of a single input gets its column as well."""
    from slipway.serving.schemas import RequestError, check_columns, instances_to_columns

    spec = FeatureSpec(["x"], {"grade": ["1", "2"]}, id_column="id")
    body = {"instances": [{"x": 1.5, "grade": "1", "id": "a"}, {"x": None, "grade": 2},
                          {"x": 3, "grade": None, "id": 7}]}
    columns, ignored, ids = instances_to_columns(body, spec, max_batch=10)
    assert (columns, ignored, ids) == ({"x": [1.5, None, 3], "grade": ["1", 2, None]}, set(), ["a", None, 7])
    assert instances_to_columns({"instances": [{"x": 1, "grade": "1"}]}, spec, max_batch=10)[2] is None
    alone = FeatureSpec(["x"], {})
    assert instances_to_columns({"instances": [{"x": 1}, {"x": 2.5}]}, alone, max_batch=10)[0] == {"x": [1, 2.5]}
    for instance, reason, field in [({"x": 1, "grade": "1", "id": 1.5}, "wrong_type", "instances[2].id"),
                                    ({"x": 1, "grade": [2]}, "wrong_type", "instances[2].grade"),
                                    ({"x": 1, "grade": "3"}, "unseen_category", "instances[2].grade"),
                                    ({"x": "one", "grade": "1"}, "wrong_type", "instances[2].x")]:
        with pytest.raises(RequestError) as refused:
            columns, _, _ = instances_to_columns({"instances": [*body["instances"][:2], instance]}, spec, 10)
            check_columns(columns, spec, "reject", lambda name, i: f"instances[{i}].{name}")
        assert (refused.value.reason, refused.value.field) == (reason, field)


def test_nulls_are_missing_values(client):
    response = client.post("/predict", json=body_with(age=None, contract=None))
    assert response.status_code == 200


def test_a_non_finite_number_is_named_among_nulls(client):
    rows = [{**VALID, "age": None}, {**VALID, "tenure_months": None}, {**VALID, "age": 1.5}]
    body = json.dumps({"instances": rows}).replace("1.5", "NaN")
    response = client.post("/predict", data=body, content_type="application/json")
    assert response.status_code == 422
    assert response.json["error"]["field"] == "instances[2].age"


def test_categories_are_read_without_surrounding_spaces_as_training_read_them(client):
    """ingest trims text values, so a model knows 'monthly'; a client reading the same fixed-width
    or ', '-separated export sends ' monthly ' and got 422 unseen_category."""
    instances = churn_instances(3)
    padded = [{**instances[0], "contract": f"  {instances[0]['contract']} "},
              {**instances[1], "contract": "   "}, instances[2]]
    as_sent = client.post("/predict", json={"instances": padded})
    assert as_sent.status_code == 200
    as_trained = client.post("/predict", json={"instances": [instances[0], {**instances[1], "contract": None},
                                                             instances[2]]})
    assert as_sent.json["predictions"] == as_trained.json["predictions"]
    v2 = client.post("/v2/models/slipway/infer", json={"inputs": tensors(padded)})
    assert v2.json["outputs"][1]["data"][::2] == [p["probabilities"]["0"] for p in as_trained.json["predictions"]]
    unseen = client.post("/predict", json=body_with(contract=" lifetime "))
    assert unseen.status_code == 422 and "'lifetime' is not a category" in unseen.json["error"]["message"]


def test_a_field_reads_one_way_whatever_the_feature_is_named():
    """A feature named 'contract.type' was located at instances[0].contract.type: a nested key?"""
    from slipway.serving.schemas import instance_field

    assert instance_field(3, "age") == "instances[3].age"
    assert instance_field(3, "contract.type") == 'instances[3]["contract.type"]'
    assert instance_field(0, 'Région "a"') == 'instances[0]["Région \\"a\\""]'


def test_an_unseen_category_is_named_with_its_trained_spelling_and_a_bounded_list():
    """'North' for a model that knows 'north' was refused with every category listed, and a feature
    of thousands of zip codes listed them all in one error."""
    from slipway.serving.schemas import LISTED_CATEGORIES, RequestError, check_columns

    zips = [f"{code:05d}" for code in range(1000)]
    spec = FeatureSpec([], {"region": ["north", "north-east", "south"], "zip": zips})
    for region, zip_code, message in [
        ("North East", "00001", "'North East' is not a category the model was trained on (it was trained on "
                                "'north-east', spelt otherwise); expected one of ['north', 'north-east', 'south']"),
        ("east", "00001", "'east' is not a category the model was trained on; expected one of ['north', "),
        ("north", "99999", f"expected one of {zips[:LISTED_CATEGORIES]} and {1000 - LISTED_CATEGORIES} more"),
    ]:
        with pytest.raises(RequestError) as unseen:
            check_columns({"region": [region], "zip": [zip_code]}, spec, "reject", lambda n, i: f"{n}[{i}]")
        assert unseen.value.reason == "unseen_category" and message in unseen.value.message


def test_texts_training_read_as_missing_are_missing_values_in_a_request(config, tmp_path):
    """data.na_values: training read '?' as a missing value; a client sending rows of the same
    export got 422 for it, and the drift job would have taken it for a new category."""
    from dataclasses import replace

    marked = tmp_path / "marked"
    shutil.copytree(config.model_dir, marked)
    metadata = json.loads((marked / "model.json").read_text())
    metadata["features"]["missing_values"] = ["?", "unknown"]
    (marked / "model.json").write_text(json.dumps(metadata))
    app = create_app(replace(config, model_dir=marked, prediction_log=tmp_path / "log.jsonl", prediction_log_rate=1.0))
    client = app.test_client()
    sent = client.post("/predict", json=body_with(contract=" ? ", age="unknown"))
    assert sent.status_code == 200, sent.json
    missing = client.post("/predict", json=body_with(contract=None, age=None))
    assert sent.json["predictions"] == missing.json["predictions"]
    assert_documented(app, "POST", "/predict", sent)
    assert json.loads((tmp_path / "log.jsonl").read_text().splitlines()[0])["inputs"]["age"] == "unknown"  # as sent
    v2 = client.post("/v2/models/slipway/infer", json={"inputs": tensors([{**VALID, "contract": "?"}])})
    assert v2.status_code == 200
    request = {**VALID, "age": "?", "contract": "?"}
    Draft202012Validator(app.test_client().get("/openapi.json").json["components"]["schemas"]["Instance"]).validate(request)
    assert "the texts ['?', 'unknown'] are missing values too (data.na_values)" in \
        client.get("/openapi.json").json["info"]["description"]
    assert "Missing values: null or blank text, or any of\n?, unknown" in client.get("/").get_data(as_text=True)
    assert client.post("/predict", json=body_with(age="x")).json["error"]["reason"] == "wrong_type"


def test_a_number_sent_as_text_is_read_as_ingest_read_it(app, client):
    """A client that reads the team's CSV as training did gets a column of numbers with a blank in it
    (a new customer's TotalCharges) as text: " " and "39". Training read them as missing and 39; a
    client sending those rows got 422. Text that writes no number is still refused, naming how to write one."""
    blank = client.post("/predict", json=body_with(age=" ", tenure_months=""))
    assert blank.status_code == 200, blank.json
    assert blank.json["predictions"] == client.post("/predict", json=body_with(age=None, tenure_months=None)).json[
        "predictions"]
    as_text = client.post("/predict", json=body_with(age=" 39 ", monthly_charges="70.5e0"))
    assert as_text.json["predictions"] == client.post("/predict", json=body_with(age=39, monthly_charges=70.5)).json[
        "predictions"]
    for text in ["39 years", "12.", "inf", "1_000", "\u0663"]:  # the last an Arabic-Indic 3: digits are 0-9
        refused = client.post("/predict", json=body_with(age=text)).json["error"]
        assert refused == {**refused, "reason": "wrong_type", "field": "instances[0].age",
                           "message": f"expected a number (or its text, such as '-1234.5') or null, got {text!r}"}
    refused = client.post("/predict", json=body_with(age="1e999")).json["error"]
    assert (refused["reason"], refused["message"].split(" is")[0]) == ("non_finite", "'1e999'")
    # The OpenAPI description says so too: a client that checks its requests against it sends these.
    instance = Draft202012Validator(client.get("/openapi.json").json["components"]["schemas"]["Instance"])
    instance.validate(body_with(age=" ", tenure_months="", contract=" \t")["instances"][0])
    instance.validate(body_with(age=" 39 ", monthly_charges="70.5e0")["instances"][0])
    assert client.post("/predict", json=body_with(contract=" \t")).status_code == 200
    assert not instance.is_valid(body_with(age="39 years")["instances"][0])
    assert not instance.is_valid(body_with(age="\u0663")["instances"][0])
    assert "Missing values: null or blank text, in any input." in client.get("/").get_data(as_text=True)


def test_unseen_categories_can_be_treated_as_missing(config):
    from dataclasses import replace

    client = create_app(replace(config, unseen_categories="missing")).test_client()
    assert 'slipway_unseen_categories_total{feature="contract"} 0.0' in client.get("/metrics").get_data(as_text=True)
    assert client.post("/predict", json=body_with(contract="lifetime")).status_code == 200
    assert metric(client, "slipway_unseen_categories_total", feature="contract") == 1


def test_inputs_the_model_does_not_take_can_be_dropped_while_clients_and_model_change(config, caplog):
    """A model that gains or loses an input breaks its clients under the strict policy in one order
    or the other: those that send the new input are refused by the old model, those that send the
    old one by the new. With ignore, either side can go first; a counter says when they are done."""
    from dataclasses import replace

    strict = create_app(config).test_client()
    app_log = logging.getLogger(APP_LOGGER)
    app_log.addHandler(caplog.handler)  # the app's logger writes its own JSON lines, not to the root's
    try:
        lenient_app = create_app(replace(config, unknown_features="ignore"))
    finally:
        app_log.removeHandler(caplog.handler)
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        "SLIPWAY_UNKNOWN_FEATURES=ignore: inputs the model does not take are dropped, not refused; "
        "set it back to reject once the clients send the model's inputs"]
    lenient = lenient_app.test_client()
    # What SlipwayUnknownInputsIgnoredUnneeded reads: which policy each server runs.
    assert metric(lenient, "slipway_input_policy", unknown_features="ignore", unseen_categories="reject") == 1
    assert metric(strict, "slipway_input_policy", unknown_features="reject", unseen_categories="reject") == 1
    assert metric(strict, "slipway_input_policy", unknown_features="ignore") == 0
    instances = churn_instances(3)
    extended = [{**instance, "legacy_score": 0.5, "channel": "web"} for instance in instances]
    assert strict.post("/predict", json={"instances": extended}).json["error"]["reason"] == "unknown_feature"
    answered = lenient.post("/predict", json={"instances": extended})
    assert answered.status_code == 200
    assert answered.json == strict.post("/predict", json={"instances": instances}).json
    assert_documented(lenient_app, "POST", "/predict", answered)
    Draft202012Validator(lenient.get("/openapi.json").json["components"]["schemas"]["Instance"]).validate(extended[0])
    assert "features the model does not take: ignore" in lenient.get("/openapi.json").json["info"]["description"]
    v2 = tensors(instances) + [{"name": "legacy_score", "shape": [3], "datatype": "BYTES", "data": ["a", "b", "c"]}]
    inferred = lenient.post("/v2/models/slipway/infer", json={"inputs": v2})
    assert inferred.status_code == 200, inferred.json
    assert inferred.json["outputs"] == strict.post("/v2/models/slipway/infer",
                                                    json={"inputs": tensors(instances)}).json["outputs"]
    assert metric(lenient, "slipway_ignored_inputs_total") == 2  # requests, not names
    # A missing input is still refused, named with the name the request used for it.
    renamed = [{k if k != "plan_tier" else "plan-tier": v for k, v in instance.items()} for instance in instances]
    refused = lenient.post("/predict", json={"instances": renamed}).json["error"]
    assert refused["reason"] == "missing_feature" and "(the instance names it 'plan-tier'" in refused["message"]
    without = [t if t["name"] != "plan_tier" else {**t, "name": "plan-tier"} for t in tensors(instances)]
    refused = lenient.post("/v2/models/slipway/infer", json={"inputs": without}).json
    assert refused["reason"] == "missing_feature"
    assert refused["error"] == "missing input 'plan_tier' (the request names it 'plan-tier'; names are exact)"
    assert metric(lenient, "slipway_ignored_inputs_total") == 2
    with pytest.raises(ParamsError, match="SLIPWAY_UNKNOWN_FEATURES must be one of"):
        ServingConfig.from_env({"SLIPWAY_UNKNOWN_FEATURES": "drop"})


def test_model_metrics(client, reference_model):
    client.post("/predict", json={"instances": churn_instances(7)})
    version = reference_model.version
    assert metric(client, "slipway_predictions_total", model_version=version) == 7
    assert metric(client, "slipway_prediction_score_count", model_version=version) == 7
    assert metric(client, "slipway_model_info", model_version=version, track="stable",
                  model_name="slipway") == 1
    assert metric(client, "slipway_model_ready") == 1
    assert metric(client, "slipway_model_trained_timestamp_seconds") > 1.7e9
    for feature in ("age", "contract", "tenure_years"):
        assert metric(client, "slipway_feature_bin_total", feature=feature) == 7
    assert metric(client, "slipway_http_request_total", status="200") >= 1
    assert metric(client, "slipway_http_request_duration_seconds_count") >= 1


def test_internal_errors_are_500_with_a_request_id_and_no_internals(app, client, monkeypatch):
    model = app.extensions["slipway"].model

    def explode(columns):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(model, "predict_proba", explode)
    response = client.post("/predict", json=body_with(), headers={"X-Request-ID": "req-9"})
    assert response.status_code == 500
    assert response.json == {"error": {"reason": "internal_error", "field": None, "message":
                             "internal error; quote the request id when reporting it"},
                             "request_id": "req-9"}


def test_a_loaded_model_hands_the_memory_its_loading_freed_back_to_the_system(bundle_dir, monkeypatch):
    from slipway.serving import model as served

    calls = []
    monkeypatch.setattr(served, "release_freed_memory", lambda: calls.append("trimmed"))
    assert served.load(bundle_dir)[0] is not None and calls == ["trimmed"]
    assert served.load(bundle_dir.parent / "nothing-here") == (None, ANY) and calls == ["trimmed"]


FREED_BUT_HELD = """
import ctypes
from slipway.serving.model import release_freed_memory
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 // 2 ** 20
blocks = [libc.malloc(4096) for _ in range(50_000)]  # 200 MiB of small blocks on the heap
for block in blocks:
    ctypes.memset(block, 1, 4096)
for block in blocks[:-1]:  # the last one keeps the heap from shrinking at its top by itself
    libc.free(block)
before = rss()
release_freed_memory()
print(before, rss())
"""


def test_memory_freed_on_the_heap_is_handed_back():
    before, after = map(int, subprocess.run([sys.executable, "-c", FREED_BUT_HELD], capture_output=True, text=True,
                                            check=True).stdout.split())
    assert before - after > 150  # MiB


@pytest.mark.parametrize("damage", ["missing", "tampered", "garbage-json", "no-classes", "bad-reference"])
def test_a_bad_bundle_leaves_the_server_up_but_not_ready(tmp_path, bundle_dir, damage):
    """The last two: a model.json edited by hand. Without classes the app factory itself raised
    (KeyError, so every worker crashed on start); a reference entry without its kind, likewise."""
    import shutil

    target = tmp_path / "models"
    if damage != "missing":
        shutil.copytree(bundle_dir, target)
    if damage == "tampered":
        with open(target / "model.skops", "r+b") as handle:
            handle.seek(100)
            handle.write(b"\0\0\0\0")
    if damage == "garbage-json":
        (target / "model.json").write_text("{")
    if damage in ("no-classes", "bad-reference"):
        meta = json.loads((target / "model.json").read_text())
        if damage == "no-classes":
            del meta["classes"]
        else:
            meta["reference"]["age"] = {}
        (target / "model.json").write_text(json.dumps(meta))
    client = create_app(ServingConfig(model_dir=target)).test_client()
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json["ready"] is False
    assert {"missing": "not found", "tampered": "does not match model.json", "garbage-json": "not valid JSON",
            "no-classes": "model.json: classes is missing",
            "bad-reference": "model.json: reference must be an object of distributions"}[damage] in ready.json["reason"]
    predict = client.post("/predict", json=body_with())
    assert predict.status_code == 503 and predict.json["error"]["reason"] == "model_not_ready"
    assert client.get("/").status_code == 200
    assert metric(client, "slipway_model_ready") == 0


def test_model_card(client, reference_model):
    page = client.get("/").get_data(as_text=True)
    assert reference_model.version in page
    assert reference_model.metadata["sha256"] in page
    assert "PASS" in page and "0.8123" in page
    assert "month-to-month" in page and "positive <code>1</code>" in page
    assert "a request may send the id <code>customer_id</code>" in page
    assert f"data until {reference_model.metadata['training']['data_until']}" in page
    check = reference_model.metadata["inference"]
    assert (f"onnxruntime, at most\n{check['max_abs_difference']:.1e} from scikit-learn on {check['rows_checked']} "
            "training rows") in page
    params = reference_model.metadata["params"]
    assert "<pre>" + json.dumps(params, indent=2) in page.replace("&#34;", '"')  # readable, in params order


def test_the_model_card_and_openapi_show_a_request_that_works(app, client):
    page = html.unescape(client.get("/").get_data(as_text=True))
    command = shlex.split(re.search(r"<pre>(curl .*?)</pre>", page, re.S).group(1))
    assert command[command.index("-s") + 1] == "http://localhost/predict"
    body = json.loads(command[command.index("-d") + 1])
    instance = client.get("/openapi.json").json["components"]["schemas"]["Instance"]["examples"][0]
    assert body == {"instances": [instance]}
    assert client.post("/predict", json=body).status_code == 200
    assert instance["contract"] == "month-to-month"  # the most common contract in training
    assert isinstance(instance["num_products"], int)  # an integral median reads as one


def test_an_input_without_a_reference_is_null_in_the_example(bundle_dir):
    from slipway.serving.model import ServedModel

    model = ServedModel(bundle.load(bundle_dir))
    del model.metadata["reference"]["age"], model.metadata["reference"]["contract"]
    example = model.example_instance()
    assert example["age"] is None and example["contract"] is None
    assert set(example) == set(model.spec.inputs)


@pytest.mark.parametrize(("report", "content", "shown"), [
    ("metrics.json", [0.8], "No metrics with this model."),
    ("metrics.json", {"roc_auc": "0.9", "accuracy": 0.8, "f1": True, "rows": [1]}, "<td>accuracy</td>"),
    ("gate.json", "pass", "No gate report with this model."),
    ("gate.json", {"verdict": "fail", "failed": 3, "models": "x"}, "FAIL"),
    ("model.json", {"data": {"raw": "x"}}, "data until"),
    ("model.json", {"git_uncommitted": ["params.yaml"]}, "with uncommitted changes to params.yaml"),
])
def test_the_model_card_shows_what_it_can_of_a_report_that_is_not_what_the_pipeline_writes(
        config, bundle_dir, tmp_path, report, content, shown):
    """Edited by hand, or from another version: each of these was a 500 where a person opens the server."""
    from dataclasses import replace

    bundle = tmp_path / "bundle"
    shutil.copytree(bundle_dir, bundle)
    if report == "model.json":
        metadata = json.loads((bundle / report).read_text())
        metadata.update(content)
        (bundle / report).write_text(json.dumps(metadata))
    else:
        (config.reports_dir / report).write_text(json.dumps(content))
    response = create_app(replace(config, model_dir=bundle)).test_client().get("/")
    assert response.status_code == 200 and shown in response.get_data(as_text=True)


def test_model_card_of_data_without_timestamps(config, bundle_dir, tmp_path):
    from dataclasses import replace

    untimed = tmp_path / "untimed"
    shutil.copytree(bundle_dir, untimed)
    metadata = json.loads((untimed / "model.json").read_text())
    metadata["training"]["data_until"] = None
    del metadata["features"]["id_column"]  # data.id_column: null, as such data most often has
    (untimed / "model.json").write_text(json.dumps(metadata))
    page = create_app(replace(config, model_dir=untimed)).test_client().get("/").get_data(as_text=True)
    rows = metadata["training"]["rows"]
    assert f"<td>{rows}</td>" in page and "None" not in page and "data until" not in page
    assert "may send the id" not in page


def test_openapi_describes_every_route(app, client):
    document = client.get("/openapi.json").json
    validate(document)
    routes = {rule.rule.replace("<", "{").replace(">", "}") for rule in app.url_map.iter_rules()
              if rule.endpoint != "static"}
    assert routes == set(document["paths"])
    instance = document["components"]["schemas"]["Instance"]
    assert instance["required"] == list(VALID)
    assert instance["properties"]["contract"]["anyOf"][0]["enum"][:3] == ["month-to-month", "one-year", "two-year"]


def test_every_answer_fits_the_openapi_description(app, client, reference_model, bundle_dir, tmp_path):
    version = reference_model.version
    infer = {"inputs": tensors(churn_instances(2))}
    asked = [("GET", path, {}) for path in ("/", "/healthz", "/readyz", "/metrics", "/openapi.json", "/v2",
                                            "/v2/health/live", "/v2/health/ready", "/v2/models/slipway",
                                            f"/v2/models/slipway/versions/{version}", "/v2/models/other",
                                            "/v2/models/slipway/ready", "/v2/models/slipway/versions/v0/ready")]
    asked += [("POST", "/predict", {"json": {"instances": churn_instances(3)}}),
              ("POST", "/v2/models/slipway/infer", {"json": infer}),
              ("POST", f"/v2/models/slipway/versions/{version}/infer", {"json": infer}),
              ("POST", "/v2/models/slipway/infer", {"json": {"inputs": [{"name": "age"}]}}),
              ("POST", "/v2/models/slipway/infer", {"json": {"inputs": tensors([{**VALID, "age": "x"}])}}),
              ("POST", "/v2/models/slipway/infer", {"data": "x", "content_type": "text/plain"})]
    statuses = set()
    for method, path, kwargs in asked:
        response = client.open(path, method=method, **kwargs)
        assert_documented(app, method, path, response)
        statuses.add(response.status_code)
    not_ready = create_app(ServingConfig(model_dir=tmp_path / "no-model"))
    for method, path, kwargs in asked:
        response = not_ready.test_client().open(path, method=method, **kwargs)
        assert_documented(not_ready, method, path, response)
        statuses.add(response.status_code)
    assert statuses == {200, 400, 404, 415, 422, 503}


def test_a_prediction_of_a_boolean_target_is_documented_with_its_labels():
    from jsonschema import ValidationError

    from slipway.serving.openapi import prediction_schema

    schema = prediction_schema(SimpleNamespace(classes=[False, True]))
    Draft202012Validator(schema).validate({"label": True, "probabilities": {"False": 0.25, "True": 0.75}})
    with pytest.raises(ValidationError):
        Draft202012Validator(schema).validate({"label": 1, "probabilities": {"False": 0.0, "True": 1.0}})


def test_prediction_log_samples_inputs_and_outputs(config, tmp_path):
    from dataclasses import replace

    log_path = tmp_path / "predictions.jsonl"
    client = create_app(replace(config, prediction_log=log_path, prediction_log_rate=1.0)).test_client()
    client.post("/predict", json={"instances": churn_instances(3)}, headers={"X-Request-ID": "r1"})
    lines = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert len(lines) == 3
    assert lines[0]["request_id"] == "r1" and lines[0]["inputs"] == churn_instances(3)[0]
    assert lines[0]["prediction"] in (0, 1) and len(lines[0]["probabilities"]) == 2


def test_the_id_column_is_taken_beside_the_inputs_and_kept_in_the_prediction_log(app, config, tmp_path):
    """So labels known later (did the customer churn?) can be joined to the predictions: with
    /predict, V2 named tensors and a V2 row-major tensor; the answer is the same as without it."""
    from dataclasses import replace

    log_path = tmp_path / "predictions.jsonl"
    client = create_app(replace(config, prediction_log=log_path, prediction_log_rate=1.0)).test_client()
    instances = churn_instances(3)
    with_ids = [{**row, "customer_id": key} for row, key in zip(instances[:2], ["C-1", 2], strict=True)]
    response = client.post("/predict", json={"instances": [*with_ids, instances[2]]})
    assert response.status_code == 200
    assert response.json == client.post("/predict", json={"instances": instances}).json
    assert_documented(app, "POST", "/predict", response)
    named = client.post("/v2/models/slipway/infer", json={"inputs": [
        *tensors(instances),
        {"name": "customer_id", "datatype": "BYTES", "shape": [3], "data": ["C-7", "C-8", "C-9"]}]})
    flat = [row[n] for row in instances for n in VALID]
    row_major = client.post("/v2/models/slipway/infer", json={"inputs": [
        {"name": "customer_id", "shape": [3, 1], "datatype": "INT64", "data": [[7], [8], [9]]},
        {"name": "input-0", "shape": [3, len(VALID)], "datatype": "BYTES", "data": flat}]})
    assert named.status_code == row_major.status_code == 200
    assert named.json["outputs"] == row_major.json["outputs"]
    logged = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert [line.get("id") for line in logged] == [
        {"customer_id": "C-1"}, {"customer_id": 2}, {"customer_id": None},  # /predict
        None, None, None,  # the same, without ids
        {"customer_id": "C-7"}, {"customer_id": "C-8"}, {"customer_id": "C-9"},
        {"customer_id": 7}, {"customer_id": 8}, {"customer_id": 9}]
    assert all("customer_id" not in line["inputs"] for line in logged)
    # JSON's 2.0 is the number 2: a client's pandas writes an integer id column holding a null so.
    # Logged as 2, it joins the label of id "2"; a float past the integers JSON is read with is refused.
    log_path.unlink()
    floats = [{**row, "customer_id": key} for row, key in zip(instances, [2.0, 1e19, None], strict=True)]
    assert client.post("/predict", json={"instances": floats}).status_code == 200
    assert [json.loads(line).get("id") for line in log_path.read_text().splitlines()] == [
        {"customer_id": 2}, {"customer_id": 10**19}, {"customer_id": None}]
    past = client.post("/predict", json={"instances": [{**instances[0], "customer_id": float(2**64)}]}).json["error"]
    assert past["message"] == ("the id is an integer past 64 bits, which is read as the number 1.84467e+19: send it "
                               "as a string")
    unknown = client.post("/predict", json={"instances": [{**with_ids[0], "customer": "C-1"}]})
    assert unknown.json["error"]["message"].endswith("and, beside them, the id 'customer_id'")
    meta = client.get("/v2/models/slipway").json
    assert meta["parameters"]["id_input"]["name"] == "customer_id"
    assert "customer_id" not in [i["name"] for i in meta["inputs"]]


def test_the_prediction_log_keeps_inputs_orjson_cannot_write(config, tmp_path):
    """An unseen category taken as missing is logged as sent, a lone surrogate too."""
    from dataclasses import replace

    log_path = tmp_path / "predictions.jsonl"
    client = create_app(replace(config, prediction_log=log_path, prediction_log_rate=1.0,
                                unseen_categories="missing")).test_client()
    body = json.dumps(body_with(contract="\ud800"))
    assert client.post("/predict", data=body, content_type="application/json").status_code == 200
    logged = json.loads(log_path.read_text())["inputs"]
    assert logged["contract"] == "\ud800"


def test_a_prediction_log_that_cannot_be_written_drops_lines_not_predictions(config, caplog):
    """A full disk (/dev/full answers every write with ENOSPC): 200s, the loss counted, one log line."""
    from dataclasses import replace

    client = create_app(replace(config, prediction_log=Path("/dev/full"), prediction_log_rate=1.0)).test_client()
    with caplog.at_level("ERROR", logger="slipway.serving"):
        for _ in range(3):
            assert client.post("/predict", json={"instances": churn_instances(2)}).status_code == 200
    assert metric(client, "slipway_prediction_log_dropped_lines_total") == 6
    complaints = [r.getMessage() for r in caplog.records if "prediction log /dev/full" in r.getMessage()]
    assert len(complaints) == 1 and "No space left on device" in complaints[0]


def log_some(log: PredictionLog, rows: int, request_id: str = "r") -> None:
    log.write(request_id, "v1", {"x": list(range(rows))}, [0] * rows, [[1.0, 0.0]] * rows)


def logged_lines(directory: Path) -> list[dict]:
    return [json.loads(line) for path in sorted(directory.iterdir()) for line in path.read_text().splitlines()]


def test_the_prediction_log_rotates_and_keeps_its_backups(tmp_path):
    """Bounded: past max_bytes the file is renamed, the oldest beyond `backups` deleted."""
    log = PredictionLog(tmp_path / "predictions.jsonl", 1.0, max_bytes=1000, backups=2)
    for _ in range(40):
        log_some(log, 3)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 3 and "predictions.jsonl" in names
    rotated = [n for n in names if n != "predictions.jsonl"]
    assert all(re.fullmatch(r"predictions\.\d{8}T\d{12}\.jsonl", n) for n in rotated)
    assert all((tmp_path / n).stat().st_size < 1000 + 600 for n in rotated)


def test_rotated_logs_a_shipper_compressed_count_against_the_backups(tmp_path):
    log = PredictionLog(tmp_path / "predictions.jsonl", 1.0, max_bytes=1000, backups=2)
    for _ in range(60):
        log_some(log, 3)
        for rotated in tmp_path.glob("predictions.*T*.jsonl"):  # the shipper: gzip, then remove
            rotated.with_name(rotated.name + ".gz").write_bytes(gzip.compress(rotated.read_bytes()))
            rotated.unlink()
    log_some(log, 1)  # the last rotation left no current file yet
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 3 and names[-1] == "predictions.jsonl"
    assert all(re.fullmatch(r"predictions\.\d{8}T\d{12}\.jsonl\.gz", n) for n in names[:-1])


def test_workers_sharing_the_prediction_log_lose_no_line_across_rotations(tmp_path):
    path = tmp_path / "predictions.jsonl"
    workers = [PredictionLog(path, 1.0, max_bytes=2000, backups=1000) for _ in range(2)]
    for i in range(60):
        log_some(workers[i % 2], 2, request_id=f"r{i}")
    lines = logged_lines(tmp_path)
    assert len(lines) == 120 and {line["request_id"] for line in lines} == {f"r{i}" for i in range(60)}
    assert len(list(tmp_path.iterdir())) > 3


def test_threads_sharing_a_prediction_log_lose_no_line_across_rotations(tmp_path):
    """gthread workers: one thread reopening the rotated file must not close the descriptor another
    thread is writing through."""
    import threading

    from prometheus_client import CollectorRegistry, Counter

    dropped = Counter("dropped", "", registry=CollectorRegistry())
    log = PredictionLog(tmp_path / "predictions.jsonl", 1.0, dropped=dropped, max_bytes=1500, backups=100_000)
    threads = [threading.Thread(target=lambda: [log_some(log, 1) for _ in range(300)]) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert dropped._value.get() == 0 and len(logged_lines(tmp_path)) == 1800


def test_a_rotation_that_fails_leaves_the_log_writing(tmp_path, monkeypatch, caplog):
    """A filesystem without locks (or a directory that refuses the rename): one complaint, no 500."""
    import fcntl

    def no_locks(fd, operation):
        raise OSError(37, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    log = PredictionLog(tmp_path / "predictions.jsonl", 1.0, max_bytes=100, backups=1)
    with caplog.at_level("ERROR", logger="slipway.serving"):
        for _ in range(3):
            log_some(log, 1)
    assert len((tmp_path / "predictions.jsonl").read_text().splitlines()) == 3
    assert [r.getMessage() for r in caplog.records] == [
        f"prediction log {tmp_path / 'predictions.jsonl'}: rotation failed ([Errno 37] No locks available); writing on"]


def test_the_prediction_log_follows_an_outside_rotation(tmp_path):
    path = tmp_path / "predictions.jsonl"
    log = PredictionLog(path, 1.0, max_bytes=0)
    log_some(log, 1)
    path.rename(tmp_path / "predictions.1.jsonl")
    log_some(log, 2)
    assert len(path.read_text().splitlines()) == 2
    path.unlink()
    log_some(log, 1)
    assert len(path.read_text().splitlines()) == 1


def test_a_write_cut_short_breaks_one_line_only(tmp_path, monkeypatch):
    """A nearly full disk writes part of the data: the lost lines are counted, and the next write
    (whichever worker's) starts on a new line, so the log stays one JSON object per line."""
    from prometheus_client import CollectorRegistry, Counter

    dropped = Counter("dropped", "", registry=CollectorRegistry())
    path = tmp_path / "predictions.jsonl"
    log, other_worker = (PredictionLog(path, 1.0, dropped=dropped) for _ in range(2))
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, data[:len(data) // 2 + 3]))
    log_some(log, 4)
    monkeypatch.setattr(os, "write", real_write)
    log_some(other_worker, 1, request_id="after")
    lines = path.read_text().splitlines()
    assert dropped._value.get() == 2 and len(lines) == 4
    assert [json.loads(line)["request_id"] for line in lines[:2] + lines[3:]] == ["r", "r", "after"]
    with pytest.raises(ValueError):
        json.loads(lines[2])


def test_config_from_environment_is_checked():
    config = ServingConfig.from_env({"SLIPWAY_MAX_BATCH": "7", "SLIPWAY_TRACK": "canary"})
    assert config.max_batch == 7 and config.track == "canary"
    with pytest.raises(Exception, match="SLIPWAY_MAX_BATCH='x' is not an integer"):
        ServingConfig.from_env({"SLIPWAY_MAX_BATCH": "x"})
    with pytest.raises(Exception, match="SLIPWAY_UNSEEN_CATEGORIES must be one of"):
        ServingConfig.from_env({"SLIPWAY_UNSEEN_CATEGORIES": "ignore"})
    for variable, value, message in (("PREDICTION_LOG_BACKUPS", "-1", "must be at least 0, got -1"),
                                     ("MAX_BODY_BYTES", "100", "must be at least 1024, got 100"),
                                     ("MAX_BATCH", "0", "must be at least 1, got 0"),
                                     ("PREDICTION_LOG_RATE", "nan", r"must be within \[0, 1\], got nan"),
                                     ("TRACK", "prod", r"must be one of \('stable', 'canary'\), got 'prod'")):
        with pytest.raises(ParamsError, match=f"^SLIPWAY_{variable} {message}$"):
            ServingConfig.from_env({f"SLIPWAY_{variable}": value})
    assert ServingConfig.from_env({"SLIPWAY_MODEL_NAME": "churn-v2.1_eu"}).model_name == "churn-v2.1_eu"
    for name in ("churn/eu", "churn eu", ".hidden"):  # /v2/models/churn/eu/infer would never match
        with pytest.raises(Exception, match=f"SLIPWAY_MODEL_NAME must be letters, .*got '{re.escape(name)}'"):
            ServingConfig.from_env({"SLIPWAY_MODEL_NAME": name})


def test_the_server_does_not_import_the_pipeline_tooling():
    code = ("import sys, slipway.serving.wsgi; "
            "heavy = [m for m in ('deepchecks', 'dvc', 'boto3', 'onnx') if m in sys.modules]; "
            "print(heavy); sys.exit(bool(heavy))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={"SLIPWAY_MODEL_DIR": "/nonexistent", "PATH": ""})
    assert result.returncode == 0, result.stdout + result.stderr


# --- Open Inference Protocol (V2) --------------------------------------------------------------


def tensors(instances):
    names = list(instances[0])
    return [{"name": n, "shape": [len(instances)],
             "datatype": "BYTES" if isinstance(instances[0][n], str) else "FP64",
             "data": [row[n] for row in instances]} for n in names]


def test_v2_metadata_and_model_readiness(client, reference_model):
    meta = client.get("/v2/models/slipway").json
    assert meta["name"] == "slipway" and meta["versions"] == [reference_model.version]
    assert [i["name"] for i in meta["inputs"]] == list(VALID)
    assert {i["name"]: i["datatype"] for i in meta["inputs"]}["contract"] == "BYTES"
    assert meta["outputs"] == [{"name": "label", "datatype": "INT64", "shape": [-1]},
                               {"name": "probabilities", "datatype": "FP64", "shape": [-1, 2]}]
    assert client.get("/v2/models/slipway/ready").json == {"name": "slipway", "ready": True}
    assert client.get(f"/v2/models/slipway/versions/{reference_model.version}/ready").status_code == 200
    missing = client.get("/v2/models/other")
    assert missing.status_code == 404 and "is not served here" in missing.json["error"]


@pytest.mark.parametrize(("classes", "datatype"), [
    ([0, 1], "INT64"), ([False, True], "BOOL"), ([0.0, 0.5, 1.0], "FP64"), (["no", "yes"], "BYTES")])
def test_the_label_tensor_has_the_classes_datatype(classes, datatype):
    """A target of booleans (a flag column) answers BOOL, not INT64: a V2 client decodes by it."""
    assert api.label_datatype(classes) == datatype


def test_v2_infer_per_feature_tensors_matches_predict(client):
    instances = churn_instances(4)
    v2 = client.post("/v2/models/slipway/infer", json={"id": "q1", "inputs": tensors(instances)})
    assert v2.status_code == 200
    body = v2.json
    assert body["id"] == "q1" and body["model_name"] == "slipway"
    label, proba = body["outputs"]
    assert label["name"] == "label" and label["shape"] == [4] and label["datatype"] == "INT64"
    assert proba["shape"] == [4, 2] and len(proba["data"]) == 8
    predict = client.post("/predict", json={"instances": instances}).json["predictions"]
    assert label["data"] == [p["label"] for p in predict]
    assert proba["data"][1::2] == [p["probabilities"]["1"] for p in predict]


def test_v2_infer_row_major_tensor_and_output_selection(client):
    instances = churn_instances(3)
    flat = [row[n] for row in instances for n in VALID]
    body = {"inputs": [{"name": "input-0", "shape": [3, len(VALID)], "datatype": "BYTES", "data": flat}],
            "outputs": [{"name": "probabilities"}]}
    response = client.post("/v2/models/slipway/infer", json=body)
    assert response.status_code == 200
    assert [o["name"] for o in response.json["outputs"]] == ["probabilities"]
    per_feature = client.post("/v2/models/slipway/infer", json={"inputs": tensors(instances)})
    assert response.json["outputs"][0]["data"] == per_feature.json["outputs"][1]["data"]


def test_v2_binary_tensor_extension(client):
    """The request tritonclient sends by default: a JSON header, then raw little-endian tensors."""
    instances = churn_instances(2)
    header = {"inputs": []}
    payload = b""
    for tensor in tensors(instances):
        if tensor["datatype"] == "BYTES":
            raw = b"".join(len(v.encode()).to_bytes(4, "little") + v.encode() for v in tensor["data"])
        else:
            raw = np.array([np.nan if v is None else v for v in tensor["data"]], dtype="<f8").tobytes()
        header["inputs"].append({k: tensor[k] for k in ("name", "shape", "datatype")}
                                | {"parameters": {"binary_data_size": len(raw)}})
        payload += raw
    head = json.dumps(header).encode()
    response = client.post("/v2/models/slipway/infer", data=head + payload,
                           headers={"Inference-Header-Content-Length": str(len(head)),
                                    "Content-Type": "application/octet-stream"})
    assert response.status_code == 200, response.json
    expected = client.post("/v2/models/slipway/infer", json={"inputs": tensors(instances)}).json
    assert response.json["outputs"] == expected["outputs"]


def test_v2_numbers_sent_as_text_in_bytes_tensors_answer_as_numbers(client):
    """tritonclient encodes a DataFrame's rows (an object array) as one BYTES tensor, each value its text,
    and a column of numbers with a blank in it as text per input too: both read as the numbers they write."""
    instances = churn_instances(2)
    flat = [str(row[n]) for row in instances for n in VALID]
    raw = b"".join(len(v.encode()).to_bytes(4, "little") + v.encode() for v in flat)
    header = {"name": "input-0", "shape": [2, len(VALID)], "datatype": "BYTES",
              "parameters": {"binary_data_size": len(raw)}}
    as_text = client.post("/v2/models/slipway/infer", **binary_request(header, raw))
    typed = client.post("/v2/models/slipway/infer", json={"inputs": tensors(instances)})
    assert as_text.status_code == 200, as_text.json
    assert as_text.json["outputs"] == typed.json["outputs"]
    per_input = [{**t, "datatype": "BYTES", "data": [str(v) for v in t["data"]]} if t["datatype"] == "FP64" else t
                 for t in tensors(instances)]
    assert client.post("/v2/models/slipway/infer", json={"inputs": per_input}).json["outputs"] == typed.json["outputs"]


def binary_request(tensor: dict, raw: bytes, header_length: str | None = None) -> dict:
    """A binary-extension request: the JSON header with this one tensor, then ``raw``."""
    head = json.dumps({"inputs": [tensor]}).encode()
    return {"data": head + raw, "headers": {"Inference-Header-Content-Length": header_length or str(len(head)),
                                            "Content-Type": "application/octet-stream"}}


@pytest.mark.parametrize(("request_kwargs", "message", "field"), [
    (binary_request({"name": "age", "shape": [1], "datatype": "FP64", "parameters": {"binary_data_size": 5}},
                    b"12345"), "binary_data_size 5 is not a whole number of FP64 elements (8 bytes each)", "inputs[0]"),
    (binary_request({"name": "age", "shape": [1], "datatype": "FP64", "parameters": {"binary_data_size": "8"}},
                    b"12345678"), "binary_data_size must be a byte count, got '8'",
     "inputs[0].parameters.binary_data_size"),
    (binary_request({"name": "region", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": 8}},
                    (100).to_bytes(4, "little") + b"nort"), "a BYTES element runs past binary_data_size", "inputs[0]"),
    (binary_request({"name": "age", "shape": [1], "datatype": "FP64"}, b"", header_length="999"),
     "Inference-Header-Content-Length '999' is not a byte count within the", None),
    ({"data": b"[1]", "headers": {"Inference-Header-Content-Length": "3"}},
     'expected a JSON object {"inputs": [...]}', None),
], ids=["partial-element", "size-not-a-number", "bytes-past-the-end", "header-length", "header-not-object"])
def test_v2_bad_binary_requests_are_4xx_naming_the_problem(client, request_kwargs, message, field):
    """Each of these was a 500 before: numpy, int() or dict access failing on the request."""
    response = client.post("/v2/models/slipway/infer", **request_kwargs)
    assert response.status_code == 400
    assert response.json["reason"] == "invalid_body" and response.json["field"] == field
    assert message in response.json["error"]


def test_v2_deeply_nested_data_is_read_row_major(client):
    instances = churn_instances(1)
    row = [instances[0][name] for name in VALID]
    nested = row
    for _ in range(900):  # near Python's recursion limit: flattening must not recurse per level
        nested = [nested]
    flat = {"name": "rows", "shape": [1, len(row)], "datatype": "BYTES"}
    response = client.post("/v2/models/slipway/infer", json={"inputs": [{**flat, "data": nested}]})
    assert response.status_code == 200, response.json
    expected = client.post("/v2/models/slipway/infer", json={"inputs": [{**flat, "data": row}]}).json
    assert response.json["outputs"] == expected["outputs"]


def test_v2_outputs_must_be_a_list(client):
    response = client.post("/v2/models/slipway/infer", json={"inputs": tensors(churn_instances(1)),
                                                             "outputs": "label"})
    assert response.status_code == 400 and response.json["field"] == "outputs"
    assert response.json["error"] == 'outputs must be a list of {"name": ...}'


@pytest.mark.parametrize(
    ("mutate", "status", "reason", "field"),
    [
        (lambda t: t[:-1], 422, "missing_feature", "inputs[plan_tier]"),
        (lambda t: t + [{**t[0], "name": "bogus"}], 422, "unknown_feature", "inputs[bogus]"),
        (lambda t: t[:-1] + [{**t[-1], "name": "plan-tier"}], 422, "unknown_feature", "inputs[plan-tier]"),
        (lambda t: [{**t[0], "shape": [5]}] + t[1:], 400, "invalid_body", "inputs[0].data"),
        (lambda t: [{**t[0], "datatype": "BYTES", "data": ["12 months"]}] + t[1:], 422, "wrong_type",
         "inputs[tenure_months].data[0]"),
        (lambda t: [{**t[0], "datatype": "FP99"}] + t[1:], 400, "invalid_body", "inputs[0].datatype"),
        (lambda t: [{**t[0], "data": ["x"]}] + t[1:], 422, "wrong_type", "inputs[tenure_months].data[0]"),
        (lambda t: [{**t[0], "shape": [0], "data": []}] + [{**x, "shape": [0], "data": []} for x in t[1:]],
         400, "empty_batch", "inputs"),
        (lambda t: [{"name": "x"}], 400, "invalid_body", "inputs[0]"),
        (lambda t: [{**x, "datatype": "INT64", "data": [3]} if x["name"] == "contract" else x for x in t],
         422, "unseen_category", "inputs[contract].data[0]"),
        (lambda t: [{**t[0], "name": ["x"]}] + t[1:], 400, "invalid_body", "inputs[0].name"),
        (lambda t: [{**t[0], "datatype": ["FP64"]}] + t[1:], 400, "invalid_body", "inputs[0].datatype"),
        (lambda t: [{**t[0], "shape": [True]}] + t[1:], 400, "invalid_body", "inputs[0].shape"),
        (lambda t: t + [{"name": "customer_id", "shape": [1], "datatype": "FP64", "data": [1.0]}],
         422, "wrong_type", "inputs[customer_id].datatype"),
        (lambda t: t + [{"name": "customer_id", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]}],
         422, "invalid_shape", "inputs[customer_id].shape"),
        (lambda t: t + [{"name": "customer_id", "shape": [1], "datatype": "INT64", "data": [True]}],
         422, "wrong_type", "inputs[customer_id].data[0]"),
    ],
    ids=["missing", "unknown", "misnamed", "shape-mismatch", "datatype", "bad-datatype", "wrong-value", "empty",
         "incomplete", "number-for-category", "name-not-string", "datatype-not-string", "boolean-size",
         "float-id", "id-per-other-rows", "boolean-id"],
)
def test_v2_bad_requests_name_the_tensor(client, mutate, status, reason, field):
    response = client.post("/v2/models/slipway/infer", json={"inputs": mutate(tensors(churn_instances(1)))})
    assert response.status_code == status
    assert response.json["reason"] == reason and response.json["field"] == field
    assert isinstance(response.json["error"], str) and response.json["error"]
    if field == "inputs[plan-tier]":
        assert "unknown input 'plan-tier' (the model's 'plan_tier'? names are exact)" in response.json["error"]
    if reason == "unknown_feature":  # what else a request may send
        assert response.json["error"].endswith("'plan_tier'] and, beside them, the id 'customer_id'")


@pytest.mark.parametrize(("extra", "field", "message"), [
    ({"id": 5}, "id", "id must be a string, got 5"),
    ({"parameters": [1]}, "parameters", "parameters must be an object, got [1]"),
    ({"inputs": [{**tensors(churn_instances(1))[0], "parameters": "x"}]}, "inputs[0].parameters",
     "parameters must be an object, got 'x'"),
], ids=["id", "parameters", "tensor-parameters"])
def test_v2_id_and_parameters_are_as_the_protocol_types_them(client, extra, field, message):
    response = client.post("/v2/models/slipway/infer", json={"inputs": tensors(churn_instances(1)), **extra})
    assert response.status_code == 400 and response.json["field"] == field
    assert response.json["error"] == message


def test_v2_a_null_id_is_no_id(client):
    response = client.post("/v2/models/slipway/infer", json={"id": None, "inputs": tensors(churn_instances(1))})
    assert response.status_code == 200 and "id" not in response.json


# Any JSON a client may send: values a feature might be given in error, nested in lists and objects.
ODD_TEXT = st.sampled_from(["", " ", "NaN", "inf", "-Infinity", "1e309", " 5 ", "1,5", "١٢٣", "?", "N/A", "\x00",
                            "North", " month-to-month ", "MONTH TO MONTH", "a" * 3000])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-2**70, 2**70), st.floats(), ODD_TEXT,
                    st.text(max_size=12))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                         max_size=3), max_leaves=6)
NAMES = (st.sampled_from(list(VALID)) | st.sampled_from(["Plan Tier", "", " age", "contract.type", "customer_id"])
         | st.text(max_size=8))


@st.composite
def damaged(draw, valid: dict, keys=NAMES, values=JSON) -> dict:
    """``valid`` with a few keys set to odd values, dropped or added."""
    damaged = dict(valid)
    for _ in range(draw(st.integers(0, 3))):
        key = draw(keys)
        if draw(st.booleans()):
            damaged[key] = draw(values)
        else:
            damaged.pop(key, None)
    return damaged


def predict_bodies():
    return (st.builds(lambda rows: {"instances": rows}, st.lists(damaged(VALID), max_size=4))
            | st.builds(lambda instances: {"instances": instances}, JSON) | JSON)


def infer_bodies():
    tensor = st.fixed_dictionaries({}, optional={
        "name": NAMES, "datatype": st.sampled_from(["FP64", "FP32", "INT64", "BYTES", "BOOL", "FP16"]) | JSON,
        "shape": st.lists(st.integers(-1, 3), max_size=3) | JSON, "data": st.lists(SCALARS, max_size=4) | JSON,
        "parameters": JSON})
    valid = tensors(churn_instances(1))
    inputs = st.lists(st.integers(0, len(valid) - 1), max_size=3, unique=True).flatmap(
        lambda damaged_at: st.tuples(*[tensor for _ in damaged_at]).map(
            lambda odd: [odd[damaged_at.index(i)] if i in damaged_at else t for i, t in enumerate(valid)]))
    return (st.builds(lambda given, extra: {"inputs": given, **extra}, inputs,
                      damaged({}, st.sampled_from(["id", "outputs", "parameters"])))
            | st.builds(lambda given: {"inputs": given}, JSON) | JSON)


@pytest.fixture(scope="module")
def served_app(bundle_dir, tmp_path_factory):
    return create_app(ServingConfig(model_dir=bundle_dir, reports_dir=tmp_path_factory.mktemp("reports"),
                                    max_batch=50, max_body_bytes=64 * 1024))


@pytest.mark.parametrize(("path", "bodies"), [("/predict", predict_bodies()),
                                              ("/v2/models/slipway/infer", infer_bodies())], ids=["predict", "v2"])
def test_any_json_body_gets_a_documented_answer_never_a_500(served_app, path, bodies):
    """Whatever JSON a client sends, the answer is a status the OpenAPI document lists, with a body
    its schema describes: a prediction, or a 4xx that names the rule."""
    client = served_app.test_client()

    @settings(max_examples=150, deadline=None, derandomize=bool(os.environ.get("CI")),
              suppress_health_check=[HealthCheck.too_slow])
    @given(bodies)
    def answered(body):
        response = client.post(path, data=json.dumps(body), content_type="application/json")
        assert response.status_code < 500, response.get_data(as_text=True)
        assert_documented(served_app, "POST", path, response)

    answered()


def test_the_openapi_instance_schema_takes_exactly_what_the_server_predicts_for(served_app):
    """A client that checks its requests against ``/openapi.json`` sends what the server answers, and
    is never stopped from sending what it would answer: for any instance, the schema's verdict and the
    server's agree (blank text and ``data.na_values`` markers included)."""
    client = served_app.test_client()
    schema = Draft202012Validator(client.get("/openapi.json").json["components"]["schemas"]["Instance"])

    def agree(instance):
        response = client.post("/predict", data=json.dumps({"instances": [instance]}), content_type="application/json")
        assert (response.status_code == 200) == schema.is_valid(instance), response.get_data(as_text=True)

    agree({**VALID, "age": 10**400})  # valid JSON, past float64: refused by both
    settings(max_examples=200, deadline=None, derandomize=bool(os.environ.get("CI")),
             suppress_health_check=[HealthCheck.too_slow])(given(damaged(VALID))(agree))()


def test_the_monitoring_selects_exactly_the_prediction_endpoints(app):
    """Rules, dashboard and canary analysis count requests by Flask endpoint name: renaming a view
    must not silently empty them. PromQL regexes match whole label values."""
    promql_regex = re.search(r'endpoint=~"(.*)"', canary.PREDICTIONS).group(1).replace("\\\\", "\\")
    endpoints = {rule.endpoint: rule.methods for rule in app.url_map.iter_rules()}
    selected = {endpoint for endpoint in endpoints if re.fullmatch(promql_regex, endpoint)}
    assert selected == {endpoint for endpoint, methods in endpoints.items() if "POST" in methods}
    assert selected == {"api.predict", "api.v2_infer"}


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("age", "1" * 5000, "non_finite"), ("age", "x" * 5000, "wrong_type"), ("contract", "y" * 5000, "unseen_category")])
def test_a_huge_value_is_repeated_in_its_error_in_one_line(client, field, value, reason):
    """A megabyte of text sent for a number was answered with a megabyte of error."""
    refused = client.post("/predict", json=body_with(**{field: value})).json["error"]
    assert refused["reason"] == reason and len(refused["message"]) < 500, refused
    assert f"'{value[:79]}... (5002 characters)" in refused["message"]
