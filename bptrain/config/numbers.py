"""Number types of the config schema: true/false is never a number (YAML reads `lr: true` as a bool).

Non-finite numbers (`.inf`, `.nan`) are refused by the models' `allow_inf_nan=False` (data_schema.Strict),
and whole numbers past INT_MAX by `Int` (YAML reads a whole number of any length, which no float holds).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from bptrain.config.choices import INT_MAX


def _not_a_bool(value: Any) -> Any:
    # pydantic's lax mode would read true as 1 and false as 0, silently
    if isinstance(value, bool):
        raise ValueError("must be a number, not true or false")
    return value


Float = Annotated[float, BeforeValidator(_not_a_bool)]
Int = Annotated[int, BeforeValidator(_not_a_bool), Field(le=INT_MAX)]
Fraction = Annotated[Float, Field(ge=0.0, lt=1.0)]
Positive = Annotated[Float, Field(gt=0.0)]
NonNegative = Annotated[Float, Field(ge=0.0)]
