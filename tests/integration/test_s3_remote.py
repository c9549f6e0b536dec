"""S3 against an S3 endpoint (moto_server) on loopback: a real `dvc push` / `dvc pull` round trip,
raw data read from an ``s3://`` source that DVC tracks, and drift on prediction logs shipped to S3."""

import gzip
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO, churn_instances, make_churn
from tests.integration.conftest import free_port


@pytest.fixture
def s3_endpoint():
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(url, timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("moto_server did not start")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1"}


def test_push_and_pull_through_s3(example_project, s3_endpoint, monkeypatch):
    import boto3

    project = example_project
    project.env.update(CREDENTIALS)
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket="models")
    # As the README documents: bucket and endpoint in .dvc/config, credentials from the environment.
    project.run("dvc", "remote", "add", "-d", "-f", "s3", "s3://models/slipway")
    project.run("dvc", "remote", "modify", "s3", "endpointurl", s3_endpoint)
    project.repro()
    pushed = project.run("dvc", "push")
    assert "pushed" in pushed.stdout
    listing = boto3.client("s3", endpoint_url=s3_endpoint).list_objects_v2(Bucket="models")
    assert listing["KeyCount"] > 5

    model_json = (project.root / "models/model.json").read_text()
    shutil.rmtree(project.root / ".dvc/cache")
    shutil.rmtree(project.root / "models")
    shutil.rmtree(project.root / "data/raw")
    pulled = project.run("dvc", "pull")
    assert "fetched" in pulled.stdout or "added" in pulled.stdout or "modified" in pulled.stdout
    assert (project.root / "models/model.json").read_text() == model_json
    assert sorted(p.name for p in (project.root / "data/raw").iterdir())[0] == "2025-01.parquet"
    assert project.run("dvc", "status").stdout.strip() == "Data and pipelines are up to date."


def test_raw_data_from_an_s3_source(project, s3_endpoint, monkeypatch, tmp_path):
    """data.source: s3://...: DVC tracks the prefix (a new batch reruns ingest), slipway reads it.
    The endpoint comes from AWS_ENDPOINT_URL, as for any S3-compatible store."""
    import boto3

    from slipway.model.example_data import generate_month

    for key, value in {**CREDENTIALS, "AWS_ENDPOINT_URL": s3_endpoint}.items():
        monkeypatch.setenv(key, value)
        project.env[key] = value
    lake = boto3.client("s3")
    lake.create_bucket(Bucket="lake")

    def upload(month: str) -> None:
        generate_month(month, 400, seed=3).to_parquet(tmp_path / f"{month}.parquet")
        lake.upload_file(str(tmp_path / f"{month}.parquet"), "lake", f"exports/churn/{month}.parquet")

    for month in ("2025-01", "2025-02", "2025-03"):
        upload(month)
    lake.put_object(Bucket="lake", Key="exports/churn/_SUCCESS", Body=b"")  # not a batch: ignored
    project.set_params({"data.source": "s3://lake/exports/churn"})
    project.commit("data from S3")
    first = project.run("dvc", "repro", "ingest")
    assert "ingest: 1200 rows from s3://lake/exports/churn -> 960 train, 240 test" in first.stdout
    assert project.run("dvc", "status", "ingest").stdout.strip() == "Data and pipelines are up to date."

    # The next month comes from a spreadsheet export: CSV, separated by ';' (read from its header).
    generate_month("2025-04", 400, seed=3).to_csv(tmp_path / "2025-04.csv", sep=";", index=False)
    lake.upload_file(str(tmp_path / "2025-04.csv"), "lake", "exports/churn/2025-04.csv")
    assert "modified:           s3://lake/exports/churn" in project.run("dvc", "status", "ingest").stdout
    second = project.run("dvc", "repro", "ingest")
    assert "ingest: 1600 rows from s3://lake/exports/churn -> 1280 train, 320 test" in second.stdout


def test_a_hive_partitioned_s3_source_gives_back_its_partition_columns(project, s3_endpoint, monkeypatch, tmp_path):
    """A lake written by Spark or Athena: s3://lake/events/region=north/month=2025-01/part-0.parquet,
    the files without the region. It was 'not in the data'; it is a feature again."""
    import boto3

    from slipway.model.example_data import generate_month

    for key, value in {**CREDENTIALS, "AWS_ENDPOINT_URL": s3_endpoint}.items():
        monkeypatch.setenv(key, value)
        project.env[key] = value
    lake = boto3.client("s3")
    lake.create_bucket(Bucket="lake")
    rows = pd.concat([generate_month(month, 300, seed=4) for month in ("2025-01", "2025-02", "2025-03")])
    for (region, month), part in rows.groupby([rows["region"], rows["event_timestamp"].dt.strftime("%Y-%m")]):
        part.drop(columns="region").to_parquet(tmp_path / "part.parquet")
        lake.upload_file(str(tmp_path / "part.parquet"), "lake", f"events/region={region}/month={month}/part-0.parquet")
    project.set_params({"data.source": "s3://lake/events", "data.drop_columns": ["month"]})
    project.commit("a partitioned lake")
    assert "ingest: 900 rows from s3://lake/events" in project.run("dvc", "repro", "ingest").stdout
    ingested = pd.concat([pd.read_parquet(project.root / "data" / "interim" / f"{split}.parquet")
                          for split in ("train", "test")])
    assert ingested.groupby("region").size().to_dict() == rows.groupby("region").size().to_dict()


def test_drift_reads_the_prediction_logs_a_shipper_put_in_s3(s3_endpoint, bundle_dir, tmp_path):
    """The drift job reads PREDICTION_LOG_URI itself (no aws CLI on the agent): gzipped JSON lines
    under dated keys, only the window's."""
    import boto3

    env = {**os.environ, **CREDENTIALS, "AWS_ENDPOINT_URL": s3_endpoint}
    logs = boto3.client("s3", endpoint_url=s3_endpoint, **{
        "aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"})
    logs.create_bucket(Bucket="logs")
    now = time.time()

    def ship(key: str, logged_at: float, instances: list[dict]) -> None:
        lines = "".join(json.dumps({"ts": logged_at, "inputs": row}) + "\n" for row in instances)
        logs.put_object(Bucket="logs", Key=key, Body=gzip.compress(lines.encode()))

    ship("served/2026/11/25/worker-1.jsonl.gz", now - 3600, churn_instances(300, seed=5, drift=2.0))
    ship("served/2026/11/25/worker-2.jsonl.gz", now - 3600, churn_instances(100, seed=6, drift=2.0))
    ship("served/2025/01/01/worker-1.jsonl.gz", now - 400 * 24 * 3600, churn_instances(50, seed=7))
    reference = tmp_path / "train.parquet"
    make_churn(months=3, rows=600).to_parquet(reference)
    result = subprocess.run([str(Path(sys.executable).parent / "slipway"), "drift", "--predictions", "s3://logs/served",
                             "--reference", str(reference), "--model-dir", str(bundle_dir),
                             "--out-dir", str(tmp_path / "reports")], capture_output=True, text=True, cwd=REPO, env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads((tmp_path / "reports/drift.json").read_text())
    assert report["rows"]["served"] == 400 and report["window_hours"] == 168 and report["drifted"]
