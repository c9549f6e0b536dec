"""Reading the raw batches. Replace this if your data lives elsewhere (a warehouse, an API).

The default reads CSV or Parquet files from a local path or ``s3://`` (through fsspec and s3fs,
which the pipeline extras install with ``dvc[s3]``). ``source`` is a file, a directory (every
``.csv``/``.parquet`` file in it, in name order) or a glob.
"""

from __future__ import annotations

from pathlib import PurePosixPath

import pandas as pd

from slipway.errors import DataError
from slipway.io import read_parquet

READERS = {".csv": pd.read_csv, ".parquet": read_parquet, ".pq": read_parquet}


def _filesystem(source: str):
    import fsspec  # only the pipeline needs remote storage

    return fsspec.core.url_to_fs(source)


def list_batches(source: str, fmt: str = "auto") -> list[str]:
    """The batch files behind ``source``, sorted, with the protocol kept for remote ones."""
    fs, path = _filesystem(source)
    if any(ch in path for ch in "*?["):
        paths = fs.glob(path)
    elif fs.isdir(path):
        paths = [p for p in fs.find(path) if not PurePosixPath(p).name.startswith(".")]
    elif fs.exists(path):
        paths = [path]
    else:
        raise DataError(f"data.source: {source} does not exist")
    suffixes = set(READERS) if fmt == "auto" else {f".{fmt}"} | ({".pq"} if fmt == "parquet" else set())
    batches = sorted(p for p in paths if PurePosixPath(p).suffix.lower() in suffixes)
    if not batches:
        raise DataError(f"data.source: no {fmt if fmt != 'auto' else 'CSV or Parquet'} files in {source}")
    protocol = source.split("://", 1)[0] + "://" if "://" in source else ""
    return [protocol + p if protocol and not p.startswith(protocol) else p for p in batches]


def read_batch(path: str) -> pd.DataFrame:
    reader = READERS[PurePosixPath(path).suffix.lower()]
    try:
        return reader(path)
    except DataError:
        raise
    except Exception as exc:  # a parser's own message names the line or the field
        raise DataError(f"{path}: cannot be read: {exc}") from exc


def load_raw(source: str, fmt: str = "auto") -> pd.DataFrame:
    """All batches, concatenated, with a ``__batch__`` column naming the file each row came from."""
    frames = []
    for path in list_batches(source, fmt):
        frame = read_batch(path)
        frame["__batch__"] = PurePosixPath(path).name
        frames.append(frame)
    combined = pd.concat(frames, ignore_index=True)
    combined["__batch__"] = combined["__batch__"].astype("category")
    return combined
