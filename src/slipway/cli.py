"""The one command, ``slipway``: DVC stages, CI steps and make targets call its subcommands."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from slipway import params as params_module
from slipway.errors import SlipwayError

params_option = click.option(
    "--params", "params_path", default=str(params_module.DEFAULT_PATH), show_default=True,
    type=click.Path(dir_okay=False), help="The params file.")


@click.group()
def cli() -> None:
    """Slipway: versioned data to a gated, served, monitored model."""


def _stage(name: str, help_text: str):
    """A subcommand that runs ``slipway.pipeline.<name>.main(params)``."""

    @cli.command(name=name, help=help_text)
    @params_option
    def command(params_path: str) -> None:
        import importlib

        module = importlib.import_module(f"slipway.pipeline.{name}")
        module.main(params_module.load(params_path))

    return command


_stage("ingest", "Read the raw batches and split train/test (by time by default).")
_stage("validate", "Check the ingested data against the schema rules; list every problem.")
_stage("featurize", "Infer the feature spec and compute the model's inputs.")
_stage("train", "Fit the estimator and write the model bundle to models/.")
_stage("evaluate", "Score the model on the test set; write metrics and plot data.")
_stage("gate", "Decide whether the model may be released; write reports/gate.{json,md,html}.")


@cli.command("example-data")
@params_option
@click.option("--out", default="data/raw", show_default=True, type=click.Path(file_okay=False))
@click.option("--start", help="First month, YYYY-MM [params: example_data.start].")
@click.option("--months", type=click.IntRange(min=1), help="[params: example_data.months]")
@click.option("--rows-per-month", type=click.IntRange(min=10), help="[params: example_data.rows_per_month]")
@click.option("--seed", type=int, help="[params: example_data.seed]")
@click.option("--drift", type=click.FloatRange(min=0), help="Shift per month from --drift-start "
              "on [params: example_data.drift].")
@click.option("--drift-start", type=click.IntRange(min=0), help="0-based index of the first "
              "drifted month [params: example_data.drift_start].")
@click.option("--if-absent", is_flag=True, help="Do nothing when --out already holds batches.")
def example_data(params_path, out, if_absent, **overrides) -> None:
    """Write the example churn batches, one Parquet file per month."""
    from slipway import io
    from slipway.model import example_data as gen
    from slipway.params import lookup

    out_dir = Path(out)
    if if_absent and out_dir.is_dir() and any(out_dir.glob("*.parquet")):
        click.echo(f"example-data: {out_dir} already holds batches; left as is")
        return
    params = params_module.load(params_path)
    kinds = {"start": str, "months": int, "rows_per_month": int, "seed": int,
             "drift": float, "drift_start": int}
    settings = {key: value if value is not None else lookup(params, f"example_data.{key}", kind)
                for key, kind in kinds.items() for value in [overrides[key]]}
    for index, month in enumerate(gen.month_range(settings["start"], settings["months"])):
        drift = gen.drift_for_month(index, settings["drift"], settings["drift_start"])
        frame = gen.generate_month(month, settings["rows_per_month"], settings["seed"], drift)
        io.write_parquet(out_dir / f"{month}.parquet", frame)
        click.echo(f"example-data: {out_dir / month}.parquet ({len(frame)} rows, drift {drift:g})")


def main() -> None:
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except SlipwayError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
