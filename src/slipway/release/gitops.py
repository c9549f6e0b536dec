"""release, promote, rollback, status: each one overlay edit, one commit, one push.

A refusal raises :class:`ReleaseRefused` (one line, exit status 2) before anything is written.
A push rejected because the remote moved on is rebased and retried a bounded number of times;
if it still fails, the local commit is undone, so nothing half-done is left behind.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from slipway.errors import SlipwayError
from slipway.io import read_json
from slipway.pipeline.paths import uncached_outputs
from slipway.provenance import describe_source
from slipway.release.overlay import Image, image_tag, kustomization, parse_image, read_image, set_image


class ReleaseRefused(SlipwayError):
    """The operation may not run as asked; nothing was changed."""


@dataclass
class Repo:
    root: Path = Path(".")
    remote: str = "origin"
    branch: str = "main"

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        # Replacement characters, not a traceback, for a file in history that is not UTF-8: the
        # overlay parser then names it as broken.
        result = subprocess.run(["git", *args], cwd=self.root, capture_output=True, encoding="utf-8",
                                errors="replace")
        if check and result.returncode != 0:
            raise SlipwayError(f"git {' '.join(args)}: {result.stderr.strip() or result.stdout.strip()}")
        return result

    def has_remote(self) -> bool:
        """Whether commits are pushed: a repository without any remote (a scratch clone) commits
        locally. Otherwise the push must land where Argo CD looks: a ``release.remote`` that is not
        one of the remotes (committed but never pushed, a change would be reported done) or a
        ``release.branch`` the remote lacks (the push would create it) is refused."""
        remotes = self.git("remote").stdout.split()
        if not remotes:
            return False
        if self.remote not in remotes:
            raise ReleaseRefused(f"release.remote {self.remote!r} is not a remote of this repository "
                                 f"(it has {', '.join(remotes)}); nothing was changed")
        found = self.git("ls-remote", "--exit-code", "--heads", self.remote, self.branch, check=False)
        if found.returncode == 2:  # --exit-code: no such ref
            raise ReleaseRefused(f"release.branch {self.branch!r} is not a branch of {self.remote} (a push "
                                 "would create it, where nothing deploys from); nothing was changed")
        if found.returncode != 0:
            raise SlipwayError(f"git ls-remote {self.remote}: {found.stderr.strip()}")
        return True

    def is_shallow(self) -> bool:
        """A clone with part of the history (CI checkouts by default): what it lacks may exist."""
        return self.git("rev-parse", "--is-shallow-repository").stdout.strip() == "true"


def _relative(repo: Repo, path: Path) -> str:
    return str(path.relative_to(repo.root)) if path.is_absolute() else str(path)


def refuse_uncommitted(repo: Repo, command: str, paths: list[Path]) -> None:
    """The overlays ``command`` edits must be as committed: a failed commit or push is undone by
    restoring them from git, which would take uncommitted edits of them along."""
    changed = repo.git("status", "--porcelain", "--", *(_relative(repo, p) for p in paths)).stdout.splitlines()
    if changed:
        raise ReleaseRefused(f"{command} refused: {', '.join(line[3:] for line in changed)} has uncommitted "
                             "changes; commit or discard them first; nothing was changed")


def _undo(repo: Repo, edited: list[str], files: list[str], to: str | None) -> None:
    """Back to before the edit: the commit (``to`` is the commit to return to) or the staging of
    ``files`` undone, and the ``edited`` overlays restored. The working tree keeps everything else,
    such as a pipeline's dvc.lock, and any change of the user's."""
    repo.git("reset", "--quiet", *([to] if to else ["--", *files]), check=False)
    repo.git("checkout", "--", *edited, check=False)


def commit_and_push(repo: Repo, edited: list[Path], message: str, pushes: bool, attempts: int = 4,
                    also: tuple[str, ...] = ()) -> str:
    """Commit the ``edited`` overlays (and the files in ``also`` that exist) alone; push (when
    ``pushes``, what :meth:`Repo.has_remote` said before anything was written), rebasing onto the
    remote when it moved on. Returns the commit. On failure the commit is undone and the overlays
    are as committed again (:func:`refuse_uncommitted` made sure that loses nothing)."""
    overlays = [_relative(repo, path) for path in edited]
    files = overlays + [name for name in also if (repo.root / name).is_file()]
    for step in (["add", "--", *files], ["commit", "--quiet", "-m", message, "--", *files]):
        done = repo.git(*step, check=False)
        if done.returncode != 0:
            _undo(repo, overlays, files, None)
            raise SlipwayError(f"git {step[0]}: {done.stderr.strip() or done.stdout.strip()}; nothing was "
                               "committed, the overlays are as they were")
    if not pushes:
        return repo.git("rev-parse", "HEAD").stdout.strip()
    for attempt in range(1, attempts + 1):
        pushed = repo.git("push", "--quiet", repo.remote, f"HEAD:{repo.branch}", check=False)
        if pushed.returncode == 0:
            return repo.git("rev-parse", "HEAD").stdout.strip()
        rebased = repo.git("pull", "--rebase", "--quiet", repo.remote, repo.branch, check=False)
        if rebased.returncode != 0:
            repo.git("rebase", "--abort", check=False)
            _undo(repo, overlays, files, "HEAD~1")
            raise SlipwayError(f"push rejected and the rebase onto {repo.remote}/{repo.branch} "
                               f"conflicts; the local commit was dropped: {rebased.stderr.strip()}")
        time.sleep(0.2 * attempt)
    _undo(repo, overlays, files, f"{repo.remote}/{repo.branch}")
    raise SlipwayError(f"push to {repo.remote}/{repo.branch} rejected {attempts} times; "
                       "the local commit was dropped")


def checkout_tip(repo: Repo) -> str:
    """Check out the remote branch as it is now, detached. A CI job whose turn to push comes after
    others pushed acts on what they left, not on the commit it was queued for (the GitHub jobs that
    push check out the branch for the same reason). Refuses, as git does, to overwrite local changes."""
    repo.git("fetch", "--quiet", repo.remote, repo.branch)
    repo.git("checkout", "--quiet", "--detach", "FETCH_HEAD")
    return f"checked out {repo.remote}/{repo.branch} at {repo.git('rev-parse', 'HEAD').stdout.strip()[:12]}"


def _metrics_line(metrics: dict) -> str:
    return ", ".join(f"{k}={metrics[k]:.4f}" for k in ("roc_auc", "accuracy", "f1")
                     if isinstance(metrics.get(k), float))


def _json_object(path: Path) -> dict:
    document = read_json(path, ReleaseRefused)
    if not isinstance(document, dict):
        raise ReleaseRefused(f"{path}: not a JSON object")
    return document


def release(repo: Repo, repository: str, model_dir: Path, reports_dir: Path,
            digest_of: Callable[[str], str]) -> str:
    """Point the canary overlay at the gated model's image, pinned by the digest ``digest_of`` reads
    from the registry (:func:`slipway.release.image.registry_digest`). Idempotent."""
    gate_path = reports_dir / "gate.json"
    if not gate_path.is_file():
        raise ReleaseRefused(f"release refused: {gate_path} not found (run the pipeline's gate)")
    gate = _json_object(gate_path)
    meta = _json_object(model_dir / "model.json")
    version = meta.get("model_version")
    if not isinstance(version, str):
        raise ReleaseRefused(f"release refused: {model_dir / 'model.json'} names no model_version")
    models = gate.get("models")
    gated = models.get("challenger") if isinstance(models, dict) else None
    if gate.get("verdict") != "pass" or gated != version:
        raise ReleaseRefused(f"release refused: the gate did not pass model {version} "
                             f"(verdict {gate.get('verdict')!r} for {gated})")
    pushes = repo.has_remote()  # before anything is written
    if pushes:
        _refuse_if_production_moved(repo)
    path = kustomization("canary", repo.root)
    refuse_uncommitted(repo, "release", [path])
    tagged = Image(repository, image_tag(version, repo.root))
    image = replace(tagged, digest=digest_of(str(tagged)))
    _refuse_if_tag_pushed_again(repo, image)
    if not set_image(path, image):
        return f"release: canary already runs {image}; nothing to do"
    # What the commit message tells of the model; a field edited into another shape reads as unknown.
    raw = meta["data"].get("raw") if isinstance(meta.get("data"), dict) else None
    data = ", ".join(f"{p} {h}" for p, h in raw.items()) if isinstance(raw, dict) and raw else "unknown"
    metrics = gate["metrics"] if isinstance(gate.get("metrics"), dict) else {}
    message = (f"release: canary -> model {version}\n\n"
               f"Image: {image}\nData: {data}\n"
               f"Metrics: {_metrics_line(metrics) or 'unknown'}\nGate: pass\n"
               f"Trained from: {describe_source(meta.get('git_commit'), meta.get('git_uncommitted'))}\n")
    # dvc.lock goes with it: the release commit records what produced the model, so the gate can
    # fetch this very bundle later when it is production's (slipway.release.champion). So do the
    # metrics and reports git holds, or main's would disagree with its dvc.lock and pull requests
    # would diff their metrics against the previous model's.
    commit = commit_and_push(repo, [path], message, pushes, also=("dvc.lock", *uncached_outputs(repo.root)))
    return f"release: canary -> model {version} ({commit[:12]})"


def _refuse_if_tag_pushed_again(repo: Repo, image: Image) -> None:
    """A track pinned to another digest of ``image``'s tag: the tag was pushed again over the build
    released (a tag names one build), and releasing it would run an image nobody gated."""
    for track in ("canary", "production"):
        running = read_image(kustomization(track, repo.root))
        if running.same_build(image) and running.digest and running.digest != image.digest:
            raise ReleaseRefused(f"release refused: the registry holds {running.repository}:{running.tag} as "
                                 f"{image.digest}, but the {track} runs it as {running.digest}: the tag was pushed "
                                 "again over the released build; push that build back, or release a new build")


def _refuse_if_production_moved(repo: Repo) -> None:
    """A checkout older than the remote's last promote or rollback (a run queued behind it, or CI
    building its trigger commit) gated the model against a production that is no longer live."""
    repo.git("fetch", "--quiet", repo.remote, repo.branch)
    local = kustomization("production", repo.root)
    relative = local.relative_to(repo.root).as_posix()
    remote = repo.git("show", f"{repo.remote}/{repo.branch}:{relative}", check=False)
    if remote.returncode != 0 or not local.is_file():
        return
    here, there = read_image(local), parse_image(remote.stdout, f"{repo.remote}/{repo.branch}:{relative}")
    if here != there:
        raise ReleaseRefused(f"release refused: production on {repo.remote}/{repo.branch} runs {there}, "
                             f"this checkout's runs {here}, so the gate compared against a production "
                             f"that is no longer live; rerun the pipeline on the latest {repo.branch}")


def _as_approved(command: str, what: str, track: str, image: Image, expected: str | None) -> None:
    """Refuse when ``track`` no longer runs ``expected``, the image the reviewers were shown when
    they approved: the change they approved is not the one this would make."""
    if expected is not None and str(image) != expected:
        raise ReleaseRefused(f"{command} refused: the {track} runs {image}, not {expected}, the image this "
                             f"{what} was approved for (it changed meanwhile); start a new {what}")


def promote(repo: Repo, analysis: Path | None, force_reason: str | None, expected: str | None = None) -> str:
    """Production to the canary's image. ``expected``: the canary image the reviewers approved; a
    release may have replaced it while they decided, and the model they never saw is not promoted."""
    pushes = repo.has_remote()  # before the overlay is touched
    canary = read_image(kustomization("canary", repo.root))
    _as_approved("promote", "promotion", "canary", canary, expected)
    production_path = kustomization("production", repo.root)
    production = read_image(production_path)
    refuse_uncommitted(repo, "promote", [production_path])
    if canary.same_build(production):
        raise ReleaseRefused(f"promote refused: canary is not ahead of production (both run model {canary.tag})")
    verdict = None
    if analysis is not None and analysis.is_file():
        result = _json_object(analysis)
        verdict = result.get("verdict")
        if result.get("canary_version") not in (None, canary.model_version):
            raise ReleaseRefused(f"promote refused: the canary analysis is for model "
                                 f"{result.get('canary_version')}, the canary runs {canary.model_version}")
    if verdict != "pass" and not force_reason:
        raise ReleaseRefused(f"promote refused: canary analysis verdict is {verdict or 'missing'}, "
                             "not pass (--force --reason TEXT to override)")
    set_image(production_path, canary)
    reason = f"Forced: {force_reason}" if verdict != "pass" else "Canary analysis: pass"
    commit = commit_and_push(repo, [production_path],
                             f"promote: production -> model {canary.tag} (was {production.tag})\n\n"
                             f"Image: {canary}\n{reason}\n", pushes)
    return f"promote: production -> model {canary.tag} ({commit[:12]})"


@dataclass(frozen=True)
class OverlayChange:
    commit: str
    committed_at: str
    subject: str
    image: Image


def image_history(repo: Repo, track: str) -> Iterator[OverlayChange]:
    """Each commit that touched the overlay, newest first, with the image it left. Lazy (one
    ``git show`` per commit): callers stop walking the history once they have what they need."""
    relative = str(kustomization(track))
    log = repo.git("log", "--format=%H %cI %s", "--", relative).stdout.split("\n")
    for line in filter(None, log):
        commit, when, subject = line.split(" ", 2)
        shown = repo.git("show", f"{commit}:{relative}", check=False)
        if shown.returncode == 0:
            try:
                yield OverlayChange(commit, when, subject, parse_image(shown.stdout, f"{relative}@{commit[:12]}"))
            except SlipwayError:
                continue


ROLLBACK_SUBJECT = re.compile(r"^rollback: production -> model \S+ \(was (\S+)\)$")


def rollback(repo: Repo, expected: str | None = None) -> str:
    """Production back to the image it ran before its current one, from the overlay's history.
    Images production was rolled back from since they were set are skipped: a second rollback goes
    further back, not forward to the model the first one removed. ``expected``: the production
    image the reviewers approved rolling back from; after a promotion meanwhile, this would roll
    back that one instead."""
    pushes = repo.has_remote()  # before the overlay is touched
    path = kustomization("production", repo.root)
    canary = kustomization("canary", repo.root)
    refuse_uncommitted(repo, "rollback", [path, canary])
    current = read_image(path)
    _as_approved("rollback", "rollback", "production", current, expected)
    removed: set[str] = set()
    previous = None
    # Newest first, so a rollback's commit is seen before any commit that set the image it removed.
    for change in image_history(repo, "production"):
        if rolled_back := ROLLBACK_SUBJECT.match(change.subject):
            removed.add(rolled_back.group(1))
        if not change.image.same_build(current) and change.image.tag not in removed:
            previous = change.image
            break
    if previous is None:
        raise ReleaseRefused(f"rollback refused: production has run no image other than {current}"
                             + (f" or those rolled back from ({', '.join(sorted(removed))})" if removed else "")
                             + (" in this shallow clone: fetch the whole history (git fetch --unshallow)"
                                if repo.is_shallow() else ""))
    set_image(path, previous)
    # The canary takes a share of live traffic: left on the removed model, it would keep serving it.
    with_canary = read_image(canary).same_build(current) and set_image(canary, previous)
    message = (f"rollback: production -> model {previous.tag} (was {current.tag})\n\nImage: {previous}\n"
               + (f"Canary: back to {previous.tag} too (it ran {current.tag})\n" if with_canary else ""))
    commit = commit_and_push(repo, [path, canary] if with_canary else [path], message, pushes)
    return f"rollback: production{' and canary' if with_canary else ''} -> model {previous.tag} ({commit[:12]})"


def status(repo: Repo) -> dict:
    """What each track runs and since which commit, from the repository alone."""
    out = {}
    for track in ("canary", "production"):
        image = read_image(kustomization(track, repo.root))
        since = None
        for change in image_history(repo, track):
            if not change.image.same_build(image):  # pinning its digest later is not a new image
                break
            since = (change.commit, change.committed_at)
        out[track] = {"image": str(image), "model_version": image.model_version,
                      "since_commit": since[0] if since else None, "since": since[1] if since else None}
    return out
