"""Where an artefact came from: the checkout's git commit, and what in the checkout differed from it,
for model.json and the image's labels."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from typing import Any

# Changed files a model card or release message lists before "and N more".
LISTED_CHANGES = 5


def _git(*args: str) -> str | None:
    """``git``'s output; ``None`` outside a git checkout (or without git)."""
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout


def git_commit() -> str | None:
    """``HEAD`` of the checkout this runs in; ``None`` outside a git checkout (or without git)."""
    return (_git("rev-parse", "HEAD") or "").strip() or None


def uncommitted_changes(ignore: Iterable[str] = ()) -> list[str] | None:
    """The tracked files that differ from ``HEAD`` (staged or not), relative to the repository's
    top, sorted; ``None`` outside a git checkout. A model trained with edits to params or code not
    yet committed did not come from ``HEAD`` alone, and its card must say so. Not counted: the
    paths in ``ignore`` (relative to the working directory: what the pipeline itself writes into
    git, ``dvc.lock`` and the ``cache: false`` outputs) and ``.gitignore`` files (DVC adds its
    outputs to them); nor untracked files, which nothing committed could have read."""
    excluded = [f":(exclude,literal){path}" for path in ignore]
    status = _git("status", "--porcelain=v1", "-z", "--no-renames", "--untracked-files=no",
                  "--", ":/", ":(top,exclude,glob)**/.gitignore", *excluded)
    if status is None:
        return None
    # Each entry is two status letters, a space and the path (NUL-separated, never quoted).
    return sorted(entry[3:] for entry in status.split("\0") if entry)


def describe_source(commit: Any, uncommitted: Any) -> str:
    """The source ``model.json`` says a model was trained from, in words: its ``git_commit`` and
    ``git_uncommitted`` (either may be missing, or edited into another shape, in an old bundle)."""
    text = commit if isinstance(commit, str) and commit else "unknown"
    if isinstance(uncommitted, list) and uncommitted:
        listed = ", ".join(map(str, uncommitted[:LISTED_CHANGES]))
        more = len(uncommitted) - LISTED_CHANGES
        text += f" with uncommitted changes to {listed}" + (f" and {more} more" if more > 0 else "")
    return text
