"""The one command, ``slipway``: DVC stages, CI steps and make targets call its subcommands."""

from __future__ import annotations

import math
import re
import signal
import sys
import time
import traceback
import urllib.parse
from pathlib import Path

import click

from slipway import params as params_module
from slipway.errors import ERROR_EXIT, ParamsError, SlipwayError

params_option = click.option(
    "--params", "params_path", default=str(params_module.DEFAULT_PATH), show_default=True,
    type=click.Path(dir_okay=False), help="The params file.")


class HttpUrl(click.ParamType):
    """An http(s) URL with a host (a Prometheus, a Pushgateway): anything else is a usage error
    naming it, not an error from the first request to it."""

    name = "url"

    def convert(self, value, param, ctx):
        try:
            parts = urllib.parse.urlsplit(value)
            valid = (parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
                     and not re.search(r"\s", value))
        except (TypeError, ValueError):  # an unclosed [ of an IPv6 address, a port out of range
            valid = False
        if not valid:
            self.fail(f"{value!r} is not an http:// or https:// URL", param, ctx)
        return value.rstrip("/")


class FiniteFloatRange(click.FloatRange):
    """click's FloatRange lets NaN through every bound (NaN compares false), and infinity past a
    lower one."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{number} is not a finite number", param, ctx)
        return number


def not_blank(message: str):
    """A callback refusing an option given empty, as CI passes an unset variable: ``message`` says
    what the option needed (taken as absent instead, it would not do what CI asked)."""
    def check(ctx, param, value):
        if value is not None and not value.strip():
            raise click.BadParameter(message)
        return value
    return check


# --expect given empty is a step that lost the approved image, not a change without one: taken as
# absent, it would skip the very check it asks for.
approved_image = not_blank("is empty: give the image the reviewers approved (`slipway status --image ...` "
                           "when they were asked), or leave --expect out")

model_dir_option = click.option(
    "--model-dir", default="models", show_default=True, type=click.Path(file_okay=False),
    help="The model bundle (`dvc repro` writes it; `make dvc-pull` fetches the one dvc.lock names).")
out_dir_option = click.option("--out-dir", default="reports", show_default=True, type=click.Path(file_okay=False))
predictions_option = click.option(
    "--predictions", required=True, callback=not_blank("is empty (is PREDICTION_LOG_URI set?)"),
    help="The servers' prediction log: a .jsonl file, or a directory or s3:// prefix of .jsonl and .jsonl.gz files.")


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
@click.option("--seed", type=click.IntRange(0, params_module.SEED_MAX), help="[params: example_data.seed]")
@click.option("--drift", type=FiniteFloatRange(min=0), help="Shift per month from --drift-start "
              "on [params: example_data.drift].")
@click.option("--drift-start", type=click.IntRange(min=0), help="0-based index of the first "
              "drifted month [params: example_data.drift_start].")
@click.option("--if-absent", is_flag=True, help="Do nothing when --out holds any file already, or when "
              "data.source is elsewhere (your own data: `make run` then writes no example).")
def example_data(params_path, out, if_absent, **overrides) -> None:
    """Write the example churn batches, one Parquet file per month."""
    from slipway import io
    from slipway.model import example_data as gen
    from slipway.params import lookup

    out_dir = Path(out)
    params = params_module.load(params_path)
    if if_absent:
        source = lookup(params, "data.source", str)
        if "://" in source or Path(source).resolve() != out_dir.resolve():
            click.echo(f"example-data: data.source is {source}, not {out_dir}: no example data written")
            return
        # Any file: a team's own CSV batches there are not to be joined by the example's Parquet ones.
        if out_dir.is_dir() and any(path.is_file() for path in out_dir.rglob("*")):
            click.echo(f"example-data: {out_dir} already holds files; left as is")
            return
    # Each setting's type and bounds: the same as the options above.
    kinds = {"start": (str, None, None), "months": (int, 1, None), "rows_per_month": (int, 10, None),
             "seed": (int, 0, params_module.SEED_MAX), "drift": (float, 0.0, None), "drift_start": (int, 0, None)}
    settings = {key: value if value is not None else lookup(params, f"example_data.{key}", kind, minimum=least,
                                                            maximum=most)
                for key, (kind, least, most) in kinds.items() for value in [overrides[key]]}
    check_month(settings["start"], "example_data.start (--start)")
    # All the months or none: --if-absent takes any batch for the whole set.
    with io.together():
        for index, month in enumerate(gen.month_range(settings["start"], settings["months"])):
            drift = gen.drift_for_month(index, settings["drift"], settings["drift_start"])
            frame = gen.generate_month(month, settings["rows_per_month"], settings["seed"], drift)
            io.write_parquet(out_dir / f"{month}.parquet", frame)
            click.echo(f"example-data: {out_dir / month}.parquet ({len(frame)} rows, drift {drift:g})")


def check_month(value: str, name: str) -> None:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", value):
        raise ParamsError(f"{name} must be a month as YYYY-MM, got {value!r}")


@cli.command("example-traffic")
@params_option
@click.option("--url", default="http://127.0.0.1:8080", show_default=True, help="The server (make serve's).")
@click.option("--month", help="YYYY-MM [default: the month after the example data's last].")
@click.option("--rows", default=2000, show_default=True, type=click.IntRange(min=1))
@click.option("--drift", default=0.0, show_default=True, type=FiniteFloatRange(min=0),
              help="How far the month is shifted, as example_data.drift shifts a month (1: strongly).")
@click.option("--batch-size", default=100, show_default=True, type=click.IntRange(min=1),
              help="Instances per request.")
@click.option("--labels", default="data/labels.csv", show_default=True, type=click.Path(dir_okay=False),
              help="Where the customers' outcomes are written, for slipway performance.")
def example_traffic(params_path, url, month, rows, drift, batch_size, labels) -> None:
    """Send a month of example customers to a running server; write their outcomes as labels. With the
    server's prediction log on, slipway drift and slipway performance then have something to read."""
    from slipway import io
    from slipway.model import example_data
    from slipway.model import example_traffic as traffic
    from slipway.params import lookup

    params = params_module.load(params_path)
    if month is None:
        start, months = lookup(params, "example_data.start", str), lookup(params, "example_data.months", int, minimum=1)
        check_month(start, "example_data.start")
        month = example_data.month_range(start, months + 1)[-1]
    check_month(month, "--month")
    seed = lookup(params, "example_data.seed", int, minimum=0, maximum=params_module.SEED_MAX)
    instances, ids, churned = traffic.customers(month, rows, seed, drift)
    sent_at = traffic.send(url.rstrip("/"), instances, batch_size)
    io.write_text(labels, traffic.outcomes(ids, churned, sent_at).to_csv(index=False))
    click.echo(f"example-traffic: {rows} customers of {month} (drift {drift:g}) scored by {url}; their outcomes "
               f"in {labels}")


def _image_repository(params: dict) -> str:
    from slipway.params import lookup
    from slipway.release.overlay import check_repository

    return check_repository(lookup(params, "release.image_repository", str), "params: release.image_repository")


def _repo(params_path: str):
    from slipway.params import lookup
    from slipway.release.gitops import Repo

    params = params_module.load(params_path)
    return Repo(Path("."), lookup(params, "release.remote", str), lookup(params, "release.branch", str)), params


@cli.command("checkout-tip")
@params_option
def checkout_tip(params_path) -> None:
    """Check out release.remote's release.branch as it is now (detached), before pushing to it."""
    from slipway.release import gitops

    repo, _ = _repo(params_path)
    click.echo(gitops.checkout_tip(repo))


@cli.command()
@params_option
@model_dir_option
@click.option("--reports-dir", default="reports", show_default=True, type=click.Path(file_okay=False))
def release(params_path, model_dir, reports_dir) -> None:
    """Point the canary overlay at the gated model's image; commit and push."""
    from slipway.release import gitops
    from slipway.release.image import registry_digest

    repo, params = _repo(params_path)
    click.echo(gitops.release(repo, _image_repository(params), Path(model_dir), Path(reports_dir), registry_digest))


@cli.command()
@params_option
@click.option("--analysis", type=click.Path(dir_okay=False), default="reports/canary-analysis.json",
              show_default=True, help="The canary analysis result (its verdict must be pass).")
@click.option("--force", is_flag=True, help="Promote without a passing canary analysis.")
@click.option("--reason", help="Why (required with --force; recorded in the commit).")
@click.option("--expect", "expected", metavar="IMAGE", callback=approved_image,
              help="The canary image the promotion was approved for (`slipway status --image canary` "
                   "when the reviewers were asked); refused if the canary runs another.")
def promote(params_path, analysis, force, reason, expected) -> None:
    """Set production to the image the canary runs; commit and push."""
    from slipway.release import gitops

    if force and not reason:
        raise click.UsageError("--force needs --reason")
    repo, _ = _repo(params_path)
    click.echo(gitops.promote(repo, Path(analysis), reason if force else None, expected))


@cli.command()
@params_option
@click.option("--expect", "expected", metavar="IMAGE", callback=approved_image,
              help="The production image the rollback was approved for (`slipway status --image "
                   "production` when the reviewers were asked); refused if production runs another.")
def rollback(params_path, expected) -> None:
    """Set production back to the image it ran before; commit and push."""
    from slipway.release import gitops

    repo, _ = _repo(params_path)
    click.echo(gitops.rollback(repo, expected))


@cli.command()
@params_option
@click.option("--json", "as_json", is_flag=True)
@click.option("--image", "image_of", type=click.Choice(["canary", "production"]),
              help="Print only the image this track runs.")
def status(params_path, as_json, image_of) -> None:
    """What canary and production run, since when and by which commit."""
    import json

    from slipway.release import gitops
    from slipway.release.overlay import kustomization, read_image

    repo, _ = _repo(params_path)
    if image_of:  # the overlay alone, no history (CI asks from a shallow checkout)
        click.echo(read_image(kustomization(image_of, repo.root)))
        return
    result = gitops.status(repo)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    for track, entry in result.items():
        since = f"since {entry['since']} ({entry['since_commit'][:12]})" if entry["since_commit"] else "(uncommitted)"
        click.echo(f"{track:<10} {entry['image']}  {since}")


def _image(params_path: str, model_dir: str) -> tuple[str, str]:
    """The server image for the bundle in ``model_dir`` (repository:model_version-build), and its model version."""
    from slipway.bundle import load_metadata
    from slipway.release.overlay import image_tag

    version = load_metadata(model_dir)["model_version"]
    return f"{_image_repository(params_module.load(params_path))}:{image_tag(version)}", version


@cli.command("serve-check")
@model_dir_option
@click.option("--test-split", default="data/interim/test.parquet", show_default=True,
              type=click.Path(dir_okay=False), help="Rows to send (ingest's test split).")
@click.option("--overlay", "overlays", multiple=True, type=click.Path(file_okay=False),
              default=("kustomize/overlays/canary", "kustomize/overlays/production"), show_default=True)
@click.option("--markdown", "markdown_path", default="reports/serve-check.md", show_default=True,
              type=click.Path(dir_okay=False), help="The verdict for the pull-request comment (slipway pr-report).")
@click.option("--max-share", type=FiniteFloatRange(min=0.1, max=1.0),
              help="The share of the memory limit the server may hold [default: 0.9, footprint.MAX_SHARE].")
def serve_check(model_dir, test_split, overlays, markdown_path, max_share) -> None:
    """Start the server on the bundle with each overlay's settings, send each worker the largest
    batch, and check its memory against the overlay's limit for the server container."""
    from slipway import io
    from slipway.release import footprint

    try:
        lines = footprint.serve_check(Path(model_dir), Path(test_split), [Path(o) for o in overlays], max_share)
    except footprint.FootprintError as refused:
        io.write_text(markdown_path, footprint.markdown(None, str(refused)))
        raise
    io.write_text(markdown_path, footprint.markdown(lines))
    for line in lines:
        click.echo(f"serve-check: {line}")


@cli.command("image-tag")
@params_option
@model_dir_option
@click.option("--version-only", is_flag=True)
def image_tag(params_path, model_dir, version_only) -> None:
    """The server image for the bundle in --model-dir: repository:model_version-build."""
    reference, version = _image(params_path, model_dir)
    click.echo(version if version_only else reference)


@cli.command("image")
@params_option
@model_dir_option
@click.option("--push", "and_push", is_flag=True,
              help="Push it too; when the registry holds the tag already, neither build nor push.")
def image(params_path, model_dir, and_push) -> None:
    """Build the server image (docker) for the bundle in --model-dir, tagged as image-tag says."""
    from slipway.release import image as image_module

    reference, version = _image(params_path, model_dir)
    if and_push:
        click.echo(image_module.push(reference, version))
    else:
        image_module.build(reference, version, image_module.head_commit())
        click.echo(f"built {reference}")


@cli.command("pr-report")
@click.option("--base", default="origin/main", show_default=True, help="The revision to diff against.")
@click.option("--gate", default="reports/gate.md", show_default=True, type=click.Path(dir_okay=False))
@click.option("--serve-check", "serve_check_md", default="reports/serve-check.md", show_default=True,
              type=click.Path(dir_okay=False), help="slipway serve-check's verdict, where it ran.")
def pr_report(base, gate, serve_check_md) -> None:
    """Markdown for the pull-request comment: gate summary, server memory, metrics and params diff vs --base."""
    from slipway.release import pr_report as pr_report_module

    click.echo(pr_report_module.report(base, Path(gate), Path(serve_check_md)))


@cli.command("canary-analysis")
@params_option
@click.option("--prometheus-url", required=True, type=HttpUrl(), envvar="PROMETHEUS_URL",
              help="[env: PROMETHEUS_URL]")
@click.option("--out", default="reports/canary-analysis.json", show_default=True, type=click.Path(dir_okay=False))
@click.option("--markdown", "markdown_path", default="reports/canary-analysis.md", show_default=True,
              type=click.Path(dir_okay=False))
def canary_analysis(params_path, prometheus_url, out, markdown_path) -> None:
    """Canary vs stable in Prometheus. Exit 0 pass, 1 fail, 2 error, 3 inconclusive."""
    from slipway import io
    from slipway.monitoring import canary
    from slipway.monitoring.verdicts import EXIT_CODES

    result = canary.analyse(canary.PrometheusClient(prometheus_url), params_module.load(params_path))
    with io.together():
        io.write_json(out, result)
        io.write_text(markdown_path, canary.markdown(result))
    click.echo(canary.markdown(result))
    sys.exit(EXIT_CODES[result["verdict"]])


@cli.command()
@params_option
@predictions_option
@click.option("--reference", default="data/interim/train.parquet", show_default=True,
              type=click.Path(exists=True, dir_okay=False), help="The training split.")
@model_dir_option
@out_dir_option
def drift(params_path, predictions, reference, model_dir, out_dir) -> None:
    """Served traffic vs the training data. Exit 0 no drift, 1 drift, 2 error, 3 too few rows or nothing to compare."""
    from slipway import io
    from slipway.bundle import load_metadata
    from slipway.checks import quiet_deepchecks
    from slipway.featureset import FeatureSpec
    from slipway.monitoring import drift as drift_module
    from slipway.monitoring.verdicts import EXIT_CODES

    quiet_deepchecks()
    params = params_module.load(params_path)
    spec = FeatureSpec.from_dict(load_metadata(model_dir)["features"])
    training = io.read_parquet(reference)
    served = drift_module.read_served_sample(predictions, params, time.time())
    report, result = drift_module.analyse(training, served, spec, params)
    out = Path(out_dir)
    with io.together():
        io.write_json(out / "drift.json", report)
        io.write_text(out / "drift.md", drift_module.markdown(report))
        if result is None:  # nothing compared: an earlier run's report would pass for this one's
            io.remove(out / "drift.html")
        else:
            with io.atomic_path(out / "drift.html") as tmp, open(tmp, "w", encoding="utf-8") as handle:
                result.save_as_html(handle)
    click.echo(drift_module.markdown(report))
    sys.exit(EXIT_CODES[report["verdict"]])


@cli.command()
@params_option
@predictions_option
@click.option("--labels", required=True, callback=not_blank("is empty (is LABELS_URI set?)"),
              help="The outcomes known since: a .csv or .parquet file (local or s3://) with the model's id "
                   "column and target.")
@model_dir_option
@click.option("--metrics", default="reports/metrics.json", show_default=True,
              type=click.Path(exists=True, dir_okay=False), help="The model's test metrics (evaluate).")
@out_dir_option
def performance(params_path, predictions, labels, model_dir, metrics, out_dir) -> None:
    """Served predictions scored against the labels known since. Exit 0 as good as on the test set, 1 worse
    by more than performance.max_drop, 2 error, 3 too few labelled predictions."""
    from slipway import io
    from slipway.bundle import load_metadata
    from slipway.monitoring import performance as performance_module
    from slipway.monitoring.verdicts import EXIT_CODES

    params = params_module.load(params_path)
    metadata = load_metadata(model_dir)
    id_column = performance_module.id_column(metadata)
    time_column = params_module.lookup(params, "data.timestamp_column", (str, type(None)), None)
    time_format = params_module.lookup(params, "data.timestamp_format", (str, type(None)), None)
    labelled = performance_module.read_labels(labels, id_column, metadata["target"], time_column, time_format)
    # A model that reads the time column takes the event's time in each request: the join's time
    event_time = time_column if time_column in metadata["features"].get("times", []) else None
    logged = performance_module.read_predictions(predictions, params, time.time(), id_column, set(labelled["id"]),
                                                 event_time, metadata["features"].get("time_format"))
    report = performance_module.analyse(logged, labelled, metadata, io.read_json(metrics), params)
    out = Path(out_dir)
    with io.together():
        io.write_json(out / "performance.json", report)
        io.write_text(out / "performance.md", performance_module.markdown(report))
    click.echo(performance_module.markdown(report))
    sys.exit(EXIT_CODES[report["verdict"]])


class _RunOutcome:
    """The retrain run's outcome as Prometheus gauges (a collector: no metric objects, so nothing
    depends on prometheus_client's multiprocess mode being set in the environment)."""

    def __init__(self, success: bool, at: float):
        self.success, self.at = success, at

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        yield GaugeMetricFamily("slipway_retrain_last_run_success", "1 when the last retrain run succeeded",
                                value=int(self.success))
        if self.success:
            yield GaugeMetricFamily("slipway_retrain_last_success_timestamp_seconds",
                                    "When the last successful retrain run ended", value=round(self.at))


@cli.command("report-run")
@click.option("--pushgateway", required=True, type=HttpUrl(), envvar="PUSHGATEWAY_URL", help="[env: PUSHGATEWAY_URL]")
@click.option("--status", type=click.Choice(["success", "failure"]), required=True)
@click.option("--job", default="slipway-retrain", show_default=True,
              callback=not_blank("is empty: the Pushgateway groups metrics by job"))
def report_run(pushgateway, status, job) -> None:
    """Push the retrain run's outcome to a Pushgateway (the retrain alerts read it)."""
    from prometheus_client import CollectorRegistry, pushadd_to_gateway

    registry = CollectorRegistry()
    registry.register(_RunOutcome(status == "success", time.time()))
    # pushadd (POST) replaces only these metric names in the group: a failure keeps the last success
    # time. prometheus_client also encodes the job as the Pushgateway wants a slash or space in it.
    try:
        pushadd_to_gateway(pushgateway, job=job, registry=registry, timeout=10)
    except OSError as exc:
        raise SlipwayError(f"report-run: Pushgateway at {pushgateway}: {exc}") from None
    click.echo(f"report-run: {job} {status} pushed to {pushgateway}")


@cli.command("alert-relay")
@click.option("--repository", required=True, envvar="SLIPWAY_RELAY_REPOSITORY",
              help="owner/name of the GitHub repository to dispatch to. [env: SLIPWAY_RELAY_REPOSITORY]")
@click.option("--github-api", default="https://api.github.com", show_default=True, type=HttpUrl(),
              envvar="GITHUB_API_URL", help="GitHub Enterprise: https://HOST/api/v3. [env: GITHUB_API_URL]")
@click.option("--token-file", envvar="GITHUB_TOKEN_FILE", type=click.Path(exists=True, dir_okay=False),
              help="A file holding the token (a mounted Secret), instead of GITHUB_TOKEN. [env: GITHUB_TOKEN_FILE]")
@click.option("--webhook-token-file", envvar="SLIPWAY_RELAY_WEBHOOK_TOKEN_FILE",
              type=click.Path(exists=True, dir_okay=False),
              help="A file holding the bearer token Alertmanager must send, instead of "
                   "SLIPWAY_RELAY_WEBHOOK_TOKEN. [env: SLIPWAY_RELAY_WEBHOOK_TOKEN_FILE]")
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", default=9095, show_default=True, type=click.IntRange(1, 65535))
def alert_relay(repository, github_api, token_file, webhook_token_file, host, port) -> None:
    """Alertmanager webhook -> GitHub repository_dispatch (event "retrain"). Needs a GitHub token
    that may dispatch to the repository (GITHUB_TOKEN, or --token-file) and the token Alertmanager
    sends as its bearer credentials (SLIPWAY_RELAY_WEBHOOK_TOKEN, or --webhook-token-file)."""
    import os

    from slipway.monitoring.relay import REPOSITORY, create_relay, serve

    if not REPOSITORY.fullmatch(repository):
        raise click.BadParameter(f"{repository!r} is not owner/name", param_hint="--repository")
    secrets = {}
    for name, path, variable, what in (
            ("token", token_file, "GITHUB_TOKEN", "a GitHub token that may dispatch to the repository"),
            ("webhook_token", webhook_token_file, "SLIPWAY_RELAY_WEBHOOK_TOKEN",
             "the bearer token Alertmanager sends: its webhook's http_config.authorization")):
        secrets[name] = (Path(path).read_text() if path else os.environ.get(variable, "")).strip()
        if not secrets[name]:
            raise SlipwayError(f"alert-relay: {path or variable} holds no token ({what})")
    serve(create_relay(repository, secrets["token"], secrets["webhook_token"], api=github_api), f"{host}:{port}")


@cli.command("monitoring-rules")
@click.option("--check", is_flag=True, help="Fail if prometheusrule.yaml is not up to date.")
def monitoring_rules(check) -> None:
    """Build k8s/monitoring/prometheusrule.yaml from k8s/monitoring/rules.yaml."""
    from slipway import io
    from slipway.monitoring import rules

    text = rules.render()
    if check:
        current = rules.PROMETHEUS_RULE.read_text() if rules.PROMETHEUS_RULE.is_file() else ""
        if current != text:
            raise SlipwayError(f"{rules.PROMETHEUS_RULE} is out of date: run slipway monitoring-rules")
        click.echo(f"{rules.PROMETHEUS_RULE} is up to date")
        return
    io.write_text(rules.PROMETHEUS_RULE, text)
    click.echo(f"wrote {rules.PROMETHEUS_RULE}")


@cli.command("check-manifests")
@click.option("--crds", default="../shared/crds", show_default=True, type=click.Path(),
              help="Upstream CRDs for the custom resources; skipped with a note when absent.")
def check_manifests(crds) -> None:
    """Render every overlay and validate it strictly (unknown fields are errors)."""
    from slipway.release import manifests

    crd_dir = Path(crds)
    if not crd_dir.is_dir():
        click.echo(f"check-manifests: {crd_dir} not found: custom resources (Argo CD, Prometheus "
                   "Operator) are not validated; built-in kinds are", err=True)
    problems = manifests.check(crd_dir=crd_dir if crd_dir.is_dir() else None)
    for line in problems:
        click.echo(line, err=True)
    if problems:
        raise SlipwayError(f"check-manifests: {len(problems)} problem(s)")
    click.echo("check-manifests: every overlay renders and validates")


def _stop(number: int, _frame) -> None:
    raise SystemExit(128 + number)


def main() -> None:
    # SIGTERM (a cancelled CI job, Kubernetes, `kill`) unwinds like Ctrl-C does, so no temporary
    # output file is left behind; its default action would end the process where it stands.
    signal.signal(signal.SIGTERM, _stop)
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except SlipwayError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(ERROR_EXIT)
    except Exception:  # a bug: show it, but never exit 1, which CI reads as a verdict
        traceback.print_exc()
        sys.exit(ERROR_EXIT)
