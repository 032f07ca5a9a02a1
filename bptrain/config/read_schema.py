"""The parts of the `data:` section a model file records (bptrain.runs.modelfile): how CSV files are
read, and the names of the scalings and missing-value rules. predict validates a model file with
them without building the rest of the data schema (config.data_schema, which takes them from here).
"""

from __future__ import annotations

import codecs
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

Scale = Literal["standard", "minmax", "robust", "none"]
NumericMissing = Literal["error", "drop", "mean", "median", "most_frequent", "constant"]
CategoricalMissing = Literal["error", "drop", "most_frequent", "constant"]
NUMERIC_ONLY_MISSING = ("mean", "median")


class Strict(BaseModel):
    # defer_build: each model's validator is made when it first validates, so that a command
    # pays only for the models it uses (predict validates a model file, never a whole config)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, defer_build=True)


class ReadConfig(Strict):
    """How CSV files are read (Parquet files need none of it)."""

    delimiter: str = "auto"
    encoding: str = "utf-8"
    decimal: str = "."

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str) -> str:
        value = "\t" if value == "tab" else value
        if value != "auto" and len(value) != 1:
            raise ValueError(f"must be auto, tab or one character such as ',' or ';' (got {value!r})")
        return value

    @field_validator("encoding")
    @classmethod
    def _known_codec(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r}; use a Python codec name such as utf-8, latin-1 or cp1252") from None
        return value

    @field_validator("decimal")
    @classmethod
    def _decimal_mark(cls, value: str) -> str:
        if len(value) != 1:
            raise ValueError(f"must be one character, '.' or ',' (got {value!r})")
        return value
