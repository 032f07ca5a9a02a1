"""The schema of model and checkpoint files' metadata, in pydantic: what modelfile validates a file
against, and the words of every problem it reports (`validate`).

Imported where a file needs it: a model file that bptrain.runs.meta_fast finds plainly valid is
used without it (pydantic takes a third of predict's start), and every other one is validated
here, so that its message is this schema's.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from bptrain.config.components import LayerConfig
from bptrain.config.read_schema import CategoricalMissing, NumericMissing, ReadConfig, Scale
from bptrain.data.columns import FORMS
from bptrain.nn.initializers import INITIALIZERS
from bptrain.nn.losses import LOSSES
from bptrain.runs.checkpoint import BptrainFile
from bptrain.runs.meta_fast import LABEL_LENGTH, MAX_LAYERS, SHA256
from bptrain.runs.modelfile import shown


class Meta(BaseModel):
    # defer_build: validators made on first use (predict never reads a checkpoint), as config.data_schema's
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True, defer_build=True)


Count = Annotated[int, Field(ge=0)]
Label = Annotated[str, Field(max_length=LABEL_LENGTH)]


class Header(Meta):
    format_version: Literal[1, 2]  # checkpoint.READS
    kind: Literal["model", "checkpoint"]
    sha256: str | None = Field(None, pattern=f"^{SHA256.pattern}$")  # absent from the first files of bptrain 0.1


# --- model files ----------------------------------------------------------------------------------


class ModelSpec(Meta):
    layers: list[dict[str, Any]] = Field(max_length=MAX_LAYERS)
    output_init: Literal[tuple(sorted(INITIALIZERS))]  # type: ignore[valid-type]
    n_in: Annotated[int, Field(ge=1)]
    n_out: Annotated[int, Field(ge=1)]
    dtype: Literal["float32", "float64"]


class LossSpec(Meta):
    name: Literal[tuple(sorted(LOSSES))]  # type: ignore[valid-type]
    options: dict[str, Any]


class ColumnSpec(Meta):
    name: Label
    kind: Literal["numeric", "categorical"]
    dtype: Label
    missing: NumericMissing | CategoricalMissing
    fill_value: float | str
    scale: Scale
    indicator: bool
    max_categories: Count = 0
    fill: float | str | None = None
    categories: list[Label] = []
    other: list[Label] = []
    form: Literal[FORMS] = "text"  # type: ignore[valid-type]  # absent from model files written before it was recorded

    @model_validator(mode="after")
    def _fits_the_kind(self) -> "ColumnSpec":
        number = self.kind == "numeric"
        if not number and self.missing in ("mean", "median"):
            raise ValueError(f"missing: {self.missing} applies to numeric columns, and {self.name!r} is categorical")
        for key in ("fill_value", "fill"):
            value = getattr(self, key)
            if value is not None and isinstance(value, str) == number:
                raise ValueError(f"{key}: a {self.kind} column's {key} must be {'a number' if number else 'text'} (got {value!r})")
        return self


class Preprocessing(Meta):
    version: Literal[2]
    targets: list[Label] = Field(min_length=1)
    task: Literal["classification", "multilabel", "regression"]
    classes: list[Label]
    columns: list[ColumnSpec]
    inputs: list[str]
    read: ReadConfig


class PreprocessingV1(Meta):
    """The preprocessing of bptrain 0.1: numeric, complete, standardized features."""

    target: Label
    task: Literal["classification", "regression"]
    features: list[Label]
    classes: list[Label]
    target_mean: float
    target_scale: float


class ModelMeta(Header):
    kind: Literal["model"] = "model"
    bptrain_version: str
    run: str
    model: ModelSpec
    loss: LossSpec
    preprocessing: dict[str, Any]


# --- checkpoints ------------------------------------------------------------------------------------

Number = Annotated[float, Field(allow_inf_nan=True)]  # a logged metric may be NaN or infinite


class Position(Meta):
    epoch: Annotated[int, Field(ge=1)]
    batch: Count
    step: Count
    total: float
    lr: Annotated[float, Field(ge=0.0)]
    seconds: Annotated[float, Field(ge=0.0)]
    rows: list[dict[str, Number]]


class EarlyStoppingState(Meta):
    best: float | None
    best_epoch: Count
    wait: Count


class PlateauState(Meta):
    lr: Annotated[float, Field(ge=0.0)]
    best: Annotated[float, Field(allow_inf_nan=True)]
    num_bad_epochs: Count
    cooldown_counter: Count
    steps: Count


class NoState(Meta):
    pass


class DiagnosticsEpoch(Meta):
    """The sums of the sampled steps of the epoch in progress (bptrain.training.diagnostics.Epoch)."""

    steps: Count
    rows: Count
    grad: list[Number]
    ratio: list[Number]
    alive: list[list[bool] | None]
    saturated: list[Count | None]


class DiagnosticsWarning(Meta):
    epoch: Annotated[int, Field(ge=1)]
    kind: Literal["vanishing", "exploding", "dead_units", "update_ratio_high", "update_ratio_low"]
    message: str


class DiagnosticsRow(Meta):
    """One dense layer's figures for one epoch (bptrain.training.diagnostics.COLUMNS)."""

    epoch: Annotated[int, Field(ge=1)]
    layer: Label
    grad_norm: Number | None
    weight_norm: Number
    update_ratio: Number | None
    dead_fraction: Number | None
    saturated_fraction: Number | None


class DiagnosticsState(Meta):
    rows: list[DiagnosticsRow]
    warnings: list[DiagnosticsWarning]
    epoch: DiagnosticsEpoch


class PCG64State(Meta):
    state: Annotated[int, Field(ge=0, lt=2**128)]
    inc: Annotated[int, Field(ge=0, lt=2**128)]


class RandomState(Meta):
    """numpy's PCG64 bit generator state, as `Generator.bit_generator.state` gives it."""

    bit_generator: Literal["PCG64"]
    state: PCG64State
    has_uint32: Literal[0, 1]
    uinteger: Annotated[int, Field(ge=0, lt=2**32)]


class DataFile(Meta):
    split: Literal["train", "val", "test"]
    path: str
    rows: Count
    sha256: str = Field(pattern=f"^{SHA256.pattern}$")


class ThreadsSpec(Meta):
    """The BLAS threads the run started with, and how they were chosen (bptrain.threads)."""

    count: Annotated[int, Field(ge=1)]
    chosen: str


class CheckpointMeta(Header):
    kind: Literal["checkpoint"]
    position: Position
    early_stopping: EarlyStoppingState | None
    rate: PlateauState | NoState
    shuffle_rng: RandomState
    noise_rng: RandomState | None
    data: list[DataFile]
    run: Label | None = None  # these two are absent from checkpoints of bptrain 0.1
    config: dict[str, Any] | None = None  # the resolved config; resuming validates it as a config
    threads: ThreadsSpec | None = None  # absent from older checkpoints
    diagnostics: DiagnosticsState | None = None  # absent when report.diagnostics is false, and from older checkpoints



LAYERS = TypeAdapter(list[LayerConfig])


def validate(file: BptrainFile, schema: type[BaseModel] | TypeAdapter, value: Any, where: str = "") -> None:
    validate = schema.validate_python if isinstance(schema, TypeAdapter) else schema.model_validate
    try:
        validate(value, strict=True)
    except ValidationError as e:
        raise file.invalid(_first_error(e, value, where)) from None


def _first_error(exc: ValidationError, value: Any, where: str) -> str:
    """`field.path: message (got value)` for the first problem."""
    error = exc.errors(include_url=False)[0]
    path, last = where, error["loc"][-1] if error["loc"] else None
    for part in error["loc"]:  # follow the input: parts that are not keys or indices name union members
        if isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
            path, value = f"{path}[{part}]", value[part]
        elif isinstance(value, dict) and (part in value or part == last):
            path, value = (f"{path}.{part}" if path else str(part)), value.get(part)
    plain = {"extra_forbidden": "unknown key", "missing": "missing", "finite_number": "must be a finite number"}
    message = plain.get(error["type"], error["msg"])
    message = re.sub(r" or instance of \w+", "", message)  # the schema's class names mean nothing to a user
    got = "" if error["type"] in ("missing", "extra_forbidden") else f" (got {shown(error['input'])})"
    return f"{path or 'metadata'}: {message[:1].lower()}{message[1:]}{got}"
