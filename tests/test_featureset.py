import re
import warnings

import numpy as np
import pandas as pd
import pytest

from slipway.errors import DataError, ParamsError
from slipway.featureset import FeatureCodeError, FeatureSpec, infer_spec, request_changes
from slipway.model.features import DERIVED_FEATURES, DerivedFeature


def infer(frame, **overrides):
    options = dict(exclude=["churned", "customer_id", "event_timestamp"], numeric=None,
                   categorical=None, derived=["tenure_years", "charges_ratio"], max_categories=50)
    return infer_spec(frame, **{**options, **overrides})


def test_infer_splits_numeric_and_categorical(churn):
    spec = infer(churn)
    assert "tenure_months" in spec.numeric and "contract" in spec.categorical
    assert spec.categorical["contract"] == ["month-to-month", "one-year", "two-year"]
    assert "churned" not in spec.columns and "customer_id" not in spec.inputs
    assert spec.columns[-len(spec.categorical):] == list(spec.categorical)


def test_declared_features_win_over_inference(churn):
    spec = infer(churn, numeric=["age"], categorical=["num_products"], derived=[])
    assert spec.numeric == ["age"]
    assert spec.categorical == {"num_products": ["1", "2", "3", "4", "5"]}


def test_transform_is_the_same_for_a_table_and_for_single_rows(churn):
    spec = infer(churn)
    whole = spec.transform(churn)
    one = spec.transform(churn.iloc[[5]].reset_index(drop=True))
    pd.testing.assert_frame_equal(whole.iloc[[5]].reset_index(drop=True), one)
    assert whole["tenure_years"].iloc[5] == pytest.approx(churn["tenure_months"].iloc[5] / 12)


def test_transform_from_json_like_records(churn):
    spec = infer(churn)
    records = churn.drop(columns=["event_timestamp"]).head(3).to_dict("records")
    frame = spec.transform(pd.DataFrame.from_records(records))
    assert list(frame.columns) == spec.columns
    assert frame["contract"].dtype == "category"


def test_unseen_category_becomes_missing_and_ratio_guards_division(churn):
    spec = infer(churn)
    row = churn.head(1).copy()
    row["contract"] = "lifetime"
    row["tenure_months"] = 0
    out = spec.transform(row)
    assert pd.isna(out["contract"].iloc[0])
    assert np.isnan(out["charges_ratio"].iloc[0])


def test_missing_inputs_are_named(churn):
    spec = infer(churn)
    with pytest.raises(DataError, match="missing input columns: tenure_months"):
        spec.transform(churn.drop(columns=["tenure_months"]))


def test_dropped_columns_stay_out_of_the_model(churn):
    spec = infer(churn, drop=["region", "age"])
    assert not {"region", "age"} & set(spec.inputs)
    assert "contract" in spec.categorical and "tenure_months" in spec.numeric


def test_spec_round_trips_through_json(churn):
    spec = infer(churn)
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
    assert "missing_values" not in spec.to_dict()  # a bundle without markers reads as before
    marked = infer(churn, missing_values=["?"])
    assert marked.missing_values == ("?",) and FeatureSpec.from_dict(marked.to_dict()) == marked
    assert "number_format" not in spec.to_dict()
    european = infer(churn, number_format=(",", "."))  # how ingest read numbers: the server reads a request's so
    assert european.to_dict()["number_format"] == [",", "."] and FeatureSpec.from_dict(european.to_dict()) == european


def test_bad_declarations_are_refused(churn):
    with pytest.raises(ParamsError, match="not in the data: \\['nope'\\]"):
        infer(churn, numeric=["nope"])
    with pytest.raises(ParamsError, match="data.drop_columns names columns not in the data: \\['regoin'\\]"):
        infer(churn, drop=["region", "regoin"])
    with pytest.raises(ParamsError, match=r"data.categorical_features names columns that are never features: "
                                         r"\['churned', 'region'\] \(the target, id and timestamp columns"):
        infer(churn, categorical=["contract", "churned", "region"], drop=["region"])
    with pytest.raises(ParamsError, match=r"numeric_features names columns that are never features: \['customer_id'\]"):
        infer(churn, numeric=["age", "customer_id"])
    with pytest.raises(ParamsError, match=r"data.numeric_features and data.categorical_features both name \['age'\]"):
        infer(churn, numeric=["age"], categorical=["age", "contract"])
    with pytest.raises(ParamsError, match="featurize.derived names features not defined"):
        infer(churn, derived=["magic"])
    # Adopting the template with other data, the example's derived features left in params.yaml:
    # featurize said only "missing input columns".
    with pytest.raises(ParamsError, match=r"^params: featurize.derived names features that read columns the data "
                                          r"lacks: tenure_years reads \['tenure_months'\]; charges_ratio reads "
                                          r"\['tenure_months'\]; set featurize.derived to the features your data has"):
        infer(churn.drop(columns="tenure_months"), numeric=None)
    with pytest.raises(ParamsError) as text:
        infer(churn, numeric=["age", "contract"])
    assert str(text.value) == ("params: data.numeric_features names columns that are not numeric: contract "
                               f"(object, e.g. {churn['contract'].head(2).tolist()}); declare them in "
                               "data.categorical_features")
    with pytest.raises(ParamsError, match="'customer_id' has .* categories, more than"):
        infer(churn, exclude=["churned", "event_timestamp"], categorical=["customer_id"])
    with pytest.raises(DataError, match="not defined in slipway.model.features"):
        FeatureSpec.from_dict({"numeric": [], "categorical": {}, "derived": ["magic"]})


def test_numbers_stored_as_text_are_refused_until_declared_numbers_or_codes(churn):
    """A Parquet string column of numbers (Spark's CSV reader without inferSchema stores every
    column so): inferred, a column of few values became categories without a word, and its numbers
    lost their order. Declared numeric, it is read as numbers; declared categorical, it is codes
    (zip codes '02134', whose leading zero a number would lose). Too many categories, it was
    advised to be declared numeric, which then refused it as not numeric."""
    frame = churn.assign(monthly_charges=churn["monthly_charges"].astype(str), num_products=churn["num_products"]
                         .map("{:02d}".format))
    with pytest.raises(ParamsError, match=r"'monthly_charges' \(numbers stored as text, such as '[\d.]+'\), "
                                         r"'num_products' \(numbers stored as text, such as '0\d'\); if the numbers "
                                         r"are measurements, declare the columns in data.numeric_features; if the "
                                         r"numbers are codes, declare the columns in data.categorical_features"):
        infer(frame, max_categories=10_000)
    spec = infer(frame, numeric=infer(churn).numeric)
    assert spec.transform(frame)["monthly_charges"].tolist() == churn["monthly_charges"].tolist()
    codes = infer(frame, numeric=[c for c in infer(churn).numeric if c != "num_products"],
                  categorical=[*infer(churn).categorical, "num_products"])
    assert "01" in codes.categorical["num_products"]
    with pytest.raises(ParamsError, match=r"'monthly_charges' has \d+ categories, more than featurize.max_categories="
                                         r"50; its values are all numbers: declare it in data.numeric_features, drop"):
        infer(frame, categorical=[*infer(churn).categorical, "monthly_charges"],
              numeric=[c for c in infer(churn).numeric if c != "monthly_charges"])
    with pytest.raises(ParamsError, match=r"'customer_id' has \d+ categories, more than featurize.max_categories=50; "
                                         r"its values are all numbers"):  # integers declared categorical
        infer(churn, exclude=["churned", "event_timestamp"], categorical=["customer_id"])
    typo = frame.assign(monthly_charges=frame["monthly_charges"].where(frame.index != 3, "12,50"))
    with pytest.raises(ParamsError, match=r"not numeric: monthly_charges \(object, e.g. \['12,50'\]\)"):
        infer(typo, numeric=infer(churn).numeric)
    with pytest.raises(ParamsError, match=r"'contract' has 3 categories.*; drop it \(data.drop_columns\) or raise"):
        infer(churn, max_categories=2)
    # Text of a row's own (a note, an e-mail address): no limit fits, so none is advised.
    notes = churn.assign(note=[f"called on day {i}" for i in range(len(churn))])
    with pytest.raises(ParamsError, match=r"'note' has \d+ categories, more than featurize.max_categories=50; \d+ of "
                                         r"its values occur in one row each, such as \['called on day \d+', 'called "
                                         r"on day \d+'\]: free text or an identifier, not categories a model can learn "
                                         r"\(the entity id is data.id_column\); drop it \(data.drop_columns\), or "
                                         r"compute numbers from it where the batches are read \(loading.py\)$"):
        infer(notes)
    with pytest.raises(ParamsError, match=r"not numeric: flag \(bool, e.g. \[True, False\]\)"):
        infer(churn.assign(flag=churn.index % 2 == 0), numeric=["flag"])


def test_numbers_with_a_decimal_comma_read_as_text_are_named_with_the_setting_that_reads_them(churn):
    """A European CSV read with data.decimal '.': every price is text, so featurize saw hundreds of
    categories and advised dropping the column or raising the limit."""
    comma = churn.assign(monthly_charges=churn["monthly_charges"].map(lambda v: f"{v:.2f}".replace(".", ",")))
    setting = r"numbers written like '\d+,\d\d': set data.decimal: ','"
    with pytest.raises(ParamsError, match=rf"written or a few other values: 'monthly_charges' \({setting}\); if the "
                                         r"numbers are codes, declare the columns in data.categorical_features$"):
        infer(comma)
    with pytest.raises(ParamsError, match=rf"not numeric: monthly_charges \(object, .*\); monthly_charges: {setting}; "
                                         "declare them"):
        infer(comma, numeric=infer(churn).numeric)
    declared = dict(numeric=[c for c in infer(churn).numeric if c != "monthly_charges"],
                    categorical=[*infer(churn).categorical, "monthly_charges"])
    with pytest.raises(ParamsError, match=rf"'monthly_charges' has \d+ categories, .*; its values are {setting}$"):
        infer(comma, **declared)


@pytest.mark.parametrize(("written", "setting"), [
    ("{:,.2f}", r"numbers written like '\d,\d{3}\.\d\d': set data.thousands: ','"),
    ("{:_.2f}", r"numbers written like '\d\.\d{3},\d\d': set data.decimal: ',' and data.thousands: '\.'"),
    ("{:,.0f}", r"numbers written like '\d,\d{3}': set data.decimal: ',' \(if ',' is the decimal mark\) "
                r"or data.thousands: ',' \(if ',' groups thousands\)"),
])
def test_numbers_with_thousands_separators_are_named_with_the_settings_that_read_them(churn, written, setting):
    """A US export's '1,234.50' (or a German one's '1.234,50') made a column of amounts text: with
    the decimal-comma advice alone, '1,234' was said to be 1.234. Where the data cannot tell (only
    '1,234'), both readings are named."""
    amounts = (churn["monthly_charges"] * 40).map(lambda v: written.format(v).replace(".", "#")
                                                  .replace("_", ".").replace("#", "," if "_" in written else "."))
    with pytest.raises(ParamsError, match=rf"'monthly_charges' \({setting}\); if the numbers are codes"):
        infer(churn.assign(monthly_charges=amounts))


def test_declaring_some_numeric_features_does_not_make_the_other_numbers_categories(churn):
    """Told to declare the numbers stored as text in data.numeric_features, a team listed those;
    every other column of numbers (num_products, 1 to 10) then became categories without a word."""
    frame = churn.assign(monthly_charges=churn["monthly_charges"].astype(str))
    with pytest.raises(ParamsError, match=r"data.numeric_features lists some numeric features but not the columns of "
                                         r"numbers \['tenure_months', .*'num_products', .*\], which would become "
                                         r"categories: list them there too, or in data.categorical_features"):
        infer(frame, numeric=["monthly_charges"])
    codes = infer(churn, numeric=["monthly_charges"], categorical=[*infer(churn).categorical, "num_products"],
                  drop=[c for c in infer(churn).numeric if c not in ("monthly_charges", "num_products")], derived=[])
    assert "num_products" in codes.categorical  # declared both ways: as the team says


def test_a_feature_with_no_value_in_training_is_refused(churn):
    """An empty categorical column had no categories; the features file then held it as objects and
    train failed on it with pandas' AttributeError. validate lets it through when a team raises
    max_null_fraction for a sparse column."""
    frame = churn.assign(payment_method=None, days_since_last_login=np.nan)
    with pytest.raises(DataError, match=r"features with no value in the \d+ training rows: \['days_since_last_login', "
                                        r"'payment_method'\]; .* \(data.drop_columns\)"):
        infer(frame)
    assert "payment_method" not in infer(frame, drop=["payment_method", "days_since_last_login"]).columns


DATE_STORAGE = ["datetime64", "dates", "ISO text", "day-first text", "months as text"]


def with_signup(churn, as_stored: str) -> pd.DataFrame:
    """The data with a signup day, stored in one of the ways data brings dates."""
    days = (churn["event_timestamp"] - pd.Timedelta(days=400)).dt.floor("D")
    stored = {"datetime64": days, "dates": days.dt.date, "ISO text": days.dt.strftime("%Y-%m-%d"),
              "day-first text": days.dt.strftime("%d.%m.%Y"), "months as text": days.dt.strftime("%Y-%m")}
    return churn.assign(signup=stored[as_stored].astype(object) if "text" in as_stored else stored[as_stored])


@pytest.mark.parametrize("as_stored", DATE_STORAGE)
def test_a_column_of_dates_is_not_taken_for_categories(churn, as_stored):
    """A signup date, a few distinct days: inferred as categories it passed, and every request after
    training sent a date the model never saw. A CSV's dates, and a Hive partition such as
    month=2025-01, reach featurize as text."""
    dated = with_signup(churn, as_stored)
    with pytest.raises(ParamsError, match=r"^params: columns \['signup'\] hold dates, which as categories would "
                                          r"never recur after training: list them in data.drop_columns"):
        infer(dated)
    assert "signup" not in infer(dated, exclude=["churned", "customer_id", "event_timestamp", "signup"]).inputs


@pytest.mark.parametrize("as_stored", DATE_STORAGE)
def test_a_derived_feature_reads_a_column_of_dates_stored_as_dates(churn, monkeypatch, as_stored):
    """Days since signup: stored as dates, the feature gets seconds since the epoch; as text or Python
    dates it would get text or objects, so it is named with the way to store it."""
    monkeypatch.setitem(DERIVED_FEATURES, "signup_days", DerivedFeature(
        ("event_timestamp", "signup"), lambda cols: (cols["event_timestamp"] - cols["signup"]) / 86400, "age"))
    dated = with_signup(churn, as_stored)
    options = dict(derived=["signup_days"], drop=["signup"])
    if as_stored != "datetime64":
        with pytest.raises(ParamsError, match=r"^params: featurize.derived names features that read dates not "
                                              r"stored as dates: signup_days reads \['signup'\]; .*pd.to_datetime"):
            infer(dated, **options)
        return
    spec = infer(dated, **options)
    assert spec.times == ("event_timestamp", "signup")
    expected = (dated["event_timestamp"] - dated["signup"]).dt.total_seconds() / 86400
    np.testing.assert_allclose(spec.transform(dated)["signup_days"], expected)


@pytest.mark.parametrize(("written", "example"), [("{}%", "'7%'"), ("${:,.2f}", "'$1,234.50'"),
                                                  ("{:.2f} \u20ac", "'1234.50 \u20ac'"), ("-${}", "'-$7'")])
def test_numbers_written_with_a_sign_are_not_taken_for_categories(churn, written, example):
    """'45%' or '$1,234.50' as categories: their order lost, and each new value one the model never saw
    (with many values, the limit on categories refused them, advising to raise it)."""
    values = np.resize([1234.5 if "," in written or "\u20ac" in written else 7, 3, 12], len(churn))
    signed = churn.assign(share=[written.format(v) for v in values])
    with pytest.raises(ParamsError, match=rf"^params: columns of numbers written with a sign, which as categories "
                                          rf"would lose their order: 'share' \(such as {re.escape(example)}\); read "
                                          r"them as numbers where the batches are read \(slipway/model/loading.py\)"):
        infer(signed)
    assert infer(signed, categorical=["contract", "payment_method", "internet_service", "region", "plan_tier",
                                      "share"]).categorical["share"]  # declared codes stay codes


def test_pandas_categories_read_as_their_values(churn):
    """A Parquet dictionary column reads back as pandas' category dtype: the same spec as text, and no
    pandas warning in featurize's output (its grouping by category warned of a changing default)."""
    as_text = churn.assign(num_products=churn["num_products"].astype(str))
    as_categories = as_text.astype({"contract": "category", "region": "category", "num_products": "category"})
    as_categories["region"] = as_categories["region"].cat.add_categories(["nowhere"])  # in the dtype, not the data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ParamsError) as from_categories:
            infer(as_categories)
    with pytest.raises(ParamsError) as from_text:
        infer(as_text)
    assert "'num_products' (numbers stored as text" in str(from_categories.value)
    assert str(from_categories.value) == str(from_text.value)
    declared = {"numeric": None, "categorical": ["contract", "payment_method", "internet_service", "region",
                                                 "plan_tier", "num_products"]}
    assert infer(as_categories, **declared) == infer(as_text, **declared)


@pytest.mark.parametrize("codes", [["2025-13", "2025-14"], ["2025.10.1", "2024.04.2"], ["12-345-6789", "98-765-4321"],
                                   ["2025-03-14", "unknown"]])
def test_codes_shaped_like_dates_stay_categories(churn, codes):
    """No month 13, a version number, a phone number, a date beside a word: not a column of dates."""
    coded = churn.assign(code=np.resize(np.array(codes, dtype=object), len(churn)))
    assert infer(coded).categorical["code"] == sorted(codes)


def test_numbers_with_a_few_markers_are_refused_with_both_ways_out(churn):
    """'?' for a missing value made a column of numbers text: inferred as categories, with no
    error when they were few, and the numbers lost their order."""
    marked = churn.assign(num_products=churn["num_products"].astype(object))
    marked.loc[marked.index[::40], "num_products"] = "?"
    with pytest.raises(ParamsError, match=r"'num_products' \(30 of 1200 values are \['\?'\]\); if the other "
                                         r"values mean missing, list them in data.na_values; if the numbers are codes"):
        infer(marked)
    codes = infer(marked, numeric=[c for c in infer(churn).numeric if c != "num_products"],
                  categorical=[*infer(churn).categorical, "num_products"])
    assert "num_products" in codes.categorical  # declared: codes, as the team says
    assert "contract" in infer(churn).categorical  # words are not numbers with markers
    amounts = (churn["monthly_charges"] * 40).map("{:,.2f}".format)
    both = marked.assign(monthly_charges=amounts.where(churn.index % 50 > 0, "-"))
    with pytest.raises(ParamsError, match=r"'monthly_charges' \(numbers written like '[\d,.]+': set "
                                         r"data.thousands: ','; 24 of 1200 values are \['-'\]\), 'num_products'"):
        infer(both)
    # With data.thousands already set (ingest left the column text for its '-'), only the '-' is said.
    with pytest.raises(ParamsError, match=r"'monthly_charges' \(24 of 1200 values are \['-'\]\), 'num_products'"):
        infer(both, number_format=(".", ","))


def test_a_column_written_otherwise_than_the_number_settings_say_is_named_as_such(churn):
    """A German export (data.decimal ',', data.thousands '.') with one column written '0.9511' by
    another tool: ingest cannot read it by the settings, and featurize advised 'set ' and nothing."""
    ratios = churn.assign(data_usage_gb=churn["data_usage_gb"].map("{:.4f}".format))
    with pytest.raises(ParamsError, match=r"'data_usage_gb' \(numbers written like '[\d.]+', with '\.' as the decimal "
                                         r"mark, which the settings data.decimal: ',' and data.thousands: '\.' do not "
                                         r"read: write the column as the others are written"):
        infer(ratios, number_format=(",", "."))


def _reads_an_undeclared_column(cols):
    return cols["tenure_months"] / cols["monthly_charges"]


@pytest.mark.parametrize(("compute", "message"), [
    (_reads_an_undeclared_column,
     r"derived feature 'broken' failed at .*test_featureset.py:\d+: KeyError: 'monthly_charges' "
     r"\(its inputs: tenure_months\)"),
    (lambda cols: cols["tenure_months"][:3],
     r"'broken' returned shape \(3,\) for 5 rows; it must return one number per row"),
    (lambda cols: np.array(["a"] * len(cols["tenure_months"])), r"'broken' failed at .*ValueError: could not convert"),
])
def test_a_broken_derived_feature_is_named_with_its_line(churn, compute, message):
    # A feature reading a column it does not declare works only while some other feature
    # happens to read that column: refused from the start.
    definitions = {**DERIVED_FEATURES, "broken": DerivedFeature(("tenure_months",), compute, "a team's mistake")}
    spec = FeatureSpec(numeric=["monthly_charges"], categorical={}, derived=["broken"], definitions=definitions)
    with pytest.raises(FeatureCodeError, match=message):
        spec.transform(churn.head(5))


def spec(numeric=(), markers=(), id_column=None, **categorical):
    return FeatureSpec(list(numeric), {name: list(cats) for name, cats in categorical.items()}, [], {},
                       tuple(markers), id_column)


@pytest.mark.parametrize(("served", "new", "instance", "change"), [
    (spec(["age"]), spec(["age", "income"]), {"age": 30},
     "needs 'income', which production does not take: requests without it are refused (missing_feature)"),
    (spec(["age", "income"]), spec(["age"]), {"age": 30, "income": 5.0},
     "no longer takes 'income': requests with it are refused (unknown_feature)"),
    (spec(plan=["a", "b"]), spec(["plan"]), {"plan": "a"},
     "reads 'plan' as a number, production as categories: text values are refused (wrong_type)"),
    (spec(["plan"]), spec(plan=["1", "2"]), {"plan": 3},
     "reads 'plan' as categories, production as a number: numbers other than its 2 categories are refused "
     "(unseen_category)"),
    (spec(plan=["a", "b", "c"]), spec(plan=["a"]), {"plan": "c"},
     "no longer knows 'plan' 'b', 'c': requests with them are refused (unseen_category)"),
    (spec(["age"], markers=["?"]), spec(["age"]), {"age": "?"},
     "no longer reads '?' as a missing value (data.na_values): requests that send it are refused (wrong_type for "
     "a number, unseen_category for categories)"),
    (spec(markers=["?", "n/a"], plan=["a"]), spec(plan=["a"]), {"plan": "?"},
     "no longer reads '?', 'n/a' as a missing value (data.na_values): requests that send them are refused "
     "(wrong_type for a number, unseen_category for categories)"),
    (spec(["age"], id_column="customer_id"), spec(["age"], id_column="account_id"), {"age": 30, "customer_id": "c1"},
     "no longer takes the id 'customer_id' beside the inputs: requests with it are refused (unknown_feature)"),
    (spec(["age"], id_column="customer_id"), spec(["age", "customer_id"]), {"age": 30},
     "needs 'customer_id', which production does not take: requests without it are refused (missing_feature)"),
])
def test_request_changes_name_what_the_new_model_refuses_as_the_server_does(served, new, instance, change):
    """The gate lists these for the reviewers: each one's reason is the server's for a request the
    served model answers."""
    from slipway.serving.schemas import RequestError, check_columns, instances_to_columns

    def answer(model_spec):
        columns, _, _ = instances_to_columns({"instances": [instance]}, model_spec, max_batch=10)
        return check_columns(columns, model_spec, "reject", lambda name, i: f"instances[{i}].{name}")

    answer(served)
    with pytest.raises(RequestError) as refused:
        answer(new)
    assert request_changes(served, new) == [change]
    assert f"({refused.value.reason}" in change or f"{refused.value.reason} for" in change
    assert request_changes(new, new) == []


def test_an_input_that_becomes_the_id_column_is_no_request_change():
    """Requests that send it are still answered: it is taken beside the inputs, and logged."""
    assert request_changes(spec(["age", "customer_id"]), spec(["age"], id_column="customer_id")) == []


def test_the_id_column_travels_in_the_spec_unless_a_derived_feature_reads_it(churn, monkeypatch):
    with_id = infer(churn, id_column="customer_id")
    assert with_id.id_column == "customer_id" and "customer_id" not in with_id.inputs
    assert FeatureSpec.from_dict(with_id.to_dict()) == with_id
    assert "id_column" not in infer(churn).to_dict()
    monkeypatch.setitem(DERIVED_FEATURES, "id_length", DerivedFeature(
        ("customer_id",), lambda raw: raw["customer_id"].astype(str).str.len(), "reads the id"))
    reading = infer(churn, id_column="customer_id", derived=["id_length"])
    assert "customer_id" in reading.inputs and reading.id_column is None  # requests send it as an input


def test_request_changes_list_each_change_and_shorten_long_category_lists():
    served = spec(["age", "tenure"], plan=list("abcdefgh"), region=["n"])
    new = spec(["age", "channel"], plan=["a"], region=["n", "s"])
    assert request_changes(served, new) == [
        "needs 'channel', which production does not take: requests without it are refused (missing_feature)",
        "no longer takes 'tenure': requests with it are refused (unknown_feature)",
        "no longer knows 'plan' 'b', 'c', 'd', 'e', 'f' and 2 more: requests with them are refused "
        "(unseen_category)"]


def event_hour(monkeypatch) -> str:
    """A team's derived feature of the event's time: its hour of the day."""
    monkeypatch.setitem(DERIVED_FEATURES, "event_hour", DerivedFeature(
        ("event_timestamp",), lambda cols: (cols["event_timestamp"] // 3600) % 24, "hour of the event"))
    return "event_hour"


def test_a_derived_feature_gets_a_column_of_dates_as_seconds_since_the_epoch(churn, monkeypatch):
    """Not pandas' own numbers for dates, nanoseconds, of which a request knows nothing: the hour
    computed from them in training was noise beside the hour a server computes."""
    spec = infer(churn, derived=[event_hour(monkeypatch)])
    assert spec.times == ("event_timestamp",) and "event_timestamp" in spec.inputs
    features = spec.transform(churn)
    assert (features["event_hour"] == churn["event_timestamp"].dt.hour).all()
    assert FeatureSpec.from_dict(spec.to_dict()) == spec and spec.to_dict()["times"] == ["event_timestamp"]
    assert "times" not in infer(churn).to_dict() and infer(churn).times == ()
    # data.timestamp_format, which a request may then send the times in: only for a model that reads them
    formatted = infer(churn, derived=[event_hour(monkeypatch)], time_format="%d.%m.%Y %H:%M")
    assert formatted.time_format == "%d.%m.%Y %H:%M" and FeatureSpec.from_dict(formatted.to_dict()) == formatted
    assert infer(churn, time_format="%d.%m.%Y %H:%M").time_format is None
    days = churn.assign(day=churn["event_timestamp"].dt.floor("D"))  # declared: categories, not times
    assert infer(days, categorical=["day"], numeric=["age"], derived=[], max_categories=100).times == ()


def test_a_derived_feature_may_not_read_the_target(churn, monkeypatch):
    monkeypatch.setitem(DERIVED_FEATURES, "churn_echo", DerivedFeature(
        ("churned",), lambda cols: cols["churned"] * 1.0, "the label itself"))
    with pytest.raises(ParamsError, match=r"featurize.derived names features that read the target 'churned' "
                                          r"\(data.target\), which no request has: \['churn_echo'\]"):
        infer(churn, derived=["churn_echo"], target="churned")
