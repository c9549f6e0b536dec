"""The image's entrypoint, run from the Dockerfile itself (no Docker engine here): its CMD, its
ENV and the bundle layout its COPY lines create, with a read-only-style layout and /tmp writable."""

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.integration.conftest import free_port

REPO = Path(__file__).resolve().parents[2]


def final_stage(dockerfile: str) -> list[str]:
    """Instructions of the last stage, continuation lines joined."""
    joined = dockerfile.replace("\\\n", " ")
    lines = [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]
    start = max(i for i, line in enumerate(lines) if line.upper().startswith("FROM "))
    return lines[start:]


def instruction(stage: list[str], name: str) -> list[str]:
    return [line.split(None, 1)[1] for line in stage if line.split(None, 1)[0].upper() == name]


def test_the_dockerfile_cmd_serves_the_baked_bundle(bundle_dir, tmp_path):
    stage = final_stage((REPO / "Dockerfile").read_text())
    cmd = json.loads(instruction(stage, "CMD")[-1])
    healthcheck = instruction(stage, "HEALTHCHECK")[-1]
    env = {}
    for line in instruction(stage, "ENV"):
        for pair in shlex.split(line):
            key, value = pair.split("=", 1)
            env[key] = value
    image_root = tmp_path / "image"
    # COPY models/... reports/... /app/model/: the bundle layout inside the image.
    copies = [line for line in instruction(stage, "COPY") if not line.startswith("--from")]
    sources, destination = copies[-1].split()[:-1], copies[-1].split()[-1]
    target = image_root / destination.lstrip("/")
    target.mkdir(parents=True)
    built = {"models": bundle_dir, "reports": tmp_path / "reports"}
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports/metrics.json").write_text(json.dumps({"roc_auc": 0.8}))
    (tmp_path / "reports/gate.json").write_text(json.dumps({"verdict": "pass", "failed": []}))
    for source in sources:  # a directory source copies its contents, as COPY does
        folder, name = source.split("/", 1)
        for path in [built[folder] / name] if name else sorted(built[folder].iterdir()):
            shutil.copy(path, target / path.name)
    for path in target.iterdir():
        path.chmod(0o444)  # read-only, as in the image

    def remap(value: str) -> str:
        """Image paths to their places here: /app under the image root, /tmp to a scratch dir."""
        if value.startswith("/app/"):
            return f"{image_root}{value}"
        return f"{tmp_path}{value}" if value.startswith("/tmp/") else value

    port = free_port()
    environment = {**os.environ, **{k: remap(v) for k, v in env.items() if k != "PATH"},
                   "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "PORT": str(port),
                   "HOST": "127.0.0.1", "HOME": str(tmp_path / "no-home")}  # the image's user has none
    (tmp_path / "tmp").mkdir()
    workdir = tmp_path / "workdir"  # the working directory: / in the image, read-only
    workdir.mkdir()
    server = subprocess.Popen(cmd, env=environment, cwd=workdir, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
    try:
        for _ in range(150):
            try:
                ready = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2).read())
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise AssertionError("the server was not ready within 30 s")
        assert ready["ready"] is True
        assert ready["model_version"] == json.loads((bundle_dir / "model.json").read_text())["model_version"]
        card = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read().decode()
        assert "PASS" in card  # gate.json baked beside the bundle
        assert list((tmp_path / "tmp" / "metrics").iterdir())  # multiprocess files in the /tmp volume
        probe = json.loads(healthcheck.split("CMD", 1)[1].strip())
        assert subprocess.run(probe, env=environment, timeout=10).returncode == 0
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0].decode()
        print(output)  # pytest shows it when the test fails
    # Nothing written outside /tmp (no control socket in $HOME), and nothing to warn about.
    assert not (tmp_path / "no-home").exists()
    assert list(workdir.iterdir()) == []
    assert "[WARNING]" not in output and "[ERROR]" not in output
