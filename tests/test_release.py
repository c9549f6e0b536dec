"""Overlay edits and the git operations, on scratch repositories (git is real, the remote bare)."""

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from slipway.errors import SlipwayError
from slipway.release import gitops
from slipway.release.overlay import (
    BUILD_INPUTS,
    Image,
    check_repository,
    image_tag,
    kustomization,
    read_image,
    set_image,
)

REPO = Path(__file__).resolve().parents[1]
SLIPWAY = str(Path(sys.executable).parent / "slipway")
ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
       "GIT_COMMITTER_EMAIL": "t@t"}


def git(cwd: Path, *args: str) -> str:
    import os

    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env={**os.environ, **ENV}).stdout.strip()


@pytest.fixture
def repos(tmp_path, monkeypatch):
    """A bare remote and a clone of it holding the template's overlays."""
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    seed = tmp_path / "seed"
    seed.mkdir()
    shutil.copytree(REPO / "kustomize", seed / "kustomize")
    git(seed, "init", "-q", "-b", "main")
    git(seed, "add", "-A")
    git(seed, "commit", "-qm", "template")
    git(seed, "remote", "add", "origin", str(remote))
    git(seed, "push", "-q", "origin", "main")
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(remote), str(work))
    return remote, work


def write_bundle(root: Path, version: str, verdict: str = "pass") -> None:
    (root / "models").mkdir(exist_ok=True)
    (root / "reports").mkdir(exist_ok=True)
    (root / "models/model.json").write_text(json.dumps({
        "model_version": version, "git_commit": "abc", "data": {"raw": {"data/raw": "f00.dir"}}}))
    (root / "reports/gate.json").write_text(json.dumps({
        "verdict": verdict, "models": {"challenger": version}, "metrics": {"roc_auc": 0.81, "accuracy": 0.9}}))


def registry_digest(reference: str) -> str:
    """A registry's digest for ``reference``, one per tag, as it would be for an image pushed once."""
    return "sha256:" + hashlib.sha256(reference.encode()).hexdigest()


def release(work: Path, version: str, verdict: str = "pass", digest_of=registry_digest, write: bool = True) -> str:
    """Release ``version``'s bundle (written unless ``write`` is false: the test wrote its own)."""
    if write:
        write_bundle(work, version, verdict)
    return gitops.release(gitops.Repo(work), "registry/slipway", work / "models", work / "reports", digest_of)


def release_and_promote(work: Path, *versions: str) -> None:
    for version in versions:
        release(work, version)
        gitops.promote(gitops.Repo(work), None, "test")


def test_checkout_tip_moves_to_the_remote_branch_and_never_overwrites_local_changes(repos, tmp_path):
    """A Jenkins build whose turn to push comes after others pushed acts on the branch as it is
    then: release.remote's release.branch, whatever it is called."""
    remote, work = repos
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(remote), str(other))
    git(other, "push", "-q", "origin", "HEAD:trunk")
    overlay = "kustomize/overlays/canary/kustomization.yaml"
    (other / overlay).write_text((other / overlay).read_text() + "# moved on\n")
    git(other, "commit", "-qam", "moved on")
    git(other, "push", "-q", "origin", "HEAD:trunk")
    repo = gitops.Repo(work, "origin", "trunk")
    (work / overlay).write_text("local edit\n")
    with pytest.raises(SlipwayError, match="would be overwritten by checkout"):
        gitops.checkout_tip(repo)
    assert (work / overlay).read_text() == "local edit\n"
    git(work, "checkout", "--", overlay)
    tip = git(other, "rev-parse", "HEAD")
    assert gitops.checkout_tip(repo) == f"checked out origin/trunk at {tip[:12]}"
    assert git(work, "rev-parse", "HEAD") == tip and (work / overlay).read_text().endswith("# moved on\n")


def test_set_image_keeps_comments_and_is_idempotent(tmp_path):
    path = tmp_path / "kustomization.yaml"
    shutil.copy(REPO / "kustomize/overlays/canary/kustomization.yaml", path)
    before = path.read_text()
    assert set_image(path, Image("registry/slipway", "abc123")) is True
    after = path.read_text()
    assert read_image(path) == Image("registry/slipway", "abc123")
    assert "# Canary: one replica" in after and "patch: |-" in after
    changed = [line for line in after.splitlines() if line not in before.splitlines()]
    assert changed == ["    newName: registry/slipway", "    newTag: abc123"]
    assert set_image(path, Image("registry/slipway", "abc123")) is False
    pinned = Image("registry/slipway", "abc123", "sha256:" + "0f" * 32)
    assert set_image(path, pinned) is True and read_image(path) == pinned
    assert f"    digest: {pinned.digest}" in path.read_text().splitlines()  # on its key's line: kustomize reads it
    assert str(pinned) == f"registry/slipway:abc123@sha256:{'0f' * 32}" and pinned.same_build(read_image(path))
    assert set_image(path, Image("registry/slipway", "abc123")) is True and "digest" not in path.read_text()


@pytest.mark.parametrize("repository", ["ghcr.io/your-org/slipway", "slipway", "localhost:5000/team/slipway",
                                        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/ml/churn-server",
                                        "registry.example.com/a__b/c.d-e"])
def test_image_repositories_a_registry_accepts(repository):
    assert check_repository(repository, "release.image_repository") == repository


@pytest.mark.parametrize("repository", ["Not A Repo", "ghcr.io/Your-Org/slipway", "ghcr.io/org/slipway:1.0",
                                        "ghcr.io/org/slipway/", "-slipway", "ghcr.io//slipway"])
def test_image_repositories_a_registry_refuses_are_named(repository):
    with pytest.raises(SlipwayError) as refused:
        check_repository(repository, "params: release.image_repository")
    assert str(refused.value) == ("params: release.image_repository must be an image repository without a tag "
                                  "(registry/path, lowercase path), e.g. ghcr.io/your-org/slipway; "
                                  f"got {repository!r}")


ENTRY = "images:\n  - name: slipway-model-server\n    newName: {name}\n    newTag: {tag}\n"


@pytest.mark.parametrize(("text", "message"), [
    ("images: [ {name: x\n", "not valid YAML (line 2): "),
    ("- images\n", "not a kustomization (a mapping of fields)"),
    ("images: slipway-model-server\n", "images must be a list of entries (name, newName, newTag)"),
    ("images:\n  - slipway-model-server\n", "images must be a list of entries (name, newName, newTag)"),
    (ENTRY.format(name="registry/slipway", tag="abc") + ENTRY.format(name="registry/slipway", tag="def")[8:],
     "2 images entries are named 'slipway-model-server'; keep one"),
    (b"images: [] # caf\xe9\n", "not UTF-8 text ('utf-8' codec can't decode byte 0xe9"),
])
def test_a_broken_overlay_is_named_and_left_as_it_was(tmp_path, text, message):
    path = tmp_path / "kustomization.yaml"
    path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)
    for action in (lambda: read_image(path), lambda: set_image(path, Image("registry/slipway", "abc123"))):
        with pytest.raises(SlipwayError) as refused:
            action()
        assert str(refused.value).startswith(f"{path}: {message}")
    assert path.read_bytes() == (text if isinstance(text, bytes) else text.encode())


@pytest.mark.parametrize(("name", "tag", "message"), [
    ("registry/slipway", "1.10", "newTag must be text, got 1.1; quote it in the YAML"),
    ("registry/slipway", "'a b'", "newTag 'a b' is not an image tag (letters, digits, '_', '.', '-'; at most 128 "
                                  "characters)"),
    ("registry/slipway", "t" * 129, "newTag 'ttt"),
    ("registry/slipway:v1", "abc", "newName must be an image repository without a tag"),
    ("[registry]", "abc", "newName must be text, got ['registry']"),
    ("registry/slipway", "abc\n    digest: sha256:ABC", "digest 'sha256:ABC' is not an image digest (sha256: and 64 "
                                                       "lowercase hex digits)"),
    ("registry/slipway", "abc\n    digest: 12", "digest '12' is not an image digest"),
])
def test_an_overlay_image_that_is_no_image_reference_is_refused_and_can_be_replaced(tmp_path, name, tag, message):
    """What promote would otherwise copy into production, and rollback go back to: an image nobody
    built (YAML reads 1.10 as the number 1.1), or one no registry could hold."""
    path = tmp_path / "kustomization.yaml"
    path.write_text(ENTRY.format(name=name, tag=tag))
    with pytest.raises(SlipwayError) as refused:
        read_image(path)
    assert str(refused.value).startswith(f"{path}: images entry 'slipway-model-server': {message}")
    assert set_image(path, Image("registry/slipway", "abc123"))  # release writes a good one over it
    assert read_image(path) == Image("registry/slipway", "abc123")


def test_release_commits_and_pushes_once(repos):
    remote, work = repos
    message = release(work, "v1")
    assert message.startswith("release: canary -> model v1 (")
    log = git(remote, "log", "-1", "--format=%B", "main")
    assert log.startswith("release: canary -> model v1")
    assert "Data: data/raw f00.dir" in log and "roc_auc=0.8100" in log
    assert log.rstrip().endswith("Trained from: abc")
    tag = image_tag("v1", work)
    digest = registry_digest(f"registry/slipway:{tag}")  # pinned: what the registry holds the tag as
    overlay = git(remote, "show", "main:kustomize/overlays/canary/kustomization.yaml")
    assert overlay.count(f"newTag: {tag}") == 1 and overlay.count(f"digest: {digest}") == 1
    assert f"Image: registry/slipway:{tag}@{digest}" in log
    assert git(work, "status", "--porcelain", "kustomize") == ""
    assert release(work, "v1") == f"release: canary already runs registry/slipway:{tag}@{digest}; nothing to do"
    assert git(remote, "rev-list", "--count", "main") == "2"


@pytest.mark.parametrize(("setting", "message"), [
    ({"remote": "orign"}, r"release.remote 'orign' is not a remote of this repository \(it has origin\)"),
    ({"branch": "mian"}, r"release.branch 'mian' is not a branch of origin \(a push would create it, "),
])
def test_a_misspelt_remote_or_branch_is_refused_before_anything_is_written(repos, setting, message):
    """Committed but never pushed, or pushed to a new branch, a change would be reported done
    while Argo CD never saw it."""
    remote, work = repos
    release_and_promote(work, "v1", "v2")
    write_bundle(work, "v3")
    head = git(work, "rev-parse", "HEAD")
    misspelt = gitops.Repo(work, **setting)
    for action in (lambda: gitops.release(misspelt, "registry/slipway", work / "models", work / "reports",
                                          registry_digest),
                   lambda: gitops.promote(misspelt, None, "test"), lambda: gitops.rollback(misspelt)):
        with pytest.raises(gitops.ReleaseRefused, match=f"^{message}.*nothing was changed$"):
            action()
    assert git(work, "rev-parse", "HEAD") == head and git(work, "status", "--porcelain", "kustomize") == ""
    assert git(remote, "branch", "--list").split() == ["*", "main"]


def test_a_tag_pushed_again_over_a_released_build_is_refused(repos):
    """The canary runs v40 pinned by digest; the registry now holds v40's tag as another image (pushed
    again by hand): releasing it would run what no gate saw, so nothing is written."""
    remote, work = repos
    release(work, "v40")
    head = git(remote, "rev-parse", "main")
    pinned = read_image(kustomization("canary", work))
    with pytest.raises(gitops.ReleaseRefused, match=(
            rf"release refused: the registry holds registry/slipway:{pinned.tag} as sha256:0{{64}}, but the canary "
            rf"runs it as {pinned.digest}: the tag was pushed again over the released build")):
        release(work, "v40", digest_of=lambda reference: "sha256:" + "0" * 64)
    assert git(remote, "rev-parse", "main") == head and read_image(kustomization("canary", work)) == pinned


def test_an_image_released_before_pinning_is_pinned_and_stays_one_image(repos):
    """An overlay written before releases pinned digests: the next release of the same build pins it;
    status, promote and rollback take the pinned and the unpinned entry for the same image."""
    remote, work = repos
    repo = gitops.Repo(work)
    release_and_promote(work, "v50")
    released = git(work, "log", "-1", "--format=%H", "--", "kustomize/overlays/canary")
    for track in ("canary", "production"):  # as an older release left them
        path = kustomization(track, work)
        set_image(path, Image("registry/slipway", image_tag("v50", work)))
    git(work, "commit", "-qam", "unpinned")
    git(work, "push", "-q", "origin", "main")
    assert release(work, "v50").startswith("release: canary -> model v50")
    assert read_image(kustomization("canary", work)).digest == registry_digest(
        f"registry/slipway:{image_tag('v50', work)}")
    with pytest.raises(gitops.ReleaseRefused, match="canary is not ahead of production"):
        gitops.promote(repo, None, "pinning alone")
    assert gitops.status(repo)["canary"]["since_commit"] == released  # since v50's release, not since the pin
    release_and_promote(work, "v51")
    assert gitops.rollback(repo).startswith(f"rollback: production and canary -> model {image_tag('v50', work)} (")


def test_the_same_model_in_a_changed_server_is_a_new_image(repos):
    """Pushed under the model's tag alone, a server change would replace the image production
    runs, unreviewed; as a new tag it goes to the canary and waits for a promotion."""
    remote, work = repos
    (work / "src/slipway").mkdir(parents=True)
    (work / "src/slipway/api.py").write_text("ANSWER = 1\n")
    release(work, "v1")
    first = read_image(kustomization("canary", work))
    (work / "src/slipway/__pycache__").mkdir()
    (work / "src/slipway/__pycache__/api.cpython-311.pyc").write_bytes(b"\0")  # made by imports: no new image
    (work / "src/slipway.egg-info").mkdir()
    (work / "src/slipway.egg-info/PKG-INFO").write_text("Name: slipway\n")
    assert image_tag("v1", work) == first.tag
    (work / "src/slipway/api.py").write_text("ANSWER = 2\n")
    assert release(work, "v1").startswith("release: canary -> model v1 (")
    second = read_image(kustomization("canary", work))
    assert second.model_version == first.model_version == "v1" and second.tag != first.tag


# What the image holds from the build context besides the build inputs: the bundle, which the
# model version covers, and the README, which only the package's metadata carries.
BAKED_BUNDLE = {"models", "reports/metrics.json", "reports/gate.json"}
PACKAGE_METADATA_ONLY = {"README.md"}


def copied_from_context(dockerfile: str) -> set[str]:
    """The build-context paths of every stage's COPY (not COPY --from another stage)."""
    paths = set()
    for line in dockerfile.replace("\\\n", " ").splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            paths.update(w.rstrip("/") for w in words[1:-1] if not w.startswith("--"))
    return paths


def test_every_file_the_image_copies_is_in_its_tag():
    """A file the Dockerfile copies that BUILD_INPUTS leaves out would change the image without
    changing its tag: pushed over the tag production runs, unreviewed."""
    copied = copied_from_context((REPO / "Dockerfile").read_text())
    assert copied == set(BUILD_INPUTS) - {"Dockerfile"} | BAKED_BUNDLE | PACKAGE_METADATA_ONLY
    allowed = {line[1:].rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.startswith("!")}
    assert allowed == copied  # the context sends what the image copies, and nothing else


def test_the_release_commit_carries_dvc_lock_and_the_outputs_git_holds(repos):
    remote, work = repos
    (work / "dvc.yaml").write_text(yaml.safe_dump({"stages": {
        "train": {"cmd": "slipway train", "outs": ["models"]},
        "evaluate": {"cmd": "slipway evaluate", "metrics": [{"reports/metrics.json": {"cache": False}}]},
        "gate": {"cmd": "slipway gate", "outs": [{"reports/gate.json": {"cache": False}},
                                                 {"reports/gate.html": {"persist": True}}]}}}))
    (work / "dvc.lock").write_text("schema: '2.0'\n")
    (work / "reports").mkdir()
    (work / "reports/metrics.json").write_text('{"roc_auc": 0.81}')
    (work / "reports/gate.html").write_text("<html></html>")  # in the DVC cache, not git
    release(work, "v1")
    committed = git(remote, "show", "--name-only", "--format=", "main").split()
    assert sorted(committed) == ["dvc.lock", "kustomize/overlays/canary/kustomization.yaml",
                                 "reports/gate.json", "reports/metrics.json"]


def test_release_refuses_a_failed_gate_and_commits_nothing(repos):
    remote, work = repos
    with pytest.raises(gitops.ReleaseRefused, match="the gate did not pass model v2"):
        release(work, "v2", verdict="fail")
    assert git(remote, "rev-list", "--count", "main") == "1"
    assert git(work, "status", "--porcelain") .count("kustomize") == 0


def test_release_refuses_a_checkout_behind_a_production_change(repos, tmp_path):
    """A release run queued behind a promote builds its own (older) commit: its gate compared the
    model with the production before the promote, so it may not release."""
    remote, work = repos
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(remote), str(other))
    release(other, "v20")
    gitops.promote(gitops.Repo(other), None, "test")
    head = git(work, "rev-parse", "HEAD")
    with pytest.raises(gitops.ReleaseRefused, match=r"production on origin/main runs registry/slipway:v20-\w+@sha256:"
                                                    r"\w+, this checkout's runs \S+, so the gate compared against"):
        release(work, "v21")
    assert git(work, "rev-parse", "HEAD") == head and "kustomize" not in git(work, "status", "--porcelain")
    git(work, "pull", "-q", "--rebase", "origin", "main")  # on the latest main it releases
    assert release(work, "v21").startswith("release: canary -> model v21")


@pytest.mark.parametrize(("name", "content", "message"), [
    ("reports/gate.json", "{\"verdict\": ", "reports/gate.json: not valid JSON"),
    ("reports/gate.json", "[]", "reports/gate.json: not a JSON object"),
    ("reports/gate.json", '{"verdict": "pass", "models": ["v30"]}', r"the gate did not pass model v30 \(verdict "
                                                                    r"'pass' for None\)"),
    ("models/model.json", "{}", "models/model.json names no model_version"),
])
def test_release_names_a_broken_report(repos, name, content, message):
    remote, work = repos
    write_bundle(work, "v30")
    (work / name).write_text(content)
    with pytest.raises(gitops.ReleaseRefused, match=message):
        release(work, "v30", write=False)
    assert git(remote, "rev-list", "--count", "main") == "1"


@pytest.mark.parametrize(("data", "metrics"), [("x", []), ({"raw": ["data/raw"]}, "0.81"), (None, None)])
def test_release_of_a_passed_model_with_odd_side_fields_says_unknown(repos, data, metrics):
    """The gate passed this model; the fields the commit message only tells of were an
    AttributeError traceback when edited into another shape."""
    remote, work = repos
    write_bundle(work, "v32")
    for name, key, value in (("models/model.json", "data", data), ("reports/gate.json", "metrics", metrics)):
        document = json.loads((work / name).read_text())
        document[key] = value
        (work / name).write_text(json.dumps(document))
    assert release(work, "v32", write=False).startswith("release: canary -> model v32")
    log = git(remote, "log", "-1", "--format=%B", "main")
    assert "Data: unknown" in log and "Metrics: unknown" in log


def test_release_says_a_model_trained_with_uncommitted_changes(repos):
    """A model trained before its params were committed (`dvc repro`, then `git commit`) came from
    its commit and more: the message says what more."""
    remote, work = repos
    write_bundle(work, "v33")
    meta = json.loads((work / "models/model.json").read_text())
    (work / "models/model.json").write_text(json.dumps({**meta, "git_uncommitted": ["params.yaml"]}))
    release(work, "v33", write=False)
    log = git(remote, "log", "-1", "--format=%B", "main")
    assert log.rstrip().endswith("Trained from: abc with uncommitted changes to params.yaml")


def test_promote_names_a_broken_canary_analysis(repos):
    remote, work = repos
    release(work, "v31")
    (work / "reports/canary-analysis.json").write_text("<html>")
    with pytest.raises(gitops.ReleaseRefused, match="canary-analysis.json: not valid JSON"):
        gitops.promote(gitops.Repo(work), work / "reports/canary-analysis.json", None)


def test_promote_needs_a_passing_analysis_or_a_reason(repos):
    remote, work = repos
    repo = gitops.Repo(work)
    with pytest.raises(gitops.ReleaseRefused, match="canary is not ahead of production"):
        gitops.promote(repo, None, None)
    release(work, "v3")
    analysis = work / "analysis.json"
    with pytest.raises(gitops.ReleaseRefused, match="canary analysis verdict is missing"):
        gitops.promote(repo, analysis, None)
    analysis.write_text(json.dumps({"verdict": "fail", "canary_version": "v3"}))
    with pytest.raises(gitops.ReleaseRefused, match="verdict is fail"):
        gitops.promote(repo, analysis, None)
    analysis.write_text(json.dumps({"verdict": "pass", "canary_version": "v2"}))
    with pytest.raises(gitops.ReleaseRefused, match="analysis is for model v2, the canary runs v3"):
        gitops.promote(repo, analysis, None)
    analysis.write_text(json.dumps({"verdict": "pass", "canary_version": "v3"}))
    assert gitops.promote(repo, analysis, None).startswith("promote: production -> model v3")
    assert read_image(kustomization("production", work)).model_version == "v3"
    release(work, "v4")
    assert gitops.promote(repo, None, "hotfix for incident 42").startswith("promote: production -> model v4")
    assert "Forced: hotfix for incident 42" in git(remote, "log", "-1", "--format=%B", "main")


def test_promote_refuses_a_canary_other_than_the_one_approved(repos):
    """The reviewers approved the canary they were shown; a release that replaced it while they
    decided must not reach production on their approval, whatever its own analysis says."""
    remote, work = repos
    repo = gitops.Repo(work)
    release(work, "v7")
    approved = subprocess.run([SLIPWAY, "status", "--params", str(REPO / "params.yaml"), "--image", "canary"],
                              cwd=work, capture_output=True, text=True, check=True).stdout.strip()
    assert approved == str(read_image(kustomization("canary", work)))
    release(work, "v8")
    before = git(remote, "rev-parse", "main")
    with pytest.raises(gitops.ReleaseRefused, match=(
            rf"promote refused: the canary runs \S+:{image_tag('v8', work)}@sha256:\w+, not {re.escape(approved)}, "
            "the image this promotion was approved for")):
        gitops.promote(repo, None, "forced, but not for v8", expected=approved)
    assert git(remote, "rev-parse", "main") == before
    assert read_image(kustomization("production", work)).model_version != "v8"
    assert gitops.promote(repo, None, "v8 approved", expected=str(read_image(kustomization("canary", work)))
                          ).startswith(f"promote: production -> model {image_tag('v8', work)}")


def test_rollback_refuses_when_production_changed_since_it_was_approved(repos):
    """Approved as "roll back from v12": a promotion of v13 landing first must not make it roll
    back v13 (to v12, the model the reviewers wanted gone)."""
    remote, work = repos
    repo = gitops.Repo(work)
    release_and_promote(work, "v11", "v12")
    approved = str(read_image(kustomization("production", work)))
    release_and_promote(work, "v13")
    before = git(remote, "rev-parse", "main")
    with pytest.raises(gitops.ReleaseRefused, match=(
            rf"rollback refused: the production runs \S+:{image_tag('v13', work)}@sha256:\w+, "
            rf"not {re.escape(approved)}, the image this rollback was approved for")):
        gitops.rollback(repo, expected=approved)
    assert git(remote, "rev-parse", "main") == before
    current = str(read_image(kustomization("production", work)))
    assert gitops.rollback(repo, expected=current).startswith(
        f"rollback: production and canary -> model {image_tag('v12', work)} (")


def test_rollback_and_status_come_from_history(repos):
    remote, work = repos
    repo = gitops.Repo(work)
    original = read_image(kustomization("production", work))
    with pytest.raises(gitops.ReleaseRefused, match="production has run no image other than"):
        gitops.rollback(repo)
    release_and_promote(work, "v5", "v6")
    state = gitops.status(repo)
    assert state["production"]["model_version"] == "v6" and state["canary"]["model_version"] == "v6"
    assert state["production"]["since_commit"] == git(work, "rev-parse", "HEAD")
    # The canary ran v6 too: it goes back with production, in the same commit.
    assert gitops.rollback(repo).startswith(f"rollback: production and canary -> model {image_tag('v5', work)} (")
    production, canary = (read_image(kustomization(track, work)) for track in ("production", "canary"))
    assert production == canary and production.model_version == "v5"
    assert git(work, "show", "--stat", "--format=%b", "HEAD").count("kustomization.yaml") == 2
    assert f"Canary: back to {image_tag('v5', work)} too (it ran {image_tag('v6', work)})" in git(
        work, "log", "-1", "--format=%b")
    # Again: further back, to what ran before v5, never forward to v6, which was rolled back from.
    assert gitops.rollback(repo).startswith(f"rollback: production and canary -> model {original.tag} (")
    with pytest.raises(gitops.ReleaseRefused, match=r"production has run no image other than \S+ or those "
                                                    r"rolled back from \(v5-\w+, v6-\w+\)"):
        gitops.rollback(repo)
    assert original.tag not in ("v5", "v6")


def test_a_canary_on_another_model_stays_where_it_is_on_rollback(repos):
    remote, work = repos
    repo = gitops.Repo(work)
    release_and_promote(work, "v10", "v11")
    release(work, "v12")  # the next candidate, on the canary only
    assert gitops.rollback(repo).startswith(f"rollback: production -> model {image_tag('v10', work)} (")
    assert read_image(kustomization("canary", work)).model_version == "v12"


def test_a_model_promoted_again_after_its_rollback_is_a_rollback_target(repos):
    """A rollback rules out the image it removed until someone deliberately promotes it again."""
    remote, work = repos
    repo = gitops.Repo(work)
    release_and_promote(work, "v20", "v21")
    gitops.rollback(repo)  # v21 -> v20
    release_and_promote(work, "v21", "v22")  # v21 fixed and promoted again, then v22
    assert gitops.rollback(repo).startswith(f"rollback: production and canary -> model {image_tag('v21', work)} (")


def test_a_shallow_clone_says_why_it_cannot_roll_back(repos, tmp_path):
    remote, work = repos
    release_and_promote(work, "v8", "v9")
    shallow = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{remote}", str(shallow))
    with pytest.raises(gitops.ReleaseRefused, match="in this shallow clone: fetch the whole history"):
        gitops.rollback(gitops.Repo(shallow))


def test_a_push_race_is_rebased_when_it_does_not_conflict(repos, tmp_path):
    remote, work = repos
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(remote), str(other))
    (other / "NOTES").write_text("unrelated change\n")
    git(other, "add", "NOTES")
    git(other, "commit", "-qm", "notes")
    git(other, "push", "-q", "origin", "main")
    release(work, "v7")  # rejected first (the remote moved on), rebased, pushed
    assert git(remote, "log", "--format=%s", "main").splitlines()[:2] == [
        "release: canary -> model v7", "notes"]


def test_a_conflicting_race_fails_clearly_and_leaves_no_commit(repos, tmp_path):
    remote, work = repos
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(remote), str(other))
    release(other, "v8")
    head = git(work, "rev-parse", "HEAD")
    with pytest.raises(SlipwayError, match="conflicts; the local commit was dropped"):
        release(work, "v9")
    assert git(work, "rev-parse", "HEAD") == head
    assert git(remote, "log", "-1", "--format=%s", "main") == "release: canary -> model v8"


def test_a_dropped_commit_takes_only_its_own_edit_with_it(repos, tmp_path):
    """The undo of a failed push was ``git reset --hard``: a platform engineer's uncommitted work,
    and the pipeline's new dvc.lock, went with the commit. Now only the overlay edit goes."""
    remote, work = repos
    (work / "NOTES").write_text("v1\n")
    (work / "dvc.lock").write_text("schema: '2.0'\n")
    git(work, "add", "NOTES", "dvc.lock")
    git(work, "commit", "-qm", "notes")
    git(work, "push", "-q", "origin", "main")
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(remote), str(other))
    release(other, "v8")  # the remote moves on: the push below is rejected
    (work / "NOTES").write_text("v1\nwork in progress\n")
    (work / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")  # what the pipeline just wrote
    head = git(work, "rev-parse", "HEAD")
    with pytest.raises(SlipwayError, match="the local commit was dropped"):
        release(work, "v9")
    assert git(work, "rev-parse", "HEAD") == head
    assert (work / "NOTES").read_text() == "v1\nwork in progress\n"
    assert (work / "dvc.lock").read_text() == "schema: '2.0'\nstages: {}\n"
    assert git(work, "diff", "--cached", "--name-only") == ""  # nothing staged
    assert git(work, "diff", "--name-only").splitlines() == ["NOTES", "dvc.lock"]  # the overlay as committed


def test_a_failed_commit_leaves_the_overlay_as_it_was(repos):
    """A commit refused (here by a hook; on a fresh machine, by git lacking a name) left the
    overlay edited and staged: the next promote then said the canary was not ahead of production."""
    remote, work = repos
    release(work, "v10")
    hook = work / ".git/hooks/pre-commit"
    hook.write_text("#!/bin/sh\necho 'refused by hook' >&2\nexit 1\n")
    hook.chmod(0o755)
    with pytest.raises(SlipwayError, match="git commit: refused by hook; nothing was committed, the overlays are "
                                           "as they were"):
        gitops.promote(gitops.Repo(work), None, "test")
    assert git(work, "status", "--porcelain", "--untracked-files=no") == ""
    hook.unlink()
    assert gitops.promote(gitops.Repo(work), None, "test").startswith("promote: production -> model v10")


def test_an_overlay_with_uncommitted_changes_is_not_edited(repos):
    remote, work = repos
    path = kustomization("production", work)
    path.write_text(path.read_text() + "# trying something\n")
    release(work, "v11")  # the canary overlay is clean: released
    with pytest.raises(gitops.ReleaseRefused, match="promote refused: kustomize/overlays/production/"
                                                    "kustomization.yaml has uncommitted changes; commit or discard"):
        gitops.promote(gitops.Repo(work), None, "test")
    with pytest.raises(gitops.ReleaseRefused, match="rollback refused: kustomize/overlays/production/"):
        gitops.rollback(gitops.Repo(work))
    assert path.read_text().endswith("# trying something\n")


def test_the_champion_is_found_through_its_release_commit(repos, tmp_path):
    from slipway.release import champion

    remote, work = repos
    repo = gitops.Repo(work)
    production = read_image(kustomization("production", work)).tag
    reason = champion.fetch_production_bundle(repo, tmp_path / "champion")
    assert reason == f"no release commit for the production model {production} (not released by slipway yet)"
    release(work, "v10")
    assert champion.release_commit(repo, "v10") == git(work, "rev-parse", "HEAD")
    assert champion.release_commit(repo, "v1") is None  # a prefix of v10 is not v10
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    assert champion.fetch_production_bundle(gitops.Repo(empty), tmp_path / "x").startswith(
        "no production overlay")


def test_the_champions_feature_code_is_the_code_at_its_release_commit(tmp_path):
    """A derived feature redefined since the release: production's model is scored with the
    definition it was trained with. Code that no longer runs, or is gone, is named."""
    from slipway.release import champion

    work = tmp_path / "work"
    code = work / "src/slipway/model/features.py"
    code.parent.mkdir(parents=True)
    git(tmp_path, "init", "-q", "-b", "main", str(work))
    (work / "README.md").write_text("before the feature code\n")
    commits = {}
    source = (REPO / "src/slipway/model/features.py").read_text()
    for name, text in [("no code", None), ("released", source), ("redefined", source.replace("/ 12.0", "/ 6.0")),
                       ("broken", "from slipway.model.gone import DERIVED_FEATURES\n"), ("no table", "X = 1\n")]:
        if text is not None:
            code.write_text(text)
        git(work, "add", "-A")
        git(work, "commit", "-qm", name)
        commits[name] = git(work, "rev-parse", "HEAD")
    repo = gitops.Repo(work)
    tenure = {"tenure_months": np.array([24.0])}
    assert champion.derived_features_at(repo, commits["released"])[0]["tenure_years"].compute(tenure).tolist() == [2.0]
    assert champion.derived_features_at(repo, commits["redefined"])[0]["tenure_years"].compute(tenure).tolist() == [4.0]
    where = "src/slipway/model/features.py at "
    for name, error in [("no code", f"the production model's feature code: no {where}"),
                        ("broken", "does not load with this checkout's libraries: ModuleNotFoundError: No "
                                   "module named 'slipway.model.gone'"),
                        ("no table", "defines no DERIVED_FEATURES table")]:
        with pytest.raises(SlipwayError, match=re.escape(error)):
            champion.derived_features_at(repo, commits[name])


def model_package(tmp_path: Path, years: str) -> tuple[Path, Path]:
    """A git work tree whose src/slipway/model defines one derived feature, ``tenure_years``, with
    the function ``years`` that the source ``years`` defines or imports."""
    work = tmp_path / "work"
    package = work / "src/slipway/model"
    package.mkdir(parents=True)
    git(tmp_path, "init", "-q", "-b", "main", str(work))
    (package / "__init__.py").write_text("")
    (package / "features.py").write_text(
        years + "from slipway.model.features_base import DerivedFeature\n"
        "DERIVED_FEATURES = {'tenure_years': DerivedFeature(('tenure_months',), years, 'tenure in years')}\n")
    (package / "features_base.py").write_text(
        "from dataclasses import dataclass\nfrom typing import Callable\n"
        "@dataclass(frozen=True)\nclass DerivedFeature:\n"
        "    inputs: tuple\n    compute: Callable\n    description: str\n")
    return work, package


def test_the_champions_feature_helpers_are_its_own_package_at_its_release_commit(tmp_path):
    """Feature code that imports helpers from the model package gets them as they were released;
    afterwards this checkout's modules are in place again."""
    from slipway.model import features as checkout_features
    from slipway.release import champion

    work, package = model_package(tmp_path, "from slipway.model.units import years\n")
    commits = {}
    for name, divisor in [("released", "12.0"), ("changed helper", "6.0")]:
        (package / "units.py").write_text(f"def years(cols: dict):\n    return cols['tenure_months'] / {divisor}\n")
        git(work, "add", "-A")
        git(work, "commit", "-qm", name)
        commits[name] = git(work, "rev-parse", "HEAD")
    (package / "units.py").unlink()
    git(work, "commit", "-qam", "helper gone")
    commits["helper gone"] = git(work, "rev-parse", "HEAD")

    repo = gitops.Repo(work)
    modules_before = {name: module for name, module in sys.modules.items() if name.startswith("slipway.model")}
    tenure = {"tenure_months": np.array([24.0])}
    released, _ = champion.derived_features_at(repo, commits["released"])
    changed, _ = champion.derived_features_at(repo, commits["changed helper"])
    assert released["tenure_years"].compute(tenure).tolist() == [2.0]
    assert changed["tenure_years"].compute(tenure).tolist() == [4.0]
    # Run as its image runs it: without this module's `from __future__ import annotations`.
    assert released["tenure_years"].compute.__annotations__ == {"cols": dict}
    with pytest.raises(SlipwayError, match=re.escape("ModuleNotFoundError: No module named 'slipway.model.units'")):
        champion.derived_features_at(repo, commits["helper gone"])
    # This checkout's package is back, whole: the old modules never leak into the server's or gate's imports.
    assert {name: module for name, module in sys.modules.items() if name.startswith("slipway.model")} == modules_before
    import slipway.model
    assert slipway.model.features is checkout_features
    assert "slipway.model.units" not in sys.modules


def test_a_helper_the_champions_feature_imports_when_called_is_its_own_too(tmp_path):
    """A feature function that imports its helper inside its body runs the helper as released
    within the champion's feature code, every time; outside it, this checkout's package answers."""
    from slipway.release import champion

    work, package = model_package(tmp_path, "def years(cols):\n    from slipway.model.units import MONTHS_PER_YEAR\n"
                                            "    return cols['tenure_months'] / MONTHS_PER_YEAR\n")
    (package / "units.py").write_text("MONTHS_PER_YEAR = 12.0\n")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "released")
    table, feature_code = champion.derived_features_at(gitops.Repo(work), git(work, "rev-parse", "HEAD"))
    (package / "units.py").write_text("MONTHS_PER_YEAR = 6.0\n")  # the working tree moves on
    tenure = {"tenure_months": np.array([24.0])}
    for _ in range(2):
        with feature_code():
            assert table["tenure_years"].compute(tenure).tolist() == [2.0]
    with pytest.raises(ModuleNotFoundError, match="slipway.model.units"):  # this checkout has no such module
        table["tenure_years"].compute(tenure)
    assert "slipway.model.units" not in sys.modules


def test_a_shallow_clone_never_skips_the_champion_for_want_of_history(repos, tmp_path):
    """CI checkouts are shallow by default: the release commit may just be outside the clone."""
    from slipway.release import champion

    remote, work = repos
    production = read_image(kustomization("production", work)).tag
    shallow = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{remote}", str(shallow))
    with pytest.raises(SlipwayError, match=f"no release commit for the production model {production} in "
                                           "this shallow clone: fetch the whole history"):
        champion.fetch_production_bundle(gitops.Repo(shallow), tmp_path / "champion")


@pytest.mark.parametrize(("tag", "model"), [("292f2ee3c05d40ac-97d63952", "292f2ee3c05d40ac"),
                                            ("292f2ee3c05d40ac", "292f2ee3c05d40ac"),  # before the build hash
                                            ("v1-e3b0c442", "v1"), ("concurrent-a", "concurrent-a")])
def test_an_images_model_is_its_tag_without_the_build_hash(tag, model):
    assert Image("ghcr.io/your-org/slipway", tag).model_version == model
