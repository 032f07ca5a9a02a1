"""Config: the YAML file as strict pydantic models (schema.py), loaded and validated once (loading.py)."""

from bptrain.config.loading import (
    dump_yaml,
    format_errors,
    load_config,
    parse_overrides,
    read_yaml_mapping,
    resolved_dict,
    set_dotted,
    validate_config,
)
from bptrain.config.schema import Config

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
