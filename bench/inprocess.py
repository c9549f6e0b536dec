"""The serving benchmark's apps in-process: one 1-row ``POST /predict`` through each WSGI app, no
network, no gunicorn (`make bench-inprocess`).

bench/serve.sh measures each server over HTTP, where gunicorn's socket work and wrk's share of the
2 cores come on top of what the app itself does. This measures only the app: the floor, the floor
plus each of ``floor_app.STEPS``, and slipway, in interleaved rounds; it prints the median
microseconds per request. The access log goes to /dev/null here.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from contextlib import redirect_stderr
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ is not a package


def call(app, body: bytes) -> str:
    """One request through the WSGI interface, as gunicorn makes it; returns the status line."""
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/predict", "SERVER_NAME": "127.0.0.1",
               "SERVER_PORT": "8080", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
               "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)),
               "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr}
    status = []
    result = app(environ, lambda line, headers, exc_info=None: status.append(line))
    b"".join(result)
    if hasattr(result, "close"):
        result.close()
    return status[0]


def per_request_us(app, body: bytes, requests: int) -> float:
    start = time.perf_counter()
    for _ in range(requests):
        call(app, body)
    return (time.perf_counter() - start) / requests * 1e6


def apps(model_dir: Path) -> dict:
    import floor_app

    from slipway.serving.app import create_app
    from slipway.serving.config import ServingConfig

    os.environ["SLIPWAY_MODEL_DIR"] = str(model_dir)  # the model step's model
    served = {"floor": floor_app.create()}
    labels = floor_app.step_labels(model_dir)
    served.update({f"+{label}": floor_app.steps(n) for n, label in enumerate(labels, start=1)})
    served["slipway"] = create_app(ServingConfig(model_dir=model_dir))
    return served


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path("models"))
    parser.add_argument("--rows-from", type=Path, default=None, help="Parquet or CSV file of the model's inputs "
                        "the request sends a row of (default: the test split ingest writes)")
    parser.add_argument("--requests", type=int, default=5000, help="requests per app per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    # As under gunicorn (slipway.serving.gunicorn_conf), before prometheus_client and numpy load.
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="slipway-bench-metrics-"))
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import numpy as np
    from serving import TEST_SPLIT, payloads

    from slipway import bundle

    body = json.dumps(payloads(bundle.load(args.model_dir), 1, args.rows_from or TEST_SPLIT)[0]).encode()
    with open(os.devnull, "w") as sink, redirect_stderr(sink):
        served = apps(args.model_dir)
        for name, app in served.items():
            if call(app, body) != "200 OK":
                sys.exit(f"{name} does not answer 200 to the benchmark's request")
            per_request_us(app, body, 200)  # warm the caches before anything is timed
        times = {name: [] for name in served}
        for _ in range(args.rounds):  # interleaved: drift in the machine's speed hits every app alike
            for name, app in served.items():
                times[name].append(per_request_us(app, body, args.requests))
    floor = float(np.median(times["floor"]))
    print(f"{'app':<10} {'us/request':>10} {'min':>8} {'max':>8} {'vs floor':>9}")
    for name, samples in times.items():
        median = float(np.median(samples))
        print(f"{name:<10} {median:>10.0f} {min(samples):>8.0f} {max(samples):>8.0f} {median / floor:>8.2f}x")


if __name__ == "__main__":
    main()
