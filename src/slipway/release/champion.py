"""The production model for the gate's champion/challenger check, resolved from the repository.

The production overlay names the image, whose tag is the model version. The release commit of
that version (``release: canary -> model <version>``) carries the ``dvc.lock`` that produced it,
so ``dvc get`` at that commit fetches the very bundle from the DVC remote; and the code that
trained it, so its derived features are computed as its image computes them, even after a change
to their definitions or to the helpers they import from the model package.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
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
    """A model the gate compares the new one with: its bundle, and the code of its derived
    features (the code it was trained with). ``feature_code`` is entered while they are computed:
    a feature that imports a helper only when called then gets the helper as it was released."""
    directory: Path
    derived_features: Mapping[str, features.DerivedFeature]
    feature_code: Callable[[], AbstractContextManager] = nullcontext


def release_commit(repo: Repo, version: str) -> str | None:
    if repo.git("rev-parse", "--verify", "--quiet", "HEAD", check=False).returncode != 0:
        return None  # a repository without commits has released nothing
    literal = "".join(f"\\{c}" if c in ".^$*+?()[]{}|\\" else c for c in version)
    commits = repo.git("log", "--format=%H", "--extended-regexp",
                       f"--grep=^release: canary -> model {literal}$").stdout.split()
    return commits[-1] if commits else None  # the first release of that version


class _PackageAtCommit(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports one package's modules from the source they had at one commit."""

    def __init__(self, repo: Repo, commit: str, package: str) -> None:
        self.repo, self.commit, self.package = repo, commit, package
        root = self.path(package).removesuffix(".py")
        self.files = set(repo.git("ls-tree", "-r", "--name-only", commit, "--", root).stdout.split())

    @staticmethod
    def path(name: str) -> str:
        return Path("src", *name.split(".")).with_suffix(".py").as_posix()  # the repository's src/ layout

    def where(self, path: str) -> str:
        return f"{path} at {self.commit[:12]}"

    def find_spec(self, name: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        if name != self.package and not name.startswith(self.package + "."):
            return None
        init = self.path(name).removesuffix(".py") + "/__init__.py"
        if name == self.package or init in self.files:
            return importlib.util.spec_from_loader(name, self, origin=init, is_package=True)
        if self.path(name) in self.files:
            return importlib.util.spec_from_loader(name, self, origin=self.path(name))
        return None  # not in the package at that commit: the import fails, as it would have there

    def exec_module(self, module: types.ModuleType) -> None:
        path = module.__spec__.origin
        source = self.repo.git("show", f"{self.commit}:{path}").stdout if path in self.files else ""
        # dont_inherit: the old code runs with its own __future__ imports, not this module's.
        exec(compile(source, self.where(path), "exec", dont_inherit=True), module.__dict__)  # noqa: S102


@contextmanager
def _package_at(repo: Repo, commit: str, package: str,
                modules: dict[str, types.ModuleType]) -> Iterator[_PackageAtCommit]:
    """While inside, ``import <package>...`` loads that (imported) package as it was at ``commit``;
    on the way out this checkout's modules are back, and what was imported keeps its own old code.
    ``modules`` holds what the visits import: each visit finds the modules the earlier ones loaded."""
    def loaded() -> list[str]:
        return [name for name in sys.modules if name == package or name.startswith(package + ".")]

    saved = {name: sys.modules.pop(name) for name in loaded()}
    sys.modules.update(modules)
    finder = _PackageAtCommit(repo, commit, package)
    sys.meta_path.insert(0, finder)
    try:
        yield finder
    finally:
        sys.meta_path.remove(finder)
        modules.update((name, sys.modules.pop(name)) for name in loaded())
        sys.modules.update(saved)
        parent, _, child = package.rpartition(".")
        setattr(sys.modules[parent], child, saved[package])  # importing the old package rebound it


class FeatureCode:
    """The model package as it was at one commit, entered as a context: the same modules on every
    visit, and any other module of that package as it was there."""

    def __init__(self, repo: Repo, commit: str) -> None:
        self.repo, self.commit = repo, commit
        self.modules: dict[str, types.ModuleType] = {}

    def __call__(self) -> AbstractContextManager[_PackageAtCommit]:
        return _package_at(self.repo, self.commit, features.__name__.rpartition(".")[0], self.modules)


def derived_features_at(repo: Repo, commit: str) -> tuple[Mapping[str, features.DerivedFeature], FeatureCode]:
    """``DERIVED_FEATURES`` as :mod:`slipway.model.features` defined it at ``commit``, and that
    commit's package, to enter while they are computed.

    The module runs from the repository's own reviewed history, as that commit's image runs it,
    and so do the modules it imports from its own package (:mod:`slipway.model`), when it is
    loaded or, inside the returned context, when a feature is computed; libraries (numpy, ...) are
    this checkout's.
    """
    code = FeatureCode(repo, commit)
    with code() as package:
        where = package.where(package.path(features.__name__))
        if package.path(features.__name__) not in package.files:
            raise SlipwayError(f"the production model's feature code: no {where}")
        try:
            module = importlib.import_module(features.__name__)
        except Exception as exc:
            raise SlipwayError(f"the production model's feature code ({where}) does not load with this "
                               f"checkout's libraries: {type(exc).__name__}: {exc}") from None
    table = getattr(module, "DERIVED_FEATURES", None)
    if not isinstance(table, Mapping):
        raise SlipwayError(f"the production model's feature code ({where}) defines no DERIVED_FEATURES table")
    return table, code


def fetch_production_bundle(repo: Repo, destination: Path) -> Champion | str:
    """The production model, or why there is none.

    Raises :class:`SlipwayError` when a production model exists but cannot be fetched.
    """
    overlay = kustomization("production", repo.root)
    if not overlay.is_file():
        return f"no production overlay ({overlay})"
    version = read_image(overlay).model_version
    commit = release_commit(repo, version)
    if commit is None:
        if repo.is_shallow():
            # The release commit may be older than the clone: skipping the comparison would be a guess.
            raise SlipwayError(f"no release commit for the production model {version} in this shallow "
                               "clone: fetch the whole history (git fetch --unshallow; actions/checkout "
                               "with fetch-depth: 0)")
        return f"no release commit for the production model {version} (not released by slipway yet)"
    result = dvc("get", str(repo.root.resolve()), "models", "--rev", commit, "-o", str(destination), "--force")
    if result.returncode != 0:
        raise SlipwayError(f"cannot fetch production model {version} from the DVC remote at "
                           f"{commit[:12]}: {result.stderr.strip()}")
    fetched = bundle.load_metadata(destination)["model_version"]
    if fetched != version:
        raise SlipwayError(f"the bundle at {commit[:12]} is model {fetched}, production runs {version}")
    return Champion(destination, *derived_features_at(repo, commit))
