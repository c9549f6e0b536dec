"""The production model for the gate's champion/challenger check, resolved from the repository.

The production overlay names the image, whose tag is the model version. The release commit of
that version (``release: canary -> model <version>``) carries the ``dvc.lock`` that produced it,
so ``dvc get`` at that commit fetches the very bundle from the DVC remote.
"""

from __future__ import annotations

from pathlib import Path

from slipway import bundle
from slipway.errors import SlipwayError
from slipway.release.dvc import dvc
from slipway.release.gitops import Repo
from slipway.release.overlay import kustomization, read_image


def release_commit(repo: Repo, version: str) -> str | None:
    if repo.git("rev-parse", "--verify", "--quiet", "HEAD", check=False).returncode != 0:
        return None  # a repository without commits has released nothing
    literal = "".join(f"\\{c}" if c in ".^$*+?()[]{}|\\" else c for c in version)
    commits = repo.git("log", "--format=%H", "--extended-regexp",
                       f"--grep=^release: canary -> model {literal}$").stdout.split()
    return commits[-1] if commits else None  # the first release of that version


def fetch_production_bundle(repo: Repo, destination: Path) -> tuple[Path | None, str]:
    """``(bundle directory, description)``, or ``(None, why there is none)``.

    Raises :class:`SlipwayError` when a production model exists but cannot be fetched.
    """
    overlay = kustomization("production", repo.root)
    if not overlay.is_file():
        return None, f"no production overlay ({overlay})"
    version = read_image(overlay).tag
    commit = release_commit(repo, version)
    if commit is None:
        if repo.is_shallow():
            # The release commit may be older than the clone: skipping the comparison would be a guess.
            raise SlipwayError(f"no release commit for the production model {version} in this shallow "
                               "clone: fetch the whole history (git fetch --unshallow; actions/checkout "
                               "with fetch-depth: 0)")
        return None, f"no release commit for the production model {version} (not released by slipway yet)"
    result = dvc("get", str(repo.root.resolve()), "models", "--rev", commit, "-o", str(destination), "--force")
    if result.returncode != 0:
        raise SlipwayError(f"cannot fetch production model {version} from the DVC remote at "
                           f"{commit[:12]}: {result.stderr.strip()}")
    fetched = bundle.load_metadata(destination)["model_version"]
    if fetched != version:
        raise SlipwayError(f"the bundle at {commit[:12]} is model {fetched}, production runs {version}")
    return destination, f"production model {version} from {commit[:12]}"
