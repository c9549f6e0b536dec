"""Reading the raw batches. Replace this if your data lives elsewhere (a warehouse, an API).

The default reads CSV or Parquet files from a local path or ``s3://`` (through fsspec and s3fs,
which the pipeline extras install with ``dvc[s3]``). ``source`` is a file or a directory (every
``.csv``/``.parquet`` file in it, in name order); ``pattern`` keeps the files whose name matches a
glob. ``source`` itself is never a glob: DVC tracks it as the ``ingest`` stage's dependency.
A CSV's separator is the one its header line uses (``,``, ``;``, tab or ``|``) unless
``data.separator`` names it; its text is UTF-8 (with or without a byte order mark) unless
``data.encoding`` names another encoding.
"""

from __future__ import annotations

import fnmatch
import re
import sys
import warnings
from pathlib import PurePosixPath

import pandas as pd

from slipway.errors import DataError
from slipway.io import read_parquet, storage_errors

SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}  # file name ending -> format


def _filesystem(source: str):
    import fsspec  # only the pipeline needs remote storage

    return fsspec.core.url_to_fs(source)


def list_batches(source: str, fmt: str = "auto", pattern: str | None = None) -> list[str]:
    """The batch files behind ``source``, sorted, with the protocol kept for remote ones."""
    if any(ch in source for ch in "*?["):
        raise DataError(f"data.source: {source} is a glob, which DVC cannot track as a dependency; "
                        "set data.source to the directory and data.pattern to the file-name glob")
    try:
        fs, path = _filesystem(source)
        if fs.isdir(path):
            paths = [p for p in fs.find(path) if not PurePosixPath(p).name.startswith(".")]
        elif fs.exists(path):
            paths = [path]
        else:
            raise DataError(f"data.source: {source} does not exist")
    except (*storage_errors(), ValueError) as exc:  # ValueError: a URL fsspec cannot list, e.g. s3://
        raise DataError(f"data.source: {source} cannot be listed: {exc}") from None
    suffixes = {suffix for suffix, kind in SUFFIXES.items() if fmt in ("auto", kind)}
    batches = sorted(p for p in paths if PurePosixPath(p).suffix.lower() in suffixes
                     and (pattern is None or fnmatch.fnmatchcase(PurePosixPath(p).name, pattern)))
    if not batches:
        matching = f" matching data.pattern {pattern!r}" if pattern else ""
        raise DataError(f"data.source: no {fmt if fmt != 'auto' else 'CSV or Parquet'} files{matching} in {source}")
    protocol = source.split("://", 1)[0] + "://" if "://" in source else ""
    return [protocol + p if protocol and not p.startswith(protocol) else p for p in batches]


# What a CSV's header line may be separated by, when data.separator is auto.
SEPARATORS = (",", ";", "\t", "|")


def sniff_separator(path: str, encoding: str = "utf-8") -> str:
    """The separator a CSV's header line uses most (``,`` when it uses none): exports from a
    European spreadsheet use ``;``, database dumps often tabs or ``|``."""
    import fsspec

    with fsspec.open(path, "rb") as handle:  # remote files' readline takes no size: read a block
        header = handle.read(1 << 16).split(b"\n", 1)[0].decode(encoding, errors="replace")
    counts = {separator: header.count(separator) for separator in SEPARATORS}
    best = max(SEPARATORS, key=lambda separator: counts[separator])  # ties: the earlier, "," first
    return best if counts[best] else ","


BATCH_COLUMN = "__batch__"  # added by load_raw: the file each row came from


def read_batch(path: str, separator: str = "auto", encoding: str = "utf-8") -> pd.DataFrame:
    """One batch file; ``separator`` (CSV only) is a character or ``auto``."""
    suffix = PurePosixPath(path).suffix.lower()
    try:
        if SUFFIXES[suffix] == "csv":
            separator = sniff_separator(path, encoding) if separator == "auto" else separator
            frame = check_header(path, read_csv_rows(path, separator, encoding), separator, encoding)
        else:
            frame = read_parquet(path)
            # A frame written with a named index (df.set_index("customer_id").to_parquet()) comes
            # back with that column as its index, which concatenation would drop.
            if any(name is not None for name in frame.index.names):
                frame = frame.reset_index()
            frame = nanosecond_dates(path, frame)
        check_column_names(path, frame)
        return frame
    except DataError:
        raise
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: cannot be read as {encoding}: {exc}; name the file's encoding in "
                        "data.encoding (cp1252 for most Windows exports)") from exc
    except pd.errors.EmptyDataError:  # pandas: "No columns to parse from file"
        raise DataError(f"{path}: an empty file, without even a header line: an export that failed? "
                        "(a batch with no rows still needs its header)") from None
    except Exception as exc:  # a parser's own message names the line or the field
        raise DataError(f"{path}: cannot be read: {exc}") from exc


def read_csv_rows(path: str, separator: str, encoding: str) -> pd.DataFrame:
    """The CSV's rows under its header's names. pandas would take a first row with more fields
    than the header as a sign that the leading fields are an index, and shift every value into the
    next column's name; ``index_col=False`` stops that, and would drop the extra fields with only a
    warning, which is made an error here. Trailing separators (empty extra fields) are fine."""
    with warnings.catch_warnings():
        warnings.filterwarnings("error", "Length of header or names does not match", pd.errors.ParserWarning)
        try:
            return pd.read_csv(path, sep=separator, encoding=encoding, index_col=False)
        except pd.errors.ParserWarning:
            raise DataError(f"{path}: a row has more fields than the header has names, and its last ones "
                            f"would be lost: the header lacks a name, or a value holds the separator "
                            f"{separator!r} unquoted") from None


def check_header(path: str, frame: pd.DataFrame, separator: str, encoding: str) -> pd.DataFrame:
    """The columns as the header names them. pandas renames a repeated name ``x`` to ``x.1`` and
    names an empty header cell ``Unnamed: 3``: the model would learn, and the server expect, a
    feature nobody named (most often the row numbers of a pandas index written with ``to_csv``).
    Both are errors; an unnamed column without a single value (a header line ending in a
    separator) is dropped. Only a frame with such a name is read again, for its header as written."""
    names = set(map(str, frame.columns))
    suspect = any(re.fullmatch(r"(.+)\.\d+", name) and name.rsplit(".", 1)[0] in names for name in names) \
        or any(re.fullmatch(r"Unnamed: \d+", name) for name in names)
    if not suspect:
        return frame
    header = pd.read_csv(path, sep=separator, encoding=encoding, header=None, nrows=1, dtype=str,
                         keep_default_na=False).iloc[0]
    repeated = sorted({name for name in header if name.strip() and (header == name).sum() > 1})
    if repeated:
        raise DataError(f"{path}: the header names these columns more than once: {repeated}; "
                        "give each column its own name")
    unnamed = [frame.columns[i] for i, name in enumerate(header) if i < len(frame.columns) and not name.strip()]
    holding = [f"column {frame.columns.get_loc(c) + 1} (e.g. {frame[c].dropna().iloc[0]!r})"
               for c in unnamed if frame[c].notna().any()]
    if holding:
        raise DataError(f"{path}: the header has no name for {', '.join(holding)}: a pandas index written by "
                        "to_csv (write it with index=False)? Name the column in the header, or leave it out "
                        "of the export")
    return frame.drop(columns=unnamed)


def nanosecond_dates(path: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Parquet's dates in pandas' nanoseconds, as every batch must be to be concatenated: a date
    past 2262 (a placeholder such as 9999-12-31) does not fit, and is named here."""
    for name in frame.select_dtypes(include=["datetime", "datetimetz"]).columns:
        try:
            frame[name] = frame[name].dt.as_unit("ns")
        except pd.errors.OutOfBoundsDatetime:
            outside = frame[name][(frame[name] < pd.Timestamp.min) | (frame[name] > pd.Timestamp.max)]
            raise DataError(f"{path}: column {name!r} holds {len(outside)} date(s) outside the years 1677-2262 "
                            f"that pandas can hold, e.g. {str(outside.iloc[0])!r}; make such placeholders "
                            "null") from None
    return frame


def check_column_names(path: str, frame: pd.DataFrame) -> None:
    """Every column has a name, and none is the one ``load_raw`` adds."""
    if any(not str(name).strip() for name in frame.columns):
        raise DataError(f"{path}: a column has an empty name; name every column")
    if BATCH_COLUMN in frame.columns:
        raise DataError(f"{path}: a column is named {BATCH_COLUMN!r}, which ingest uses for the file each row "
                        "came from; rename it")


def check_same_columns(frames: dict[str, pd.DataFrame]) -> None:
    """Every batch must have the first one's columns: concatenated, a column one month lacks would
    be silently missing in all its rows (and the model would learn the month from it)."""
    (first, expected), *rest = ((name, list(frame.columns)) for name, frame in frames.items())
    differences = []
    for name, columns in rest:
        lacks = [c for c in expected if c not in columns]
        adds = [c for c in columns if c not in expected]
        if lacks or adds:
            parts = ([f"lacks {lacks}"] if lacks else []) + ([f"adds {adds}"] if adds else [])
            differences.append(f"{name} {' and '.join(parts)}")
    if differences:
        raise DataError(f"batches disagree on columns (against {first}): " + "; ".join(differences))


def load_raw(source: str, fmt: str = "auto", pattern: str | None = None, separator: str = "auto",
             encoding: str = "utf-8") -> pd.DataFrame:
    """All batches, concatenated, with a :data:`BATCH_COLUMN` naming the file each row came from."""
    frames = {path: read_batch(path, separator, encoding) for path in list_batches(source, fmt, pattern)}
    check_same_columns(frames)
    empty = [PurePosixPath(path).name for path, frame in frames.items() if frame.empty]
    if empty:  # not an error (a month may have had no events), but most often an export that failed
        print(f"ingest: warning: no rows in {', '.join(empty)}", file=sys.stderr)
    for path, frame in frames.items():
        frame[BATCH_COLUMN] = PurePosixPath(path).name
    # An empty CSV's columns are text: concatenated, they would turn every numeric column into text.
    combined = pd.concat([f for f in frames.values() if not f.empty] or list(frames.values()), ignore_index=True)
    combined[BATCH_COLUMN] = combined[BATCH_COLUMN].astype("category")
    return combined
