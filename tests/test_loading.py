import re

import pandas as pd
import pytest

from slipway.errors import DataError
from slipway.model import loading
from tests.conftest import UNLISTABLE_S3


@pytest.fixture
def batches(tmp_path):
    folder = tmp_path / "raw"
    folder.mkdir()
    pd.DataFrame({"x": [1, 2]}).to_csv(folder / "2025-02.csv", index=False)
    pd.DataFrame({"x": [3]}).to_parquet(folder / "2025-01.parquet")
    (folder / "notes.txt").write_text("ignored")
    (folder / ".hidden.csv").write_text("x\n9\n")
    return folder


def test_directory_reads_every_batch_in_name_order(batches):
    frame = loading.load_raw(str(batches))
    assert frame["x"].tolist() == [3, 1, 2]
    assert frame["__batch__"].tolist() == ["2025-01.parquet", "2025-02.csv", "2025-02.csv"]


def test_a_batch_with_a_header_but_no_rows_is_named(batches, capsys):
    """Read (a month may have had no events), and said: an empty export is most often a failed one."""
    (batches / "2025-03.csv").write_text("x\n")
    frame = loading.load_raw(str(batches))
    assert frame["x"].tolist() == [3, 1, 2] and frame["x"].dtype == "int64"  # not text, as the empty file's column
    assert capsys.readouterr().err == "ingest: warning: no rows in 2025-03.csv\n"


def test_format_and_pattern_filter(batches):
    assert loading.load_raw(str(batches), "csv")["x"].tolist() == [1, 2]
    assert loading.load_raw(str(batches), pattern="*.parquet")["x"].tolist() == [3]
    assert loading.load_raw(str(batches), pattern="2025-0[2-9].*")["x"].tolist() == [1, 2]
    assert loading.load_raw(str(batches / "2025-02.csv"))["x"].tolist() == [1, 2]
    with pytest.raises(DataError, match=r"no CSV or Parquet files matching data.pattern '2024-\*' in"):
        loading.load_raw(str(batches), pattern="2024-*")


def test_a_glob_source_is_refused_with_the_way_to_say_it(batches):
    """DVC tracks data.source as the ingest stage's dependency, and cannot track a glob."""
    with pytest.raises(DataError) as refused:
        loading.load_raw(str(batches / "*.csv"))
    assert str(refused.value) == (f"data.source: {batches}/*.csv is a glob, which DVC cannot track as a "
                                  "dependency; set data.source to the directory and data.pattern to the "
                                  "file-name glob")


def test_missing_or_empty_sources_are_named(tmp_path, batches):
    with pytest.raises(DataError, match="does not exist"):
        loading.load_raw(str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="no parquet files in"):
        loading.load_raw(str(batches / "2025-02.csv"), "parquet")


@pytest.mark.parametrize("separator", [",", ";", "\t", "|"])
def test_a_csvs_separator_is_the_one_its_header_uses(tmp_path, separator):
    """Spreadsheet exports in much of Europe use ';', database dumps tabs or '|': read as one
    column, every feature would be missing."""
    frame = pd.DataFrame({"unit price": [1.5, 2.0], "colour, finish": ["red", "blue"], "bought": ["y", "n"]})
    path = tmp_path / "batch.csv"
    frame.to_csv(path, sep=separator, index=False)
    assert loading.load_raw(str(path)).drop(columns="__batch__").equals(frame)


def test_a_named_separator_wins_and_a_header_without_one_is_one_column(tmp_path):
    path = tmp_path / "batch.csv"
    path.write_text("a;b|c\n1;2|3\n")
    assert list(loading.load_raw(str(path), separator="|").columns[:2]) == ["a;b", "c"]
    assert list(loading.load_raw(str(path)).columns[:2]) == ["a", "b|c"]  # ';' and '|' tie: the earlier
    path.write_text("x\n1\n")
    assert loading.load_raw(str(path))["x"].tolist() == [1]


def test_a_csv_in_another_encoding_is_read_once_named_and_the_error_says_how(tmp_path):
    """A Windows spreadsheet export is cp1252, not UTF-8; a UTF-8 one may start with a byte order
    mark, which must not end up in the first column's name."""
    path = tmp_path / "batch.csv"
    path.write_text("région;ventes\nÎle-de-France;3\n", encoding="cp1252")
    with pytest.raises(DataError, match=r"batch.csv: cannot be read as utf-8: .*; name the file's encoding "
                                        r"in data.encoding \(cp1252 for most Windows exports\)"):
        loading.load_raw(str(path))
    frame = loading.load_raw(str(path), encoding="cp1252")
    assert frame.columns[:2].tolist() == ["région", "ventes"] and frame["région"][0] == "Île-de-France"
    path.write_text("région;ventes\nÎle-de-France;3\n", encoding="utf-8-sig")
    assert loading.load_raw(str(path)).columns[:2].tolist() == ["région", "ventes"]


@pytest.mark.parametrize(("source", "problem"), UNLISTABLE_S3)
def test_a_source_that_cannot_be_listed_is_named(no_aws_credentials, source, problem):
    with pytest.raises(DataError, match=f"^data.source: {source} cannot be listed: {problem}"):
        loading.load_raw(source)


def test_unreadable_file_is_named(tmp_path):
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(DataError, match="bad.parquet: not a readable Parquet file"):
        loading.load_raw(str(bad))


def test_an_empty_file_is_named_as_such(batches):
    (batches / "2025-03.csv").write_bytes(b"")
    with pytest.raises(DataError, match=r"2025-03.csv: an empty file, without even a header line: an export that "
                                        r"failed\? \(a batch with no rows still needs its header\)$"):
        loading.load_raw(str(batches))


def test_a_header_naming_a_column_twice_is_refused(tmp_path):
    repeated = tmp_path / "repeated.csv"
    repeated.write_text("x;y;x;y;z\n1;2;3;4;5\n")
    with pytest.raises(DataError, match=r"repeated.csv: the header names these columns more than once: "
                                        r"\['x', 'y'\]; give each column its own name"):
        loading.load_raw(str(repeated))
    written = tmp_path / "written.csv"  # named so by its author: what pandas would rename to
    written.write_text("x,x.1,y\n1,2,3\n")
    assert list(loading.load_raw(str(written)).columns) == ["x", "x.1", "y", "__batch__"]


def test_a_row_with_more_fields_than_the_header_is_refused_not_shifted(tmp_path):
    """pandas took the first row's extra field as a sign of an index column and moved every value
    under the next column's name: ids became tenures, and the last column filled with nulls."""
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("id,tenure,plan\n1,12,basic,oops\n2,30,premium\n")
    with pytest.raises(DataError, match=r"^.*ragged.csv: a row has more fields than the header has names, and its "
                                        r"last ones would be lost: the header lacks a name, or a value holds "
                                        r"the separator ',' unquoted$"):
        loading.load_raw(str(ragged))
    trailing = tmp_path / "trailing.csv"  # a separator closing every row is an export's habit, not data
    trailing.write_text("id,tenure,plan\n1,12,basic,\n2,30,premium,\n")
    assert loading.load_raw(str(trailing)).drop(columns="__batch__").to_dict("list") == {
        "id": [1, 2], "tenure": [12, 30], "plan": ["basic", "premium"]}


def test_an_unnamed_column_with_values_is_refused_and_an_empty_one_dropped(tmp_path):
    """pandas names an empty header cell 'Unnamed: 0': written by to_csv with its default index,
    the row numbers became a feature the server then required in every request."""
    indexed = tmp_path / "indexed.csv"
    pd.DataFrame({"id": [7, 8], "plan": ["basic", "premium"]}).to_csv(indexed)  # index=True: ",id,plan"
    with pytest.raises(DataError, match=r"indexed.csv: the header has no name for column 1 \(e.g. 0\): a pandas "
                                        r"index written by to_csv \(write it with index=False\)\? Name the column"):
        loading.load_raw(str(indexed))
    closed = tmp_path / "closed.csv"  # every line, the header too, ends in a separator: no column there
    closed.write_text("id,plan,\n7,basic,\n8,premium,\n")
    assert list(loading.load_raw(str(closed)).columns) == ["id", "plan", "__batch__"]
    written = tmp_path / "written.csv"  # named so by its author
    written.write_text("id,Unnamed: 0\n7,1\n")
    assert list(loading.load_raw(str(written)).columns) == ["id", "Unnamed: 0", "__batch__"]


def test_a_parquet_index_is_read_back_as_its_column(tmp_path):
    """``df.set_index("id").to_parquet()`` stores the id as the index: concatenated without it,
    the column was simply gone."""
    pd.DataFrame({"id": [7, 8], "x": [1.0, 2.0]}).set_index("id").to_parquet(tmp_path / "a.parquet")
    pd.DataFrame({"id": [9], "x": [3.0]}).to_parquet(tmp_path / "b.parquet")
    frame = loading.load_raw(str(tmp_path))
    assert frame[["id", "x"]].to_dict("list") == {"id": [7, 8, 9], "x": [1.0, 2.0, 3.0]}


@pytest.mark.parametrize(("column", "message"), [
    ("", "a column has an empty name; name every column"),
    ("__batch__", "a column is named '__batch__', which ingest uses for the file each row came from; rename it"),
])
def test_a_column_name_ingest_cannot_keep_is_refused(tmp_path, column, message):
    pd.DataFrame({"x": [1], column: [2]}).to_parquet(tmp_path / "a.parquet")
    with pytest.raises(DataError, match=f"a.parquet: {re.escape(message)}$"):
        loading.load_raw(str(tmp_path))


def test_a_date_pandas_cannot_hold_is_named(tmp_path):
    """Parquet holds 9999-12-31 (a common 'no end' placeholder); pandas' nanoseconds end in 2262,
    and concatenating the batch was an OutOfBoundsDatetime traceback."""
    import datetime

    import pyarrow as pa
    import pyarrow.parquet as pq

    pd.DataFrame({"t": pd.to_datetime(["2025-01-01"])}).to_parquet(tmp_path / "a.parquet")
    pq.write_table(pa.table({"t": pa.array([datetime.datetime(2025, 2, 1), datetime.datetime(9999, 12, 31)],
                                           pa.timestamp("ms"))}), tmp_path / "b.parquet")
    with pytest.raises(DataError, match=r"b.parquet: column 't' holds 1 date\(s\) outside the years 1677-2262 "
                                        r"that pandas can hold, e.g. '9999-12-31 00:00:00'; make such "
                                        r"placeholders null"):
        loading.load_raw(str(tmp_path))


def test_batches_with_other_columns_are_refused_with_every_difference(tmp_path):
    folder = tmp_path / "raw"
    folder.mkdir()
    pd.DataFrame({"x": [1], "y": [0]}).to_csv(folder / "2025-01.csv", index=False)
    pd.DataFrame({"x": [2], "y": [1]}).to_csv(folder / "2025-02.csv", index=False)
    pd.DataFrame({"x": [3], "z": [1]}).to_csv(folder / "2025-03.csv", index=False)
    pd.DataFrame({"y": [0], "x": [4], "w": [5]}).to_csv(folder / "2025-04.csv", index=False)
    with pytest.raises(DataError) as refused:
        loading.load_raw(str(folder))
    assert str(refused.value) == (
        f"batches disagree on columns (against {folder}/2025-01.csv): "
        f"{folder}/2025-03.csv lacks ['y'] and adds ['z']; {folder}/2025-04.csv adds ['w']")
