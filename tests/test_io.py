import signal
import subprocess
import sys
import threading

import pandas as pd
import pytest

from slipway import io
from slipway.errors import DataError, SlipwayError


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "sub" / "out.json"
    io.write_json(target, {"a": 1})
    io.write_json(target, {"a": 2})
    assert io.read_json(target) == {"a": 2}
    assert [p.name for p in target.parent.iterdir()] == ["out.json"]


def test_failed_write_keeps_previous_output_and_leaves_no_temp(tmp_path):
    target = tmp_path / "metrics.json"
    io.write_json(target, {"ok": True})
    with pytest.raises(ValueError):
        io.write_json(target, {"bad": float("nan")})  # NaN is not valid JSON
    assert io.read_json(target) == {"ok": True}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_interrupted_parquet_write_keeps_previous(tmp_path):
    target = tmp_path / "t.parquet"
    io.write_parquet(target, pd.DataFrame({"x": [1, 2]}))
    with pytest.raises(RuntimeError), io.atomic_path(target) as tmp:
        tmp.write_bytes(b"half a file")
        raise RuntimeError("killed mid-write")
    assert pd.read_parquet(target)["x"].tolist() == [1, 2]


def test_files_written_together_replace_their_targets_at_the_end(tmp_path):
    first, second, gone = tmp_path / "train.parquet", tmp_path / "spec.json", tmp_path / "old.html"
    io.write_json(second, {"run": 1})
    gone.write_text("an earlier run's report")
    with io.together():
        io.write_parquet(first, pd.DataFrame({"x": [1]}))
        io.write_json(second, {"run": 2})
        io.remove(gone)
        assert not first.exists() and io.read_json(second) == {"run": 1} and gone.exists()
    assert pd.read_parquet(first)["x"].tolist() == [1] and io.read_json(second) == {"run": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.json", "train.parquet"]


def test_a_failure_inside_together_leaves_every_previous_output_and_no_temp(tmp_path):
    """featurize, say, failing on the test split after writing the train split's features."""
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    io.write_json(first, {"run": 1})
    io.write_json(second, {"run": 1})
    with pytest.raises(RuntimeError), io.together():
        io.write_json(first, {"run": 2})
        io.remove(second)
        with io.together():  # nested: joins the outer block
            io.write_json(tmp_path / "c.json", {"run": 2})
        raise RuntimeError("the next output failed")
    assert io.read_json(first) == {"run": 1} and io.read_json(second) == {"run": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json"]


def test_another_threads_writes_are_not_held_by_a_together_block(tmp_path):
    with io.together():
        io.write_json(tmp_path / "held.json", {})
        writer = threading.Thread(target=io.write_json, args=(tmp_path / "own.json", {}))
        writer.start()
        writer.join()
        assert (tmp_path / "own.json").is_file() and not (tmp_path / "held.json").exists()
    assert (tmp_path / "held.json").is_file()


@pytest.fixture
def sigint():
    """SIGINT's handler for one test, put back after it: a job started in the background (as CI may
    start this suite) inherits SIGINT ignored."""
    previous = signal.getsignal(signal.SIGINT)
    yield lambda handler: signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGINT, previous)


def interrupting_renames(monkeypatch):
    """From now on, each rename is followed by a SIGINT."""
    rename = io.os.replace

    def interrupted_rename(source, target):
        rename(source, target)
        signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(io.os, "replace", interrupted_rename)


def test_a_stop_signal_during_the_renames_waits_for_the_whole_set(tmp_path, monkeypatch, sigint):
    """Ctrl-C between two renames: the set is replaced, then the interrupt is raised."""
    sigint(signal.default_int_handler)
    targets = [tmp_path / f"{n}.json" for n in range(3)]
    for target in targets:
        io.write_json(target, {"run": 1})
    with pytest.raises(KeyboardInterrupt), io.together():
        for target in targets:
            io.write_json(target, {"run": 2})
        interrupting_renames(monkeypatch)
    assert [io.read_json(target) for target in targets] == [{"run": 2}] * 3
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_ignored_stop_signal_stays_ignored(tmp_path, monkeypatch, sigint):
    sigint(signal.SIG_IGN)
    with io.together():
        io.write_json(tmp_path / "a.json", {})
        interrupting_renames(monkeypatch)
    assert (tmp_path / "a.json").is_file() and signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_a_run_stopped_while_writing_its_outputs_keeps_the_previous_set(tmp_path):
    """A real process, stopped by SIGTERM (what CI and Kubernetes send) between its two outputs."""
    first, second = tmp_path / "train.json", tmp_path / "test.json"
    io.write_json(first, {"run": 1})
    io.write_json(second, {"run": 1})
    script = (f"import sys, time; from slipway import io\n"
              f"with io.together():\n"
              f"    io.write_json({str(first)!r}, {{'run': 2}})\n"
              f"    print('one written', flush=True); time.sleep(60)\n"
              f"    io.write_json({str(second)!r}, {{'run': 2}})\n")
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "one written\n"
    process.terminate()
    assert process.wait(timeout=10) == -signal.SIGTERM
    assert io.read_json(first) == {"run": 1} and io.read_json(second) == {"run": 1}
    # SIGTERM's default action ends the process without cleanup: its temporary file stays, aside.
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".tmp")) == ["test.json", "train.json"]


def test_a_place_that_cannot_be_written_is_named(tmp_path):
    """Each was an OSError traceback: a missing or read-only location, a file where a directory
    should be, a directory where the file should be."""
    (tmp_path / "a-file").write_text("")
    (tmp_path / "a-directory.json").mkdir()
    for target, reason in ((tmp_path / "a-file/reports/out.json", f"{tmp_path / 'a-file'} is a file"),
                           (tmp_path / "a-directory.json", "Is a directory")):
        with pytest.raises(SlipwayError, match=f"^{target}: cannot be written \\({reason}\\)$"):
            io.write_json(target, {})
    with pytest.raises(SlipwayError, match=r"a-directory.json: cannot be removed \(Is a directory\)$"):
        io.remove(tmp_path / "a-directory.json")
    with pytest.raises(SlipwayError, match="out.json: cannot be written \\(No space left on device\\)$"), \
            io.atomic_path(tmp_path / "out.json"):
        raise OSError(28, "No space left on device")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-directory.json", "a-file"]


def test_sha256(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert io.sha256_file(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_read_parquet_reads_what_pandas_wrote_and_names_a_bad_file(tmp_path):
    frame = pd.DataFrame({"a": [1, 2], "b": pd.Categorical(["x", "y"]),
                          "t": pd.to_datetime(["2025-01-01", "2025-02-01"])})
    io.write_parquet(tmp_path / "f.parquet", frame)
    pd.testing.assert_frame_equal(io.read_parquet(tmp_path / "f.parquet"), frame)
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(DataError, match="bad.parquet: not a readable Parquet file"):
        io.read_parquet(tmp_path / "bad.parquet")
    with pytest.raises(DataError, match="missing.parquet: not a readable Parquet file"):
        io.read_parquet(tmp_path / "missing.parquet")
