import pandas as pd
import pytest

from slipway import io
from slipway.errors import DataError


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
