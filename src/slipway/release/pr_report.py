"""The pull-request comment: the gate's summary, the server's memory (``slipway serve-check``),
and the metrics and params diff against the base.

After a failed ``dvc repro`` the committed ``reports/gate.md`` may be the base branch's, not this
change's. The first stage DVC still reports as changed tells which: if it is ``gate``, every stage
before it ran and the gate wrote its verdict (a failing one); any earlier stage means the pipeline
stopped before the gate, and the comment says where instead of showing a stale verdict.
"""

from __future__ import annotations

import json
from pathlib import Path

from slipway.pipeline.paths import pipeline_stages
from slipway.release.dvc import dvc

GATE_STAGE = "gate"


def stages(dvc_yaml: Path = Path("dvc.yaml")) -> list[str]:
    """The pipeline's stage names, in the order dvc.yaml lists them."""
    return list(pipeline_stages(dvc_yaml))


def first_changed(status: dict, order: list[str]) -> str | None:
    """The first stage of ``order`` that ``dvc status --json`` reports as not up to date."""
    return next((name for name in order if status.get(name)), None)


def gate_section(gate_md: Path, stopped_at: str | None) -> str:
    if stopped_at not in (None, GATE_STAGE):
        return (f"## ⛔ Pipeline stopped at `{stopped_at}`\n\nThe gate did not run on this change; "
                f"the job log names the problem.\n")
    if not gate_md.is_file():
        return "## Gate: no report\n"
    return gate_md.read_text()


def diff_section(kind: str, base: str) -> str:
    result = dvc(kind, "diff", base, "--md")
    if result.returncode != 0:
        return f"_dvc {kind} diff failed: {result.stderr.strip()}_"
    table = result.stdout.strip()
    if len(table.splitlines()) <= 2:  # dvc prints the header rows even when nothing changed
        return f"_no {kind} changed against {base}_"
    return table


def serve_check_section(serve_check_md: Path) -> str:
    """``slipway serve-check``'s verdict; nothing where it did not run (the pipeline failed)."""
    return f"\n{serve_check_md.read_text()}" if serve_check_md.is_file() else ""


def report(base: str, gate_md: Path, serve_check_md: Path) -> str:
    status = dvc("status", "--json")
    stopped_at = first_changed(json.loads(status.stdout or "{}"), stages()) if status.returncode == 0 else None
    return (f"{gate_section(gate_md, stopped_at)}{serve_check_section(serve_check_md)}\n"
            f"### Metrics vs {base}\n\n{diff_section('metrics', base)}\n\n"
            f"### Params vs {base}\n\n{diff_section('params', base)}\n")
