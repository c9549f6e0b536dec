"""Drives bench/serve.sh: starts the three servers on 127.0.0.1, runs wrk, prints the table.

With ``--floor-steps`` it also serves the floor plus, cumulatively, each of ``floor_app.STEPS``
(``+json``, ``+metrics``, and the model's one call, ``+onnx`` or ``+sklearn``): the share of the
floor left once a request has paid for what no server meeting the issue can skip. With ``--proxy``,
slipway also behind the buffering-proxy component's nginx (``slipway+proxy``; ``bench/proxy.py``):
what that hop costs.

Each scenario (rows per request x connections) runs wrk against every server in turn, and the
whole set repeats --rounds times, interleaved, so drift in the machine's speed hits all alike.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

from slipway import bundle
from slipway.featureset import FeatureSpec
from slipway.pipeline import paths

sys.path.insert(0, str(Path(__file__).resolve().parent))
import floor_app  # noqa: E402 (bench/ is not a package)
import proxy  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WORKERS = 2
GUNICORN_CONF = "python:slipway.serving.gunicorn_conf"
# The rows the requests send: the model's own test split, as ingest wrote it (raw inputs the model
# never trained on), so the benchmark runs on whatever data the template was adopted for.
TEST_SPLIT = REPO / paths.TEST_RAW


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, seconds: float = 90) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if process.poll() is not None:
            sys.exit(f"server for {url} exited with {process.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.3)
    sys.exit(f"{url} did not come up")


def start(stack: ExitStack, cmd: list[str], env: dict, cwd: Path, log: Path) -> subprocess.Popen:
    handle = stack.enter_context(open(log, "w"))  # noqa: SIM115 (closed by the ExitStack)
    process = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT,
                               start_new_session=True)
    stack.callback(lambda: (os.killpg(process.pid, signal.SIGTERM), process.wait(timeout=30)))
    return process


def request_rows(source: Path, spec: FeatureSpec, rows: int) -> pd.DataFrame:
    """``rows`` rows of the model's raw inputs from ``source`` (Parquet or CSV), drawn seeded."""
    if not source.is_file():
        sys.exit(f"no rows to send: {source} is not a file; run `make pipeline` (ingest writes the test split "
                 "there), or name a Parquet or CSV file of the model's inputs with --rows-from")
    # Categories as text, as ingest reads them (a code such as 02134 keeps its leading zero).
    frame = (pd.read_csv(source, dtype={name: str for name in spec.categorical}) if source.suffix == ".csv"
             else pd.read_parquet(source))
    missing = [name for name in spec.inputs if name not in frame.columns]
    if missing or frame.empty:
        sys.exit(f"no rows to send: {source} " + (f"lacks the model's inputs {missing}" if missing else "has no rows"))
    return frame[spec.inputs].sample(n=rows, replace=len(frame) < rows, random_state=5).reset_index(drop=True)


def payloads(model: bundle.Bundle, rows: int, source: Path = TEST_SPLIT) -> tuple[dict, dict]:
    """The same rows as a /predict body (raw inputs) and as MLServer's pandas V2 request (the
    model's input columns, which MLServer's scikit-learn runtime feeds to the estimator)."""
    spec = FeatureSpec.from_dict(model.metadata["features"])
    raw = request_rows(source, spec, rows)
    # Times (the test split holds them as dates) as the ISO 8601 text a client sends.
    sent = raw.assign(**{name: raw[name].map(lambda t: None if pd.isna(t) else t.isoformat()) for name in spec.times})
    instances = [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
                 for r in sent.astype(object).to_dict("records")]
    features = spec.transform(raw)
    inputs = []
    for name in spec.columns:
        if name in spec.categorical:
            inputs.append({"name": name, "shape": [rows], "datatype": "BYTES",
                           "parameters": {"content_type": "str"},
                           "data": features[name].astype(str).tolist()})
        else:
            inputs.append({"name": name, "shape": [rows], "datatype": "FP64",
                           "data": [None if np.isnan(v) else v for v in features[name].tolist()]})
    mlserver = {"parameters": {"content_type": "pd"}, "inputs": inputs,
                "outputs": [{"name": "predict_proba"}]}
    return {"instances": instances}, mlserver


def check_same_probabilities(classes: list, ours: list[dict], peer: list[float]) -> None:
    """Every class's probability from /predict equals MLServer's ``predict_proba`` (its columns in
    the estimator's class order, which ``classes`` is)."""
    served = np.array([[answer["probabilities"][str(c)] for c in classes] for answer in ours])
    np.testing.assert_allclose(served, np.array(peer).reshape(len(ours), len(classes)), atol=1e-6)


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        return json.loads(urllib.request.urlopen(request, timeout=30).read())
    except urllib.error.HTTPError as exc:  # the rows refused: say why, not only the status
        sys.exit(f"{url} answered the benchmark's request {exc.code}: {exc.read().decode(errors='replace')[:500]}")


def wrk(url: str, body_file: Path, connections: int, seconds: int) -> tuple[float, float, float, int]:
    script = body_file.with_suffix(".lua")
    script.write_text(f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                      f'local f = io.open("{body_file}", "r")\nwrk.body = f:read("*a")\nf:close()\n')
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency",
                          "-s", str(script), url], capture_output=True, text=True, check=True).stdout

    def latency(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    errors += sum(int(n) for n in re.findall(r"Socket errors: .*?(\d+)", out) if n != "0")
    return rps, latency("50"), latency("99"), errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mlserver", required=True, help="the mlserver executable (its own venv)")
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per measurement")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rows", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--connections", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--rows-from", type=Path, default=TEST_SPLIT, help="Parquet or CSV file of the model's "
                        "inputs the requests send rows of (default: the test split ingest writes)")
    parser.add_argument("--floor-steps", action="store_true", help="also serve the floor plus, one "
                        "by one, what every request must cost (floor_app.STEPS): where a target "
                        "relative to the floor can lie")
    parser.add_argument("--proxy", action="store_true", help="also serve slipway behind the "
                        "buffering-proxy component's nginx (slipway+proxy): what the hop costs")
    args = parser.parse_args()

    model = bundle.load(REPO / "models")
    with tempfile.TemporaryDirectory(prefix="slipway-serve-bench-") as tmp, ExitStack() as stack:
        tmp = Path(tmp)
        ports = {name: free_port() for name in ("slipway", "mlserver")}
        base_env = {**os.environ, "SLIPWAY_WORKERS": str(WORKERS)}

        ours = start(stack, [str(BIN / "gunicorn"), "-c", GUNICORN_CONF, "slipway.serving.wsgi:app"],
                     {**base_env, "SLIPWAY_MODEL_DIR": str(REPO / "models"),
                      "SLIPWAY_BIND": f"127.0.0.1:{ports['slipway']}",
                      "PROMETHEUS_MULTIPROC_DIR": str(tmp / "prom")}, REPO, tmp / "slipway.log")
        floors = {"floor": "floor_app:app"}
        if args.floor_steps:  # each adds one of floor_app.STEPS to the one before
            floors.update({f"+{label}": f"floor_app:steps({n})"
                           for n, label in enumerate(floor_app.step_labels(REPO / "models"), start=1)})
        for name, target in floors.items():
            ports[name] = free_port()
            floors[name] = start(stack, [str(BIN / "gunicorn"), "-c", GUNICORN_CONF, "--chdir",
                                         str(REPO / "bench"), target],
                                 {**base_env, "SLIPWAY_MODEL_DIR": str(REPO / "models"),
                                  "SLIPWAY_BIND": f"127.0.0.1:{ports[name]}",
                                  "PROMETHEUS_MULTIPROC_DIR": str(tmp / f"prom-{name}")}, REPO,
                                 tmp / f"{name}.log")
        if args.proxy:
            ports["slipway+proxy"] = free_port()
            fronted = start(stack, proxy.command(f"http://127.0.0.1:{ports['slipway']}", ports["slipway+proxy"],
                                                 tmp / "nginx"), os.environ, REPO, tmp / "nginx.log")
        peer_dir = tmp / "mlserver" / "peer"
        peer_dir.mkdir(parents=True)
        joblib.dump(model.estimator, peer_dir / "model.joblib")  # our own bundle, for the peer only
        (peer_dir / "model-settings.json").write_text(json.dumps({
            "name": "peer", "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": "./model.joblib", "version": "v1"}}))
        (tmp / "mlserver" / "settings.json").write_text(json.dumps({
            "http_port": ports["mlserver"], "grpc_port": free_port(), "metrics_port": free_port(),
            "host": "127.0.0.1", "parallel_workers": WORKERS, "debug": False}))
        peer = start(stack, [str(Path(args.mlserver).resolve()), "start", str(tmp / "mlserver")],
                     {**os.environ, "OMP_NUM_THREADS": "1"}, tmp / "mlserver", tmp / "mlserver.log")

        urls = {"slipway": f"http://127.0.0.1:{ports['slipway']}/predict",
                **({"slipway+proxy": f"http://127.0.0.1:{ports['slipway+proxy']}/predict"} if args.proxy else {}),
                "mlserver": f"http://127.0.0.1:{ports['mlserver']}/v2/models/peer/infer",
                **{name: f"http://127.0.0.1:{ports[name]}/predict" for name in floors}}
        wait_for(f"http://127.0.0.1:{ports['slipway']}/readyz", ours)
        wait_for(f"http://127.0.0.1:{ports['mlserver']}/v2/models/peer/ready", peer)
        if args.proxy:
            wait_for(f"http://127.0.0.1:{ports['slipway+proxy']}/readyz", fronted)
        for name, process in floors.items():
            wait_for(f"http://127.0.0.1:{ports[name]}/healthz", process)

        bodies = {}
        for rows in args.rows:
            predict_body, peer_body = payloads(model, rows, args.rows_from)
            ours_answer = post(urls["slipway"], predict_body)["predictions"]
            check_same_probabilities(model.metadata["classes"], ours_answer,
                                     post(urls["mlserver"], peer_body)["outputs"][0]["data"])
            if args.proxy:  # the proxy hands on the server's answer unchanged
                assert post(urls["slipway+proxy"], predict_body)["predictions"] == ours_answer
            for name in urls:
                bodies[name, rows] = tmp / f"{name}-{rows}.json"
                bodies[name, rows].write_text(json.dumps(peer_body if name == "mlserver" else predict_body))
        print(f"same predictions from slipway and MLServer: checked for {args.rows} rows\n")

        results: dict[tuple, list] = {}
        for _ in range(args.rounds):
            for rows in args.rows:
                for connections in args.connections:
                    for name in urls:
                        results.setdefault((rows, connections, name), []).append(
                            wrk(urls[name], bodies[name, rows], connections, args.seconds))

        print(f"{'rows':>4} {'conns':>5}  {'server':<13} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}"
              f"   vs MLServer   vs floor")
        for (rows, connections, name), runs in results.items():
            rps = float(np.median([r[0] for r in runs]))
            p50 = float(np.median([r[1] for r in runs]))
            p99 = float(np.median([r[2] for r in runs]))
            errors = sum(r[3] for r in runs)
            peer_rps = float(np.median([r[0] for r in results[rows, connections, "mlserver"]]))
            floor_rps = float(np.median([r[0] for r in results[rows, connections, "floor"]]))
            print(f"{rows:>4} {connections:>5}  {name:<13} {rps:>8.0f} {p50:>8.2f} {p99:>8.2f} {errors:>6}"
                  f"   {rps / peer_rps:>9.2f}x {rps / floor_rps:>8.2f}x")


if __name__ == "__main__":
    main()
