import json

import numpy as np
import pandas as pd
import pytest

from slipway.errors import DataError, ParamsError
from slipway.pipeline import validate


def problems(frame, params):
    return [(p.column, p.rule, p.count) for p in validate.check(frame, "train", params)]


def test_clean_example_data_passes(churn, params):
    assert validate.check(churn, "train", params) == []
    assert validate.check_target(churn, churn, params) == []


@pytest.mark.parametrize(
    ("corrupt", "expected"),
    [
        (lambda f: f.assign(age=f["age"].where(f.index >= 3, 7)), ("age", "min=18", 3)),
        (lambda f: f.assign(num_products=f["num_products"].where(f.index != 0, 99)), ("num_products", "max=10", 1)),
        (lambda f: f.assign(contract=f["contract"].where(f.index >= 2, "lifetime")),
         ("contract", "allowed=['month-to-month', 'one-year', 'two-year']", 2)),
        (lambda f: f.assign(tenure_months=f["tenure_months"].astype(object).where(f.index >= 4, "ten")),
         ("tenure_months", "type=numeric", 4)),
        (lambda f: f.assign(monthly_charges=f["monthly_charges"].where(f.index >= 300)),
         ("monthly_charges", "nulls<=0.05", 300)),
        (lambda f: f.assign(avg_session_minutes=f["avg_session_minutes"].where(f.index >= 2, np.inf)),
         ("avg_session_minutes", "finite", 2)),
        (lambda f: f.assign(churned=f["churned"].where(f.index != 9)), ("churned", "nulls<=0", 1)),
        (lambda f: f.assign(churned=f["churned"].where(f.index != 9, 2)), ("churned", "allowed=['0', '1']", 1)),
        (lambda f: pd.concat([f, f.iloc[:2]], ignore_index=True),
         ("customer_id+event_timestamp", "unique_key", 4)),
    ],
    ids=["below-min", "above-max", "unknown-category", "wrong-type", "nulls",
         "infinite", "null-label", "unknown-label", "duplicate-keys"],
)
def test_each_kind_of_bad_data_is_reported(churn, params, corrupt, expected):
    assert expected in problems(corrupt(churn.copy()), params)


def test_without_an_id_column_times_shared_by_many_rows_are_no_duplicate_keys(churn, params):
    """Data with a day per event and no entity id: every row shared its day with others, and validate
    refused them all as duplicate keys."""
    params["data"]["id_column"] = None
    daily = churn.drop(columns="customer_id").assign(event_timestamp=churn["event_timestamp"].dt.floor("D"))
    assert problems(daily, params) == []
    params["data"]["id_column"] = "customer_id"
    twice = pd.concat([churn, churn.iloc[:2]], ignore_index=True)
    assert ("customer_id+event_timestamp", "unique_key", 4) in problems(twice, params)
    params["data"]["timestamp_column"] = None  # untimed: one row per id
    assert ("customer_id", "unique_key", 2) in problems(churn.assign(customer_id=[1, 1] + list(range(2, len(churn)))),
                                                        params)


def test_a_missing_column_names_the_key_that_requires_it_and_rules_for_other_data_are_said_so(churn, params):
    """Adopting with other data, the example's validate.columns gave one 'required' line per rule
    and split, and nothing said where they came from."""
    lacking = churn.drop(columns=["contract"])
    [problem] = validate.check_columns(lacking.iloc[:1000], lacking.iloc[1000:], params)
    assert problem.line() == "  train/test: column 'contract', rule required: 1200 rows; validate.columns names it"
    params["data"]["id_column"] = None
    other = pd.DataFrame({"churned": [0, 1] * 10, "event_timestamp": pd.date_range("2025-01-01", periods=20),
                          "x": range(20)})
    message = validate.summarize(validate.check_columns(other, other, params), params)
    assert message.endswith("  16 of the 17 columns validate.columns has rules for are not in the data: rules "
                            "for other data? Write rules for your columns there (or set validate.columns: {})")
    one_missing = validate.check_columns(lacking, lacking, params)
    assert "rules for other data" not in validate.summarize(one_missing, params)


def test_examples_are_listed(churn, params):
    frame = churn.assign(contract=churn["contract"].where(churn.index >= 2, "lifetime"))
    problem = validate.check(frame, "test", params)[0]
    assert problem.examples == ["lifetime"]
    assert problem.line() == (
        "  test: column 'contract', rule allowed=['month-to-month', 'one-year', 'two-year']: "
        "2 rows, e.g. ['lifetime']"
    )


def test_a_long_example_is_cut():
    frame = pd.DataFrame({"plan": ["basic", "x" * 100_000]})
    params = {"data": {"target": "plan", "id_column": None, "timestamp_column": None},
              "validate": {"max_null_fraction": 0.0, "columns": {"plan": {"allowed": ["basic"]}}}}
    [problem] = validate.check(frame, "train", params)
    assert problem.examples == ["x" * 77 + "... (100000 characters)"]


def test_integers_read_as_floats_keep_their_labels(churn, params):
    """A CSV integer column with one empty cell is read as floats: 1.0 is still the label 1 (the
    null has its own rule), and a list of float labels matches integer data too."""
    frame = churn.assign(churned=churn["churned"].astype(float).where(churn.index != 9))
    assert problems(frame, params) == [("churned", "nulls<=0", 1)]
    params["validate"]["columns"]["churned"] = {"allowed": [0.0, 1.0]}
    assert problems(churn, params) == []
    assert problems(frame.assign(churned=frame["churned"].where(frame.index != 3, 0.5)), params) == [
        ("churned", "nulls<=0", 1), ("churned", "allowed=['0', '1']", 1)]


def test_empty_data_and_single_class(churn, params):
    assert problems(churn.iloc[:0], params) == [("*", "not_empty", 0)]
    one_class = churn.assign(churned=0)
    assert [p.line() for p in validate.check_target(one_class, one_class, params)] == [
        "  train: column 'churned', rule at_least_2_classes: 1 class(es), e.g. [0]"]


def test_a_class_only_the_test_set_has_is_named(churn, params):
    """The model could neither predict nor be scored on it: validate stops, before evaluate would."""
    test = churn.assign(churned=churn["churned"].astype(str))
    test.loc[test.index[:3], "churned"] = "upgraded"
    train = churn.assign(churned=churn["churned"].astype(str))
    assert [p.line() for p in validate.check_target(train, test, params)] == [
        "  test: column 'churned', rule class_in_train: 3 rows, e.g. ['upgraded']"]
    assert validate.check_target(train, train.iloc[:10], params) == []  # a class test lacks is fine


def test_a_target_of_fractional_numbers_is_named_as_one_to_regress(churn, params):
    """Pointed at a measurement (a price, say), validate said so only as test 'classes' training
    never saw; classes stored as floats (1.0, or with a null) are still classes."""
    spend = churn.assign(churned=churn["monthly_charges"])
    assert [p.line() for p in validate.check_target(spend.iloc[:2], spend.iloc[2:4], params)] == [
        f"  train: column 'churned', rule classes_not_continuous: 2 rows, e.g. {spend['churned'][:2].tolist()}",
        f"  test: column 'churned', rule classes_not_continuous: 2 rows, e.g. {spend['churned'][2:4].tolist()}"]
    as_floats = churn.assign(churned=churn["churned"].astype(float))
    as_floats.loc[as_floats.index[0], "churned"] = np.nan
    assert validate.check_target(as_floats, as_floats, params) == []


def test_a_class_written_two_ways_is_named_with_its_spellings(churn, params):
    """'yes' and 'Yes ' from an export learnt as two classes: a binary problem became a multiclass
    one, with a class nobody meant."""
    train = churn.assign(churned=churn["churned"].map({0: "no", 1: "yes"}))
    test = train.copy()
    train.loc[train.index[:3], "churned"] = "Yes "
    test.loc[test.index[:1], "churned"] = "NO"
    assert [p.line() for p in validate.check_target(train, test, params)] == [
        "  train/test: column 'churned', rule classes_spelt_once: 4 rows, e.g. [['no', 'NO'], ['yes', 'Yes ']]"]
    clean = churn.assign(churned=churn["churned"].map({0: "no", 1: "yes"}))
    assert validate.check_target(clean, clean, params) == []
    hyphened = clean.assign(churned=clean["churned"].map({"no": "stayed", "yes": "moved-on"}))
    hyphened.loc[hyphened.index[hyphened["churned"] == "moved-on"][:2], "churned"] = "moved on"
    assert [p.line() for p in validate.check_target(hyphened, hyphened, params)] == [
        "  train/test: column 'churned', rule classes_spelt_once: 4 rows, e.g. [['moved-on', 'moved on']]"]
    graded = clean.assign(churned=np.where(clean.index % 3 == 0, "A+", np.where(clean.index % 3 == 1, "A", "A-")))
    assert validate.check_target(graded, graded, params) == []  # signs are no spelling


def test_a_dropped_column_is_checked_only_where_a_rule_names_it(churn, params):
    """data.drop_columns keeps a column out of the model, so its nulls are not the model's problem
    (an all-null export column no longer blocks the pipeline); an explicit rule still applies."""
    frame = churn.assign(legacy_notes=None)
    assert problems(frame, params) == [("legacy_notes", "nulls<=0.05", len(frame))]
    params["data"]["drop_columns"] = ["legacy_notes"]
    assert problems(frame, params) == []
    params["validate"]["columns"]["legacy_notes"] = {"max_null_fraction": 0.5}
    assert problems(frame, params) == [("legacy_notes", "nulls<=0.5", len(frame))]


def test_missing_values_are_located_by_the_rows_ids(churn, params):
    frame = churn.assign(age=churn["age"].where(churn.index >= 400))
    lines = [p.line() for p in validate.check(frame, "train", params) if p.column == "age"]
    ids = [f"customer_id={i}" for i in churn["customer_id"].head(params["validate"]["max_examples"])]
    assert lines == [f"  train: column 'age', rule nulls<=0.05: 400 rows, e.g. {ids}; 33.3% of the rows; if the "
                     "model should learn with these gaps (it handles missing values), allow them in "
                     "validate.columns.age.max_null_fraction"]
    params["data"]["na_values"] = ["unknown"]  # the bank marketing data's: they counted, which the line says
    (line,) = [p.line() for p in validate.check(frame, "train", params) if p.column == "age"]
    assert "; 33.3% of the rows (data.na_values ['unknown'] count as missing); if the model" in line


def test_rows_without_a_label_say_what_to_do(churn, params):
    """Unlabelled rows (not labelled yet, or lost in a join): nothing drops them unasked."""
    frame = churn.assign(churned=churn["churned"].where(churn.index >= 3))
    (line,) = [p.line() for p in validate.check(frame, "train", params) if p.column == "churned"]
    assert line.startswith("  train: column 'churned', rule nulls<=0: 3 rows, e.g. ['customer_id=")
    assert line.endswith("; rows without a label can neither train nor score a model: leave them out where the "
                         "batches are read (slipway/model/loading.py), or mend the export that lost them")


def test_without_an_id_column_missing_values_are_only_counted(churn, params):
    params["data"]["id_column"] = None
    frame = churn.drop(columns="customer_id").assign(age=churn["age"].where(churn.index >= 400))
    lines = [p.line() for p in validate.check(frame, "train", params) if p.column == "age"]
    assert lines == ["  train: column 'age', rule nulls<=0.05: 400 rows; 33.3% of the rows; if the model should "
                     "learn with these gaps (it handles missing values), allow them in "
                     "validate.columns.age.max_null_fraction"]


def test_problems_name_the_batches_their_rows_are_in(churn, params):
    """Monthly exports: the one that broke is the one to fix. Only the first few batches are
    listed, with their count."""
    params["validate"]["max_examples"] = 2
    months = pd.Series([f"2025-0{1 + i % 6}.csv" for i in range(len(churn))], dtype="category")
    frame = churn.assign(__batch__=months)
    frame.loc[[3, 9], "age"] = 5  # both in 2025-04.csv
    frame.loc[[0, 1, 2], "region"] = "mars"
    lines = {p.column: p.line() for p in validate.check(frame, "train", params)}
    assert lines == {"age": "  train: column 'age', rule min=18: 2 rows, e.g. [5] (in 2025-04.csv)",
                     "region": "  train: column 'region', rule allowed=['east', 'north', 'south', 'west']: "
                               "3 rows, e.g. ['mars'] (in 3 batches, e.g. 2025-01.csv, 2025-02.csv)"}
    single = churn.assign(__batch__="all.csv", age=5)  # one batch: nothing to tell apart
    assert [p.line() for p in validate.check(single, "train", params) if p.column == "age"][0].endswith("e.g. [5]")


def test_a_column_of_the_data_named_like_a_private_one_is_checked(churn, params):
    """Only ingest's own __batch__ is left out: a column of the team's named __legacy is data."""
    frame = churn.assign(__legacy=np.nan)
    assert problems(frame, params) == [("__legacy", "nulls<=0.05", len(frame))]


def test_main_lists_every_problem_and_writes_the_report(workdir, churn, params):
    train = churn.iloc[:1000].copy()
    test = churn.iloc[1000:].copy()
    train.loc[:4, "age"] = 5
    test.loc[test.index[:3], "region"] = "mars"
    test.loc[test.index[:2], "days_since_last_login"] = -1.0
    test.loc[test.index[:1], "data_usage_gb"] = np.inf  # the report is JSON: it names it as text
    (workdir / "data/interim").mkdir(parents=True)
    train.to_parquet("data/interim/train.parquet")
    test.to_parquet("data/interim/test.parquet")
    with pytest.raises(DataError) as failure:
        validate.main(params)
    message = str(failure.value)
    assert message.startswith("validate: 4 problem(s) in the ingested data")
    assert "train: column 'age', rule min=18: 5 rows, e.g. [5]" in message
    assert "test: column 'region', rule allowed=" in message and "e.g. ['mars']" in message
    assert "test: column 'days_since_last_login', rule min=0: 2 rows, e.g. [-1.0]" in message
    assert "test: column 'data_usage_gb', rule finite: 1 rows, e.g. ['inf']" in message
    report = json.loads((workdir / "reports/validation.json").read_text())
    assert report["passed"] is False and len(report["problems"]) == 4


def test_a_single_infinite_class_is_reported_in_json(workdir, churn, params):
    """A label column of one overflowing number (1e309 in a CSV) is one class, named as text: the
    JSON report cannot hold an infinity, and writing it used to fail with a traceback instead."""
    (workdir / "data/interim").mkdir(parents=True)
    for name, part in (("train", churn.iloc[:1000]), ("test", churn.iloc[1000:])):
        part.assign(churned=np.inf).to_parquet(f"data/interim/{name}.parquet")
    with pytest.raises(DataError, match=r"rule at_least_2_classes: 1 class\(es\), e.g. \['inf'\]"):
        validate.main(params)
    report = json.loads((workdir / "reports/validation.json").read_text())
    assert ["inf"] in [problem["examples"] for problem in report["problems"]]


def test_bad_column_rules_are_a_params_error(churn, params):
    params["validate"]["columns"]["age"] = {"minimum": 3}
    with pytest.raises(Exception, match="validate.columns.age must be a mapping with keys among"):
        validate.check(churn, "train", params)



def test_every_bad_rule_value_is_named_at_once(churn, params):
    # YAML's .nan: every comparison with it is false, so the rule would pass any value.
    params["validate"]["columns"]["age"] = {"min": "eighteen", "max": float("nan"), "type": "number"}
    params["validate"]["columns"]["region"] = {"allowed": "north", "max_null_fraction": 1.5}
    with pytest.raises(ParamsError) as refused:
        validate.check(churn, "train", params)
    assert str(refused.value) == (
        "params: validate.columns.age.min must be a finite number, got 'eighteen'; "
        "validate.columns.age.max must be a finite number, got nan; "
        "validate.columns.age.type must be numeric or categorical, got 'number'; "
        "validate.columns.region.allowed must be a non-empty list of values, got 'north'; "
        "validate.columns.region.max_null_fraction must be a number within [0, 1], got 1.5")


def test_a_range_no_value_can_be_in_is_a_params_error(churn, params):
    """min above max: every row would be reported, as if the data were broken, not the rule."""
    params["validate"]["columns"]["age"] = {"type": "numeric", "min": 180, "max": 120}
    params["validate"]["columns"]["tenure_months"] = {"min": 5, "max": 5}  # one value: a range all the same
    with pytest.raises(ParamsError, match=r"^params: validate.columns.age: min 180 is above max 120$"):
        validate.check(churn, "train", params)


def test_declared_categorical_column_with_fractions(params):
    params["validate"]["columns"] = {"code": {"type": "categorical"}}
    frame = pd.DataFrame({"code": [1.0, 2.5, np.nan], "churned": [0, 1, 0],
                          "customer_id": [1, 2, 3], "event_timestamp": pd.date_range("2025", periods=3)})
    assert ("code", "type=categorical", 1) in problems(frame, params)


def test_a_declared_numeric_feature_is_checked_as_numbers_the_way_featurize_reads_them(params):
    """Numbers stored as text pass, as featurize reads them. A text infinity, a boolean and a word
    do not: validate passed them, and featurize then refused the first two in the training split
    only; in the test split, "inf" became an infinite feature value."""
    params["data"]["numeric_features"] = ["amount", "flag"]
    frame = pd.DataFrame({"amount": ["12.5", "inf", "-Infinity", "twelve"], "flag": [True, False] * 2,
                          "churned": [0, 1, 0, 1], "customer_id": range(4),
                          "event_timestamp": pd.date_range("2025", periods=4)})
    found = problems(frame, params)
    assert ("amount", "type=numeric", 1) in found and ("amount", "finite", 2) in found
    assert ("flag", "type=numeric", 4) in found
    params["data"]["numeric_features"] = "auto"  # inferred: text is a category, checked as one
    assert [p for p in problems(frame, params) if p[0] == "amount"] == []


def test_numbers_written_with_separators_name_the_setting_that_reads_them(params):
    """A US export's '1,234.50', read without data.thousands, broke the numeric rule with no word
    of why; the line now says which setting reads such numbers."""
    params["data"]["numeric_features"] = ["amount"]
    frame = pd.DataFrame({"amount": ["1,234.50", "987", "12,000.00"], "churned": [0, 1, 0], "customer_id": range(3),
                          "event_timestamp": pd.date_range("2025", periods=3)})
    (found,) = [p for p in validate.check(frame, "train", params) if p.column == "amount"]
    assert found.line().endswith("rule type=numeric: 2 rows, e.g. ['1,234.50', '12,000.00']; numbers written like "
                                 "'1,234.50': set data.thousands: ','")
    words = frame.assign(amount=["1,234.50", "987", "twelve"])  # not numbers in any one format: no advice
    (found,) = [p for p in validate.check(words, "train", params) if p.column == "amount"]
    assert found.hint == ""
