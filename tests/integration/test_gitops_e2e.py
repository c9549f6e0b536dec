"""The whole GitOps loop on real git and DVC: a bare repository as the remote, a clone of the
template as CI's checkout, the same make targets CI runs (the image build replaced by its tag)."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from slipway.release.overlay import Image
from tests.test_release import write_bundle

REPO = Path(__file__).resolve().parents[2]
VENV = Path(sys.executable).parent.parent
KUBECTL = REPO / ".tools/bin/kubectl"
TEMPLATE_FILES = ["dvc.yaml", "params.yaml", ".dvcignore", ".gitignore", "Makefile", "pyproject.toml",
                  "README.md", "requirements", "src", "kustomize"]
ENV = {"GIT_AUTHOR_NAME": "ci", "GIT_AUTHOR_EMAIL": "ci@example.com", "GIT_COMMITTER_NAME": "ci",
       "GIT_COMMITTER_EMAIL": "ci@example.com", "DVC_NO_ANALYTICS": "1", "SLIPWAY_KUBECTL": str(KUBECTL)}


def run(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, **ENV, "PATH": f"{VENV / 'bin'}:{os.environ['PATH']}"}
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def make(cwd: Path, *targets: str, check: bool = True) -> subprocess.CompletedProcess:
    """The project's make targets, with this test run's environment as the venv and its kubectl."""
    return run(cwd, "make", f"VENV={VENV}", "-o", f"{VENV}/bin/.installed-uv", "-o", ".tools/bin/kubectl", *targets,
               check=check)


def set_params(root: Path, changes: dict) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    for dotted, value in changes.items():
        node = params
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def image(root: Path, track: str) -> str:
    rendered = run(root, str(KUBECTL), "kustomize", f"kustomize/overlays/{track}").stdout
    deployment = next(d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "Deployment")
    return deployment["spec"]["template"]["spec"]["containers"][0]["image"]


def model_of(image_reference: str) -> str:
    return Image(*image_reference.split("@")[0].rsplit(":", 1)).model_version


def pinned(image_reference: str) -> str:
    """The reference as the stand-in registry's digest pins it (see ``registry``)."""
    tagged = image_reference.split("@")[0]
    return f"{tagged}@sha256:{hashlib.sha256(tagged.encode()).hexdigest()}"


# A registry that holds every image `make release` asks for, under a digest that hashes its reference,
# as one push would leave it; what the release pins, kustomize renders.
FAKE_DOCKER = """#!/bin/sh
[ "$1 $2 $3" = "buildx imagetools inspect" ] || { echo "unexpected: docker $*" >&2; exit 1; }
printf '{"digest":"sha256:%s"}\\n' "$(printf %s "$6" | sha256sum | cut -d' ' -f1)"
"""


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """The stand-in docker CLI first on PATH for this module's commands."""
    bin_dir = tmp_path_factory.mktemp("docker-bin")
    (bin_dir / "docker").write_text(FAKE_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
        yield


def version(root: Path) -> str:
    return json.loads((root / "models/model.json").read_text())["model_version"]


@pytest.fixture(scope="module")
def remote(tmp_path_factory, registry):
    """The template, trained once, released and promoted, pushed to a bare repository."""
    if not KUBECTL.is_file():
        pytest.fail("the project's kubectl is missing: run `make tools`")
    base = tmp_path_factory.mktemp("gitops")
    bare = base / "remote.git"
    run(base, "git", "init", "-q", "--bare", "-b", "main", str(bare))
    seed = base / "seed"
    seed.mkdir()
    for name in TEMPLATE_FILES:
        (shutil.copytree if (REPO / name).is_dir() else shutil.copy)(REPO / name, seed / name)
    shutil.rmtree(seed / "src/slipway.egg-info", ignore_errors=True)
    run(seed, "git", "init", "-q", "-b", "main")
    run(seed, "dvc", "init", "-q")
    run(seed, "dvc", "remote", "add", "-d", "local", str(base / "dvc-remote"))
    set_params(seed, {"example_data.months": 4, "example_data.rows_per_month": 500,
                      "train.hyperparameters.max_iter": 40, "evaluate.importance_sample": 200,
                      "gate.sample_size": 1000, "gate.min_roc_auc": 0.6, "gate.min_accuracy": 0.6,
                      "gate.max_regression": 0.05})
    run(seed, "git", "remote", "add", "origin", str(bare))
    make(seed, "data", "pipeline", "dvc-push")
    run(seed, "git", "add", "-A")
    run(seed, "git", "commit", "-qm", "template with its first model")
    run(seed, "git", "push", "-q", "origin", "main")
    make(seed, "release")
    run(seed, "slipway", "promote", "--force", "--reason", "first deployment")
    return bare


def clone(remote: Path, where: Path) -> Path:
    run(where.parent, "git", "clone", "-q", str(remote), str(where))
    make(where, "dvc-pull")
    return where


def test_param_change_releases_to_canary_then_promote_and_rollback(remote, tmp_path):
    developer = clone(remote, tmp_path / "developer")
    first = image(developer, "production")
    assert image(developer, "canary") == first
    set_params(developer, {"train.hyperparameters.learning_rate": 0.05})
    run(developer, "git", "commit", "-qam", "slower learning")
    run(developer, "git", "push", "-q", "origin", "main")

    ci = clone(remote, tmp_path / "ci")
    make(ci, "pipeline", "dvc-push", "serve-check", "release")  # release.yml's steps (image-push aside)
    new_version = version(ci)
    gate = json.loads((ci / "reports/gate.json").read_text())
    # The gate fetched the model production runs (from the DVC remote, at its release commit).
    assert model_of(first) == gate["models"]["champion"]
    assert gate["models"]["champion_score"] > 0.5
    assert model_of(first) != new_version
    upstream = clone(remote, tmp_path / "after-release")
    released = image(upstream, "canary")
    assert model_of(released) == new_version and released == pinned(released)  # the cluster pulls by digest
    assert image(upstream, "production") == first
    message = run(upstream, "git", "log", "-1", "--format=%B").stdout
    assert message.startswith(f"release: canary -> model {new_version}")
    assert "Data: data/raw " in message and "Metrics: roc_auc=" in message

    (ci / "reports/canary-analysis.json").write_text(json.dumps({"verdict": "pass", "canary_version": new_version}))
    make(ci, "promote")
    assert model_of(image(ci, "production")) == new_version
    # Production changed, so the gate's verdict is stale: the next repro reruns the gate alone,
    # against the new champion (a stale pass would release a model worse than production).
    assert "kustomize/overlays/production/kustomization.yaml" in run(ci, "dvc", "status", "gate").stdout
    rerun = run(ci, "dvc", "repro").stdout
    assert [line for line in rerun.splitlines() if line.startswith("Running stage")] == ["Running stage 'gate':"]
    assert json.loads((ci / "reports/gate.json").read_text())["models"]["champion"] == new_version
    status = json.loads(run(ci, "slipway", "status", "--json").stdout)
    assert status["production"]["model_version"] == new_version

    make(ci, "rollback")
    assert image(ci, "production") == first
    pushed = clone(remote, tmp_path / "after-rollback")
    assert image(pushed, "production") == first
    assert run(pushed, "git", "log", "-1", "--format=%s").stdout.startswith("rollback: production -> model")


def test_a_gate_failure_commits_nothing(remote, tmp_path):
    ci = clone(remote, tmp_path / "ci")
    head = run(ci, "git", "rev-parse", "HEAD").stdout
    set_params(ci, {"gate.min_roc_auc": 0.99})
    result = make(ci, "pipeline", "release", check=False)
    assert result.returncode != 0
    assert "FAIL model_performance/metrics [test]: test roc_auc" in result.stderr
    assert run(ci, "git", "ls-remote", str(remote), "main").stdout.split()[0] == head.strip()


def test_two_concurrent_releases_both_land_or_the_second_fails_clearly(remote, tmp_path):
    clones = [clone(remote, tmp_path / name) for name in ("a", "b")]
    for root, model in zip(clones, ("concurrent-a", "concurrent-b"), strict=True):
        write_bundle(root, model)
    results = {}

    def release(root):
        results[root.name] = run(root, "slipway", "release", check=False)

    threads = [threading.Thread(target=release, args=(root,)) for root in clones]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    failed = [r for r in results.values() if r.returncode != 0]
    assert len(failed) <= 1
    for result in failed:
        assert "the local commit was dropped" in result.stderr
    check = clone(remote, tmp_path / "check")
    run(check, "git", "fsck", "--strict")
    subjects = run(check, "git", "log", "--format=%s", "-3").stdout.splitlines()
    landed = [s for s in subjects if s.startswith("release: canary -> model concurrent-")]
    assert len(landed) == 2 - len(failed)
    assert model_of(image(check, "canary")) in {"concurrent-a", "concurrent-b"}
