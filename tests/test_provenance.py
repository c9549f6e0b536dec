"""What model.json says a model was trained from, against a real git checkout."""

import subprocess

import pytest

from slipway.provenance import LISTED_CHANGES, describe_source, git_commit, uncommitted_changes


def git(cwd, *args):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A checkout whose DVC project sits in ``ml/``, committed clean; the working directory is the
    project, as it is for a stage."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    for name in ("ml/params.yaml", "ml/dvc.lock", "ml/reports/metrics.json", "ml/src/features.py",
                 "ml/.gitignore", ".gitignore", "shared.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("one\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init")
    monkeypatch.chdir(tmp_path / "ml")
    return tmp_path


def test_a_clean_checkout_has_no_uncommitted_changes(project):
    assert git_commit() == git(project, "rev-parse", "HEAD").strip()
    assert uncommitted_changes(["dvc.lock"]) == []


def test_edits_staged_or_not_are_listed_but_not_the_pipelines_own_writes(project):
    for name in ("ml/params.yaml", "shared.py", "ml/dvc.lock", "ml/reports/metrics.json",
                 "ml/.gitignore", ".gitignore"):
        (project / name).write_text("two\n")
    git(project, "add", "shared.py")
    git(project, "mv", "ml/src/features.py", "ml/src/derived.py")
    (project / "ml/notes.txt").write_text("untracked: nothing committed read it\n")
    assert uncommitted_changes(["dvc.lock", "reports/metrics.json"]) == [
        "ml/params.yaml", "ml/src/derived.py", "ml/src/features.py", "shared.py"]
    # Without the ignore list, the pipeline's own writes count like any other edit.
    assert "ml/dvc.lock" in uncommitted_changes()


def test_outside_a_git_checkout_there_is_nothing_to_say(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    monkeypatch.chdir(tmp_path)
    assert git_commit() is None and uncommitted_changes() is None


@pytest.mark.parametrize(("commit", "uncommitted", "said"), [
    ("abc", [], "abc"),
    ("abc", None, "abc"),
    ("abc", ["params.yaml"], "abc with uncommitted changes to params.yaml"),
    (None, ["a", "b"], "unknown with uncommitted changes to a, b"),
    ("abc", [f"f{i}" for i in range(LISTED_CHANGES + 2)],
     "abc with uncommitted changes to " + ", ".join(f"f{i}" for i in range(LISTED_CHANGES)) + " and 2 more"),
    ({"sha": 1}, "params.yaml", "unknown"),  # an old or edited model.json: said as unknown, never a crash
])
def test_describe_source(commit, uncommitted, said):
    assert describe_source(commit, uncommitted) == said
