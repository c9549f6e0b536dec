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


def read_batch(path: str, separator: str = "auto", encoding: str = "utf-8") -> pd.DataFrame:
    """One batch file; ``separator`` (CSV only) is a character or ``auto``."""
    suffix = PurePosixPath(path).suffix.lower()
    try:
        if SUFFIXES[suffix] == "csv":
            separator = sniff_separator(path, encoding) if separator == "auto" else separator
            frame = read_csv_rows(path, separator, encoding)
            check_unique_header(path, frame, separator, encoding)
            return frame
        return read_parquet(path)
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


def check_unique_header(path: str, frame: pd.DataFrame, separator: str, encoding: str) -> None:
    """pandas renames a repeated header name ``x`` to ``x.1``: the model would learn, and the
    server expect, a feature nobody named. Only a frame with such a pair is read again, for its
    header as written."""
    names = set(map(str, frame.columns))
    if not any(re.fullmatch(r"(.+)\.\d+", name) and name.rsplit(".", 1)[0] in names for name in names):
        return
    header = pd.read_csv(path, sep=separator, encoding=encoding, header=None, nrows=1, dtype=str).iloc[0]
    repeated = sorted({name for name in header if (header == name).sum() > 1})
    if repeated:
        raise DataError(f"{path}: the header names these columns more than once: {repeated}; "
                        "give each column its own name")


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
    """All batches, concatenated, with a ``__batch__`` column naming the file each row came from."""
    frames = {path: read_batch(path, separator, encoding) for path in list_batches(source, fmt, pattern)}
    check_same_columns(frames)
    empty = [PurePosixPath(path).name for path, frame in frames.items() if frame.empty]
    if empty:  # not an error (a month may have had no events), but most often an export that failed
        print(f"ingest: warning: no rows in {', '.join(empty)}", file=sys.stderr)
    for path, frame in frames.items():
        frame["__batch__"] = PurePosixPath(path).name
    # An empty CSV's columns are text: concatenated, they would turn every numeric column into text.
    combined = pd.concat([f for f in frames.values() if not f.empty] or list(frames.values()), ignore_index=True)
    combined["__batch__"] = combined["__batch__"].astype("category")
    return combined
