"""The config schema: strict pydantic models of every section; unknown keys are errors.

Names that select an implementation (activation, loss, optimizer, schedule, layer type) are the
keys of the registries in bptrain.nn; each named choice has its own model, made from the options
its declaration lists (component_model), so an option of another optimizer or schedule is
reported as an unknown key.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    StrictBool,
    field_serializer,
    field_validator,
    model_validator,
)

from bptrain.config.components import (  # noqa: F401  (ACTIVATION_MODELS, ActivationConfig, LAYER_MODELS, component_model: the schema's names too)
    ACTIVATION_MODELS,
    LAYER_MODELS,
    METRIC_PATTERN,
    ActivationConfig,
    DenseLayer,
    LayerConfig,
    _initializer,
    activation_options,
    component_model,
    component_models,
    tagged,
)
from bptrain.config.data_schema import DataConfig, Strict
from bptrain.config.numbers import Float, Int, NonNegative, Positive
from bptrain.config.rules import Condition, parse_duration
from bptrain.nn.losses import LOSSES
from bptrain.nn.optimizers import OPTIMIZERS
from bptrain.nn.schedules import SCHEDULES

NAME_PATTERN = r"^[A-Za-z0-9._-]+$"


FLOAT32_MAX = 3.4028234663852886e38  # numpy.finfo(numpy.float32).max: a larger bias becomes inf


class ModelConfig(Strict):
    layers: list[LayerConfig] = [DenseLayer(type="dense", units=16), DenseLayer(type="dense", units=16)]
    output_init: str = "glorot_uniform"
    dtype: Literal["float32", "float64"] = "float32"

    _output_init = field_validator("output_init")(lambda value: _initializer(value, allow_auto=False))

    @model_validator(mode="after")
    def _biases_fit_the_dtype(self) -> "ModelConfig":
        if self.dtype == "float32":
            for i, layer in enumerate(self.layers):
                bias = getattr(layer, "bias_init", 0.0)
                if abs(bias) > FLOAT32_MAX:
                    raise ValueError(
                        f"layers[{i}].bias_init: {bias:g} is beyond the float32 range (±{FLOAT32_MAX:.4g}); "
                        "use a smaller bias_init, or dtype: float64"
                    )
        return self


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
    engine: Literal["auto", "numpy", "numba"] = "auto"


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
    seed: Int | None = Field(None, ge=0)  # Int stops at INT_MAX
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
