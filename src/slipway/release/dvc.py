"""DVC as a command, from the environment slipway runs in: CI calls ``.venv/bin/slipway`` without
the virtual environment on its PATH, and the ``dvc`` beside that Python is the locked one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def dvc(*args: str) -> subprocess.CompletedProcess:
    beside = Path(sys.executable).parent / "dvc"
    return subprocess.run([str(beside) if beside.exists() else "dvc", *args], capture_output=True, text=True)


def pipeline_stages(dvc_yaml: Path) -> dict:
    """The ``stages`` of a ``dvc.yaml``, in its order; none when there is no such file."""
    if not dvc_yaml.is_file():
        return {}
    import yaml

    return yaml.safe_load(dvc_yaml.read_text()).get("stages") or {}


def uncached_outputs(root: Path) -> list[str]:
    """The stage outputs ``dvc.yaml`` marks ``cache: false`` (metrics, plots, reports): git, not
    the DVC cache, holds them, so a commit of ``dvc.lock`` must carry them or the two disagree."""
    found = []
    for stage in pipeline_stages(root / "dvc.yaml").values():
        for kind in ("outs", "metrics", "plots"):
            for entry in stage.get(kind) or []:
                if isinstance(entry, dict):
                    found += [name for name, options in entry.items() if (options or {}).get("cache") is False]
    return found
