"""The server's JSON: orjson, and the json module wherever orjson refuses."""

import json
import math

import numpy as np
import pytest
from flask import Flask, jsonify

from slipway.serving import codec


def test_loads_reads_what_the_json_module_reads():
    body = b'{"b": [1, 2.5, null, true, "\\u00e9"], "a": {"c": -0.0}}'
    assert codec.loads(body) == json.loads(body)
    assert list(codec.loads(body)) == ["b", "a"]


@pytest.mark.parametrize("body", [b'{"x": NaN}', b'{"x": -Infinity}', b'{"x": 1e400}',
                                  b'{"x": 1' + b"0" * 400 + b'}', b'{"x": "\\ud800"}'])
def test_loads_takes_what_orjson_refuses_as_the_json_module_did(body):
    # Validation refuses these by field and rule, so they must reach it as values.
    value = codec.loads(body)["x"]
    expected = json.loads(body)["x"]
    assert value == expected or (math.isnan(value) and math.isnan(expected))


def test_integers_beyond_64_bits_arrive_as_the_float64_they_become_anyway():
    assert codec.loads(b"[100000000000000000000000, 18446744073709551615]") == [1e23, 2**64 - 1]


def test_a_malformed_body_gets_the_json_modules_message():
    with pytest.raises(ValueError, match=r"line 1 column 8"):
        codec.loads(b'{"x": 1')


@pytest.mark.parametrize("obj", [{"x": "\ud800"}, {"x": 10**30}, {1: "int key"}])
def test_dumps_writes_what_orjson_refuses(obj):
    assert json.loads(codec.dumps(obj)) == json.loads(json.dumps(obj))


def test_dumps_writes_numpy_values_and_falls_back_to_default():
    assert json.loads(codec.dumps({"a": np.array([1.5, 2.0]), "n": np.int64(3)})) == {"a": [1.5, 2.0], "n": 3}
    assert codec.dumps({"s": {1}}, default=sorted) == b'{"s":[1]}'
    with pytest.raises(TypeError):
        codec.dumps({"s": {1}})


def test_flask_answers_through_orjson_in_the_views_key_order():
    app = Flask(__name__)
    app.json = codec.OrjsonProvider(app)
    with app.app_context():
        response = jsonify({"z": 1, "a": "\ud800"})
    assert response.mimetype == "application/json"
    assert response.get_data().endswith(b"\n")
    assert list(json.loads(response.get_data())) == ["z", "a"]
    assert app.json.loads('{"k": [1]}') == {"k": [1]}
    # A template's tojson(indent=2) is formatted as asked, keys unsorted.
    assert app.json.dumps({"z": [1], "a": 2}, indent=2) == '{\n  "z": [\n    1\n  ],\n  "a": 2\n}'
