"""The config schema: strict pydantic models of every section; unknown keys are errors.

Names that select an implementation (activation, loss, optimizer, schedule, layer type) are the
keys of the registries in bptrain.nn; each named choice has its own model, made from the options
its declaration lists (component_model), so an option of another optimizer or schedule is
reported as an unknown key.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Mapping, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Discriminator,
    Field,
    PlainSerializer,
    StrictBool,
    Tag,
    create_model,
    field_serializer,
    field_validator,
    model_validator,
)

from bptrain.config.data_schema import DataConfig, Strict
from bptrain.config.numbers import Float, Int, NonNegative, Positive
from bptrain.config.rules import Condition, parse_duration
from bptrain.nn.activations import ACTIVATIONS
from bptrain.nn.initializers import INITIALIZERS
from bptrain.nn.layers import LAYERS
from bptrain.nn.losses import LOSSES
from bptrain.nn.names import Registry
from bptrain.nn.optimizers import OPTIMIZERS
from bptrain.nn.options import REQUIRED, SAME, Declaration, Option, Rule, did_you_mean
from bptrain.nn.schedules import SCHEDULES

NAME_PATTERN = r"^[A-Za-z0-9._-]+$"
METRIC_PATTERN = r"^(train|val)_[a-z0-9_]+$"


def tagged(key: str, kind: str, default: str | None, *members: type[BaseModel], number: str | None = None):
    """A union of `members` chosen by the value of `key` (their Literal tag), in any letter case.

    A bare string names a member; with `number`, a bare whole number is that option of the
    `default` member (`layers: [64, 64]`).
    """
    tags = {m.model_fields[key].annotation.__args__[0]: m for m in members}

    def tag(value: Any) -> str | None:
        if isinstance(value, BaseModel):
            return getattr(value, key)
        if isinstance(value, str):
            return value
        if isinstance(value, Mapping):
            return str(value.get(key, default))
        return None

    def canonical(name: Any) -> Any:
        # `Relu`, `ReLU` and `ADAM` are unambiguous: every tag is lowercase
        return name.lower() if isinstance(name, str) and name.lower() in tags else name

    def shorthand(value: Any) -> Any:
        if isinstance(value, str):
            return {key: canonical(value)}
        if number is not None and isinstance(value, int) and not isinstance(value, bool):
            return {key: default, number: value}
        if isinstance(value, Mapping) and key not in value and default is not None:
            return {key: default, **value}
        if isinstance(value, Mapping) and key in value:
            return {**value, key: canonical(value[key])}
        return value

    union = Union[tuple(Annotated[m, Tag(t)] for t, m in tags.items())]  # type: ignore[misc]
    return Annotated[
        union,
        Discriminator(
            tag,
            custom_error_type="unknown_name",
            custom_error_message=f"unknown {kind}",
            custom_error_context={"kind": kind, "choices": ", ".join(sorted(tags)), "key": key, "number": number or ""},
        ),
        BeforeValidator(shorthand),
    ]


# --- data: in data_schema.py ------------------------------------------------------------------


# --- components: one model per registered name, made from its declaration (bptrain.nn.options) ---


def _checked_by(option: Option):
    """An AfterValidator function refusing what the option's own check refuses, as the core would."""

    def check(value: Any) -> Any:
        try:
            option.check(value)  # type: ignore[misc]
        except (ValueError, TypeError):
            raise ValueError(f"must be {option.must} (got {value})") from None
        return value

    return check


def _annotation(option: Option) -> Any:
    """The pydantic type of an option: its `config` type expression, or one made from its kind and range."""
    if option.config is not None:
        annotation = eval(option.config, _NAMESPACE)  # a type expression declared in bptrain.nn, never user input
    elif option.kind == "flag":
        annotation = bool
    elif option.kind == "choice":
        annotation = Literal[option.choices]  # type: ignore[valid-type]
    else:
        number = Annotated[Int if option.kind == "integer" else Float, Field(**option.range.constraints())]
        annotation = tuple[number, number] if option.kind == "pair" else number
    return Annotated[annotation, AfterValidator(_checked_by(option))] if option.config_check else annotation


def _field(option: Option) -> tuple[Any, Any]:
    default = option.default if option.config_default is SAME else option.config_default
    if default is REQUIRED:
        return _annotation(option), Field()
    # a declared default in the core's terms (`relu`) becomes the config's model of it
    return _annotation(option), Field(default, validate_default=option.config is not None and default is not None)


def _rule_validator(rule: Rule):
    def check(self: BaseModel) -> BaseModel:
        if rule.broken(dict(self)):
            raise ValueError(rule.text)
        return self

    return model_validator(mode="after")(check)


def component_model(declaration: Declaration, key: str = "name") -> type[BaseModel]:
    """The strict model of one registered name: its tag (`key`) and its options as the config spells them."""
    fields = {option.key: _field(option) for option in declaration.options if option.in_config}
    rules = {f"rule_{i}": _rule_validator(r) for i, r in enumerate(declaration.rules) if r.in_config}
    class_name = "".join(part.title() for part in declaration.name.split("_")) + declaration.kind.title().replace(" ", "")
    return create_model(  # type: ignore[call-overload]
        class_name, __base__=Strict, __validators__=rules, **{key: (Literal[declaration.name], ...)}, **fields
    )


def component_models(registry: Registry, key: str = "name") -> tuple[type[BaseModel], ...]:
    return tuple(component_model(member.declaration, key) for member in registry.values())


def _initializer(value: str, allow_auto: bool) -> str:
    names = sorted([*INITIALIZERS, *(["auto"] if allow_auto else [])])
    if value.lower() in names:
        return value.lower()
    raise ValueError(f"unknown initializer {value!r}; choose from {', '.join(names)}.{did_you_mean(value, names)}")


def _short_activation(activation: BaseModel) -> Any:
    """An activation without options is written back as its bare name."""
    return activation.name if not activation_options(activation) else activation.model_dump()  # type: ignore[attr-defined]


def activation_options(activation: BaseModel) -> dict[str, Any]:
    return activation.model_dump(exclude={"name"})


# --- activations: a name, or a mapping with the name and its options --------------------------

ACTIVATION_MODELS = component_models(ACTIVATIONS)
ActivationConfig = tagged("name", "activation", None, *ACTIVATION_MODELS)

# the names that the declarations' `config` type expressions may use
_NAMESPACE = {
    "Annotated": Annotated,
    "Literal": Literal,
    "Field": Field,
    "Int": Int,
    "Positive": Positive,
    "Count": Annotated[Int, Field(ge=1)],
    "METRIC_PATTERN": METRIC_PATTERN,
    "Activation": Annotated[ActivationConfig, PlainSerializer(_short_activation)],
    "InitializerOrAuto": Annotated[str, AfterValidator(lambda value: _initializer(value, allow_auto=True))],
}

# --- layers --------------------------------------------------------------------------------

LAYER_MODELS = component_models(LAYERS, key="type")
LayerConfig = tagged("type", "layer type", "dense", *LAYER_MODELS, number="units")
DenseLayer = LAYER_MODELS[list(LAYERS).index("dense")]


class ModelConfig(Strict):
    layers: list[LayerConfig] = [DenseLayer(type="dense", units=16), DenseLayer(type="dense", units=16)]
    output_init: str = "glorot_uniform"
    dtype: Literal["float32", "float64"] = "float32"

    _output_init = field_validator("output_init")(lambda value: _initializer(value, allow_auto=False))


def layer_specs(model: ModelConfig) -> list[dict[str, Any]]:
    """The layer list as plain dicts for bptrain.nn.build_model (activation options spelled out)."""
    specs = []
    for layer in model.layers:
        spec = layer.model_dump(exclude={"activation"})
        if hasattr(layer, "activation"):
            spec["activation"] = layer.activation.name
            spec["activation_options"] = activation_options(layer.activation)
        specs.append(spec)
    return specs


# --- losses: `auto` is the config's own choice, the others are the core's -------------------------


class AutoLoss(Strict):
    name: Literal["auto"]


LOSS_MODELS = (AutoLoss, *component_models(LOSSES))
LossConfig = tagged("name", "loss", None, *LOSS_MODELS)


class RegularizationConfig(Strict):
    l1: NonNegative = 0.0
    l2: NonNegative = 0.0
    include_bias: bool = False


# --- optimizers: PyTorch's options and defaults ----------------------------------------------

OPTIMIZER_MODELS = component_models(OPTIMIZERS)
OptimizerConfig = tagged("name", "optimizer", "adam", *OPTIMIZER_MODELS)
Adam = OPTIMIZER_MODELS[list(OPTIMIZERS).index("adam")]


def optimizer_options(optimizer: BaseModel) -> dict[str, Any]:
    """The optimizer's constructor options (not lr: the schedule passes the rate to each step)."""
    declared = OPTIMIZERS[optimizer.name].declaration  # type: ignore[attr-defined]
    return {o.name: getattr(optimizer, o.key) for o in declared.nn_options}


# --- schedules ------------------------------------------------------------------------------

SCHEDULE_MODELS = component_models(SCHEDULES)
ScheduleConfig = tagged("name", "schedule", "constant", *SCHEDULE_MODELS)
Constant = SCHEDULE_MODELS[list(SCHEDULES).index("constant")]


# --- training and stopping -----------------------------------------------------------------


class ClipConfig(Strict):
    """Gradient clipping: exactly one of global_norm, norm (per parameter) or value."""

    global_norm: Positive | None = None
    norm: Positive | None = None
    value: Positive | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "ClipConfig":
        chosen = [k for k in ("global_norm", "norm", "value") if getattr(self, k) is not None]
        if len(chosen) != 1:
            raise ValueError(f"set exactly one of global_norm, norm, value (got {', '.join(chosen) or 'none'})")
        return self


class CheckpointConfig(Strict):
    """When to save the training state (any that are set); it is always saved at the start and when training stops."""

    # by time by default: a save costs most of a small run's epoch, and a run killed without warning
    # loses at most a minute of work, which --resume redoes exactly
    every_epochs: Annotated[Int, Field(ge=1)] | None = None
    every_steps: Annotated[Int, Field(ge=1)] | None = None
    every_seconds: Positive | None = 60.0


class TrainingConfig(Strict):
    batch_size: Int = Field(32, gt=0)
    shuffle: bool = True
    clip: ClipConfig | None = None
    detect_anomaly: bool = False
    checkpoint: CheckpointConfig = CheckpointConfig()
    threads: Literal["auto"] | Annotated[Int, Field(ge=1)] = "auto"


class EarlyStoppingConfig(Strict):
    monitor: str = Field("val_loss", pattern=METRIC_PATTERN)
    mode: Literal["auto", "min", "max"] = "auto"
    patience: Int = Field(20, ge=1)
    min_delta: NonNegative = 0.0
    start_from_epoch: Annotated[Int, Field(ge=0)] = 0
    restore_best: bool = True


def _conditions(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    for metric, text in value.items():
        if not re.fullmatch(METRIC_PATTERN, metric):
            raise ValueError(f"{metric!r} is not a metric name such as val_accuracy or train_loss")
        try:
            Condition.parse(metric, text)
        except ValueError as e:
            raise ValueError(f"{metric}: {e}") from None
    return value


def _duration(value: float | str | None) -> float | str | None:
    if value is not None:
        parse_duration(value)
    return value


def _early_stopping_shorthand(value: Any) -> Any:
    """`early_stopping: true` means early stopping with its defaults, `false` none."""
    if value is True:
        return {}
    return None if value is False else value


class StoppingConfig(Strict):
    """Any rule that fires ends the run; report.json's stop_reason says which."""

    max_epochs: Int = Field(200, gt=0)
    max_steps: Annotated[Int, Field(ge=1)] | None = None
    max_time: Float | str | None = None
    early_stopping: EarlyStoppingConfig | None = EarlyStoppingConfig()
    target: dict[str, str | Float] | None = None
    divergence: dict[str, str | Float] | None = None

    _max_time = field_validator("max_time")(_duration)
    _on_off = field_validator("early_stopping", mode="before")(lambda value: _early_stopping_shorthand(value))
    _rules = field_validator("target", "divergence")(_conditions)


class ReportConfig(Strict):
    """What a run writes besides its model and metrics."""

    figures: StrictBool = True
    diagnostics: StrictBool = True


class MlflowConfig(Strict):
    """tracking.mlflow: where the run is logged (the `mlflow` extra)."""

    tracking_uri: str | None = Field(None, min_length=1)  # None: MLFLOW_TRACKING_URI, else mlflow's default (./mlruns)
    experiment: str | None = Field(None, min_length=1)  # None: the config's name


class TrackingConfig(Strict):
    """Logging the run to a tracking server besides the run folder."""

    mlflow: MlflowConfig | None = None

    _on_off = field_validator("mlflow", mode="before")(lambda value: {} if value is True else None if value is False else value)


def _not_only_dots(name: str) -> str:
    # `.` and `..` are folders already; the run-folder code refuses them, so check refuses them first
    if set(name) == {"."}:
        raise ValueError(f"must hold a letter or digit, not only dots (got {name!r}); e.g. name: iris")
    return name


class Config(Strict):
    name: Annotated[str, AfterValidator(_not_only_dots)] = Field("run", pattern=NAME_PATTERN, max_length=100)
    seed: Int | None = Field(None, ge=0, le=2**63 - 1)
    data: DataConfig
    model: ModelConfig = ModelConfig()
    loss: LossConfig = AutoLoss(name="auto")
    regularization: RegularizationConfig = RegularizationConfig()
    optimizer: OptimizerConfig = Adam(name="adam")
    schedule: ScheduleConfig = Constant(name="constant")
    training: TrainingConfig = TrainingConfig()
    stopping: StoppingConfig = StoppingConfig()
    report: ReportConfig = ReportConfig()
    tracking: TrackingConfig = TrackingConfig()

    @field_serializer("loss", "schedule")
    def _short_name(self, value: BaseModel) -> Any:
        dumped = value.model_dump()
        return value.name if len(dumped) == 1 else dumped
