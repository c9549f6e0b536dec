"""Where an artefact came from: the checkout's git commit, for model.json and the image's labels."""

from __future__ import annotations

import subprocess


def git_commit() -> str | None:
    """``HEAD`` of the checkout this runs in; ``None`` outside a git checkout (or without git)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None
