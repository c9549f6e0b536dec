"""How values are read: what counts as a number (validate's rules, featurize's numeric features) and
what a text value is once read (ingest's training data and the server's requests alike)."""

from __future__ import annotations

import datetime
import functools
import math
import re
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api import types as ptypes


def trimmed(text: str) -> str | None:
    """``text`` without surrounding spaces, ``None`` (missing) if it is spaces only: training reads
    every text value so (``ingest``), and the server reads a request's categories the same way."""
    return text.strip() or None


def missing_text(value: object, markers: frozenset[str] = frozenset()) -> bool:
    """Whether ``value`` is text that means a missing value, as ``ingest`` read it: empty, spaces
    only, or one of ``markers`` (``data.na_values``) once trimmed. The server and the drift job read a
    request's inputs so."""
    return type(value) is str and ((text := trimmed(value)) is None or text in markers)


def label_number(label: str) -> int | float | None:
    """The number a category label is the text of (``"2"``: 2, ``"2.0"``: 2.0), else ``None``:
    ``"007"`` and ``"1e3"`` are codes, not the numbers 7 and 1000."""
    for kind in (int, float):
        try:
            number = kind(label)
        except ValueError:
            continue
        finite = kind is int or math.isfinite(number)
        return number if finite and str(number) == label else None
    return None


def number_label(value: int | float, labels: Collection[str]) -> str:
    """The category label a number stands for: its text when that is a label, else the label of the
    same value (:func:`label_number`). JSON's ``2`` and ``2.0`` are one number (so are they to a JSON
    Schema enum), and a client's encoder may write either (pandas writes an integer column holding a
    null as floats). The server and the drift job read a request's categories so."""
    text = str(value)
    if text in labels:
        return text
    return next((label for label in labels if (number := label_number(label)) is not None and number == value), text)


def spelling(text: str) -> str:
    """What two spellings of one category share: case aside, surrounding spaces, and the spaces,
    hyphens, underscores or dots between two letters or digits (``North-East``, ``north east``).
    Signs stay, so the grades ``A+`` and ``A`` are two categories. validate reads labels so, the
    gate a feature's categories, and the server names the known spelling of a request's value."""
    return re.sub(r"(?<=\w)[\s_.-]+(?=\w)", "", text.strip().casefold())


def as_numbers(values: pd.Series) -> pd.Series:
    """``values`` as floats, NaN where a value is missing or not a number. Numbers stored as text (a
    Parquet string column, ``"12.5"``, ``"inf"``) are numbers, as :meth:`FeatureSpec.transform`
    reads them; booleans and dates are not."""
    if ptypes.is_numeric_dtype(values) and not ptypes.is_bool_dtype(values):
        return values.astype("float64")
    if not (ptypes.is_object_dtype(values) or ptypes.is_string_dtype(values)
            or isinstance(values.dtype, pd.CategoricalDtype)):
        return pd.Series(np.nan, index=values.index)
    objects = values.astype(object)
    flags = objects.map(lambda v: isinstance(v, bool | np.bool_))
    return pd.to_numeric(objects.where(~flags), errors="coerce").astype("float64")


# Numbers as dates, as ingest reads a timestamp column of numbers and the server a time sent as a
# number: whole numbers in this range that are dates (20250131) are days; any other number is epoch
# time, its unit read from its size: seconds below 1e11 (the year 5138), then milliseconds,
# microseconds, nanoseconds. (Read as nanoseconds, epoch seconds would all be a moment of 1970; read
# as seconds, 20250131 would be in August 1970.)
YYYYMMDD_RANGE = (10000101, 99991231)
EPOCH_UNITS = ((1e11, "s", 1.0), (1e14, "ms", 1e-3), (1e17, "us", 1e-6), (math.inf, "ns", 1e-9))


def epoch_unit(magnitude: float) -> tuple[str, float]:
    """The unit of epoch numbers of this size, and its length in seconds."""
    return next((unit, seconds) for bound, unit, seconds in EPOCH_UNITS if magnitude < bound)


def datetime_seconds(values: pd.Series) -> np.ndarray:
    """Dates as seconds since 1970-01-01 UTC (missing: NaN): how a derived feature gets an input that
    training holds as dates (the timestamp column), and the server a time sent (:func:`moment_seconds`).
    Naive dates are UTC, as ingest leaves the timestamp column."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    return (values - pd.Timestamp(0)).dt.total_seconds().to_numpy(dtype="float64")


# A time as text: ISO 8601's extended forms, a date with or without a time of day and a zone
# (2025-01-31, 2025-01-31T09:30:00.5Z, 2025-01-31 09:30+02:00). The OpenAPI schema says the same.
ISO_TIME = re.compile(r"^\s*\d{4}-\d{2}-\d{2}"
                      r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?\s*$")


def pattern_text(text: str) -> str:
    """``text`` as itself in a regex that means the same in Python and in JSON Schema (ECMA 262):
    only the metacharacters escaped, so a space, a quote or a comma stays bare, as ECMA's unicode
    mode requires (``re.escape`` would write ``\\ ``, which it refuses)."""
    return re.sub(r"[\\^$.*+?()[\]{}|]", r"\\\g<0>", text)


# What the numeric directives of a strptime format (data.timestamp_format) match, for the pattern of
# :func:`time_format_pattern`: the values strptime takes, but a day or month not padded with a space.
# Digits are 0-9 and nothing depends on case, so the pattern means the same in JSON Schema.
TIME_DIRECTIVES = {
    "Y": "[0-9]{4}", "y": "[0-9]{2}", "m": "(?:1[0-2]|0?[1-9])", "d": "(?:3[01]|[12][0-9]|0?[1-9])",
    "H": "(?:2[0-3]|[01]?[0-9])", "M": "[0-5]?[0-9]", "S": "(?:6[01]|[0-5]?[0-9])", "f": "[0-9]{1,6}",
    "z": "(?:Z|[+-][0-9]{2}:?[0-5][0-9](?::?[0-5][0-9](?:[.][0-9]{1,6})?)?)", "%": "%",
}


@functools.cache
def time_format_pattern(time_format: str) -> str | None:
    """The text ``time_format`` (a strptime format) writes, as an anchored regex, spaces around it or
    not; ``None`` if it has a directive other than :data:`TIME_DIRECTIVES` (month names, AM/PM): such
    text is told by strptime alone."""
    parts = []
    for literal, directive in re.findall(r"([^%]*)(?:%(.)|$)", time_format):
        # A run of spaces in the format takes any run of them, as in strptime; other text is itself.
        parts.append(re.sub(r"\s+", r"\\s+", pattern_text(literal)))
        if directive:
            if directive not in TIME_DIRECTIVES:
                return None
            parts.append(TIME_DIRECTIVES[directive])
    return rf"^\s*{''.join(parts)}\s*$"


def _formatted_moment(text: str, time_format: str) -> datetime.datetime:
    pattern = time_format_pattern(time_format)
    if pattern is not None and not re.match(pattern, text):
        raise ValueError(f"{text!r} is not written as {time_format!r}")
    return datetime.datetime.strptime(text.strip(), time_format)


def moment_seconds(value: object, time_format: str | None = None) -> float:
    """A time sent to the server (or logged by it) for an input training held as dates, as seconds
    since 1970-01-01 UTC, the form :func:`datetime_seconds` gives training: ISO 8601 text
    (:data:`ISO_TIME`), or text in ``time_format`` (``data.timestamp_format``, which training read it
    in), with a time zone converted to UTC, without one UTC; or a finite number, read as ingest reads a
    column of numbers (:data:`EPOCH_UNITS`). ``ValueError`` for anything else."""
    if isinstance(value, str):
        if ISO_TIME.match(value):
            stamp = datetime.datetime.fromisoformat(value.strip())
        elif time_format is not None:
            stamp = _formatted_moment(value, time_format)
        else:
            raise ValueError(f"{value!r} is no ISO 8601 time")
        return (stamp if stamp.tzinfo else stamp.replace(tzinfo=datetime.UTC)).timestamp()
    if type(value) not in (int, float) or not math.isfinite(value):
        raise ValueError(f"{value!r} is no time")
    if value == int(value) and YYYYMMDD_RANGE[0] <= value <= YYYYMMDD_RANGE[1]:
        try:
            day = datetime.datetime.strptime(str(int(value)), "%Y%m%d")
        except ValueError:  # 20251399: no date, so epoch time
            pass
        else:
            return day.replace(tzinfo=datetime.UTC).timestamp()
    return value * epoch_unit(abs(value))[1]


# Ways of writing a number as text, as (decimal mark, thousands separator): what the CSV settings
# data.decimal and data.thousands read. The first is pandas' (and Python's) own.
NUMBER_FORMATS: tuple[tuple[str, str | None], ...] = (
    (".", None), (",", None), (".", ","), (",", "."), (".", "'"), (".", " "), (",", " "))


@dataclass(frozen=True)
class TextNumbers:
    """How a column of text reads as numbers: the format that reads the most of its distinct values
    (``numbers``, with each one's row count), and the values it does not (``others``)."""

    number_format: tuple[str, str | None]
    numbers: pd.Series  # row count by distinct value
    others: pd.Series
    rivals: tuple[tuple[str, str | None], ...]  # formats that read as many, as other numbers

    @property
    def share(self) -> float:
        rows = self.numbers.sum() + self.others.sum()
        return float(self.numbers.sum() / rows) if rows else 0.0

    def read_by(self, number_format: tuple[str, str | None]) -> bool:
        """Whether ``number_format`` reads every one of these numbers."""
        texts = pd.Series(self.numbers.index, dtype=object)
        return bool(np.isfinite(read_written(texts, number_format)).all())

    def advice(self, configured: tuple[str, str | None] = NUMBER_FORMATS[0]) -> str:
        """The settings that read these numbers, with rivals each reading to choose from; or, where
        the ``configured`` settings (``data.decimal``, ``data.thousands``) mark decimals or thousands
        otherwise, that the column is written otherwise than they say."""
        marks = [mark for mark in self.number_format if mark and mark != "."]
        example = next((text for text in self.numbers.index if any(mark in text for mark in marks)),
                       self.numbers.index[0])
        readings = (self.number_format, *self.rivals)
        if configured != NUMBER_FORMATS[0]:
            # A reading that keeps the configured decimal mark (a German export's '1.234', read as
            # thousands) is a setting to add; one that does not, a column written otherwise.
            agreeing = tuple(f for f in readings if f[0] == configured[0] and not (f[1] and configured[1]))
            if not agreeing:
                decimal, thousands = self.number_format
                written = f"{decimal!r} as the decimal mark" + (f" and {thousands!r} between thousands"
                                                                 if thousands else "")
                return (f"numbers written like {example!r}, with {written}, which the settings "
                        f"{settings(configured)} do not read: "
                        "write the column as the others are written, or convert it where the batches are read "
                        "(slipway/model/loading.py)")
            readings = agreeing
        needed = " or ".join(settings(f) + (_meaning(f) if self.rivals else "") for f in readings)
        return f"numbers written like {example!r}: set {needed}"


def settings(number_format: tuple[str, str | None]) -> str:
    """The params that read numbers written in ``number_format``."""
    decimal, thousands = number_format
    return " and ".join(([f"data.decimal: {decimal!r}"] if decimal != "." else [])
                        + ([f"data.thousands: {thousands!r}"] if thousands else []))


def _meaning(number_format: tuple[str, str | None]) -> str:
    decimal, thousands = number_format
    said = ([f"{decimal!r} is the decimal mark"] if decimal != "." else []) + \
        ([f"{thousands!r} groups thousands"] if thousands else [])
    return f" (if {' and '.join(said)})"


# Text that could be a number in one of NUMBER_FORMATS: digits, a sign, marks and an exponent.
NUMBER_LIKE = r"[+-]?[\d.,' ]*\d[\d.,' ]*(?:[eE][+-]?\d+)?"


def written_like(number_format: tuple[str, str | None]) -> str:
    """A number as ``number_format`` writes it: ``-1,234.5``, ``-1.234,5``, ``-1234,5``."""
    decimal, thousands = number_format
    return f"-1{thousands or ''}234{decimal}5"


def number_pattern(number_format: tuple[str, str | None]) -> str:
    """A number written in ``number_format``, strictly: a thousands separator groups three digits
    (``12,5`` is no number with thousands ``,``), a decimal mark has digits after it, and digits are
    0-9 (Python's ``\\d`` would take other scripts' digits, which JSON Schema's does not)."""
    # The OpenAPI description of a request states this pattern too.
    decimal, thousands = (pattern_text(mark) if mark else None for mark in number_format)
    integer = rf"[0-9]{{1,3}}(?:{thousands}[0-9]{{3}})+|[0-9]+" if thousands else "[0-9]+"
    return rf"[+-]?(?:(?:{integer})(?:{decimal}[0-9]+)?|{decimal}[0-9]+)(?:[eE][+-]?[0-9]+)?"


def read_written(texts: pd.Series, number_format: tuple[str, str | None]) -> pd.Series:
    """``texts`` as numbers written in ``number_format`` (:func:`number_pattern`), NaN where they are not."""
    if number_format == NUMBER_FORMATS[0]:
        return as_numbers(texts)
    written = texts.str.fullmatch(number_pattern(number_format), na=False)
    plain = texts.where(written).str.replace(number_format[1] or "", "", regex=False) \
        .str.replace(number_format[0], ".", regex=False)
    return pd.to_numeric(plain, errors="coerce")


@functools.cache
def _number_text(number_format: tuple[str, str | None]) -> re.Pattern:
    return re.compile(number_pattern(number_format))


def text_number(text: str, number_format: tuple[str, str | None] = NUMBER_FORMATS[0]) -> float | None:
    """The number ``text`` writes in ``number_format`` (``data.decimal``, ``data.thousands``), spaces
    around it or not, as ingest read a column of such text; ``None`` if it writes none. The server
    reads a number sent as text so (a client's CSV column of numbers with a blank in it is text)."""
    text = text.strip()
    if not _number_text(number_format).fullmatch(text):
        return None
    decimal, thousands = number_format
    if thousands:
        text = text.replace(thousands, "")
    return float(text.replace(decimal, "."))


def text_numbers(values: pd.Series) -> TextNumbers | None:
    """How ``values`` (a text column) would read as numbers, or ``None`` if it is not text or no
    value is a number in any of :data:`NUMBER_FORMATS`. Looks at each distinct value once."""
    present = values.dropna()
    if present.empty or not (ptypes.is_object_dtype(present) or ptypes.is_string_dtype(present)):
        return None
    if isinstance(present.dtype, pd.CategoricalDtype):  # a Parquet dictionary column: its values, not
        present = present.astype(object)  # every category of its dtype (counted 0 where absent)
    counts = present.value_counts()  # each distinct value once: a category column has few
    if pd.api.types.infer_dtype(counts.index, skipna=False) != "string":  # 1 and "1" are one text
        counts = counts.groupby(counts.index.map(str)).sum().sort_values(ascending=False, kind="stable")
    texts = pd.Series(counts.index, index=counts.index)
    # Only digits, signs and marks can be a number in the other formats: words are looked at once.
    marked = texts[texts.str.fullmatch(NUMBER_LIKE, na=False)]
    readings = {f: read_written(texts, f) if f == NUMBER_FORMATS[0] else read_written(marked, f).reindex(texts.index)
                for f in NUMBER_FORMATS}
    read = {f: np.isfinite(numbers) for f, numbers in readings.items()}  # "inf" is no measurement
    best = max(NUMBER_FORMATS, key=lambda f: read[f].sum())  # the first of equals
    reads = read[best]
    if not reads.any():
        return None
    rivals = tuple(f for f in NUMBER_FORMATS if f != best and read[f].sum() == reads.sum()
                   and not readings[f].equals(readings[best]))
    return TextNumbers(best, counts[reads], counts[~reads], rivals)


def written_numbers_advice(values: pd.Series,
                           configured: tuple[str, str | None] = NUMBER_FORMATS[0]) -> str | None:
    """The settings that read ``values``, text, as numbers, if some do, no value is left and the
    ``configured`` ones (``data.decimal``, ``data.thousands``) do not."""
    read = text_numbers(values)
    if read is None or len(read.others) or read.read_by(configured):
        return None
    return read.advice(configured)
