"""The names and rules of the config that a model file records, without pydantic: the scalings,
the missing-value rules, what a CSV reading option takes, and the largest whole number.
config.read_schema and config.numbers make their models of them; bptrain.runs.meta_fast checks a
model file with them before any model is built.
"""

from __future__ import annotations

import codecs

SCALES = ("standard", "minmax", "robust", "none")
NUMERIC_MISSING = ("error", "drop", "mean", "median", "most_frequent", "constant")
CATEGORICAL_MISSING = ("error", "drop", "most_frequent", "constant")
NUMERIC_ONLY_MISSING = ("mean", "median")
INT_MAX = 2**63 - 1  # numpy's int64 holds no more: no count or size in a config goes past it


def is_delimiter(value: str) -> bool:
    """auto, tab, or one character."""
    return value in ("auto", "tab") or len(value) == 1


def is_codec(name: str) -> bool:
    """A name Python's codecs know."""
    try:
        codecs.lookup(name)
    except LookupError:
        return False
    return True
