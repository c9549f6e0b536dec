import json

import pytest
from gunicorn.http import errors

from slipway.serving import workers


@pytest.mark.parametrize(("exc", "expected"), [
    (errors.LimitRequestLine(5000, 4094), (414, "URI Too Long", "request_line_too_long")),
    (errors.LimitRequestHeaders("too many headers"), (431, "Request Header Fields Too Large", "headers_too_large")),
    (errors.InvalidRequestLine("GARBAGE"), (400, "Bad Request", "malformed_http")),
    (errors.InvalidChunkSize(b"zz"), (400, "Bad Request", "malformed_http")),
    (errors.UnsupportedTransferCoding("gzip"), (501, "Not Implemented", "unsupported_transfer_coding")),
    # Not the client's: gunicorn answers these itself, as before.
    (errors.InvalidResponseHeader("X-Bad\n"), None),
    (errors.ConfigurationProblem("forwarded_allow_ips"), None),
    (ValueError("the app's own"), None),
])
def test_only_what_a_client_sent_is_answered_as_a_refusal(exc, expected):
    assert workers.refusal(exc) == expected


@pytest.mark.parametrize(("path", "error"), [
    ("/predict", {"reason": "malformed_http", "field": None, "message": "bad header"}),
    ("/v2/models/slipway/infer", "bad header"),
])
def test_a_refusal_is_the_apps_json_error_for_its_path(path, error):
    data, request_id = workers.response(400, "Bad Request", "malformed_http", "bad header", path)
    head, body = data.split(b"\r\n\r\n", 1)
    assert head.decode().split("\r\n") == [
        "HTTP/1.1 400 Bad Request", "Connection: close", "Content-Type: application/json",
        f"Content-Length: {len(body)}", f"X-Request-ID: {request_id}"]
    answer = json.loads(body)
    assert answer["error"] == error and answer["request_id"] == request_id
