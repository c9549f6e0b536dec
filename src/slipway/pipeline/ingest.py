"""ingest: read the raw batches, concatenate, split train/test so the test set never leaks the future."""

from __future__ import annotations

import codecs
import datetime
import json
import sys
import warnings
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np
import pandas as pd

from slipway import io
from slipway.errors import DataError, ParamsError, SlipwayError
from slipway.model.loading import read_batches
from slipway.params import column_list, lookup, nearest, random_seed
from slipway.pipeline import paths
from slipway.pipeline.paths import BATCH_COLUMN
from slipway.values import (
    NUMBER_FORMATS,
    NUMBER_LIKE,
    YYYYMMDD_RANGE,
    as_numbers,
    epoch_unit,
    read_written,
    settings,
    text_numbers,
    trimmed,
    written_like,
)


def check_column_names(name: str, frame: pd.DataFrame) -> None:
    """Every column has a name, and none is the one :func:`combine` adds."""
    if any(not str(column).strip() for column in frame.columns):
        raise DataError(f"{name}: a column has an empty name; name every column")
    if BATCH_COLUMN in frame.columns:
        raise DataError(f"{name}: a column is named {BATCH_COLUMN!r}, which ingest uses for the batch each row "
                        "came from; rename it")


def trimmed_names(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Column names without surrounding spaces: a header written with ", " (UCI's Adult) names
    ' income', which no params key or request would."""
    renamed = {column: column.strip() for column in frame.columns
               if isinstance(column, str) and column != column.strip()}
    if not renamed:
        return frame
    names = [renamed.get(column, column) for column in frame.columns]
    twice = sorted({column for column in names if names.count(column) > 1})
    if twice:
        raise DataError(f"{name}: columns named {twice} but for surrounding spaces; give each column its own name")
    return frame.rename(columns=renamed)


def column_not_found(key: str, column: str, columns) -> DataError:
    """``key`` names a column the data lacks: said with the nearest name and the names there are."""
    names = [str(c) for c in columns if c != BATCH_COLUMN]
    shown = names if len(names) <= 20 else [*names[:20], f"... {len(names) - 20} more"]
    return DataError(f"{key}: column {column!r} not in the data{nearest(column, names, repr)}; its columns: {shown}")


def nanosecond_dates(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Dates in pandas' nanoseconds, as every batch must be to be concatenated: a date past 2262
    (a placeholder such as 9999-12-31, which Parquet holds in milliseconds) does not fit, and is
    named here."""
    for column in frame.select_dtypes(include=["datetime", "datetimetz"]).columns:
        try:
            frame[column] = frame[column].dt.as_unit("ns")
        except pd.errors.OutOfBoundsDatetime:
            values = frame[column]
            outside = values[(values < pd.Timestamp.min) | (values > pd.Timestamp.max)]
            raise DataError(f"{name}: column {column!r} holds {len(outside)} date(s) outside the years "
                            f"1677-2262 that pandas can hold, e.g. {str(outside.iloc[0])!r}; make such "
                            "placeholders null") from None
    return frame


def check_same_columns(batches: dict[str, pd.DataFrame]) -> None:
    """Every batch must have the first one's columns: concatenated, a column one month lacks would
    be silently missing in all its rows (and the model would learn the month from it)."""
    (first, expected), *rest = ((name, list(frame.columns)) for name, frame in batches.items())
    differences = []
    for name, columns in rest:
        lacks = [c for c in expected if c not in columns]
        adds = [c for c in columns if c not in expected]
        if lacks or adds:
            parts = ([f"lacks {lacks}"] if lacks else []) + ([f"adds {adds}"] if adds else [])
            differences.append(f"{name} {' and '.join(parts)}")
    if differences:
        raise DataError(f"batches disagree on columns (against {first}): " + "; ".join(differences))


def combine(batches: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The batches ``slipway.model.loading`` read, checked and concatenated, with a
    :data:`BATCH_COLUMN` naming the batch each row came from. Whatever the loader (files, a
    warehouse), these checks hold."""
    if not batches:
        raise DataError("data.source: the loader returned no batches")
    for name, frame in batches.items():
        if not isinstance(frame, pd.DataFrame):  # a team's own loader, not the data, is wrong
            raise SlipwayError(f"slipway.model.loading.read_batches returned a {type(frame).__name__} for "
                               f"batch {name!r}; it must return a pandas DataFrame per batch")
        check_column_names(name, frame)
        batches[name] = nanosecond_dates(name, trimmed_names(name, frame))
    check_same_columns(batches)
    empty = [name for name, frame in batches.items() if frame.empty]
    if empty:  # not an error (a month may have had no events), but most often an export that failed
        print(f"ingest: warning: no rows in {', '.join(empty)}", file=sys.stderr)
    # An empty CSV's columns are text: concatenated, they would turn every numeric column into text.
    kept = {name: frame for name, frame in batches.items() if not frame.empty} or batches
    combined = pd.concat(kept.values(), ignore_index=True)
    # Built here, not added to each batch: the loader's frames stay as it returned them (one frame
    # returned for two batches would otherwise carry the second name for both).
    combined[BATCH_COLUMN] = pd.Categorical.from_codes(
        np.repeat(np.arange(len(kept)), [len(frame) for frame in kept.values()]), categories=list(kept))
    return combined


def text_columns(frame: pd.DataFrame) -> list[str]:
    """The columns of Python objects (text, most often). Not ``select_dtypes``, which copies them."""
    return [name for name, dtype in frame.dtypes.items() if pd.api.types.is_object_dtype(dtype)]


def _nested(value: Any) -> bool:
    return isinstance(value, list | tuple | dict | set | np.ndarray)


def _as_json(value: Any) -> Any:
    """A nested value as plain Python (pyarrow reads a list as a NumPy array, numbers as NumPy's)."""
    if isinstance(value, np.ndarray | list | tuple | set):
        return [_as_json(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _as_json(item) for key, item in value.items()}
    return value.item() if isinstance(value, np.generic) else value


def plain_types(frame: pd.DataFrame, dropped: Collection[str] = ()) -> pd.DataFrame:
    """Values in the types every later step reads:

    - decimals (a warehouse's NUMERIC, exported to Parquet) as floats, not Python objects that
      would pass for categories;
    - float16 as float32, which holds each value exactly and which pandas can index (deepchecks'
      checks group by it);
    - durations (Parquet's duration, pandas' timedelta) as seconds: numbers, which a request can
      send, not hundreds of categories;
    - bytes (text some writers store without marking it UTF-8) as text, or the model would learn
      b'north' where a request says north;
    - a column mixing Python types (batches that disagree) as text, so it can be stored and
      ``validate`` reports the offending values instead of a writer crashing;
    - columns of lists or records (Parquet's nested types, as read back) are refused, but for those
      ``dropped`` (``data.drop_columns``) lists, which are kept as JSON text: no feature reads such a
      value as it is, and every later step (trimming, splitting, validating) would fail on it, or read
      ``"['a' 'b']"`` as a category. Only a column that is not all one scalar type is looked at row by
      row;
    - pandas' nullable types (``Int64``, ``boolean``, ``string``, as Parquet written from them
      reads back) as the NumPy ones a CSV gives: integers, or floats where a value is missing;
      booleans, or objects beside missing values; text as objects. deepchecks cannot fill the
      missing values of a nullable boolean, and a gate check that cannot run fails the gate.
    """
    nested = {}
    for name in frame.columns:
        values = plain_nullable(original := frame[name])
        if values is not original:
            frame[name] = values
        if values.dtype == np.float16:
            frame[name] = values.astype(np.float32)
        elif pd.api.types.is_timedelta64_dtype(values):
            frame[name] = values.dt.total_seconds()
        if values.dtype != object:
            continue
        kind = pd.api.types.infer_dtype(values, skipna=True)
        if kind == "decimal":
            frame[name] = values.astype(float)
        elif kind == "bytes":
            try:
                frame[name] = values.map(lambda v: v.decode("utf-8") if isinstance(v, bytes) else v)
            except UnicodeDecodeError as exc:
                raise DataError(f"column {name!r} holds bytes that are not UTF-8 text ({exc})") from None
        elif kind.startswith("mixed") and values.map(_nested).any():
            nested[name] = values
        elif kind.startswith("mixed"):
            frame[name] = values.where(values.isna(), values.astype(str))
    refused = [name for name in nested if name not in dropped]
    if refused:
        raise DataError(f"columns {refused} hold lists or records (Parquet's nested types), which no feature "
                        "reads as they are: list them in data.drop_columns, or flatten them into columns of "
                        "numbers or categories where the batches are read (slipway/model/loading.py)")
    for name, values in nested.items():
        frame[name] = values.map(lambda v: json.dumps(_as_json(v), default=str) if _nested(v) else v)
    return frame


def trimmed_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Text values as :func:`values.trimmed` reads them, and the server a request's categories
    (surrounding spaces gone, spaces only missing): a CSV written with ", " between fields (UCI's
    Adult: ' State-gov') or a warehouse's fixed-width CHAR padding would otherwise be categories no
    request names. Only the distinct values are looked at, so a column with nothing to trim costs
    one hash pass."""
    for name in text_columns(frame):
        values = frame[name]
        replaced = {value: trimmed(value) for value in pd.unique(values)
                    if isinstance(value, str) and trimmed(value) != value}  # "" too: missing
        if replaced:
            frame[name] = values.replace(replaced)
    return frame


def missing_as_missing(frame: pd.DataFrame, na_values: list[str]) -> pd.DataFrame:
    """Text that means a missing value (``data.na_values``) as missing, in every text column: the
    CSV reader already reads it so, a Parquet file or a team's own reader does not."""
    if na_values:
        for name in text_columns(frame):
            frame[name] = frame[name].mask(frame[name].isin(na_values))
    return frame


def written_numbers(frame: pd.DataFrame, number_format: tuple[str, str | None], kept: set[str],
                    numeric: Sequence[str] = ()) -> pd.DataFrame:
    """Text columns of numbers as numbers: those written as ``data.decimal`` and ``data.thousands``
    say (``1.234,50``) where some value needs the settings' marks, and those declared in
    ``numeric`` (``data.numeric_features``: a Parquet string column of ``"12.5"``), so that every
    later step (validate's ranges, the gate's checks, the drift reference) reads numbers. In a
    Parquet string column or a team's own reader's text as in a CSV. Strictly: each thousands
    separator is followed by three digits, where pandas' CSV reader would read ``12,5`` as 125
    under ``data.thousands: ","``. A column whose values all look like numbers, some not written
    so, is refused with them, as is a declared one of which none are; a column with words in it
    stays text (for validate or featurize to name). The columns in ``kept`` (the target, the id,
    the timestamp and those declared categorical: codes) stay as they are. Only distinct values
    are read."""
    default = number_format == NUMBER_FORMATS[0]
    declared = set(numeric)
    if default and not declared:
        return frame
    refused = []
    for name in text_columns(frame):
        values = frame[name]
        distinct = pd.Series(values.dropna().unique())
        if (name in kept or (default and name not in declared) or distinct.empty
                or pd.api.types.infer_dtype(distinct, skipna=False) != "string"):
            continue
        numbers = read_written(distinct, number_format)
        if numbers.notna().all():
            # Undeclared text the default reading reads alike (a Parquet column of "02134") stays
            # as its writer typed it, as it does without the settings, for featurize to ask about.
            if name in declared or not (numbers == as_numbers(distinct)).all():
                frame[name] = values.map(pd.Series(numbers.to_numpy(), index=distinct.to_numpy()))
        elif (not default and (numbers.notna().any() or name in declared)
              and distinct.str.fullmatch(NUMBER_LIKE).all()):
            # A declared column none of whose values read (a German export's '1.234' without
            # data.thousands) would pass validate and be read by featurize as 1.234, a thousandth.
            others = distinct[numbers.isna()]
            read = text_numbers(distinct)  # a format that reads them all, if the settings are wrong
            advice = f"; {read.advice(number_format)}" if read and not len(read.others) else ""
            rows = f"{int(values.isin(others).sum())} of {int(values.notna().sum())} rows"
            refused.append(f"{name!r} ({rows}, e.g. {sorted(others)[:3]}{advice})")
    if refused:
        grouped = ", each thousands separator followed by three digits" if number_format[1] else ""
        raise DataError(f"numbers not written as {settings(number_format)} write them ({written_like(number_format)}"
                        f"{grouped}) in columns {', '.join(refused)}: "
                        "correct them in the export; if a column holds codes rather than numbers, declare it in "
                        "data.categorical_features")
    return frame


def plain_nullable(values: pd.Series) -> pd.Series:
    """``values`` in a NumPy dtype if pandas holds them in a nullable (extension) one, with NaN for
    pandas' NA; other columns as they are (categories and zoned dates included)."""
    dtype = values.dtype
    if not isinstance(dtype, pd.api.extensions.ExtensionDtype) or isinstance(
            dtype, pd.CategoricalDtype | pd.DatetimeTZDtype | pd.PeriodDtype | pd.IntervalDtype | pd.SparseDtype):
        return values
    missing = bool(values.isna().any())
    if pd.api.types.is_bool_dtype(dtype):
        return values.astype(object).where(values.notna(), np.nan) if missing else values.astype(bool)
    if pd.api.types.is_numeric_dtype(dtype):
        return values.astype("float64") if missing else values.astype(dtype.numpy_dtype)
    if pd.api.types.is_string_dtype(dtype):
        return values.astype(object).where(values.notna(), np.nan)
    return values


def numbers_to_datetime(values: pd.Series) -> pd.Series:
    """Numbers as dates (:data:`slipway.values.EPOCH_UNITS`): whole numbers that all read as YYYYMMDD
    (20250131) are dates; otherwise epoch time, the unit read from the size of the largest. A number
    past 64 bits is no date in any unit: missing here (pandas would raise, or wrap an unsigned one
    round to 1702)."""
    finite = values.where(np.isfinite(values) & (values.abs() < 2**63))
    present = finite.dropna()
    if present.empty:  # pandas can fail on a column of nothing but NaN (an overflow in its rounding)
        return pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    if (present == present.round()).all() and present.between(*YYYYMMDD_RANGE).all():
        as_days = pd.to_datetime(present.astype("int64").astype(str), format="%Y%m%d", errors="coerce")
        if as_days.notna().all():
            return as_days.reindex(values.index)
    return pd.to_datetime(finite, unit=epoch_unit(present.abs().max())[0], errors="coerce")


def refuse_zoned_with_unzoned(column: str, values: pd.Series, stamps: pd.Series) -> None:
    """``stamps``: ``values`` as objects, dates among them. Dates with a time zone beside dates
    without one cannot be ordered: which moment an unzoned one means is unknown. (pandas would
    make either kind missing, and the error would say they are not dates.)"""
    zoned = stamps.map(lambda v: getattr(v, "tzinfo", None) is not None).astype(bool)
    unzoned = stamps.notna() & stamps.map(lambda v: isinstance(v, datetime.datetime)).astype(bool) & ~zoned
    if zoned.any() and unzoned.any():
        raise DataError(
            f"column {column!r}, rule timestamp: {int(zoned.sum())} values have a time zone and "
            f"{int(unzoned.sum())} do not, e.g. {values[zoned].iloc[0]!r} and {values[unzoned].iloc[0]!r}; "
            "which moment the unzoned ones mean is unknown")


def parse_timestamps(frame: pd.DataFrame, column: str, fmt: str | None = None) -> pd.DataFrame:
    """The timestamp column as naive UTC dates: text in any unambiguous format, or in ``fmt``
    (``data.timestamp_format``, a strptime format), values with time zones converted to UTC;
    YYYYMMDD numbers or epoch numbers."""
    if column not in frame.columns:
        raise column_not_found("data.timestamp_column", column, frame.columns)
    values = frame[column]
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        if fmt is not None:
            raise DataError(f"column {column!r} holds numbers, which are read as YYYYMMDD or epoch dates: "
                            f"data.timestamp_format ({fmt!r}) is for dates written as text; set it to null")
        parsed = numbers_to_datetime(values)
        shape = (": numbers read as YYYYMMDD, or as epoch time (seconds, ms, us or ns by their size) within the "
                 "years 1677-2262 that pandas can hold")
    else:
        if values.dtype == object:  # Parquet batches that disagree: dates with a time zone, and without
            refuse_zoned_with_unzoned(column, values, values)
        # Each value on its own unless the format is given: mixed forms, where day-first dates
        # go by the order the column shows (pandas alone reads 03.04.2025 as March and 13.04.2025 as April).
        options = {"format": fmt} if fmt is not None else {"format": "mixed", "dayfirst": day_first(column, values)}
        with warnings.catch_warnings():  # pandas warns of mixed offsets; handled below
            warnings.simplefilter("ignore", FutureWarning)
            parsed = pd.to_datetime(values, errors="coerce", **options)
        if parsed.dtype == object:  # several UTC offsets, or zoned and unzoned values together
            refuse_zoned_with_unzoned(column, values, parsed)
            parsed = pd.to_datetime(values, errors="coerce", utc=True, **options)
        if isinstance(parsed.dtype, pd.DatetimeTZDtype):
            parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
        shape = f" in data.timestamp_format {fmt!r}" if fmt is not None else ""
    bad = parsed.isna() & values.notna()
    if bad.any():
        examples = values[bad].astype(str).unique()[:5].tolist()
        raise DataError(
            f"column {column!r}, rule timestamp: {int(bad.sum())} values are not dates{shape}, e.g. {examples}"
        )
    frame[column] = parsed
    return frame


# A date whose day and month, as numbers, come before the year: 03.04.2025, 4/3/25, 03-04-2025 10:00.
DAY_AND_MONTH_FIRST = r"^\s*(\d{1,2})[./-](\d{1,2})[./-]\d{2,4}(?!\d)"


def day_first(column: str, values: pd.Series) -> bool:
    """Whether the column's dates written day-and-month-first (:data:`DAY_AND_MONTH_FIRST`) put the
    day first, as the values show: a first number above 12 is a day, a second one above 12 makes
    the first the month. Values that show neither, or both orders, are an error that names
    ``data.timestamp_format``: a guess would put some events in the wrong month."""
    if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
        return False  # dates already (Parquet's timestamps)
    try:
        parts = values.str.extract(DAY_AND_MONTH_FIRST).dropna()
    except AttributeError:  # no text at all: the Timestamp objects of Parquet batches that disagree
        return False
    if parts.empty:
        return False
    first, second = parts[0].astype(int), parts[1].astype(int)
    shown = {"day": values[first.index[first > 12]], "month": values[second.index[second > 12]]}
    if len(shown["day"]) and len(shown["month"]):
        raise DataError(f"column {column!r}, rule timestamp: dates written day first ({shown['day'].iloc[0]!r}) and "
                        f"month first ({shown['month'].iloc[0]!r}) together; fix the export, or set "
                        "data.timestamp_format to the one it should be")
    if not len(shown["day"]) and not len(shown["month"]):
        raise DataError(f"column {column!r}, rule timestamp: {len(parts)} dates such as {values[parts.index[0]]!r} "
                        "may put the day or the month first, and none shows which; set data.timestamp_format "
                        "(e.g. '%d.%m.%Y' or '%m/%d/%Y %H:%M')")
    return bool(len(shown["day"]))


def split_by_time(frame: pd.DataFrame, column: str, test_size: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The newest ``test_size`` share of events is the test set. Rows sharing the cut-off
    timestamp all go to the test side, so no training row is newer than a test row. A row with
    no timestamp has no place on the timeline: it is an error, not a guess."""
    times = frame[column]
    missing = int(times.isna().sum())
    if missing:
        raise DataError(f"column {column!r}, rule not_null: {missing} rows have no timestamp, so they "
                        f"cannot be split by time (fix the data, or set ingest.split: random)")
    n_test = max(1, int(round(len(frame) * test_size)))
    # Order the timestamps only, then copy each side once (sorting the frame copies all of it).
    order = times.array.argsort(kind="stable")
    ordered = times.iloc[order]
    first_test = int(ordered.searchsorted(ordered.iloc[len(ordered) - n_test], side="left"))
    if first_test == 0:
        raise DataError(f"column {column!r}: the newest {test_size:.0%} of rows reaches back to the oldest "
                        f"timestamp, {ordered.iloc[0]}, and rows sharing the cut-off all go to test, so "
                        "nothing is left to train on (lower ingest.test_size, set ingest.split: random, "
                        "or name a finer data.timestamp_column)")
    return frame.take(order[:first_test]), frame.take(order[first_test:])


def split_randomly(frame: pd.DataFrame, test_size: float, seed: int, target: str,
                   id_column: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seeded random split. With an id column, each entity's rows all go to one side: a customer
    the model trained on, scored again in test, would flatter its metrics. Without one, each class
    of ``target`` is split in proportion, so a rare class is not left out of either side by chance."""
    key, column = ("data.id_column", id_column) if id_column is not None else ("data.target", target)
    if column not in frame.columns:
        raise column_not_found(key, column, frame.columns)
    rng = np.random.default_rng(seed)
    if id_column is not None:  # whole entities, in random order, until the test share is reached
        codes = pd.factorize(frame[id_column])[0]
        unnamed = codes < 0  # a row without an id is an entity of its own
        codes[unnamed] = codes.max() + 1 + np.arange(unnamed.sum())
        order = rng.permutation(codes.max() + 1)
        sizes = np.cumsum(np.bincount(codes)[order])
        n_test = max(1, int(round(len(frame) * test_size)))
        is_test = np.isin(codes, order[:np.searchsorted(sizes, n_test) + 1])
    else:
        is_test = np.zeros(len(frame), dtype=bool)
        codes = pd.factorize(frame[target], use_na_sentinel=False)[0]
        for code in np.unique(codes):
            members = rng.permutation(np.flatnonzero(codes == code))
            is_test[members[:int(round(len(members) * test_size))]] = True
        if not is_test.any():  # every class too small to give a row
            is_test[rng.integers(len(frame))] = True
    return frame[~is_test], frame[is_test]


def split(frame: pd.DataFrame, params: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    method = lookup(params, "ingest.split", str, choices=("time", "random"))
    test_size = lookup(params, "ingest.test_size", float, minimum=0.01, maximum=0.9)
    timestamp = lookup(params, "data.timestamp_column", (str, type(None)), None)
    if len(frame) < 2:
        raise DataError(f"data.source: {len(frame)} rows, too few to split into train and test")
    if method == "time":
        if timestamp is None:
            raise DataError("ingest.split is 'time' but data.timestamp_column is not set")
        return split_by_time(frame, timestamp, test_size)
    return split_randomly(frame, test_size, random_seed(params, "ingest.seed"), lookup(params, "data.target", str),
                          lookup(params, "data.id_column", (str, type(None)), None))


# The thousands separators featurize can tell (and advise) in numbers read as text.
THOUSANDS_SEPARATORS = sorted({thousands for _, thousands in NUMBER_FORMATS if thousands})


def main(params: dict[str, Any]) -> None:
    source = lookup(params, "data.source", str)
    separator = lookup(params, "data.separator", str, "auto")
    if separator != "auto" and len(separator) != 1:
        raise ParamsError(f"params: data.separator must be auto or one character, got {separator!r}")
    decimal = lookup(params, "data.decimal", str, ".", choices=(".", ","))
    if decimal == separator:
        raise ParamsError(f"params: data.decimal and data.separator are both {decimal!r}; a CSV with a "
                          "decimal comma separates its fields with another character (most often ;)")
    thousands = lookup(params, "data.thousands", (str, type(None)), None)
    if thousands is not None and thousands not in THOUSANDS_SEPARATORS:
        raise ParamsError(f"params: data.thousands must be null or one of {THOUSANDS_SEPARATORS}, got {thousands!r}")
    if thousands == decimal:
        raise ParamsError(f"params: data.decimal and data.thousands are both {decimal!r}")
    encoding = lookup(params, "data.encoding", str, "utf-8")
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ParamsError(f"params: data.encoding: {encoding!r} is not an encoding Python knows "
                          "(e.g. utf-8, cp1252, latin-1)") from None
    na_values = lookup(params, "data.na_values", list, [])
    if not all(isinstance(value, str) for value in na_values):
        raise ParamsError(f"params: data.na_values must be a list of text values, got {na_values!r}")
    batches = read_batches(source, fmt=lookup(params, "data.format", str, "auto", choices=("auto", "csv", "parquet")),
                           pattern=lookup(params, "data.pattern", (str, type(None)), None), separator=separator,
                           decimal=decimal, encoding=encoding, na_values=na_values)
    frame = plain_types(combine(batches), lookup(params, "data.drop_columns", list, []))
    frame = missing_as_missing(trimmed_text(frame), na_values)
    timestamp = lookup(params, "data.timestamp_column", (str, type(None)), None)
    kept = {lookup(params, "data.target", str), lookup(params, "data.id_column", (str, type(None)), None), timestamp,
            *(column_list(params, "data.categorical_features") or [])}
    frame = written_numbers(frame, (decimal, thousands), kept, column_list(params, "data.numeric_features") or [])
    if timestamp is not None:
        frame = parse_timestamps(frame, timestamp, lookup(params, "data.timestamp_format", (str, type(None)), None))
    train, test = split(frame, params)
    with io.together():
        io.write_parquet(paths.TRAIN_RAW, train)  # written without the index
        io.write_parquet(paths.TEST_RAW, test)
    print(f"ingest: {len(frame)} rows from {source} -> {len(train)} train, {len(test)} test")
