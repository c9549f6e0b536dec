"""Shared fixtures: the repository's params, small example data, a scratch working directory."""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
import pytest

from slipway import params as params_module
from slipway.model.example_data import generate_month, month_range

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_params() -> dict:
    return params_module.load(REPO / "params.yaml")


@pytest.fixture
def params(repo_params) -> dict:
    """A private copy of ``params.yaml``: tests may change it freely."""
    return copy.deepcopy(repo_params)


def make_churn(months: int = 3, rows: int = 400, seed: int = 7, drift: float = 0.0) -> pd.DataFrame:
    frames = [generate_month(m, rows, seed, drift) for m in month_range("2025-01", months)]
    return pd.concat(frames, ignore_index=True)


@pytest.fixture
def churn() -> pd.DataFrame:
    return make_churn()


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """Run the test inside an empty directory, as a stage runs in the repository root."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
