"""The parts of the `data:` section a model file records (bptrain.runs.modelfile): how CSV files are
read, and the scalings and missing-value rules (named in config.choices). A model file is validated
with them (bptrain.runs.meta_schema) without the rest of the data schema (config.data_schema, which
takes them from here).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

from bptrain.config.choices import CATEGORICAL_MISSING, NUMERIC_MISSING, SCALES, is_codec, is_delimiter

Scale = Literal[SCALES]  # type: ignore[valid-type]
NumericMissing = Literal[NUMERIC_MISSING]  # type: ignore[valid-type]
CategoricalMissing = Literal[CATEGORICAL_MISSING]  # type: ignore[valid-type]


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
        if not is_delimiter(value):
            raise ValueError(f"must be auto, tab or one character such as ',' or ';' (got {value!r})")
        return "\t" if value == "tab" else value

    @field_validator("encoding")
    @classmethod
    def _known_codec(cls, value: str) -> str:
        if not is_codec(value):
            raise ValueError(f"unknown encoding {value!r}; use a Python codec name such as utf-8, latin-1 or cp1252")
        return value

    @field_validator("decimal")
    @classmethod
    def _decimal_mark(cls, value: str) -> str:
        if len(value) != 1:
            raise ValueError(f"must be one character, '.' or ',' (got {value!r})")
        return value
