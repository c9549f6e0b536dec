"""The buffering-proxy component's nginx on 127.0.0.1, for the serving benchmark and the tests.

It runs ``kustomize/components/buffering-proxy/nginx.conf`` as the pod does; only the addresses
and the scratch directory differ, and each replacement must find what it replaces.
"""

from __future__ import annotations

import getpass
from pathlib import Path

from slipway import system_packages

CONFIG = Path(__file__).resolve().parents[1] / "kustomize/components/buffering-proxy/nginx.conf"


def nginx() -> str:
    found = system_packages.find("nginx")
    if found is None:
        raise FileNotFoundError("nginx not found (Debian: apt-get install nginx; `make system-packages` or "
                                "`make bench-serve` installs it)")
    return found


def command(server_url: str, port: int, scratch: Path) -> list[str]:
    """nginx in the foreground on 127.0.0.1:``port``, proxying to ``server_url``, its temporary
    files and pid in ``scratch``."""
    scratch.mkdir(parents=True, exist_ok=True)
    conf = CONFIG.read_text()
    for pod, here in (("/tmp/", f"{scratch}/"), ("listen 8000;", f"listen 127.0.0.1:{port};"),
                      ("http://127.0.0.1:8080;", f"{server_url};")):
        if pod not in conf:
            raise ValueError(f"{CONFIG} no longer says {pod!r}")
        conf = conf.replace(pod, here)
    # As root (CI), nginx would run its workers as nobody, who may not enter a private scratch
    # directory; for any other user nginx ignores the directive.
    (scratch / "nginx.conf").write_text(f"user {getpass.getuser()};\n" + conf)
    return [nginx(), "-p", str(scratch), "-c", str(scratch / "nginx.conf"), "-g", "daemon off;"]
