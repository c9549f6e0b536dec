"""`slipway image [--push]` (`make image`, `make image-push`) against a stand-in docker CLI on PATH
that records its calls and answers `docker manifest inspect` as a registry would."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from slipway.errors import SlipwayError
from slipway.release.image import registry_digest
from slipway.release.overlay import image_tag

SLIPWAY = str(Path(sys.executable).parent / "slipway")
REPO = Path(__file__).resolve().parents[1]

FAKE_DOCKER = """#!/bin/sh
echo "$*" >> "$DOCKER_CALLS"
case "$1" in
  manifest)
    case "$REGISTRY" in
      holds) echo '{"schemaVersion": 2}'; exit 0 ;;
      lacks) echo "no such manifest: $3" >&2; exit 1 ;;
      old-daemon) echo "manifest for $3 not found" >&2; exit 1 ;;
      no-helper) echo 'err: exec: "docker-credential-ecr-login": executable file not found in $PATH' >&2; exit 1 ;;
      *) echo "unauthorized: authentication required" >&2; exit 1 ;;
    esac ;;
  buildx)
    # buildx imagetools inspect --format '{{json .Manifest}}' REFERENCE
    case "$REGISTRY" in
      holds) echo '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","digest":"'"$DIGEST"'"}' ;;
      lacks) echo "ERROR: $6: not found" >&2; exit 1 ;;
      no-buildx) echo "docker: 'buildx' is not a docker command." >&2; exit 1 ;;
      *) echo '{"schemaVersion":2}' ;;
    esac ;;
  build) [ "$BUILD" = fails ] && { echo "step 3/9 failed" >&2; exit 1; }; exit 0 ;;
  push) exit 0 ;;
esac
"""


@pytest.fixture
def checkout(tmp_path, bundle_dir):
    """A git checkout with params.yaml and a bundle in models/, and the stand-in docker first on PATH."""
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(REPO / "params.yaml", work / "params.yaml")
    shutil.copytree(bundle_dir, work / "models")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "bundle"]):
        subprocess.run(["git", *args], cwd=work, check=True, env=env)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(FAKE_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    calls = tmp_path / "docker-calls"
    calls.touch()
    return work, {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "DOCKER_CALLS": str(calls)}, calls


def run(work: Path, env: dict, *args: str, **settings: str) -> subprocess.CompletedProcess:
    return subprocess.run([SLIPWAY, "image", *args], cwd=work, env={**env, **settings}, capture_output=True, text=True)


def expected_reference(work: Path) -> tuple[str, str, str]:
    import json

    version = json.loads((work / "models" / "model.json").read_text())["model_version"]
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=work, capture_output=True, text=True).stdout.strip()
    return f"ghcr.io/your-org/slipway:{image_tag(version, work)}", version, commit


@pytest.mark.parametrize("registry", ["lacks", "old-daemon"])
def test_a_tag_the_registry_lacks_is_built_with_its_labels_then_pushed(checkout, registry):
    work, env, calls = checkout
    reference, version, commit = expected_reference(work)
    result = run(work, env, "--push", REGISTRY=registry)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"pushed {reference}"
    assert calls.read_text().splitlines() == [
        f"manifest inspect {reference}",
        f"build --build-arg GIT_COMMIT={commit} --build-arg MODEL_VERSION={version} -t {reference} .",
        f"push {reference}"]


def test_a_tag_the_registry_holds_is_neither_built_nor_pushed_again(checkout):
    """A retrain that changed neither the model nor the server (a drift-started run on the same
    data, a gate threshold) must not push a rebuild over the image the canary or production runs."""
    work, env, calls = checkout
    reference, _, _ = expected_reference(work)
    result = run(work, env, "--push", REGISTRY="holds")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (f"{reference} is in the registry already: not built or pushed again "
                                     "(a tag names one build)")
    assert calls.read_text().splitlines() == [f"manifest inspect {reference}"]


@pytest.mark.parametrize(("registry", "said"), [
    ("refuses", "unauthorized: authentication required"),
    # "not found", but of the credential helper: a broken login, not an absent tag.
    ("no-helper", 'err: exec: "docker-credential-ecr-login": executable file not found in $PATH'),
])
def test_a_registry_that_cannot_be_asked_stops_before_building(checkout, registry, said):
    work, env, calls = checkout
    reference, _, _ = expected_reference(work)
    result = run(work, env, "--push", REGISTRY=registry)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (f"error: cannot tell whether the registry holds {reference}: docker manifest "
                                     f"inspect exited 1: {said}")
    assert calls.read_text().splitlines() == [f"manifest inspect {reference}"]


def test_a_failed_build_is_named_and_nothing_is_pushed(checkout):
    work, env, calls = checkout
    reference, _, _ = expected_reference(work)
    result = run(work, env, "--push", REGISTRY="lacks", BUILD="fails")
    assert result.returncode == 2 and "step 3/9 failed" in result.stderr
    assert f"error: docker build of {reference} failed (exit 1); its output is above" in result.stderr
    assert not any(line.startswith("push") for line in calls.read_text().splitlines())


def test_without_push_it_only_builds(checkout):
    work, env, calls = checkout
    reference, _, _ = expected_reference(work)
    result = run(work, env, REGISTRY="holds")
    assert result.returncode == 0 and result.stdout.strip() == f"built {reference}"
    assert [line.split()[0] for line in calls.read_text().splitlines()] == ["build"]


def test_no_docker_is_one_line_naming_it(checkout, tmp_path, monkeypatch):
    work, env, _ = checkout
    only_git = tmp_path / "only-git"  # wherever this machine keeps a docker CLI, none is on this PATH
    only_git.mkdir()
    (only_git / "git").symlink_to(shutil.which("git"))
    path = f"{Path(sys.executable).parent}:{only_git}"
    result = run(work, {**env, "PATH": path}, "--push")
    missing = ("docker not found: building and pushing the server image, and reading its digest to release it, "
               "need the docker CLI")
    assert result.returncode == 2 and result.stderr.strip() == f"error: {missing}"
    monkeypatch.setenv("PATH", path)
    with pytest.raises(SlipwayError, match=f"^{missing}$"):
        registry_digest("ghcr.io/org/slipway:v1")


DIGEST = "sha256:" + "4e" * 32


def answering(monkeypatch, env: dict, registry: str, digest: str = DIGEST) -> None:
    """The stand-in docker for this process (``registry_digest`` runs in it), answering as ``registry``."""
    for key, value in (("PATH", env["PATH"]), ("DOCKER_CALLS", env["DOCKER_CALLS"]), ("REGISTRY", registry),
                       ("DIGEST", digest)):
        monkeypatch.setenv(key, value)


def test_the_digest_a_release_pins_is_the_registrys(checkout, monkeypatch):
    _, env, calls = checkout
    answering(monkeypatch, env, "holds")
    assert registry_digest("ghcr.io/org/slipway:v1-0a1b2c3d") == DIGEST
    assert calls.read_text().splitlines() == [
        "buildx imagetools inspect --format {{json .Manifest}} ghcr.io/org/slipway:v1-0a1b2c3d"]


@pytest.mark.parametrize(("registry", "digest", "message"), [
    ("lacks", DIGEST, "cannot read ghcr.io/org/slipway:v1's digest from the registry, which the release pins it by: "
                      "docker buildx imagetools inspect exited 1: ERROR: ghcr.io/org/slipway:v1: not found (push it "
                      "first, `make image-push`; docker needs its buildx plugin and the registry's login)"),
    ("no-buildx", DIGEST, "docker buildx imagetools inspect exited 1: docker: 'buildx' is not a docker command."),
    ("holds", "sha256:abc", "docker buildx imagetools inspect named no sha256 digest for ghcr.io/org/slipway:v1: "
                            '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","digest":'
                            '"sha256:abc"}'),
    ("answers-without-one", DIGEST, "named no sha256 digest for ghcr.io/org/slipway:v1: {\"schemaVersion\":2}"),
], ids=["absent", "no-buildx", "not-a-digest", "no-digest"])
def test_a_digest_that_cannot_be_had_is_named(checkout, monkeypatch, registry, digest, message):
    _, env, _ = checkout
    answering(monkeypatch, env, registry, digest)
    with pytest.raises(SlipwayError) as failed:
        registry_digest("ghcr.io/org/slipway:v1")
    assert message in str(failed.value)
