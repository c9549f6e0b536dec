"""The production model for the gate's champion/challenger check, resolved from the repository.

The production overlay names the image, whose tag is the model version. The release commit of
that version (``release: canary -> model <version>``) carries the ``dvc.lock`` that produced it,
so ``dvc get`` at that commit fetches the very bundle from the DVC remote; and the code that
trained it, so its derived features are computed as its image computes them, even after a change
to their definitions.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from slipway import bundle
from slipway.errors import SlipwayError
from slipway.model import features
from slipway.release.dvc import dvc
from slipway.release.gitops import Repo
from slipway.release.overlay import kustomization, read_image


@dataclass(frozen=True)
class Champion:
    """The production model's bundle, what to call it, and its derived features' code."""
    directory: Path
    description: str
    derived_features: Mapping[str, features.DerivedFeature]


def release_commit(repo: Repo, version: str) -> str | None:
    if repo.git("rev-parse", "--verify", "--quiet", "HEAD", check=False).returncode != 0:
        return None  # a repository without commits has released nothing
    literal = "".join(f"\\{c}" if c in ".^$*+?()[]{}|\\" else c for c in version)
    commits = repo.git("log", "--format=%H", "--extended-regexp",
                       f"--grep=^release: canary -> model {literal}$").stdout.split()
    return commits[-1] if commits else None  # the first release of that version


def derived_features_at(repo: Repo, commit: str) -> Mapping[str, features.DerivedFeature]:
    """``DERIVED_FEATURES`` as :mod:`slipway.model.features` defined it at ``commit``.

    The module is run from the repository's own reviewed history, as that commit's image runs it;
    it may import this checkout's libraries, not its own old neighbours.
    """
    path = Path("src", *features.__name__.split(".")).with_suffix(".py").as_posix()  # the repository's src/ layout
    where = f"{path} at {commit[:12]}"
    shown = repo.git("show", f"{commit}:{path}", check=False)
    if shown.returncode != 0:
        raise SlipwayError(f"the production model's feature code: no {where}")
    module = types.ModuleType(f"{features.__name__}@{commit[:12]}")
    module.__file__ = where
    sys.modules[module.__name__] = module  # dataclasses look up the module of the classes they make
    try:
        exec(compile(shown.stdout, where, "exec"), module.__dict__)  # noqa: S102 (the repository's own code)
    except Exception as exc:
        raise SlipwayError(f"the production model's feature code ({where}) does not run with this "
                           f"checkout's libraries: {type(exc).__name__}: {exc}") from None
    finally:
        del sys.modules[module.__name__]
    table = getattr(module, "DERIVED_FEATURES", None)
    if not isinstance(table, Mapping):
        raise SlipwayError(f"the production model's feature code ({where}) defines no DERIVED_FEATURES table")
    return table


def fetch_production_bundle(repo: Repo, destination: Path) -> tuple[Champion | None, str]:
    """``(champion, description)``, or ``(None, why there is none)``.

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
    description = f"production model {version} from {commit[:12]}"
    return Champion(destination, description, derived_features_at(repo, commit)), description
