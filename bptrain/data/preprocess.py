"""Preprocessing: raw columns in, one float matrix out, every statistic fitted on the training rows only.

A `Preprocessor` is the training schema: for each feature column its kind (numeric or categorical),
its pandas dtype, its missing-value rule and fill value, its categories, and the centre and scale
of each network input it becomes; and the targets, the task and the classes. `features_of`
transforms any slice of rows on its own (nothing is computed from the rows it is given), so a file
can be streamed chunk by chunk; row numbers in its errors count from `first_row`.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator

import numpy as np

from bptrain import lazy
from bptrain.data.columns import (
    Column,
    Dropping,
    Unseen,
    cell_numbers,
    encode_column,
    fit_column,
    form_of_labels,
    is_number_dtype,
    label,
    labels_of,
    numeric_column,
    numpy_float_or_int_dtype,
    numpy_floats_or_ints,
    positions_in,
    rows_text,
    scaling,
)
from bptrain.data.reading import ReadOptions
from bptrain.errors import DataError
from bptrain.nn.options import did_you_mean

pd = lazy.module("pandas")  # imported on first use (bptrain.lazy): predict on a plain CSV file needs none of it

MAX_CLASSES_FOR_INTEGER_TARGET = 20
VERSION = 2
GROUP_COLUMNS = 64  # numeric columns encoded, centred and scaled together
ROW_MAJOR_ROWS = 256  # rows copied at a time into row-major order
PARALLEL_VALUES = 1 << 20  # values from which scaling and row-major copies are split over two threads
SMALL_COPY_VALUES = 1 << 22  # values of a frame whose number columns are taken out in one copy (32 MiB)


# --- targets and tasks --------------------------------------------------------------------------


def class_labels(values: pd.Series) -> list[str]:
    """The distinct values as labels, numbers in numeric order, text in text order."""
    distinct = pd.unique(values.dropna())
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        distinct = sorted(distinct)
    else:
        distinct = sorted(distinct, key=str)
    return [label(v) for v in distinct]


def _binary(column: pd.Series) -> bool:
    values = column.dropna()
    if pd.api.types.is_bool_dtype(values):
        return True
    return is_number_dtype(values) and bool(values.isin([0, 1]).all())


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
    if all(is_number_dtype(targets[c]) for c in targets.columns):
        return "regression"
    kinds = ", ".join(f"{c} ({'0/1' if _binary(targets[c]) else 'numbers' if is_number_dtype(targets[c]) else 'text'})" for c in targets.columns)
    raise DataError(
        f"several targets must all hold 0/1 (multilabel) or all hold numbers (multi-output regression); got {kinds}"
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
    def categorical(self) -> list[str]:
        """The categorical feature columns: a trained model reads their cells as text (cell_label)."""
        return [c.name for c in self.columns if c.kind == "categorical"]

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
        read: ReadOptions = ReadOptions(), before_encoding: Callable[[list[Column]], None] | None = None,
    ) -> "Preprocessor":
        """Fit fill values, categories and scales on `frame`, the training rows (missing `drop` rows removed).
        `before_encoding` sees the fitted columns before the training rows are encoded (the first
        allocation that grows with their categories), so it can refuse what would not fit."""
        for column in columns:
            fit_column(column, frame[column.name], source)
        if before_encoding is not None:
            before_encoding(columns)
        prep = cls(targets=list(targets), task=task, columns=columns, center=np.zeros(0), scale=np.ones(0), read=read)
        prep.center, prep.scale = prep._scaling(frame, source)
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
        unseen: Unseen | None = None, allow_dropped: bool = False, release: bool = False, decimal: str | None = None,
    ) -> np.ndarray:
        """The network inputs of `frame`'s rows, in `dtype`. Columns may come in any order; others are
        ignored. DataError naming the column (and rows, counted from `first_row` + 1) when a column is
        missing, a value cannot be read, or (with `strict`) a category was never seen; unseen
        categories are otherwise counted in `unseen`. With `allow_dropped`, rows that `dropped_rows`
        marks are encoded anyway (the caller removes them) instead of being an error. With
        `release`, each feature column is removed from `frame` once encoded, so that the raw values
        and the inputs are not held in full together. `decimal`: the decimal mark of the text the
        frame was read from, by which a categorical column's cells are labelled (default: the
        training files', data.read.decimal)."""
        self.check_columns(frame, source)
        out = self.empty_inputs(len(frame), dtype)
        dropping = Dropping(frame)
        blocks = self._blocks(frame, source, first_row, strict=strict, unseen=unseen, allow_dropped=allow_dropped, decimal=decimal)
        for columns, at, block in blocks:
            self.scale_into(out, at, block)
            if release:
                for column in columns:
                    dropping.add(column.name)
        dropping.flush()
        return self.finished_inputs(out, source, dtype, first_row)

    def empty_inputs(self, rows: int, dtype: str) -> np.ndarray:
        """The matrix `scale_into` fills, a column block at a time."""
        return np.empty((rows, len(self.center)), dtype=dtype, order="F")  # filling a column touches only its own pages

    def scale_into(self, out: np.ndarray, at: int, block: np.ndarray | list[np.ndarray]) -> None:
        """Centre and scale `block` (float64, a block of columns' filled and encoded values; changed in
        place), whose first input is input `at`, into `out`'s columns. `block` may also be a list of
        float64 columns (left as they are), each then scaled through a small buffer that stays in
        the cache: a third of the memory traffic of copying the block first."""
        if isinstance(block, list):
            def scaled(columns: list[int]) -> None:
                scratch = np.empty(len(out))
                with np.errstate(over="ignore", invalid="ignore"):
                    for j in columns:
                        np.subtract(block[j], self.center[at + j], out=scratch)
                        scratch /= self.scale[at + j]
                        out[:, at + j] = scratch

            in_halves(scaled, list(range(len(block))), len(out) * len(block))
            return
        with np.errstate(over="ignore", invalid="ignore"):
            block -= self.center[at : at + block.shape[1]]
            block /= self.scale[at : at + block.shape[1]]
            out[:, at : at + block.shape[1]] = block  # cast to `dtype` only now: the same values as scaling in float64 whole

    def finished_inputs(self, out: np.ndarray, source: str, dtype: str, first_row: int) -> np.ndarray:
        """`out`, every input filled, with its rows contiguous; DataError for a value that became infinite."""
        out, finite = row_major(out)  # rows contiguous, as the training reads them
        if not finite:
            row, col = np.argwhere(~np.isfinite(out))[0]
            name = self._column_of_input(int(col)).name
            raise DataError(
                f"{source}: column {name!r}, {rows_text(np.array([row]), first_row)}: the value is too large to use "
                f"(it becomes infinite in {dtype} after scaling); rescale the column, e.g. divide it by a power of ten"
            )
        return out

    def check_columns(self, frame: pd.DataFrame, source: str) -> None:
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            unused = [str(c) for c in frame.columns if str(c) not in self.features]
            hints = [did_you_mean(name, unused) for name in missing[:10]]
            shown = ", ".join(missing[:10]) + (f" (and {len(missing) - 10} more)" if len(missing) > 10 else "")
            if len(missing) == len(self.features) > 1 and not all(hints):  # not renamed columns: another file
                raise DataError(
                    f"{source}: has none of the {len(missing)} feature columns the model was trained with: {shown}. "
                    f"Is it the data for this model? Columns: {column_list(frame)}"
                )
            raise DataError(
                f"{source}: missing {len(missing)} feature column{'s' if len(missing) > 1 else ''} "
                f"the model was trained with: {shown}.{hints[0]} Columns: {column_list(frame)}"
            )

    def dropped_rows(self, frame: pd.DataFrame) -> np.ndarray:
        """A mask of the rows with a missing value in a column whose rule is `drop`."""
        mask = np.zeros(len(frame), dtype=bool)
        for column in self.columns:
            if column.missing == "drop":
                mask |= frame[column.name].isna().to_numpy()
        return mask

    def _blocks(
        self, frame: pd.DataFrame, source: str, first_row: int, *, strict: bool, unseen: Unseen | None, allow_dropped: bool = False,
        decimal: str | None = None,
    ) -> Iterator[tuple[list[Column], int, np.ndarray | list[np.ndarray]]]:
        """(columns, index of their first input, their filled and one-hot encoded values (float64,
        column-major), before centring and scaling): the whole matrix in float64 is never needed.
        Up to GROUP_COLUMNS numeric columns of numbers come together, in a buffer that the next
        block overwrites; any other column, or a group holding a missing or infinite value, comes a
        column at a time from encode_column, which fills, encodes and names the errors. A group of
        float64 columns without missing or infinite values comes as the list of the frame's own
        columns, not copied (its readers change nothing). `decimal` as features_of takes it."""
        decimal = decimal or self.read.decimal
        at, group, arrays, buffer = 0, [], [], []  # the buffer, once made
        numbers = _numbers_at_once(frame)
        for c in self.columns + [None]:
            numeric = c is not None and c.kind == "numeric" and not c.indicator
            # once: each look-up of a column costs pandas tens of microseconds
            values = None if c is None or (numeric and numbers is not None) else frame[c.name]
            plain = numeric and (numbers is not None or numpy_floats_or_ints(values))
            if plain:
                group.append(c)
                arrays.append(values.to_numpy() if numbers is None else numbers[c.name])
            if group and (not plain or len(group) == GROUP_COLUMNS):
                yield from self._group(
                    frame, group, at, arrays, buffer, source, first_row, strict=strict, unseen=unseen, allow_dropped=allow_dropped, decimal=decimal
                )
                at, group, arrays = at + len(group), [], []
            if c is not None and not plain:
                block = encode_column(
                    c, values, source, first_row, strict=strict, unseen=unseen, allow_dropped=allow_dropped, decimal=decimal
                )
                yield [c], at, block
                at += block.shape[1]

    def _group(
        self, frame: pd.DataFrame, group: list[Column], at: int, arrays: list[np.ndarray], buffer: list[np.ndarray], source: str,
        first_row: int, *, strict: bool, unseen: Unseen | None, allow_dropped: bool, decimal: str,
    ) -> Iterator[tuple[list[Column], int, np.ndarray | list[np.ndarray]]]:
        """_blocks' items for a group of numeric columns of numbers, their values `arrays`; `buffer`
        holds the array the groups are copied into, made by the first."""
        if all(a.dtype == np.float64 and np.isfinite(a).all() for a in arrays):
            yield group, at, arrays
            return
        if not buffer:
            buffer.append(np.empty((len(frame), GROUP_COLUMNS), order="F"))
        block = buffer[0][:, : len(group)]
        for k, a in enumerate(arrays):
            block[:, k] = a  # int64 to float64 as to_numpy(dtype=float64) casts
        if np.isfinite(block).all():
            yield group, at, block
            return
        for k, one in enumerate(group):  # a missing or infinite value: the column's own rules and messages
            yield [one], at + k, encode_column(
                one, frame[one.name], source, first_row, strict=strict, unseen=unseen, allow_dropped=allow_dropped, decimal=decimal
            )

    def _scaling(self, frame: pd.DataFrame, source: str) -> tuple[np.ndarray, np.ndarray]:
        """Centre and scale of every input, from the training rows `frame`, a block of columns at a time."""
        center, scale = [np.zeros(0)], [np.ones(0)]
        for columns, _, block in self._blocks(frame, source, 0, strict=False, unseen=Unseen()):
            scales = [s for c in columns for s in c.input_scales()]
            stats = scaling(block, scales, [name for c in columns for name in c.inputs()], source)
            center.append(stats[0])
            scale.append(stats[1])
        return np.concatenate(center), np.concatenate(scale)

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
            codes = positions_in(self.classes, labels)  # one hashed pass; a set and a map of 54,000 labels took 0.1 s
            if (codes < 0).any():
                unknown = sorted(set(labels[codes < 0]))
                raise DataError(
                    f"{source}: target column {self.targets[0]!r} has values the model never saw: "
                    f"{', '.join(map(repr, unknown[:5]))}; the model knows {', '.join(self.classes)}"
                )
            return codes
        if self.task == "multilabel":
            return self.label_matrix(frame, source).astype(dtype)
        y = self._target_numbers(frame, source)
        with np.errstate(over="ignore", invalid="ignore"):
            scaled = ((y - self.target_center) / self.target_scale).astype(dtype)
        if not np.isfinite(scaled).all():
            row, col = np.argwhere(~np.isfinite(scaled))[0]
            raise DataError(
                f"{source}: target column {self.targets[int(col)]!r}, {rows_text(np.array([row]), 0)}: the value is too large to use "
                f"(it becomes infinite in {dtype} after scaling); rescale the column, e.g. divide it by a power of ten"
            )
        return scaled

    def label_matrix(self, frame: pd.DataFrame, source: str) -> np.ndarray:
        """Multilabel targets as an int64 (n, k) matrix of 0/1."""
        columns = []
        for name in self.targets:
            column = frame[name]
            values = column.to_numpy(dtype=np.float64) if _binary(column) else cell_numbers(column, booleans=True)
            odd = ~np.isin(values, (0.0, 1.0))
            if odd.any():
                shown = ", ".join(repr(v) if isinstance(v, str) else label(v) for v in pd.unique(column[odd].dropna())[:5])
                raise DataError(f"{source}: multilabel target column {name!r} must hold only 0 and 1 (or true/false); found {shown}")
            columns.append(values.astype(np.int64))
        return np.column_stack(columns)

    def _target_numbers(self, frame: pd.DataFrame, source: str) -> np.ndarray:
        out = []
        for name in self.targets:
            column = frame[name]
            values = _target_numbers(column)
            text = np.flatnonzero(np.isnan(values))  # no value is missing (check_targets)
            if len(text):
                raise DataError(f"{source}: regression target {name!r} is not numeric (e.g. {column.iloc[text[0]]!r})")
            if not np.isfinite(values).all():
                rows = np.flatnonzero(~np.isfinite(values))
                raise DataError(f"{source}: target column {name!r} holds infinite values in {rows_text(rows, 0)}; remove those rows")
            out.append(values)
        return np.column_stack(out)

    def target_values(self, frame: pd.DataFrame) -> np.ndarray:
        """Regression targets in their original units (float64, (n, k))."""
        return np.column_stack([_target_numbers(frame[name]) for name in self.targets])

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
            "read": self.read.rules(),
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
            columns=[_column(c) for c in meta["columns"]],
            center=np.asarray(arrays["prep.center"], dtype=np.float64),
            scale=np.asarray(arrays["prep.scale"], dtype=np.float64),
            classes=list(meta["classes"]),
            read=ReadOptions(**meta["read"], trained=True),
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
            read=ReadOptions(trained=True),
        )


def _target_numbers(column: pd.Series) -> np.ndarray:
    """A regression target column as float64, however pandas read it (cell_numbers for text): NaN
    where a cell is not a number, which training refuses."""
    return column.to_numpy(dtype=np.float64) if is_number_dtype(column) else cell_numbers(column, booleans=False)


def _column(meta: dict[str, Any]) -> Column:
    """A column of a model file; one without a recorded form (written before it was) takes the form
    its categories show (form_of_labels)."""
    column = Column(**meta)
    if "form" not in meta:
        constant = column.fill if column.missing == "constant" else None  # a fill value, not a value the training rows held
        labels = [c for c in column.categories + column.other if c != constant] or column.categories + column.other
        column.form = form_of_labels(labels) if column.kind == "categorical" else "number"
    return column


def _numbers_at_once(frame: pd.DataFrame) -> dict[str, np.ndarray] | None:
    """Every column of a small frame of float64 and int64 columns only, as float64 (as _group casts
    them), taken out in one copy: on a streamed block of many columns, looking each up by name costs
    pandas more than the copy (encoding a 4 MiB block of L.csv's 785 columns took 29-30 ms column by
    column, 12-14 ms so). None for any other frame, whose columns are taken out one by one, uncopied."""
    if frame.shape[0] * frame.shape[1] > SMALL_COPY_VALUES or frame.shape[1] < GROUP_COLUMNS:
        return None
    if not all(numpy_float_or_int_dtype(kind) for kind in frame.dtypes):
        return None
    matrix = frame.to_numpy(dtype=np.float64)
    return dict(zip(frame.columns, matrix.T))


def row_major(matrix: np.ndarray) -> tuple[np.ndarray, bool]:
    """A row-major copy of the column-major `matrix`, ROW_MAJOR_ROWS rows at a time (numpy's own
    copy of a large column-major array to row-major order reads it across, which costs seconds), and
    whether every value is finite (each block checked while it is in the cache)."""
    out, finite = np.empty(matrix.shape, dtype=matrix.dtype), []

    def copied(starts: list[int]) -> None:
        ok = True
        for start in starts:
            block = out[start : start + ROW_MAJOR_ROWS]
            block[...] = matrix[start : start + ROW_MAJOR_ROWS]
            ok = ok and bool(np.isfinite(block).all())
        finite.append(ok)

    in_halves(copied, list(range(0, len(matrix), ROW_MAJOR_ROWS)), matrix.size)
    return out, all(finite)


def in_halves(work: Callable[[list], None], items: list, size: int) -> None:
    """work(items), the second half of the items on a thread of its own when they hold at least
    PARALLEL_VALUES values in all (`size`): numpy lets go of the GIL in its loops, and filling a new
    array goes largely to its first page faults, which two cores then take apart."""
    if size < PARALLEL_VALUES or len(items) < 2:
        work(items)
        return
    with ThreadPoolExecutor(1) as helper:
        other = helper.submit(work, items[len(items) // 2 :])
        work(items[: len(items) // 2])
        other.result()


def column_list(frame: pd.DataFrame, limit: int = 20) -> str:
    names = [str(c) for c in frame.columns]
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more

