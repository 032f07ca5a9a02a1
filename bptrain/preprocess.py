"""Preprocessing: raw columns in, one float matrix out, every statistic fitted on the training rows only.

A `Preprocessor` is the training schema: for each feature column its kind (numeric or categorical),
its pandas dtype, its missing-value rule and fill value, its categories, and the centre and scale
of each network input it becomes; and the targets, the task and the classes. `features_of`
transforms any slice of rows on its own (nothing is computed from the rows it is given), so a file
can be streamed chunk by chunk; row numbers in its errors count from `first_row`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bptrain.errors import ConfigError, DataError
from bptrain.reading import ReadOptions
from bptrain.registry import did_you_mean

MAX_CLASSES_FOR_INTEGER_TARGET = 20
NUMERIC_SHARE_OF_TEXT = 0.95  # a text column this much made of numbers is numeric (the rest are errors)
SHOWN_ROWS = 5
OTHER = "(other)"
VERSION = 2


# --- values and kinds ---------------------------------------------------------------------------


def label(value: Any) -> str:
    """A value as a category or class label: whole floats without `.0` (2007.0 and 2007 agree)."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def class_labels(values: pd.Series) -> list[str]:
    """The distinct values as labels, numbers in numeric order, text in text order."""
    distinct = pd.unique(values.dropna())
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        distinct = sorted(distinct)
    else:
        distinct = sorted(distinct, key=str)
    return [label(v) for v in distinct]


def _is_number_dtype(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def infer_kind(column: pd.Series) -> str:
    """numeric for numbers, and for text that is nearly all numbers; categorical for text, true/false
    and pandas categories. Integers with few values stay numeric unless declared categorical."""
    if isinstance(column.dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(column):
        return "categorical"
    if _is_number_dtype(column):
        return "numeric"
    values = column.dropna()
    if len(values) == 0:
        return "numeric"
    if values.map(lambda v: isinstance(v, (bool, np.bool_))).any():
        return "categorical"
    numbers = pd.to_numeric(values.astype(str), errors="coerce").notna().mean()
    return "numeric" if numbers >= NUMERIC_SHARE_OF_TEXT else "categorical"


def _binary(column: pd.Series) -> bool:
    values = column.dropna()
    if pd.api.types.is_bool_dtype(values):
        return True
    return _is_number_dtype(values) and bool(values.isin([0, 1]).all())


def infer_task(targets: pd.DataFrame | pd.Series) -> str:
    """One target: classification for text or true/false, or integers with at most 20 values; else
    regression. Several targets: multilabel when all hold 0/1, regression when all are numeric."""
    if isinstance(targets, pd.Series):
        values = targets.dropna()
        if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
            return "classification"
        if pd.api.types.is_integer_dtype(values) and values.nunique() <= MAX_CLASSES_FOR_INTEGER_TARGET:
            return "classification"
        return "regression"
    if all(_binary(targets[c]) for c in targets.columns):
        return "multilabel"
    if all(_is_number_dtype(targets[c]) for c in targets.columns):
        return "regression"
    kinds = ", ".join(f"{c} ({'0/1' if _binary(targets[c]) else 'numbers' if _is_number_dtype(targets[c]) else 'text'})" for c in targets.columns)
    raise DataError(
        f"several targets must all hold 0/1 (multilabel) or all hold numbers (multi-output regression); got {kinds}"
    )


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
    defaults = {"kind": "numeric", "dtype": "float64", "missing": "error", "fill_value": 0.0, "scale": "standard", "indicator": False}
    return Column(name=name, **{**defaults, **settings})


def resolve_columns(frame: pd.DataFrame, features: list[str], data) -> list[Column]:
    """Each feature's kind and rules, from `data` (a DataConfig): per-kind settings, then overrides."""
    columns = []
    for name in features:
        own = data.columns.get(name)
        kind = own.kind if own is not None and own.kind != "auto" else infer_kind(frame[name])
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
        columns.append(Column(name=name, kind=kind, dtype=str(frame[name].dtype), **settings))
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
            float(own.fill_value)
        except ValueError:
            raise ConfigError(f"{key}.fill_value: must be a number for the numeric column {name!r} (got {own.fill_value!r})") from None


# --- reading values -----------------------------------------------------------------------------


def _rows(positions: np.ndarray, first_row: int) -> str:
    """`row 3` / `rows 3, 8, 12 (and 4 more)`: data rows counted from 1, the header not counted."""
    numbers = [str(first_row + int(p) + 1) for p in positions[:SHOWN_ROWS]]
    more = f" (and {len(positions) - SHOWN_ROWS} more)" if len(positions) > SHOWN_ROWS else ""
    return ("row " if len(positions) == 1 else "rows ") + ", ".join(numbers) + more


def numbers_of(column: pd.Series, name: str, source: str, first_row: int, hint: str) -> np.ndarray:
    """The column as float64, NaN where missing; DataError naming the rows that hold text or infinity."""
    if _is_number_dtype(column):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
    elif pd.api.types.is_bool_dtype(column):
        values = column.to_numpy(dtype=np.float64, copy=True)
    else:
        present = column.notna().to_numpy()
        parsed = pd.to_numeric(column.where(column.notna(), None).astype(object), errors="coerce")
        values = parsed.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
        bad = np.flatnonzero(present & np.isnan(values))
        if len(bad):
            shown = ", ".join(repr(str(column.iloc[i])) for i in bad[:3])
            raise DataError(f"{source}: column {name!r} must be numeric, but {_rows(bad, first_row)} hold{'s' if len(bad) == 1 else ''} text: {shown}.{hint}")
    infinite = np.flatnonzero(np.isinf(values))
    if len(infinite):
        raise DataError(
            f"{source}: column {name!r} holds infinite values in {_rows(infinite, first_row)}; "
            "replace them with numbers, or leave the cells empty to treat them as missing"
        )
    return values


def labels_of(column: pd.Series) -> pd.Series:
    """The column's values as category labels (text), NaN where missing."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        column = column.astype(object)
    return column.map(label, na_action="ignore")


def check_values(frame: pd.DataFrame, columns: list[Column], source: str) -> None:
    """Before fitting, on a whole file: numeric columns hold numbers, and no value is missing where
    the rule is `error` (one message naming each such column and its count)."""
    for column in columns:
        if column.kind == "numeric":
            hint = " Leave missing values as empty cells" + (
                f", or set data.columns.{column.name}.kind: categorical" if not _is_number_dtype(frame[column.name]) else ""
            )
            numbers_of(frame[column.name], column.name, source, 0, hint)
    counts = [(c.name, int(frame[c.name].isna().sum())) for c in columns if c.missing == "error"]
    gaps = [f"{name} ({n} row{'s' if n > 1 else ''})" for name, n in counts if n]
    if gaps:
        raise DataError(
            f"{source}: missing values in feature columns: {', '.join(gaps)}. Choose how to handle them with "
            "data.numeric.missing, data.categorical.missing or data.columns.<name>.missing "
            "(drop, mean, median, most_frequent, constant), or leave the columns out with data.exclude"
        )


class Unseen:
    """Categories the model never saw, counted over any number of chunks, for one warning at the end."""

    def __init__(self) -> None:
        self.counts: dict[str, Counter] = {}

    def add(self, column: str, values: pd.Series) -> None:
        self.counts.setdefault(column, Counter()).update(values.tolist())

    def message(self, source: str, hint: str = ". Use --strict to make this an error") -> str | None:
        if not self.counts:
            return None
        parts = []
        for column, counts in self.counts.items():
            shown = ", ".join(f"{v!r} ({n} row{'s' if n > 1 else ''})" for v, n in counts.most_common(3))
            more = f" and {len(counts) - 3} more" if len(counts) > 3 else ""
            parts.append(f"{column} {shown}{more}")
        rows = sum(sum(c.values()) for c in self.counts.values())
        return (
            f"{source}: {rows} value{'s' if rows > 1 else ''} in categorical columns the model never saw, "
            f"encoded as unknown (no category): {'; '.join(parts)}{hint}"
        )


# --- the preprocessor -------------------------------------------------------------------------


@dataclass
class Preprocessor:
    """What the model needs to turn raw rows into its inputs and its outputs back into predictions."""

    targets: list[str]
    task: str  # classification | multilabel | regression
    columns: list[Column]
    center: np.ndarray  # per network input
    scale: np.ndarray
    classes: list[str] = field(default_factory=list)  # class labels; for multilabel the target columns
    target_center: np.ndarray = field(default_factory=lambda: np.zeros(1))
    target_scale: np.ndarray = field(default_factory=lambda: np.ones(1))
    read: ReadOptions = ReadOptions()

    @property
    def features(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def inputs(self) -> list[str]:
        return [name for c in self.columns for name in c.inputs()]

    @property
    def target(self) -> str:
        """The target column's name (the names joined by ', ' when there are several)."""
        return ", ".join(self.targets)

    # --- fitting ---------------------------------------------------------------------------------

    @classmethod
    def fit(
        cls, frame: pd.DataFrame, *, targets: list[str], task: str, columns: list[Column], source: str = "train",
        read: ReadOptions = ReadOptions(),
    ) -> "Preprocessor":
        """Fit fill values, categories and scales on `frame`, the training rows (missing `drop` rows removed)."""
        for column in columns:
            _fit_column(column, frame[column.name], source)
        prep = cls(targets=list(targets), task=task, columns=columns, center=np.zeros(0), scale=np.ones(0), read=read)
        raw = prep._encode(frame, source, 0, strict=False, unseen=Unseen())
        prep.center, prep.scale = _scaling(raw, [s for c in columns for s in c.input_scales()], prep.inputs, source)
        if task == "classification":
            prep.classes = class_labels(frame[targets[0]])
        elif task == "multilabel":
            prep.classes = list(targets)
        else:
            y = prep._target_numbers(frame, source)
            with np.errstate(over="ignore", invalid="ignore"):
                center, spread = y.mean(axis=0), y.std(axis=0)
            if not (np.isfinite(center).all() and np.isfinite(spread).all()):
                raise DataError(f"{source}: target values too large to standardize; rescale the target (e.g. divide by a power of ten)")
            spread[spread == 0.0] = 1.0
            prep.target_center, prep.target_scale = center, spread
        return prep

    # --- transforming ------------------------------------------------------------------------------

    def features_of(
        self, frame: pd.DataFrame, source: str, dtype: str = "float32", *, first_row: int = 0, strict: bool = False,
        unseen: Unseen | None = None, allow_dropped: bool = False,
    ) -> np.ndarray:
        """The network inputs of `frame`'s rows, in `dtype`. Columns may come in any order; others are
        ignored. DataError naming the column (and rows, counted from `first_row` + 1) when a column is
        missing, a value cannot be read, or (with `strict`) a category was never seen; unseen
        categories are otherwise counted in `unseen`. With `allow_dropped`, rows that `dropped_rows`
        marks are encoded anyway (the caller removes them) instead of being an error."""
        self.check_columns(frame, source)
        x = self._encode(frame, source, first_row, strict=strict, unseen=unseen, allow_dropped=allow_dropped)
        with np.errstate(over="ignore", invalid="ignore"):
            x -= self.center
            x /= self.scale
            out = x.astype(dtype, copy=False)
        if not np.isfinite(out).all():
            row, col = np.argwhere(~np.isfinite(out))[0]
            name = self._column_of_input(int(col)).name
            raise DataError(
                f"{source}: column {name!r}, {_rows(np.array([row]), first_row)}: the value is too large to use "
                f"(it becomes infinite in {dtype} after scaling); rescale the column, e.g. divide it by a power of ten"
            )
        return out

    def check_columns(self, frame: pd.DataFrame, source: str) -> None:
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            unused = [str(c) for c in frame.columns if str(c) not in self.features]
            hint = did_you_mean(missing[0], unused)
            shown = ", ".join(missing[:10]) + (f" (and {len(missing) - 10} more)" if len(missing) > 10 else "")
            raise DataError(
                f"{source}: missing {len(missing)} feature column{'s' if len(missing) > 1 else ''} "
                f"the model was trained with: {shown}.{hint} Columns: {column_list(frame)}"
            )

    def dropped_rows(self, frame: pd.DataFrame) -> np.ndarray:
        """A mask of the rows with a missing value in a column whose rule is `drop`."""
        mask = np.zeros(len(frame), dtype=bool)
        for column in self.columns:
            if column.missing == "drop":
                mask |= frame[column.name].isna().to_numpy()
        return mask

    def _encode(
        self, frame: pd.DataFrame, source: str, first_row: int, *, strict: bool, unseen: Unseen | None, allow_dropped: bool = False
    ) -> np.ndarray:
        """Filled and one-hot encoded values (float64), before centring and scaling."""
        blocks = [
            _encode_column(c, frame[c.name], source, first_row, strict=strict, unseen=unseen, allow_dropped=allow_dropped)
            for c in self.columns
        ]
        return np.hstack(blocks) if blocks else np.zeros((len(frame), 0))

    def _column_of_input(self, index: int) -> Column:
        for column in self.columns:
            if index < len(column.inputs()):
                return column
            index -= len(column.inputs())
        raise IndexError(index)

    # --- targets ---------------------------------------------------------------------------------

    def check_targets(self, frame: pd.DataFrame, source: str) -> None:
        for name in self.targets:
            if name not in frame.columns:
                raise DataError(f"{source}: target column {name!r} not found.{did_you_mean(name, list(frame.columns))} Columns: {column_list(frame)}")
            missing = int(frame[name].isna().sum())
            if missing:
                raise DataError(
                    f"{source}: target column {name!r} has {missing} missing value{'s' if missing > 1 else ''}; remove those rows"
                )

    def target_of(self, frame: pd.DataFrame, source: str, dtype: str = "float32") -> np.ndarray:
        """Class indices (int64, (n,)) for classification, 0/1 (n, k) for multilabel, standardized (n, k) for regression."""
        self.check_targets(frame, source)
        if self.task == "classification":
            labels = labels_of(frame[self.targets[0]])
            index = {c: i for i, c in enumerate(self.classes)}
            unknown = sorted(set(labels) - set(index))
            if unknown:
                raise DataError(
                    f"{source}: target column {self.targets[0]!r} has values the model never saw: "
                    f"{', '.join(map(repr, unknown[:5]))}; the model knows {', '.join(self.classes)}"
                )
            return labels.map(index).to_numpy(dtype=np.int64)
        if self.task == "multilabel":
            return self.label_matrix(frame, source).astype(dtype)
        y = self._target_numbers(frame, source)
        return ((y - self.target_center) / self.target_scale).astype(dtype)

    def label_matrix(self, frame: pd.DataFrame, source: str) -> np.ndarray:
        """Multilabel targets as an int64 (n, k) matrix of 0/1."""
        columns = []
        for name in self.targets:
            column = frame[name]
            values = column.to_numpy(dtype=np.float64) if _binary(column) else None
            if values is None:
                odd = [v for v in pd.unique(column.dropna()) if label(v) not in ("0", "1")][:5]
                shown = ", ".join(repr(v) if isinstance(v, str) else label(v) for v in odd)
                raise DataError(f"{source}: multilabel target column {name!r} must hold only 0 and 1 (or true/false); found {shown}")
            columns.append(values.astype(np.int64))
        return np.column_stack(columns)

    def _target_numbers(self, frame: pd.DataFrame, source: str) -> np.ndarray:
        out = []
        for name in self.targets:
            column = frame[name]
            if not _is_number_dtype(column):
                raise DataError(f"{source}: regression target {name!r} is not numeric (e.g. {column.dropna().iloc[0]!r})")
            values = column.to_numpy(dtype=np.float64)
            if not np.isfinite(values).all():
                rows = np.flatnonzero(~np.isfinite(values))
                raise DataError(f"{source}: target column {name!r} holds infinite values in {_rows(rows, 0)}; remove those rows")
            out.append(values)
        return np.column_stack(out)

    def target_values(self, frame: pd.DataFrame) -> np.ndarray:
        """Regression targets in their original units (float64, (n, k))."""
        return np.column_stack([frame[name].to_numpy(dtype=np.float64) for name in self.targets])

    # --- the model file -------------------------------------------------------------------------

    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Arrays (statistics) and JSON-able metadata (the schema) for the model file."""
        meta = {
            "version": VERSION,
            "targets": self.targets,
            "task": self.task,
            "classes": self.classes,
            "columns": [asdict(c) for c in self.columns],
            "inputs": self.inputs,
            "read": asdict(self.read),
        }
        arrays = {"prep.center": self.center, "prep.scale": self.scale}
        if self.task == "regression":
            arrays.update({"prep.target_center": self.target_center, "prep.target_scale": self.target_scale})
        return arrays, meta

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> "Preprocessor":
        if meta.get("version") is None:
            return cls._from_version_1(arrays, meta)
        if meta["version"] != VERSION:
            raise ValueError(f"preprocessing version {meta['version']} is not supported (reads {VERSION})")
        prep = cls(
            targets=list(meta["targets"]),
            task=meta["task"],
            columns=[Column(**c) for c in meta["columns"]],
            center=np.asarray(arrays["prep.center"], dtype=np.float64),
            scale=np.asarray(arrays["prep.scale"], dtype=np.float64),
            classes=list(meta["classes"]),
            read=ReadOptions(**meta["read"]),
        )
        if prep.task == "regression":
            prep.target_center = np.asarray(arrays["prep.target_center"], dtype=np.float64)
            prep.target_scale = np.asarray(arrays["prep.target_scale"], dtype=np.float64)
        return prep

    @classmethod
    def _from_version_1(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> "Preprocessor":
        """Model files of bptrain 0.1: numeric, complete, standardized features."""
        columns = [numeric_column(n) for n in meta["features"]]
        return cls(
            targets=[meta["target"]],
            task=meta["task"],
            columns=columns,
            center=np.asarray(arrays["prep.mean"], dtype=np.float64),
            scale=np.asarray(arrays["prep.scale"], dtype=np.float64),
            classes=list(meta["classes"]),
            target_center=np.array([float(meta["target_mean"])]),
            target_scale=np.array([float(meta["target_scale"])]),
        )


def column_list(frame: pd.DataFrame, limit: int = 20) -> str:
    names = [str(c) for c in frame.columns]
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


# --- fitting and encoding one column -----------------------------------------------------------


def _fit_column(column: Column, values: pd.Series, source: str) -> None:
    """Fill value and categories of `column` from its training values."""
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
        if column.fill is not None and not np.isfinite(column.fill):
            raise DataError(f"{source}: column {column.name!r}: values too large to average; rescale the column")
        return
    labels = labels_of(present)
    column.fill = {"most_frequent": lambda: _most_frequent(labels), "constant": lambda: column.fill_value}.get(
        column.missing, lambda: None
    )()
    counts = labels.value_counts()
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


def _encode_column(
    column: Column, values: pd.Series, source: str, first_row: int, *, strict: bool, unseen: Unseen | None, allow_dropped: bool
) -> np.ndarray:
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
        raise DataError(f"{source}: column {column.name!r} has missing values in {_rows(rows, first_row)}; {why}")
    if column.kind == "numeric":
        x = numbers_of(values, column.name, source, first_row, " The model reads this column as numbers.")
        x[missing] = fill
        block = x.reshape(-1, 1)
    else:
        labels = labels_of(values)
        if missing.any():
            labels = labels.where(~missing, fill)
        index = {c: i for i, c in enumerate(column.categories)}
        if column.other:
            index.update(dict.fromkeys(column.other, len(column.categories)))
        positions = labels.map(index).to_numpy(dtype=np.float64, na_value=np.nan)
        new = np.isnan(positions)
        if new.any():
            _unseen(column, labels, new, source, first_row, strict, unseen)
        block = np.zeros((len(values), len(column.inputs()) - column.indicator))
        known = np.flatnonzero(~new)
        block[known, positions[known].astype(np.int64)] = 1.0
    if column.indicator:
        block = np.hstack([block, missing.astype(np.float64).reshape(-1, 1)])
    return block


def _unseen(column: Column, labels: pd.Series, new: np.ndarray, source: str, first_row: int, strict: bool, unseen: Unseen | None) -> None:
    values = labels[new]
    if strict:
        rows = np.flatnonzero(new)
        shown = ", ".join(repr(v) for v in pd.unique(values)[:3])
        known = ", ".join(column.categories[:10]) + (", ..." if len(column.categories) > 10 else "")
        raise DataError(
            f"{source}: column {column.name!r} holds categories the model never saw in {_rows(rows, first_row)}: {shown}; "
            f"it knows {known} (--strict)"
        )
    if unseen is not None:
        unseen.add(column.name, values)


def _scaling(raw: np.ndarray, scales: list[str], names: list[str], source: str) -> tuple[np.ndarray, np.ndarray]:
    """Centre and scale of each input from its training values: standard (mean, standard deviation),
    minmax (minimum, range), robust (median, interquartile range, or when that is 0 the root mean
    square distance from the median), none (0, 1). A zero spread becomes 1."""
    center = np.zeros(raw.shape[1])
    spread = np.ones(raw.shape[1])
    with np.errstate(over="ignore", invalid="ignore"):
        for j, how in enumerate(scales):
            v = raw[:, j]
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
            f"{source}: column {names[bad[0]]!r}: values too large to scale (up to {np.abs(raw[:, bad[0]]).max():g}); "
            "rescale the column, e.g. divide it by a power of ten"
        )
    spread[spread == 0.0] = 1.0
    return center, spread
