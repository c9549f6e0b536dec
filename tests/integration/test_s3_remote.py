"""A real `dvc push` / `dvc pull` round trip against an S3 endpoint (moto_server) on loopback."""

import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

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


def test_push_and_pull_through_s3(example_project, s3_endpoint, monkeypatch):
    import boto3

    project = example_project
    credentials = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                   "AWS_DEFAULT_REGION": "us-east-1"}
    project.env.update(credentials)
    for key, value in credentials.items():
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
