"""Whether a model file's metadata plainly passes its schema (bptrain.runs.meta_schema), told without pydantic.

`passes(schema, value)` is True only for what the schema certainly accepts: the JSON types it is
strict about (a str where it wants text, an int and never a bool where it wants a whole number, a
finite float where it wants a number), every required key, no other key, each name among those
registered, each number in its range. Anything else, including what the schema would accept but
these checks cannot be sure of (an int where a number is wanted, a name in capitals, a component
option of a kind without a plain check), is False, and the caller validates with the schema, which
then names the problem in its own words. tests/unit/test_model_meta_fast.py holds the two
together: over about 26,000 altered files, nothing passes here that the schema refuses.

What this saves: importing pydantic and the schema, building its validators and pydantic's search
for plugins took over a third of `predict` on iris, 0.84-0.90 s against 0.52-0.53 s without them
(benchmarks/README.md, "predict without pydantic").
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable

from bptrain.config.choices import CATEGORICAL_MISSING, INT_MAX, NUMERIC_MISSING, NUMERIC_ONLY_MISSING, SCALES, is_codec, is_delimiter
from bptrain.data.columns import FORMS
from bptrain.nn.activations import ACTIVATIONS
from bptrain.nn.initializers import INITIALIZERS
from bptrain.nn.layers import LAYERS
from bptrain.nn.losses import LOSSES
from bptrain.nn.options import REQUIRED, SAME, Declaration, Option

MAX_LAYERS = 1_000
LABEL_LENGTH = 10_000  # characters of a column name, class label or dtype
SHA256 = re.compile(r"[0-9a-f]{64}")  # a file's or a data file's hash, as hex
MISSING = {*NUMERIC_MISSING, *CATEGORICAL_MISSING}


def passes(schema: str, value: Any) -> bool:
    """Whether meta_schema's `schema` (by name) plainly accepts `value`; False when not sure."""
    check = _CHECKS.get(schema)
    return check is not None and check(value)


# --- JSON values -----------------------------------------------------------------------------


def _text(value: Any) -> bool:
    return type(value) is str


def _label(value: Any) -> bool:
    return type(value) is str and len(value) <= LABEL_LENGTH


def _labels(value: Any) -> bool:
    return type(value) is list and all(_label(v) for v in value)


def _whole(value: Any, low: int = 0) -> bool:
    return type(value) is int and value >= low


def _number(value: Any) -> bool:
    return type(value) is float and math.isfinite(value)


def _keys(value: Any, required: set[str], optional: set[str] = frozenset()) -> bool:
    """A dict with every `required` key and no key beyond them and `optional`."""
    return type(value) is dict and required <= value.keys() <= required | optional


def _fields(value: dict, checks: dict[str, Callable[[Any], bool]]) -> bool:
    return all(check(value[key]) for key, check in checks.items() if key in value)


# --- model files -----------------------------------------------------------------------------


def _model_meta(meta: Any) -> bool:
    required = {"format_version", "bptrain_version", "run", "model", "loss", "preprocessing"}
    if not _keys(meta, required, {"kind", "sha256"}):
        return False
    return _fields(meta, {
        "format_version": lambda v: type(v) is int and v in (1, 2),
        "kind": lambda v: v == "model" and _text(v),
        "sha256": lambda v: v is None or (_text(v) and SHA256.fullmatch(v) is not None),
        "bptrain_version": _text,
        "run": _text,
        "model": _model_spec,
        "loss": lambda v: _keys(v, {"name", "options"}) and _text(v["name"]) and v["name"] in LOSSES and _json_object(v["options"]),
        "preprocessing": _json_object,
    })


def _json_object(value: Any) -> bool:
    return type(value) is dict and all(_text(k) for k in value)


def _model_spec(spec: Any) -> bool:
    if not _keys(spec, {"layers", "output_init", "n_in", "n_out", "dtype"}):
        return False
    layers = spec["layers"]
    return (
        type(layers) is list and len(layers) <= MAX_LAYERS and all(_json_object(layer) for layer in layers)
        and _text(spec["output_init"]) and spec["output_init"] in INITIALIZERS
        and _whole(spec["n_in"], 1) and _whole(spec["n_out"], 1)
        and _text(spec["dtype"]) and spec["dtype"] in ("float32", "float64")
    )


def _preprocessing(prep: Any) -> bool:
    if not _keys(prep, {"version", "targets", "task", "classes", "columns", "inputs", "read"}):
        return False
    return (
        type(prep["version"]) is int and prep["version"] == 2
        and _labels(prep["targets"]) and len(prep["targets"]) >= 1
        and _text(prep["task"]) and prep["task"] in ("classification", "multilabel", "regression")
        and _labels(prep["classes"])
        and type(prep["columns"]) is list and all(_column(c) for c in prep["columns"])
        and type(prep["inputs"]) is list and all(_text(name) for name in prep["inputs"])
        and _read(prep["read"])
    )


def _preprocessing_v1(prep: Any) -> bool:
    if not _keys(prep, {"target", "task", "features", "classes", "target_mean", "target_scale"}):
        return False
    return (
        _label(prep["target"]) and _text(prep["task"]) and prep["task"] in ("classification", "regression")
        and _labels(prep["features"]) and _labels(prep["classes"])
        and _number(prep["target_mean"]) and _number(prep["target_scale"])
    )


def _column(column: Any) -> bool:
    required = {"name", "kind", "dtype", "missing", "fill_value", "scale", "indicator"}
    if not _keys(column, required, {"max_categories", "fill", "categories", "other", "form"}):
        return False
    kind = column["kind"]
    if not (_text(kind) and kind in ("numeric", "categorical")):
        return False
    number = kind == "numeric"
    if not number and column["missing"] in NUMERIC_ONLY_MISSING:
        return False
    fill = lambda v: (_number(v) and number) or (_text(v) and not number)  # noqa: E731  (a numeric column's fills are numbers, a categorical one's text)
    return _fields(column, {
        "name": _label,
        "dtype": _label,
        "missing": lambda v: _text(v) and v in MISSING,
        "fill_value": fill,
        "scale": lambda v: _text(v) and v in SCALES,
        "indicator": lambda v: type(v) is bool,
        "max_categories": _whole,
        "fill": lambda v: v is None or fill(v),
        "categories": _labels,
        "other": _labels,
        "form": lambda v: _text(v) and v in FORMS,
    })


def _read(read: Any) -> bool:
    if not _keys(read, set(), {"delimiter", "encoding", "decimal"}):
        return False
    return _fields(read, {
        "delimiter": lambda v: _text(v) and is_delimiter(v),
        "encoding": lambda v: _text(v) and is_codec(v),
        "decimal": lambda v: _text(v) and len(v) == 1,
    })


# --- layers, as the config spells them (bptrain.config.components) ---------------------------


def _layers(layers: Any) -> bool:
    return type(layers) is list and all(_layer(layer) for layer in layers)


def _layer(layer: Any) -> bool:
    kind = layer.get("type") if type(layer) is dict else None
    return _text(kind) and kind in LAYERS and _component(LAYERS[kind].declaration, layer, "type")


def _component(declaration: Declaration, given: dict, tag: str) -> bool:
    """Whether `given` (with its name under `tag`) holds plainly valid options of the component, and all it needs."""
    if any(rule.in_config for rule in declaration.rules):
        return False  # a rule across options: left to the schema
    options = {o.key: o for o in declaration.options if o.in_config}
    if not given.keys() - {tag} <= options.keys():
        return False
    for key, option in options.items():
        if key not in given:
            default = option.default if option.config_default is SAME else option.config_default
            if default is REQUIRED:
                return False
        elif not _option(option, given[key]):
            return False
    return True


def _option(option: Option, value: Any) -> bool:
    if option.config_check or option.kind == "pair":
        return False  # checked by the option's own function, or a list the schema turns to a tuple: left to it
    if option.config == "Activation":
        name = value.get("name") if type(value) is dict else None
        return _text(name) and name in ACTIVATIONS and _component(ACTIVATIONS[name].declaration, value, "name")
    if option.config == "InitializerOrAuto":
        return _text(value) and value.lower() in (*INITIALIZERS, "auto")
    if option.config is not None:
        return False
    if option.kind == "flag":
        return type(value) is bool
    if option.kind == "choice":
        return _text(value) and value in option.choices
    if option.kind == "integer":
        return type(value) is int and value in option.range and value <= INT_MAX
    return option.kind == "number" and _number(value) and value in option.range


_CHECKS: dict[str, Callable[[Any], bool]] = {
    "ModelMeta": _model_meta,
    "Preprocessing": _preprocessing,
    "PreprocessingV1": _preprocessing_v1,
    "LAYERS": _layers,
}
