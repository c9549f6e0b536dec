"""A scratch copy of the template (git + DVC repository) for tests that run the real tools."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent

# Small enough that a full `dvc repro` takes seconds.
SMALL_DATA = {"months": 4, "rows_per_month": 500}
FAST_TRAINING = {"max_iter": 40}


def pytest_collection_modifyitems(items):
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Project:
    root: Path
    env: dict

    def run(self, *args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        result = subprocess.run(args, cwd=self.root, env=self.env, capture_output=True, text=True, **kwargs)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {result.returncode}\n"
                                 f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
        return result

    def repro(self, check: bool = True) -> subprocess.CompletedProcess:
        return self.run("dvc", "repro", check=check)

    @property
    def params(self) -> dict:
        return yaml.safe_load((self.root / "params.yaml").read_text())

    def set_params(self, changes: dict[str, object]) -> None:
        """Set dotted keys (``"train.hyperparameters.max_iter": 10``) in params.yaml."""
        params = self.params
        for dotted, value in changes.items():
            node = params
            *parents, leaf = dotted.split(".")
            for part in parents:
                node = node[part]
            node[leaf] = value
        (self.root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    def commit(self, message: str) -> None:
        self.run("git", "add", "-A")
        self.run("git", "commit", "-qm", message)


def ran_stages(output: str) -> list[str]:
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")]


@pytest.fixture
def project(tmp_path) -> Project:
    """The template's pipeline files in a fresh git + DVC repository, with a local remote."""
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("dvc.yaml", "params.yaml", ".dvcignore", ".gitignore"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(REPO / "kustomize", root / "kustomize")  # the gate's champion is production's model
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    project = Project(root, env)
    project.run("git", "init", "-q", "-b", "main")
    project.run("dvc", "init", "-q")
    project.run("dvc", "remote", "add", "-d", "local", str(tmp_path / "dvc-remote"))
    project.set_params({f"example_data.{k}": v for k, v in SMALL_DATA.items()}
                       | {f"train.hyperparameters.{k}": v for k, v in FAST_TRAINING.items()}
                       | {"evaluate.importance_sample": 300})
    return project


@pytest.fixture
def example_project(project) -> Project:
    """``project`` with the example data generated and tracked, committed."""
    project.run("slipway", "example-data")
    project.run("dvc", "add", "-q", "data/raw")
    project.commit("example data")
    return project
