"""DVC as a command, from the environment slipway runs in: CI calls ``.venv/bin/slipway`` without
the virtual environment on its PATH, and the ``dvc`` beside that Python is the locked one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def dvc(*args: str) -> subprocess.CompletedProcess:
    beside = Path(sys.executable).parent / "dvc"
    return subprocess.run([str(beside) if beside.exists() else "dvc", *args], capture_output=True, text=True)

