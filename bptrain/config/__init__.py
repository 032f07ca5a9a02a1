"""Config: the YAML file as strict pydantic models (schema.py), loaded and validated once (loading.py).

The names below are imported on first use, so that a command needing only the schema (predict
checks a model file's layers with it) does not load the YAML reader.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Config",
    "dump_yaml",
    "format_errors",
    "load_config",
    "parse_overrides",
    "read_yaml_mapping",
    "resolved_dict",
    "set_dotted",
    "validate_config",
]


def __getattr__(name: str) -> Any:
    if name == "Config":
        from bptrain.config import schema

        return schema.Config
    if name in __all__:
        from bptrain.config import loading

        return getattr(loading, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
