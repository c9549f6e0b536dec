"""Reading and setting an overlay's image, the way `kustomize edit set image` does, keeping the
file's comments and layout (ruamel.yaml round trip), written atomically."""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML, YAMLError

from slipway import io as slipway_io
from slipway.errors import SlipwayError

IMAGE_NAME = "slipway-model-server"  # the placeholder name the base Deployment uses
OVERLAYS = Path("kustomize/overlays")

# What the server image holds besides the model (the Dockerfile's COPYs). Its tag is the model
# version plus a hash of these, so that a change to the server's code, its dependencies or the
# Dockerfile is a new image, released to the canary and promoted on approval like a new model,
# and never the same tag pushed again over the image production runs. (tests/test_release.py
# holds this list to the Dockerfile's COPYs and .dockerignore.)
BUILD_INPUTS = ("Dockerfile", "requirements/bootstrap.txt", "requirements/serving.txt", "pyproject.toml", "src")
BUILD_ARTEFACTS = ("__pycache__", ".egg-info", ".pyc")  # left by installs and imports, not code
BUILD_TAG = re.compile(r"(.+)-([0-9a-f]{8})")  # model version, build hash


# The repository part of an image reference, as the OCI distribution grammar has it: an optional
# registry host (and port), then lowercase path components.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?"
REPOSITORY = re.compile(rf"(?:{_HOST}/)?{_COMPONENT}(?:/{_COMPONENT})*")
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")  # the same grammar's tag
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")  # what registries address a manifest by


def check_repository(value: str, where: str) -> str:
    """``value`` if it can name an image repository (the tag, added later, is :func:`image_tag`)."""
    if not REPOSITORY.fullmatch(value):
        raise SlipwayError(f"{where} must be an image repository without a tag (registry/path, lowercase "
                           f"path), e.g. ghcr.io/your-org/slipway; got {value!r}")
    return value


@dataclass(frozen=True)
class Image:
    repository: str
    tag: str
    # The registry's digest of the tag when it was released: the cluster pulls by it, so what runs is
    # what was released even if the tag is pushed again. Overlays written before pinning have none.
    digest: str | None = None

    def __str__(self) -> str:
        return f"{self.repository}:{self.tag}" + (f"@{self.digest}" if self.digest else "")

    def same_build(self, other: Image) -> bool:
        """Whether both name one build (a tag names one), pinned or not."""
        return (self.repository, self.tag) == (other.repository, other.tag)

    @property
    def model_version(self) -> str:
        """The model the image serves: the tag without its build hash (tags written before the
        hash was added are the model version alone)."""
        tagged = BUILD_TAG.fullmatch(self.tag)
        return tagged[1] if tagged else self.tag


def build_id(root: Path = Path(".")) -> str:
    """A hash of :data:`BUILD_INPUTS` as they are under ``root``: names and contents."""
    digest = hashlib.sha256()
    for name in BUILD_INPUTS:
        top = root / name
        files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
        for path in files:
            relative = path.relative_to(root).as_posix()
            if any(part.endswith(BUILD_ARTEFACTS) for part in relative.split("/")):
                continue
            digest.update(relative.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:8]


def image_tag(model_version: str, root: Path = Path(".")) -> str:
    """The server image's tag: the model it serves, then the build it runs in."""
    return f"{model_version}-{build_id(root)}"


def kustomization(track: str, root: Path = Path(".")) -> Path:
    return root / OVERLAYS / track / "kustomization.yaml"


def _yaml() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096  # a digest stays on its key's line
    return yaml


def _load(yaml: YAML, text: str, where: str):
    """The kustomization as a mapping; broken YAML or another shape is an error naming the file."""
    try:
        data = yaml.load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark else ""
        raise SlipwayError(f"{where}: not valid YAML{line}: {getattr(exc, 'problem', None) or exc}") from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise SlipwayError(f"{where}: not a kustomization (a mapping of fields)")
    images = data.get("images") or []
    if not isinstance(images, list) or not all(isinstance(entry, dict) for entry in images):
        raise SlipwayError(f"{where}: images must be a list of entries (name, newName, newTag)")
    return data


def _entry(data, where: str):
    entries = [e for e in data.get("images") or [] if e.get("name") == IMAGE_NAME]
    if not entries:
        raise SlipwayError(f"{where}: no images entry named {IMAGE_NAME!r}")
    if len(entries) > 1:  # which one kustomize applies is not what a reader of the file would guess
        raise SlipwayError(f"{where}: {len(entries)} images entries are named {IMAGE_NAME!r}; keep one")
    return entries[0]


def parse_image(text: str, where: str) -> Image:
    """The overlay's server image. It is checked as an image reference, since promote and
    rollback copy it into production: a tag YAML reads as a number (``1.10`` is 1.1) or with a
    space would otherwise reach the cluster as an image nobody built."""
    entry = _entry(_load(_yaml(), text, where), where)
    if not entry.get("newName") or not entry.get("newTag"):
        raise SlipwayError(f"{where}: images entry {IMAGE_NAME!r} needs newName and newTag")
    name, tag = entry["newName"], entry["newTag"]
    if not isinstance(tag, str):
        raise SlipwayError(f"{where}: images entry {IMAGE_NAME!r}: newTag must be text, got {tag!r}; "
                           "quote it in the YAML")
    if not TAG.fullmatch(tag):
        raise SlipwayError(f"{where}: images entry {IMAGE_NAME!r}: newTag {tag[:140]!r} is not an image tag "
                           "(letters, digits, '_', '.', '-'; at most 128 characters)")
    if not isinstance(name, str):
        raise SlipwayError(f"{where}: images entry {IMAGE_NAME!r}: newName must be text, got {name!r}")
    digest = entry.get("digest")
    if digest is not None and not (isinstance(digest, str) and DIGEST.fullmatch(digest)):
        raise SlipwayError(f"{where}: images entry {IMAGE_NAME!r}: digest {str(digest)[:140]!r} is not an image "
                           "digest (sha256: and 64 lowercase hex digits)")
    return Image(check_repository(name, f"{where}: images entry {IMAGE_NAME!r}: newName"), tag, digest)


def _read(path: Path) -> str:
    if not path.is_file():
        raise SlipwayError(f"{path}: not found")
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SlipwayError(f"{path}: not UTF-8 text ({exc})") from None


def read_image(path: Path) -> Image:
    return parse_image(_read(path), str(path))


def set_image(path: Path, image: Image) -> bool:
    """Point the overlay at ``image`` (its digest too, or none); ``False`` (and no write) when it already does."""
    yaml = _yaml()
    data = _load(yaml, _read(path), str(path))
    entry = _entry(data, str(path))
    if (str(entry.get("newName")), str(entry.get("newTag")), entry.get("digest")) == (
            image.repository, image.tag, image.digest):
        return False
    entry["newName"] = image.repository
    entry["newTag"] = image.tag
    if image.digest:
        entry["digest"] = image.digest
    else:
        entry.pop("digest", None)
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    slipway_io.write_text(path, buffer.getvalue())
    return True
