"""The text forms of the stopping rules in a config: durations (`90s`, `1h30m`) and comparisons (`>= 0.99`)."""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_OPERATORS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}


def parse_duration(value: float | int | str) -> float:
    """Seconds from 90, "90s", "10m", "2h" or "1h30m"; ValueError otherwise."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"must be a positive number of seconds (got {value})")
        return float(value)
    text = str(value).strip().lower()
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([smhd])", text)
    if not parts or re.sub(r"(\d+(?:\.\d+)?)\s*([smhd])", "", text).strip():
        raise ValueError(f"must be a duration such as 90s, 10m, 2h or 1h30m (got {value!r})")
    seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError(f"must be positive (got {value!r})")
    return seconds


@dataclass(frozen=True)
class Condition:
    """`metric op value`, e.g. val_accuracy >= 0.99, checked on an epoch's row of metrics."""

    metric: str
    op: str
    value: float

    @classmethod
    def parse(cls, metric: str, text: str | float) -> "Condition":
        match = re.fullmatch(r"\s*(>=|<=|>|<)\s*([-+0-9.eEinf]+)\s*", str(text))
        try:
            value = float(match.group(2)) if match else math.nan
        except ValueError:
            value = math.nan
        if not match or math.isnan(value):
            raise ValueError(f"must be a comparison such as '>= 0.99' or '< 0.01' (got {text!r})")
        if math.isinf(value):  # `> inf` never holds, and a non-finite loss is divergence already
            raise ValueError(f"must compare with a finite number such as '> 100' (got {text!r})")
        return cls(metric, match.group(1), value)

    def holds(self, row: dict) -> bool:
        value = row.get(self.metric)
        return value is not None and not math.isnan(value) and _OPERATORS[self.op](value, self.value)

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"
