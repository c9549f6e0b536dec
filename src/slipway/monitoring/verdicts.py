"""What the canary analysis and the drift check share: their verdicts, the exit codes CI acts on,
and the shape of the markdown summary CI posts."""

from __future__ import annotations

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
EXIT_CODES = {PASS: 0, FAIL: 1, INCONCLUSIVE: 3}  # an error exits errors.ERROR_EXIT (2)
ICONS = {PASS: "✅", FAIL: "❌", INCONCLUSIVE: "⚠️"}


def markdown(title: str, verdict: str, summary: str, reason: str | None,
             header: list[str], rows: list[list]) -> str:
    """A heading with the verdict, one summary line, the reason if any, then a table."""
    lines = [f"## {ICONS[verdict]} {title}: {verdict.upper()}", "", summary]
    if reason:
        lines += ["", reason]
    if rows:
        lines += ["", "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
        lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _cell(value) -> str:
    """A table cell: a feature or class named ``a|b`` would otherwise split its row."""
    return str(value).replace("|", "\\|").replace("\n", " ")
