"""Config YAML, read safely: at most MAX_BYTES read, nesting capped, duplicate keys refused, what
aliases expand to capped, libyaml when present.

parse_yaml() and read_capped() raise ConfigError naming the source (a file, or `--set KEY`) and,
where it helps, the line; nothing here can hang on an endless stream or exhaust the stack, and no
reader of the result meets more values than a document of MAX_BYTES could spell out.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from bptrain.errors import ConfigError

MAX_BYTES = 1_000_000  # configs are a few KB; the cap keeps /dev/zero or a wrong file from hanging a command
MAX_DEPTH = 50  # a config nests about 5 levels; the cap keeps deep nesting away from recursion limits
# Anchors and aliases let a few hundred bytes stand for 10**9 values, which any code writing the value
# out (a message, a lookup by name) would walk; a document without aliases holds fewer values than bytes.
MAX_VALUES = MAX_BYTES

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml, when installed, parses many times faster


class YAMLSyntaxError(ConfigError):
    """The text is not YAML (as opposed to YAML refused for what it holds)."""


class _Duplicate(Exception):
    def __init__(self, key: Any, line: int, first: int):
        super().__init__(key)
        self.key, self.line, self.first = key, line, first


class StrictLoader(_Base):  # type: ignore[misc, valid-type]
    """The safe loader, refusing a key given twice in one mapping (YAML says keys are unique)."""

    def construct_mapping(self, node, deep=False):
        if not isinstance(node, yaml.MappingNode):  # e.g. a scalar tagged !!set: the base loader's own error
            return super().construct_mapping(node, deep=deep)
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue  # merged keys may be overridden, and complex keys are refused below anyway
            key = self.construct_object(key_node)
            try:
                hash(key)
            except TypeError:  # a scalar tagged, e.g., !!omap makes a list: the base loader refuses it as an unhashable key
                continue
            line = key_node.start_mark.line + 1
            if key in seen:
                raise _Duplicate(key, line, seen[key])
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def read_capped(path: Path) -> bytes:
    """The bytes of `path`, reading at most MAX_BYTES + 1 so an endless stream ends at once."""
    with open(path, "rb") as f:
        data = f.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise ConfigError(
            f"{path}: larger than {MAX_BYTES // 1_000_000} MB, too large for a config file (a config is a few KB of YAML); "
            "check that this is the config and not a data file"
        )
    return data


def parse_yaml(text: str, source: str) -> Any:
    """`text` as Python data; ConfigError `source: line L: ...` for syntax errors, duplicates and deep nesting."""
    try:
        _check_depth(text, source)
        data = yaml.load(text, Loader=StrictLoader)  # noqa: S506 (a safe loader)
    except _Duplicate as e:
        raise ConfigError(
            f"{source}: {_line(e.line)}duplicate key {e.key!r} (first on line {e.first}); give each key once"
        ) from None
    except yaml.reader.ReaderError as e:  # a character YAML forbids; it has a position, not a mark
        line = text.count("\n", 0, e.position) + 1
        column = e.position - (text.rfind("\n", 0, e.position) + 1) + 1
        raise YAMLSyntaxError(
            f"{source}: line {line}, column {column}: YAML syntax error: character U+{e.character:04X} is not allowed ({e.reason})"
        ) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or str(e)
        if "nesting depth" in problem:  # libyaml's own flow-nesting limit, reached before ours
            raise ConfigError(_too_deep(source, mark.line + 1 if mark else None)) from None
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise YAMLSyntaxError(f"{source}: {where}YAML syntax error: {problem}") from None
    values = _values(data, {})
    if values == math.inf:
        raise ConfigError(
            f"{source}: an alias (*name) inside what its anchor (&name) holds makes a value that holds itself, "
            "without end; move the alias out of it"
        )
    if values > MAX_VALUES:
        raise ConfigError(
            f"{source}: its aliases (*name) expand to more than {MAX_VALUES:,} values; a config holds a few hundred. "
            "Repeat what an anchor (&name) holds fewer times"
        )
    return data


def _values(data: Any, counted: dict[int, float]) -> float:
    """How many values `data` holds with every alias written out: each list or mapping is counted once
    however often aliases repeat it (`counted`), so a bomb of 10**9 costs a few dozen steps; inf for
    one that holds itself."""
    if not isinstance(data, (list, dict)):
        return 1
    if id(data) not in counted:
        counted[id(data)] = math.inf  # met again before its count is known: it holds itself
        items = data.items() if isinstance(data, dict) else ((item,) for item in data)
        counted[id(data)] = 1 + sum(_values(part, counted) for item in items for part in item)
    return counted[id(data)]


def _check_depth(text: str, source: str) -> None:
    """Walk the parser's events (no tree is built, nothing recurses) and stop past MAX_DEPTH."""
    depth = 0
    for event in yaml.parse(text, Loader=StrictLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise ConfigError(_too_deep(source, event.start_mark.line + 1))
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _too_deep(source: str, line: int | None) -> str:
    return f"{source}: {_line(line)}nested more than {MAX_DEPTH} levels deep; a config needs a handful of levels"


def _line(line: int | None) -> str:
    return f"line {line}: " if line else ""
