"""Building and pushing the server image with docker: one build per tag.

A tag names one build (:func:`slipway.release.overlay.image_tag`: the model version and a hash of
the server's code). A retrain that changes neither (a drift-started run with no new data, a change
to the gate's thresholds only) must not build that tag again and push it over the image the canary
or production runs: the rebuild would differ (the base image moves, the labels carry the commit),
and a registry that keeps tags immutable refuses the push and fails the run. So the registry is
asked first, and a tag it holds is neither built nor pushed. The release then pins the digest the
registry holds the tag under (:func:`registry_digest`), so a tag pushed again by hand changes nothing
that runs.
"""

from __future__ import annotations

import json
import re
import subprocess

from slipway.errors import SlipwayError
from slipway.provenance import git_commit
from slipway.release.overlay import DIGEST

# What docker says when the registry has no such tag: the CLI's own words, the registry's
# MANIFEST_UNKNOWN error ("manifest unknown", then the registry's own detail) and older daemons' wording.
# Anything else is a failure to ask; a bare "not found" is not absence ("docker-credential-ecr-login:
# executable file not found" is a broken login). The CLI also says "no such manifest" when the
# registry refuses to read the repository; the push that follows then fails on the same refusal.
_ABSENT = re.compile(r"no such manifest|manifest unknown|manifest for \S+ not found", re.IGNORECASE)


def _docker(*args: str, capture: bool = False) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["docker", *args], capture_output=capture, text=True)
    except FileNotFoundError:
        raise SlipwayError("docker not found: building and pushing the server image, and reading its digest to "
                           "release it, need the docker CLI") from None


def _docker_or_fail(what: str, *args: str) -> None:
    """A docker command whose output goes to the console; its failure stops the run."""
    result = _docker(*args)
    if result.returncode != 0:
        raise SlipwayError(f"{what} failed (exit {result.returncode}); its output is above")


def in_registry(reference: str) -> bool:
    """Whether the registry holds ``reference``; an error when docker cannot tell (credentials,
    network), rather than a build pushed over a tag that may well exist."""
    result = _docker("manifest", "inspect", reference, capture=True)
    if result.returncode == 0:
        return True
    said = (result.stderr or result.stdout).strip()
    if _ABSENT.search(said):
        return False
    raise SlipwayError(f"cannot tell whether the registry holds {reference}: docker manifest inspect "
                       f"exited {result.returncode}: {said or 'no output'}")


def registry_digest(reference: str) -> str:
    """The digest the registry holds ``reference`` under, which the overlays pin (the manifest's, or the
    index's for an image of several platforms); an error naming why when it cannot be had: the tag is
    not there (``make image-push`` first), or docker cannot ask (credentials, network, no buildx)."""
    result = _docker("buildx", "imagetools", "inspect", "--format", "{{json .Manifest}}", reference, capture=True)
    if result.returncode != 0:
        said = (result.stderr or result.stdout).strip()
        raise SlipwayError(f"cannot read {reference}'s digest from the registry, which the release pins it by: "
                           f"docker buildx imagetools inspect exited {result.returncode}: {said or 'no output'} (push "
                           "it first, `make image-push`; docker needs its buildx plugin and the registry's login)")
    try:
        digest = json.loads(result.stdout).get("digest")
    except (ValueError, AttributeError):
        digest = None
    if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
        raise SlipwayError(f"docker buildx imagetools inspect named no sha256 digest for {reference}: "
                           f"{result.stdout.strip()[:200] or 'no output'}")
    return digest


def build(reference: str, model_version: str, commit: str) -> None:
    """``docker build`` of this checkout, with the labels' arguments (the Dockerfile's
    ``GIT_COMMIT``, ``MODEL_VERSION``)."""
    _docker_or_fail(f"docker build of {reference}", "build", "--build-arg", f"GIT_COMMIT={commit}",
                    "--build-arg", f"MODEL_VERSION={model_version}", "-t", reference, ".")


def push(reference: str, model_version: str) -> str:
    """Build and push ``reference`` unless the registry already holds it; says which."""
    if in_registry(reference):
        return f"{reference} is in the registry already: not built or pushed again (a tag names one build)"
    build(reference, model_version, head_commit())
    _docker_or_fail(f"docker push of {reference}", "push", reference)
    return f"pushed {reference}"


def head_commit() -> str:
    """The checkout's commit, for the image's label; ``unknown`` outside a git checkout."""
    return git_commit() or "unknown"
