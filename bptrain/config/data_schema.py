"""The `data:` section of a config: files, targets, reading, splits, and how each column is prepared.

Per-kind settings (`numeric`, `categorical`) apply to every column of that kind; `columns` overrides
them one column at a time. A setting that cannot apply to a column's kind is an error with its path.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_serializer, model_validator

from bptrain.config.numbers import Float, Fraction, Int
from bptrain.config.choices import NUMERIC_ONLY_MISSING
from bptrain.config.read_schema import CategoricalMissing, NumericMissing, ReadConfig, Scale, Strict
from bptrain.nn.options import shown


class SplitConfig(Strict):
    """Which rows train, validate and test: fractions of data.train, a split column, or k folds."""

    val: Fraction = 0.15
    test: Fraction = 0.15
    stratify: bool = True
    column: str | None = None
    folds: Annotated[Int, Field(ge=2)] | None = None
    fold: Annotated[Int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _leaves_training_rows(self) -> "SplitConfig":
        if self.val + self.test >= 1.0:
            raise ValueError(f"val + test must be below 1 to leave rows for training (got {self.val} + {self.test})")
        return self

    @field_validator("folds")
    @classmethod
    def _not_with_a_column(cls, value: int | None, info) -> int | None:
        if value is not None and info.data.get("column") is not None:
            raise ValueError("cannot be combined with split.column, which already says which rows validate")
        return value

    @field_validator("fold")
    @classmethod
    def _one_of_the_folds(cls, value: int | None, info) -> int | None:
        if "folds" not in info.data:  # folds itself is wrong; that is reported
            return value
        folds = info.data["folds"]
        if value is not None and folds is None:
            raise ValueError(f"needs split.folds, the number of folds it is one of (got {value})")
        if value is not None and folds is not None and value > folds:
            raise ValueError(f"must be between 1 and split.folds ({folds}) (got {value})")
        return value


class NumericConfig(Strict):
    """How numeric columns are prepared."""

    missing: NumericMissing = "error"
    fill_value: Float = 0.0
    scale: Scale = "standard"
    indicator: bool = False


class CategoricalConfig(Strict):
    """How categorical columns are prepared (one-hot encoded)."""

    missing: CategoricalMissing = "error"
    fill_value: str = "missing"
    max_categories: Annotated[Int, Field(ge=2)] = 20
    scale: Scale = "none"
    indicator: bool = False


class ColumnConfig(Strict):
    """One column's overrides; a key that is absent (or null) follows the settings of the column's kind."""

    kind: Literal["auto", "numeric", "categorical"] = "auto"
    missing: NumericMissing | None = None
    fill_value: Float | str | None = None
    scale: Scale | None = None
    indicator: bool | None = None
    max_categories: Annotated[Int, Field(ge=2)] | None = None

    @field_validator("fill_value", mode="before")
    @classmethod
    def _scalar(cls, value: Any) -> Any:
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float, str))):
            raise ValueError(f"must be a number or a text value (got {shown(value)})")
        return value

    @model_validator(mode="after")
    def _fits_the_kind(self) -> "ColumnConfig":
        if self.kind == "numeric" and self.max_categories is not None:
            raise ValueError("max_categories applies to categorical columns, and kind is numeric")
        if self.kind == "categorical" and self.missing in NUMERIC_ONLY_MISSING:
            raise ValueError(f"missing: {self.missing} applies to numeric columns; use most_frequent, constant, drop or error")
        if self.kind == "numeric" and isinstance(self.fill_value, str):
            raise ValueError(f"fill_value of a numeric column must be a number (got {self.fill_value!r})")
        return self

    @model_serializer(mode="wrap")
    def _only_what_is_set(self, handler) -> dict[str, Any]:
        return {k: v for k, v in handler(self).items() if v is not None}


def _target_names(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        if len(set(value)) != len(value):
            raise ValueError(f"lists a column twice (got {value})")
        return value[0] if len(value) == 1 else value
    raise ValueError(f"must be a column name, or a list of column names for several targets (got {shown(value)})")


class DataConfig(Strict):
    train: Path
    val: Path | None = None
    test: Path | None = None
    target: str | list[str]
    features: list[str] | None = None
    exclude: list[str] = []
    task: Literal["auto", "classification", "regression", "multilabel"] = "auto"
    read: ReadConfig = ReadConfig()
    split: SplitConfig = SplitConfig()
    numeric: NumericConfig = NumericConfig()
    categorical: CategoricalConfig = CategoricalConfig()
    columns: dict[str, ColumnConfig] = {}

    _target = field_validator("target", mode="before")(lambda value: _target_names(value))

    @field_validator("train", "val", "test", mode="after")
    @classmethod
    def _relative_to_config(cls, value: Path | None, info) -> Path | None:
        base = (info.context or {}).get("base")
        if value is None or base is None or value.is_absolute():
            return value
        return Path(os.path.normpath(Path(base) / value))

    @field_validator("task")
    @classmethod
    def _fits_the_targets(cls, value: str, info) -> str:
        several = isinstance(info.data.get("target"), list)
        if several and value == "classification":
            raise ValueError("classification takes one target column; several targets are multilabel (0/1 columns) or regression")
        if not several and value == "multilabel" and "target" in info.data:
            raise ValueError("multilabel needs a list of target columns, each holding 0/1")
        return value

    @field_validator("features")
    @classmethod
    def _each_once(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError(f"lists a column twice (got {value})")
        return value

    @field_validator("exclude")
    @classmethod
    def _not_a_feature(cls, value: list[str], info) -> list[str]:
        both = [c for c in info.data.get("features") or [] if c in value]
        if both:
            raise ValueError(f"{both[0]!r} is also in data.features; a column is a feature or excluded, not both")
        return value

    @field_validator("columns")
    @classmethod
    def _not_the_target(cls, value: dict, info) -> dict:
        target = info.data.get("target")
        targets = target if isinstance(target, list) else [target]
        named = [c for c in value if c in targets]
        if named:
            raise ValueError(f"{named[0]!r} is the target; only feature columns are prepared")
        return value

    @property
    def targets(self) -> list[str]:
        return list(self.target) if isinstance(self.target, list) else [self.target]
