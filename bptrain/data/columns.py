"""Feature columns one at a time: each column's kind and rules, and how its values are read, filled
and encoded; the statistics of one column are fitted here, from the training rows only.

A numeric column becomes one input, a categorical column one input per category (one-hot), plus
a 0/1 "was missing" input when asked. Errors name the column and the rows, counted from 1 after
the header (plus `first_row` for a chunk that starts further into a file).
"""

from __future__ import annotations

import ctypes
import math
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bptrain import lazy
from bptrain.errors import ConfigError, DataError

pd = lazy.module("pandas")  # imported on first use (bptrain.lazy): predict on a plain CSV file needs none of it

NUMERIC_SHARE_OF_TEXT = 0.95  # a text column this much made of numbers is numeric (the rest are errors)
SHOWN_ROWS = 5
OTHER = "(other)"
RELEASE_BATCH = 64  # columns a Dropping removes at once


# --- values and kinds ---------------------------------------------------------------------------


def label(value: Any) -> str:
    """A value as a category or class label: whole floats without `.0` (2007.0 and 2007 agree)."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


# The form of a categorical column's values in the training file, which decides how a cell read
# later becomes a label (cell_label): `number` (pandas read the column as numbers), `bool` (as
# true/false) or `text` (anything else).
FORMS = ("number", "bool", "text")
TRUE_SPELLINGS = frozenset({"True", "TRUE", "true"})  # pandas' spellings of true/false in a CSV file
FALSE_SPELLINGS = frozenset({"False", "FALSE", "false"})
INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")
DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?:[iI][nN][fF]|[iI][nN][fF][iI][nN][iI][tT][yY])")


def form_of(column: pd.Series) -> str:
    """The form of a training column's values: `number`, `bool` or `text` (FORMS); a pandas
    category column's is its categories'."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        column = pd.Series(column.cat.categories)
    if pd.api.types.is_bool_dtype(column):
        return "bool"
    if is_number_dtype(column):
        return "number"
    kind = pd.api.types.infer_dtype(column, skipna=True)  # an object column: true/false with missing values, say
    return {"boolean": "bool", "integer": "number", "floating": "number", "mixed-integer-float": "number"}.get(kind, "text")


def form_of_labels(labels: list[str]) -> str:
    """The form of a column from its category labels, for model files that do not record it: `number`
    when each is a number's label, `bool` when they are True and False, else `text`."""
    numbers = [_number_text(v) for v in labels]
    if all(n is not None and label(n) == v for n, v in zip(numbers, labels)):
        return "number"
    return "bool" if set(labels) <= {"True", "False"} else "text"


def cell_label(value: Any, form: str, decimal: str = ".") -> str:
    """The label of one present value of a categorical column whose training values had `form`:
    text is read in that form (`number`: `2007`, `2007.0`, `+2007` and `02007` are all `2007`;
    `bool`: pandas' spellings of true and false are `True` and `False`), and kept as written when
    it cannot be; any other value is label(value). `decimal` is the decimal mark of the text."""
    if not isinstance(value, str):
        return label(value)
    if form == "number":
        number = _number_text(value.strip(" \t"), decimal)
        return value if number is None else label(number)
    if form == "bool":
        return "True" if value in TRUE_SPELLINGS else "False" if value in FALSE_SPELLINGS else value
    return value


def _number_text(text: str, decimal: str = ".") -> int | float | None:
    """The number pandas reads from the cell `text` (surrounding spaces removed) in a column of
    numbers, or None when it reads none: integers exactly, decimals with `decimal` as their mark."""
    if INTEGER_TEXT.fullmatch(text) and len(text) < 4000:  # Python reads integers of up to 4300 digits
        return int(text)
    if decimal != ".":
        if "." in text:
            return None
        text = text.replace(decimal, ".", 1)
    return float(text) if DECIMAL_TEXT.fullmatch(text) else None


def numbers_as_written(cells: pd.Series, decimal: str = ".") -> pd.Series | None:
    """The text `cells` of a column of numbers (NaN where missing) as the numbers written, integers
    exactly (Python ints, of any size), in an object column; None when a cell is no number's text."""
    codes, distinct = pd.factorize(cells)  # once per distinct value; Series.map would make whole floats of the ints again
    numbers = [_number_text(str(v).strip(" \t"), decimal) for v in distinct]
    if None in numbers:
        return None
    values = np.empty(len(numbers) + 1, dtype=object)
    values[:-1], values[-1] = numbers, np.nan
    return pd.Series(values[codes], index=cells.index, name=cells.name, dtype=object)  # code -1 (missing) picks the NaN


def is_number_dtype(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)

def infer_kind(column: pd.Series) -> str:
    """numeric for numbers, and for text that is nearly all numbers; categorical for text, true/false
    and pandas categories. Integers with few values stay numeric unless declared categorical."""
    if isinstance(column.dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(column):
        return "categorical"
    if is_number_dtype(column):
        return "numeric"
    values = column.dropna()
    if len(values) == 0:
        return "numeric"
    # a pandas text column holds no true/false values (looking row by row: 22 ms for 54,000 rows)
    if not isinstance(values.dtype, pd.StringDtype) and values.map(lambda v: isinstance(v, (bool, np.bool_))).any():
        return "categorical"
    text = values.astype(str)
    distinct, counts = distinct_counts(text)
    numbers = counts[pd.to_numeric(distinct, errors="coerce").notna().to_numpy()].sum() / len(text)
    return "numeric" if numbers >= NUMERIC_SHARE_OF_TEXT else "categorical"


def distinct_counts(text: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """The distinct values of `text` (strings, none missing) in the order they first appear, and how
    often each does: a test of every value is then made once per distinct value (turning the text of
    200,000 rows into numbers, one by one, took 0.18 s a column)."""
    codes, distinct = pd.factorize(text)
    return pd.Series(distinct, dtype=text.dtype), np.bincount(codes, minlength=len(distinct))

# --- one column -----------------------------------------------------------------------------------


@dataclass
class Column:
    """One feature column: how it is read, filled and encoded, and (after fitting) its statistics."""

    name: str
    kind: str  # numeric | categorical
    dtype: str  # pandas dtype in the training file
    missing: str  # error | drop | mean | median | most_frequent | constant
    fill_value: float | str  # for missing: constant
    scale: str  # standard | minmax | robust | none
    indicator: bool  # add a 0/1 input: was the value missing?
    max_categories: int = 0
    fill: float | str | None = None  # the value missing cells get (fitted)
    categories: list[str] = field(default_factory=list)  # one input each, in this order (fitted)
    other: list[str] = field(default_factory=list)  # rare categories sharing the `(other)` input (fitted)
    form: str = "text"  # of the training values, for a categorical column (FORMS): how cells read later become labels

    def inputs(self) -> list[str]:
        """The names of the network inputs this column becomes."""
        if self.kind == "numeric":
            names = [self.name]
        else:
            names = [f"{self.name}={c}" for c in self.categories] + ([f"{self.name}={OTHER}"] if self.other else [])
        return names + ([f"{self.name}_was_missing"] if self.indicator else [])

    def input_scales(self) -> list[str]:
        """The scaling of each input: the column's, but 0/1 indicators stay as they are."""
        return [self.scale] * (len(self.inputs()) - self.indicator) + ["none"] * self.indicator


def numeric_column(name: str, **settings: Any) -> Column:
    """A numeric column with the default rules (missing: error, scale: standard), `settings` changed."""
    defaults = {"kind": "numeric", "dtype": "float64", "missing": "error", "fill_value": 0.0, "scale": "standard", "indicator": False, "form": "number"}
    return Column(name=name, **{**defaults, **settings})


def resolve_columns(frame: pd.DataFrame, features: list[str], data) -> list[Column]:
    """Each feature's kind and rules, from `data` (a DataConfig): per-kind settings, then overrides."""
    columns = []
    for name in features:
        own, column = data.columns.get(name), frame[name]  # once: each look-up costs pandas tens of microseconds
        kind = own.kind if own is not None and own.kind != "auto" else infer_kind(column)
        base = data.numeric if kind == "numeric" else data.categorical
        settings = {k: getattr(base, k) for k in ("missing", "fill_value", "scale", "indicator")}
        settings["max_categories"] = getattr(base, "max_categories", 0)
        if own is not None:
            _check_override(name, kind, own)
            settings.update({k: v for k, v in own.model_dump(exclude={"kind"}).items() if v is not None})
        if kind == "numeric":
            settings["fill_value"] = float(settings["fill_value"])
        else:
            settings["fill_value"] = label(settings["fill_value"])
        form = "number" if kind == "numeric" else form_of(column)
        columns.append(Column(name=name, kind=kind, dtype=str(column.dtype), form=form, **settings))
    return columns


def _check_override(name: str, kind: str, own) -> None:
    """ConfigError when an override does not fit the kind the column was found to be."""
    key = f"data.columns.{name}"
    why = f"{name!r} is {kind}" + (" (set kind: categorical to change that)" if kind == "numeric" else " (set kind: numeric to change that)")
    if kind == "categorical" and own.missing in ("mean", "median"):
        raise ConfigError(f"{key}.missing: {own.missing} applies to numeric columns, and {why}; use most_frequent, constant, drop or error")
    if kind == "numeric" and own.max_categories is not None:
        raise ConfigError(f"{key}.max_categories: applies to categorical columns, and {why}")
    if kind == "numeric" and isinstance(own.fill_value, str):
        try:
            number = float(own.fill_value)
        except ValueError:
            raise ConfigError(f"{key}.fill_value: must be a number for the numeric column {name!r} (got {own.fill_value!r})") from None
        if not math.isfinite(number):  # "inf" and "nan" are numbers to float(), but no value to fill in
            raise ConfigError(f"{key}.fill_value: must be a finite number for the numeric column {name!r} (got {own.fill_value!r})")


class Dropping:
    """Removes the columns named to it from `frame`, RELEASE_BATCH at a time (and the rest at
    `flush`), so that a big frame's memory is handed back as its columns are used up: pandas
    removes columns at a cost per call that grows with the frame's columns, so one at a time
    would take time quadratic in them."""

    def __init__(self, frame: pd.DataFrame):
        self.frame, self.pending, self.held = frame, [], []

    def add(self, name: str, frees: bool = True) -> None:
        """Remove column `name` with the next RELEASE_BATCH columns; one whose values another array
        still holds (`frees` false) waits for a removal that does free memory, or for `flush`."""
        (self.pending if frees else self.held).append(name)
        if len(self.pending) >= RELEASE_BATCH:
            self.flush()

    def flush(self) -> None:
        names, self.pending, self.held = self.pending + self.held, [], []
        if not names:  # nothing was released: dropping no columns still costs pandas a copy of the index
            return
        try:
            with warnings.catch_warnings():
                # pandas 3.1 deprecates `inplace`, yet it is the only way to remove many columns from
                # a frame others hold at a cost per call, not per column; once it is gone, the loop
                warnings.simplefilter("ignore", DeprecationWarning)
                self.frame.drop(columns=names, inplace=True)
        except TypeError:
            for name in names:
                del self.frame[name]
        give_back_memory()


def give_back_memory() -> None:
    """Hand freed memory back to the system where the C library allows it (glibc): columns of a few
    hundred KB come from the heap, whose free middle glibc keeps unless asked, so the columns a
    Dropping frees would still count in the process's memory."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to ask
        pass


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)


def reuse_freed_memory(keep_bytes: int = 64 << 20, heap_bytes: int = 16 << 20) -> None:
    """Have the C library keep freed memory for the next allocations, in a process that allocates
    and frees buffers of a few MB over and over (streaming predict, 4 MB a block). glibc hands the
    top of its heap back once a few such buffers are free at once, and maps buffers past its
    adaptive threshold anew, so every block's buffers were first touched again: 240,000-295,000
    page faults on 278 MB of input, a third of the time. Now up to `keep_bytes` of freed heap is
    kept, and buffers under `heap_bytes` come from the heap. Process-wide; nothing where the C
    library is not glibc."""
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(M_MMAP_THRESHOLD, heap_bytes)
        libc.mallopt(M_TRIM_THRESHOLD, keep_bytes)
    except (OSError, AttributeError):  # not glibc: nothing to ask
        pass


# --- reading values -----------------------------------------------------------------------------


def rows_text(positions: np.ndarray, first_row: int) -> str:
    """`row 3` / `rows 3, 8, 12 (and 4 more)`: data rows counted from 1, the header not counted."""
    numbers = [str(first_row + int(p) + 1) for p in positions[:SHOWN_ROWS]]
    more = f" (and {len(positions) - SHOWN_ROWS} more)" if len(positions) > SHOWN_ROWS else ""
    return ("row " if len(positions) == 1 else "rows ") + ", ".join(numbers) + more


def numbers_of(column: pd.Series, name: str, source: str, first_row: int, hint: str) -> np.ndarray:
    """The column as float64, NaN where missing; DataError naming the rows that hold text or infinity."""
    if is_number_dtype(column):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
    else:
        present = column.notna().to_numpy()
        values = cell_numbers(column)
        bad = np.flatnonzero(present & np.isnan(values))
        if len(bad):
            shown = ", ".join(repr(str(column.iloc[i])) for i in bad[:3])
            raise DataError(f"{source}: column {name!r} must be numeric, but {rows_text(bad, first_row)} hold{'s' if len(bad) == 1 else ''} text: {shown}.{hint}")
    infinite = np.flatnonzero(np.isinf(values))
    if len(infinite):
        raise DataError(
            f"{source}: column {name!r} holds infinite values in {rows_text(infinite, first_row)}; "
            "replace them with numbers, or leave the cells empty to treat them as missing"
        )
    return values


def cell_numbers(column: pd.Series, *, booleans: bool = False) -> np.ndarray:
    """A column that pandas did not read as numbers (text, true/false, Python objects) as float64:
    each cell read as a number, NaN where missing or not a number. true/false are no numbers, as the
    cell `True` among numbers is not (pandas reads a column of nothing but true/false as truth
    values, which would otherwise become 1/0 or not depending on the other rows); with `booleans`
    (multilabel targets) they are 1/0."""
    cells = column.where(column.notna(), None).astype(object)
    if pd.api.types.is_bool_dtype(column):
        truth = np.ones(len(column), dtype=bool)
    elif column.dtype == object:  # Python values of any type, true/false among them
        truth = cells.map(lambda v: isinstance(v, (bool, np.bool_))).to_numpy(dtype=bool)
    else:
        truth = np.zeros(len(column), dtype=bool)
    values = pd.to_numeric(cells.where(~truth, None), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
    if booleans:
        values[truth] = cells[truth].astype(float).to_numpy()
    return values


def numpy_floats_or_ints(column: pd.Series) -> bool:
    """Whether the column holds float64 or int64 numbers in a numpy array (no missing-value mask)."""
    return numpy_float_or_int_dtype(column.dtype)


def numpy_float_or_int_dtype(dtype) -> bool:
    """Whether a column of `dtype` holds float64 or int64 numbers in a numpy array (numpy_floats_or_ints)."""
    return isinstance(dtype, np.dtype) and dtype in (np.float64, np.int64)


def _finite(values: np.ndarray) -> bool:
    """Whether every value of the float64 or int64 array is a finite number."""
    return values.dtype.kind != "f" or bool(np.isfinite(values).all())


def labels_of(column: pd.Series) -> pd.Series:
    """The column's values as category labels (text), NaN where missing: the column itself when it
    holds text already (label() leaves text as it is; calling it per row took 17-48 ms for 54,000)."""
    if isinstance(column.dtype, pd.StringDtype):
        return column
    if isinstance(column.dtype, pd.CategoricalDtype):
        column = column.astype(object)
    if isinstance(column.dtype, np.dtype) and column.dtype.kind in "iu" and len(column):
        # integers: label() once per distinct value, not once per row
        distinct, rows = np.unique(column.to_numpy(), return_inverse=True)
        labels = np.array([label(v) for v in distinct], dtype=object)
        return pd.Series(labels[rows.reshape(-1)], index=column.index, name=column.name)
    return column.map(label, na_action="ignore")


def labels_as(column: pd.Series, form: str, decimal: str = ".") -> pd.Series:
    """The column's values as the labels of a categorical column whose training values had `form`
    (cell_label), NaN where missing: the same labels whatever dtype pandas gave the column, once
    per distinct value. Values of the training file's own dtype get labels_of's labels."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        column = column.astype(object)
    text = isinstance(column.dtype, pd.StringDtype) or column.dtype == object
    if form == "text" or not text:
        return labels_of(column)
    codes, distinct = pd.factorize(column)
    if column.dtype == object and not all(isinstance(v, str) for v in distinct):  # Python values of any type: factorize takes True for 1
        return column.map(lambda v: cell_label(v, form, decimal), na_action="ignore")
    labels = np.array([cell_label(v, form, decimal) for v in distinct] + [np.nan], dtype=object)
    return pd.Series(labels[codes], index=column.index, name=column.name)  # code -1 (missing) picks the NaN


def check_values(frame: pd.DataFrame, columns: list[Column], source: str) -> None:
    """Before fitting, on a whole file: numeric columns hold numbers, and no value is missing where
    the rule is `error` (one message naming each such column and its count)."""
    counts = []
    for column in columns:
        values = frame[column.name]  # once: each look-up of a column costs pandas tens of microseconds
        numbers = column.kind == "numeric" and numpy_floats_or_ints(values)
        if numbers and _finite(values.to_numpy()):
            continue  # numbers, none missing or infinite: nothing to count, and numbers_of would copy the column to find nothing
        if column.missing == "error":
            counts.append((column.name, int(values.isna().sum())))
        if numbers and not np.isinf(values.to_numpy()).any():
            continue  # numbers without infinities
        if column.kind == "numeric":
            hint = " Leave missing values as empty cells" + (
                f", or set data.columns.{column.name}.kind: categorical" if not is_number_dtype(values) else ""
            )
            numbers_of(values, column.name, source, 0, hint)
    gaps = [f"{name} ({n} row{'s' if n > 1 else ''})" for name, n in counts if n]
    if gaps:
        raise DataError(
            f"{source}: missing values in feature columns: {', '.join(gaps)}. Choose how to handle them with "
            "data.numeric.missing, data.categorical.missing or data.columns.<name>.missing "
            "(drop, mean, median, most_frequent, constant), or leave the columns out with data.exclude"
        )


STRICT_HINT = ". Use --strict to make this an error"  # how the command line makes unseen categories errors
STRICT_SETTING = "--strict"  # ends the error of an unseen category: the setting that made it one, as the command line spells it


class Unseen:
    """Categories the model never saw, counted over any number of chunks, for one warning at the end;
    `setting` is what makes them an error where these rows come from (--strict, strict=true, ...)."""

    def __init__(self, setting: str = STRICT_SETTING) -> None:
        self.setting = setting
        self.counts: dict[str, Counter] = {}
        self.filled: dict[str, tuple[str, int]] = {}  # column: (its fill value, missing cells it filled)

    def add(self, column: str, values: pd.Series) -> None:
        self.counts.setdefault(column, Counter()).update(values.tolist())

    def add_missing(self, column: str, fill: str, rows: int) -> None:
        """`rows` missing cells of `column` filled with `fill`, a value no training row held (the
        training rows had no missing value there): not values the rows hold, so told apart."""
        self.filled[column] = (fill, self.filled.get(column, (fill, 0))[1] + rows)

    def message(self, source: str, hint: str = STRICT_HINT) -> str | None:
        if not self.counts and not self.filled:
            return None
        sentences = []
        if self.filled:
            rows = sum(n for _, n in self.filled.values())
            parts = [f"{column} ({n} row{'s' if n > 1 else ''}, filled with {fill!r})" for column, (fill, n) in self.filled.items()]
            sentences.append(
                f"{rows} missing value{'s' if rows > 1 else ''} in categorical columns whose training rows had none, "
                f"filled with a value the model never saw and encoded as unknown (no category): {'; '.join(parts)}"
            )
        if self.counts:
            parts = []
            for column, counts in self.counts.items():
                shown = ", ".join(f"{v!r} ({n} row{'s' if n > 1 else ''})" for v, n in counts.most_common(3))
                more = f" and {len(counts) - 3} more" if len(counts) > 3 else ""
                parts.append(f"{column} {shown}{more}")
            rows = sum(sum(c.values()) for c in self.counts.values())
            sentences.append(
                f"{rows} value{'s' if rows > 1 else ''} in categorical columns the model never saw, "
                f"encoded as unknown (no category): {'; '.join(parts)}{hint}"
            )
        return f"{source}: {'; '.join(sentences)}"

# --- fitting and encoding one column -----------------------------------------------------------


def _check_fill(column: Column, source: str) -> None:
    if column.fill is not None and not np.isfinite(column.fill):
        raise DataError(f"{source}: column {column.name!r}: values too large to average; rescale the column")


def fit_column(column: Column, values: pd.Series, source: str) -> None:
    """Fill value and categories of `column` from its training values."""
    if column.kind == "numeric" and column.missing not in ("mean", "median", "most_frequent") and numpy_floats_or_ints(values):
        # numbers whose fill is no statistic of them (none, or the constant): nothing to look at
        # (pandas' least work on a column costs about 0.2 ms, which 784 columns of L.csv pay 784 times)
        column.fill = float(column.fill_value) if column.missing == "constant" else None
        _check_fill(column, source)
        return
    present = values.dropna()
    needs_values = column.missing in ("mean", "median", "most_frequent") or column.kind == "categorical"
    if len(present) == 0 and needs_values:
        raise DataError(
            f"{source}: column {column.name!r} is empty in every training row; leave it out with data.exclude"
        )
    if column.kind == "numeric":
        numbers = numbers_of(present, column.name, source, 0, "")
        column.fill = {
            "mean": lambda: float(np.mean(numbers)),
            "median": lambda: float(np.median(numbers)),
            "most_frequent": lambda: float(_most_frequent(pd.Series(numbers))),
            "constant": lambda: float(column.fill_value),
        }.get(column.missing, lambda: None)()
        _check_fill(column, source)
        return
    labels = labels_of(present)
    column.fill = {"most_frequent": lambda: _most_frequent(labels), "constant": lambda: column.fill_value}.get(
        column.missing, lambda: None
    )()
    counts = labels.value_counts().to_dict()  # a dict: pandas may hand back a read-only Series
    if column.fill is not None and values.isna().any():
        counts[column.fill] = counts.get(column.fill, 0) + int(values.isna().sum())
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    keep = len(ranked) if len(ranked) <= column.max_categories else column.max_categories - 1
    column.categories = sorted(value for value, _ in ranked[:keep])
    column.other = sorted(value for value, _ in ranked[keep:])


def _most_frequent(values: pd.Series) -> Any:
    """The most frequent value; the smallest of those tied."""
    counts = values.value_counts()
    return sorted(counts[counts == counts.max()].index)[0]


def encode_column(
    column: Column, values: pd.Series, source: str, first_row: int, *, strict: bool, unseen: Unseen | None, allow_dropped: bool,
    decimal: str = ".",
) -> np.ndarray:
    """The column's filled and encoded values (float64); `decimal` is the decimal mark of text cells."""
    missing = values.isna().to_numpy()
    fill = column.fill
    if fill is None and allow_dropped and column.missing == "drop":
        fill = 0.0 if column.kind == "numeric" else (column.categories + column.other)[0]
    if missing.any() and fill is None:
        rows = np.flatnonzero(missing)
        why = (
            "the model drops such rows in training, which predict cannot do; fill them in or remove those rows"
            if column.missing == "drop"
            else "the model was trained without missing values there (missing: error); fill them in or remove those rows"
        )
        raise DataError(f"{source}: column {column.name!r} has missing values in {rows_text(rows, first_row)}; {why}")
    if column.kind == "numeric":
        x = numbers_of(values, column.name, source, first_row, " The model reads this column as numbers.")
        return numeric_block(column, x, missing, fill)
    labels = labels_as(values, column.form, decimal)
    if missing.any():
        labels = labels.where(~missing, fill)
    positions = category_positions(column, labels)
    new = np.isnan(positions)
    if new.any():
        new = count_filled(column, new, missing, fill, unseen)
        if new.any():
            _unseen(column, labels, new, source, first_row, strict, unseen)
    return one_hot_block(column, positions, missing)


def category_index(column: Column) -> dict[str, int]:
    """Each category's input: its own, or for a rare one the shared `(other)` input."""
    index = {c: i for i, c in enumerate(column.categories)}
    if column.other:
        index.update(dict.fromkeys(column.other, len(column.categories)))
    return index


def category_positions(column: Column, labels: pd.Series) -> np.ndarray:
    """Each label's input (category_index) as float64, NaN for a category the model never saw: the
    labels looked up in one pass (a map through the dict took 3 to 7 times as long)."""
    index = category_index(column)
    where = positions_in(list(index), labels)  # -1 for a label not in the index
    return np.array([*index.values(), np.nan])[where]  # so -1 picks the NaN


def positions_in(keys: list[str], labels: pd.Series) -> np.ndarray:
    """Each label's position in `keys` (int64), -1 for one not among them (a missing one included),
    in one hashed pass: Arrow's index_in where pandas holds the text in Arrow (pandas' own look-up
    first makes a Python string of every label: 17.5 against 3 ms for 160,000), pandas' otherwise."""
    if isinstance(labels.array, pd.arrays.ArrowStringArray):
        import pyarrow as pa
        import pyarrow.compute as pc

        found = pc.index_in(pa.array(labels.array), value_set=pa.array(keys, pa.string()))
        return np.asarray(found.fill_null(-1), dtype=np.int64)
    return pd.Index(keys, dtype=object).get_indexer(labels).astype(np.int64, copy=False)


def one_hot_block(column: Column, positions: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """A categorical column's encoded values: a 1 at each row's input `positions` (NaN for a category
    the model never saw: no 1), and the indicator input when the column has one."""
    known = np.flatnonzero(~np.isnan(positions))
    block = np.zeros((len(positions), len(column.inputs()) - column.indicator))
    block[known, positions[known].astype(np.int64)] = 1.0
    return _with_indicator(column, block, missing)


def numeric_block(column: Column, x: np.ndarray, missing: np.ndarray, fill: float | None) -> np.ndarray:
    """A numeric column's encoded values: `x` (float64, changed in place) with `fill` where
    `missing`, as one input, and the indicator input when the column has one."""
    x[missing] = fill
    return _with_indicator(column, x.reshape(-1, 1), missing)


def _with_indicator(column: Column, block: np.ndarray, missing: np.ndarray) -> np.ndarray:
    if column.indicator:
        block = np.hstack([block, missing.astype(np.float64).reshape(-1, 1)])
    return block


def count_filled(column: Column, new: np.ndarray, missing: np.ndarray, fill: Any, unseen: Unseen | None) -> np.ndarray:
    """`new` (the rows whose label the model never saw) without the missing cells among them: those
    hold the fill value, which no training row held; they are counted in `unseen` as missing values."""
    filled = new & missing
    if not filled.any():
        return new
    if unseen is not None:
        unseen.add_missing(column.name, fill, int(filled.sum()))
    return new & ~missing


def _unseen(column: Column, labels: pd.Series, new: np.ndarray, source: str, first_row: int, strict: bool, unseen: Unseen | None) -> None:
    values = labels[new]
    if strict:
        rows = np.flatnonzero(new)
        shown = ", ".join(repr(v) for v in pd.unique(values)[:3])
        known = ", ".join(column.categories[:10]) + (", ..." if len(column.categories) > 10 else "")
        raise DataError(
            f"{source}: column {column.name!r} holds categories the model never saw in {rows_text(rows, first_row)}: {shown}; "
            f"it knows {known} ({unseen.setting if unseen is not None else STRICT_SETTING})"
        )
    if unseen is not None:
        unseen.add(column.name, values)


def scaling(raw: np.ndarray | list[np.ndarray], scales: list[str], names: list[str], source: str) -> tuple[np.ndarray, np.ndarray]:
    """Centre and scale of each input from its training values (`raw`: a matrix of them, or a list of
    float64 columns, one per input): standard (mean, standard deviation),
    minmax (minimum, range), robust (median, interquartile range, or when that is 0 the root mean
    square distance from the median), none (0, 1). A zero spread becomes 1."""
    columns = list(raw.T) if isinstance(raw, np.ndarray) else raw
    center = np.zeros(len(columns))
    spread = np.ones(len(columns))
    with np.errstate(over="ignore", invalid="ignore"):
        for j, how in enumerate(scales):
            v = columns[j]
            if how == "standard":
                center[j], spread[j] = v.mean(), v.std()
            elif how == "minmax":
                center[j], spread[j] = v.min(), v.max() - v.min()
            elif how == "robust":
                q1, median, q3 = np.percentile(v, [25, 50, 75])
                center[j], spread[j] = median, q3 - q1
                if spread[j] == 0.0:  # over half the values are equal: the IQR says nothing about the others
                    spread[j] = np.sqrt(np.mean((v - median) ** 2))
    bad = np.flatnonzero(~(np.isfinite(center) & np.isfinite(spread)))
    if len(bad):
        raise DataError(
            f"{source}: column {names[bad[0]]!r}: values too large to scale (up to {np.abs(columns[bad[0]]).max():g}); "
            "rescale the column, e.g. divide it by a power of ten"
        )
    spread[spread == 0.0] = 1.0
    return center, spread

