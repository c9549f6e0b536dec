import re

import numpy as np
import pandas as pd
import pytest

from slipway.pipeline import ingest
from slipway.values import (
    ISO_TIME,
    NUMBER_FORMATS,
    datetime_seconds,
    moment_seconds,
    text_number,
    time_format_pattern,
)

MOMENT = 1738315800.0  # 2025-01-31T09:30:00Z


@pytest.mark.parametrize("value", [
    "2025-01-31T09:30:00Z", "2025-01-31T09:30:00", "2025-01-31 09:30", " 2025-01-31T09:30:00.000Z ",
    "2025-01-31T11:30:00+02:00", "2025-01-31T11:30+0200", "2025-01-31T04:30:00-05", "2025-01-31T09:30:00,0Z",
    MOMENT, int(MOMENT), int(MOMENT * 1e3), int(MOMENT * 1e6), int(MOMENT * 1e9),
])
def test_a_time_sent_as_text_or_epoch_number_is_one_moment(value):
    """ISO 8601 with or without a zone (none: UTC, as ingest keeps the timestamp column), or epoch time
    in seconds, ms, us or ns, told apart by size as ingest tells them apart."""
    assert moment_seconds(value) == pytest.approx(MOMENT, abs=1e-6)


def test_a_whole_number_that_is_a_day_is_that_day_as_ingest_reads_it():
    assert moment_seconds(20250131) == moment_seconds("2025-01-31")
    assert moment_seconds(20251399) == 20251399  # no such day: epoch seconds


@pytest.mark.parametrize("value", [
    "31.01.2025", "yesterday", "2025-02-30", "2025-W05-1", "20250131T093000Z", "", True, None, float("nan"),
    float("inf"), [2025], "2025-01-31Z",
])
def test_anything_else_is_no_time(value):
    with pytest.raises(ValueError):
        moment_seconds(value)


@pytest.mark.parametrize("values", [
    [1735689600, 1735776000.5, None], [1735689600000, 1735776000000], [1735689600000000, None],
    [1735689600123456789, 1735776000000000000], [20250101, 20250102, None],
    ["2025-01-01T01:00:00+01:00", "2025-01-02T09:30:00-03:00"], ["2025-01-01", "2025-01-02 09:30:00.25"],
])
def test_the_server_reads_a_time_as_ingest_read_its_column(values):
    """A request's time, read value by value, is the moment ingest made of the column of such values
    in training, in the seconds a derived feature gets there (:func:`datetime_seconds`)."""
    trained = datetime_seconds(ingest.parse_timestamps(pd.DataFrame({"t": values}), "t")["t"])
    served = [np.nan if v is None else moment_seconds(v) for v in values]
    np.testing.assert_allclose(served, trained, rtol=0, atol=1e-6)


def test_dates_become_seconds_since_the_epoch_whatever_their_zone_or_resolution():
    naive = pd.Series(pd.to_datetime(["2025-01-31 09:30", None]))
    zoned = pd.Series(pd.to_datetime(["2025-01-31 18:30"]).tz_localize("Asia/Tokyo"))
    coarse = naive.astype("datetime64[s]")
    for dates in (naive, coarse):
        np.testing.assert_array_equal(datetime_seconds(dates), [MOMENT, np.nan])
    assert datetime_seconds(zoned).tolist() == [MOMENT]


def test_the_time_pattern_is_anchored_and_reads_spaces_around_as_the_server_does():
    assert ISO_TIME.match(" 2025-01-31 ") and not ISO_TIME.match("on 2025-01-31")
    assert not re.fullmatch(ISO_TIME.pattern, "2025-01-31T09:30:00Z trailing")


@pytest.mark.parametrize("number_format", NUMBER_FORMATS)
def test_a_number_sent_as_text_reads_as_ingest_read_a_column_of_such_text(number_format):
    """The server's reading of one text (``text_number``) and ingest's of a column (``read_written``)
    agree in every format ingest reads, on numbers written in it and on text that is not."""
    decimal, thousands = number_format
    written = [f"-1{thousands or ''}234{decimal}5", f" 12{decimal}75 ", f"{decimal}5", "7", "+3e2",
               f"1{thousands or ''}000{thousands or ''}000"]
    texts = written + ["12,5" if thousands == "," else "1 2", "12.", "abc", "1e", "--1", "", "\u0663"]
    column = ingest.read_written(pd.Series([text.strip() for text in texts], dtype=object), number_format)
    for text, read in zip(texts, column, strict=True):
        number = text_number(text, number_format)
        if text in written:
            assert number == read and np.isfinite(number), text
        else:
            assert number is None, text


def test_a_number_text_is_read_with_the_marks_training_read():
    assert text_number("4039.88") == 4039.88
    assert text_number("17,99", (",", None)) == 17.99
    assert text_number("1.234,5", (",", ".")) == 1234.5
    assert text_number("1,234.5") is None  # not with the default marks: a thousands separator there
    assert text_number("1e999") == float("inf")  # the server refuses it as not finite, naming the text


@pytest.mark.parametrize(("time_format", "text"), [
    ("%d.%m.%Y %H:%M", "31.01.2025 09:30"), ("%d.%m.%Y %H:%M", " 31.1.2025  9:30 "), ("%m/%d/%Y", "1/31/2025"),
    ("%Y-%m-%d %H:%M:%S %z", "2025-01-31 11:30:00 +0200"), ("%Y%m%d %H%M%S.%f", "20250131 093000.000000"),
    ("%d %b %Y %H:%M", "31 Jan 2025 09:30"),
])
def test_a_time_in_the_training_format_is_the_moment_ingest_read_it_as(time_format, text):
    """data.timestamp_format: the server reads a time sent in it as ingest read the column; ISO 8601 and
    epoch time still read too."""
    read = ingest.parse_timestamps(pd.DataFrame({"t": [text.strip()]}), "t", time_format)["t"]
    expected = datetime_seconds(read)[0]
    assert moment_seconds(text, time_format) == expected
    assert moment_seconds("2025-01-31", time_format) == moment_seconds("2025-01-31")
    with pytest.raises(ValueError):
        moment_seconds(text)  # not without the format


@pytest.mark.parametrize("time_format", ["%d.%m.%Y %H:%M", "%m/%d/%y", "%Y-%m-%dT%H:%M:%S%z", "%H:%M %d-%m-%Y 100%%"])
@pytest.mark.parametrize("text", ["31.01.2025 09:30", "1/31/25", "12/31/99", "2025-01-31T11:30:00+02:00",
                                  "2025-01-31T11:30:00Z", "09:30 31-01-2025 100%", "31.01.2025", "13/01/25",
                                  "31.01.2025 9:30 extra", "2025-01-31T11:30:00+2", "x", "09:30 31-01-2025 100"])
def test_the_pattern_of_a_time_format_takes_what_strptime_reads(time_format, text):
    """The OpenAPI schema's pattern for text in data.timestamp_format and strptime agree, so the
    schema takes exactly the times the server reads (a day that does not exist aside)."""
    import datetime as dt

    try:
        dt.datetime.strptime(text, time_format)
        parsed = True
    except ValueError:
        parsed = False
    assert bool(re.match(time_format_pattern(time_format), text)) == parsed


def test_a_format_with_names_has_no_pattern_and_is_read_by_strptime():
    assert time_format_pattern("%d %b %Y") is None and time_format_pattern("%I:%M %p") is None
    with pytest.raises(ValueError):
        moment_seconds("31 Foo 2025", "%d %b %Y")
