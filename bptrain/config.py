"""Config: the YAML file as strict pydantic models, loaded, overridden and validated once.

Unknown keys are errors; every problem is reported at once as `dotted.path[i]: message (got x)`;
data paths are relative to the config file; `--set key=value` overrides are merged into the raw
YAML before validation, so they are checked like everything else.
"""

from __future__ import annotations

import os
import re
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from bptrain.errors import ConfigError
from bptrain.nn import ACTIVATIONS, INITIALIZERS, LOSSES, OPTIMIZERS, SCHEDULES
from bptrain.registry import Registry, did_you_mean

NAME_PATTERN = r"^[A-Za-z0-9._-]+$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _registered(registry: Registry, extra: tuple[str, ...] = ()):
    """A field validator accepting the names in `registry` (and `extra`)."""

    def check(value: str) -> str:
        if value in extra or value in registry:
            return value
        names = sorted([*registry, *extra])
        hint = did_you_mean(value, names)
        raise ValueError(f"unknown {registry.kind} {value!r}; choose from {', '.join(names)}.{hint}")

    return check


# --- data -------------------------------------------------------------------------------------


class SplitConfig(Strict):
    val: float = Field(0.15, ge=0.0, lt=1.0, description="fraction of rows held out for validation")
    test: float = Field(0.15, ge=0.0, lt=1.0, description="fraction of rows held out for testing")
    stratify: bool = True

    @model_validator(mode="after")
    def _leaves_training_rows(self) -> "SplitConfig":
        if self.val + self.test >= 1.0:
            raise ValueError(f"val + test must be below 1 to leave rows for training (got {self.val} + {self.test})")
        return self


class DataConfig(Strict):
    train: Path
    val: Path | None = None
    test: Path | None = None
    target: str
    features: list[str] | None = None
    exclude: list[str] = []
    task: Literal["auto", "classification", "regression"] = "auto"
    split: SplitConfig = SplitConfig()

    @field_validator("train", "val", "test", mode="after")
    @classmethod
    def _relative_to_config(cls, value: Path | None, info) -> Path | None:
        base = (info.context or {}).get("base")
        if value is None or base is None or value.is_absolute():
            return value
        return Path(os.path.normpath(Path(base) / value))


# --- model --------------------------------------------------------------------------------------


class LayerConfig(Strict):
    units: int = Field(gt=0)
    activation: str = "relu"
    init: str = "auto"

    _activation = field_validator("activation")(_registered(ACTIVATIONS))
    _init = field_validator("init")(_registered(INITIALIZERS, ("auto",)))


class ModelConfig(Strict):
    layers: list[LayerConfig] = [LayerConfig(units=16), LayerConfig(units=16)]
    dtype: Literal["float32", "float64"] = "float32"


# --- optimizers and schedules: one model per name, chosen by `name` ---------------------------


class SGDConfig(Strict):
    name: Literal["sgd"]
    lr: float = Field(0.001, gt=0.0)
    momentum: float = Field(0.0, ge=0.0, lt=1.0)
    dampening: float = Field(0.0, ge=0.0, le=1.0)
    nesterov: bool = False
    weight_decay: float = Field(0.0, ge=0.0)

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> "SGDConfig":
        if self.nesterov and (self.momentum <= 0.0 or self.dampening != 0.0):
            raise ValueError("nesterov needs momentum > 0 and dampening 0")
        return self


class AdamConfig(Strict):
    name: Literal["adam"]
    lr: float = Field(0.001, gt=0.0)
    betas: tuple[Annotated[float, Field(ge=0.0, lt=1.0)], Annotated[float, Field(ge=0.0, lt=1.0)]] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    amsgrad: bool = False


class ConstantSchedule(Strict):
    name: Literal["constant"]


def _by_name(kind: str, registry: Registry, default: str):
    """Choose the member of a tagged union by its `name` key (a missing name means `default`)."""

    def tag(value: Any) -> str | None:
        if isinstance(value, BaseModel):
            return value.name  # type: ignore[attr-defined]
        if isinstance(value, Mapping):
            return str(value.get("name", default))
        return None

    return Discriminator(
        tag,
        custom_error_type="unknown_name",
        custom_error_message=f"unknown {kind}",
        custom_error_context={"kind": kind, "choices": ", ".join(sorted(registry))},
    )


def _with_default_name(default: str):
    def fill(value: Any) -> Any:
        if isinstance(value, str):
            return {"name": value}
        if isinstance(value, Mapping) and "name" not in value:
            return {"name": default, **value}
        return value

    return fill


OptimizerConfig = Annotated[
    Union[Annotated[SGDConfig, Tag("sgd")], Annotated[AdamConfig, Tag("adam")]],
    _by_name("optimizer", OPTIMIZERS, "adam"),
]
ScheduleConfig = Annotated[
    Union[Annotated[ConstantSchedule, Tag("constant")]],
    _by_name("schedule", SCHEDULES, "constant"),
]


# --- training and stopping -------------------------------------------------------------------


class TrainingConfig(Strict):
    epochs: int = Field(200, gt=0, description="the most epochs to train (the max_epochs stop)")
    batch_size: int = Field(32, gt=0)
    shuffle: bool = True


class EarlyStoppingConfig(Strict):
    monitor: str = "val_loss"
    mode: Literal["auto", "min", "max"] = "auto"
    patience: int = Field(20, ge=1)
    min_delta: float = Field(0.0, ge=0.0)
    restore_best: bool = True

    @field_validator("monitor")
    @classmethod
    def _metric_name(cls, value: str) -> str:
        if not re.fullmatch(r"(train|val)_[a-z0-9_]+", value):
            raise ValueError("must name a logged metric such as val_loss, val_accuracy or train_loss")
        return value


class StoppingConfig(Strict):
    early_stopping: EarlyStoppingConfig | None = EarlyStoppingConfig()


# --- the whole file -------------------------------------------------------------------------


class Config(Strict):
    name: str = Field("run", pattern=NAME_PATTERN, max_length=100)
    seed: int | None = Field(None, ge=0, lt=2**63)
    data: DataConfig
    model: ModelConfig = ModelConfig()
    loss: str = "auto"
    optimizer: OptimizerConfig = AdamConfig(name="adam")
    schedule: ScheduleConfig = ConstantSchedule(name="constant")
    training: TrainingConfig = TrainingConfig()
    stopping: StoppingConfig = StoppingConfig()

    _loss = field_validator("loss")(_registered(LOSSES, ("auto",)))
    _optimizer_name = field_validator("optimizer", mode="before")(_with_default_name("adam"))
    _schedule_name = field_validator("schedule", mode="before")(_with_default_name("constant"))


# --- loading -------------------------------------------------------------------------------


def read_yaml_mapping(path: Path) -> dict:
    """The YAML file at `path` as a dict (safe_load); ConfigError when missing or malformed."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found. Check the path, or start from one in configs/") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a config file") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config file ({e.strerror})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(f"{path}:{where}: YAML syntax error: {problem}") from None
    if raw is None:
        raise ConfigError(f"{path}: the config file is empty; it needs at least a `data:` section")
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of keys (name, data, model, ...), got {_type_name(raw)}"
        )
    return raw


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`["training.epochs=50"]` -> {"training.epochs": 50}; values are parsed as YAML."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set training.epochs=50")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        out[key.strip()] = value
    return out


def set_dotted(raw: dict, key: str, value: Any) -> None:
    """Set `a.b.0.c` in nested dicts and lists, creating dicts on the way."""
    parts = key.split(".")
    node: Any = raw
    models: list[type[BaseModel]] = [Config]
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
                node = node[index]
            continue
        if not isinstance(node, dict):
            raise ConfigError(f"--set {key}: {'.'.join(parts[:i])} is {_type_name(node)}, not a mapping")
        field = next((m.model_fields[part] for m in models if part in m.model_fields), None)
        models = _models_in(field.annotation) if field is not None else []
        if last:
            node[part] = value
        else:
            if node.get(part) is None:
                node[part] = _default_list(field) if parts[i + 1].isdigit() else {}
            node = node[part]


def _default_list(field) -> list | dict:
    """A list field's default as plain data, so `--set model.layers.0.units=8` can index into it."""
    default = field.get_default(call_default_factory=True) if field is not None else None
    if not isinstance(default, list):
        return {}
    return [item.model_dump(mode="json") if isinstance(item, BaseModel) else item for item in default]


def load_config(path: Path, overrides: Mapping[str, Any] | None = None) -> Config:
    """Read, override and validate the config at `path`; ConfigError lists every problem."""
    path = Path(path)
    raw = read_yaml_mapping(path)
    for key, value in (overrides or {}).items():
        set_dotted(raw, key, value)
    return validate_config(raw, path)


def validate_config(raw: dict, path: Path) -> Config:
    try:
        return Config.model_validate(raw, context={"base": Path(path).parent})
    except ValidationError as e:
        raise ConfigError(format_errors(path, e)) from None


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
        models = _models_in(field.annotation) if field is not None else []
    return path, models[0] if len(models) == 1 else None


def _tag_of(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("name")
    if field is None or typing.get_origin(field.annotation) is not Literal:
        return None
    return typing.get_args(field.annotation)[0]


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
        return f"unknown key.{hint}" + (f" Allowed: {', '.join(allowed)}" if allowed and not hint else "")
    if kind == "missing":
        return "required key is missing"
    if kind == "unknown_name":
        tag = error["input"].get("name") if isinstance(error["input"], Mapping) else error["input"]
        choices = ctx["choices"].split(", ")
        return f"unknown {ctx['kind']} {tag!r}; choose from {ctx['choices']}.{did_you_mean(str(tag), choices)}"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind == "literal_error":
        return f"must be one of {ctx['expected'].replace(' or ', ', ')}"
    if kind == "string_pattern_mismatch":
        return "may hold only letters, digits, '.', '_' and '-'"
    text = error["msg"].replace("Input should be", "must be").replace("Input", "value")
    return text[0].lower() + text[1:]


def format_errors(path: Path, exc: ValidationError) -> str:
    """One line per problem: `dotted.path: message (got value)`, under a count."""
    lines = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
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
        lines.append(f"  {where or '(top level)'}: {message}")
    lines = list(dict.fromkeys(lines))
    count = "1 problem" if len(lines) == 1 else f"{len(lines)} problems"
    return f"{path}: {count}\n" + "\n".join(lines)


# --- writing the resolved config ---------------------------------------------------------------


def resolved_dict(config: Config, folder: Path) -> dict:
    """The config with every default filled in, data paths relative to `folder`."""
    raw = config.model_dump(mode="json")
    for key in ("train", "val", "test"):
        value = getattr(config.data, key)
        if value is not None:
            raw["data"][key] = _relative(Path(value), folder)
    raw["optimizer"] = dict(raw["optimizer"])
    if "betas" in raw["optimizer"]:
        raw["optimizer"]["betas"] = list(raw["optimizer"]["betas"])
    return raw


def _relative(path: Path, folder: Path) -> str:
    try:
        return os.path.relpath(Path(path).resolve(), Path(folder).resolve())
    except ValueError:
        return str(Path(path).resolve())


def dump_yaml(raw: dict) -> str:
    return yaml.safe_dump(raw, sort_keys=False, default_flow_style=False, allow_unicode=True)
