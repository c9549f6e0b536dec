"""Reading the raw batches. Replace this if your data lives elsewhere (a warehouse, an API):
``ingest`` calls :func:`read_batches` with ``data.source`` and, as keywords, the ``data.format``,
``pattern``, ``separator``, ``decimal``, ``encoding`` and ``na_values`` settings (a
reader of your own may ignore them), and needs only each batch as a DataFrame, by a name it
reports problems under. It then checks that
the batches agree on their columns, makes their dates fit pandas' nanoseconds and concatenates
them, whatever read them.

The default reads CSV or Parquet files from a local path or ``s3://`` (through fsspec and s3fs,
which the pipeline extras install with ``dvc[s3]``). ``source`` is a file or a directory (every
``.csv`` (or ``.csv.gz``, ``.bz2``, ``.xz``, ``.zip``) and ``.parquet`` file in it and below, in
name order, but under names starting with ``.`` or ``_``, with the columns of Hive-style
``key=value`` directories); ``pattern`` keeps the files whose name (or, for a glob with a ``/``,
whose path below ``source``) matches a glob. ``source``
itself is never a glob: DVC tracks it as the ``ingest`` stage's dependency.
A CSV's separator is the one its header line uses (``,``, ``;``, tab or ``|``) unless
``data.separator`` names it, and spaces after it are not part of a value; its numbers have a
decimal point unless ``data.decimal`` is ``,`` (a column with thousands separators stays text,
which ``ingest`` reads strictly as ``data.thousands`` says, whatever read it); the texts of
``data.na_values`` are missing values, as pandas' own (empty, ``NA``, ``N/A``, ``null``...) are;
its text is UTF-8 (with or without a byte order mark) unless ``data.encoding`` names another
encoding.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
import warnings
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote

import pandas as pd

from slipway.errors import DataError
from slipway.io import read_parquet, storage_errors

# File name ending -> format. A CSV may be compressed as exports often are; pandas and fsspec read
# it by its ending.
SUFFIXES = {".csv": "csv", ".csv.gz": "csv", ".csv.bz2": "csv", ".csv.xz": "csv", ".csv.zip": "csv",
            ".parquet": "parquet", ".pq": "parquet"}


def batch_format(path: str) -> str | None:
    """``csv`` or ``parquet`` by the file name's ending, ``None`` for a file that is no batch."""
    name = PurePosixPath(path).name.lower()
    return next((kind for suffix, kind in SUFFIXES.items() if name.endswith(suffix)), None)


def _filesystem(source: str):
    import fsspec  # only the pipeline needs remote storage

    return fsspec.core.url_to_fs(source)


def hidden(relative: str) -> bool:
    """Whether a file below the source is no batch: under a name starting with ``.`` or ``_``, as
    Spark, Hive and pyarrow read a dataset (``_temporary/`` holds a failed job's partial files,
    ``.ipynb_checkpoints/`` a notebook's copies, ``_SUCCESS`` marks a finished one)."""
    return any(part.startswith((".", "_")) for part in PurePosixPath(relative).parts)


def list_batches(source: str, fmt: str = "auto", pattern: str | None = None) -> list[str]:
    """The batch files behind ``source``, sorted, with the protocol kept for remote ones."""
    if any(ch in source for ch in "*?["):
        raise DataError(f"data.source: {source} is a glob, which DVC cannot track as a dependency; "
                        "set data.source to the directory and data.pattern to the file-name glob")
    try:
        fs, path = _filesystem(source)
        if fs.isdir(path):
            paths = [p for p in fs.find(path) if not hidden(posixpath.relpath(p, path))]
        elif fs.exists(path):
            paths = [path]
        else:
            raise DataError(f"data.source: {source} does not exist")
    except (*storage_errors(), ValueError) as exc:  # ValueError: a URL fsspec cannot list, e.g. s3://
        raise DataError(f"data.source: {source} cannot be listed: {exc}") from None
    # A pattern with a / is matched against the path below the source (region=north/*), else the name.
    within = (lambda p: posixpath.relpath(p, path)) if pattern and "/" in pattern else posixpath.basename
    batches = sorted(p for p in paths if (kind := batch_format(p)) and fmt in ("auto", kind)
                     and (pattern is None or fnmatch.fnmatchcase(within(p), pattern)))
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

    with fsspec.open(path, "rb", compression="infer") as handle:  # remote readline takes no size: a block
        header = handle.read(1 << 16).split(b"\n", 1)[0].decode(encoding, errors="replace")
    counts = {separator: header.count(separator) for separator in SEPARATORS}
    best = max(SEPARATORS, key=lambda separator: counts[separator])  # ties: the earlier, "," first
    return best if counts[best] else ","


def check_one_file_zipped(path: str) -> None:
    """A ``.csv.zip`` batch holds one CSV, which pandas reads; with none or several, pandas' and
    fsspec's errors (``list index out of range``) do not say so."""
    if not path.endswith(".zip"):
        return
    import zipfile

    import fsspec

    with fsspec.open(path, "rb") as handle, zipfile.ZipFile(handle) as archive:
        names = [name for name in archive.namelist() if not name.endswith("/")]
    if len(names) != 1:
        raise DataError(f"{path}: a zip file of {len(names)} files {names[:5]}; zip one CSV a batch")


def read_batch(path: str, separator: str = "auto", encoding: str = "utf-8", decimal: str = ".",
               na_values: list[str] = ()) -> pd.DataFrame:
    """One batch file; ``separator`` (CSV only) is a character or ``auto``, ``decimal`` (CSV only)
    the decimal mark."""
    try:
        if batch_format(path) == "csv":
            check_one_file_zipped(path)
            separator = sniff_separator(path, encoding) if separator == "auto" else separator
            if separator == decimal:
                raise DataError(f"{path}: its header is separated by {separator!r}, which data.decimal makes the "
                                "decimal mark; name the separator in data.separator")
            rows = read_csv_rows(path, separator, encoding, decimal, na_values)
            frame = check_header(path, rows, separator, encoding)
        else:
            frame = read_parquet(path)
            # A frame written with a named index (df.set_index("customer_id").to_parquet()) comes
            # back with that column as its index, which concatenation would drop.
            if any(name is not None for name in frame.index.names):
                frame = frame.reset_index()
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


def read_csv_rows(path: str, separator: str, encoding: str, decimal: str = ".",
                  na_values: list[str] = ()) -> pd.DataFrame:
    """The CSV's rows under its header's names. pandas would take a first row with more fields
    than the header as a sign that the leading fields are an index, and shift every value into the
    next column's name; ``index_col=False`` stops that, and would drop the extra fields with only a
    warning, which is made an error here. Trailing separators (empty extra fields) are fine."""
    with warnings.catch_warnings():
        warnings.filterwarnings("error", "Length of header or names does not match", pd.errors.ParserWarning)
        try:
            # skipinitialspace: a CSV written with ", " between fields (UCI's Adult) holds " 2174",
            # a number, and " ?", a missing value, as their own text would not say.
            return pd.read_csv(path, sep=separator, encoding=encoding, decimal=decimal,
                               na_values=list(na_values), skipinitialspace=True, index_col=False)
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


def read_batches(source: str, fmt: str = "auto", pattern: str | None = None, separator: str = "auto",
                 encoding: str = "utf-8", decimal: str = ".", na_values: list[str] = ()) -> dict[str, pd.DataFrame]:
    """Every batch behind ``source``, in name order, by its path within ``source`` (a single
    file: its name), with the columns its directories name (:func:`partition_columns`). ``ingest``
    checks that the batches agree, concatenates them and records each row's batch under that name."""
    paths = list_batches(source, fmt, pattern)
    within = [path.split("://", 1)[-1] for path in paths]
    root = _filesystem(source)[1]
    if within == [root]:  # a single file
        root = posixpath.dirname(root)
    partitions = partition_columns([posixpath.relpath(posixpath.dirname(path), root) for path in within])
    batches = {}
    for path, url, columns in zip(within, paths, partitions, strict=True):
        frame = read_batch(url, separator, encoding, decimal, na_values)
        batches[posixpath.relpath(path, root)] = frame.assign(
            **{key: value for key, value in columns.items() if key not in frame.columns})
    return batches


# What Hive, Spark and Athena name the directory of rows whose partition value is null.
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"


def partition_columns(directories: list[str]) -> list[dict[str, Any]]:
    """The ``key=value`` directories of each batch (Hive-style partitions, as Spark, Athena and
    pyarrow write a dataset: ``month=2025-01/part-0.parquet``), as the columns those writers leave out
    of the files. A key is integers, or else numbers, or else text, across every batch, as pyarrow
    reads it; values are unescaped (Spark writes ``:`` as ``%3A``)."""
    found = []
    for directory in directories:
        pairs = [segment.partition("=") for segment in PurePosixPath(directory).parts]
        found.append({unquote(key): None if value == HIVE_NULL else unquote(value)
                      for key, equals, value in pairs if equals and key})
    for key in {key for columns in found for key in columns}:
        values = [columns[key] for columns in found if key in columns]
        texts = [text for text in values if text is not None]
        if all(re.fullmatch(r"[+-]?[0-9]+", text) for text in texts) and None not in values:
            kind = int
        elif all(re.fullmatch(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", text) for text in texts):
            kind = float  # a null partition among integers too: NaN, as pandas holds it
        else:
            kind = str
        for columns in found:
            if key in columns:
                value = columns[key]
                columns[key] = kind(value) if value is not None else (float("nan") if kind is float else None)
    return found
