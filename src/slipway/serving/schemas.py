"""Request validation: every bad input becomes a :class:`RequestError` naming the field and rule.

Both APIs (``/predict`` instances and Open Inference Protocol tensors) reduce a request to one list
of values per input column; :func:`check_columns` then validates the values against the model's
feature spec and builds the frame that :meth:`FeatureSpec.transform` turns into model input.

Policies: ``null`` is a missing value (the model handles missing values natively); NaN and
infinity are refused (send ``null``); booleans are not numbers; a boolean or number given for a
categorical feature stands for its string form (``true`` is ``"True"``, as training labelled a
boolean column); a number may be sent as text, written as training's data wrote numbers
(``"4039.88"``; ``"17,99"`` with ``data.decimal: ","``); a category is read as training read it,
without surrounding spaces; a text of spaces only (or none), or of ``data.na_values`` (``?``), is a
missing value, in any input, as it was in training; an input that training held as dates (the
timestamp column, read by a derived feature) takes ISO 8601 text or epoch time as ingest reads it
(seconds, ms, us or ns by size, YYYYMMDD), and text in the format training read the times in
(``data.timestamp_format``); an unseen category is refused with the allowed values
(``SLIPWAY_UNSEEN_CATEGORIES=missing`` treats it as missing instead, counted in
``slipway_unseen_categories_total``).
"""

from __future__ import annotations

import difflib
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

import numpy as np

from slipway.featureset import FeatureSpec
from slipway.serving import codec
from slipway.values import (
    label_number,
    missing_text,
    moment_seconds,
    number_label,
    spelling,
    text_number,
    trimmed,
    written_like,
)

# How much of a value sent an error repeats: a megabyte of text sent for a number is answered in a line.
SHOWN_CHARACTERS = 80


def shown(value: object) -> str:
    """``repr(value)`` for an error message, cut after :data:`SHOWN_CHARACTERS` with its length said."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARACTERS else f"{text[:SHOWN_CHARACTERS]}... ({len(text)} characters)"


class RequestError(Exception):
    def __init__(self, status: int, reason: str, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.reason, self.message, self.field = status, reason, message, field


@dataclass
class CheckedBatch:
    columns: dict[str, np.ndarray]  # raw inputs: floats (NaN = missing) or objects (None)
    unseen: dict[str, int]  # feature -> values treated as missing (policy "missing")


Locator = Callable[[str, int], str]


# Exactly these: bool is an int subclass but not a number here, and numpy would also turn
# numeric strings into floats.
_NUMBER_TYPES = frozenset({int, float, type(None)})


def _times(values: list, name: str, where: Locator, missing: frozenset[str], time_format: str | None) -> list:
    """A time input's values as seconds since the epoch (:func:`slipway.values.moment_seconds`; text in
    ``time_format`` too), a copy: the prediction log keeps what was sent. NaN and infinity stay, for the
    check of every number."""
    out = []
    for i, value in enumerate(values):
        if value is None or missing_text(value, missing):
            out.append(None)
        elif type(value) is float and not math.isfinite(value):
            out.append(value)
        else:
            try:
                out.append(moment_seconds(value, time_format))
            except (ValueError, OverflowError):
                written = f", text in the training data's format {time_format!r}" if time_format else ""
                raise RequestError(422, "wrong_type", f"expected a time (ISO 8601 text such as "
                                   f"'2025-01-31T09:30:00Z'{written}, or epoch time as a number) or null, "
                                   f"got {shown(value)}", where(name, i)) from None
    return out


def _number(value: object, name: str, i: int, where: Locator, missing: frozenset[str],
            number_format: tuple[str, str | None]) -> int | float | None:
    """A numeric input's value that is not a JSON number or null, read as ingest read text: empty, spaces
    only or a marker of data.na_values is missing, and a number written as training's data wrote them is
    that number (a client's CSV column of numbers with a blank in it is text: " ", "4039.88")."""
    if type(value) is str:
        if missing_text(value, missing):
            return None
        if (number := text_number(value, number_format)) is not None:
            return number
    raise RequestError(422, "wrong_type", f"expected a number (or its text, such as "
                       f"{written_like(number_format)!r}) or null, got {shown(value)}", where(name, i))


def _numeric(columns: dict[str, list], spec: FeatureSpec, where: Locator, missing: frozenset[str]) -> np.ndarray:
    """All the spec's numeric inputs at once, one row of the result per input (``None`` and the texts of
    ``missing`` -> NaN; numbers as text, as the spec's ``number_format`` writes them; its ``times``, as
    seconds since the epoch)."""
    names = spec.numeric_inputs
    lists = [columns[name] if name not in spec.times else _times(columns[name], name, where, missing, spec.time_format)
             for name in names]
    for j, name in enumerate(names):
        if not _NUMBER_TYPES.issuperset(map(type, lists[j])):
            # A copy: the prediction log keeps what was sent.
            lists[j] = [v if type(v) in _NUMBER_TYPES else _number(v, name, i, where, missing, spec.number_format)
                        for i, v in enumerate(lists[j])]
    try:
        block = np.array(lists, dtype="float64")
    except OverflowError:  # an int beyond float64, which a look at every value finds
        block, suspects = None, [(j, i) for j, values in enumerate(lists) for i in range(len(values))]
    else:  # NaN from a null is fine, a NaN or infinity sent is not: only those cells need a look
        suspects = zip(*np.nonzero(~np.isfinite(block)), strict=True)
    for j, i in suspects:
        value = lists[j][i]
        if value is not None and not _finite(value):
            value = columns[names[j]][i]  # as sent: "1e999" read as text is infinite too
            raise RequestError(422, "non_finite", f"{shown(value)} is not allowed: numbers must be "
                               "finite float64 values; send null for a missing value",
                               where(names[j], i))
    return block


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond float64
        return False


# Training labels the categories of a boolean or numeric column by their string form
# (``featureset.category_labels``), so ``true`` and ``2`` in a request mean "True" and "2".
_LABELLED_TYPES = frozenset({bool, int, float})


def json_forms(label: str) -> list:
    """The JSON values that stand for a category label: the label, and the boolean or number it
    is the string form of (``"True"``: ``true``; ``"2"``: ``2``)."""
    for native in (label == "True" if label in ("True", "False") else None, label_number(label)):
        if native is not None and str(native) == label:
            return [label, native]
    return [label]


# How many of a feature's categories an error lists: a feature of zip codes has thousands.
LISTED_CATEGORIES = 20


def unseen_message(value: str, known: dict[str, int]) -> str:
    """Why ``value`` is refused: the known spelling of the same category, if it has one (``North``
    for ``north``: the model learnt them apart), and the categories there are."""
    same = [category for category in known if spelling(category) == spelling(value)]
    listed = list(known)[:LISTED_CATEGORIES]
    more = f" and {len(known) - len(listed)} more" if len(known) > len(listed) else ""
    return (f"{shown(value)} is not a category the model was trained on"
            + (f" (it was trained on {same[0]!r}, spelt otherwise)" if same else "")
            + f"; expected one of {listed}{more}")


def _all_known(values: list, known: dict[str, int]) -> bool:
    """Whether every value is null or a category as training spelt it: most requests, which then need
    no look at each value. (A boolean or number never equals a category, which is a string.)"""
    try:
        return known.keys() >= set(values) - {None}
    except TypeError:  # an unhashable value (a list, an object): the look at each names it
        return False


def _categorical(values: list, name: str, known: dict[str, int], policy: str, where: Locator,
                 unseen: dict[str, int], missing: frozenset[str]) -> np.ndarray:
    out = np.array(values, dtype=object)
    if _all_known(values, known):
        return out
    for i, value in enumerate(values):
        if value is None or (type(value) is str and value in known):
            continue
        if type(value) in _LABELLED_TYPES:
            if not _finite(value):
                raise RequestError(422, "non_finite", f"{shown(value)} is not allowed; send null for a "
                                   "missing value", where(name, i))
            value = out[i] = str(value) if type(value) is bool else number_label(value, known)
            if value in known:
                continue
        elif not isinstance(value, str):
            raise RequestError(422, "wrong_type", f"expected a string, a boolean, a number or null, "
                               f"got {shown(value)}", where(name, i))
        elif value != (text := trimmed(value)):  # " north " is "north", as training read it
            out[i] = text
            if text is None or text in known:
                continue
            value = text
        if value in missing:  # data.na_values: "?" was a missing value in training too
            out[i] = None
            continue
        if policy == "reject":
            raise RequestError(422, "unseen_category", unseen_message(value, known), where(name, i))
        out[i] = None
        unseen[name] = unseen.get(name, 0) + 1
    return out


def check_columns(columns: dict[str, list], spec: FeatureSpec, policy: str, where: Locator) -> CheckedBatch:
    unseen: dict[str, int] = {}
    missing = frozenset(spec.missing_values)
    data = dict(zip(spec.numeric_inputs, _numeric(columns, spec, where, missing), strict=True))
    for name, known in spec.category_index.items():
        data[name] = _categorical(columns[name], name, known, policy, where, unseen, missing)
    return CheckedBatch(data, unseen)


def check_batch_size(n_rows: int, max_batch: int, field: str) -> None:
    if n_rows == 0:
        raise RequestError(400, "empty_batch", "the batch is empty", field)
    if n_rows > max_batch:
        raise RequestError(400, "batch_too_large", f"{n_rows} rows, more than the limit of "
                           f"{max_batch}", field)


def instance_field(i: int, name: object) -> str:
    """Where a feature of an instance is: ``instances[3].age``; a name that is no identifier in
    quotes, ``instances[3]["contract.type"]``, so that the field reads one way only."""
    if isinstance(name, str) and name.isidentifier():
        return f"instances[{i}].{name}"
    return f"instances[{i}][{codec.dumps(name).decode()}]"


def counterpart(name: str, others: list) -> str | None:
    """Which of ``others`` (names a request sent, or a model's) most likely means ``name``: one
    spelt alike (:func:`values.spelling`: ``Age In Years`` for ``age_in_years``), else the closest."""
    texts = [other for other in others if isinstance(other, str)]
    alike = [other for other in texts if spelling(other) == spelling(name)]
    return (alike or difflib.get_close_matches(name, texts, n=1) or [None])[0]


def instances_to_columns(body: object, spec: FeatureSpec, max_batch: int,
                         ignore_unknown: bool = False) -> tuple[dict[str, list], set[str], list | None]:
    """``{"instances": [{feature: value}, ...]}`` to one list per input column, the names dropped
    as unknown (``ignore_unknown``; else an unknown name is refused), and each instance's value of
    the spec's id column (``None`` when no instance sent one)."""
    if not isinstance(body, dict) or "instances" not in body:
        raise RequestError(400, "invalid_body", 'expected a JSON object {"instances": [...]}')
    unexpected = sorted(set(body) - {"instances"})
    if unexpected:
        raise RequestError(400, "invalid_body", f"unexpected keys {unexpected}", unexpected[0])
    instances = body["instances"]
    if not isinstance(instances, list):
        raise RequestError(400, "invalid_body", "instances must be a list of objects", "instances")
    check_batch_size(len(instances), max_batch, "instances")
    inputs, expected, identified = spec.inputs, spec.input_names, spec.request_names
    ignored: set[str] = set()
    for i, instance in enumerate(instances):
        if not isinstance(instance, dict):
            raise RequestError(400, "invalid_body", "each instance must be an object of "
                               "feature values", f"instances[{i}]")
        keys = instance.keys()
        if keys != expected and keys != identified:
            missing = [n for n in inputs if n not in instance]
            unknown = sorted(k for k in instance if k not in identified)
            if missing:
                sent = counterpart(missing[0], unknown)
                raise RequestError(422, "missing_feature", f"missing feature {shown(missing[0])} "
                                   + (f"(the instance names it {shown(sent)}; names are exact)" if sent else
                                      "(send null for a missing value)"), instance_field(i, missing[0]))
            if not ignore_unknown:
                raise RequestError(422, "unknown_feature", f"unknown feature {shown(unknown[0])}; the model "
                                   f"takes {inputs}" + id_column_note(spec), instance_field(i, unknown[0]))
            ignored.update(unknown)
    # Each instance's inputs in one call, then rows to columns: a third of the time of appending value
    # by value at 100 rows, and no slower at one.
    rows = list(map(operator.itemgetter(*inputs), instances))
    if len(inputs) == 1:  # itemgetter of one name gives the value itself
        columns = {inputs[0]: rows}
    else:
        columns = dict(zip(inputs, map(list, zip(*rows, strict=True)), strict=True))
    if not spec.id_column:
        return columns, ignored, None
    ids = check_ids([instance.get(spec.id_column) for instance in instances],
                    lambda i: instance_field(i, spec.id_column))
    return columns, ignored, ids if any(v is not None for v in ids) else None


def id_column_note(spec: FeatureSpec) -> str:
    return f" and, beside them, the id {spec.id_column!r}" if spec.id_column else ""


_ID_TYPES = frozenset({str, int, type(None)})
# The integers the JSON parser (orjson) reads as such; past them it reads a float, which may not
# hold every digit of an id.
ID_INTEGERS = (-2**63, 2**64 - 1)


def check_ids(values: list, where: Callable[[int], str]) -> list:
    """The id column's values, one per row: not an input, but kept in the prediction log to join later
    labels by. Each is a string, an integer or null; the first that is not is refused, named by
    ``where(row)``."""
    if not _ID_TYPES.issuperset(map(type, values)):
        values = list(values)
        for i, value in enumerate(values):
            if type(value) is float and value.is_integer() and ID_INTEGERS[0] <= value <= ID_INTEGERS[1]:
                values[i] = int(value)  # 7.0 is JSON's 7 (pandas writes an integer column with a null so)
            elif type(value) not in _ID_TYPES:
                refuse_id(value, where(i))
    return values


def refuse_id(value: object, field: str) -> NoReturn:
    if type(value) is float and value.is_integer():  # past ID_INTEGERS: the JSON parser's reading of it
        raise RequestError(422, "wrong_type", f"the id is an integer past 64 bits, which is read as the number "
                           f"{value:g}: send it as a string", field)
    raise RequestError(422, "wrong_type", f"expected a string, an integer or null for the id, got {shown(value)}",
                       field)
