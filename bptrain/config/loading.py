"""Loading a config: YAML read safely, `--set` overrides merged, validated once, errors formatted.

Every problem is reported at once as `dotted.path[i]: message (got x)`; data paths are relative
to the config file; overrides are merged into the raw YAML before validation, so they are
checked like everything else.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import typing
from pathlib import Path
from typing import Annotated, Any, Iterator, Literal, Mapping

import yaml
from pydantic import BaseModel, BeforeValidator, ValidationError

from bptrain.config.components import METRIC_PATTERN
from bptrain.config.schema import Config
from bptrain.config.yamlfile import YAMLSyntaxError, parse_yaml, read_capped
from bptrain.errors import ConfigError
from bptrain.nn.options import did_you_mean


def read_yaml_mapping(path: Path) -> dict:
    """The YAML file at `path` as a dict (see yamlfile); ConfigError when missing, too large or malformed."""
    try:
        text = read_capped(Path(path)).decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found. Check the path, or start from one in configs/") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a config file") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config file ({e.strerror})") from None
    raw = parse_yaml(text, str(path))
    if raw is None:
        raise ConfigError(f"{path}: the config file is empty; it needs at least a `data:` section")
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of keys (name, data, model, ...), got {_type_name(raw)}"
        )
    return raw


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`["stopping.max_epochs=50"]` -> {"stopping.max_epochs": 50}; values are parsed as YAML, as in the file.

    A value that is not valid YAML stays text (`--set name=a: b`), except where the YAML is refused
    for what it holds (a duplicate key, deep nesting): that is an error, as it is in a file.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set stopping.max_epochs=50")
        if key.strip().split(".")[0] == "tune":  # left out of the run's config, it would be reported as an unknown key
            raise ConfigError(f"--set {key.strip()}: the tune: section is not set with --set; edit it in the config file, or give bptrain tune --space FILE")
        try:
            value = parse_yaml(text, f"--set {key.strip()}") if text.strip() else None
        except YAMLSyntaxError:
            value = text
        out[key.strip()] = value
    return out


def set_dotted(raw: dict, key: str, value: Any) -> None:
    """Set `a.b.0.c` in nested dicts and lists, creating dicts on the way. A shorthand on the way
    (a layer given as its units, `optimizer: adam`, `early_stopping: true`) is first written out as
    the mapping it stands for, so that `model.layers.0.units=8` works on `layers: [64, 64]`."""
    parts = key.split(".")
    node: Any = raw
    models: list[type[BaseModel]] = [Config]
    shorthand: Any = None  # what writes out the shorthands of the field being walked into
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        where = ".".join(parts[: i + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"--set {key}: {where}: no list item {part} (the list has {len(node)})")
            index = int(part)
            if last:
                node[index] = value
            else:
                if shorthand is not None and not isinstance(node[index], (dict, list)):
                    node[index] = _written_out(shorthand, node[index])
                node = node[index]
            continue
        if not isinstance(node, dict):
            raise ConfigError(f"--set {key}: {'.'.join(parts[:i])} is {_type_name(node)}, not a mapping")
        owner = next((m for m in models if part in m.model_fields), None)
        field = owner.model_fields[part] if owner is not None else None
        models = _models_in(field.annotation) if field is not None else []
        shorthand = _shorthand(owner, part) if owner is not None else None
        if last:
            node[part] = value
        else:
            if node.get(part) is None:
                node[part] = _default_list(field) if parts[i + 1].isdigit() else {}
            elif shorthand is not None and not isinstance(node[part], (dict, list)):
                node[part] = _written_out(shorthand, node[part])
            node = node[part]


def _shorthand(model: type[BaseModel], name: str) -> Any:
    """The function that writes out the shorthands of `model`'s field `name` (or of its list's
    items): a before-validator of the field's type (tagged components, layers) or of the model for
    that field (`early_stopping: true`); None if it has none."""
    field = model.model_fields[name]
    found = [m.func for m in field.metadata if isinstance(m, BeforeValidator)]
    found += _before_validators(field.annotation)
    found += [
        d.func
        for d in model.__pydantic_decorators__.field_validators.values()
        if d.info.mode == "before" and name in d.info.fields
    ]
    return found[0] if found else None


def _before_validators(annotation: Any) -> list:
    """The BeforeValidator functions in an annotation (through Annotated, Optional, Union, list)."""
    found = [m.func for m in getattr(annotation, "__metadata__", ()) if isinstance(m, BeforeValidator)]
    for arg in typing.get_args(annotation):
        if not isinstance(arg, (BeforeValidator, str)):
            found += _before_validators(arg)
    return found


def _written_out(shorthand: Any, value: Any) -> Any:
    """A shorthand value as its mapping (a switched-off `false` as an empty one, to set keys into)."""
    try:
        written = shorthand(value)
    except Exception:  # noqa: BLE001 (a value the validator refuses is left for validation to report)
        return value
    return {} if written is None else written


def _default_list(field) -> list | dict:
    """A list field's default as plain data, so `--set model.layers.0.units=8` can index into it."""
    default = field.get_default(call_default_factory=True) if field is not None else None
    if not isinstance(default, list):
        return {}
    return [item.model_dump(mode="json") if isinstance(item, BaseModel) else item for item in default]


def load_config(path: Path, overrides: Mapping[str, Any] | None = None) -> Config:
    """Read, override and validate the config at `path`; ConfigError lists every problem.

    A `tune:` section (bptrain tune's search space) is left out: it describes a search, not a run.
    """
    return load_with_search(path, overrides)[0]


def load_with_search(path: Path, overrides: Mapping[str, Any] | None = None) -> tuple[Config, dict, Any]:
    """(the validated config, its mapping with the overrides set, its `tune:` section or None), from one
    read of `path`."""
    path = Path(path)
    raw = read_yaml_mapping(path)
    section = raw.pop("tune", None)
    for key, value in (overrides or {}).items():
        set_dotted(raw, key, value)
    return validate_config(raw, path, list(overrides or {})), raw, section


def validate_config(raw: dict, path: Path, overridden: list[str] = []) -> Config:  # noqa: B006 (read only)
    try:
        return Config.model_validate(raw, context={"base": Path(path).parent})
    except ValidationError as e:
        raise ConfigError(format_errors(path, e, overridden, raw)) from None


# --- error messages --------------------------------------------------------------------------------


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", int: "a number", float: "a number", bool: "true/false"}.get(
        type(value), type(value).__name__
    )


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation may hold (through Annotated, Optional, Union, list)."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found.extend(_models_in(arg))
    return found


def _walk(loc: tuple) -> tuple[str, type[BaseModel] | None]:
    """The user's dotted path for a pydantic `loc` (union tags dropped), and the model it ends in."""
    path = ""
    models: list[type[BaseModel]] = [Config]
    mapping = False
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
            continue
        tagged = [m for m in models if _tag_of(m) == part]
        if len(models) > 1 and tagged:
            models = tagged
            continue
        field = next((m.model_fields[part] for m in models if part in m.model_fields), None)
        path += f".{part}" if path else str(part)
        if field is None and mapping:
            mapping = False  # `part` was a key of a mapping (a column name): its values are `models`
            continue
        models = _models_in(field.annotation) if field is not None else []
        mapping = field is not None and typing.get_origin(_unwrapped(field.annotation)) is dict
    return path, models[0] if len(models) == 1 else None


def _unwrapped(annotation: Any) -> Any:
    return typing.get_args(annotation)[0] if typing.get_origin(annotation) is Annotated else annotation


def _tag_of(model: type[BaseModel]) -> str | None:
    """The Literal value of a union member's `name` or `type` field."""
    for key in ("name", "type"):
        field = model.model_fields.get(key)
        if field is not None and typing.get_origin(field.annotation) is Literal:
            return typing.get_args(field.annotation)[0]
    return None


def _got(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return _type_name(value)
    text = repr(value) if isinstance(value, str) else yaml.safe_dump(value, default_flow_style=True).strip()
    text = text.removesuffix("\n...").strip()
    return text if len(text) <= 60 else text[:57] + "..."


def _message(error: dict, parent: type[BaseModel] | None, key: str) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        allowed = sorted(parent.model_fields) if parent is not None else []
        hint = did_you_mean(key, allowed)
        tag = _tag_of(parent) if parent is not None else None
        if tag is not None and not hint:
            options = [k for k in allowed if k not in ("name", "type")]
            takes = f"{tag} takes {', '.join(options)}" if options else f"{tag} takes no options"
            return f"unknown key; {takes}"
        return f"unknown key.{hint}" + (f" Allowed: {', '.join(allowed)}" if allowed and not hint else "")
    if kind == "missing":
        return "required key is missing"
    if kind == "unknown_name":
        value = error["input"]
        tag = value.get(ctx["key"]) if isinstance(value, Mapping) else value
        if not isinstance(tag, str):
            return _not_a_name(value, ctx)
        choices = ctx["choices"].split(", ")
        return f"unknown {ctx['kind']} {tag!r}; choose from {ctx['choices']}.{did_you_mean(str(tag), choices)}"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind == "model_type" and parent is not None:
        return f"must be a mapping with keys among {', '.join(parent.model_fields)}"
    if kind == "literal_error":
        return f"must be one of {ctx['expected'].replace(' or ', ', ')}"
    if kind == "int_parsing" and (whole := _whole_number_text(error.get("input"))) is not None:
        return f"must be a whole number; YAML reads {error['input']} as text, so write it out: {whole}"
    if kind == "string_pattern_mismatch":
        if ctx.get("pattern") == METRIC_PATTERN:
            return "must be a logged metric such as val_loss, val_accuracy, train_loss or penalty"
        return "may hold only letters, digits, '.', '_' and '-'"
    text = error["msg"].replace("Input should be", "must be").replace("Input", "value")
    return text[0].lower() + text[1:]


def _whole_number_text(value: Any) -> int | None:
    """The whole number a text such as '1e3' means (YAML 1.1 reads a number with an exponent but no
    decimal point as text), or None."""
    try:
        number = float(value) if isinstance(value, str) else math.nan
    except ValueError:
        return None
    return int(number) if math.isfinite(number) and number.is_integer() else None


def _not_a_name(value: Any, ctx: dict) -> str:
    """The message for a value that names no choice at all: a number, a list, a mapping without the name."""
    key, kind, choices = ctx["key"], ctx["kind"], ctx["choices"]
    if isinstance(value, Mapping) and key not in value:
        return f"needs its {key}: one of {choices}"
    units = f"a number of {ctx['number']}, " if ctx.get("number") else ""
    article = "an" if kind[0] in "aeiou" else "a"
    return f"must be {units}{article} {kind} name or a mapping with its {key}; choose from {choices} (got {_got(value)})"


def _display(key: str) -> str:
    """`model.layers.0.units` as the error paths show it: `model.layers[0].units`."""
    return re.sub(r"\.(\d+)(?=\.|$)", r"[\1]", key)


MAX_PROBLEMS = 20  # a list of 100,000 wrong items is one mistake repeated; its first lines say what it is


def format_errors(path: Path, exc: ValidationError, overridden: list[str] = [], raw: Any = None) -> str:  # noqa: B006 (read only)
    """One line per problem: `dotted.path: message (got value)`, under a count; `(from --set)` marks overrides."""
    shown_keys = [_display(k) for k in overridden]
    lines: dict[str, None] = {}
    pairs = _without_union_labels(exc.errors(include_url=False), raw)
    for error, loc in pairs:
        if len(lines) == MAX_PROBLEMS:
            return f"{path}: more than {MAX_PROBLEMS} problems; the first {MAX_PROBLEMS}:\n" + "\n".join(lines)
        lines[f"  {_problem(error, loc, shown_keys)}"] = None
    count = "1 problem" if len(lines) == 1 else f"{len(lines)} problems"
    return f"{path}: {count}\n" + "\n".join(lines)


def _problem(error: dict, loc: tuple, shown_keys: list[str]) -> str:
    """`where: message (got value)` for one pydantic error."""
    if error["type"] == "extra_forbidden":
        where, parent = _walk(loc[:-1])
        where = f"{where}.{loc[-1]}" if where else str(loc[-1])
    else:
        where, parent = _walk(loc)
    key = str(loc[-1]) if loc else ""
    message = _message(error, parent, key)
    shown = error["type"] not in ("missing", "extra_forbidden", "unknown_name")
    named = isinstance(error["input"], (dict, list)) or (isinstance(error["input"], str) and repr(error["input"]) in message)
    if shown and "(got" not in message and not named:
        message += f" (got {_got(error['input'])})"
    if any(where == k or where.startswith((k + ".", k + "[")) for k in shown_keys):
        message += " (from --set)"
    return f"{where or '(top level)'}: {message}"


# A union (`float | str`) reports one error per member, each under a label such as `str` or
# `list[...]`. The user sees one problem: the member's own error when the value got past the type
# check (a bool, an infinite number, a bad list item), else one "must be a number or text".
_LABEL = re.compile(r"str|int|float|bool|none|.*\[.*")
_MISMATCH = {
    "float_type": "a number", "float_parsing": "a number", "int_type": "a whole number", "int_parsing": "a whole number",
    "string_type": "text", "list_type": "a list", "dict_type": "a mapping", "bool_type": "true or false",
    "bool_parsing": "true or false", "literal_error": None, "model_type": "a mapping", "tuple_type": "a list",
}


def _without_union_labels(errors: list[dict], raw: Any) -> Iterator[tuple[dict, tuple]]:
    """(error, loc) pairs with union-member labels dropped and each union's type mismatches merged.

    Lazy, so the first problems of a huge list are shown without labelling all of them; pydantic
    reports a union's members one after another, so consecutive errors of one union are a group.
    """
    located = ((error, *_strip_labels(tuple(error["loc"]), raw)) for error in errors)
    for (union, _), group in itertools.groupby(located, key=lambda item: (item[2], id(item[0]) if item[2] is None else 0)):
        members = [(error, loc) for error, loc, _ in group]
        yield from members if union is None else _merge_union(members, union)


def _strip_labels(loc: tuple, raw: Any) -> tuple[tuple, tuple | None]:
    """`loc` without union labels, and the path of the union (None when there was none)."""
    node, kept, union = raw, [], None
    for part in loc:
        if isinstance(node, dict) and part in node or isinstance(node, list) and isinstance(part, int):
            node = node[part] if isinstance(node, dict) or part < len(node) else None
        elif isinstance(part, str) and _LABEL.fullmatch(part):
            union = tuple(kept) if union is None else union
            continue
        else:
            node = None
        kept.append(part)
    return tuple(kept), union


def _merge_union(members: list[tuple[dict, tuple]], loc: tuple) -> list[tuple[dict, tuple]]:
    real = [(e, l) for e, l in members if len(l) > len(loc) or e["type"] not in _MISMATCH]
    if real:
        return real
    kinds = [_MISMATCH[e["type"]] or e["ctx"]["expected"].replace(" or ", ", ") for e, _ in members]
    kinds = list(dict.fromkeys(kinds))
    text = ", ".join(kinds[:-1]) + f" or {kinds[-1]}" if len(kinds) > 1 else kinds[0]
    error = members[0][0]
    return [({**error, "type": "value_error", "ctx": {"error": f"must be {text}"}}, loc)]


# --- writing the resolved config ---------------------------------------------------------------


def resolved_dict(config: Config, folder: Path) -> dict:
    """The config with every default filled in, data paths relative to `folder`."""
    raw = config.model_dump(mode="json")
    for key in ("train", "val", "test"):
        value = getattr(config.data, key)
        if value is not None:
            raw["data"][key] = _relative(Path(value), folder)
    return raw


def _relative(path: Path, folder: Path) -> str:
    """`path` relative to `folder`, lexically (symlinks kept), as it is read back; absolute across drives."""
    try:
        return os.path.relpath(os.path.abspath(path), os.path.abspath(folder))
    except ValueError:
        return os.path.abspath(path)


def dump_yaml(raw: dict) -> str:
    return yaml.safe_dump(raw, sort_keys=False, default_flow_style=False, allow_unicode=True)
