"""Data: CSV files in through pandas, float arrays out; preprocessing fitted on the training rows only.

`load(config.data, seed)` reads the files, infers the task, splits train/val/test, fits the
`Preprocessor` on the training rows and returns arrays for every split. The same `Preprocessor`
is stored in the model file, so `evaluate` and `predict` transform new rows exactly as in training.
"""

from __future__ import annotations

import hashlib
import io
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from bptrain.errors import ConfigError, DataError
from bptrain.registry import did_you_mean

MAX_CLASSES_FOR_INTEGER_TARGET = 20
STDIN = "-"


# --- reading -------------------------------------------------------------------------------


def read_csv(source: Path | str, *, stdin: IO[bytes] | None = None) -> pd.DataFrame:
    """A whole CSV file (or `-` for standard input) as a DataFrame; DataError on anything unusable."""
    name, data = _read_bytes(source, stdin)
    return _parse(name, data)


def read_csv_keeping(source: Path | str, columns: list[str], *, stdin: IO[bytes] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The frame, and `columns` as the exact text of the file (for copying through untouched)."""
    name, data = _read_bytes(source, stdin)
    frame = _parse(name, data)
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        names = [str(c) for c in frame.columns]
        raise DataError(f"{name}: --keep column {absent[0]!r} not found.{did_you_mean(absent[0], names)} Columns: {', '.join(names)}")
    text = pd.read_csv(io.BytesIO(data), usecols=columns, dtype=str, keep_default_na=False) if columns else frame[[]]
    return frame, text


def source_name(source: Path | str) -> str:
    return "<stdin>" if str(source) == STDIN else str(source)


def _read_bytes(source: Path | str, stdin: IO[bytes] | None) -> tuple[str, bytes]:
    name = source_name(source)
    try:
        if str(source) == STDIN:
            return name, (stdin if stdin is not None else sys.stdin.buffer).read()
        return name, Path(source).read_bytes()
    except FileNotFoundError:
        raise DataError(f"{name}: data file not found. Check the path (data paths are relative to the config file)") from None
    except IsADirectoryError:
        raise DataError(f"{name}: is a folder, not a CSV file") from None
    except OSError as e:
        raise DataError(f"{name}: cannot read ({e.strerror})") from None


def parse_csv_block(name: str, data: bytes, header_only: bool = False, usecols: list[str] | None = None):
    """A header line plus records (bytes) as a DataFrame, or just the column names with `header_only`."""
    if header_only:
        try:
            return [str(c) for c in pd.read_csv(io.BytesIO(data), nrows=0).columns]
        except pd.errors.EmptyDataError:
            raise DataError(f"{name}: the file is empty; a CSV file needs a header line and rows") from None
        except (pd.errors.ParserError, UnicodeDecodeError) as e:
            raise DataError(f"{name}: cannot parse the header line: {_first_line(e)}") from None
    return _parse(name, data, usecols)


def _parse(name: str, data: bytes, usecols: list[str] | None = None) -> pd.DataFrame:
    try:
        frame = pd.read_csv(io.BytesIO(data), usecols=usecols)
    except pd.errors.EmptyDataError:
        raise DataError(f"{name}: the file is empty; a CSV file needs a header line and rows") from None
    except pd.errors.ParserError as e:
        raise DataError(f"{name}: cannot parse as CSV: {_first_line(e)}") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{name}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    if len(frame) == 0:
        raise DataError(f"{name}: has a header but no rows")
    duplicated = sorted({str(c).rsplit(".", 1)[0] for c in frame.columns if _is_mangled_duplicate(c, frame.columns)})
    if duplicated:
        raise DataError(f"{name}: duplicate column names: {', '.join(duplicated)}. Rename them so each is unique")
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _is_mangled_duplicate(column: Any, columns: pd.Index) -> bool:
    head, dot, tail = str(column).rpartition(".")
    return bool(dot) and tail.isdigit() and head in columns


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- the task -------------------------------------------------------------------------------


def infer_task(target: pd.Series) -> str:
    """classification for text or bool targets, or integers with few distinct values; else regression."""
    values = target.dropna()
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return "classification"
    if pd.api.types.is_integer_dtype(values) and values.nunique() <= MAX_CLASSES_FOR_INTEGER_TARGET:
        return "classification"
    return "regression"


def class_labels(values: pd.Series) -> list[str]:
    """The distinct target values as strings, numbers in numeric order, text in text order."""
    distinct = pd.unique(values.dropna())
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        distinct = sorted(distinct)
    else:
        distinct = sorted(distinct, key=str)
    return [_label(v) for v in distinct]


def _label(value: Any) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


# --- the preprocessor ---------------------------------------------------------------------------


@dataclass
class Preprocessor:
    """What the model needs to turn a raw frame into arrays: columns, scaling, classes."""

    target: str
    task: str
    features: list[str]
    mean: np.ndarray
    scale: np.ndarray
    classes: list[str] = field(default_factory=list)
    target_mean: float = 0.0
    target_scale: float = 1.0

    @classmethod
    def fit(cls, frame: pd.DataFrame, *, target: str, task: str, features: list[str]) -> "Preprocessor":
        values = frame[features].to_numpy(dtype=np.float64)
        mean = values.mean(axis=0)
        scale = values.std(axis=0)
        scale[scale == 0.0] = 1.0
        prep = cls(target=target, task=task, features=list(features), mean=mean, scale=scale)
        if task == "classification":
            prep.classes = class_labels(frame[target])
        else:
            y = frame[target].to_numpy(dtype=np.float64)
            prep.target_mean = float(y.mean())
            prep.target_scale = float(y.std()) or 1.0
        return prep

    def features_of(self, frame: pd.DataFrame, source: str, dtype: str = "float32", first_row: int = 0) -> np.ndarray:
        """The standardized feature matrix of `frame` (rows from `first_row` of `source`); DataError naming bad columns."""
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            unused = [str(c) for c in frame.columns if str(c) not in self.features]
            hint = did_you_mean(missing[0], unused)
            shown = ", ".join(missing[:10]) + (f" (and {len(missing) - 10} more)" if len(missing) > 10 else "")
            raise DataError(
                f"{source}: missing {len(missing)} feature column{'s' if len(missing) > 1 else ''} "
                f"the model was trained with: {shown}.{hint} Columns: {_column_list(frame)}"
            )
        check_features(frame, self.features, source)
        x = frame[self.features].to_numpy(dtype=np.float64)
        x -= self.mean
        x /= self.scale
        return x.astype(dtype, copy=False)

    def target_of(self, frame: pd.DataFrame, source: str, dtype: str = "float32") -> np.ndarray:
        """Class indices (int64) for classification, standardized values (n, 1) for regression."""
        column = frame[self.target]
        missing = int(column.isna().sum())
        if missing:
            raise DataError(
                f"{source}: target column {self.target!r} has {missing} missing value{'s' if missing > 1 else ''}; "
                "remove those rows"
            )
        if self.task == "classification":
            labels = column.map(_label)
            index = {c: i for i, c in enumerate(self.classes)}
            unknown = sorted(set(labels) - set(index))
            if unknown:
                raise DataError(
                    f"{source}: target column {self.target!r} has values the model never saw: "
                    f"{', '.join(map(repr, unknown[:5]))}; the model knows {', '.join(self.classes)}"
                )
            return labels.map(index).to_numpy(dtype=np.int64)
        if not pd.api.types.is_numeric_dtype(column):
            raise DataError(f"{source}: regression target {self.target!r} is not numeric (e.g. {column.iloc[0]!r})")
        y = column.to_numpy(dtype=np.float64).reshape(-1, 1)
        return ((y - self.target_mean) / self.target_scale).astype(dtype)

    def target_values(self, frame: pd.DataFrame) -> np.ndarray:
        """Regression targets in their original units (float64, shape (n,))."""
        return frame[self.target].to_numpy(dtype=np.float64)

    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Arrays and JSON-able metadata for the model file."""
        meta = {
            "target": self.target,
            "task": self.task,
            "features": self.features,
            "classes": self.classes,
            "target_mean": self.target_mean,
            "target_scale": self.target_scale,
        }
        return {"prep.mean": self.mean, "prep.scale": self.scale}, meta

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> "Preprocessor":
        return cls(
            target=meta["target"],
            task=meta["task"],
            features=list(meta["features"]),
            mean=np.asarray(arrays["prep.mean"], dtype=np.float64),
            scale=np.asarray(arrays["prep.scale"], dtype=np.float64),
            classes=list(meta["classes"]),
            target_mean=float(meta["target_mean"]),
            target_scale=float(meta["target_scale"]),
        )


def _column_list(frame: pd.DataFrame, limit: int = 20) -> str:
    names = [str(c) for c in frame.columns]
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def check_features(frame: pd.DataFrame, features: list[str], source: str) -> None:
    """DataError when a feature column is not numeric or has missing values."""
    text = []
    for name in features:
        column = frame[name]
        if not (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)):
            example = column.dropna().iloc[0] if column.notna().any() else ""
            text.append(f"{name} (e.g. {str(example)!r})")
    if text:
        raise DataError(
            f"{source}: feature columns are not numeric: {', '.join(text)}. "
            "Convert them to numbers, or leave them out with data.exclude"
        )
    counts = frame[features].isna().sum()
    gaps = [f"{name} ({int(n)} row{'s' if n > 1 else ''})" for name, n in counts.items() if n]
    if gaps:
        raise DataError(
            f"{source}: missing values in feature columns: {', '.join(gaps)}. "
            "Fill them in or remove those rows, or leave the columns out with data.exclude"
        )
    values = frame[features].to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        bad = [name for name, ok in zip(features, np.isfinite(values).all(axis=0)) if not ok]
        raise DataError(f"{source}: infinite values in feature columns: {', '.join(bad)}")


# --- splits ---------------------------------------------------------------------------------


def split_indices(
    n: int, fractions: tuple[float, float], rng: np.random.Generator, strata: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded, shuffled (and stratified when `strata` is given) train/val/test row indices, sorted."""
    val_frac, test_frac = fractions
    groups = [np.arange(n)] if strata is None else [np.flatnonzero(strata == s) for s in np.unique(strata)]
    train, val, test = [], [], []
    for group in groups:
        group = group[rng.permutation(len(group))]
        n_test = int(round(test_frac * len(group)))
        n_val = int(round(val_frac * len(group)))
        test.append(group[:n_test])
        val.append(group[n_test : n_test + n_val])
        train.append(group[n_test + n_val :])
    return tuple(np.sort(np.concatenate(part)) for part in (train, val, test))  # type: ignore[return-value]


# --- everything a fit needs -------------------------------------------------------------------


@dataclass
class Split:
    """One split's arrays and where they came from.

    `y` is what the loss consumes; `labels` holds class indices for classification metrics.
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


def choose_features(frame: pd.DataFrame, data, source: str) -> list[str]:
    """The feature columns the config names (all but target and exclude by default)."""
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    if data.target not in columns:
        raise DataError(
            f"{source}: target column {data.target!r} not found.{did_you_mean(data.target, columns)} "
            f"Columns: {_column_list(frame)}"
        )
    named = list(data.features or []) + list(data.exclude)
    unknown = [c for c in named if c not in columns]
    if unknown:
        key = "data.features" if data.features and unknown[0] in data.features else "data.exclude"
        raise DataError(
            f"{source}: {key} names column {unknown[0]!r}, which is not in the file.{did_you_mean(unknown[0], columns)} "
            f"Columns: {_column_list(frame)}"
        )
    if data.features is not None:
        if data.target in data.features:
            raise ConfigError(f"data.features: lists the target column {data.target!r}; remove it")
        features = [c for c in data.features if c not in data.exclude]
    else:
        features = [c for c in columns if c != data.target and c not in data.exclude]
    if not features:
        raise DataError(f"{source}: no feature columns left after removing the target and data.exclude")
    return features


@dataclass
class Frames:
    """The raw train/val/test frames of a config, before any preprocessing."""

    frames: dict[str, pd.DataFrame | None]
    sources: dict[str, str]
    files: list[dict[str, Any]]
    features: list[str]
    task: str


def read_splits(data, seed: int) -> Frames:
    """Read and check the files that `data` (a DataConfig) names, and split them, seeded."""
    source = str(data.train)
    frame = read_csv(data.train)
    features = choose_features(frame, data, source)
    check_features(frame, features, source)
    if frame[data.target].isna().any():
        n = int(frame[data.target].isna().sum())
        raise DataError(f"{source}: target column {data.target!r} has {n} missing value{'s' if n > 1 else ''}; remove those rows")
    task = infer_task(frame[data.target]) if data.task == "auto" else data.task
    if task == "regression" and not pd.api.types.is_numeric_dtype(frame[data.target]):
        raise DataError(
            f"{source}: data.task is regression but target {data.target!r} is not numeric "
            f"(e.g. {frame[data.target].iloc[0]!r}); use task: classification"
        )

    frames: dict[str, pd.DataFrame | None] = {"train": frame, "val": None, "test": None}
    sources = {"train": source, "val": source, "test": source}
    files = [{"split": "train", "path": source, "rows": len(frame), "sha256": sha256_file(data.train)}]
    for name in ("val", "test"):
        path = getattr(data, name)
        if path is not None:
            other = read_csv(path)
            choose_features(other, data, str(path))
            frames[name], sources[name] = other, str(path)
            files.append({"split": name, "path": str(path), "rows": len(other), "sha256": sha256_file(path)})

    held_out = (0.0 if data.val else data.split.val, 0.0 if data.test else data.split.test)
    if any(held_out):
        strata = None
        if task == "classification" and data.split.stratify:
            strata = frame[data.target].map(_label).to_numpy()
        rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
        train_idx, val_idx, test_idx = split_indices(len(frame), held_out, rng, strata)
        frames["train"] = frame.iloc[train_idx].reset_index(drop=True)
        if held_out[0]:
            frames["val"] = frame.iloc[val_idx].reset_index(drop=True)
        if held_out[1]:
            frames["test"] = frame.iloc[test_idx].reset_index(drop=True)
    if len(frames["train"]) < 2:
        raise DataError(f"{source}: only {len(frames['train'])} training row(s) left after the split; need more data")
    for name, part in frames.items():
        if part is not None and len(part) == 0:
            frames[name] = None
    return Frames(frames, sources, files, features, task)


def split_of(name: str, frame: pd.DataFrame, source: str, prep: Preprocessor, loss: str, dtype: str) -> Split:
    """The arrays of one labelled frame, through `prep`, with the target encoded for `loss`."""
    target = prep.target_of(frame, source, dtype)
    labels = target if prep.task == "classification" else None
    return Split(name, prep.features_of(frame, source, dtype), loss_target(target, loss, dtype), frame, labels)


def transform(raw: Frames, prep: Preprocessor, loss: str, dtype: str = "float32") -> Dataset:
    """Arrays for every split of `raw`, through `prep`."""
    splits: dict[str, Split | None] = {}
    for name, part in raw.frames.items():
        splits[name] = None if part is None else split_of(name, part, raw.sources[name], prep, loss, dtype)
    return Dataset(prep, splits["train"], splits["val"], splits["test"], raw.files)


def fit_preprocessor(raw: Frames, target: str) -> Preprocessor:
    """Fit the preprocessor on the training rows of `raw`."""
    prep = Preprocessor.fit(raw.frames["train"], target=target, task=raw.task, features=raw.features)
    if raw.task == "classification" and len(prep.classes) < 2:
        only = prep.classes[0] if prep.classes else "none"
        raise DataError(
            f"{raw.sources['train']}: target column {target!r} has only one class ({only!r}) in the training rows; "
            "classification needs at least two"
        )
    return prep
