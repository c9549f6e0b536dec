"""`slipway serve-check` for real: the overlays rendered by the project's kubectl, the server
started under gunicorn with each overlay's settings, its memory read from /proc."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from slipway.pipeline import ingest
from slipway.release.footprint import FootprintError, serve_check
from tests.conftest import make_churn

REPO = Path(__file__).resolve().parents[2]
OVERLAYS = [REPO / "kustomize/overlays/canary", REPO / "kustomize/overlays/production"]


@pytest.fixture
def test_split(tmp_path, repo_params) -> Path:
    """Raw rows the bundle never trained on, as ingest writes its test split."""
    _, test = ingest.split(make_churn(months=3, rows=300, seed=11), repo_params)
    path = tmp_path / "test.parquet"
    test.to_parquet(path)
    return path


def with_memory_limit(tmp_path: Path, limit: str) -> list[Path]:
    """The overlays over a copy of the base whose server container may use ``limit``."""
    shutil.copytree(REPO / "kustomize", tmp_path / "kustomize")
    deployment = tmp_path / "kustomize/base/workload/deployment.yaml"
    text = deployment.read_text()
    assert text.count("memory: 1Gi") == 1
    deployment.write_text(text.replace("memory: 1Gi", f"memory: {limit}"))
    return [tmp_path / "kustomize/overlays/canary", tmp_path / "kustomize/overlays/production"]


def test_the_server_fits_the_memory_the_shipped_overlays_give_it(bundle_dir, test_split):
    lines = serve_check(bundle_dir, test_split, OVERLAYS)
    pattern = (r"(canary: Deployment slipway-canary|production: Deployment slipway): the server with model \w+ "
               r"\(SLIPWAY_WORKERS=2\) holds ([\d,]+) MiB, (\d+)% of its memory limit 1,024 MiB")
    matches = [re.fullmatch(pattern, line) for line in lines]
    assert all(matches), lines
    assert [m.group(1).split(":")[0] for m in matches] == ["canary", "production"]
    held = int(matches[0].group(2).replace(",", ""))
    assert 150 < held < 1024  # Python, the libraries and the model, in a master and 2 workers


def test_a_server_past_the_limit_is_refused_naming_each_overlay(bundle_dir, test_split, tmp_path):
    with pytest.raises(FootprintError) as refused:
        serve_check(bundle_dir, test_split, with_memory_limit(tmp_path, "100Mi"))
    message = str(refused.value)
    assert message.startswith("the server holds more than the 90% of its memory limit serve-check allows (past the "
                              "limit it is OOMKilled and never ready; the rest is for what no measurement here sees: "
                              "kernel memory, many connections at once): canary: "
                              "Deployment slipway-canary: the server with model ")
    assert re.search(r"; production: Deployment slipway: .* holds [\d,]+ MiB, \d+% of its memory limit 100 MiB\. "
                     r"Raise the server container's resources.limits.memory", message)


def test_the_command_fails_saying_why_for_the_pull_request_too_and_stops_its_server(bundle_dir, test_split, tmp_path):
    overlays = with_memory_limit(tmp_path, "100Mi")
    verdict = tmp_path / "serve-check.md"
    command = [str(Path(sys.executable).parent / "slipway"), "serve-check", "--model-dir", str(bundle_dir),
               "--test-split", str(test_split), "--markdown", str(verdict),
               *(arg for o in overlays for arg in ("--overlay", str(o)))]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode != 0
    assert "the server holds more than the 90% of its memory limit serve-check allows" in result.stderr
    assert verdict.read_text().startswith("### ⛔ Server memory\n\nthe server holds more than the 90% of its")
    assert not servers_on(bundle_dir)


def servers_on(model_dir: Path) -> list[str]:
    """This user's processes serving ``model_dir``."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if f"SLIPWAY_MODEL_DIR={model_dir.resolve()}".encode() in environ.read_bytes().split(b"\0"):
                found.append(environ.parent.name)
        except OSError:  # another user's, or gone
            continue
    return found


def test_a_bundle_the_server_cannot_load_is_named(bundle_dir, test_split, tmp_path):
    broken = tmp_path / "models"
    shutil.copytree(bundle_dir, broken)
    (broken / "model.skops").write_bytes(b"not a model")
    with pytest.raises(FootprintError, match=r"^the server did not load the model: model not loaded from .*sha256"):
        serve_check(broken, test_split, OVERLAYS)
    assert not servers_on(broken)
