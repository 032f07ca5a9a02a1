"""Data for a fit: the files a config names, checked, split into train/val/test, turned into arrays.

`read_splits(config.data, seed)` reads and checks the files, infers the task and each column's
kind, and splits the rows (fractions, a split column, separate files, or one fold of k);
`fit_preprocessor` fits the `Preprocessor` (bptrain.data.preprocess) on the training rows only;
`transform` gives the arrays of every split. The same `Preprocessor` is stored in the model file,
so `evaluate` and `predict` transform new rows exactly as in training.
"""

from __future__ import annotations

import copy
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bptrain import lazy, seeds
from bptrain.data import fastcsv, suspects
from bptrain.data.columns import (
    Column,
    Dropping,
    Unseen,
    check_values,
    label,
    labels_of,
    numbers_as_written,
    resolve_columns,
    rows_text,
)
from bptrain.data.preprocess import Preprocessor, column_list, infer_task
from bptrain.data.reading import CONFIG_PATHS, ReadOptions, delimiter_hint, read_table, sha256_file
from bptrain.errors import ConfigError, DataError
from bptrain.nn.options import did_you_mean

pd = lazy.module("pandas")  # imported on first use (bptrain.lazy): predict on a plain CSV file needs none of it

SPLIT_VALUES = ("train", "val", "test")
SHOWN_COLUMNS = 10


def read_options(data) -> ReadOptions:
    return ReadOptions(delimiter=data.read.delimiter, encoding=data.read.encoding, decimal=data.read.decimal)


# --- columns ---------------------------------------------------------------------------------------


def choose_features(frame: pd.DataFrame, data, source: str) -> list[str]:
    """The feature columns the config names (all but the targets, the split column and exclude)."""
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    for target in data.targets:
        if target not in columns:
            raise DataError(
                f"{source}: target column {target!r} not found.{did_you_mean(target, columns)} "
                f"Columns: {column_list(frame)}{delimiter_hint(frame)}"
            )
    split_column = data.split.column
    named = [("data.features", c) for c in data.features or []] + [("data.exclude", c) for c in data.exclude]
    named += [("data.columns", c) for c in data.columns] + ([("data.split.column", split_column)] if split_column else [])
    for key, name in named:
        if name not in columns:
            raise DataError(
                f"{source}: {key} names column {name!r}, which is not in the file.{did_you_mean(name, columns)} "
                f"Columns: {column_list(frame)}"
            )
    left_out = set(data.targets) | set(data.exclude) | ({split_column} if split_column else set())
    if data.features is not None:
        for name in data.features:
            if name in data.targets or name == split_column:
                what = "the target column" if name in data.targets else "the split column"
                raise ConfigError(f"data.features: lists {what} {name!r}; remove it")
        features = [c for c in data.features if c not in left_out]
    else:
        features = [c for c in columns if c not in left_out]
    if not features:
        raise DataError(f"{source}: no feature columns left after removing the target and data.exclude")
    return features


def _check_features(frame: pd.DataFrame, features: list[str], source: str, train: str) -> None:
    """DataError naming the feature columns of the training file `train` that `frame` (read from `source`) lacks."""
    absent = [c for c in features if c not in frame.columns]
    if absent:
        shown = ", ".join(absent[:10]) + (f" (and {len(absent) - 10} more)" if len(absent) > 10 else "")
        unused = [c for c in frame.columns if c not in features]
        raise DataError(
            f"{source}: missing {len(absent)} feature column{'s' if len(absent) > 1 else ''} of the training file {train}: {shown}."
            f"{did_you_mean(absent[0], unused)} Columns: {column_list(frame)}"
        )


def _check_targets(frame: pd.DataFrame, data, source: str) -> str:
    """The task, after checking that the target columns are complete and fit it."""
    for name in data.targets:
        n = int(frame[name].isna().sum())
        if n:
            raise DataError(f"{source}: target column {name!r} has {n} missing value{'s' if n > 1 else ''}; remove those rows")
    if data.task != "auto":
        task = data.task
    elif len(data.targets) == 1:
        task = infer_task(frame[data.targets[0]])
    else:
        try:
            task = infer_task(frame[data.targets])
        except DataError as e:
            raise DataError(f"{source}: {e}") from None
    for name in data.targets:
        column = frame[name]
        if task == "regression" and not (pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)):
            example = column.dropna().iloc[0]
            fix = "use task: classification" if len(data.targets) == 1 else "several targets must all be numeric"
            raise DataError(f"{source}: data.task is regression but target {name!r} is not numeric (e.g. {example!r}); {fix}")
        infinite = np.flatnonzero(np.isinf(column.to_numpy(dtype=np.float64))) if task == "regression" else []
        if len(infinite):
            raise DataError(f"{source}: target column {name!r} holds infinite values in {rows_text(infinite, 0)}; remove those rows")
    return task


# --- splits -------------------------------------------------------------------------------------


def _shuffled_groups(n: int, rng: np.random.Generator, strata: np.ndarray | None):
    """The row indices of each stratum (all n rows when `strata` is None), each shuffled by `rng`;
    the strata in sorted order. Each row's stratum is numbered once (pd.factorize): sorting the
    labels themselves (np.unique) and comparing each with every stratum took 0.2 s for 200,000."""
    if strata is None:
        groups = [np.arange(n)]
    else:
        codes, distinct = pd.factorize(strata, sort=True)
        groups = [np.flatnonzero(codes == k) for k in range(len(distinct))]
    for group in groups:
        yield group[rng.permutation(len(group))]


def split_indices(
    n: int, fractions: tuple[float, float], rng: np.random.Generator, strata: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded, shuffled (and stratified when `strata` is given) train/val/test row indices, sorted."""
    val_frac, test_frac = fractions
    train, val, test = [], [], []
    for group in _shuffled_groups(n, rng, strata):
        n_test = int(round(test_frac * len(group)))
        n_val = int(round(val_frac * len(group)))
        test.append(group[:n_test])
        val.append(group[n_test : n_test + n_val])
        train.append(group[n_test + n_val :])
    return tuple(np.sort(np.concatenate(part)) for part in (train, val, test))  # type: ignore[return-value]


def fold_ids(n: int, k: int, rng: np.random.Generator, strata: np.ndarray | None = None) -> np.ndarray:
    """The fold (0..k-1) of each of n rows: shuffled, and dealt round-robin within each stratum so
    every fold gets its share of every class."""
    ids = np.empty(n, dtype=np.int64)
    dealt = 0
    for group in _shuffled_groups(n, rng, strata):
        ids[group] = (np.arange(len(group)) + dealt) % k  # continue the deal, so small classes do not all land in fold 0
        dealt += len(group)
    return ids


def _check_folds(k: int, strata: np.ndarray | None, rows: int, source: str, besides: str) -> None:
    """ConfigError, before any training, when k folds cannot each validate on some rows (of every class, stratified)."""
    classes, counts = np.unique(strata, return_counts=True) if strata is not None else (None, None)
    smallest = int(np.argmin(counts)) if counts is not None else None
    if k > rows:
        # the number to suggest passes the stratified check below too
        limit, why = rows, ""
        if smallest is not None and counts[smallest] < rows:
            limit = int(counts[smallest])
            why = f" (stratified folds need a row of every class, and class {classes[smallest]!r} has only {limit} rows{besides})"
        raise ConfigError(f"data.split.folds: {k} folds need at least {k} rows, but {source} has only {rows} rows{besides}; use at most {limit} folds{why}")
    if strata is None:
        return
    if k > counts[smallest]:
        raise ConfigError(
            f"data.split.folds: {k} stratified folds need at least {k} rows of every class, but class {classes[smallest]!r} has "
            f"only {counts[smallest]} rows{besides}; use at most {counts[smallest]} folds, or set data.split.stratify: false"
        )


def _by_column(frame: pd.DataFrame, column: str, source: str) -> dict[str, np.ndarray]:
    values = frame[column]
    text = values.map(label, na_action="ignore")
    bad = np.flatnonzero(~text.isin(SPLIT_VALUES).to_numpy())
    if len(bad):
        shown = ", ".join(sorted({repr(v) for v in text.iloc[bad].fillna("(empty)")})[:5])
        rows = ", ".join(str(i + 1) for i in bad[:5]) + (f" (and {len(bad) - 5} more)" if len(bad) > 5 else "")
        raise DataError(
            f"{source}: split column {column!r} must hold train, val or test; found {shown} in row{'s' if len(bad) > 1 else ''} {rows}"
        )
    return {name: np.flatnonzero((text == name).to_numpy()) for name in SPLIT_VALUES}


def _split(frame: pd.DataFrame, data, seed: int, task: str, source: str) -> dict[str, np.ndarray]:
    """Row indices of each split of data.train (empty where another file or nothing provides it)."""
    split = data.split
    n = len(frame)
    if split.column is not None:
        return _by_column(frame, split.column, source)
    strata = None
    if task == "classification" and split.stratify:
        strata = labels_of(frame[data.targets[0]]).to_numpy()
    rng = seeds.stream(seed, seeds.SPLIT)
    test_frac = 0.0 if data.test else split.test
    if split.folds is not None:
        rest, _, test = split_indices(n, (0.0, test_frac), rng, strata)
        _check_folds(split.folds, strata[rest] if strata is not None else None, len(rest), source, " besides the test rows" if len(test) else "")
        ids = fold_ids(len(rest), split.folds, rng, strata[rest] if strata is not None else None)
        fold = (split.fold or 1) - 1
        return {"train": rest[ids != fold], "val": rest[ids == fold], "test": test}
    held_out = (0.0 if data.val else split.val, test_frac)
    if not any(held_out):
        return {"train": np.arange(n), "val": np.arange(0), "test": np.arange(0)}
    train, val, test = split_indices(n, held_out, rng, strata)
    return {"train": train, "val": val, "test": test}


# --- reading a config's data -----------------------------------------------------------------------


@dataclass
class Frames:
    """The raw train/val/test frames of a config, before any preprocessing, and what was found out."""

    frames: dict[str, pd.DataFrame | None]
    sources: dict[str, str]
    _files: list[dict[str, Any]]
    features: list[str]
    task: str
    columns: list[Column] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    read: ReadOptions = ReadOptions()
    notes: list[str] = field(default_factory=list)  # warnings for the user: suspect, constant columns, dropped rows
    digest: Future | None = None  # the training file's SHA-256, still being computed

    @property
    def files(self) -> list[dict[str, Any]]:
        """Each file read (split, path, rows, SHA-256); the training file's hash, computed on a thread
        while its rows were checked, split and encoded (on L.csv they had waited for it), is waited
        for here."""
        if self.digest is not None:
            self._files[0]["sha256"] = self.digest.result()
            self.digest = None
        return self._files


def read_splits(data, seed: int, paths: str = CONFIG_PATHS) -> Frames:
    """Read and check the files that `data` (a DataConfig) names, and split them, seeded; `paths`
    says, when a file is not found, what its path is relative to (reading.CONFIG_PATHS, ...)."""
    if data.split.column is not None and (data.val is not None or data.test is not None):
        raise ConfigError("data.split.column: cannot be combined with separate data.val or data.test files")
    if data.split.folds is not None and data.val is not None:
        raise ConfigError("data.split.folds: cross-validation takes its validation rows from data.train; remove data.val")
    options = read_options(data)
    source = str(data.train)
    frame = read_table(data.train, options=options, paths=paths)
    _exact_categories(frame, data, options, paths)
    hashing = ThreadPoolExecutor(1)  # the file's SHA-256 on the other core while its rows are checked, split and encoded
    digest = hashing.submit(sha256_file, data.train)
    hashing.shutdown(wait=False)  # its thread ends with the hash, which Frames.files waits for
    features = choose_features(frame, data, source)
    task = _check_targets(frame, data, source)
    columns = resolve_columns(frame, features, data)
    check_values(frame, columns, source)
    suspect_notes = suspects.warnings(frame, columns, options.decimal)

    frames: dict[str, pd.DataFrame | None] = {"train": frame, "val": None, "test": None}
    sources = {"train": source, "val": source, "test": source}
    files = [{"split": "train", "path": source, "rows": len(frame), "sha256": ""}]
    for name in ("val", "test"):
        path = getattr(data, name)
        if path is not None:
            other = read_table(path, options=options, paths=paths)
            _exact_categories(other, data, options, paths, path)
            choose_features(other, data, str(path))
            _check_features(other, features, str(path), source)
            _check_targets(other, data, str(path))
            check_values(other, columns, str(path))
            frames[name], sources[name] = other, str(path)
            files.append({"split": name, "path": str(path), "rows": len(other), "sha256": sha256_file(path)})

    parts = _split(frame, data, seed, task, source)
    frames.update(_rows_of(frame, {name: rows for name, rows in parts.items() if name == "train" or len(rows)}))
    raw = Frames(frames, sources, files, features, task, columns, list(data.targets), options, suspect_notes, digest)
    _drop_rows(raw)
    if len(raw.frames["train"]) < 2:
        raise DataError(f"{source}: only {len(raw.frames['train'])} training row(s) left after the split; need more data")
    for name, part in raw.frames.items():
        if part is not None and len(part) == 0:
            raw.frames[name] = None
    return raw


def _exact_categories(frame: pd.DataFrame, data, options: ReadOptions, paths: str, path: Path | None = None) -> None:
    """Columns declared categorical that pandas read as float64 (whole numbers with missing values)
    and that hold numbers past 2**53, where float64 rounds distinct integers to one: read again as
    text and kept as the numbers written. Two IDs stay two categories, as predict, which reads these
    cells as text (cell_label), tells them apart."""
    declared = [name for name, own in data.columns.items() if own.kind == "categorical" and name in frame.columns]
    rounded = [name for name in declared if frame[name].dtype == np.float64 and (np.abs(frame[name].to_numpy()) >= 2.0**53).any()]
    if not rounded:
        return
    text = read_table(path if path is not None else data.train, options=options, paths=paths, text=rounded)
    for name in rounded:
        numbers = numbers_as_written(text[name], options.decimal)
        if numbers is not None:
            frame[name] = numbers


def _rows_of(frame: pd.DataFrame, parts: dict[str, np.ndarray]) -> dict[str, pd.DataFrame]:
    """Each part's rows of `frame` (positions), as `frame.iloc[rows].reset_index(drop=True)` gives
    them, taken a column at a time and each column of `frame` removed once taken: the rows are
    held about once, not twice. `frame` is left empty. The training rows of a column that
    bptrain.data.fastcsv read go into that column's own first rows, which the training part then
    holds: no new array for them (L.csv: 339 MB, whose first page faults took 0.3 s), and such a
    column leaves `frame` at the end, since removing it frees nothing."""
    columns: dict[str, dict[str, pd.Series | np.ndarray]] = {part: {} for part in parts}
    own, scratch = fastcsv.own_columns(frame), None
    dropping = Dropping(frame)
    for name in list(frame.columns):
        column = frame[name]
        plain = isinstance(column.dtype, np.dtype) and column.dtype.kind in "fiub"  # numpy's own take: pandas' costs more per column
        values = column.to_numpy() if plain else None
        kept = own.get(name)
        for part, rows in parts.items():
            if part == "train" and kept is not None:
                continue  # after the other parts: their rows are read from the values it overwrites
            columns[part][name] = np.take(values, rows) if plain else column.take(rows).reset_index(drop=True)
        if kept is not None:
            if scratch is None:
                scratch = np.empty(len(parts["train"]), dtype=kept.dtype)
            np.take(values, parts["train"], out=scratch, mode="clip")  # every position is in range: clip only spares a buffer
            kept[: len(scratch)] = scratch
            columns["train"][name] = kept[: len(scratch)]
        dropping.add(name, frees=kept is None)  # a kept column's array stays: removing it frees nothing before the end
    dropping.flush()
    return {part: pd.DataFrame(taken, index=pd.RangeIndex(len(parts[part])), copy=False) for part, taken in columns.items()}


def _drop_rows(raw: Frames) -> None:
    """Remove, from every split, the rows missing a value in a column whose rule is `drop`."""
    dropping = [c.name for c in raw.columns if c.missing == "drop"]
    if not dropping:
        return
    counts = {}
    for name, part in raw.frames.items():
        if part is None:
            continue
        gone = part[dropping].isna().any(axis=1).to_numpy()
        if gone.any():
            raw.frames[name] = part[~gone].reset_index(drop=True)
            counts[name] = int(gone.sum())
    if counts:
        shown = ", ".join(f"{n} {name}" for name, n in counts.items())
        raw.notes.append(f"dropped rows with missing values in {', '.join(dropping)} (missing: drop): {shown}")


def fit_preprocessor(raw: Frames, before_encoding: Callable[[list[Column]], None] | None = None) -> Preprocessor:
    """Fit the preprocessor on the training rows of `raw` (see Preprocessor.fit for `before_encoding`)."""
    train, source = raw.frames["train"], raw.sources["train"]
    prep = Preprocessor.fit(
        train, targets=raw.targets, task=raw.task, columns=copy.deepcopy(raw.columns), source=source, read=raw.read,
        before_encoding=before_encoding,
    )
    if raw.task == "classification" and len(prep.classes) < 2:
        only = prep.classes[0] if prep.classes else "none"
        raise DataError(
            f"{source}: target column {raw.targets[0]!r} has only one class ({only!r}) in the training rows; "
            "classification needs at least two"
        )
    if raw.task == "multilabel":
        labels = prep.label_matrix(train, source)
        constant = [name for name, column in zip(prep.targets, labels.T) if column.min() == column.max()]
        for name in constant:
            raw.notes.append(f"target column {name!r} holds only {labels[0, prep.targets.index(name)]} in the training rows")
    if raw.task == "regression":
        for name in prep.targets:
            if _single_valued(train[name]):
                value = train[name].dropna().iloc[0]
                raw.notes.append(
                    f"target column {name!r} holds only {value:g} in the training rows: there is nothing to learn but that value, "
                    "and r2, which measures against the target's spread, is undefined (left empty) on rows whose target is constant"
                )
    _check_held_out_classes(raw, prep)
    constant = [c.name for c in prep.columns if _single_valued(train[c.name])]
    if len(constant) == 1:
        raw.notes.append(f"column {constant[0]!r} has a single value in the training rows; it gives the network nothing to learn from")
    elif constant:
        shown = ", ".join(map(repr, constant[:SHOWN_COLUMNS])) + (f" (and {len(constant) - SHOWN_COLUMNS} more)" if len(constant) > SHOWN_COLUMNS else "")
        raw.notes.append(f"columns {shown} have a single value each in the training rows; they give the network nothing to learn from")
    return prep


def _single_valued(column: pd.Series) -> bool:
    """Whether the column holds at most one distinct value besides missing ones, as nunique(dropna=True)
    <= 1 says; for numbers, from their least and greatest (a hash of every value costs seconds on
    hundreds of columns)."""
    values = column.to_numpy()
    if values.dtype.kind not in "fiub":
        return column.nunique(dropna=True) <= 1
    if values.size == 0:
        return True
    low, high = values.min(), values.max()
    if values.dtype.kind == "f" and (np.isnan(low) or np.isnan(high)):  # a missing value: the others' least and greatest
        values = values[~np.isnan(values)]
        return values.size == 0 or bool(values.min() == values.max())
    return bool(low == high)


def _check_held_out_classes(raw: Frames, prep: Preprocessor) -> None:
    """DataError naming the classes of the validation or test rows that no training row has: the
    network has no output for them, so they could only ever be scored as wrong."""
    if raw.task != "classification":
        return
    target, known = raw.targets[0], set(prep.classes)
    for name in ("val", "test"):
        part = raw.frames[name]
        if part is None:
            continue
        counts = labels_of(part[target]).value_counts()
        new = sorted(c for c in counts.index if c not in known)
        if not new:
            continue
        source, train_source = raw.sources[name], raw.sources["train"]
        one = len(new) == 1
        shown = ", ".join(f"{c!r} ({counts[c]} row{'s' if counts[c] > 1 else ''})" for c in new[:SHOWN_COLUMNS])
        where = f"in none of the training rows ({train_source})" if source != train_source else (
            f"in the {'validation' if name == 'val' else 'test'} rows but in none of the training rows"
        )
        raise DataError(
            f"{source}: class{'' if one else 'es'} {shown} of target column {target!r} {'is' if one else 'are'} {where}, "
            f"so the model can never predict {'it' if one else 'them'}; add rows of {'that class' if one else 'those classes'} "
            f"to {train_source}, or remove those rows from {source}"
        )


# --- arrays -------------------------------------------------------------------------------------


@dataclass
class Split:
    """One split's arrays and where they came from.

    `y` is what the loss consumes; `labels` holds class indices (classification) or the 0/1 label
    matrix (multilabel) for the metrics; `frame` the raw rows.
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    frame: pd.DataFrame
    labels: np.ndarray | None = None


def loss_target(target: np.ndarray, loss: str, dtype: str) -> np.ndarray:
    """The target as `loss` wants it: class indices, or a 0/1 column for binary cross-entropy."""
    if loss == "binary_cross_entropy" and target.ndim == 1:
        return target.astype(dtype).reshape(-1, 1)
    return target


@dataclass
class Dataset:
    prep: Preprocessor
    train: Split
    val: Split | None
    test: Split | None
    files: list[dict[str, Any]]

    def splits(self) -> list[Split]:
        return [s for s in (self.train, self.val, self.test) if s is not None]


def split_of(name: str, frame: pd.DataFrame, source: str, prep: Preprocessor, loss: str, dtype: str, *, strict: bool = False,
             unseen: Unseen | None = None, release: bool = False) -> Split:
    """The arrays of one labelled frame, through `prep`, with the target encoded for `loss`.
    Rows that `prep` drops (a missing value where the rule is `drop`) are left out. With `release`,
    the feature columns are removed from `frame` as they are encoded (Preprocessor.features_of)."""
    prep.check_targets(frame, source)
    prep.check_columns(frame, source)  # before dropped_rows, which reads the columns whose rule is drop
    dropped = prep.dropped_rows(frame)
    x = prep.features_of(frame, source, dtype, strict=strict, unseen=unseen, allow_dropped=True, release=release)
    if dropped.any():
        x, frame = x[~dropped], frame[~dropped].reset_index(drop=True)
    target = prep.target_of(frame, source, dtype)
    labels = target.astype(np.int64) if prep.task != "regression" else None
    return Split(name, x, loss_target(target, loss, dtype), frame, labels)


def transform(
    raw: Frames, prep: Preprocessor, loss: str, dtype: str = "float32", unseen: Unseen | None = None, *, release: bool = False
) -> Dataset:
    """Arrays for every split of `raw`, through `prep`; categories of the validation and test rows
    that the training rows lack are counted in `unseen`. With `release`, the feature columns are
    removed from raw's frames once encoded (for a caller that needs only the arrays and the targets
    from then on), so that a big file's raw values and its arrays are not held in full together."""
    splits: dict[str, Split | None] = {}
    for name, part in raw.frames.items():
        splits[name] = None if part is None else split_of(name, part, raw.sources[name], prep, loss, dtype, unseen=unseen, release=release)
    return Dataset(prep, splits["train"], splits["val"], splits["test"], raw.files)
