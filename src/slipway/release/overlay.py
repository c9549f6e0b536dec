"""Reading and setting an overlay's image, the way `kustomize edit set image` does, keeping the
file's comments and layout (ruamel.yaml round trip), written atomically."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML

from slipway import io as slipway_io
from slipway.errors import SlipwayError

IMAGE_NAME = "slipway-model-server"  # the placeholder name the base Deployment uses
OVERLAYS = Path("kustomize/overlays")


@dataclass(frozen=True)
class Image:
    repository: str
    tag: str

    def __str__(self) -> str:
        return f"{self.repository}:{self.tag}"


def kustomization(track: str, root: Path = Path(".")) -> Path:
    return root / OVERLAYS / track / "kustomization.yaml"


def _yaml() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def parse_image(text: str, where: str) -> Image:
    data = _yaml().load(text) or {}
    for entry in data.get("images") or []:
        if entry.get("name") == IMAGE_NAME:
            if not entry.get("newName") or not entry.get("newTag"):
                raise SlipwayError(f"{where}: images entry {IMAGE_NAME!r} needs newName and newTag")
            return Image(str(entry["newName"]), str(entry["newTag"]))
    raise SlipwayError(f"{where}: no images entry named {IMAGE_NAME!r}")


def read_image(path: Path) -> Image:
    if not path.is_file():
        raise SlipwayError(f"{path}: not found")
    return parse_image(path.read_text(), str(path))


def set_image(path: Path, image: Image) -> bool:
    """Point the overlay at ``image``; ``False`` (and no write) when it already does."""
    yaml = _yaml()
    data = yaml.load(path.read_text())
    entry = next((e for e in data.get("images") or [] if e.get("name") == IMAGE_NAME), None)
    if entry is None:
        raise SlipwayError(f"{path}: no images entry named {IMAGE_NAME!r}")
    if str(entry.get("newName")) == image.repository and str(entry.get("newTag")) == image.tag:
        return False
    entry["newName"] = image.repository
    entry["newTag"] = image.tag
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    slipway_io.write_text(path, buffer.getvalue())
    return True
