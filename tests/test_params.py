import re

import pytest

from slipway import params as params_module
from slipway.errors import ParamsError
from slipway.params import column_list, lookup, random_seed


def test_lookup_returns_checked_values():
    params = {"ingest": {"test_size": 1, "split": "time"}}
    assert lookup(params, "ingest.test_size", float) == 1.0
    assert lookup(params, "ingest.split", str, choices=("time", "random")) == "time"
    assert lookup(params, "ingest.missing", int, 3) == 3


@pytest.mark.parametrize(
    ("params", "call", "message"),
    [
        ({}, dict(key="data.target", kind=str), "data.target is required but missing"),
        ({"a": {"b": "x"}}, dict(key="a.b", kind=float), "a.b must be float, got 'x'"),
        ({"a": {"b": True}}, dict(key="a.b", kind=int), "a.b must be int, got True"),
        ({"a": {"b": 2.0}}, dict(key="a.b", kind=float, maximum=0.9), "a.b must be <= 0.9"),
        ({"a": {"b": "x"}}, dict(key="a.b", kind=str, choices=("y", "z")), "must be one of y, z"),
        # NaN passes every bound (it compares false), so a limit set to it would be no limit.
        ({"a": {"b": float("nan")}}, dict(key="a.b", kind=float, minimum=0.0, maximum=1.0),
         "a.b must be a finite number, got nan"),
        ({"a": {"b": float("inf")}}, dict(key="a.b", kind=(float, type(None)), minimum=1),
         "a.b must be a finite number, got inf"),
        ({"a": {"b": float("-inf")}}, dict(key="a.b", kind=(int, float)), "a.b must be a finite number, got -inf"),
        # YAML reads a 1 and 400 zeros as an int, which no float holds: it was an OverflowError.
        ({"a": {"b": 10**400}}, dict(key="a.b", kind=float), "a.b must be a finite number, got an integer past "
                                                             "float64's range"),
    ],
)
def test_lookup_names_the_key_and_rule(params, call, message):
    with pytest.raises(ParamsError, match=message):
        lookup(params, **call)


@pytest.mark.parametrize(("value", "message"), [
    (-1, "gate.seed must be >= 0, got -1"),
    (2**32, "gate.seed must be <= 4294967295, got 4294967296"),
    ("42", "gate.seed must be int, got '42'"),
    (True, "gate.seed must be int, got True"),
])
def test_a_seed_is_one_every_random_state_takes(value, message):
    """numpy's and pandas' random_state refuses a seed outside [0, 2**32 - 1] with a traceback
    that names no key ('expected non-negative integer')."""
    assert random_seed({"gate": {"seed": 2**32 - 1}}, "gate.seed") == 2**32 - 1
    with pytest.raises(ParamsError, match=f"^params: {message}$"):
        random_seed({"gate": {"seed": value}}, "gate.seed")


def test_column_list():
    assert column_list({"d": {"c": "auto"}}, "d.c") is None
    assert column_list({"d": {"c": ["x", "y"]}}, "d.c") == ["x", "y"]
    with pytest.raises(ParamsError, match="d.c must be 'auto' or a list of column names"):
        column_list({"d": {"c": "x"}}, "d.c")
    with pytest.raises(ParamsError, match="^params: d.c lists 'x' more than once$"):
        column_list({"d": {"c": ["x", "y", "x"]}}, "d.c")


def test_load_reports_missing_and_malformed_files(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
        params_module.load(tmp_path / "params.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        params_module.load(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("3\n")
    with pytest.raises(ParamsError, match="must be a mapping"):
        params_module.load(scalar)
    latin1 = tmp_path / "latin1.yaml"  # saved by an editor set to another encoding: was a traceback
    latin1.write_bytes("data:\n  source: données\n".encode("latin-1"))
    with pytest.raises(ParamsError, match=r"latin1.yaml: not UTF-8 text \(invalid continuation byte at byte 20\)"):
        params_module.load(latin1)
    with pytest.raises(ParamsError, match=r"^\S+: cannot be read \(Is a directory\)$"):
        params_module.load(tmp_path)
    date = tmp_path / "date.yaml"  # YAML reads an unquoted date, and a day that does not exist was a traceback
    date.write_text("example_data:\n  start: 2025-02-30\n")
    with pytest.raises(ParamsError, match=r"date.yaml: a value YAML reads as a date or a number is not one \(day is "
                                          r"out of range for month\); quote it if it is text$"):
        params_module.load(date)


def test_a_key_given_twice_is_refused_where_dvc_refuses_it(tmp_path):
    """A reader that keeps the last of two keys (PyYAML's) lets a second ``train:`` replace the first
    without a word; DVC refuses the file, and so do the stages."""
    twice = tmp_path / "params.yaml"
    twice.write_text("train:\n  seed: 1\nevaluate:\n  seed: 2\ntrain:\n  estimator: random_forest\n")
    with pytest.raises(ParamsError, match=re.escape(f"{twice}: not valid YAML: the key 'train' is given twice in one "
                                                    "mapping (line 5); DVC refuses it too")):
        params_module.load(twice)
    merged = tmp_path / "merged.yaml"  # a merge key may bring in a key the mapping also sets
    merged.write_text("base: &base {seed: 1, size: 2}\ntrain:\n  <<: *base\n  seed: 3\n")
    assert params_module.read_yaml(merged)["train"] == {"seed": 3, "size": 2}


def test_values_read_as_dvc_reads_them(tmp_path):
    """YAML 1.2, as DVC's ruamel.yaml reads it: PyYAML's YAML 1.1 read ``positive_class: Yes`` and the
    ``allowed`` labels of a Yes/No column as True and False, ``1e-3`` as text, ``017`` as octal 15
    and ``1:30`` as 90."""
    from ruamel.yaml import YAML

    text = ("data:\n  positive_class: Yes\nvalidate:\n  columns:\n    Partner: {allowed: [Yes, No, on, off, y, n]}\n"
            "train:\n  hyperparameters: {early_stopping: true, warm_start: False, verbose: TRUE, tol: 1e-3, "
            "max_depth: ~, class_weight: null, max_iter: 017, C: 1.5e3}\ngate:\n  champion: 1:30\n")
    path = tmp_path / "params.yaml"
    path.write_text(text)
    read = params_module.read_yaml(path)
    assert read == YAML(typ="safe").load(text)
    assert read["data"]["positive_class"] == "Yes"
    assert read["validate"]["columns"]["Partner"]["allowed"] == ["Yes", "No", "on", "off", "y", "n"]
    assert read["train"]["hyperparameters"] == {"early_stopping": True, "warm_start": False, "verbose": True,
                                                "tol": 0.001, "max_depth": None, "class_weight": None,
                                                "max_iter": 17, "C": 1500.0}
    assert read["gate"]["champion"] == "1:30"


def test_repository_params_are_complete(repo_params):
    for key in ("data.source", "data.target", "ingest.split", "train.estimator", "evaluate.seed"):
        lookup(repo_params, key, (str, int, float))


def test_the_repository_params_use_only_known_keys():
    params_module.load(params_module.DEFAULT_PATH)  # raises on an unknown key


def test_unknown_keys_are_refused_with_a_suggestion(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  estimator: hist_gradient_boosting\n  hyperparamters: {max_iter: 5}\n"
                    "validate:\n  colums: {}\ngat: {}\nmy_section: {}\ndata: auto\n")
    with pytest.raises(ParamsError) as error:
        params_module.load(path)
    message = str(error.value)
    assert "unknown key train.hyperparamters (did you mean train.hyperparameters?)" in message
    assert "unknown key validate.colums (did you mean validate.columns?)" in message
    assert "unknown key gat (did you mean gate?)" in message
    assert "unknown key my_section;" in message
    assert "data must be a mapping of keys, got 'auto'" in message


def test_every_key_the_code_reads_is_known():
    """Literal keys passed to ``lookup`` anywhere in the package are in KNOWN_KEYS."""
    import ast
    from pathlib import Path

    import slipway

    read = set()
    for path in Path(slipway.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("lookup", "random_seed")
                    and len(node.args) > 1 and isinstance(node.args[1], ast.Constant)):
                read.add(node.args[1].value)
    assert len(read) > 20
    for key in read:
        section, _, name = key.partition(".")
        assert section in params_module.KNOWN_KEYS, key
        assert not name or name.split(".")[0] in params_module.KNOWN_KEYS[section], key
