"""deepchecks as the gate and the drift job run it: quiet, quicker to import, and a check whose
plots fail still scored. Only the pipeline and the drift job import this: never the server."""

from __future__ import annotations

import logging
import sys
import warnings
from typing import Any

# deepchecks imports jsonschema (through nbformat), which compiles an Earley parser for RFC 3987
# IRIs at import when rfc3987-syntax is installed (jupyter-events requires it): two seconds of every
# gate run, for a format check nothing here asks for. Without the module jsonschema skips it.
sys.modules.setdefault("rfc3987_syntax", None)


def quiet_deepchecks() -> None:
    """deepchecks warns about every dataset inference; the reports say what matters."""
    warnings.filterwarnings("ignore")
    logging.getLogger("deepchecks").setLevel(logging.ERROR)


def run_check(check, *datasets, **kwargs) -> tuple[Any, str | None]:
    """A deepchecks check's result, and why it has no plots if it has none. Its plots fail where its
    values do not: a density estimate on numbers past about 1e154 (which the server takes as
    numbers), a histogram of text such as '1e309' read as infinity. A check that fails without its
    plots too raises as before."""
    try:
        return check.run(*datasets, **kwargs), None
    except (ValueError, OverflowError) as exc:
        return check.run(*datasets, with_display=False, **kwargs), f"no plots: deepchecks could not draw them ({exc})"
