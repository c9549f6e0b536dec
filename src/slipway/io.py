"""Atomic output: write to a temporary file beside the target, then rename over it.

An interrupted stage therefore leaves either the previous file or the new one, never half of one.
Files written inside :func:`together` replace their targets at its end, all of them or none: a
stage's outputs stay one set (the previous run's or this one's), never a mix of the two.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import os
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slipway.errors import DataError, SlipwayError

if TYPE_CHECKING:  # pandas only where Parquet is read: the release commands import this module
    import pandas as pd


# The (temporary file, target) pairs written in the open together() block, renamed at its end; a
# temporary file None: the target is removed. A context variable: another thread's writes are its own.
_pending: contextvars.ContextVar[list[tuple[Path | None, Path]] | None] = contextvars.ContextVar(
    "slipway_io_pending", default=None)
# What a user or a supervisor sends to stop a run; held while a set of outputs is renamed.
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path in ``target``'s directory; rename it onto ``target`` on success (at
    the end of the enclosing :func:`together` block, if there is one)."""
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:  # a read-only or missing location, a file where a directory should be
        file_in_the_way = next((p for p in target.parents if p.exists() and not p.is_dir()), None)
        raise _unwritable(target, f"{file_in_the_way} is a file" if file_in_the_way else exc) from None
    os.close(fd)
    tmp_path = Path(tmp)
    handed_over = False
    try:
        try:
            yield tmp_path
        except OSError as exc:  # a full disk, a quota
            raise _unwritable(target, exc) from None
        os.chmod(tmp_path, 0o644)
        pending = _pending.get()
        if pending is None:
            _replace(tmp_path, target)
        else:
            pending.append((tmp_path, target))
            handed_over = True
    finally:
        if not handed_over:
            tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def together() -> Iterator[None]:
    """Files written atomically inside this block replace their targets when it ends, in the order
    they were written, and only if it ends without an exception; otherwise every target keeps its
    previous content. SIGINT, SIGTERM and SIGHUP wait until the renames are done, so only a
    SIGKILL in those microseconds could split the set. A nested block joins the outer one."""
    if _pending.get() is not None:
        yield
        return
    pending: list[tuple[Path | None, Path]] = []
    token = _pending.set(pending)
    try:
        yield
        with _stop_signals_held():
            for tmp, target in pending:
                if tmp is None:
                    _unlink(target)
                else:
                    _replace(tmp, target)
    finally:
        _pending.reset(token)
        for tmp, _ in pending:
            if tmp is not None:
                tmp.unlink(missing_ok=True)


def _unwritable(target: Path, reason: OSError | str) -> SlipwayError:
    return SlipwayError(f"{target}: cannot be written ({getattr(reason, 'strerror', None) or reason})")


def _replace(tmp: Path, target: Path) -> None:
    try:
        os.replace(tmp, target)
    except OSError as exc:  # a directory where the file should be
        raise _unwritable(target, exc) from None


def _unlink(target: Path) -> None:
    try:
        target.unlink(missing_ok=True)
    except OSError as exc:
        raise SlipwayError(f"{target}: cannot be removed ({exc.strerror or exc})") from None


def remove(target: str | Path) -> None:
    """Remove ``target`` if it exists: an output this run does not produce must not outlive the
    run that did (at the end of the enclosing :func:`together` block, if there is one)."""
    pending = _pending.get()
    if pending is None:
        _unlink(Path(target))
    else:
        pending.append((None, Path(target)))


@contextlib.contextmanager
def _stop_signals_held() -> Iterator[None]:
    """Record the stop signals that arrive inside the block and deliver them after it."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread sets handlers
        yield
        return
    arrived: list[int] = []
    previous = {number: signal.getsignal(number) for number in _STOP_SIGNALS}
    held = [number for number, handler in previous.items() if handler is not None]  # None: set outside Python
    for number in held:
        signal.signal(number, lambda received, _frame: arrived.append(received))
    try:
        yield
    finally:
        for number in held:
            signal.signal(number, previous[number])
        for number in arrived:
            signal.raise_signal(number)


def write_text(target: str | Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def write_bytes(target: str | Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_json(target: str | Path, obj: Any) -> None:
    write_text(target, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False, default=str) + "\n")


def write_parquet(target: str | Path, frame: pd.DataFrame) -> None:
    with atomic_path(target) as tmp:
        frame.to_parquet(tmp, index=False)


def storage_errors() -> tuple[type[Exception], ...]:
    """What reading storage raises for a location it cannot reach or read: ``OSError``, and for
    S3 botocore's own errors (no credentials, no endpoint), which s3fs lets through."""
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # no S3 support installed: fsspec itself says so, as an ImportError
        return (OSError,)
    return (OSError, BotoCoreError, ClientError)


def read_parquet(path: str | Path) -> pd.DataFrame:
    """A Parquet file, or a :class:`DataError` naming the file and what is wrong with it.

    pyarrow opens a local file itself. Given one through pandas (a Python file object), its
    thread pool sometimes aborts the process at exit, after the work is done: "terminate called
    without an active exception", exit status 134 (apache/arrow#34314), in 9 of 100 runs under load
    here and in none of 200 this way. Remote paths (``s3://``) go through pandas and fsspec.
    """
    import pandas as pd
    import pyarrow
    import pyarrow.parquet as pq

    try:
        if "://" in str(path):
            return pd.read_parquet(path)
        return pq.read_table(str(path)).to_pandas()
    except (*storage_errors(), pyarrow.ArrowException) as exc:
        raise DataError(f"{path}: not a readable Parquet file: {exc}") from None


def read_json(path: str | Path, error: type[SlipwayError] = DataError) -> Any:
    """A JSON file; a missing or malformed one is an ``error`` naming it."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise error(f"{path}: not found") from None
    except ValueError as exc:
        raise error(f"{path}: not valid JSON: {exc}") from None


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
