"""The stages together, on batches damaged at random: whatever a team's export holds, a stage ends
with its outputs or with a named error (a :class:`SlipwayError`), never a traceback.

A first run of this (by hand, thousands of batches) found a timestamp past 64 bits raising pandas'
OverflowError in ingest, a single infinite class failing validate's JSON report, and a feature with
no value in training making train fail on pandas' AttributeError; each has its own test too.
"""

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from slipway.errors import SlipwayError
from slipway.pipeline import evaluate, featurize, ingest, train, validate
from tests.conftest import make_churn

BATCHES = make_churn(months=2, rows=60).astype(object)
# What an export can put in a cell: text numbers in other forms, markers, overflow, control
# characters, dates out of range, as well as plain odd numbers.
ODD_CELLS = st.sampled_from([None, np.nan, "", " ", "NaN", "inf", "1e309", "-1e309", " 5 ", "1,5", "1.234,5", "0x10",
                             "١٢٣", "?", "N/A", "\x00", "True", "north ", "North", "2025-13-45", "9999-12-31",
                             "1677-01-01", 10**30, -5, 2**63, True, 0.5, "a\nb", '"', "x" * 300])
DAMAGE = st.tuples(st.sampled_from(list(BATCHES.columns)), st.sampled_from([1, 2, 30, len(BATCHES)]), ODD_CELLS)


def damaged(damage: list[tuple]) -> pd.DataFrame:
    frame = BATCHES.copy()
    for column, rows, value in damage:
        frame.loc[frame.index[:rows], column] = value
    return frame


@pytest.mark.parametrize("written_as", ["csv", "parquet"])
def test_any_damaged_batch_ends_in_outputs_or_a_named_error(tmp_path, params, written_as):
    params["train"]["hyperparameters"]["max_iter"] = 5
    params["validate"]["max_null_fraction"] = 1.0  # let damage through to the later stages
    params["validate"]["columns"] = {}
    cwd = os.getcwd()

    @settings(max_examples=60, deadline=None, derandomize=bool(os.environ.get("CI")),
              suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(DAMAGE, min_size=1, max_size=4))
    def stages_end_cleanly(damage):
        work = tmp_path / "repo"
        shutil.rmtree(work, ignore_errors=True)
        (work / "data/raw").mkdir(parents=True)
        os.chdir(work)
        try:
            frame = damaged(damage)
            path = Path("data/raw/2025-01." + written_as)
            if written_as == "csv":
                frame.to_csv(path, index=False)
            else:  # pyarrow needs one type a column: mixed ones are written as text, as Spark would
                frame = frame.astype({c: str for c in frame.columns if frame[c].map(type).nunique() > 1})
                try:
                    frame.to_parquet(path)
                except (OverflowError, pa.ArrowException):  # a number past 64 bits: no Parquet type holds it
                    reject()
            for stage in (ingest, validate, featurize, train, evaluate):
                stage.main(params)
        except SlipwayError:
            pass
        finally:
            os.chdir(cwd)

    stages_end_cleanly()
