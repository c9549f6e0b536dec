"""Exit statuses CI acts on: a verdict's 1 (drift, a failed canary) is never an error's.

Errors exit 2, whether a SlipwayError with its one line or an unexpected exception with its
traceback; otherwise a crash in ``slipway drift`` would start a retrain.
"""

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from slipway import cli
from slipway.errors import ERROR_EXIT
from tests.conftest import make_churn

SLIPWAY = str(Path(sys.executable).parent / "slipway")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def predictions(tmp_path) -> Path:
    folder = tmp_path / "predictions"
    folder.mkdir()
    return folder


def drift(tmp_path, bundle_dir, reference) -> subprocess.CompletedProcess:
    return subprocess.run([SLIPWAY, "drift", "--predictions", str(tmp_path / "predictions"),
                           "--reference", str(reference), "--model-dir", str(bundle_dir),
                           "--out-dir", str(tmp_path / "reports")],
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])


def test_a_bad_prediction_log_is_an_error_not_drift(tmp_path, bundle_dir, predictions):
    (predictions / "a.jsonl").write_text('{"inputs": \n')
    reference = tmp_path / "train.parquet"
    make_churn(months=1, rows=100).to_parquet(reference)
    result = drift(tmp_path, bundle_dir, reference)
    assert result.returncode == ERROR_EXIT == 2
    assert "error: " in result.stderr and "a.jsonl: not a prediction log: 1 of 1 lines are not JSON" in result.stderr
    assert not (tmp_path / "reports").exists()


def test_a_reference_that_is_not_parquet_is_named(tmp_path, bundle_dir, predictions):
    reference = tmp_path / "train.parquet"
    reference.write_text("not parquet")
    result = drift(tmp_path, bundle_dir, reference)
    assert result.returncode == 2
    assert f"error: {reference}: not a readable Parquet file" in result.stderr


def test_an_empty_prediction_log_location_is_a_usage_error(tmp_path, bundle_dir):
    """drift.yml passes $PREDICTION_LOG_URI: an unset variable must not mean 'the current directory'."""
    result = subprocess.run([SLIPWAY, "drift", "--predictions", "", "--model-dir", str(bundle_dir),
                             "--reference", str(bundle_dir / "model.json")],  # a clean clone has no split
                            capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 2
    assert "Invalid value for '--predictions': is empty (is PREDICTION_LOG_URI set?)" in result.stderr


def test_a_missing_reference_is_a_usage_error(tmp_path, bundle_dir, predictions):
    result = drift(tmp_path, bundle_dir, tmp_path / "missing.parquet")
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_an_unexpected_exception_exits_2_with_its_traceback(monkeypatch, capsys):
    def crash(**_):
        raise RuntimeError("a bug")

    monkeypatch.setattr(cli, "cli", crash)
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 2
    assert "RuntimeError: a bug" in capsys.readouterr().err


@pytest.mark.parametrize(("setting", "message"), [
    ({"months": 0}, "params: example_data.months must be >= 1, got 0"),
    ({"rows_per_month": -5}, "params: example_data.rows_per_month must be >= 10, got -5"),
    ({"drift_start": -1}, "params: example_data.drift_start must be >= 0, got -1"),
    ({"seed": -1}, "params: example_data.seed must be >= 0, got -1"),
    ({"start": "January"}, "example_data.start (--start) must be a month as YYYY-MM, got 'January'"),
    ({"start": "2025-13"}, "example_data.start (--start) must be a month as YYYY-MM, got '2025-13'"),
    ({"drift": float("nan")}, "params: example_data.drift must be a finite number, got nan"),
])
def test_example_data_params_get_the_options_bounds(tmp_path, repo_params, setting, message):
    """months: 0 wrote nothing and said nothing; the others were pandas or numpy tracebacks."""
    params = {**repo_params, "example_data": {**repo_params["example_data"], **setting}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = subprocess.run([SLIPWAY, "example-data", "--params", str(tmp_path / "params.yaml"),
                             "--out", str(tmp_path / "raw")], capture_output=True, text=True)
    assert result.returncode == ERROR_EXIT and "Traceback" not in result.stderr
    assert result.stderr.strip() == f"error: {message}"
    assert not (tmp_path / "raw").exists()


def test_image_tag_is_the_tag_release_writes(bundle_dir):
    """`make image` tags as `slipway image-tag` says, `make release` writes release's tag into the
    canary overlay: the same checkout must give the same tag."""
    from slipway import bundle
    from slipway.release.overlay import image_tag

    root = Path(__file__).resolve().parents[1]
    version = bundle.load_metadata(bundle_dir)["model_version"]
    tagged = subprocess.run([SLIPWAY, "image-tag", "--model-dir", str(bundle_dir)], capture_output=True,
                            text=True, cwd=root, check=True).stdout.strip()
    assert tagged == f"ghcr.io/your-org/slipway:{image_tag(version, root)}"
    only = subprocess.run([SLIPWAY, "image-tag", "--model-dir", str(bundle_dir), "--version-only"],
                          capture_output=True, text=True, cwd=root, check=True).stdout.strip()
    assert only == version


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_example_data_refuses_a_drift_that_is_not_finite(tmp_path, value):
    """click's FloatRange(min=0) lets NaN and infinity through; numpy then failed with
    'probabilities contain NaN'."""
    result = subprocess.run([SLIPWAY, "example-data", "--out", str(tmp_path / "raw"), "--drift", value],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"Invalid value for '--drift': {value} is not a finite number" in result.stderr
    assert not (tmp_path / "raw").exists()


@pytest.mark.parametrize("command", ["promote", "rollback"])
def test_an_empty_expected_image_is_refused_not_ignored(command):
    """An approval step that lost its image passes ``--expect ""``: taken as no --expect, the
    promotion or rollback would run without the check that it is the one approved."""
    result = subprocess.run([SLIPWAY, command, "--expect", " "], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "Invalid value for '--expect': is empty: give the image the reviewers approved" in result.stderr


def params_with_source(tmp_path: Path, source: Path | str) -> Path:
    """The repository's params, with ``data.source`` set to ``source``."""
    params = yaml.safe_load((Path(cli.__file__).parents[2] / "params.yaml").read_text())
    params["data"]["source"] = str(source)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


@pytest.mark.parametrize("own", ["csv batches in data/raw", "data.source elsewhere"])
def test_make_runs_data_step_writes_no_example_beside_or_instead_of_a_teams_own_data(tmp_path, own):
    """`example-data --if-absent` looked for Parquet files only: a team's CSV batches in data/raw
    were joined by the example's churn months, and ingest refused the mix. With data.source
    elsewhere, `make run` wrote (and `dvc add`ed) the example all the same."""
    from click.testing import CliRunner

    out = tmp_path / "raw"
    if own == "csv batches in data/raw":
        (out / "2025").mkdir(parents=True)
        (out / "2025" / "customers.csv").write_text("id,label\n1,0\n")
        params, said = params_with_source(tmp_path, out), f"example-data: {out} already holds files; left as is"
    else:
        params, said = params_with_source(tmp_path, "s3://bucket/customers"), (
            f"example-data: data.source is s3://bucket/customers, not {out}: no example data written")
    result = CliRunner().invoke(cli.cli, ["example-data", "--params", str(params), "--out", str(out), "--if-absent"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == said
    assert not list(out.rglob("*.parquet"))


def test_example_data_stopped_midway_writes_no_month_and_the_next_run_writes_them_all(tmp_path, monkeypatch):
    """`make run` stopped in its data step: `--if-absent` took the months written so far for the
    whole example, and the pipeline then ran on part of it."""
    from click.testing import CliRunner

    from slipway.model import example_data as gen

    out, generate, calls = tmp_path / "raw", gen.generate_month, []

    def stopped_at_the_third(*args):
        calls.append(args)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return generate(*args)

    options = ["example-data", "--params", str(params_with_source(tmp_path, out)), "--out", str(out), "--months", "4",
               "--rows-per-month", "10", "--if-absent"]
    monkeypatch.setattr(gen, "generate_month", stopped_at_the_third)
    assert CliRunner().invoke(cli.cli, options).exit_code == 1  # click's Abort, for the Ctrl-C
    assert not out.exists() or not any(out.iterdir())
    monkeypatch.setattr(gen, "generate_month", generate)
    assert CliRunner().invoke(cli.cli, options).exit_code == 0
    assert len(list(out.glob("*.parquet"))) == 4


def test_a_command_stopped_by_sigterm_leaves_the_previous_outputs_and_no_temporary_file(tmp_path):
    """What a cancelled CI job or `kill` sends. Its default action ended the process where it
    stood, leaving the temporary file of the output being written."""
    out = tmp_path / "raw"
    script = ("import sys, time\n"
              "from slipway.model import example_data as gen\n"
              "generate = gen.generate_month\n"
              "def slow(month, *args):\n"
              "    if month == '2025-02':\n"
              "        print('second month', flush=True); time.sleep(60)\n"
              "    return generate(month, *args)\n"
              "gen.generate_month = slow\n"
              f"sys.argv = ['slipway', 'example-data', '--out', {str(out)!r}, '--start', '2025-01', '--months', '2', "
              "'--rows-per-month', '10']\n"
              "from slipway.cli import main\n"
              "main()\n")
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert "second month\n" in iter(process.stdout.readline, "")  # after the first month's line
    process.terminate()
    assert process.wait(timeout=10) == 128 + signal.SIGTERM
    assert list(out.iterdir()) == []
