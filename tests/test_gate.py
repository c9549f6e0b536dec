"""The gate on real deepchecks runs: a good model passes, each kind of failure is caught by name."""

import copy
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pytest

from slipway import bundle
from slipway.errors import ParamsError
from slipway.featureset import FeatureSpec
from slipway.model.example_data import generate_month
from slipway.model.features import DERIVED_FEATURES, DerivedFeature
from slipway.pipeline import evaluate, featurize, gate, ingest, train
from slipway.release.champion import Champion
from tests.conftest import make_churn


@pytest.fixture(scope="module")
def base_params(repo_params):
    params = copy.deepcopy(repo_params)
    params["gate"]["sample_size"] = 2000
    params["gate"]["champion"] = None  # the unit tests give the champion as a directory
    params["train"]["hyperparameters"]["max_iter"] = 60
    return params


@pytest.fixture(scope="module")
def churn_split(base_params):
    return ingest.split(make_churn(months=4, rows=1500, seed=11), base_params)


def fit_bundle(train_frame, params, version="challenger"):
    spec = featurize.build_spec(train_frame, params)
    estimator = train.fit(featurize.featurize(train_frame, spec, ["churned"]), spec, params)
    return bundle.Bundle(estimator, {"features": spec.to_dict(), "target": "churned", "model_version": version,
                                     "classes": estimator.classes_.tolist(), "positive_class": 1})


def run_gate(train_frame, test_frame, params, model=None):
    model = model or fit_bundle(train_frame, params)
    spec = FeatureSpec.from_dict(model.metadata["features"])
    proba = model.estimator.predict_proba(spec.transform(test_frame))
    metrics = evaluate.score(test_frame["churned"].to_numpy(), proba, list(model.estimator.classes_),
                             bundle.positive_index(model.metadata))
    report, results = gate.evaluate_gate(train_frame, test_frame, model, metrics, params)
    return report, results


def failed(report, check):
    return [line for line in report["failed"] if f"/{check} " in line]


@pytest.fixture(scope="module")
def good(churn_split, base_params):
    train_frame, test_frame = churn_split
    return run_gate(train_frame, test_frame, base_params)


def test_good_model_on_clean_data_passes(good):
    report, results = good
    assert report["verdict"] == "pass", report["failed"]
    assert report["failed"] == []
    assert report["sample"]["train_rows"] == 2000 and report["sample"]["test_rows"] == 1200
    champion = [c for c in report["conditions"] if c["group"] == "champion_challenger"][0]
    assert champion["verdict"] == "skipped" and champion["detail"] == "gate.champion is null"
    groups = {c["group"] for c in report["conditions"]}
    assert groups == {"data_integrity", "train_test_validation", "model_performance", "champion_challenger"}
    assert len(results) == 17  # 6 checks on train and on test, 4 train/test, 1 model comparison


def test_verdict_is_reproducible(good, churn_split, base_params):
    train_frame, test_frame = churn_split
    again, _ = run_gate(train_frame, test_frame, base_params)
    assert again == good[0]


def test_shuffled_labels_fail_performance_and_baseline(churn_split, base_params):
    train_frame, test_frame = (f.copy() for f in churn_split)
    rng = np.random.default_rng(0)
    train_frame["churned"] = rng.permutation(train_frame["churned"].to_numpy())
    report, _ = run_gate(train_frame, test_frame, base_params)
    assert report["verdict"] == "fail"
    assert failed(report, "SimpleModelComparison")[0].startswith(
        "FAIL model_performance/SimpleModelComparison [test]: gain over a trivial baseline = ")
    assert "required >= 0.2 (gate.min_baseline_gain)" in failed(report, "SimpleModelComparison")[0]
    floor = failed(report, "metrics")[0]
    assert floor.startswith("FAIL model_performance/metrics [test]: test roc_auc = 0.")
    assert floor.endswith("required >= 0.7 (gate.min_roc_auc)")  # the key to change, if it must be


def test_a_nullable_boolean_feature_read_from_parquet_leaves_every_check_able_to_run(churn_split, base_params):
    """As ingest writes it (plain types): pandas' nullable boolean made the train/test mix check
    an ERROR, which fails the gate."""
    rng = np.random.default_rng(3)
    train_frame, test_frame = (ingest.plain_types(f.assign(
        autopay=pd.array(np.where(rng.random(len(f)) < 0.1, None, rng.random(len(f)) < 0.5), dtype="boolean")))
        for f in churn_split)
    report, _ = run_gate(train_frame, test_frame, base_params)
    assert [c for c in report["conditions"] if c["verdict"] == "error"] == []


def test_leaking_feature_is_caught(churn_split, base_params):
    rng = np.random.default_rng(1)
    train_frame, test_frame = (
        f.assign(loyalty_score=f["churned"] + rng.normal(0, 0.1, len(f))) for f in churn_split)
    report, _ = run_gate(train_frame, test_frame, base_params)
    lines = failed(report, "FeatureLabelCorrelation")
    assert lines and "(loyalty_score)" in lines[0] and "feature-label PPS (leakage)" in lines[0]


def test_numbers_stored_as_text_and_declared_numeric_are_checked_as_numbers(churn_split, base_params):
    """A Parquet string column of numbers, declared in data.numeric_features (which refused it as
    not numeric): the model takes it as numbers, and the data checks pass as on the numbers."""
    params = copy.deepcopy(base_params)
    params["data"]["numeric_features"] = featurize.build_spec(churn_split[0], params).numeric
    as_text = [f.assign(age=f["age"].astype(str)) for f in churn_split]
    report, _ = run_gate(*as_text, params)
    assert report["verdict"] == "pass", report["failed"]
    assert "age" in fit_bundle(as_text[0], params).metadata["features"]["numeric"]


def test_heavy_nulls_and_mixed_types_are_caught(churn_split, base_params):
    train_frame, test_frame = (f.copy() for f in churn_split)
    test_frame.loc[test_frame.index[::2], "age"] = np.nan
    labels = train_frame["region"].astype(object)
    labels.iloc[::3] = 7
    train_frame["region"] = labels.astype(str)
    report, _ = run_gate(train_frame, test_frame, base_params)
    nulls = failed(report, "PercentOfNulls")
    assert len(nulls) == 1 and "[test]: null ratio = 0.5 (age), required <= 0.1" in nulls[0]
    mixed = failed(report, "MixedDataTypes")
    assert len(mixed) == 1 and "[train]" in mixed[0] and "(region)" in mixed[0]


def test_values_deepchecks_cannot_plot_are_still_checked(churn_split, base_params):
    """deepchecks' plots fail on a number past about 1e154 (a density estimate) and on text such as
    '1e309' (a histogram of it as infinity); the checks themselves do not. Both were errors ('could
    not run') that failed the gate; they are checked, and the report says the plots are missing."""
    train_frame, test_frame = (f.copy() for f in churn_split)
    test_frame.loc[test_frame.index[0], "data_usage_gb"] = 1e200
    train_frame["region"] = train_frame["region"].astype(object)
    train_frame.loc[train_frame.index[:3], "region"] = "1e309"
    report, _ = run_gate(train_frame, test_frame, base_params)
    assert not [e for e in report["conditions"] if e["verdict"] == gate.ERROR]
    drift = next(e for e in report["conditions"] if e["check"] == "FeatureDrift")
    mixed = next(e for e in report["conditions"] if e["check"] == "MixedDataTypes" and e["dataset"] == "train")
    assert drift["verdict"] == gate.PASS and "no plots: deepchecks could not draw them" in drift["detail"]
    assert mixed["verdict"] == gate.FAIL and mixed["detail"].startswith("region; no plots: deepchecks could not")
    # Its predictive-power fits fail on the number past float32: the feature is unscored, and said so
    # (NaN would have lost every comparison, and the feature been passed over).
    [leakage] = failed(report, "FeatureLabelCorrelation")
    assert "[test]: feature-label PPS (leakage) = undefined (data_usage_gb not scored)" in leakage


def test_categories_spelt_two_ways_are_caught_with_their_spellings(churn_split, base_params):
    """'north' beside 'North' is two categories to the model: each learns from part of the rows,
    and a client sending either gets a different answer."""
    train_frame, test_frame = (f.copy() for f in churn_split)
    regions = train_frame["region"].astype(object)
    regions.iloc[::20] = regions.iloc[::20].str.upper()
    train_frame["region"] = regions
    report, _ = run_gate(train_frame, test_frame, base_params)
    (line,) = failed(report, "StringMismatch")
    assert line.startswith("FAIL data_integrity/StringMismatch [train]: rows in another spelling of a category "
                           "(case, spaces, hyphens) = 0.05")
    assert "(region: " in line and "beside" in line and line.endswith("(gate.max_variant_spelling_ratio)")
    grades = [f.assign(region=np.where(f.index % 3 == 0, "A+", np.where(f.index % 3 == 1, "A", "A-")))
              for f in churn_split]  # three grades, not one spelt three ways
    report, _ = run_gate(*grades, base_params)
    assert failed(report, "StringMismatch") == []
    params = copy.deepcopy(base_params)
    params["gate"]["max_variant_spelling_ratio"] = 0.1  # case-sensitive codes: the team says so
    report, _ = run_gate(train_frame, test_frame, params)
    assert failed(report, "StringMismatch") == []


def test_shifted_test_month_fails_drift(churn_split, base_params):
    train_frame, _ = churn_split
    shifted = generate_month("2025-05", 1500, seed=11, drift=1.5)
    report, _ = run_gate(train_frame, shifted, base_params)
    drift = failed(report, "FeatureDrift")
    assert drift and drift[0].startswith("FAIL train_test_validation/FeatureDrift [train/test]: "
                                         "feature drift score = ")
    assert "required <= 0.15" in drift[0]


def test_challenger_worse_than_the_champion_fails(tmp_path, churn_split, base_params):
    train_frame, test_frame = churn_split
    champion = fit_bundle(train_frame, base_params)
    bundle.save(tmp_path / "champion", champion.estimator, champion.metadata)
    weak = copy.deepcopy(base_params)
    weak["train"]["hyperparameters"].update(max_iter=3, max_leaf_nodes=2)
    params = copy.deepcopy(base_params)
    params["gate"].update(champion=str(tmp_path / "champion"), min_roc_auc=0.5, min_accuracy=0.5,
                          min_baseline_gain=0.0)
    report, _ = run_gate(train_frame, test_frame, params, fit_bundle(train_frame, weak))
    assert report["verdict"] == "fail"
    line = failed(report, "regression")[0]
    champion_version = bundle.load_metadata(tmp_path / "champion")["model_version"]
    assert line.startswith("FAIL champion_challenger/regression [test]: roc_auc no worse than "
                           "production by more than 0.01 = ")
    assert f"(champion {champion_version} roc_auc=0." in line
    assert line.endswith("(gate.max_regression)")
    assert report["models"]["champion"] == champion_version
    assert report["models"]["champion_score"] > report["models"]["challenger_score"] + 0.01

    same, _ = run_gate(train_frame, test_frame, params, bundle.load(tmp_path / "champion"))
    assert [c["verdict"] for c in same["conditions"] if c["group"] == "champion_challenger"] == ["pass"]
    assert same["models"]["request_changes"] == [] and "would refuse" not in gate.markdown(same)


def test_requests_production_answers_and_the_challenger_would_refuse_are_listed_not_failed(
        tmp_path, churn_split, base_params, good):
    """A model trained without an input the clients send refuses their requests: the reviewers
    read it on the pull request, and the gate leaves the judgement to them and the canary."""
    train_frame, test_frame = churn_split
    champion = fit_bundle(train_frame, base_params)
    bundle.save(tmp_path / "champion", champion.estimator, champion.metadata)
    narrower = copy.deepcopy(base_params)
    narrower["data"]["drop_columns"] = [*narrower["data"]["drop_columns"], "age"]
    narrower["gate"]["max_regression"] = 1.0  # without age it scores worse: not what is tested here
    comparison, models = gate.champion_challenger(test_frame, fit_bundle(train_frame, narrower), gate.resolve_champion(
        str(tmp_path / "champion"), tmp_path / "unused"), gate.thresholds(narrower))
    assert comparison["verdict"] == gate.PASS
    assert models["request_changes"] == ["no longer takes 'age': requests with it are refused (unknown_feature)"]
    report, _ = good
    text = gate.markdown({**report, "models": {**report["models"], **models}})
    assert ("### Requests production answers that this model would refuse\n\n- This model no longer takes 'age': "
            "requests with it are refused (unknown_feature).\n\nThe clients must change before it serves them: "
            "canary analysis fails a canary that refuses more requests than stable. For an input gained or lost, "
            "`SLIPWAY_UNKNOWN_FEATURES=ignore` on both tracks lets the clients send both sets meanwhile.") in text


def test_a_test_set_with_one_class_is_checked_and_its_undefined_metric_named(churn_split, base_params):
    """A time split past a shift can leave a class out of the test set: the data checks still run
    (deepchecks is given the model's classes), and ROC AUC, undefined there, is an error that says
    why instead of a crash."""
    train_frame, test_frame = churn_split
    one_class = test_frame[test_frame["churned"] == 0]
    report, _ = run_gate(train_frame, one_class, base_params)
    assert report["verdict"] == "fail"
    assert failed(report, "metrics")[0] == (
        f"ERROR model_performance/metrics [test]: test roc_auc: roc_auc undefined on this test set: not every "
        f"class occurs in it (per class: 0: {len(one_class)} rows, 1: 0 rows)")
    assert failed(report, "SimpleModelComparison") == [
        "ERROR model_performance/SimpleModelComparison [test]: gain over a trivial baseline: could not run: "
        "ROC AUC is undefined on this test set: no row of class 1"]
    integrity = [c for c in report["conditions"] if c["group"] == "data_integrity" and c["dataset"] == "test"]
    assert len(integrity) == sum(rule.group == "data_integrity" for rule in gate.RULES)
    assert all(c["verdict"] != gate.ERROR for c in integrity), integrity
    roc_auc = next(c for c in report["conditions"] if c["condition"] == "test roc_auc")
    assert "test roc_auc = undefined" in gate.describe({**roc_auc, "verdict": "fail"})  # any verdict prints


def test_the_sample_keeps_a_class_too_rare_to_be_drawn():
    """One row in 5,000 is a class: a 100-row draw misses it, and ROC AUC on that draw would be
    undefined although the whole test set defines it."""
    frame = pd.DataFrame({"x": np.arange(5000), "label": ["common"] * 4999 + ["rare"]})
    drawn = frame.sample(n=100, random_state=3)
    assert "rare" not in set(drawn["label"])
    kept = gate.sample(frame, 100, seed=3, label="label")
    assert kept.equals(pd.concat([drawn, frame.tail(1)]).sort_index())
    plain = frame.assign(label=["a", "b"] * 2500)  # both classes drawn: the seeded draw, unchanged
    assert gate.sample(plain, 100, seed=3, label="label").equals(plain.sample(n=100, random_state=3).sort_index())
    assert gate.sample(frame, 5000, seed=3, label="label") is frame


def test_a_champion_directory_without_a_bundle_is_an_error_not_a_skip(tmp_path, churn_split, base_params):
    """A mistyped ``gate.champion`` path must not release a model without its comparison."""
    train_frame, test_frame = churn_split
    params = copy.deepcopy(base_params)
    params["gate"]["champion"] = str(tmp_path / "no-such-bundle")
    report, _ = run_gate(train_frame, test_frame, params)
    assert report["verdict"] == "fail"
    assert failed(report, "regression") == [
        f"ERROR champion_challenger/regression [test]: load the champion model: could not run: "
        f"gate.champion: no model bundle at '{tmp_path / 'no-such-bundle'}' (no model.json); "
        "set production, a bundle directory or null"]


LEGACY_INPUT_REFUSED = "no longer takes 'legacy_score': requests with it are refused (unknown_feature)"


@pytest.mark.parametrize("change, reason, changes", [
    ("target", "predicts 'retained', this model 'churned'", {"request_changes": []}),
    ("classes", "has classes ['0', '1', '2'], this model ['0', '1']", {"request_changes": []}),
    ("inputs", "needs input columns the test set lacks: legacy_score", {"request_changes": [LEGACY_INPUT_REFUSED]}),
    ("derived", "computes derived features not defined in slipway.model.features: ['legacy_ratio']", {}),
])
def test_a_production_model_for_another_problem_is_an_error_that_says_so(
        tmp_path, churn_split, base_params, change, reason, changes):
    """A team adopting the template (or changing its problem) still has the previous model in
    production: the comparison is reported as impossible, not a bare missing-column error. What
    production's clients send that this model would refuse is still listed: an input the new data
    lacks is one the clients still send. (Without the champion's feature code there is no list.)"""
    train_frame, test_frame = churn_split
    champion_frame = train_frame.copy()
    if change == "classes":
        champion_frame.loc[champion_frame.index[::5], "churned"] = 2
    champion = fit_bundle(champion_frame, base_params)
    metadata = dict(champion.metadata)
    if change == "target":
        metadata["target"] = "retained"
    if change in ("inputs", "derived"):
        features = copy.deepcopy(metadata["features"])
        features["numeric" if change == "inputs" else "derived"].append(
            {"inputs": "legacy_score", "derived": "legacy_ratio"}[change])
        metadata["features"] = features
    saved = bundle.save(tmp_path / "champion", champion.estimator, metadata)
    challenger = fit_bundle(train_frame, base_params)

    comparison, models = gate.champion_challenger(test_frame, challenger, gate.resolve_champion(
        str(tmp_path / "champion"), tmp_path / "unused"), gate.thresholds(base_params))
    assert comparison["verdict"] == gate.ERROR
    assert comparison["detail"] == (f"production model {saved['model_version']} {reason}; set "
                                    "gate.champion: null to release without a comparison when the "
                                    "problem itself changed")
    assert models == {"champion": saved["model_version"], **changes}


def test_the_champion_is_scored_with_the_feature_code_it_was_trained_with(tmp_path, churn_split, base_params):
    """After a change to a derived feature's definition, production's model still computes the old
    one: scored with the new code it would be misjudged, and the comparison with it."""
    train_frame, test_frame = churn_split
    trained = fit_bundle(train_frame, base_params)
    bundle.save(tmp_path / "champion", trained.estimator, trained.metadata)
    challenger = fit_bundle(train_frame, base_params)
    thresholds = gate.thresholds(base_params)
    _, own_code = gate.champion_challenger(test_frame, challenger, Champion(tmp_path / "champion", DERIVED_FEATURES),
                                           thresholds)
    assert own_code["champion_score"] == own_code["challenger_score"]
    redefined = {name: DerivedFeature(f.inputs, lambda cols, f=f: -f.compute(cols), f.description)
                 for name, f in DERIVED_FEATURES.items()}
    _, other_code = gate.champion_challenger(test_frame, challenger, Champion(tmp_path / "champion", redefined),
                                             thresholds)
    assert other_code["champion_score"] != own_code["champion_score"]


def test_the_champions_features_are_computed_inside_its_feature_code(tmp_path, churn_split, base_params):
    """Only the champion's: its feature code (its release commit's package) is entered around the
    computing of its derived features, where a function's own imports resolve."""
    train_frame, test_frame = churn_split
    trained = fit_bundle(train_frame, base_params)
    bundle.save(tmp_path / "champion", trained.estimator, trained.metadata)
    entered = []

    @contextmanager
    def feature_code():
        entered.append("in")
        yield
        entered.append("out")

    def inside_only(f):
        def compute(cols):
            assert entered[-1:] == ["in"], "computed outside the champion's feature code"
            return f.compute(cols)
        return compute

    own_code = {name: DerivedFeature(f.inputs, inside_only(f), f.description) for name, f in DERIVED_FEATURES.items()}
    comparison, scores = gate.champion_challenger(
        test_frame, fit_bundle(train_frame, base_params), Champion(tmp_path / "champion", own_code, feature_code),
        gate.thresholds(base_params))
    assert entered == ["in", "out"] and comparison["verdict"] == gate.PASS
    assert scores["champion_score"] == scores["challenger_score"]


def test_a_check_that_cannot_run_is_reported_and_params_decide(monkeypatch, churn_split, base_params):
    def broken(value):
        raise KeyError("scores")

    rules = tuple(r if r.check != "SimpleModelComparison" else gate.Rule(
        r.group, r.check, r.condition, r.param, r.bound, broken, r.datasets, r.options) for r in gate.RULES)
    monkeypatch.setattr(gate, "RULES", rules)
    train_frame, test_frame = churn_split
    report, _ = run_gate(train_frame, test_frame, base_params)
    assert report["verdict"] == "fail"
    assert report["failed"] == ["ERROR model_performance/SimpleModelComparison [test]: gain over a "
                                "trivial baseline: could not run: 'scores'"]
    lenient = copy.deepcopy(base_params)
    lenient["gate"]["fail_on_check_error"] = False
    report, _ = run_gate(train_frame, test_frame, lenient)
    assert report["verdict"] == "pass" and len(report["failed"]) == 1


def test_markdown_puts_failures_first(good):
    report = copy.deepcopy(good[0])
    report["conditions"][0].update(verdict="fail", value=0.4)
    report["verdict"] = "fail"
    text = gate.markdown(report)
    assert text.startswith("## ❌ Gate: FAIL")
    assert text.index("### Failed") < text.index("### Key metrics")
    assert "| roc_auc | 0." in text


def test_markdown_says_why_production_was_not_compared(good):
    """Production may run a model the gate could not compare with: the summary says why, not `none`."""
    report = copy.deepcopy(good[0])
    why = "no release commit for the production model abc (not released by slipway yet)"
    next(e for e in report["conditions"] if e["group"] == "champion_challenger").update(verdict="skipped", detail=why)
    report["models"]["champion"] = None
    challenger = report["models"]["challenger"]
    assert f"Challenger `{challenger}` not compared with production: {why};" in gate.markdown(report)


@pytest.mark.parametrize(("change", "message"), [
    (lambda g: g.pop("max_null_ratio"), "gate.max_null_ratio is required but missing"),
    (lambda g: g.update(min_roc_auc="high"), "gate.min_roc_auc must be float, got 'high'"),
    (lambda g: g.update(max_regression=-0.1), "gate.max_regression must be >= 0.0"),
    (lambda g: g.update(max_feature_drift=2), "gate.max_feature_drift must be <= 1.0"),  # could never fail
    (lambda g: g.update(primary_metric="auc"), "gate.primary_metric must be one of roc_auc, accuracy, f1"),
])
def test_thresholds_are_checked_before_any_check_runs(base_params, change, message):
    params = copy.deepcopy(base_params)
    change(params["gate"])
    with pytest.raises(ParamsError, match=message):
        gate.thresholds(params)


def test_the_champion_setting_is_required(base_params):
    """Absent, it used to mean null: the comparison with production skipped without a word in
    params.yaml. It is refused before any data is read or check runs."""
    params = copy.deepcopy(base_params)
    params["gate"].pop("champion")
    with pytest.raises(ParamsError, match="^params: gate.champion is required but missing$"):
        gate.evaluate_gate(train=None, test=None, model=None, metrics={}, params=params)


def test_the_worst_column_is_named_only_when_some_column_is_worse_than_none():
    """A null ratio of 0 in every column named the last of them, as if it were the one with nulls."""
    assert gate._worst({"amount": 0.0, "ts": 0.0}) == (0.0, "")
    assert gate._worst({"amount": 0.02, "ts": 0.0}) == (0.02, "amount")
    assert gate._worst({"amount": float("nan"), "ts": 0.1})[1] == "amount not scored"
    assert gate._worst({}) == (0.0, "")


def test_a_binary_model_that_labels_no_positive_row_fails_the_f1_floor_saying_why(base_params):
    """The fraud model ranked well (ROC AUC 0.73) and never predicted fraud: F1 0 passed every floor."""
    floors = gate.thresholds(base_params)
    never = {"roc_auc": 0.73, "accuracy": 0.956, "f1": 0.0,
             "per_class": {"False": {"f1": 0.98, "support": 574}, "True": {"f1": 0.0, "support": 26}}}
    (f1,) = [e for e in gate.metric_floors(never, floors) if e["condition"] == "test f1"]
    assert gate.describe(f1) == (
        "FAIL model_performance/metrics [test]: test f1 = 0 (no test row of the positive class labelled as such: "
        "a rare class is seldom the most probable; class_weight: balanced in train.hyperparameters weighs the "
        "classes evenly), required >= 0.05 (gate.min_f1)")
    multiclass = {**never, "per_class": {**never["per_class"], "Other": {"f1": 0.0, "support": 3}}}
    assert [e["detail"] for e in gate.metric_floors(multiclass, floors) if e["condition"] == "test f1"] == [""]
    assert all(e["verdict"] == "pass" for e in gate.metric_floors({**never, "f1": 0.3}, floors))


def test_a_column_validate_allows_more_nulls_is_not_counted_by_the_gates_null_check(base_params):
    """The bank marketing data's job is 14% 'unknown' (data.na_values): the team allowed it in
    validate.columns, and the gate's null ratio (0.1, every column) still refused the model."""
    base_params["validate"]["columns"] = {"job": {"max_null_fraction": 0.2}}
    allowed = gate.thresholds(base_params)["null_allowances"]
    assert allowed == {"job": 0.2}
    ratios = pd.DataFrame({"Percent of nulls in sample": {"job": 0.145, "marital": 0.01, "age": 0.0}})
    assert gate._nulls(ratios, allowed, 0.1) == (0.01, "marital; not counted, within validate.columns' "
                                                        "max_null_fraction: job")
    assert gate._nulls(ratios, allowed, 0.15) == (0.145, "job")  # passes anyway: nothing to set aside
    assert gate._nulls(ratios.assign(**{"Percent of nulls in sample": [0.25, 0.01, 0.0]}), allowed, 0.1) == \
        (0.25, "job")
    assert gate._nulls(ratios, {}, 0.1) == (0.145, "job")
