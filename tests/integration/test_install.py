"""The install the README offers besides uv: pip (>= 24, after the bootstrap upgrade) from the
same lock file, through the Makefile's own recipe."""

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_pip_installs_the_lock_file_through_make(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    for name in ("Makefile", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, project / name)
    for name in ("requirements", "src"):
        shutil.copytree(REPO / name, project / name, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    result = subprocess.run(["make", "venv", "INSTALLER=pip"], cwd=project, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "deprecated" not in result.stderr, result.stderr  # a build that stops working one day
    venv = project / ".venv/bin"
    assert (venv / ".installed-pip").is_file()
    checked = subprocess.run([str(venv / "python"), "-m", "pip", "check"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout
    ran = subprocess.run([str(venv / "slipway"), "--help"], capture_output=True, text=True)
    assert ran.returncode == 0 and "Slipway" in ran.stdout
