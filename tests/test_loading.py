
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
    # Spark's partial files of a failed job, a notebook's copies: no batches, as pyarrow reads a dataset.
    for copy in ("_temporary/0/part-0.csv", ".ipynb_checkpoints/2025-02-checkpoint.csv", "_2025-03.csv"):
        (folder / copy).parent.mkdir(parents=True, exist_ok=True)
        (folder / copy).write_text("x\n9\n")
    return folder


def read_one(source, **options) -> pd.DataFrame:
    """The frame of a source holding one batch."""
    (frame,) = loading.read_batches(str(source), **options).values()
    return frame


def test_directory_reads_every_batch_in_name_order_by_its_path_within_the_source(batches):
    (batches / "2025-06").mkdir()
    pd.DataFrame({"x": [4]}).to_csv(batches / "2025-06" / "day-1.csv", index=False)
    read = loading.read_batches(str(batches))
    assert list(read) == ["2025-01.parquet", "2025-02.csv", "2025-06/day-1.csv"]
    assert [frame["x"].tolist() for frame in read.values()] == [[3], [1, 2], [4]]
    assert list(loading.read_batches(str(batches / "2025-06"))) == ["day-1.csv"]


def test_hive_partitions_are_read_back_as_the_columns_their_directories_name(tmp_path, churn):
    """Spark, Athena and pyarrow leave a partition column out of the files: the month was 'not in
    the data'. Integers stay integers, text stays text, Hive's null directory is a missing value."""
    data = churn.assign(year=churn["event_timestamp"].dt.year, month=churn["event_timestamp"].dt.strftime("%Y-%m"))
    data.to_parquet(tmp_path / "lake", partition_cols=["year", "month"])
    (tmp_path / "lake" / "_SUCCESS").write_text("")
    read = loading.read_batches(str(tmp_path / "lake"))
    assert [name.rsplit("/", 1)[0] for name in read] == ["year=2025/month=2025-01", "year=2025/month=2025-02",
                                                          "year=2025/month=2025-03"]
    frame = pd.concat(read.values(), ignore_index=True)
    assert sorted(frame.columns) == sorted(data.columns)
    assert frame["year"].dtype == "int64" and frame["month"].value_counts().to_dict() == \
        data["month"].value_counts().to_dict()
    # A pattern with a / picks partitions by their path below the source.
    picked = loading.read_batches(str(tmp_path / "lake"), pattern="year=2025/month=2025-0[12]/*")
    assert [name.rsplit("/", 1)[0] for name in picked] == ["year=2025/month=2025-01", "year=2025/month=2025-02"]
    # A single month's directory as the source: the key is above it, so not a column.
    assert "month" not in read_one(next((tmp_path / "lake" / "year=2025").iterdir()))

    nulls = tmp_path / "nulls"
    for directory, x in (("region=north%2Feast", 1), ("region=__HIVE_DEFAULT_PARTITION__", 2), ("size=10", 3)):
        (nulls / directory).mkdir(parents=True)
        pd.DataFrame({"x": [x]}).to_parquet(nulls / directory / "part-0.parquet")
    read = loading.read_batches(str(nulls))
    assert [frame.to_dict("records") for frame in read.values()] == [
        [{"x": 2, "region": None}], [{"x": 1, "region": "north/east"}], [{"x": 3, "size": 10}]]
    (nulls / "region=north%2Feast" / "part-0.parquet").unlink()
    read = loading.read_batches(str(nulls), pattern="*.parquet")
    assert read["size=10/part-0.parquet"]["size"].tolist() == [10]


def test_format_and_pattern_filter(batches):
    assert list(loading.read_batches(str(batches), "csv")) == ["2025-02.csv"]
    assert list(loading.read_batches(str(batches), pattern="*.parquet")) == ["2025-01.parquet"]
    assert list(loading.read_batches(str(batches), pattern="2025-0[2-9].*")) == ["2025-02.csv"]
    assert {name: frame["x"].tolist() for name, frame in loading.read_batches(str(batches / "2025-02.csv")).items()} \
        == {"2025-02.csv": [1, 2]}
    with pytest.raises(DataError, match=r"no CSV or Parquet files matching data.pattern '2024-\*' in"):
        loading.read_batches(str(batches), pattern="2024-*")


def test_a_glob_source_is_refused_with_the_way_to_say_it(batches):
    """DVC tracks data.source as the ingest stage's dependency, and cannot track a glob."""
    with pytest.raises(DataError) as refused:
        loading.read_batches(str(batches / "*.csv"))
    assert str(refused.value) == (f"data.source: {batches}/*.csv is a glob, which DVC cannot track as a "
                                  "dependency; set data.source to the directory and data.pattern to the "
                                  "file-name glob")


def test_missing_or_empty_sources_are_named(tmp_path, batches):
    with pytest.raises(DataError, match="does not exist"):
        loading.read_batches(str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="no parquet files in"):
        loading.read_batches(str(batches / "2025-02.csv"), "parquet")


@pytest.mark.parametrize("separator", [",", ";", "\t", "|"])
def test_a_csvs_separator_is_the_one_its_header_uses(tmp_path, separator):
    """Spreadsheet exports in much of Europe use ';', database dumps tabs or '|': read as one
    column, every feature would be missing."""
    frame = pd.DataFrame({"unit price": [1.5, 2.0], "colour, finish": ["red", "blue"], "bought": ["y", "n"]})
    path = tmp_path / "batch.csv"
    frame.to_csv(path, sep=separator, index=False)
    assert read_one(path).equals(frame)


@pytest.mark.parametrize("compression", ["gz", "bz2", "xz", "zip"])
def test_a_compressed_csv_is_a_batch_read_like_any_other(tmp_path, compression):
    """Exports are often compressed: 'export.csv.gz' was not a batch, so 'no CSV or Parquet files'."""
    pd.DataFrame({"unit price": [1.5, -2.25], "colour": ["red", "blue"]}).to_csv(
        tmp_path / f"export.csv.{compression}", sep=";", decimal=",", index=False)
    (tmp_path / "notes.txt.gz").write_bytes(b"")  # not a CSV, compressed or not
    read = loading.read_batches(str(tmp_path), fmt="csv", decimal=",")
    assert list(read) == [f"export.csv.{compression}"]  # the separator was sniffed through the compression
    assert read[f"export.csv.{compression}"].to_dict("list") == {"unit price": [1.5, -2.25], "colour": ["red", "blue"]}


@pytest.mark.parametrize(("members", "message"), [
    ([], r"a zip file of 0 files \[\]; zip one CSV a batch"),  # was "cannot be read: list index out of range"
    (["a.csv", "b.csv"], r"a zip file of 2 files \['a.csv', 'b.csv'\]; zip one CSV a batch"),
])
def test_a_zipped_batch_holds_one_csv(tmp_path, members, message):
    import zipfile

    with zipfile.ZipFile(tmp_path / "export.csv.zip", "w") as archive:
        for member in members:
            archive.writestr(member, "a,b\n1,2\n")
    with pytest.raises(DataError, match=message):
        read_one(tmp_path / "export.csv.zip")


def test_a_decimal_comma_is_read_when_data_decimal_says_so(tmp_path):
    path = tmp_path / "batch.csv"
    path.write_text("unit price;colour\n1,5;red\n-2,25;blue\n")
    assert read_one(path, decimal=",")["unit price"].tolist() == [1.5, -2.25]
    assert read_one(path)["unit price"].tolist() == ["1,5", "-2,25"]  # text: featurize names the setting
    path.write_text("unit price,colour\n1,red\n")
    with pytest.raises(DataError, match="its header is separated by ',', which data.decimal makes the decimal mark"):
        read_one(path, decimal=",")


def test_numbers_with_thousands_separators_are_left_as_text_for_ingest_to_read_strictly(tmp_path):
    """pandas' own thousands reading would take '12,5' for 125; ingest reads them (written_numbers)."""
    path = tmp_path / "batch.csv"
    path.write_text('amount,colour\n"1,234.50",red\n"12,5",blue\n')
    assert read_one(path)["amount"].tolist() == ["1,234.50", "12,5"]


def test_a_csv_written_with_comma_space_reads_numbers_names_and_markers(tmp_path):
    """UCI's Adult writes ', ' between fields: ' 2174' was text, so its column became categories."""
    path = tmp_path / "adult.csv"
    path.write_text("age, workclass, capital_gain\n39, State-gov, 2174\n50, ?, ?\n")
    frame = read_one(path, na_values=["?"])
    assert list(frame.columns) == ["age", "workclass", "capital_gain"]
    assert frame["capital_gain"].tolist()[0] == 2174 and frame["capital_gain"].isna().tolist() == [False, True]
    assert frame["workclass"].tolist()[0] == "State-gov" and frame["workclass"].isna().iloc[1]


def test_a_named_separator_wins_and_a_header_without_one_is_one_column(tmp_path):
    path = tmp_path / "batch.csv"
    path.write_text("a;b|c\n1;2|3\n")
    assert list(read_one(path, separator="|").columns[:2]) == ["a;b", "c"]
    assert list(read_one(path).columns[:2]) == ["a", "b|c"]  # ';' and '|' tie: the earlier
    path.write_text("x\n1\n")
    assert read_one(path)["x"].tolist() == [1]


def test_a_csv_in_another_encoding_is_read_once_named_and_the_error_says_how(tmp_path):
    """A Windows spreadsheet export is cp1252, not UTF-8; a UTF-8 one may start with a byte order
    mark, which must not end up in the first column's name."""
    path = tmp_path / "batch.csv"
    path.write_text("région;ventes\nÎle-de-France;3\n", encoding="cp1252")
    with pytest.raises(DataError, match=r"batch.csv: cannot be read as utf-8: .*; name the file's encoding "
                                        r"in data.encoding \(cp1252 for most Windows exports\)"):
        read_one(path)
    frame = read_one(path, encoding="cp1252")
    assert frame.columns[:2].tolist() == ["région", "ventes"] and frame["région"][0] == "Île-de-France"
    path.write_text("région;ventes\nÎle-de-France;3\n", encoding="utf-8-sig")
    assert read_one(path).columns[:2].tolist() == ["région", "ventes"]


@pytest.mark.parametrize(("source", "problem"), UNLISTABLE_S3)
def test_a_source_that_cannot_be_listed_is_named(no_aws_credentials, source, problem):
    with pytest.raises(DataError, match=f"^data.source: {source} cannot be listed: {problem}"):
        loading.read_batches(source)


def test_unreadable_file_is_named(tmp_path):
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(DataError, match="bad.parquet: not a readable Parquet file"):
        read_one(bad)


def test_an_empty_file_is_named_as_such(batches):
    (batches / "2025-03.csv").write_bytes(b"")
    with pytest.raises(DataError, match=r"2025-03.csv: an empty file, without even a header line: an export that "
                                        r"failed\? \(a batch with no rows still needs its header\)$"):
        loading.read_batches(str(batches))


def test_a_header_naming_a_column_twice_is_refused(tmp_path):
    repeated = tmp_path / "repeated.csv"
    repeated.write_text("x;y;x;y;z\n1;2;3;4;5\n")
    with pytest.raises(DataError, match=r"repeated.csv: the header names these columns more than once: "
                                        r"\['x', 'y'\]; give each column its own name"):
        read_one(repeated)
    written = tmp_path / "written.csv"  # named so by its author: what pandas would rename to
    written.write_text("x,x.1,y\n1,2,3\n")
    assert list(read_one(written).columns) == ["x", "x.1", "y"]


def test_a_row_with_more_fields_than_the_header_is_refused_not_shifted(tmp_path):
    """pandas took the first row's extra field as a sign of an index column and moved every value
    under the next column's name: ids became tenures, and the last column filled with nulls."""
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("id,tenure,plan\n1,12,basic,oops\n2,30,premium\n")
    with pytest.raises(DataError, match=r"^.*ragged.csv: a row has more fields than the header has names, and its "
                                        r"last ones would be lost: the header lacks a name, or a value holds "
                                        r"the separator ',' unquoted$"):
        read_one(ragged)
    trailing = tmp_path / "trailing.csv"  # a separator closing every row is an export's habit, not data
    trailing.write_text("id,tenure,plan\n1,12,basic,\n2,30,premium,\n")
    assert read_one(trailing).to_dict("list") == {
        "id": [1, 2], "tenure": [12, 30], "plan": ["basic", "premium"]}


def test_an_unnamed_column_with_values_is_refused_and_an_empty_one_dropped(tmp_path):
    """pandas names an empty header cell 'Unnamed: 0': written by to_csv with its default index,
    the row numbers became a feature the server then required in every request."""
    indexed = tmp_path / "indexed.csv"
    pd.DataFrame({"id": [7, 8], "plan": ["basic", "premium"]}).to_csv(indexed)  # index=True: ",id,plan"
    with pytest.raises(DataError, match=r"indexed.csv: the header has no name for column 1 \(e.g. 0\): a pandas "
                                        r"index written by to_csv \(write it with index=False\)\? Name the column"):
        read_one(indexed)
    closed = tmp_path / "closed.csv"  # every line, the header too, ends in a separator: no column there
    closed.write_text("id,plan,\n7,basic,\n8,premium,\n")
    assert list(read_one(closed).columns) == ["id", "plan"]
    written = tmp_path / "written.csv"  # named so by its author
    written.write_text("id,Unnamed: 0\n7,1\n")
    assert list(read_one(written).columns) == ["id", "Unnamed: 0"]


def test_a_parquet_index_is_read_back_as_its_column(tmp_path):
    """``df.set_index("id").to_parquet()`` stores the id as the index: concatenated without it,
    the column was simply gone."""
    pd.DataFrame({"id": [7, 8], "x": [1.0, 2.0]}).set_index("id").to_parquet(tmp_path / "a.parquet")
    pd.DataFrame({"id": [9], "x": [3.0]}).to_parquet(tmp_path / "b.parquet")
    read = loading.read_batches(str(tmp_path))
    assert {name: frame.to_dict("list") for name, frame in read.items()} == {
        "a.parquet": {"id": [7, 8], "x": [1.0, 2.0]}, "b.parquet": {"id": [9], "x": [3.0]}}
