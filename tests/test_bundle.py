import json
import os

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import FunctionTransformer

from slipway import bundle

# What train writes about a two-feature model of classes 0 and 1, less what save adds.
META = {"target": "y", "classes": [0, 1], "features": {"numeric": ["a"], "derived": [],
                                                       "categorical": [{"name": "c", "categories": ["x", "y"]}]}}


@pytest.fixture
def fitted():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.random(300), "c": pd.Categorical(rng.choice(["x", "y"], 300))})
    target = (frame["a"] > 0.5).astype(int)
    return HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0,
                                          max_iter=20).fit(frame, target), frame


def test_save_and_load_round_trip(tmp_path, fitted):
    estimator, frame = fitted
    meta = bundle.save(tmp_path, estimator, META)
    loaded = bundle.load(tmp_path)
    assert loaded.version == meta["model_version"] and len(loaded.version) == 16
    assert loaded.metadata["sha256"] == meta["sha256"]
    np.testing.assert_allclose(loaded.estimator.predict_proba(frame), estimator.predict_proba(frame))


def test_version_is_a_content_hash(fitted):
    estimator, frame = fitted
    again = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0,
                                           max_iter=20).fit(frame, (frame["a"] > 0.5).astype(int))
    other = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0,
                                           max_iter=21).fit(frame, (frame["a"] > 0.5).astype(int))
    assert bundle.content_version(estimator, META) == bundle.content_version(again, META)
    assert bundle.content_version(estimator, META) != bundle.content_version(other, META)


@pytest.mark.parametrize("change", [
    {"features": {**META["features"], "id_column": "customer_id"}},  # ids now logged, to join labels by
    {"positive_class": 0},  # the served score is of the other class
    {"features": {**META["features"], "missing_values": ["?"]}},
])
def test_what_the_server_reads_of_model_json_is_part_of_the_version(fitted, change):
    """The same estimator served otherwise is another version, so another image tag: under the old
    one, the registry's image holds the old model.json. What the server does not read is not."""
    estimator, _ = fitted
    assert bundle.content_version(estimator, {**META, **change}) != bundle.content_version(estimator, META)
    assert bundle.content_version(estimator, {**META, "trained_at": "2030-01-01T00:00:00+00:00",
                                              "params": {"gate": {"min_f1": 0.2}}}) == \
        bundle.content_version(estimator, META)


def test_tampered_model_is_refused(tmp_path, fitted):
    bundle.save(tmp_path, fitted[0], META)
    with open(tmp_path / "model.skops", "ab") as handle:
        handle.write(b"x")
    with pytest.raises(bundle.BundleError, match="does not match model.json.*corrupt or tampered"):
        bundle.load(tmp_path)


def test_missing_and_corrupt_bundles_are_named(tmp_path, fitted):
    with pytest.raises(bundle.BundleError, match="model.json: not found"):
        bundle.load(tmp_path)
    (tmp_path / "model.json").write_text("{")
    with pytest.raises(bundle.BundleError, match="not valid JSON"):
        bundle.load(tmp_path)
    (tmp_path / "model.json").write_text(json.dumps({**META, "model_version": "x", "sha256": "0"}))
    with pytest.raises(bundle.BundleError, match="model.skops: not found"):
        bundle.load(tmp_path)
    (tmp_path / "model.skops").write_bytes(b"garbage")
    meta = {**META, "model_version": "x", "sha256": bundle.sha256_file(tmp_path / "model.skops")}
    (tmp_path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(bundle.BundleError, match="not a readable skops file"):
        bundle.load(tmp_path)


def test_untrusted_types_are_refused(tmp_path):
    sneaky = FunctionTransformer(func=os.system)  # what a malicious pickle would smuggle in
    sio.dump(sneaky, tmp_path / "model.skops")
    meta = {**META, "model_version": "x", "sha256": bundle.sha256_file(tmp_path / "model.skops")}
    (tmp_path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(bundle.BundleError, match=r"refuses to load untrusted types \['posix.system'\]"):
        bundle.load(tmp_path)


def test_save_refuses_a_model_the_server_would_not_load_and_keeps_the_previous_one(tmp_path):
    x, y = np.random.default_rng(0).random((40, 2)), np.arange(40) % 2
    previous = bundle.save(tmp_path, LogisticRegression().fit(x, y), META)
    # A team adds an estimator whose fitted state needs types nobody listed as trusted.
    with pytest.raises(bundle.BundleError, match=r"TRUSTED_TYPES does not list, so the server would refuse it: "
                                                 r"\['sklearn.metrics._dist_metrics.EuclideanDistance64', "
                                                 r"'sklearn.neighbors._kd_tree.KDTree'\]"):
        bundle.save(tmp_path, KNeighborsClassifier().fit(x, y), META)
    assert bundle.load(tmp_path).version == previous["model_version"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "model.skops"]


@pytest.mark.parametrize(("change", "problem"), [
    ({"classes": None}, "classes must be a list of two or more classes, got 'None'"),
    ({"features": {"numeric": ["a"]}}, "features must be an object of numeric and derived lists of names"),
    ({"reference": {"a": {}}}, "reference must be an object of distributions"),
    ({"trained_at": True}, "trained_at must be an ISO 8601 time, got 'True'"),
    ({"data": "x"}, "data must be an object, got 'x'"),
    ({"git_uncommitted": "params.yaml"}, "git_uncommitted must be null or a list of paths"),
    ({"positive_class": "yes"}, "positive_class 'yes' is not one of classes [0, 1]"),
    ({"classes": [1, 0]}, "classes [1, 0] are not the model's, ['0', '1']"),
    # Each of these took the server down on start, or answered its scrapes or predictions with a 500:
    ({"reference": {"a": {"kind": "numeric", "edges": [1], "fractions": [0.5, 0.5, 0, 0]}}},
     "reference must be an object of distributions"),  # a fraction too many
    ({"reference": {"a": {"kind": "numeric", "edges": [2, 1], "fractions": [0.3, 0.3, 0.4, 0]}}},
     "reference must be an object of distributions"),  # edges out of order
    ({"reference": {"c": {"kind": "categorical", "categories": [None, "y"], "fractions": [0.5, 0.5, 0]}}},
     "reference must be an object of distributions"),
    ({"features": {**META["features"], "categorical": [{"name": "c", "categories": [True, "y"]}]}},
     "features must be an object of numeric and derived lists"),
    ({"features": {**META["features"], "times": "ts"}}, "features must be an object of numeric and derived lists"),
    ({"features": {**META["features"], "missing_values": "?"}}, "features must be an object of numeric and derived"),
    ({"features": {**META["features"], "number_format": ",."}}, "features must be an object of numeric and derived"),
    ({"features": {**META["features"], "number_format": [",", ","]}}, "features must be an object of numeric"),
    ({"reference": {"c": {"kind": "categorical", "categories": ["y", "x"], "fractions": [0.5, 0.5, 0]}}},
     "reference 'c' does not hold the categories features gives it, ['x', 'y']"),
])
def test_metadata_that_is_not_what_train_writes_is_named(tmp_path, fitted, change, problem):
    """Found out where each field is read, such a model.json was a KeyError or a TypeError, or a
    server whose workers crashed on start instead of staying up, not ready."""
    meta = bundle.save(tmp_path, fitted[0], META)
    (tmp_path / "model.json").write_text(json.dumps({**meta, **change}))
    with pytest.raises(bundle.BundleError) as refused:
        bundle.load(tmp_path)
    assert problem in str(refused.value) and str(tmp_path / "model.json") in str(refused.value)


def test_every_missing_field_a_model_needs_is_named_at_once(tmp_path, fitted):
    meta = bundle.save(tmp_path, fitted[0], META)
    (tmp_path / "model.json").write_text(json.dumps({k: v for k, v in meta.items() if k not in ("target", "features")}))
    with pytest.raises(bundle.BundleError, match="model.json: target is missing; features is missing "
                                                 r"\(edited by hand, or written by another version\?\)"):
        bundle.load(tmp_path)


def test_a_save_that_fails_after_the_model_is_written_keeps_the_previous_bundle_whole(tmp_path, fitted):
    """model.skops used to be replaced before model.json was written: a failure (or a kill) in
    between left the new model under the old model.json, a bundle the server refuses."""
    previous = bundle.save(tmp_path, fitted[0], META)
    x, y = np.random.default_rng(0).random((40, 2)), np.arange(40) % 2
    with pytest.raises(ValueError, match="JSON"):
        bundle.save(tmp_path, LogisticRegression().fit(x, y), {**META, "note": float("nan")})
    assert bundle.load(tmp_path).version == previous["model_version"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "model.skops"]


def test_save_clears_what_a_killed_save_left_in_the_bundle(tmp_path, fitted):
    """DVC tracks models/ as a whole and the image copies it: a killed save's temporary files
    would travel with every later bundle."""
    for name in (".model.skops.x1.tmp", ".model.onnx.x2.tmp", ".model.json.x3.tmp"):
        (tmp_path / name).write_bytes(b"half a file")
    (tmp_path / "NOTES.md").write_text("not the bundle's: kept")
    bundle.save(tmp_path, fitted[0], META)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["NOTES.md", "model.json", "model.skops"]
