"""Offline checks of what Argo CD deploys: render each overlay with the project's own kubectl,
validate built-in kinds strictly against the Kubernetes schemas and custom resources against
their upstream CRD schemas, both rejecting unknown fields as the API server would."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml

from slipway.errors import SlipwayError
from slipway.release.overlay import OVERLAYS, read_image

KUBERNETES_VERSION = "1.35.0"
KUBECTL = Path(".tools/bin/kubectl")
RENDERED = ("kustomize/overlays/canary", "kustomize/overlays/production", "k8s/argocd", "k8s/monitoring")
# Opt-in Kustomize components, each checked as rendered by every overlay that would list it.
COMPONENTS = {"kustomize/components/alert-relay": ("kustomize/overlays/production",),
              "kustomize/components/autoscaling": ("kustomize/overlays/production",),
              "kustomize/components/buffering-proxy": ("kustomize/overlays/canary", "kustomize/overlays/production")}


class ManifestError(SlipwayError):
    """A manifest does not render or does not validate."""


def kubectl() -> str:
    path = os.environ.get("SLIPWAY_KUBECTL") or str(KUBECTL)
    if not Path(path).is_file():
        raise ManifestError(f"{path} not found: run `make tools` (installs the project's kubectl)")
    return path


def render(directory: str | Path) -> list[dict]:
    result = subprocess.run([kubectl(), "kustomize", str(directory)], capture_output=True, text=True)
    if result.returncode != 0:
        raise ManifestError(f"{directory}: kubectl kustomize failed: {result.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def render_with_component(overlay: str | Path, component: str | Path) -> list[dict]:
    """``overlay`` as it renders once its kustomization lists ``component`` (so the overlay's
    namespace and images apply to it): a sibling copy, where every relative path still resolves."""
    overlay = Path(overlay)
    with tempfile.TemporaryDirectory(dir=overlay.parent, prefix=f".{overlay.name}-with-") as tmp:
        shutil.copytree(overlay, tmp, dirs_exist_ok=True)
        kustomization = yaml.safe_load((Path(tmp) / "kustomization.yaml").read_text())
        kustomization["components"] = [*kustomization.get("components", []), os.path.relpath(component, tmp)]
        (Path(tmp) / "kustomization.yaml").write_text(yaml.safe_dump(kustomization, sort_keys=False))
        return render(tmp)


def strict(schema: dict) -> dict:
    """The CRD schema with unknown fields forbidden wherever the CRD lists the known ones
    (the API server prunes or rejects them; a typo must not pass silently)."""
    schema = copy.deepcopy(schema)

    def visit(node):
        if isinstance(node, dict):
            if ("properties" in node and "additionalProperties" not in node
                    and not node.get("x-kubernetes-preserve-unknown-fields")):
                node["additionalProperties"] = False
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(schema)
    return schema


def crd_schemas(crd_dir: Path) -> dict[tuple[str, str], dict]:
    """``(apiVersion, kind) -> JSON schema`` for every CRD file in ``crd_dir``."""
    schemas = {}
    for path in sorted(crd_dir.glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                schemas[f"{group}/{version['name']}", kind] = strict(version["schema"]["openAPIV3Schema"])
    return schemas


def _where(error) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(root)"


def validate(docs: list[dict], crds: dict[tuple[str, str], dict] | None) -> list[str]:
    """Problems, one line each: ``Kind/name: path: message``."""
    import jsonschema
    import kubernetes_validate

    problems = []
    for doc in docs:
        key = (doc.get("apiVersion", ""), doc.get("kind", ""))
        name = f"{key[1]}/{doc.get('metadata', {}).get('name', '?')}"
        if crds and key in crds:  # a custom resource
            validator = jsonschema.Draft7Validator(crds[key])
            problems += [f"{name}: {_where(e)}: {e.message}" for e in validator.iter_errors(doc)]
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except jsonschema.ValidationError as exc:  # kubernetes_validate's errors derive from it
            problems.append(f"{name}: {_where(exc)}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError:
            if crds is not None:  # without the CRDs, custom resources cannot be checked here
                problems.append(f"{name}: no schema for {key[0]} {key[1]} (neither Kubernetes "
                                f"{KUBERNETES_VERSION} nor the CRDs)")
    return problems


def check(directories=RENDERED, crd_dir: Path | None = None, components=COMPONENTS) -> list[str]:
    """Render and validate each directory and component. Custom resources are skipped (and the
    returned notes say so) when ``crd_dir`` is absent."""
    crds = crd_schemas(crd_dir) if crd_dir and crd_dir.is_dir() else None
    problems = []
    missing = [d for d in [*directories, *components] if not Path(d).is_dir()]
    if missing:  # nothing checked is not a pass
        raise ManifestError(f"{', '.join(missing)}: not found (run from the repository root)")
    for directory in directories:
        problems += [f"{directory}: {p}" for p in validate(render(directory), crds)]
        if Path(directory).parent == OVERLAYS:
            # Rendered without its images entry, a track would run the base's placeholder image;
            # and promote copies the canary's entry into production as it is.
            try:
                read_image(Path(directory) / "kustomization.yaml")
            except SlipwayError as exc:
                problems.append(str(exc))
    for component, overlays in components.items():
        for overlay in overlays:
            problems += [f"{overlay} with {component}: {p}"
                         for p in validate(render_with_component(overlay, component), crds)]
    return problems
