"""The server as the image runs it: real gunicorn, several workers, on 127.0.0.1."""

import importlib.metadata
import itertools
import json
import re
import shutil
import signal
import socket
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from tests.conftest import churn_instances
from tests.integration.servers import address, buffering_proxy, gunicorn, log_entries, messages, post, scrape


def test_counters_are_exact_across_workers_and_scrapes(bundle_dir, tmp_path):
    with gunicorn(bundle_dir, tmp_path) as (url, process):
        for i in range(40):  # a new connection each time, so both workers take requests
            status, _ = post(url, "/predict", {"instances": churn_instances(1 + i % 3, seed=i)})
            assert status == 200
        assert post(url, "/predict", {"instances": []})[0] == 400
        expected_rows = sum(1 + i % 3 for i in range(40))
        for _ in range(6):  # whichever worker answers the scrape, the totals are the same
            assert scrape(url, "slipway_predictions_total") == expected_rows
            assert scrape(url, "slipway_rejected_requests_total") == 1
            assert scrape(url, "slipway_prediction_score_count") == expected_rows
            assert scrape(url, "slipway_http_request_duration_seconds_count",
                          'endpoint="api.predict".*status="200"') == 40
            assert scrape(url, "slipway_model_ready") == 1
        # gunicorn's own messages are JSON lines like the app's
        booted = [m for m in messages((tmp_path / "gunicorn.log").read_text(), "gunicorn.error")
                  if m.startswith("Booting worker with pid: ")]
        assert len(set(booted)) == 2


def serving_workers_over_time(log: str) -> list[int]:
    """How many workers were serving after each change, in time order: a worker serves from its
    model loaded until it decides to go. (A replacement's load comes before the decision it
    allows, also within one millisecond.)"""
    leaving = "Autorestarting worker after current request."
    changes = [(entry["ts"], 1 if " loaded from " in entry["msg"] else -1) for entry in log_entries(log)
               if " loaded from " in entry["msg"] or entry["msg"] == leaving]
    return list(itertools.accumulate(change for _, change in sorted(changes, key=lambda c: (c[0], -c[1]))))


def test_recycled_workers_go_one_at_a_time_keep_the_counters_exact_and_leave_no_files_behind(bundle_dir, tmp_path):
    """SLIPWAY_MAX_REQUESTS: each worker is replaced after 5 requests, one at a time: the other
    serves past its limit while the replacement loads the model, so some worker always serves.
    The exited workers' counts are folded into one archive per kind, so the totals stay exact and
    the metrics directory (an in-memory volume in the pod) holds no more files than the live
    workers need."""
    with gunicorn(bundle_dir, tmp_path, SLIPWAY_MAX_REQUESTS="5") as (url, _):
        log = tmp_path / "gunicorn.log"
        requests, rows, deadline = 0, 0, time.monotonic() + 120
        while log.read_text().count("Booting worker with pid") < 2 + 4:  # four workers replaced
            assert time.monotonic() < deadline, log.read_text()
            instances = churn_instances(1 + rows % 3, seed=rows)
            assert post(url, "/predict", {"instances": instances})[0] == 200
            requests, rows = requests + 1, rows + len(instances)
        for _ in range(12):  # scrapes recycle workers too
            assert scrape(url, "slipway_predictions_total") == rows
            assert scrape(url, "slipway_prediction_score_count") == rows
            assert scrape(url, "slipway_http_request_duration_seconds_count", 'endpoint="api.predict"') == requests
        serving = serving_workers_over_time(log.read_text())
        assert serving[:2] == [1, 2] and min(serving[2:]) == 1, serving
        files = sorted(path.name for path in (tmp_path / "prom").iterdir() if not path.name.startswith("."))
        pids = {re.sub(r"\D", "", name.rsplit("_", 1)[1]) for name in files if "archive" not in name}
        assert len(pids) <= 3, files  # two live workers (and one booting)
        assert {"counter_archive.db", "histogram_archive.db"} <= set(files)


def test_two_workers_rotate_one_prediction_log_without_losing_a_line(bundle_dir, tmp_path):
    logs = tmp_path / "log"
    with gunicorn(bundle_dir, tmp_path, SLIPWAY_PREDICTION_LOG=str(logs / "predictions.jsonl"),
                  SLIPWAY_PREDICTION_LOG_RATE="1", SLIPWAY_PREDICTION_LOG_MAX_BYTES="4000",
                  SLIPWAY_PREDICTION_LOG_BACKUPS="1000") as (url, _):
        for i in range(60):  # a new connection each time, so both workers write
            assert post(url, "/predict", {"instances": churn_instances(2, seed=i)})[0] == 200
    lines = [json.loads(line) for path in logs.iterdir() for line in path.read_text().splitlines()]
    assert len(lines) == 120 and len({line["request_id"] for line in lines}) == 60
    assert len(list(logs.iterdir())) > 10


def test_a_standard_v2_client_works_unchanged(bundle_dir, tmp_path):
    import tritonclient.http as triton

    instances = churn_instances(5)
    with gunicorn(bundle_dir, tmp_path) as (url, _):
        client = triton.InferenceServerClient(address(url))
        assert client.is_server_live() and client.is_server_ready()
        server = client.get_server_metadata()
        assert server["name"] == "slipway" and "binary_tensor_data" in server["extensions"]
        assert server["version"] == importlib.metadata.version("slipway")
        assert client.is_model_ready("slipway")
        metadata = client.get_model_metadata("slipway")
        inputs = []
        for spec in metadata["inputs"]:
            values = [row[spec["name"]] for row in instances]
            if spec["datatype"] == "BYTES":
                array = np.array(values, dtype=object)
            else:
                array = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
            tensor = triton.InferInput(spec["name"], [len(values)], spec["datatype"])
            tensor.set_data_from_numpy(array)  # binary_data=True: tritonclient's default
            inputs.append(tensor)
        result = client.infer("slipway", inputs)
        probabilities = result.as_numpy("probabilities")
        labels = result.as_numpy("label")
        _, expected = post(url, "/predict", {"instances": instances})
        assert probabilities.shape == (5, 2)
        np.testing.assert_allclose(probabilities[:, 1],
                                   [p["probabilities"]["1"] for p in expected["predictions"]])
        assert labels.tolist() == [p["label"] for p in expected["predictions"]]
        for algorithm in ("gzip", "deflate"):  # the client's compressed requests
            compressed = client.infer("slipway", inputs, request_compression_algorithm=algorithm)
            np.testing.assert_array_equal(compressed.as_numpy("probabilities"), probabilities)


def test_corrupt_bundle_serves_not_ready_without_crash_looping(bundle_dir, tmp_path):
    broken = tmp_path / "models"
    shutil.copytree(bundle_dir, broken)
    (broken / "model.skops").write_bytes(b"corrupt")
    with gunicorn(broken, tmp_path, wait_ready=False) as (url, process):
        assert urllib.request.urlopen(url + "/healthz", timeout=5).status == 200
        with pytest.raises(urllib.error.HTTPError) as not_ready:
            urllib.request.urlopen(url + "/readyz", timeout=5)
        assert not_ready.value.code == 503
        assert "does not match model.json" in json.loads(not_ready.value.read())["reason"]
        # One worker answered; under load the other may still be loading.
        deadline = time.time() + 60
        while (tmp_path / "gunicorn.log").read_text().count("model not loaded") < 2 and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(1)  # a crash loop would show as a restart within this
        assert process.poll() is None
        log = (tmp_path / "gunicorn.log").read_text()
        assert log.count("model not loaded") == 2  # one clear line per worker, no restarts
        assert "Booting worker" in log and log.count("Booting worker") == 2


def test_sigterm_lets_an_in_flight_request_finish(bundle_dir, tmp_path):
    body = json.dumps({"instances": churn_instances(2)}).encode()
    with gunicorn(bundle_dir, tmp_path, workers=1) as (url, process):
        host, port = address(url).split(":")
        with socket.create_connection((host, int(port)), timeout=30) as conn:
            conn.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                         + body[:10])
            time.sleep(0.5)  # the worker is now inside the request, reading the body
            process.send_signal(signal.SIGTERM)
            time.sleep(1.0)
            conn.sendall(body[10:])
            response = b""
            while chunk := conn.recv(65536):
                response += chunk
        assert response.startswith(b"HTTP/1.1 200"), response[:200]
        assert b'"predictions"' in response
        assert process.wait(timeout=30) == 0
    assert "Handling signal: term" in messages((tmp_path / "gunicorn.log").read_text(), "gunicorn.error")


def test_busy_workers_keep_an_http_probe_waiting_but_not_a_tcp_connect(bundle_dir, tmp_path):
    """Why the Deployment's liveness probe is a TCP connect: with every sync worker inside a
    request, /healthz waits in the listen queue (under overload, past the probe's timeout, and the
    kubelet would restart a pod for being busy), while the kernel still accepts the connection."""
    with gunicorn(bundle_dir, tmp_path, workers=1) as (url, _):
        host, port = address(url).split(":")
        with socket.create_connection((host, int(port)), timeout=30) as busy:
            busy.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100\r\n\r\n{")  # the worker waits for the rest of the body
            time.sleep(0.5)
            with pytest.raises(OSError):  # socket.timeout, or urllib's URLError around it
                urllib.request.urlopen(url + "/healthz", timeout=2)
            socket.create_connection((host, int(port)), timeout=2).close()



def stalled_clients(url: str) -> list[socket.socket]:
    """Clients that stop halfway: one in its headers, and as many as there are workers (2) in
    their bodies, which a proxy that streamed bodies would hand on to the workers."""
    host, port = address(url).split(":")
    header = socket.create_connection((host, int(port)))
    header.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n")
    stalled = [header]
    for _ in range(2):
        body = socket.create_connection((host, int(port)))
        body.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n{\"instances\": [")
        stalled.append(body)
    return stalled


def answered_within(url: str, seconds: float) -> bool:
    try:
        return post_with_timeout(url, seconds) == 200
    except OSError:  # timed out
        return False


def post_with_timeout(url: str, seconds: float) -> int:
    request = urllib.request.Request(url + "/predict", data=json.dumps({"instances": churn_instances(1)}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=seconds) as response:
        return response.status


def test_the_buffering_proxy_keeps_stalled_clients_off_the_workers(bundle_dir, tmp_path):
    """kustomize/components/buffering-proxy, as its nginx.conf runs: stalled clients took both sync
    workers, so every other request waited for SLIPWAY_TIMEOUT; through the proxy they wait on nginx
    alone, and the server still answers an oversized body itself (nginx's limit is above it)."""
    with gunicorn(bundle_dir, tmp_path, SLIPWAY_TIMEOUT="30") as (server, _), \
            buffering_proxy(server, tmp_path) as proxy:
        stalled = stalled_clients(proxy)
        try:
            time.sleep(0.5)
            assert all(answered_within(proxy, 5) for _ in range(5))
        finally:
            for connection in stalled:
                connection.close()
        status, body = post(proxy, "/predict", {"instances": churn_instances(1), "pad": "x" * (5 * 1024 * 1024)})
        assert status == 413 and body["error"]["reason"] == "body_too_large"  # the server's JSON, not nginx's page
        stalled = stalled_clients(server)  # without the proxy
        try:
            time.sleep(0.5)
            assert not answered_within(server, 5)
        finally:
            for connection in stalled:
                connection.close()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("path", ["/predict", "/v2/models/slipway/infer"])
def test_an_oversized_body_gets_the_servers_413_not_a_reset(bundle_dir, tmp_path, path, chunked):
    """The body is refused unread; gunicorn closed the connection with megabytes unread, which
    resets it: a client still sending got a broken pipe, every time, and a proxy a 502. Sent in
    chunks (no Content-Length), it was cut at the limit and answered as malformed JSON."""
    body = json.dumps({"instances": [], "pad": "x" * (6 * 1024 * 1024)}).encode()  # the limit is 4 MiB
    with gunicorn(bundle_dir, tmp_path) as (url, _):
        for _ in range(3):
            data = iter([body[:1 << 20], body[1 << 20:]]) if chunked else body  # urllib sends an iterable chunked
            request = urllib.request.Request(url + path, data=data, headers={"Content-Type": "application/json"})
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=10)
            assert refused.value.code == 413 and b"body_too_large" in refused.value.read()


def raw_exchange(url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are (no client library would send these) and read the whole answer."""
    host, port = address(url).split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), {k.lower(): v for k, v in headers.items()}, body


MALFORMED = {
    "request_line_too_long": (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    "headers_too_large": (b"GET /healthz HTTP/1.1\r\n" + b"".join(b"X-Header-%d: 1\r\n" % i for i in range(120))
                          + b"\r\n", 431),
    "malformed_http": (b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n", 400),
    # The app reads the body, and gunicorn's chunk parser raises there: this was a 500.
    "malformed_body": (b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", 400),
}


@pytest.mark.parametrize("threads", ["1", "4"], ids=["sync", "gthread"])
def test_what_gunicorn_refuses_itself_is_answered_counted_and_logged_as_the_app_does(bundle_dir, tmp_path, threads):
    """A request line or headers past gunicorn's limits, or a malformed header, never reach the app:
    gunicorn answered them with an HTML page, uncounted, with no log line of ours."""
    with gunicorn(bundle_dir, tmp_path, SLIPWAY_THREADS=threads) as (url, _):
        for reason, (request, status) in MALFORMED.items():
            answered, headers, body = raw_exchange(url, request)
            assert (answered, headers["content-type"]) == (status, "application/json"), body
            error = json.loads(body)
            assert error["error"]["reason"] == reason and error["error"]["message"], error
            assert error["request_id"] == headers["x-request-id"]
        for reason in MALFORMED:
            assert scrape(url, "slipway_rejected_requests_total", f'reason="{reason}"') == 1
        assert post(url, "/predict", {"instances": churn_instances(1)})[0] == 200  # the workers serve on
    lines = [json.loads(line) for line in (tmp_path / "gunicorn.log").read_text().splitlines()
             if line.startswith("{") and '"reason"' in line]
    assert sorted(line["reason"] for line in lines) == sorted(set(MALFORMED) - {"malformed_body"})
    assert all(line["logger"] == "slipway.access" and line["error"] for line in lines)
