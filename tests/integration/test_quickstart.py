"""The README's Quickstart: `make run` in a copy of this checkout generates the example data, runs
the whole pipeline on the embedded defaults and serves the model, which answers the request its
own model card shows and logs what it serves for `make traffic`, `make drift` and `make performance`;
Ctrl-C stops it. (`make test`, the other command, is what runs this.)"""

import html
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.integration.conftest import REPO, free_port
from tests.integration.servers import post

VENV = Path(sys.executable).parent.parent


def copy_checkout(destination: Path, older_than: float) -> None:
    """The tracked files as they are in the working tree (uncommitted edits included), in a new
    git repository: what a clone gives, without the data, models and caches git does not hold.
    Each file is dated before ``older_than``, the time this test's environment was installed, so
    make takes that environment as up to date with the copy's lock file."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        source, copy = REPO / name, destination / name
        if source.is_file():
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_bytes(source.read_bytes())
            copy.chmod(source.stat().st_mode)
            os.utime(copy, (older_than - 60, older_than - 60))
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "clone"]):
        subprocess.run(["git", *args], cwd=destination, env=env, check=True)


def wait_until_ready(url: str, process: subprocess.Popen, output: Path) -> None:
    deadline = time.time() + 900  # the example data, six stages at 30,000 rows, then the server
    while time.time() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"make run exited {process.returncode}:\n{output.read_text()}")
        try:
            urllib.request.urlopen(url + "/readyz", timeout=2).close()
            return
        except (urllib.error.URLError, OSError):
            time.sleep(1)
    raise AssertionError(f"make run served nothing within 15 minutes:\n{output.read_text()}")


def test_make_run_trains_gates_and_serves_the_model_its_card_can_query(tmp_path):
    # This test's environment stands in for the .venv `make run` would create (`make test` has just
    # created it from the same lock file), under the installer that made it. make must not install
    # into it again: that would point its editable install at the copy.
    installed = next((path for path in (VENV / "bin" / ".installed-uv", VENV / "bin" / ".installed-pip")
                      if path.exists()), None)
    if installed is None:
        pytest.skip(f"{VENV} was not made by make venv")
    installed_at = installed.stat().st_mtime
    project = tmp_path / "slipway"
    copy_checkout(project, older_than=installed_at)
    port = free_port()
    output = tmp_path / "make-run.log"
    installer = installed.name.removeprefix(".installed-")
    env = {key: value for key, value in os.environ.items() if key not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    with open(output, "w") as log:
        make = subprocess.Popen(["make", "run", f"VENV={VENV}", f"PORT={port}", f"INSTALLER={installer}"],
                                cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # its own process group, as a terminal's job
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, make, output)
        printed = output.read_text()
        assert "Pipeline done: bundle in models/, metrics in reports/metrics.json, gate in reports/gate.md." in printed
        assert f"Serving on http://127.0.0.1:{port}/ (model card)" in printed

        metadata = json.loads((project / "models" / "model.json").read_text())
        version = metadata["model_version"]
        # Trained from the clone as it is: make run's own writes (dvc.lock, reports) are not edits.
        assert metadata["git_uncommitted"] == []
        # The README's promise: on a fresh machine, make run trains the committed model anew.
        assert version == json.loads((REPO / "reports" / "metrics.json").read_text())["model_version"]
        changed = subprocess.run(["git", "status", "--porcelain", "data/raw.dvc"], cwd=project,
                                 capture_output=True, text=True, check=True).stdout
        assert changed == "", "the generated example data differs from the committed data/raw.dvc"

        card = html.unescape(urllib.request.urlopen(url + "/", timeout=10).read().decode())
        assert version in card and "PASS" in card
        command = shlex.split(re.search(r"<pre>(curl .*?)</pre>", card, re.S).group(1))
        assert command[:3] == ["curl", "-s", f"{url}/predict"]
        status, answer = post(url, "/predict", json.loads(command[command.index("-d") + 1]))
        assert status == 200, answer
        assert answer["model_version"] == version
        [prediction] = answer["predictions"]
        assert abs(sum(prediction["probabilities"].values()) - 1) < 1e-9

        # The README's loop on one machine, in another shell while it serves: both jobs read what it logged.
        checked = {}
        for target in ("traffic", "drift", "performance"):
            done = subprocess.run(["make", target, f"VENV={VENV}", f"PORT={port}", f"INSTALLER={installer}"],
                                  cwd=project, env=env, capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, done.stdout + done.stderr
            checked[target] = done.stdout
        assert "2000 customers of 2025-07 (drift 0)" in checked["traffic"]
        assert "Drift: PASS" in checked["drift"] and "Served performance: PASS" in checked["performance"]
        assert "2000 of 2000 labels joined" in checked["performance"]
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGINT)  # Ctrl-C, as the README says
            make.wait(timeout=60)
    assert installed.stat().st_mtime == installed_at, "make run installed into the test's environment"
    assert group_exits(make.pid), "Ctrl-C left processes of make run behind"
    with pytest.raises(OSError):  # nothing is left listening
        urllib.request.urlopen(url + "/healthz", timeout=2)


def group_exits(group: int, seconds: float = 30) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    os.killpg(group, signal.SIGKILL)
    return False
