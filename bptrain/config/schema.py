"""The config schema: strict pydantic models of every section; unknown keys are errors.

Names that select an implementation (activation, loss, optimizer, schedule, layer type) are the
keys of the registries in bptrain.nn; each named choice has its own model with its own options,
so an option of another optimizer or schedule is reported as an unknown key.
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
    Tag,
    field_serializer,
    field_validator,
    model_validator,
)

from bptrain.config.data_schema import DataConfig, Strict
from bptrain.config.numbers import Float, Fraction, Int, NonNegative, Positive
from bptrain.nn import INITIALIZERS
from bptrain.registry import did_you_mean
from bptrain.stopping import Condition, parse_duration

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


# --- activations: a name, or a mapping with the name and its options --------------------------


class _Plain(Strict):
    pass


class Identity(_Plain):
    name: Literal["identity"]


class ReLU(_Plain):
    name: Literal["relu"]


class Sigmoid(_Plain):
    name: Literal["sigmoid"]


class Tanh(_Plain):
    name: Literal["tanh"]


class SELU(_Plain):
    name: Literal["selu"]


class SiLU(_Plain):
    name: Literal["silu"]


class LeakyReLU(Strict):
    name: Literal["leaky_relu"]
    negative_slope: NonNegative = 0.01


class ELU(Strict):
    name: Literal["elu"]
    alpha: Positive = 1.0


class GELU(Strict):
    name: Literal["gelu"]
    approximate: Literal["none", "tanh"] = "none"


class Softplus(Strict):
    name: Literal["softplus"]
    beta: Positive = 1.0
    threshold: Positive = 20.0


ACTIVATION_MODELS = (Identity, ReLU, Sigmoid, Tanh, SELU, SiLU, LeakyReLU, ELU, GELU, Softplus)
ActivationConfig = tagged("name", "activation", None, *ACTIVATION_MODELS)


def activation_options(activation: BaseModel) -> dict[str, Any]:
    return activation.model_dump(exclude={"name"})


def _short_activation(activation: BaseModel) -> Any:
    """An activation without options is written back as its bare name."""
    return activation.name if not activation_options(activation) else activation.model_dump()  # type: ignore[attr-defined]


def _initializer(value: str, allow_auto: bool) -> str:
    names = sorted([*INITIALIZERS, *(["auto"] if allow_auto else [])])
    if value.lower() in names:
        return value.lower()
    raise ValueError(f"unknown initializer {value!r}; choose from {', '.join(names)}.{did_you_mean(value, names)}")


# --- layers --------------------------------------------------------------------------------


class DenseLayer(Strict):
    type: Literal["dense"]
    units: Int = Field(gt=0)
    activation: ActivationConfig = ReLU(name="relu")
    init: str = "auto"
    bias_init: Float = 0.0
    dropout: Fraction = 0.0

    _init = field_validator("init")(lambda value: _initializer(value, allow_auto=True))
    _short = field_serializer("activation")(lambda self, value: _short_activation(value))


class ActivationLayer(Strict):
    type: Literal["activation"]
    activation: ActivationConfig

    _short = field_serializer("activation")(lambda self, value: _short_activation(value))


class DropoutLayer(Strict):
    type: Literal["dropout"]
    p: Fraction = 0.5


class BatchNormLayer(Strict):
    type: Literal["batch_norm"]
    momentum: Float = Field(0.1, gt=0.0, le=1.0)
    eps: Positive = 1e-5


class LayerNormLayer(Strict):
    type: Literal["layer_norm"]
    eps: Positive = 1e-5


LAYER_MODELS = (DenseLayer, ActivationLayer, DropoutLayer, BatchNormLayer, LayerNormLayer)
LayerConfig = tagged("type", "layer type", "dense", *LAYER_MODELS, number="units")


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


# --- losses -------------------------------------------------------------------------------


class AutoLoss(Strict):
    name: Literal["auto"]


class CrossEntropyLoss(Strict):
    name: Literal["cross_entropy"]
    label_smoothing: Fraction = 0.0
    class_weights: Literal["balanced"] | list[Positive] | dict[str | Int, Positive] | None = None


class BinaryCrossEntropyLoss(Strict):
    name: Literal["binary_cross_entropy"]
    pos_weight: Positive | Literal["balanced"] | list[Positive] | None = None


class MSELoss(Strict):
    name: Literal["mse"]


class MAELoss(Strict):
    name: Literal["mae"]


class HuberLoss(Strict):
    name: Literal["huber"]
    delta: Positive = 1.0


LOSS_MODELS = (AutoLoss, CrossEntropyLoss, BinaryCrossEntropyLoss, MSELoss, MAELoss, HuberLoss)
LossConfig = tagged("name", "loss", None, *LOSS_MODELS)


class RegularizationConfig(Strict):
    l1: NonNegative = 0.0
    l2: NonNegative = 0.0
    include_bias: bool = False


# --- optimizers: PyTorch's options and defaults ----------------------------------------------

Beta = Annotated[Float, Field(ge=0.0, lt=1.0)]


class SGD(Strict):
    name: Literal["sgd"]
    lr: Positive = 1e-3
    momentum: Fraction = 0.0
    dampening: Float = Field(0.0, ge=0.0, le=1.0)
    nesterov: bool = False
    weight_decay: NonNegative = 0.0

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> "SGD":
        if self.nesterov and (self.momentum <= 0.0 or self.dampening != 0.0):
            raise ValueError("nesterov needs momentum > 0 and dampening 0")
        return self


class Adam(Strict):
    name: Literal["adam"]
    lr: Positive = 1e-3
    betas: tuple[Beta, Beta] = (0.9, 0.999)
    eps: Positive = 1e-8
    weight_decay: NonNegative = 0.0
    amsgrad: bool = False


class AdamW(Strict):
    name: Literal["adamw"]
    lr: Positive = 1e-3
    betas: tuple[Beta, Beta] = (0.9, 0.999)
    eps: Positive = 1e-8
    weight_decay: NonNegative = 1e-2
    amsgrad: bool = False


class NAdam(Strict):
    name: Literal["nadam"]
    lr: Positive = 2e-3
    betas: tuple[Beta, Beta] = (0.9, 0.999)
    eps: Positive = 1e-8
    weight_decay: NonNegative = 0.0
    momentum_decay: NonNegative = 4e-3
    decoupled_weight_decay: bool = False


class Adamax(Strict):
    name: Literal["adamax"]
    lr: Positive = 2e-3
    betas: tuple[Beta, Beta] = (0.9, 0.999)
    eps: Positive = 1e-8
    weight_decay: NonNegative = 0.0


class RMSprop(Strict):
    name: Literal["rmsprop"]
    lr: Positive = 1e-2
    alpha: Beta = 0.99
    eps: Positive = 1e-8
    weight_decay: NonNegative = 0.0
    momentum: Fraction = 0.0
    centered: bool = False


class Adagrad(Strict):
    name: Literal["adagrad"]
    lr: Positive = 1e-2
    lr_decay: NonNegative = 0.0
    weight_decay: NonNegative = 0.0
    initial_accumulator_value: NonNegative = 0.0
    eps: Positive = 1e-10


class Adadelta(Strict):
    name: Literal["adadelta"]
    lr: Positive = 1.0
    rho: Float = Field(0.9, ge=0.0, le=1.0)
    eps: Positive = 1e-6
    weight_decay: NonNegative = 0.0


OPTIMIZER_MODELS = (SGD, Adam, AdamW, NAdam, Adamax, RMSprop, Adagrad, Adadelta)
OptimizerConfig = tagged("name", "optimizer", "adam", *OPTIMIZER_MODELS)


def optimizer_options(optimizer: BaseModel) -> dict[str, Any]:
    options = optimizer.model_dump(exclude={"name", "lr"})
    if "betas" in options:
        options["betas"] = tuple(options["betas"])
    return options


# --- schedules ------------------------------------------------------------------------------

Interval = Literal["epoch", "step"]
Count = Annotated[Int, Field(ge=1)]


class Constant(Strict):
    name: Literal["constant"]


class StepLR(Strict):
    name: Literal["step"]
    step_size: Count
    gamma: Positive = 0.1
    interval: Interval = "epoch"


class MultiStepLR(Strict):
    name: Literal["multistep"]
    milestones: list[Count]
    gamma: Positive = 0.1
    interval: Interval = "epoch"

    @field_validator("milestones")
    @classmethod
    def _increasing(cls, value: list[int]) -> list[int]:
        if not value or any(b <= a for a, b in zip(value, value[1:])):
            raise ValueError(f"must be a non-empty, strictly increasing list (got {value})")
        return value


class ExponentialLR(Strict):
    name: Literal["exponential"]
    gamma: Positive
    interval: Interval = "epoch"


class Cosine(Strict):
    name: Literal["cosine"]
    total: Count | None = None
    warmup: Annotated[Int, Field(ge=0)] = 0
    min_lr: NonNegative = 0.0
    interval: Interval = "epoch"


class CosineRestarts(Strict):
    name: Literal["cosine_restarts"]
    t_0: Count
    t_mult: Count = 1
    min_lr: NonNegative = 0.0
    interval: Interval = "epoch"


class OneCycle(Strict):
    name: Literal["one_cycle"]
    total: Count | None = None
    pct_start: Float = Field(0.3, gt=0.0, lt=1.0)
    anneal: Literal["cos", "linear"] = "cos"
    div_factor: Positive = 25.0
    final_div_factor: Positive = 1e4
    three_phase: bool = False
    interval: Interval = "step"


class Linear(Strict):
    name: Literal["linear"]
    total: Count | None = None
    warmup: Annotated[Int, Field(ge=0)] = 0
    min_lr: NonNegative = 0.0
    interval: Interval = "step"


class ReduceOnPlateau(Strict):
    name: Literal["reduce_on_plateau"]
    monitor: str = Field("val_loss", pattern=METRIC_PATTERN)
    mode: Literal["auto", "min", "max"] = "auto"
    factor: Float = Field(0.1, gt=0.0, lt=1.0)
    patience: Annotated[Int, Field(ge=0)] = 10
    threshold: NonNegative = 1e-4
    threshold_mode: Literal["rel", "abs"] = "rel"
    cooldown: Annotated[Int, Field(ge=0)] = 0
    min_lr: NonNegative = 0.0
    eps: NonNegative = 1e-8


SCHEDULE_MODELS = (Constant, StepLR, MultiStepLR, ExponentialLR, Cosine, CosineRestarts, OneCycle, Linear, ReduceOnPlateau)
ScheduleConfig = tagged("name", "schedule", "constant", *SCHEDULE_MODELS)


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
    """When to save the training state (any that are set); it is always saved when training stops."""

    every_epochs: Annotated[Int, Field(ge=1)] | None = 1
    every_steps: Annotated[Int, Field(ge=1)] | None = None
    every_seconds: Positive | None = None


class TrainingConfig(Strict):
    batch_size: Int = Field(32, gt=0)
    shuffle: bool = True
    clip: ClipConfig | None = None
    detect_anomaly: bool = False
    checkpoint: CheckpointConfig = CheckpointConfig()


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

    @field_serializer("loss", "schedule")
    def _short_name(self, value: BaseModel) -> Any:
        dumped = value.model_dump()
        return value.name if len(dumped) == 1 else dumped
