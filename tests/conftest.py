"""Shared fixtures: the repository's params, small example data, a scratch working directory, an
HTTP recorder standing in for GitHub's API and the Pushgateway."""

from __future__ import annotations

import copy
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pandas as pd
import pytest

from slipway import params as params_module
from slipway.model.example_data import generate_month, month_range

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_params() -> dict:
    return params_module.load(REPO / "params.yaml")


@pytest.fixture
def params(repo_params) -> dict:
    """A private copy of ``params.yaml``: tests may change it freely."""
    return copy.deepcopy(repo_params)


def make_churn(months: int = 3, rows: int = 400, seed: int = 7, drift: float = 0.0) -> pd.DataFrame:
    frames = [generate_month(m, rows, seed, drift) for m in month_range("2025-01", months)]
    return pd.concat(frames, ignore_index=True)


@pytest.fixture
def churn() -> pd.DataFrame:
    return make_churn()


# S3 locations that cannot be listed without credentials (no_aws_credentials), and why.
UNLISTABLE_S3 = [("s3://slipway-data/prefix", "Unable to locate credentials"), ("s3://", "Cannot traverse all of S3")]


@pytest.fixture
def no_aws_credentials(monkeypatch, tmp_path):
    """S3 as a machine without credentials sees it: botocore finds none, and asks no metadata
    service (s3fs caches its filesystems, with whatever credentials an earlier test gave them)."""
    import s3fs

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_ENDPOINT_URL", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    s3fs.S3FileSystem.clear_instance_cache()
    yield
    s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """Run the test inside an empty directory, as a stage runs in the repository root."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def build_bundle(directory: Path, params: dict, months: int = 3, rows: int = 600) -> Path:
    """Run the real featurize and train code on small churn data; the bundle lands in ``directory``
    (``models/`` under it), as the pipeline writes it."""
    import os

    from slipway.pipeline import featurize, ingest, train

    params = copy.deepcopy(params)
    if params["train"]["estimator"] == "hist_gradient_boosting":  # few trees: fast, and enough to test with
        params["train"]["hyperparameters"]["max_iter"] = 40
    previous = Path.cwd()
    directory.mkdir(parents=True, exist_ok=True)
    os.chdir(directory)
    try:
        train_frame, _ = ingest.split(make_churn(months=months, rows=rows), params)
        spec = featurize.build_spec(train_frame, params)
        Path("data/features").mkdir(parents=True, exist_ok=True)
        featurize.featurize(train_frame, spec, featurize.key_columns(params)).to_parquet(
            "data/features/train.parquet")
        Path("data/features/spec.json").write_text(__import__("json").dumps(spec.to_dict()))
        train.main(params)
    finally:
        os.chdir(previous)
    return directory / "models"


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory, repo_params) -> Path:
    return build_bundle(tmp_path_factory.mktemp("bundle"), repo_params)


@pytest.fixture
def gradient_boosting(monkeypatch) -> str:
    """``train.estimator: gradient_boosting``: a team's own entry in ``ESTIMATORS``, scikit-learn's
    GradientBoostingClassifier behind the one-hot encoder. The ONNX path does not translate it, so
    the server and ``evaluate`` call its ``predict_proba``."""
    from sklearn.ensemble import GradientBoostingClassifier

    from slipway.model import estimator

    monkeypatch.setitem(estimator.ESTIMATORS, "gradient_boosting", (GradientBoostingClassifier, True, False))
    return "gradient_boosting"


def churn_instances(count: int = 1, seed: int = 3, drift: float = 0.0) -> list[dict]:
    """Request instances drawn from the example generator (the server's input columns)."""
    frame = generate_month("2025-09", max(count, 10), seed, drift).head(count)
    frame = frame.drop(columns=["customer_id", "event_timestamp", "churned"])
    return [{k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}
            for row in frame.astype(object).to_dict("records")]


@pytest.fixture
def recorder():
    """An HTTP server on 127.0.0.1 that records every request."""
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append((self.path, dict(self.headers), body.decode()))
            self.send_response(204 if "dispatches" in self.path else 200)
            self.end_headers()

        def do_GET(self):  # noqa: N802 (a web page where a Prometheus API was expected)
            received.append((self.path, dict(self.headers), ""))
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html>Grafana</html>")

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", received
    server.shutdown()
