"""validate: schema and integrity checks on the ingested data.

Every rule runs on both splits and every violation is collected, so one failing run lists all the
problems (column, rule, count, examples) rather than the first one only. Rules come from
``params.yaml``: ``data`` names the key columns and features (``data.drop_columns`` are not
checked unless ``validate.columns`` names them); ``validate.columns`` gives per-column ``type``,
``min``, ``max``, ``allowed`` and ``max_null_fraction``. Infinite numbers are refused everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from slipway import io
from slipway.errors import DataError, ParamsError
from slipway.params import column_list, is_finite_number, is_number, lookup, named_key_columns, number_format
from slipway.pipeline import paths
from slipway.pipeline.paths import BATCH_COLUMN
from slipway.values import as_numbers, spelling, written_numbers_advice


@dataclass
class Problem:
    split: str
    column: str
    rule: str
    count: int
    examples: list
    unit: str = "rows"
    # The batches (files of data.source) the rows are in, the first few of batch_count, so the
    # broken export can be found; empty where the data is one batch.
    batches: list[str] = field(default_factory=list)
    batch_count: int = 0
    hint: str = ""  # what would read the values as the rule wants them, where something would

    def line(self) -> str:
        examples = f", e.g. {self.examples}" if self.examples else ""
        where = ""
        if self.batches:
            some = "" if self.batch_count == len(self.batches) else f"{self.batch_count} batches, e.g. "
            where = f" (in {some}{', '.join(self.batches)})"
        hint = f"; {self.hint}" if self.hint else ""
        return (f"  {self.split}: column {self.column!r}, rule {self.rule}: {self.count} {self.unit}"
                f"{examples}{where}{hint}")


# Rows without a label (not labelled yet, or a join that lost it) neither train nor score a model;
# which of the two it is, only the team can tell, so nothing drops them unasked.
UNLABELLED = ("rows without a label can neither train nor score a model: leave them out where the batches "
              "are read (slipway/model/loading.py), or mend the export that lost them")


def gaps_allowed(column: str, nulls: pd.Series, markers: list[str]) -> str:
    """How a feature with more missing values than allowed may pass: the share, which params texts
    counted as missing, and the column's own limit (the model handles missing values)."""
    counted = f" (data.na_values {markers} count as missing)" if markers else ""
    return (f"{nulls.mean():.1%} of the rows{counted}; if the model should learn with these gaps (it handles "
            f"missing values), allow them in validate.columns.{column}.max_null_fraction")


# An example longer than this is cut: a 100 kB value (a broken join, a blob) would flood the report.
EXAMPLE_CHARS = 80


def _shown(value: Any) -> Any:
    """One example as the JSON report can hold it (infinities as text), long text cut."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str) and len(value) > EXAMPLE_CHARS:
        return f"{value[:EXAMPLE_CHARS - 3]}... ({len(value)} characters)"
    return value


def _examples(values: pd.Series, limit: int) -> list:
    """Up to ``limit`` distinct values."""
    return [_shown(v) for v in values.drop_duplicates().head(limit).tolist()]


def _labels(values: pd.Series) -> pd.Series:
    """Values as the text ``allowed`` is compared with. An integer column with a null is read as
    floats: 1.0 is the label 1 (the null is reported by its own rule)."""
    text = values.astype(str)
    if ptypes.is_float_dtype(values):
        integral = (values % 1 == 0) & (values.abs() < 2**53)
        text[integral] = values[integral].astype("int64").astype(str)
    return text


def _located(problem: Problem, frame: pd.DataFrame, rows: pd.Series, limit: int) -> Problem:
    """``problem`` with the batches its ``rows`` (a mask of ``frame``) are in, when there are several."""
    if BATCH_COLUMN in frame.columns and frame[BATCH_COLUMN].nunique() > 1:
        names = frame.loc[rows, BATCH_COLUMN].astype(str).drop_duplicates().sort_values().tolist()
        problem.batches, problem.batch_count = names[:limit], len(names)
    return problem


def _rows_named(rows: pd.DataFrame, id_column: str | None, column: str, limit: int) -> list:
    """Rows whose value is missing have no value to show: their ids say where to look."""
    if not id_column or id_column == column or id_column not in rows.columns:
        return []
    return [f"{id_column}={value}" for value in _examples(rows[id_column].dropna(), limit)]


# What each rule's value must be, and how to say so.
RULE_VALUES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "type": (lambda v: v in ("numeric", "categorical"), "numeric or categorical"),
    "min": (is_finite_number, "a finite number"),
    "max": (is_finite_number, "a finite number"),
    "allowed": (lambda v: isinstance(v, list) and bool(v), "a non-empty list of values"),
    "max_null_fraction": (lambda v: is_number(v) and 0 <= v <= 1, "a number within [0, 1]"),
}


def column_rules(params: dict[str, Any]) -> dict[str, dict]:
    rules = lookup(params, "validate.columns", dict, {})
    problems = []
    for column, rule in rules.items():
        if not isinstance(rule, dict) or set(rule) - set(RULE_VALUES):
            raise ParamsError(
                f"params: validate.columns.{column} must be a mapping with keys among "
                f"{sorted(RULE_VALUES)}, got {rule!r}"
            )
        wrong = [f"validate.columns.{column}.{key} must be {RULE_VALUES[key][1]}, got {value!r}"
                 for key, value in rule.items() if not RULE_VALUES[key][0](value)]
        if not wrong and "min" in rule and "max" in rule and rule["min"] > rule["max"]:  # every value would fail
            wrong.append(f"validate.columns.{column}: min {rule['min']} is above max {rule['max']}")
        problems += wrong
    if problems:
        raise ParamsError("params: " + "; ".join(problems))
    return rules


def required_columns(params: dict[str, Any]) -> dict[str, str]:
    """Each column the params name, by the first key naming it."""
    named = named_key_columns(params)
    for key in ("data.numeric_features", "data.categorical_features"):
        named.update({c: key for c in column_list(params, key) or [] if c not in named})
    named.update({c: "validate.columns" for c in column_rules(params) if c not in named})
    return named


def check_columns(train: pd.DataFrame, test: pd.DataFrame, params: dict[str, Any]) -> list[Problem]:
    """The columns the params name that the data lacks, once each: both splits come from one
    ingested frame, so a column is missing from both or neither."""
    return [Problem("train/test", column, "required", len(train) + len(test), [], hint=f"{key} names it")
            for column, key in required_columns(params).items() if column not in train.columns]


def check(frame: pd.DataFrame, split: str, params: dict[str, Any]) -> list[Problem]:
    """All problems in one split; an empty list means it passed."""
    limit = lookup(params, "validate.max_examples", int, 5, minimum=1)
    default_nulls = lookup(params, "validate.max_null_fraction", float, minimum=0.0, maximum=1.0)
    target = lookup(params, "data.target", str)
    id_column = lookup(params, "data.id_column", (str, type(None)), None)
    timestamp = lookup(params, "data.timestamp_column", (str, type(None)), None)
    written_as = number_format(params)
    markers = lookup(params, "data.na_values", list, [])
    problems: list[Problem] = []

    def report(column: str, rule: str, bad: pd.Series, hint: str | None = None) -> None:
        count = int(bad.sum())
        if count:
            problems.append(_located(Problem(split, column, rule, count, _examples(frame.loc[bad, column], limit),
                                             hint=hint or ""), frame, bad, limit))

    if frame.empty:
        return [Problem(split, "*", "not_empty", 0, [])]

    rules = column_rules(params)
    strict = {c for c in (target, id_column, timestamp) if c}
    # Columns kept out of the model are not its data: checked only where a rule names them.
    dropped = set(lookup(params, "data.drop_columns", list, [])) - set(rules) - strict
    declared_numeric = set(column_list(params, "data.numeric_features") or [])
    for column in frame.columns:
        if column == BATCH_COLUMN or column in dropped:
            continue
        rule = rules.get(column, {})
        values = frame[column]
        nulls = values.isna()
        limit_nulls = 0.0 if column in strict else float(rule.get("max_null_fraction", default_nulls))
        if nulls.mean() > limit_nulls:
            hint = UNLABELLED if column == target else "" if column in strict else gaps_allowed(column, nulls, markers)
            problems.append(_located(Problem(split, column, f"nulls<={limit_nulls:g}", int(nulls.sum()),
                                             _rows_named(frame.loc[nulls], id_column, column, limit), hint=hint),
                                     frame, nulls, limit))
        present = values[~nulls]
        if ptypes.is_float_dtype(values):
            # The server refuses infinities (422), so a model must not learn from them; upstream,
            # they are most often a division by zero.
            report(column, "finite", values.isin((np.inf, -np.inf)))
        kind = rule.get("type", "numeric" if column in declared_numeric else None)
        if kind == "numeric" or ("min" in rule or "max" in rule):
            numbers = as_numbers(present)
            not_numbers = numbers.isna()
            report(column, "type=numeric", not_numbers.reindex(frame.index, fill_value=False),
                   not_numbers.any() and written_numbers_advice(present, written_as))
            if not ptypes.is_float_dtype(values):  # "inf" as text; a float column's are reported above
                report(column, "finite", np.isinf(numbers).reindex(frame.index, fill_value=False))
            if "min" in rule:
                report(column, f"min={rule['min']}", (numbers < rule["min"]).reindex(frame.index, fill_value=False))
            if "max" in rule:
                report(column, f"max={rule['max']}", (numbers > rule["max"]).reindex(frame.index, fill_value=False))
        elif kind == "categorical" and ptypes.is_float_dtype(values):
            report(column, "type=categorical", (present % 1 != 0).reindex(frame.index, fill_value=False))
        if "allowed" in rule:
            allowed = set(_labels(pd.Series(rule["allowed"])))
            outside = ~_labels(present).isin(allowed)
            report(column, f"allowed={sorted(allowed)}", outside.reindex(frame.index, fill_value=False))

    # An entity's row at a time (or, untimed, its one row) is unique; times alone are no key: events
    # of many entities share a day.
    keys = [c for c in (id_column, timestamp) if c and c in frame.columns] if id_column in frame.columns else []
    if keys:
        duplicated = frame.duplicated(subset=keys, keep=False)
        if duplicated.any():
            examples = frame.loc[duplicated, keys].drop_duplicates().head(limit)
            problems.append(_located(Problem(split, "+".join(keys), "unique_key", int(duplicated.sum()),
                                             examples.astype(str).values.tolist()), frame, duplicated, limit))
    return problems


def check_target(train: pd.DataFrame, test: pd.DataFrame, params: dict[str, Any]) -> list[Problem]:
    """Classes, not measurements; at least two classes in train, and no class in test that train
    lacks: a model can neither predict nor be scored on a class it never saw (a time split can leave
    a new class to the test set alone)."""
    target = lookup(params, "data.target", str)
    if target not in train.columns or train.empty:
        return []
    limit = lookup(params, "validate.max_examples", int, 5, minimum=1)
    # A target of fractional numbers (a price, a duration) is one to regress, not to classify:
    # said as such, not as hundreds of test "classes" that training never saw.
    continuous = []
    for split, frame in (("train", train), ("test", test)):
        values = frame[target] if target in frame.columns else pd.Series(dtype=object)
        if ptypes.is_float_dtype(values):
            fractional = np.isfinite(values) & (values % 1 != 0)  # infinities: the finite rule's
            if fractional.any():
                continuous.append(_located(Problem(split, target, "classes_not_continuous", int(fractional.sum()),
                                                   _examples(values[fractional], limit)), frame, fractional, limit))
    if continuous:
        return continuous
    spelt = _classes_spelt_twice(train, test, target, limit)
    if spelt:
        return [spelt]
    classes = train[target].dropna().unique()
    if len(classes) < 2:
        return [Problem("train", target, "at_least_2_classes", len(classes), [_shown(c) for c in classes], "class(es)")]
    if target not in test.columns:
        return []
    unseen = test[target].notna() & ~test[target].isin(classes)
    if unseen.any():
        return [_located(Problem("test", target, "class_in_train", int(unseen.sum()),
                                 _examples(test.loc[unseen, target], limit)), test, unseen, limit)]
    return []


def _classes_spelt_twice(train: pd.DataFrame, test: pd.DataFrame, target: str, limit: int) -> Problem | None:
    """Labels that differ only in how they are spelt (:func:`values.spelling`: ``yes``, ``Yes``,
    ``not-churned``, ``not churned``): one class written two ways by an export. Learnt apart, a
    binary problem becomes a multiclass one with a class nobody meant. Counted: the rows not
    written the most common way."""
    labels = pd.concat([frame[target] for frame in (train, test) if target in frame.columns])
    counts = labels.value_counts()  # the few distinct labels, most common first
    counts = counts[[isinstance(label, str) for label in counts.index]]
    if counts.empty:
        return None
    keys = pd.Series(counts.index, index=counts.index).map(spelling)
    groups = [list(written) for _, written in counts.groupby(keys.to_numpy(), sort=True).groups.items()
              if len(written) > 1]
    if not groups:
        return None
    # value_counts is ordered by count, so each group's first spelling is its most common.
    others = sum(int(counts[written[1:]].sum()) for written in groups)
    return Problem("train/test", target, "classes_spelt_once", others, groups[:limit])


def summarize(problems: list[Problem], params: dict[str, Any] | None = None) -> str:
    header = f"validate: {len(problems)} problem(s) in the ingested data"
    lines = [header] + [p.line() for p in problems]
    ruled = list(column_rules(params)) if params else []
    absent = {p.column for p in problems if p.rule == "required"}.intersection(ruled)
    if len(absent) * 2 > len(ruled):  # most of them: the example's rules, left in place when adopting
        lines.append(f"  {len(absent)} of the {len(ruled)} columns validate.columns has rules for are not in the "
                     "data: rules for other data? Write rules for your columns there (or set validate.columns: {})")
    return "\n".join(lines)


def main(params: dict[str, Any]) -> None:
    train = io.read_parquet(paths.TRAIN_RAW)
    test = io.read_parquet(paths.TEST_RAW)
    problems = check_columns(train, test, params) + check(train, "train", params) + check(test, "test", params) \
        + check_target(train, test, params)
    io.write_json(paths.VALIDATION_REPORT, {
        "passed": not problems,
        "rows": {"train": len(train), "test": len(test)},
        "problems": [asdict(p) for p in problems],
    })
    if problems:
        raise DataError(summarize(problems, params))
    print(f"validate: passed ({len(train)} train rows, {len(test)} test rows)")
