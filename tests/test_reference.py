import numpy as np

from slipway.monitoring.reference import Binner, bin_index, bin_labels


def test_binner_counts_every_column_as_bin_index_does():
    reference = {
        "x": {"kind": "numeric", "edges": [1.0, 2.0, 5.0]},
        "flat": {"kind": "numeric", "edges": []},
        "colour": {"kind": "categorical", "categories": ["blue", "green", "red"]},
        "only": {"kind": "categorical", "categories": ["one"]},
    }
    columns = ["colour", "unreferenced", "x", "flat", "only"]
    matrix = np.array([
        [0, 9, 0.5, 3.0, 0],
        [2, 9, 1.0, np.nan, np.nan],  # a value equal to an edge falls in that edge's bin (le_)
        [np.nan, 9, 7.0, -1.0, 0],
        [1, 9, np.nan, 0.0, 0],
    ])
    binner = Binner(reference, columns)
    positions = binner.positions(matrix)
    offset = 0
    for k, name in enumerate(["colour", "x", "flat", "only"]):
        expected = bin_index(reference[name], matrix[:, columns.index(name)]) + offset
        np.testing.assert_array_equal(positions[:, k], expected)
        offset += len(bin_labels(reference[name]))
    assert len(binner.labels) == offset
    assert [binner.labels[p] for p in positions[1]] == [
        ("colour", "red"), ("x", "le_1"), ("flat", "missing"), ("only", "missing")]
