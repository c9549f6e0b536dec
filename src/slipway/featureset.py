"""Feature definitions, written once: the ``featurize`` stage and the server both use this.

A :class:`FeatureSpec` names the raw inputs (numeric and categorical, with the categories seen in
training) and the derived features from :mod:`slipway.model.features`. ``transform`` turns raw
rows (a training table or a request's instances) into the model's input frame, column for column
the same in both places. The spec travels inside ``model.json``, so the server rebuilds it from the
bundle and never from params.
"""

from __future__ import annotations

import re
import traceback
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from slipway.errors import DataError, ParamsError, SlipwayError
from slipway.model.features import DERIVED_FEATURES, DerivedFeature
from slipway.pipeline.paths import BATCH_COLUMN
from slipway.values import (
    NUMBER_FORMATS,
    NUMBER_LIKE,
    as_numbers,
    datetime_seconds,
    text_numbers,
    written_numbers_advice,
)


def category_labels(series: pd.Series) -> pd.Series:
    """Category labels are strings, so ``1`` in a CSV and ``"1"`` in a JSON request agree."""
    if ptypes.is_string_dtype(series) and not ptypes.is_bool_dtype(series):
        return series
    return series.astype(object).where(series.isna(), series.astype(str))


class FeatureCodeError(SlipwayError):
    """A derived feature's code failed, or returned something other than one number per row."""


def compute_derived(name: str, feature: DerivedFeature, raw: Mapping[str, np.ndarray], rows: int) -> np.ndarray:
    """One derived feature, given only the inputs it declares: a feature that reads any other
    column fails here, in training, rather than when a later edit stops providing that column."""
    try:
        values = np.asarray(feature.compute({column: raw[column] for column in feature.inputs}),
                            dtype=np.float64)
    except Exception as exc:
        frames = traceback.extract_tb(exc.__traceback__)
        code = getattr(feature.compute, "__code__", None)
        # Point at the feature's own line, not at the numpy or pandas frame under it.
        own = [f for f in frames if code and f.filename == code.co_filename] or frames
        where = f"{own[-1].filename}:{own[-1].lineno}"
        hint = f" (its inputs: {', '.join(feature.inputs)})" if isinstance(exc, KeyError) else ""
        raise FeatureCodeError(f"derived feature {name!r} failed at {where}: "
                               f"{type(exc).__name__}: {exc}{hint}") from exc
    if values.shape != (rows,):
        raise FeatureCodeError(f"derived feature {name!r} returned shape {values.shape} for {rows} "
                               f"rows; it must return one number per row")
    return values


@dataclass
class FeatureSpec:
    numeric: list[str]
    categorical: dict[str, list[str]]
    derived: list[str] = field(default_factory=list)
    # The code of the derived features: this checkout's, or, for the gate's champion, the code its
    # model was trained with (and its image runs).
    definitions: Mapping[str, DerivedFeature] = field(default_factory=lambda: DERIVED_FEATURES,
                                                      repr=False, compare=False)
    # Texts that mean a missing value (data.na_values): training read them so, a request may send them.
    missing_values: tuple[str, ...] = ()
    # The id column (data.id_column), unless a derived feature reads it as an input: a request may
    # send it beside the inputs, and the prediction log keeps it, so labels known later can be joined.
    id_column: str | None = None
    # Inputs of derived features that training holds as dates (the timestamp column): the features get
    # them as seconds since 1970-01-01 UTC, and a request sends them as ISO 8601 text or epoch time.
    times: tuple[str, ...] = ()
    # How training read numbers written as text (data.decimal, data.thousands): a request's numbers
    # sent as text are read so.
    number_format: tuple[str, str | None] = NUMBER_FORMATS[0]
    # The strptime format training read the times in (data.timestamp_format), if one was set: a request
    # may send a time so, as well as in ISO 8601 or as epoch time.
    time_format: str | None = None

    @cached_property
    def inputs(self) -> list[str]:
        """Raw columns a row must carry: declared features plus what derived features read."""
        names = list(self.numeric) + list(self.categorical)
        for name in self.derived:
            names += [c for c in self.definitions[name].inputs if c not in names]
        return names

    @cached_property
    def input_names(self) -> frozenset[str]:
        """The inputs as a set, which a request's names are checked against."""
        return frozenset(self.inputs)

    @cached_property
    def request_names(self) -> frozenset[str]:
        """Every name a request may send: the inputs and the id column."""
        return self.input_names | {self.id_column} if self.id_column else self.input_names

    @cached_property
    def numeric_inputs(self) -> list[str]:
        """The inputs read as numbers: every input that is not categorical."""
        return [name for name in self.inputs if name not in self.categorical]

    @cached_property
    def columns(self) -> list[str]:
        """The model's input columns, in order."""
        return list(self.numeric) + list(self.derived) + list(self.categorical)

    @cached_property
    def category_index(self) -> dict[str, dict[str, int]]:
        """Per categorical feature, each category's code (its position in the training list)."""
        return {name: {c: i for i, c in enumerate(cats)} for name, cats in self.categorical.items()}

    def derive(self, raw: dict[str, np.ndarray], rows: int) -> np.ndarray:
        """Derived features from raw input arrays, one column each; infinities become missing."""
        block = np.empty((rows, len(self.derived)))
        for j, name in enumerate(self.derived):
            block[:, j] = compute_derived(name, self.definitions[name], raw, rows)
        block[~np.isfinite(block)] = np.nan
        return block

    def category_codes(self, name: str, values) -> list[float]:
        """Index of each value (a string, or None for missing) in the training categories; NaN for
        missing or unseen."""
        index = self.category_index[name]
        return [index.get(v, np.nan) for v in values]

    def matrix(self, raw: dict[str, np.ndarray]) -> np.ndarray:
        """Model input as one float matrix (categories as codes): the serving fast path."""
        rows = len(raw[self.inputs[0]])
        out = np.empty((rows, len(self.columns)))
        first_derived, first_categorical = len(self.numeric), len(self.numeric) + len(self.derived)
        for j, name in enumerate(self.numeric):
            out[:, j] = raw[name]
        out[:, first_derived:first_categorical] = self.derive(raw, rows)
        if self.categorical:
            out[:, first_categorical:] = np.array(
                [self.category_codes(name, raw[name]) for name in self.categorical]).T
        return out

    def frame(self, matrix: np.ndarray) -> pd.DataFrame:
        """:meth:`matrix` as the DataFrame the estimator was fitted on (categorical dtypes)."""
        data = {}
        for j, name in enumerate(self.columns):
            if name in self.categorical:
                codes = np.where(np.isnan(matrix[:, j]), -1, matrix[:, j]).astype(np.int64)
                data[name] = pd.Categorical.from_codes(codes, categories=self.categorical[name])
            else:
                data[name] = matrix[:, j]
        return pd.DataFrame(data)

    def frame_matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """The inverse of :meth:`frame`: model input columns to the float matrix."""
        columns = []
        for name in self.columns:
            if name in self.categorical:
                codes = frame[name].cat.codes.to_numpy()
                columns.append(np.where(codes < 0, np.nan, codes).astype("float64"))
            else:
                columns.append(frame[name].to_numpy(dtype="float64"))
        return np.column_stack(columns)

    def transform(self, raw: pd.DataFrame) -> pd.DataFrame:
        """Raw rows to model input. Unseen categories become missing (the model's own policy)."""
        missing = [c for c in self.inputs if c not in raw.columns]
        if missing:
            raise DataError(f"missing input columns: {', '.join(missing)}")
        arrays = {}
        for name in self.inputs:
            if name in self.categorical:
                arrays[name] = category_labels(raw[name]).to_numpy(dtype=object)
                continue
            if ptypes.is_datetime64_any_dtype(raw[name]):  # pandas' own numbers for dates are nanoseconds
                arrays[name] = datetime_seconds(raw[name])
                continue
            try:
                arrays[name] = pd.to_numeric(raw[name], errors="raise").to_numpy(dtype="float64")
            except (ValueError, TypeError) as exc:
                raise DataError(f"column {name!r} is not numeric: {exc}") from None
        out = {name: arrays[name] for name in self.numeric}
        out.update(zip(self.derived, self.derive(arrays, len(raw)).T, strict=True))
        for name, categories in self.categorical.items():
            out[name] = pd.Categorical(arrays[name], categories=categories)
        return pd.DataFrame(out, index=raw.index)[self.columns]

    def to_dict(self) -> dict:
        """Categorical features as a list, so column order survives JSON with sorted keys."""
        data = {"numeric": self.numeric, "derived": self.derived,
                "categorical": [{"name": n, "categories": c} for n, c in self.categorical.items()]}
        if self.missing_values:
            data["missing_values"] = list(self.missing_values)
        if self.id_column is not None:
            data["id_column"] = self.id_column
        if self.times:
            data["times"] = list(self.times)
        if self.number_format != NUMBER_FORMATS[0]:
            data["number_format"] = list(self.number_format)
        if self.time_format is not None:
            data["time_format"] = self.time_format
        return data

    @classmethod
    def from_dict(cls, data: dict, definitions: Mapping[str, DerivedFeature] = DERIVED_FEATURES) -> FeatureSpec:
        """The spec saved in model.json, its derived features computed by ``definitions`` (this
        checkout's :mod:`slipway.model.features` unless given another model's)."""
        categorical = {entry["name"]: list(entry["categories"]) for entry in data["categorical"]}
        spec = cls(list(data["numeric"]), categorical, list(data.get("derived", [])), definitions,
                   tuple(data.get("missing_values", ())), data.get("id_column"), tuple(data.get("times", ())),
                   tuple(data.get("number_format", NUMBER_FORMATS[0])), data.get("time_format"))
        unknown = [d for d in spec.derived if d not in spec.definitions]
        if unknown:
            raise DataError(f"derived features not defined in slipway.model.features: {unknown}")
        return spec


def request_changes(served: FeatureSpec, new: FeatureSpec) -> list[str]:
    """What requests that ``served``'s model answers ``new``'s model would refuse, each with the
    server's refusal reason: the clients must change before the new model serves them. Categories
    gone are refused under the server's default ``SLIPWAY_UNSEEN_CATEGORIES=reject``."""
    changes = [f"needs {name!r}, which production does not take: requests without it are refused "
               "(missing_feature)" for name in new.inputs if name not in served.inputs]
    # A name the new model takes as its id column is still accepted, though no longer read.
    changes += [f"no longer takes {name!r}: requests with it are refused (unknown_feature)"
                for name in served.inputs if name not in new.inputs and name != new.id_column]
    if served.id_column and served.id_column != new.id_column and served.id_column not in new.inputs:
        changes.append(f"no longer takes the id {served.id_column!r} beside the inputs: requests with it are "
                       "refused (unknown_feature)")
    for name in (n for n in new.inputs if n in served.inputs):
        if name in served.categorical and name not in new.categorical:
            changes.append(f"reads {name!r} as a number, production as categories: text values are refused "
                           "(wrong_type)")
        elif name in new.categorical and name not in served.categorical:
            changes.append(f"reads {name!r} as categories, production as a number: numbers other than its "
                           f"{len(new.categorical[name])} categories are refused (unseen_category)")
        elif name in new.categorical:
            gone = [c for c in served.categorical[name] if c not in new.category_index[name]]
            if gone:
                changes.append(f"no longer knows {name!r} {_listed(gone)}: requests with "
                               f"{'it' if len(gone) == 1 else 'them'} are refused (unseen_category)")
    markers = [m for m in served.missing_values if m not in new.missing_values]
    if markers:
        changes.append(f"no longer reads {_listed(markers)} as a missing value (data.na_values): requests that "
                       f"send {'it' if len(markers) == 1 else 'them'} are refused (wrong_type for a number, "
                       "unseen_category for categories)")
    return changes


def _listed(values: list[str], limit: int = 5) -> str:
    shown = ", ".join(repr(v) for v in values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def values_of_their_own(values: pd.Series) -> str:
    """Advice for text most of whose distinct values occur once (notes, e-mail addresses, order
    numbers): no limit fits it, as every later row brings a value the model never saw."""
    counts = values.dropna().astype(str).value_counts()
    once = counts.index[counts == 1]
    if len(once) <= len(counts) / 2:
        return ""
    return (f"{len(once)} of its values occur in one row each, such as {once[:2].tolist()}: free text or an "
            "identifier, not categories a model can learn (the entity id is data.id_column); drop it "
            "(data.drop_columns), or compute numbers from it where the batches are read (loading.py)")


def non_numbers(values: pd.Series, limit: int = 2) -> list:
    """Up to ``limit`` values that are not numbers. Finite numbers stored as text (a Parquet
    string column) count as numbers: :meth:`FeatureSpec.transform` reads them as such. Booleans
    and dates do not."""
    if ptypes.is_numeric_dtype(values) and not ptypes.is_bool_dtype(values):
        return []  # infinities included: validate's finite rule reports them
    present = values.dropna()
    return present[~np.isfinite(as_numbers(present))].astype(object).head(limit).tolist()


# A text column this much numbers, the rest a few distinct texts, is numbers with markers of
# missing values ("?", "-", "unknown"), or written as a CSV setting would read them (a decimal comma,
# thousands separators), or numbers a writer stored as text (Spark's CSV reader without
# inferSchema makes every column a string): inferred as categories, its numbers would lose their order.
NUMBER_SHARE, MARKERS = 0.9, 5


def refuse_numbers_as_text(train: pd.DataFrame, inferred: list[str],
                           number_format: tuple[str, str | None] = NUMBER_FORMATS[0]) -> None:
    """Columns inferred as categorical that are numbers but for how they are written, a few
    markers or their type, named with the ways out: the settings that read them (unless
    ``number_format``, the configured ``data.decimal`` and ``data.thousands``, already does), the
    markers as missing values, or the column declared numeric (measurements) or categorical (codes,
    such as zip codes, whose leading zeros a number would lose)."""
    found, marked, stored = [], False, False
    for name in inferred:
        read = text_numbers(train[name])
        if read is None or read.share < NUMBER_SHARE or len(read.others) > MARKERS:
            continue
        written = [] if read.read_by(number_format) else [read.advice(number_format)]
        markers = [f"{int(read.others.sum())} of {int(read.numbers.sum() + read.others.sum())} values are "
                   f"{sorted(read.others.index)}"] if len(read.others) else []
        as_text = [] if written or markers else [f"numbers stored as text, such as {read.numbers.index[0]!r}"]
        found.append(f"{name!r} ({'; '.join(written + markers + as_text)})")
        marked, stored = marked or bool(markers), stored or bool(as_text)
    if found:
        raise ParamsError(f"params: columns that hold numbers but for how they are written or a few other values: "
                          f"{', '.join(found)}; " + ("if the other values mean missing, list them in data.na_values; "
                                                     if marked else "")
                          + ("if the numbers are measurements, declare the columns in data.numeric_features; "
                             if stored else "")
                          + "if the numbers are codes, declare the columns in data.categorical_features")


# Signs written beside a number: percent and per mille, and the common currency signs.
NUMBER_SIGNS = "%\u2030$\u20ac\u00a3\u00a5\u20b9\u20bd\u20a9\u20aa\u20ab\u20b4\u20a6\u20b1\u0e3f"
SIGNED_NUMBER = re.compile(rf"([{NUMBER_SIGNS}]\s?)?[+-]?([{NUMBER_SIGNS}]\s?)?{NUMBER_LIKE}(\s?[{NUMBER_SIGNS}])?")
SIGN_BESIDE_DIGIT = re.compile(rf"[{NUMBER_SIGNS}]\s*[+-]?\d|\d\s*[{NUMBER_SIGNS}]")
# The rows looked at first (the checks below run on every column inferred categorical, at every
# featurize): a column of words is passed over on these, not read whole.
PROBE_ROWS = 1000


def numbers_with_signs(values: pd.Series) -> str | None:
    """An example, if at least :data:`NUMBER_SHARE` of a text column's values are numbers written
    with a sign (``45%``, ``$1,234.50``, ``12 €``) and some sign is there: as categories, their
    order would be lost, and ``99%`` would be a category the model never saw."""
    if not ptypes.is_object_dtype(values) or not values.head(PROBE_ROWS).map(
            lambda v: isinstance(v, str) and SIGN_BESIDE_DIGIT.search(v) is not None).any():
        return None
    counts = values.value_counts()  # each distinct value once
    texts = pd.Series([str(v).strip() for v in counts.index], index=counts.index, dtype=object)
    signed = texts.str.contains(f"[{NUMBER_SIGNS}]") & texts.str.fullmatch(SIGNED_NUMBER, na=False)
    if counts[signed].sum() < NUMBER_SHARE * counts.sum():
        return None
    return str(texts[signed].iloc[0])


def refuse_numbers_with_signs(train: pd.DataFrame, inferred: list[str]) -> None:
    """Columns inferred as categorical that are numbers written with a percent or currency sign,
    named with the way out: the numbers read where the batches are read, so requests send them too."""
    found = {name: example for name in inferred if (example := numbers_with_signs(train[name]))}
    if found:
        raise ParamsError("params: columns of numbers written with a sign, which as categories would lose their "
                          "order: " + ", ".join(f"{name!r} (such as {example!r})" for name, example in found.items())
                          + "; read them as numbers where the batches are read (slipway/model/loading.py), "
                          "which requests then send too, or declare the columns in data.categorical_features "
                          "if they are codes")


# Text written as a date: year first (2025-03-14, 2025-03, 2025/03/14), or day and month first with a
# four-digit year (14.03.2025, 3/14/2025), either with a time of day and a zone. A CSV's dates stay text
# through ingest, as does a Hive partition such as dt=2025-03-14.
DATE_TEXT = re.compile(r"(\d{4}-\d{1,2}(-\d{1,2})?|\d{4}/\d{1,2}/\d{1,2}|\d{1,2}[./-]\d{1,2}[./-]\d{4})"
                       r"([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*(Z|[+-]\d{2}:?\d{2})?)?")
# Enough distinct values to tell dates from codes shaped like them (2025-13 is no month).
DATE_SAMPLE = 1000


def written_as_dates(values: pd.Series) -> bool:
    """Whether every value of a text column is a date written as text (:data:`DATE_TEXT`, and one
    pandas reads, in one of the two orders of day and month)."""
    def dates(texts) -> bool:
        return all(isinstance(v, str) and DATE_TEXT.fullmatch(v.strip()) for v in texts)

    if not dates(values.head(PROBE_ROWS).dropna()):
        return False
    distinct = values.dropna().unique()
    if not len(distinct) or not dates(distinct):
        return False
    sample = pd.Series(distinct[:DATE_SAMPLE])
    with warnings.catch_warnings():  # of mixed time zones: a date all the same
        warnings.simplefilter("ignore")
        return any(pd.to_datetime(sample, format="mixed", dayfirst=dayfirst, errors="coerce").notna().all()
                   for dayfirst in (False, True))


def dates_not_stored_as_dates(values: pd.Series) -> bool:
    """Whether a column holds dates other than as pandas' dates: Python dates (Parquet's date type, as
    pandas reads it) or text written as dates."""
    kind = pd.api.types.infer_dtype(values, skipna=True)
    return kind in ("date", "datetime") or (kind == "string" and written_as_dates(values))


def refuse_dates(train: pd.DataFrame, inferred: list[str]) -> None:
    """Columns of dates inferred as categorical, as dates or as text written so: every date after
    training would be a category the model never saw (as few distinct days or months pass for
    categories), so such a column is named with what to do instead."""
    dates = [name for name in inferred
             if ptypes.is_datetime64_any_dtype(train[name]) or dates_not_stored_as_dates(train[name])]
    if dates:
        raise ParamsError(f"params: columns {dates} hold dates, which as categories would never recur after "
                          "training: list them in data.drop_columns, and if the model should learn from one, "
                          "compute a number from it in a derived feature (slipway/model/features.py: days since "
                          "signup, say; stored as dates, it gets them as seconds since the epoch, and requests "
                          "send the dates); a column of codes written like dates stays categorical when "
                          "data.categorical_features lists it")


def infer_spec(
    train: pd.DataFrame,
    *,
    exclude: list[str],
    numeric: list[str] | None,
    categorical: list[str] | None,
    derived: list[str],
    max_categories: int,
    drop: Sequence[str] = (),
    missing_values: Sequence[str] = (),
    number_format: tuple[str, str | None] = NUMBER_FORMATS[0],
    id_column: str | None = None,
    target: str | None = None,
    time_format: str | None = None,
) -> FeatureSpec:
    """Declared features are taken as given (numeric ones must hold numbers); ``None`` (``auto``)
    infers them from dtypes. ``drop`` (``data.drop_columns``) is left out like ``exclude``, but
    must name columns of the data: a misspelt name would leave the column in the model.
    ``missing_values`` (``data.na_values``) is recorded for the server, which reads them as training did;
    ``number_format`` (``data.decimal``, ``data.thousands``) is what ingest read numbers in, recorded
    for the server, which reads numbers sent as text so.
    ``id_column`` (``data.id_column``) is recorded for the server, which takes it beside the inputs;
    ``target`` (``data.target``) is no input of a derived feature: the server has no label to give it.
    ``time_format`` (``data.timestamp_format``) is recorded for the server when a derived feature reads
    the times, which a request may then send in it."""
    candidates = [c for c in train.columns if c not in exclude and c not in drop and c != BATCH_COLUMN]
    for key, declared in (("numeric_features", numeric), ("categorical_features", categorical),
                          ("drop_columns", drop)):
        absent = [c for c in declared or [] if c not in train.columns]
        if absent:
            raise ParamsError(f"params: data.{key} names columns not in the data: {absent}")
    for key, declared in (("numeric_features", numeric), ("categorical_features", categorical)):
        kept_out = [c for c in declared or [] if c in exclude or c in drop]
        if kept_out:  # the label as a feature is a leak; an id or a time, a feature that never recurs
            raise ParamsError(f"params: data.{key} names columns that are never features: {kept_out} "
                              "(the target, id and timestamp columns, and data.drop_columns)")
    both = [c for c in numeric or [] if c in (categorical or [])]
    if both:
        raise ParamsError(f"params: data.numeric_features and data.categorical_features both name {both}")
    not_numeric = {c: non_numbers(train[c]) for c in numeric or []}
    not_numeric = {c: examples for c, examples in not_numeric.items() if examples}
    if not_numeric:
        written = {c: advice for c in not_numeric
                   if (advice := written_numbers_advice(train[c], number_format))}
        raise ParamsError("params: data.numeric_features names columns that are not numeric: "
                          + ", ".join(f"{c} ({train[c].dtype}, e.g. {examples})" for c, examples in not_numeric.items())
                          + "".join(f"; {c}: {advice}" for c, advice in written.items())
                          + "; declare them in data.categorical_features")
    numbers = [c for c in candidates if ptypes.is_numeric_dtype(train[c]) and not ptypes.is_bool_dtype(train[c])]
    if numeric is None:
        numeric = [c for c in numbers if c not in (categorical or [])]
    if categorical is None:
        categorical = [c for c in candidates if c not in numeric]
        # Declaring some numeric features (those stored as text, say) would make every other
        # column of numbers a category without a word: their order lost.
        undeclared = [c for c in categorical if c in numbers]
        if undeclared:
            raise ParamsError(f"params: data.numeric_features lists some numeric features but not the columns of "
                              f"numbers {undeclared}, which would become categories: list them there too, or in "
                              "data.categorical_features if they are codes, or drop them (data.drop_columns)")
        refuse_dates(train, categorical)
        refuse_numbers_as_text(train, categorical, number_format)
        refuse_numbers_with_signs(train, categorical)
    empty = [c for c in [*numeric, *categorical] if train[c].isna().all()]
    if empty:  # most often a broken export or join; a model can learn nothing from such a column
        raise DataError(f"features with no value in the {len(train)} training rows: {empty}; mend the export that "
                        "lost them, or leave them out (data.drop_columns)")
    unknown = [d for d in derived if d not in DERIVED_FEATURES]
    if unknown:
        raise ParamsError(
            f"params: featurize.derived names features not defined in "
            f"slipway/model/features.py: {unknown}"
        )
    lacking = {name: absent for name in derived
               if (absent := [c for c in DERIVED_FEATURES[name].inputs if c not in train.columns])}
    if lacking:  # most often the example's features, left in params.yaml when adopting the template
        raise ParamsError("params: featurize.derived names features that read columns the data lacks: "
                          + "; ".join(f"{name} reads {absent}" for name, absent in lacking.items())
                          + "; set featurize.derived to the features your data has (or [])")
    unread = {name: texts for name in derived if (texts := [
        c for c in DERIVED_FEATURES[name].inputs
        if not ptypes.is_datetime64_any_dtype(train[c]) and dates_not_stored_as_dates(train[c])])}
    if unread:  # pandas would read their text as no number, or a Parquet date as an object
        raise ParamsError("params: featurize.derived names features that read dates not stored as dates: "
                          + "; ".join(f"{name} reads {columns}" for name, columns in unread.items())
                          + "; read them as dates where the batches are read (slipway/model/loading.py: "
                          "pd.to_datetime), and the feature gets seconds since 1970-01-01 UTC, as it gets "
                          "data.timestamp_column")
    leaking = [name for name in derived if target is not None and target in DERIVED_FEATURES[name].inputs]
    if leaking:  # the label, known only after the outcome: a leak in training, absent when serving
        raise ParamsError(f"params: featurize.derived names features that read the target {target!r} "
                          f"(data.target), which no request has: {leaking}")
    categories = {}
    for name in categorical:
        labels = category_labels(train[name]).dropna().unique()
        if len(labels) > max_categories:
            if written := written_numbers_advice(train[name], number_format):
                advice = f"its values are {written}"
            elif not non_numbers(train[name]):
                advice = "its values are all numbers: declare it in data.numeric_features, drop it " \
                         "(data.drop_columns) or raise the limit"
            elif once := values_of_their_own(train[name]):
                advice = once
            else:
                advice = "drop it (data.drop_columns) or raise the limit"
            raise ParamsError(f"params: categorical feature {name!r} has {len(labels)} categories, more than "
                              f"featurize.max_categories={max_categories}; {advice}")
        categories[name] = sorted(map(str, labels))
    spec = FeatureSpec(list(numeric), categories, list(derived), missing_values=tuple(missing_values),
                       number_format=number_format)
    times = tuple(name for name in spec.numeric_inputs if ptypes.is_datetime64_any_dtype(train[name]))
    if id_column in spec.inputs:  # requests send it as an input
        id_column = None
    return replace(spec, times=times, id_column=id_column,  # a new spec: none of its cached names computed
                   time_format=time_format if times else None)
