import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from slipway.errors import DataError, ParamsError, SlipwayError
from slipway.pipeline import ingest


def test_time_split_never_puts_the_future_in_training(churn, params):
    train, test = ingest.split(churn, params)
    assert len(train) + len(test) == len(churn)
    assert train["event_timestamp"].max() < test["event_timestamp"].min()
    assert len(test) == pytest.approx(0.2 * len(churn), abs=2)


def test_rows_sharing_the_cutoff_all_go_to_test():
    frame = pd.DataFrame({"t": pd.to_datetime(["2025-01-01"] * 3 + ["2025-01-02"] * 3), "y": range(6)})
    train, test = ingest.split_by_time(frame, "t", test_size=0.5)
    assert train["t"].max() < test["t"].min()
    with pytest.raises(DataError, match=r"column 't': the newest 60% of rows reaches back to the oldest "
                                        r"timestamp, 2025-01-01 00:00:00, .* nothing is left to train on"):
        ingest.split_by_time(frame, "t", test_size=0.6)  # the cut falls inside day 1: all of it is test


def test_time_split_orders_rows_stably_and_accepts_time_zones():
    times = pd.to_datetime(["2025-01-03", "2025-01-01", "2025-01-02", "2025-01-01"]).tz_localize("Europe/Paris")
    frame = pd.DataFrame({"t": times, "y": range(4)})
    train, test = ingest.split_by_time(frame, "t", test_size=0.25)
    assert train["y"].tolist() == [1, 3, 2] and test["y"].tolist() == [0]


def test_rows_without_a_timestamp_cannot_be_split_by_time():
    frame = pd.DataFrame({"t": pd.to_datetime(["2025-01-01", None, None]), "y": range(3)})
    with pytest.raises(DataError, match=r"column 't', rule not_null: 2 rows have no timestamp.*ingest.split: random"):
        ingest.split_by_time(frame, "t", test_size=0.5)


def test_random_split_is_seeded(churn, params):
    params["ingest"]["split"] = "random"
    first = ingest.split(churn, params)[1]
    again = ingest.split(churn, params)[1]
    assert first.index.equals(again.index)
    assert first["event_timestamp"].min() < pd.Timestamp("2025-01-15")  # drawn from every month


def test_a_random_split_keeps_each_customer_on_one_side(params):
    """A customer seen in training and scored again in test would flatter the metrics."""
    frame = pd.DataFrame({"customer_id": np.repeat(np.arange(100), 5), "churned": np.tile([0, 1, 0, 0, 0], 100)})
    frame.loc[frame.index[-3:], "customer_id"] = None  # rows without an id are entities of their own
    train, test = ingest.split_randomly(frame, 0.2, seed=3, target="churned", id_column="customer_id")
    assert set(train["customer_id"].dropna()).isdisjoint(test["customer_id"].dropna())
    assert abs(len(test) - 100) <= 5 and len(train) + len(test) == len(frame)


def test_a_random_split_without_ids_splits_each_class_in_proportion():
    """A class of 5 rows in 1,000 is in both splits, not left to chance."""
    frame = pd.DataFrame({"y": ["common"] * 995 + ["rare"] * 5, "x": range(1000)})
    for seed in range(20):
        train, test = ingest.split_randomly(frame, 0.2, seed=seed, target="y")
        assert test["y"].value_counts().to_dict() == {"common": 199, "rare": 1}
        assert train["y"].value_counts().to_dict() == {"common": 796, "rare": 4}


@pytest.mark.parametrize(("target", "id_column", "message"), [
    ("churn", None, "data.target: column 'churn' not in the data"),
    ("churn", "custmer_id", "data.id_column: column 'custmer_id' not in the data"),
])
def test_a_random_split_names_a_column_the_data_lacks(churn, target, id_column, message):
    with pytest.raises(DataError, match=message):
        ingest.split_randomly(churn, 0.2, seed=1, target=target, id_column=id_column)


def test_time_split_needs_a_timestamp_column(churn, params):
    params["data"]["timestamp_column"] = None
    with pytest.raises(DataError, match="timestamp_column is not set"):
        ingest.split(churn, params)


def test_unparseable_timestamps_are_listed():
    frame = pd.DataFrame({"t": ["2025-01-01", "yesterday", "2025-01-03", "soon"]})
    with pytest.raises(DataError, match=r"column 't', rule timestamp: 2 values are not dates.*yesterday"):
        ingest.parse_timestamps(frame, "t")


@pytest.mark.parametrize(("values", "expected"), [
    ([1735689600, 1735776000.0], ["2025-01-01", "2025-01-02"]),  # epoch seconds, not nanoseconds of 1970
    ([1735689600000, None], ["2025-01-01", None]),  # milliseconds
    ([1735689600000000, 1735776000000000], ["2025-01-01", "2025-01-02"]),  # microseconds
    ([20250101, 20250102, None], ["2025-01-01", "2025-01-02", None]),  # YYYYMMDD, not seconds of 1970
    ([20250101, 1735776000], ["1970-08-23", "2025-01-02"]),  # not all dates: epoch seconds, as given
    (["2025-01-01T01:00:00+01:00", "2025-01-02T02:00:00+02:00"], ["2025-01-01", "2025-01-02"]),  # to UTC
    (pd.to_datetime(["2025-01-01 09:00", "2025-01-02 09:00"]).tz_localize("Asia/Tokyo"),
     ["2025-01-01", "2025-01-02"]),  # Parquet's zoned timestamps
])
def test_timestamps_become_naive_utc_dates(values, expected):
    parsed = ingest.parse_timestamps(pd.DataFrame({"t": values}), "t")["t"]
    assert parsed.dtype == "datetime64[ns]"
    assert [None if pd.isna(v) else v.strftime("%Y-%m-%d") for v in parsed] == expected


@pytest.mark.parametrize(("values", "expected"), [
    (["03.04.2025", "13.04.2025 10:30", None], ["2025-04-03", "2025-04-13", None]),  # the 13th shows: day first
    (["04/03/2025", "04/13/2025"], ["2025-04-03", "2025-04-13"]),  # the 13 second shows: month first
    (["2025-04-03", "03.04.2025", "31.12.2025"], ["2025-04-03", "2025-04-03", "2025-12-31"]),  # ISO beside them
])
def test_day_or_month_first_is_read_from_the_column_as_a_whole(values, expected):
    """pandas reads each value on its own: 03.04.2025 as March 4th, 13.04.2025 as April 13th, so a
    European export's early days of each month went to the wrong month, and the time split with them."""
    parsed = ingest.parse_timestamps(pd.DataFrame({"t": values}), "t")["t"]
    assert [None if pd.isna(v) else v.strftime("%Y-%m-%d") for v in parsed] == expected


@pytest.mark.parametrize(("values", "message"), [
    (["03.04.2025", "04.05.2025"], "2 dates such as '03.04.2025' may put the day or the month first, and none "
                                   "shows which; set data.timestamp_format"),
    (["13.04.2025", "04/13/2025"], "dates written day first ('13.04.2025') and month first ('04/13/2025') together"),
])
def test_dates_whose_order_cannot_be_told_are_refused_with_the_setting(values, message):
    with pytest.raises(DataError, match=re.escape(f"column 't', rule timestamp: {message}")):
        ingest.parse_timestamps(pd.DataFrame({"t": values}), "t")


def test_a_named_timestamp_format_reads_every_value_and_names_those_it_does_not(workdir, params, churn, monkeypatch):
    frame = churn.assign(event_timestamp=churn["event_timestamp"].dt.strftime("%d.%m.%Y %H:%M"))
    params["data"]["timestamp_format"] = "%d.%m.%Y %H:%M"
    monkeypatch.setattr(ingest, "read_batches", lambda source, **options: {"all": frame})
    ingest.main(params)
    train, test = (pd.read_parquet(f"data/interim/{split}.parquet") for split in ("train", "test"))
    assert pd.concat([train, test])["event_timestamp"].sort_values().tolist() == \
        churn["event_timestamp"].dt.floor("min").sort_values().tolist()
    with pytest.raises(DataError, match=r"2 values are not dates in data.timestamp_format '%d.%m.%Y', e.g. "
                                        r"\['2025-04-03', '04/03/2025'\]"):
        ingest.parse_timestamps(pd.DataFrame({"t": ["03.04.2025", "2025-04-03", "04/03/2025"]}), "t", "%d.%m.%Y")
    with pytest.raises(DataError, match="column 't' holds numbers, .*data.timestamp_format .* set it to null"):
        ingest.parse_timestamps(pd.DataFrame({"t": [20250403]}), "t", "%Y%m%d")


def test_zoned_and_unzoned_timestamps_together_are_refused():
    frame = pd.DataFrame({"t": ["2025-01-01T00:00:00Z", "2025-01-02 00:00:00", "2025-01-03T00:00:00+01:00"]})
    with pytest.raises(DataError) as refused:
        ingest.parse_timestamps(frame, "t")
    assert str(refused.value) == ("column 't', rule timestamp: 2 values have a time zone and 1 do not, e.g. "
                                  "'2025-01-01T00:00:00Z' and '2025-01-02 00:00:00'; which moment the unzoned "
                                  "ones mean is unknown")


def test_batches_that_disagree_on_a_time_zone_are_refused_as_such():
    """Parquet keeps a column's time zone: one batch with it and one without concatenate to
    Timestamp objects, which pandas turned half into missing values, reported as 'not dates'."""
    zoned = pd.Series(pd.to_datetime(["2025-01-01 10:00"]).tz_localize("UTC"))
    frame = pd.DataFrame({"t": pd.concat([pd.Series(pd.to_datetime(["2025-02-01 10:00"] * 2)), zoned],
                                         ignore_index=True)})
    assert frame["t"].dtype == object
    with pytest.raises(DataError, match=r"column 't', rule timestamp: 1 values have a time zone and 2 do not, e.g. "
                                        r"Timestamp\('2025-01-01 10:00:00\+0000', tz='UTC'\) and "
                                        r"Timestamp\('2025-02-01 10:00:00'\)"):
        ingest.parse_timestamps(frame, "t")


def test_batches_are_concatenated_with_the_batch_each_row_came_from():
    combined = ingest.combine({"2025-01.parquet": pd.DataFrame({"x": [3]}),
                               "2025-02.csv": pd.DataFrame({"x": [1, 2]})})
    assert combined["x"].tolist() == [3, 1, 2]
    assert combined["__batch__"].tolist() == ["2025-01.parquet", "2025-02.csv", "2025-02.csv"]
    with pytest.raises(DataError, match="^data.source: the loader returned no batches$"):
        ingest.combine({})
    with pytest.raises(SlipwayError, match="^slipway.model.loading.read_batches returned a list for batch 'a'; "
                                           "it must return a pandas DataFrame per batch$"):
        ingest.combine({"a": [1, 2]})


def test_one_frame_returned_for_two_batches_keeps_both_names_and_is_left_as_it_was():
    """A loader that caches may hand back one frame twice; the batch column was written into it,
    so every row of both read as the second batch."""
    frame = pd.DataFrame({"x": [1, 2]})
    combined = ingest.combine({"2025-01": frame, "2025-02": frame})
    assert combined["__batch__"].tolist() == ["2025-01", "2025-01", "2025-02", "2025-02"]
    assert list(frame.columns) == ["x"]


def test_a_batch_with_a_header_but_no_rows_is_named(capsys):
    """Read (a month may have had no events), and said: an empty export is most often a failed one."""
    combined = ingest.combine({"2025-01.csv": pd.DataFrame({"x": [3, 1]}),
                               "2025-02.csv": pd.DataFrame({"x": pd.Series([], dtype=object)})})
    assert combined["x"].tolist() == [3, 1] and combined["x"].dtype == "int64"  # not the empty batch's text
    assert capsys.readouterr().err == "ingest: warning: no rows in 2025-02.csv\n"


@pytest.mark.parametrize(("column", "message"), [
    ("", "a column has an empty name; name every column"),
    ("__batch__", "a column is named '__batch__', which ingest uses for the batch each row came from; rename it"),
])
def test_a_column_name_ingest_cannot_keep_is_refused(column, message):
    with pytest.raises(DataError, match=f"^a.parquet: {re.escape(message)}$"):
        ingest.combine({"a.parquet": pd.DataFrame({"x": [1], column: [2]})})


def test_a_date_pandas_cannot_hold_is_named(tmp_path):
    """Parquet holds 9999-12-31 (a common 'no end' placeholder); pandas' nanoseconds end in 2262,
    and concatenating the batch was an OutOfBoundsDatetime traceback."""
    import datetime

    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"t": pa.array([datetime.datetime(2025, 2, 1), datetime.datetime(9999, 12, 31)],
                                           pa.timestamp("ms"))}), tmp_path / "b.parquet")
    batches = {"a.parquet": pd.DataFrame({"t": pd.to_datetime(["2025-01-01"])}),
               "b.parquet": pd.read_parquet(tmp_path / "b.parquet")}
    with pytest.raises(DataError, match=r"^b.parquet: column 't' holds 1 date\(s\) outside the years 1677-2262 "
                                        r"that pandas can hold, e.g. '9999-12-31 00:00:00'; make such "
                                        r"placeholders null$"):
        ingest.combine(batches)


def test_batches_with_other_columns_are_refused_with_every_difference():
    batches = {"2025-01.csv": pd.DataFrame({"x": [1], "y": [0]}), "2025-02.csv": pd.DataFrame({"x": [2], "y": [1]}),
               "2025-03.csv": pd.DataFrame({"x": [3], "z": [1]}),
               "2025-04.csv": pd.DataFrame({"y": [0], "x": [4], "w": [5]})}
    with pytest.raises(DataError) as refused:
        ingest.combine(batches)
    assert str(refused.value) == ("batches disagree on columns (against 2025-01.csv): "
                                  "2025-03.csv lacks ['y'] and adds ['z']; 2025-04.csv adds ['w']")


def test_values_in_types_that_would_pass_for_categories_become_plain():
    """A warehouse's NUMERIC (decimals in Parquet) passed for 1,664 categories; float16 broke
    deepchecks' checks ('float16 indexes are not supported'); bytes would be learnt as b'north';
    a duration passed for 467 categories, and declared numeric was refused as not numeric."""
    import decimal

    frame = ingest.plain_types(pd.DataFrame({
        "price": [decimal.Decimal("9.99"), None, decimal.Decimal("10.50")],
        "small": np.array([1.5, 2.0, np.nan], dtype=np.float16),
        "region": [b"north", None, "s\u00fcd".encode()],
        "plan": ["basic", "premium", None],
        "session": pd.to_timedelta([90, None, 2.5], unit="s")}))
    assert frame["price"].dtype == float and frame["price"].tolist()[::2] == [9.99, 10.5]
    assert frame["small"].dtype == np.float32 and frame["small"].tolist()[:2] == [1.5, 2.0]
    assert frame["region"].tolist() == ["north", None, "s\u00fcd"]
    assert frame["plan"].tolist()[:2] == ["basic", "premium"]
    assert frame["session"].dtype == float and frame["session"].tolist()[::2] == [90.0, 2.5]
    with pytest.raises(DataError, match="column 'region' holds bytes that are not UTF-8 text"):
        ingest.plain_types(pd.DataFrame({"region": [b"n\xf6rth"]}))


def test_pandas_nullable_types_become_the_numpy_ones_a_csv_gives():
    """Parquet written from pandas' nullable types reads back in them: a nullable boolean feature
    made deepchecks' train/test mix check fail to run ("Invalid value '__deepchecks_na_filler__' for
    dtype 'boolean'"), and with it the gate."""
    frame = ingest.plain_types(pd.DataFrame({
        "visits": pd.array([3, None, 5], dtype="Int64"), "count": pd.array([1, 2, 3], dtype="Int64"),
        "autopay": pd.array([True, None, False], dtype="boolean"),
        "vip": pd.array([True, False, True], dtype="boolean"),
        "city": pd.array(["Lyon", None, "Köln"], dtype="string[pyarrow]"),
        "spend": pd.array([1.5, None, 2.0], dtype="Float64"), "plan": pd.Categorical(["a", "b", "a"])}))
    assert frame["visits"].dtype == float and frame["visits"].isna().tolist() == [False, True, False]
    assert frame["count"].dtype == "int64" and frame["vip"].dtype == bool and frame["spend"].dtype == float
    assert frame["autopay"].dtype == object and frame["autopay"].tolist()[::2] == [True, False]
    assert frame["city"].dtype == object and frame["city"].tolist()[::2] == ["Lyon", "Köln"]
    assert frame["autopay"].isna().iloc[1] and frame["city"].isna().iloc[1]
    assert isinstance(frame["plan"].dtype, pd.CategoricalDtype)


@pytest.mark.parametrize(("values", "shown"), [
    (pd.Series([1735689600.0, float("inf")]), "inf"),
    (pd.Series([1735689600.0, 1e30]), "1e+30"),  # past 64 bits: pandas raised OverflowError
    (pd.Series([1735689600, 10**19], dtype="uint64"), "10000000000000000000"),  # pandas wrapped it to 1702
    (pd.Series([1735689600, 10**10]), "10000000000"),  # seconds, in 2286
], ids=["infinite", "past-64-bits", "unsigned-past-int64", "past-2262"])
def test_numbers_that_are_not_moments_are_listed(values, shown):
    with pytest.raises(DataError, match=rf"column 't', rule timestamp: 1 values are not dates: numbers read as "
                                        rf"YYYYMMDD, or as epoch time .* 1677-2262 .*, e.g. \['{re.escape(shown)}'\]"):
        ingest.parse_timestamps(pd.DataFrame({"t": values}), "t")


def test_mixed_types_become_text_so_validate_can_report_them():
    frame = pd.DataFrame({"x": pd.Series([1, "two", 3.0, None], dtype=object), "y": ["a", "b", "c", "d"]})
    out = ingest.plain_types(frame)
    assert out["x"].tolist()[:3] == ["1", "two", "3.0"] and out["x"].isna().iloc[3]
    assert out["y"].tolist() == ["a", "b", "c", "d"]


def test_a_batch_without_any_timestamp_is_named(workdir, params, churn):
    """A CSV timestamp column with no value at all is read as NaN floats, which pandas' epoch
    conversion could fail on with a FloatingPointError; it is rows without a timestamp."""
    (workdir / "raw").mkdir()
    churn.iloc[:50].assign(event_timestamp="\x00").to_csv(workdir / "raw" / "a.csv", index=False)
    params["data"]["source"] = "raw"
    with pytest.raises(DataError, match=r"column 'event_timestamp', rule not_null: 50 rows have no timestamp"):
        ingest.main(params)


def test_main_writes_both_splits(workdir, params, churn):
    (workdir / "raw").mkdir()
    churn.iloc[:600].to_csv(workdir / "raw" / "a.csv", index=False)
    churn.iloc[600:].to_parquet(workdir / "raw" / "b.parquet")
    params["data"]["source"] = "raw"
    ingest.main(params)
    train = pd.read_parquet("data/interim/train.parquet")
    test = pd.read_parquet("data/interim/test.parquet")
    assert len(train) + len(test) == len(churn)
    assert set(train["__batch__"]) | set(test["__batch__"]) == {"a.csv", "b.parquet"}


def test_text_values_lose_surrounding_spaces_and_blanks_are_missing(workdir, params, churn):
    """A CSV written with ', ' between fields (UCI's Adult: ' State-gov') or a CHAR column's padding
    made categories no request names: the server refused 'north' for a model that knew ' north'."""
    (workdir / "raw").mkdir()
    padded = churn.assign(region=" " + churn["region"], plan_tier=churn["plan_tier"].str.ljust(10))
    padded.loc[padded.index[:5], "contract"] = "   "
    padded.to_csv(workdir / "raw" / "a.csv", index=False)
    params["data"].update(source="raw", na_values=["?"])
    padded.iloc[:1, :].assign(region=" ?").to_parquet(workdir / "raw" / "b.parquet")  # trimmed, then a marker
    ingest.main(params)
    rows = pd.concat([pd.read_parquet(f"data/interim/{split}.parquet") for split in ("train", "test")])
    assert set(rows["region"].dropna()) == set(churn["region"]) and rows["region"].isna().sum() == 1
    assert set(rows["plan_tier"]) == set(churn["plan_tier"])
    assert rows["contract"].isna().sum() == 6  # the five blanks, and the Parquet copy of the first
    # An empty text (a Parquet string column's; a CSV reads it as missing) is missing, as to the server.
    assert ingest.trimmed_text(pd.DataFrame({"c": ["", " a", "b"]}))["c"].tolist() == [None, "a", "b"]


def test_a_column_the_params_name_but_the_data_lacks_is_said_with_the_nearest_and_the_names_there_are(churn, params):
    params["ingest"]["split"] = "random"
    params["data"]["id_column"] = "customer"
    with pytest.raises(DataError, match=r"^data.id_column: column 'customer' not in the data \(did you mean "
                                        r"'customer_id'\?\); its columns: \['customer_id', 'event_timestamp',"):
        ingest.split(churn, params)
    with pytest.raises(DataError, match="columns named \\['income'\\] but for surrounding spaces"):
        ingest.combine({"a.csv": pd.DataFrame({" income": [1], "income ": [2]})})
    assert list(ingest.combine({"a.csv": pd.DataFrame({" income": [1]})}).columns) == ["income", "__batch__"]


def test_nested_parquet_columns_are_refused_unless_dropped_and_then_kept_as_json(workdir, params, churn):
    """A list column (tags) and a struct (address) became the categories "['a' 'b']" and
    "{'city': 'x', 'zip': 1}", which no request sends; the model trained on them unremarked."""
    (workdir / "raw").mkdir()
    nested = churn.assign(tags=[["a", "b"] if i % 2 else [] for i in range(len(churn))],
                          address=[{"city": "x", "zip": i % 7} for i in range(len(churn))])
    nested.to_parquet(workdir / "raw" / "a.parquet")
    params["data"]["source"] = "raw"
    with pytest.raises(DataError, match=r"^columns \['tags', 'address'\] hold lists or records \(Parquet's nested "
                                        r"types\), which no feature reads as they are: list them in data.drop_columns"):
        ingest.main(params)
    assert not Path("data/interim/train.parquet").exists()
    params["data"]["drop_columns"] = ["tags", "address"]
    ingest.main(params)
    rows = pd.concat([pd.read_parquet(f"data/interim/{split}.parquet") for split in ("train", "test")])
    assert set(rows["tags"]) == {"[]", '["a", "b"]'} and '{"city": "x", "zip": 3}' in set(rows["address"])


def test_data_na_values_are_missing_in_csv_and_parquet_batches_alike(workdir, params, churn):
    """UCI-style exports mark a missing value '?': read as text, the column of numbers became categories."""
    (workdir / "raw").mkdir()
    marked = churn.astype({"age": object, "region": object})
    marked.loc[marked.index[::50], ["age", "region"]] = "?"
    marked.iloc[:600].to_csv(workdir / "raw" / "a.csv", index=False)
    marked.iloc[600:].astype({"age": str}).to_parquet(workdir / "raw" / "b.parquet")  # Parquet: text
    params["data"].update(source="raw", na_values=["?"])
    ingest.main(params)
    rows = pd.concat([pd.read_parquet(f"data/interim/{split}.parquet") for split in ("train", "test")])
    assert "?" not in set(rows["region"]) and rows["region"].isna().sum() == churn["region"].isna().sum() + 24
    assert "?" not in set(rows["age"].astype(str))
    params["data"]["na_values"] = ["?", 0]
    with pytest.raises(ParamsError, match=r"data.na_values must be a list of text values, got \['\?', 0\]"):
        ingest.main(params)


@pytest.mark.parametrize(("texts", "number_format"), [
    (["1,234.50", "987", "-1,000,000"], (".", ",")),
    (["1.234,50", "987", "-1.000.000"], (",", ".")),
    (["1'234.50", "987", "-1'000'000"], (".", "'")),
    (["1 234.50", "987", "-1 000 000"], (".", " ")),
    (["1234,50", "987", "-1000000"], (",", None)),
])
def test_numbers_written_as_data_decimal_and_thousands_say_become_numbers(texts, number_format):
    frame = pd.DataFrame({"amount": texts + [None], "colour": ["red", "blue", "green", None]})
    read = ingest.written_numbers(frame.copy(), number_format, kept=set())
    assert read["amount"].iloc[:3].tolist() == [1234.5, 987, -1_000_000] and np.isnan(read["amount"].iloc[3])
    assert read["colour"].equals(frame["colour"])


def test_text_with_words_declared_codes_and_text_read_alike_without_the_settings_stay_text():
    frame = pd.DataFrame({"words": ["1,234", "many"], "code": ["1,234", "5,678"], "amount": ["1,234", "5,678"],
                          "zip": ["02134", "10001"]})
    read = ingest.written_numbers(frame.copy(), (".", ","), kept={"code"})
    assert read["zip"].tolist() == ["02134", "10001"]  # no mark: as without the settings, codes most often
    assert read["words"].tolist() == ["1,234", "many"]  # a word: featurize names the column
    assert read["code"].tolist() == ["1,234", "5,678"]  # declared categorical: codes
    assert read["amount"].tolist() == [1234, 5678] and read["amount"].dtype == np.int64


def test_text_declared_numeric_is_read_as_numbers_unless_a_word_is_among_them():
    """A Parquet string column of '12.5' declared in data.numeric_features: featurize read it as
    numbers, but the training split kept text, and the drift job's deepchecks left the feature out
    of its comparison without a word (and the gate's data checks saw text)."""
    frame = pd.DataFrame({"charges": ["12.5", "3", None], "visits": ["1", "many", "2"],
                          "zip": ["02134", "10001", None]})
    read = ingest.written_numbers(frame.copy(), (".", None), kept=set(), numeric=["charges", "visits"])
    assert read["charges"].tolist()[:2] == [12.5, 3.0] and np.isnan(read["charges"].iloc[2])
    assert read["visits"].tolist() == ["1", "many", "2"]  # validate names 'many' under type=numeric
    assert read["zip"].tolist() == ["02134", "10001", None]  # undeclared: featurize asks which it is


def test_declared_numbers_none_written_as_the_settings_say_are_refused():
    """A German export's '1.234' (thousands) with data.decimal ',' but no data.thousands: declared
    numeric, it stayed text, passed validate and was read by featurize as 1.234."""
    frame = pd.DataFrame({"charges": ["1.234", "2.500", None]})
    with pytest.raises(DataError, match=r"in columns 'charges' \(2 of 2 rows, e.g. \['1\.234', '2\.500'\]; .*"
                                        r"data.thousands: '\.'"):
        ingest.written_numbers(frame.copy(), (",", None), kept=set(), numeric=["charges"])
    read = ingest.written_numbers(frame.copy(), (",", "."), kept=set(), numeric=["charges"])
    assert read["charges"].tolist()[:2] == [1234.0, 2500.0]


@pytest.mark.parametrize(("texts", "number_format", "message"), [
    (["1,234.50", "12,5", "12,5", "1,2,3"], (".", ","),
     r"numbers not written as data.thousands: ',' write them \(-1,234\.5, each thousands separator followed by "
     r"three digits\) in columns 'amount' \(3 of 4 rows, e.g. \['1,2,3', '12,5'\]\)"),
    (["1.234,5", "1.5"], (",", "."), r"data.decimal: ',' and data.thousands: '\.' write them \(-1\.234,5.*\['1\.5'\]"),
    (["12,5", "1.5"], (",", None),
     r"data.decimal: ',' write them \(-1234,5\) in columns 'amount' \(1 of 2 rows, e.g. \['1\.5'\]\)"),
    (["1.234", "2", "1.234.567"], (",", None),
     r"\['1\.234', '1\.234\.567'\]; numbers written like '1\.234': set data.decimal: ',' and data.thousands: '\.'\)"),
    (["1.5", "2.25", "3"], (",", None), r"\['1\.5', '2\.25'\]; numbers written like '1\.5', with '\.' as the decimal "
     r"mark, which the settings data.decimal: ',' do not read: write the column as the others are written"),
])
def test_numbers_some_not_written_as_the_settings_say_are_refused(texts, number_format, message):
    """pandas' CSV reader, given thousands=',', read '12,5' as 125 and '1,2,3' as 123, silently."""
    with pytest.raises(DataError, match=message + r".*declare it in data.categorical_features"):
        ingest.written_numbers(pd.DataFrame({"amount": texts}), number_format, kept=set())


def test_thousands_separators_are_read_in_csv_and_parquet_batches_alike(workdir, params, churn):
    """A US export's '1,234.50' is text to pandas without thousands=',', and always text in a Parquet
    string column; data.thousands reads both, and the declared categories stay codes."""
    (workdir / "raw").mkdir()
    written = churn.assign(monthly_charges=(churn["monthly_charges"] * 100).map("{:,.2f}".format),
                           region=churn["region"].where(churn.index % 2 == 0, "1,000"))
    written.iloc[:600].to_csv(workdir / "raw" / "a.csv", index=False)
    written.iloc[600:].to_parquet(workdir / "raw" / "b.parquet")
    params["data"].update(source="raw", thousands=",", categorical_features=["region", "plan_tier"])
    ingest.main(params)
    rows = pd.concat([pd.read_parquet(f"data/interim/{split}.parquet") for split in ("train", "test")])
    assert rows.sort_values("customer_id")["monthly_charges"].round(2).tolist() == \
        (churn.sort_values("customer_id")["monthly_charges"] * 100).round(2).tolist()
    assert "1,000" in set(rows["region"])
    written.loc[written.index[7], "monthly_charges"] = "12,34"
    written.iloc[:600].to_csv(workdir / "raw" / "a.csv", index=False)
    with pytest.raises(DataError, match=r"in columns 'monthly_charges' \(1 of 1200 rows, e.g. \['12,34'\]\)"):
        ingest.main(params)


def test_a_teams_own_reader_gets_every_check_and_the_batch_column(workdir, params, churn, monkeypatch):
    """loading.read_batches is the team's to replace (a warehouse, say): ingest calls it with
    data.source and the file options as keywords, which such a reader ignores."""
    calls = []

    def warehouse(source, **options):
        calls.append((source, sorted(options)))
        return {month: rows.drop(columns="month") for month, rows in
                churn.assign(month=churn["event_timestamp"].dt.strftime("%Y-%m")).groupby("month")}

    monkeypatch.setattr(ingest, "read_batches", warehouse)
    params["data"]["source"] = "warehouse://churn"
    ingest.main(params)
    assert calls == [("warehouse://churn", ["decimal", "encoding", "fmt", "na_values", "pattern",
                                               "separator"])]
    splits = [pd.read_parquet(f"data/interim/{split}.parquet") for split in ("train", "test")]
    assert set().union(*(split["__batch__"] for split in splits)) == set(churn["event_timestamp"].dt.strftime("%Y-%m"))
    monkeypatch.setattr(ingest, "read_batches", lambda source, **options: {"all": churn.assign(__batch__=1)})
    with pytest.raises(DataError, match="^all: a column is named '__batch__'"):
        ingest.main(params)


@pytest.mark.parametrize("separator", ["", ";;", "comma"])
def test_a_separator_that_is_not_one_character_is_a_params_error(workdir, params, separator):
    params["data"]["separator"] = separator
    with pytest.raises(ParamsError, match=f"data.separator must be auto or one character, got {separator!r}"):
        ingest.main(params)


@pytest.mark.parametrize(("settings", "message"), [
    (dict(decimal="comma"), r"data.decimal must be one of"),
    (dict(decimal=",", separator=","), r"data.decimal and data.separator are both ','"),
    (dict(thousands="."), r"data.decimal and data.thousands are both '\.'"),
    (dict(thousands="_"), r"data.thousands must be null or one of \[' ', \"'\", ',', '\.'\], got '_'"),
    (dict(thousands=1000), r"data.thousands must be str or null, got 1000"),
])
def test_a_decimal_mark_or_thousands_separator_that_cannot_be_is_a_params_error(workdir, params, settings, message):
    params["data"].update(settings)
    with pytest.raises(ParamsError, match=message):
        ingest.main(params)


def test_an_unknown_encoding_is_a_params_error(workdir, params):
    params["data"]["encoding"] = "utf-9"
    with pytest.raises(ParamsError, match="data.encoding: 'utf-9' is not an encoding Python knows"):
        ingest.main(params)
