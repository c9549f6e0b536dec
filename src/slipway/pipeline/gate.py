"""gate: may this model be released? Strict, explainable, reproducible.

Four groups of conditions, every threshold from ``params.yaml``'s ``gate`` section:

1. data integrity of the train and test data (deepchecks: nulls, mixed types, duplicates,
   conflicting labels, feature-label predictive power that signals leakage);
2. train/test validation (deepchecks: feature drift, label drift, new categories, train/test mix);
3. model performance: floors on the test-set metrics and a gain over a trivial baseline
   (deepchecks simple model comparison);
4. no regression against the production model (champion), scored on the same test set.

deepchecks runs on a seeded sample (``gate.sample_size`` rows of each split); the report says how
many rows were checked. A check that cannot run is reported as an error, and
``gate.fail_on_check_error`` decides whether that fails the gate. Outputs: ``reports/gate.json``
(stable keys, read by CI and the release step), ``reports/gate.html`` (the deepchecks report) and
``reports/gate.md`` (a pull-request comment). Only the pipeline imports this: never the server.
"""

from __future__ import annotations

import math
import sys
import tempfile
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from slipway import bundle, io
from slipway.checks import quiet_deepchecks, run_check
from slipway.errors import DataError, SlipwayError
from slipway.featureset import FeatureSpec, request_changes
from slipway.model.features import DERIVED_FEATURES
from slipway.params import lookup, random_seed
from slipway.pipeline import paths
from slipway.pipeline.evaluate import METRIC_FLOORS, PRIMARY_METRICS, score
from slipway.pipeline.validate import column_rules
from slipway.release.champion import Champion, fetch_production_bundle
from slipway.release.gitops import Repo
from slipway.values import spelling

GATE_JSON = paths.REPORTS / "gate.json"
GATE_HTML = paths.REPORTS / "gate.html"
GATE_MD = paths.REPORTS / "gate.md"

PASS, FAIL, ERROR, SKIPPED = "pass", "fail", "error", "skipped"


class GateFailed(SlipwayError):
    """The verdict is fail: the message lists each failed condition on one line."""


@dataclass(frozen=True)
class Rule:
    """One gate condition on one deepchecks check: how to read its value, what bounds it."""

    group: str
    check: str  # a class in deepchecks.tabular.checks
    condition: str
    param: str  # the threshold's key under gate:
    bound: str  # "max": value must be <= threshold; "min": value must be >= threshold
    measure: Callable[..., tuple[float, str]]  # check value -> (value, where it was worst)
    datasets: str  # "each": train and test separately; "pair": train vs test; "model"
    options: tuple = ()
    # The thresholds' entry of per-column allowances set elsewhere, which ``measure`` then also takes, with
    # the threshold
    allowed: str | None = None


def _worst(values: dict[str, float]) -> tuple[float, str]:
    """The largest value and its column; NaN and the columns deepchecks could not score, if any
    (its predictive-power fits fail on a number past float32): never passed over, as NaN would be
    by a comparison."""
    if not values:
        return 0.0, ""
    unscored = [str(k) for k, v in values.items() if math.isnan(v)]
    if unscored:
        return math.nan, f"{', '.join(unscored)} not scored"
    column = max(values, key=lambda k: (values[k], str(k)))
    # At 0 no column is worse than another: naming the last by name read as if it were the one.
    return float(values[column]), str(column) if values[column] else ""


def _nulls(value: pd.DataFrame, allowed: dict[str, float], threshold: float) -> tuple[float, str]:
    """The worst column's null ratio. A column past ``threshold`` but within the share validate allows it
    (``validate.columns.<column>.max_null_fraction``: gaps the team expects, which the model handles) is
    not counted, and is named as such: the gate does not refuse what validate was told to let through."""
    ratios = {str(column): ratio for column, ratio in value.iloc[:, 0].items()}
    within = sorted(column for column, ratio in ratios.items() if threshold < ratio <= allowed.get(column, -1.0))
    measured, where = _worst({column: ratio for column, ratio in ratios.items() if column not in within})
    if within:
        where = "; ".join(filter(None, [where, f"not counted, within validate.columns' max_null_fraction: "
                                               f"{', '.join(within)}"]))
    return measured, where


def _mixed_types(value: dict) -> tuple[float, str]:
    return _worst({c: min(v["strings"], v["numbers"]) for c, v in value.items() if v})


def _variant_spellings(value: dict) -> tuple[float, str]:
    """Per text column, the share of rows spelt otherwise than the most common spelling of their
    value (``north`` beside ``North``): two categories to the model, one to whoever wrote them.
    The worst column, with its spellings."""
    shares, spellings = {}, {}
    for column, forms in value["columns"].items():
        groups: dict[str, list[dict]] = {}
        for variants in forms.values():
            for variant in variants:
                groups.setdefault(spelling(str(variant["variant"])), []).append(variant)
        spelt = [sorted(group, key=lambda v: -v["count"]) for group in groups.values() if len(group) > 1]
        shares[column] = sum(v["percent"] for group in spelt for v in group[1:])
        spellings[column] = [[v["variant"] for v in group] for group in spelt]
    measured, column = _worst(shares)
    if not measured:
        return 0.0, ""
    return measured, f"{column}: " + "; ".join(" beside ".join(map(repr, group)) for group in spellings[column][:3])


def _drift(value: dict) -> tuple[float, str]:
    return _worst({c: v["Drift score"] for c, v in value.items()})


def _new_categories(value: pd.DataFrame) -> tuple[float, str]:
    return _worst(value["Ratio of New Categories"].to_dict())


def _baseline_gain(value: dict) -> tuple[float, str]:
    """(model - baseline) / (perfect - baseline) on ROC AUC, averaged over classes if multiclass."""
    scores = value["scores"]["roc_auc"]
    per_class = [scores] if "Origin" in scores else list(scores.values())
    gains = []
    for entry in per_class:
        headroom = value["scorers_perfect"]["roc_auc"] - entry["Simple"]
        gains.append((entry["Origin"] - entry["Simple"]) / headroom if headroom > 0 else 0.0)
    return sum(gains) / len(gains), "roc_auc vs most-frequent baseline"


RULES = (
    Rule("data_integrity", "PercentOfNulls", "null ratio", "max_null_ratio", "max", _nulls, "each",
         allowed="null_allowances"),
    Rule("data_integrity", "MixedDataTypes", "rare-type ratio (numbers mixed with text)",
         "max_mixed_type_ratio", "max", _mixed_types, "each"),
    Rule("data_integrity", "StringMismatch", "rows in another spelling of a category (case, spaces, hyphens)",
         "max_variant_spelling_ratio", "max", _variant_spellings, "each"),
    Rule("data_integrity", "DataDuplicates", "duplicate row ratio", "max_duplicate_ratio", "max",
         lambda v: (float(v), ""), "each"),
    Rule("data_integrity", "ConflictingLabels", "conflicting label ratio",
         "max_conflicting_label_ratio", "max",
         lambda v: (float(v["percent_of_conflicting_samples"]), ""), "each"),
    Rule("data_integrity", "FeatureLabelCorrelation", "feature-label PPS (leakage)",
         "max_feature_label_pps", "max", _worst, "each", (("random_state", 0),)),
    Rule("train_test_validation", "FeatureDrift", "feature drift score", "max_feature_drift",
         "max", _drift, "pair"),
    Rule("train_test_validation", "LabelDrift", "label drift score", "max_label_drift", "max",
         lambda v: (float(v["Drift score"]), ""), "pair"),
    Rule("train_test_validation", "NewCategoryTrainTest", "new category ratio",
         "max_new_category_ratio", "max", _new_categories, "pair"),
    Rule("train_test_validation", "TrainTestSamplesMix", "test rows also in train",
         "max_train_test_mix_ratio", "max", lambda v: (float(v["ratio"]), ""), "pair"),
    Rule("model_performance", "SimpleModelComparison", "gain over a trivial baseline",
         "min_baseline_gain", "min", _baseline_gain, "model",
         (("scorers", ["roc_auc"]), ("strategy", "most_frequent"))),
)

def outcome(value: float | None, threshold: float, bound: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return FAIL
    return PASS if (value <= threshold if bound == "max" else value >= threshold) else FAIL


def entry(group: str, check: str, condition: str, dataset: str, value: float | None,
          threshold: float | None, bound: str, verdict: str, detail: str = "", param: str | None = None) -> dict:
    """One condition of the gate; ``param``: the ``params.yaml`` key its threshold comes from."""
    return {
        "group": group, "check": check, "condition": condition, "dataset": dataset,
        "value": None if value is None or math.isnan(value) else round(float(value), 6),
        "threshold": threshold, "bound": bound, "verdict": verdict, "detail": detail, "param": param,
    }


def sample(frame: pd.DataFrame, size: int, seed: int, label: str) -> pd.DataFrame:
    """``size`` rows drawn with ``seed``, plus one row of each class the draw missed: a class too
    rare to be drawn would otherwise leave ROC AUC undefined on the sample alone, and fail a model
    whose whole test set defines it."""
    if len(frame) <= size:
        return frame
    drawn = frame.sample(n=size, random_state=seed)
    undrawn = frame[~frame[label].isin(drawn[label].unique())]
    if len(undrawn):
        drawn = pd.concat([drawn, undrawn.groupby(label, sort=False).sample(n=1, random_state=seed)])
    return drawn.sort_index()


def absent_classes(labels: pd.Series, classes: list) -> list[str]:
    """The model's classes with no row among ``labels``, as text (the labels' dtype may differ)."""
    present = {str(value) for value in labels.unique()}
    return [str(c) for c in classes if str(c) not in present]


def _datasets(train: pd.DataFrame, test: pd.DataFrame, spec: FeatureSpec, target: str):
    """deepchecks datasets twice: raw inputs (for the data checks) and model inputs."""
    from deepchecks.tabular import Dataset

    categorical = list(spec.categorical)

    def raw(frame):
        return Dataset(frame[spec.inputs + [target]], label=target, cat_features=categorical)

    def model_input(frame):
        features = spec.transform(frame)
        features[target] = frame[target].to_numpy()
        return Dataset(features, label=target, cat_features=categorical)

    return (raw(train), raw(test)), (model_input(train), model_input(test))


def run_checks(train: pd.DataFrame, test: pd.DataFrame, model: bundle.Bundle,
               gate: dict[str, Any]) -> tuple[list[dict], list]:
    """Every deepchecks rule; returns the gate entries and the deepchecks results (for the HTML)."""
    from deepchecks.core import CheckFailure, ConditionCategory, ConditionResult
    from deepchecks.tabular import checks as dc

    spec = FeatureSpec.from_dict(model.metadata["features"])
    target = model.metadata["target"]
    (raw_train, raw_test), (model_train, model_test) = _datasets(train, test, spec, target)
    entries, results = [], []
    for rule in RULES:
        threshold = float(gate[rule.param])
        measure = partial(rule.measure, allowed=gate[rule.allowed], threshold=threshold) if rule.allowed \
            else rule.measure
        runs = {
            "each": [("train", (raw_train,)), ("test", (raw_test,))],
            "pair": [("train/test", (raw_train, raw_test))],
            "model": [("test", (model_train, model_test))],
        }[rule.datasets]
        for dataset, args in runs:
            check = getattr(dc, rule.check)(**dict(rule.options))
            sign = "<=" if rule.bound == "max" else ">="

            def condition(value, rule=rule, threshold=threshold, measure=measure):
                measured, where = measure(value)
                ok = outcome(measured, threshold, rule.bound) == PASS
                return ConditionResult(ConditionCategory.PASS if ok else ConditionCategory.FAIL,
                                       f"{measured:.4g}{f' ({where})' if where else ''}")

            check.add_condition(f"{rule.condition} {sign} {threshold:g}", condition)
            # The model's classes, not the ones deepchecks finds in the split: a test set without
            # some class (a rare one, or a time split past a shift) is still checked.
            kwargs = {"model_classes": model.estimator.classes_.tolist()}
            absent = []
            if rule.datasets == "model":
                kwargs["model"] = model.estimator
                absent = absent_classes(test[target], kwargs["model_classes"])
            try:
                if absent:  # deepchecks' own error here blames the model's classes, not the data
                    raise DataError(f"ROC AUC is undefined on this test set: no row of class "
                                    f"{', '.join(absent)}")
                result, unplotted = run_check(check, *args, **kwargs)
                measured, where = measure(result.value)
                if unplotted:
                    where = f"{where}; {unplotted}" if where else unplotted
                entries.append(entry(rule.group, rule.check, rule.condition, dataset, measured,
                                     threshold, rule.bound, outcome(measured, threshold, rule.bound),
                                     where, f"gate.{rule.param}"))
            except Exception as exc:  # reported, never silently passed
                result = CheckFailure(check, exc, f" ({dataset})")
                entries.append(entry(rule.group, rule.check, rule.condition, dataset, None,
                                     threshold, rule.bound, ERROR, f"could not run: {exc}", f"gate.{rule.param}"))
            else:
                result.header = f"{result.get_header()} ({dataset})"
            results.append(result)
    return entries, results


def metric_floors(metrics: dict[str, Any], gate: dict[str, Any]) -> list[dict]:
    """Each floor on the test metrics; a metric the test set cannot define (ROC AUC without every
    class in it) is an error that says so: the model was not judged, so it may not pass."""
    entries = []
    for name, key in METRIC_FLOORS:
        value, floor = metrics.get(name), float(gate[key])
        if value is None:
            entries.append(entry("model_performance", "metrics", f"test {name}", "test", None, floor, "min",
                                 ERROR, f"{name} undefined on this test set: not every class occurs in it "
                                        f"(per class: {_supports(metrics)})", f"gate.{key}"))
        else:
            entries.append(entry("model_performance", "metrics", f"test {name}", "test", value, floor,
                                 "min", outcome(value, floor, "min"), _no_positive(name, value, metrics),
                                 f"gate.{key}"))
    return entries


def _no_positive(name: str, value: float, metrics: dict[str, Any]) -> str:
    """Why a binary model's F1 is 0: it labels no test row of the positive class as such."""
    if name != "f1" or value > 0 or len(metrics.get("per_class") or {}) != 2:
        return ""
    return ("no test row of the positive class labelled as such: a rare class is seldom the most probable; "
            "class_weight: balanced in train.hyperparameters weighs the classes evenly")


def _supports(metrics: dict[str, Any]) -> str:
    per_class = metrics.get("per_class") or {}
    return ", ".join(f"{label}: {scores.get('support')} rows" for label, scores in per_class.items()) or "unknown"


def champion_challenger(test: pd.DataFrame, challenger: bundle.Bundle, champion: Champion | str,
                        gate: dict[str, Any]) -> tuple[dict, dict]:
    """Both models scored on the same (whole) test set, each with its own feature spec and its own
    derived features' code; or, when ``champion`` says why there is no champion, skipped."""
    metric = gate["primary_metric"]
    margin = float(gate["max_regression"])
    condition = f"{metric} no worse than production by more than {margin:g}"
    if isinstance(champion, str):
        return entry("champion_challenger", "regression", condition, "test", None, None, "min",
                     SKIPPED, champion), {"champion": None}
    production = bundle.load(champion.directory)
    changes = {"champion": production.version}
    specs = {"challenger": FeatureSpec.from_dict(challenger.metadata["features"], DERIVED_FEATURES)}
    try:
        champion_spec = specs["champion"] = FeatureSpec.from_dict(production.metadata["features"],
                                                                  champion.derived_features)
    except DataError as exc:  # derived features its code does not define: incomparable() names them
        champion_spec = exc
    else:
        # Not a condition: a team may mean to change the request, and only the clients' traffic tells
        # whether they have (canary analysis fails a canary that refuses more than stable). Reviewers
        # read it on the pull request, before a release; also when the models cannot be scored
        # against each other, as when the new data lacks an input production's clients still send.
        changes["request_changes"] = request_changes(specs["champion"], specs["challenger"])
    unlike = incomparable(production, challenger, test, champion_spec)
    if unlike:
        return entry("champion_challenger", "regression", condition, "test", None, None, "min", ERROR,
                     f"production model {production.version} {unlike}; set gate.champion: null to "
                     "release without a comparison when the problem itself changed"), changes
    target = challenger.metadata["target"]
    scores = {}
    for role, model, feature_code in (("champion", production, champion.feature_code),
                                      ("challenger", challenger, nullcontext)):
        with feature_code():
            features = specs[role].transform(test)
        proba = model.estimator.predict_proba(features)
        scores[role] = score(test[target].to_numpy(), proba, list(model.estimator.classes_),
                             bundle.positive_index(model.metadata))[metric]
    if scores["champion"] is None or scores["challenger"] is None:
        return entry("champion_challenger", "regression", condition, "test", None, None, "min",
                     ERROR, f"{metric} undefined on this test set"), changes
    floor = scores["champion"] - margin
    return (
        entry("champion_challenger", "regression", condition, "test", scores["challenger"],
              round(floor, 6), "min", outcome(scores["challenger"], floor, "min"),
              f"champion {production.version} {metric}={scores['champion']:.4f}", "gate.max_regression"),
        {**changes, "champion_score": round(scores["champion"], 6),
         "challenger_score": round(scores["challenger"], 6)},
    )


def incomparable(champion: bundle.Bundle, challenger: bundle.Bundle, test: pd.DataFrame,
                 champion_spec: FeatureSpec | DataError) -> str | None:
    """Why the production model cannot be scored against this one on this test set, if it cannot:
    another target, other classes, raw inputs the data no longer has (a team that adopts the
    template, or changes its problem, still has the previous model in production), or derived
    features its feature code does not define (``champion_spec`` is then the error that says so)."""
    target, theirs = challenger.metadata["target"], champion.metadata["target"]
    if theirs != target:
        return f"predicts {theirs!r}, this model {target!r}"
    classes, their_classes = list(challenger.estimator.classes_), list(champion.estimator.classes_)
    if [str(c) for c in their_classes] != [str(c) for c in classes]:
        return f"has classes {[str(c) for c in their_classes]}, this model {[str(c) for c in classes]}"
    if bundle.positive_index(champion.metadata) != bundle.positive_index(challenger.metadata):
        return (f"takes {champion.metadata.get('positive_class')!r} as the positive class, this model "
                f"{challenger.metadata.get('positive_class')!r}")
    if isinstance(champion_spec, DataError):
        return f"computes {champion_spec}"
    missing = [c for c in champion_spec.inputs if c not in test.columns]
    if missing:
        return f"needs input columns the test set lacks: {', '.join(missing)}"
    return None


def resolve_champion(setting: str | None, scratch: Path) -> Champion | str:
    """``gate.champion``: ``production`` (the bundle the production overlay runs, fetched from the
    DVC remote, with its release commit's feature code), a bundle directory (with this checkout's
    feature code), or null (no comparison). Returns the champion or why there is none; raises
    :class:`SlipwayError` when it cannot be had."""
    if setting is None:
        return "gate.champion is null"
    if setting != "production":
        if not (Path(setting) / bundle.METADATA_FILE).is_file():
            raise SlipwayError(f"gate.champion: no model bundle at {setting!r} (no {bundle.METADATA_FILE}); "
                               "set production, a bundle directory or null")
        return Champion(Path(setting), DERIVED_FEATURES)
    return fetch_production_bundle(Repo(Path(".")), scratch)


def verdict(entries: list[dict], fail_on_error: bool) -> str:
    failing = {FAIL, ERROR} if fail_on_error else {FAIL}
    return FAIL if any(e["verdict"] in failing for e in entries) else PASS


def describe(e: dict) -> str:
    """One line per condition: what, on which data, the value, the bound."""
    where = f" [{e['dataset']}]"
    if e["verdict"] in (ERROR, SKIPPED):
        return f"{e['verdict'].upper()} {e['group']}/{e['check']}{where}: {e['condition']}: {e['detail']}"
    sign = "<=" if e["bound"] == "max" else ">="
    detail = f" ({e['detail']})" if e["detail"] else ""
    value = "undefined" if e["value"] is None else f"{e['value']:.4g}"
    # Which params.yaml key sets the bound (absent in a gate.json written before it was recorded).
    setting = f" ({e['param']})" if e.get("param") else ""
    return (f"{e['verdict'].upper()} {e['group']}/{e['check']}{where}: {e['condition']} = "
            f"{value}{detail}, required {sign} {e['threshold']:g}{setting}")


def markdown(report: dict) -> str:
    icon = {"pass": "✅", "fail": "❌"}[report["verdict"]]
    lines = [f"## {icon} Gate: {report['verdict'].upper()}", ""]
    models = report["models"]
    if models["champion"]:
        against = f"vs production `{models['champion']}`"
    else:  # why: none in production, or one that cannot be fetched or compared
        why = next((e["detail"] for e in report["conditions"] if e["group"] == "champion_challenger"), None)
        against = f"not compared with production: {why or 'none in production'}"
    lines.append(f"Challenger `{models['challenger']}` {against}; deepchecks on {report['sample']['train_rows']} "
                 f"train and {report['sample']['test_rows']} test rows (seed {report['sample']['seed']}).")
    problems = [e for e in report["conditions"] if e["verdict"] in (FAIL, ERROR)]
    if problems:
        lines += ["", "### Failed", ""] + [f"- {describe(e)}" for e in problems]
    m = report["metrics"]
    lines += ["", "### Key metrics (test set)", "", "| metric | value |", "| --- | --- |"]
    lines += [f"| {k} | {m[k]:.4f} |" for k in ("roc_auc", "accuracy", "f1", "log_loss")
              if isinstance(m.get(k), float)]
    if models.get("champion_score") is not None:
        lines += ["", "### Champion vs challenger", "",
                  f"| model | {report['primary_metric']} |", "| --- | --- |",
                  f"| production `{models['champion']}` | {models['champion_score']:.4f} |",
                  f"| challenger `{models['challenger']}` | {models['challenger_score']:.4f} |"]
    if models.get("request_changes"):
        lines += ["", "### Requests production answers that this model would refuse", ""]
        lines += [f"- This model {change}." for change in models["request_changes"]]
        lines += ["", "The clients must change before it serves them: canary analysis fails a canary that "
                  "refuses more requests than stable. For an input gained or lost, `SLIPWAY_UNKNOWN_FEATURES=ignore` "
                  "on both tracks lets the clients send both sets meanwhile."]
    lines += ["", "<details><summary>All conditions</summary>", ""]
    lines += [f"- {describe(e)}" for e in report["conditions"]] + ["", "</details>", ""]
    return "\n".join(lines)


def thresholds(params: dict[str, Any]) -> dict[str, Any]:
    """Every threshold and the primary metric, checked before any check runs. Each is a ratio or a
    score in [0, 1]: a maximum above 1 could never fail, a floor above 1 never pass."""
    keys = [rule.param for rule in RULES] + [key for _, key in METRIC_FLOORS] + ["max_regression"]
    gate: dict[str, Any] = {key: lookup(params, f"gate.{key}", float, minimum=0.0, maximum=1.0) for key in keys}
    gate["primary_metric"] = lookup(params, "gate.primary_metric", str, choices=PRIMARY_METRICS)
    gate["null_allowances"] = {column: float(rule["max_null_fraction"]) for column, rule in column_rules(params).items()
                               if "max_null_fraction" in rule}
    return gate


def evaluate_gate(train: pd.DataFrame, test: pd.DataFrame, model: bundle.Bundle,
                  metrics: dict[str, Any], params: dict[str, Any]) -> tuple[dict, list]:
    """The whole gate, pure of file output: returns the report and the deepchecks results."""
    gate = thresholds(params)
    size = lookup(params, "gate.sample_size", int, minimum=100)
    seed = random_seed(params, "gate.seed")
    champion_setting = lookup(params, "gate.champion", (str, type(None)))
    target = model.metadata["target"]
    train_sample, test_sample = sample(train, size, seed, target), sample(test, size, seed, target)
    entries, results = run_checks(train_sample, test_sample, model, gate)
    entries += metric_floors(metrics, gate)
    with tempfile.TemporaryDirectory(prefix="slipway-champion-") as scratch:
        try:
            champion = resolve_champion(champion_setting, Path(scratch) / "models")
        except SlipwayError as exc:  # could not be had: reported, never silently skipped
            comparison = entry("champion_challenger", "regression", "load the champion model", "test",
                               None, None, "min", ERROR, f"could not run: {exc}")
            models = {"champion": None}
        else:
            comparison, models = champion_challenger(test, model, champion, gate)
    entries.append(comparison)
    report = {
        "verdict": verdict(entries, lookup(params, "gate.fail_on_check_error", bool)),
        "models": {"challenger": model.version, **models},
        "primary_metric": gate["primary_metric"],
        "sample": {"train_rows": len(train_sample), "test_rows": len(test_sample),
                   "train_total": len(train), "test_total": len(test), "seed": seed},
        "metrics": {k: metrics.get(k) for k in ("roc_auc", "accuracy", "f1", "log_loss", "rows")},
        "conditions": entries,
        "failed": [describe(e) for e in entries if e["verdict"] in (FAIL, ERROR)],
    }
    return report, results


def main(params: dict[str, Any]) -> None:
    quiet_deepchecks()
    from deepchecks.core import SuiteResult

    model = bundle.load(paths.MODELS)
    train = io.read_parquet(paths.TRAIN_RAW)
    test = io.read_parquet(paths.TEST_RAW)
    report, results = evaluate_gate(train, test, model, io.read_json(paths.METRICS), params)
    with io.together():
        io.write_json(GATE_JSON, report)
        io.write_text(GATE_MD, markdown(report))
        with io.atomic_path(GATE_HTML) as tmp, open(tmp, "w", encoding="utf-8") as handle:
            SuiteResult(f"Slipway gate: model {model.version}", results).save_as_html(handle)
    for line in report["failed"]:
        print(line, file=sys.stderr)
    if report["verdict"] == FAIL:
        raise GateFailed(f"gate: FAIL, {len(report['failed'])} condition(s) failed (reports/gate.md)")
    print(f"gate: PASS ({len(report['conditions'])} conditions; "
          f"{report['sample']['train_rows']}+{report['sample']['test_rows']} rows checked)")
