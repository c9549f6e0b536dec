"""The Makefile's own install recipe: pip (>= 24, after the bootstrap upgrade) from the same lock
file as uv, and an environment that holds what the lock lists and nothing else, with either."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def make_project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    for name in ("Makefile", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, project / name)
    for name in ("requirements", "src"):
        shutil.copytree(REPO / name, project / name, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    return project


def make_venv(project: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(["make", "venv", *args], cwd=project, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_pip_installs_the_lock_file_through_make(tmp_path):
    result = make_venv(project := make_project(tmp_path), "INSTALLER=pip")
    assert "deprecated" not in result.stderr, result.stderr  # a build that stops working one day
    venv = project / ".venv/bin"
    assert (venv / ".installed-pip").is_file()
    checked = subprocess.run([str(venv / "python"), "-m", "pip", "check"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout
    ran = subprocess.run([str(venv / "slipway"), "--help"], capture_output=True, text=True)
    assert ran.returncode == 0 and "Slipway" in ran.stdout


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_a_package_the_lock_no_longer_lists_leaves_the_environment(tmp_path, installer):
    """What passes here must pass in CI's clean clone: after the lock changes, a package only the
    older lock listed (or one installed by hand) is gone. Small locks of packages the real one pins
    keep this quick; the project itself goes in without its dependencies, as always."""
    project = make_project(tmp_path)
    lock = project / "requirements" / "small.txt"
    lock.write_text("six==1.17.0\n")
    make_venv(project, f"INSTALLER={installer}", "LOCK=requirements/small.txt")
    python = str(project / ".venv/bin/python")

    def installed() -> set[str]:
        listed = subprocess.run([python, "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
                                capture_output=True, text=True, check=True).stdout
        return {line.split("==")[0].lower() for line in listed.splitlines()}

    assert {"six", "slipway", "pip", "uv"} <= installed()
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "wcwidth==0.9.4"],
                   check=True)
    lock.write_text("idna==3.20\n")
    stamp = project / f".venv/bin/.installed-{installer}"
    os.utime(stamp, (stamp.stat().st_mtime - 10,) * 2)  # the lock is newer, as after a pull
    make_venv(project, f"INSTALLER={installer}", "LOCK=requirements/small.txt")
    now = installed()
    assert {"idna", "slipway", "pip", "uv"} <= now
    assert not {"six", "wcwidth"} & now


def test_a_python_the_lock_cannot_serve_is_named_before_anything_is_installed(tmp_path):
    """numpy<2 has no wheels for Python 3.13: refused at once, not after minutes of failing builds."""
    project = make_project(tmp_path)
    python = tmp_path / "python3.13"
    python.write_text('#!/bin/sh\n[ "$1" = --version ] && echo "Python 3.13.0" && exit 0\nexit 1\n')
    python.chmod(0o755)
    result = subprocess.run(["make", "venv", f"PYTHON={python}"], cwd=project, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert (f"make venv: Slipway needs Python 3.11 or 3.12, and {python} is Python 3.13.0; name another with "
            "PYTHON=, e.g. make run PYTHON=python3.11") in result.stderr
    assert not (project / ".venv").exists()
