import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from slipway import system_packages
from slipway.system_packages import BENCH_NEEDED, NEEDED, SBIN


def finding(present: set[str], seen_paths: list[str] | None = None):
    """A stand-in for shutil.which that finds only the commands in ``present``."""
    def which(command, path=None):
        if seen_paths is not None:
            seen_paths.append(path)
        return f"/usr/bin/{command}" if command in present else None
    return which


def test_nothing_is_missing_when_every_command_is_found():
    assert system_packages.missing(finding(set(NEEDED))) == []


def test_missing_commands_name_their_packages_once_each_and_sbin_is_searched():
    paths = []
    absent = {"prometheus", "promtool", "java"}
    assert system_packages.missing(finding(set(NEEDED) - absent, paths)) == ["default-jre-headless", "prometheus"]
    assert all(path.split(os.pathsep)[-len(SBIN):] == list(SBIN) for path in paths)  # nginx lives in /usr/sbin


def test_root_installs_with_apt_get_itself_and_anyone_else_through_sudo_without_a_prompt():
    which = finding({"apt-get", "sudo"})
    as_root = system_packages.install_commands(["nginx", "npm"], is_root=True, which=which)
    apt_get = ["apt-get", "-o", "DPkg::Lock::Timeout=300"]  # waits while unattended-upgrades holds dpkg's lock
    assert as_root == [[*apt_get, "update", "-qq"],
                       ["env", "DEBIAN_FRONTEND=noninteractive", *apt_get, "install", "-y", "-qq",
                        "--no-install-recommends", "nginx", "npm"]]
    as_user = system_packages.install_commands(["nginx", "npm"], is_root=False, which=which)
    assert as_user == [["sudo", "-n", *command] for command in as_root]
    assert system_packages.install_commands([], is_root=False, which=finding(set())) == []


@pytest.mark.parametrize(("present", "is_root", "message"), [
    ({"sudo"}, True, "the tests need nginx, and this machine has no apt-get: install them with its own package "
                     "manager"),
    ({"apt-get"}, False, r"the tests need nginx, and installing them needs root \(there is no sudo\): as root, run "
                         "apt-get install nginx"),
])
def test_no_way_to_install_is_named(present, is_root, message):
    with pytest.raises(SystemExit, match=f"^{message}$"):
        system_packages.install_commands(["nginx"], is_root=is_root, which=finding(present))


def test_install_runs_apt_get_then_finds_the_commands():
    present = set(NEEDED) - {"prometheus-pushgateway"} | {"apt-get"}
    ran = []

    def run(command):
        ran.append(command)
        if "install" in command:
            present.add("prometheus-pushgateway")
        return subprocess.CompletedProcess(command, 0)

    said = []
    assert system_packages.install(run, finding(present), is_root=True, say=said.append) == (
        "installed prometheus-pushgateway")
    assert said == ["the tests need prometheus-pushgateway: apt-get install ..."]
    assert [command[-1] for command in ran] == ["-qq", "prometheus-pushgateway"]
    assert system_packages.install(run, finding(present), is_root=True, say=said.append) == (
        "every package the tests run is here")
    assert len(ran) == 2 and len(said) == 1  # nothing missing: apt-get is not run at all


def test_the_benchmarks_install_their_own_commands_and_say_so():
    present = set(NEEDED) | {"apt-get"}  # every command of the tests', and so nginx: wrk alone is missing
    ran, said = [], []

    def run(command):
        ran.append(command)
        if "install" in command:
            present.add("wrk")
        return subprocess.CompletedProcess(command, 0)

    assert system_packages.install(run, finding(present), is_root=True, say=said.append) == (
        "every package the tests run is here")
    assert system_packages.install(run, finding(present), is_root=True, say=said.append, purpose="bench") == (
        "installed wrk")
    assert said == ["the benchmarks need wrk: apt-get install ..."] and ran[-1][-1] == "wrk"
    assert system_packages.install(run, finding(present), is_root=True, say=said.append, purpose="bench") == (
        "every package the benchmarks run is here")
    with pytest.raises(SystemExit, match=r"^the benchmarks need nginx, wrk, and installing them needs root"):
        system_packages.install(run, finding({"apt-get"}), is_root=False, say=said.append, purpose="bench")


def test_a_failed_apt_get_or_a_command_still_missing_is_an_error():
    present = set(NEEDED) - {"nginx"} | {"apt-get", "sudo"}

    def failing(command):
        return subprocess.CompletedProcess(command, 1 if command[:2] == ["sudo", "-n"] else 0)

    said = []
    with pytest.raises(SystemExit, match=r"^sudo -n apt-get -o DPkg::Lock::Timeout=300 update -qq exited 1; "
                                         r"the tests need nginx: as root, run apt-get install nginx$"):
        system_packages.install(failing, finding(present), is_root=False, say=said.append)
    assert said == ["the tests need nginx: apt-get install (through sudo) ..."]

    def installing_nothing(command):
        return subprocess.CompletedProcess(command, 0)

    with pytest.raises(SystemExit, match=r"^apt-get installed nginx, and the commands of nginx are still not found$"):
        system_packages.install(installing_nothing, finding(present), is_root=True, say=said.append)


def executable(path: Path, text: str = "#!/bin/sh\nexit 0\n") -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def module(*args: str, path: Path) -> subprocess.CompletedProcess:
    env = {name: value for name, value in os.environ.items() if name != "DEBIAN_FRONTEND"} | {"PATH": str(path)}
    return subprocess.run([sys.executable, "-m", "slipway.system_packages", *args], capture_output=True, text=True,
                          env=env)


def test_the_module_finds_every_command_on_the_real_path(tmp_path):
    for command in NEEDED:
        executable(tmp_path / command)
    assert module(path=tmp_path).stdout == "every package the tests run is here\n"
    assert module("tests", path=tmp_path).stdout == "every package the tests run is here\n"
    for command in BENCH_NEEDED:
        executable(tmp_path / command)
    assert module("bench", path=tmp_path).stdout == "every package the benchmarks run is here\n"
    for wrong in (["remove"], ["bench", "tests"]):
        refused = module(*wrong, path=tmp_path)
        assert (refused.returncode, refused.stderr) == (
            1, "usage: python -m slipway.system_packages [tests|bench] (default: tests)\n")


@pytest.mark.skipif(os.geteuid() != 0, reason="the root path runs apt-get itself; elsewhere it goes through sudo")
def test_the_module_installs_through_apt_get(tmp_path, monkeypatch):
    """A stand-in apt-get on PATH "installs" by writing each package's commands beside itself."""
    log = tmp_path / "apt-get.log"
    packages = {package: [c for c, p in NEEDED.items() if p == package] for package in NEEDED.values()}
    cases = "\n".join(f"    {package}) for c in {' '.join(commands)}; do printf '#!/bin/sh\\n' > \"$here/$c\"; "
                      f"chmod +x \"$here/$c\"; done ;;" for package, commands in packages.items())
    executable(tmp_path / "apt-get", f'#!/bin/sh\nPATH="$PATH:/usr/bin:/bin"\nhere=$(dirname "$0")\n'
                                     f'echo "$DEBIAN_FRONTEND $*" >> {log}\n'
                                     f'for arg; do case "$arg" in\n{cases}\n  esac\ndone\n')
    executable(tmp_path / "env", '#!/bin/sh\nexport "$1"; shift; exec "$@"\n')
    monkeypatch.setenv("PATH", str(tmp_path))
    missing = system_packages.missing()  # all but nginx, where this machine has it in sbin
    assert {"default-jre-headless", "npm", "prometheus"} <= set(missing)

    result = module(path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (f"the tests need {', '.join(missing)}: apt-get install ...\n"
                             f"installed {', '.join(missing)}\n")
    assert log.read_text().splitlines() == [
        " -o DPkg::Lock::Timeout=300 update -qq",
        f"noninteractive -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends {' '.join(missing)}"]
    assert module(path=tmp_path).stdout == "every package the tests run is here\n"
