"""Building the training pieces from a validated config: loss, model, optimizer, rate, regularizer, clipping.

Everything that depends on both the config and the data (the task, the classes, the training
labels) is decided here, once, with a ConfigError naming the key when the two do not fit.
`assemble` puts the pieces together into one training setup; fit, check, gradcheck and loading a
model file all build through the same functions.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

from bptrain import metrics, seeds
from bptrain.config.rules import Condition, parse_duration
from bptrain.data.columns import label
from bptrain.errors import ConfigError
from bptrain.nn.clipping import clip_global_norm, clip_norm_per_param, clip_value
from bptrain.nn.errors import OptionError
from bptrain.nn.losses import LOSSES, loss_for_task
from bptrain.nn.model import Sequential, build_model, hidden_layers
from bptrain.nn.optimizers import OPTIMIZERS
from bptrain.nn.options import did_you_mean
from bptrain.nn.regularizers import Regularizer
from bptrain.training import engine
from bptrain.training.callbacks import (
    Cadence,
    Callback,
    Divergence,
    ReduceOnPlateau,
    Targets,
)
from bptrain.training.callbacks import (
    EarlyStopping as EarlyStoppingCallback,
)
from bptrain.training.loop import LearningRate, Setup, epoch_steps
from bptrain.training.stopping import Budget, EarlyStopping, resolve_mode

if TYPE_CHECKING:
    from bptrain.config.schema import Config


def _layer_specs(model) -> list[dict[str, Any]]:
    from bptrain.config.schema import layer_specs  # where used: a model file's network is built without the config schema

    return layer_specs(model)


def _optimizer_options(optimizer) -> dict[str, Any]:
    from bptrain.config.schema import optimizer_options

    return optimizer_options(optimizer)


@contextmanager
def config_errors() -> Iterator[None]:
    """The core's option errors, raised as the config errors they are for the user (same text)."""
    try:
        yield
    except OptionError as e:
        raise ConfigError(str(e)) from None


# --- the loss ------------------------------------------------------------------------------


def loss_spec(config: Config, task: str, classes: list[str], labels: np.ndarray | None) -> tuple[str, dict[str, Any]]:
    """(loss name, constructor options) for this task; `balanced` weights come from the training labels
    (class indices, or the 0/1 label matrix for multilabel)."""
    name = config.loss.name
    n_classes = len(classes)
    if task == "multilabel":
        if name not in ("auto", "binary_cross_entropy"):
            raise ConfigError(f"loss: {name} does not fit this multilabel task; use binary_cross_entropy or auto")
        options = config.loss.model_dump(exclude={"name"}) if name != "auto" else {}
        return "binary_cross_entropy", _pos_weight(options, labels, classes)
    if name == "auto":
        return loss_for_task(task, n_classes), {}
    wanted = LOSSES.get(name).task
    if wanted != task or (name == "binary_cross_entropy" and n_classes != 2):
        suggestion = loss_for_task(task, n_classes)
        classes_note = f" with {n_classes} classes" if task == "classification" else ""
        raise ConfigError(f"loss: {name} does not fit this {task} task{classes_note}; use {suggestion} or auto")
    options = config.loss.model_dump(exclude={"name"})
    if name == "cross_entropy":
        options["weight"] = _class_weights(options.pop("class_weights"), labels, classes)
    if name == "binary_cross_entropy":
        options = _pos_weight(options, None if labels is None else labels.reshape(-1, 1), ["positive class"])
    return name, options


def _class_weights(weights: Any, labels: np.ndarray | None, classes: list[str]) -> list[float] | None:
    """One weight per class, in class order, from `balanced`, a list, or a mapping {class: weight}."""
    n_classes = len(classes)
    if weights == "balanced":
        counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
        return (len(labels) / (n_classes * np.maximum(counts, 1.0))).tolist()
    if isinstance(weights, dict):
        named = {label(k): float(v) for k, v in weights.items()}
        unknown = [k for k in named if k not in classes]
        if unknown:
            raise ConfigError(
                f"loss.class_weights: {unknown[0]!r} is not a class; the classes are {', '.join(classes)}.{did_you_mean(unknown[0], classes)}"
            )
        return [named.get(c, 1.0) for c in classes]
    if weights is not None and len(weights) != n_classes:
        raise ConfigError(
            f"loss.class_weights: {len(weights)} weights for {n_classes} classes ({', '.join(classes)}); give one per class, in this order"
        )
    return weights


def _pos_weight(options: dict[str, Any], labels: np.ndarray | None, outputs: list[str]) -> dict[str, Any]:
    """pos_weight as a number or one per output; `balanced`: negatives / positives of each output."""
    weight = options.get("pos_weight")
    if weight == "balanced":
        positives = np.sum(labels == 1, axis=0).astype(np.float64)
        per_output = ((len(labels) - positives) / np.maximum(positives, 1.0)).tolist()
        options["pos_weight"] = per_output[0] if len(per_output) == 1 else per_output
    elif isinstance(weight, list):
        if len(weight) != len(outputs):
            raise ConfigError(
                f"loss.pos_weight: {len(weight)} weights for {len(outputs)} output{'s' if len(outputs) > 1 else ''} "
                f"({', '.join(outputs)}); give one per output, in this order, or a single number"
            )
        options["pos_weight"] = weight[0] if len(weight) == 1 else weight
    return options


def make_loss(name: str, options: dict[str, Any], dtype: str):
    options = dict(options)
    if options.get("weight") is not None:
        options["weight"] = np.asarray(options["weight"], dtype=dtype)
    with config_errors():
        return LOSSES.get(name)(**options)


def output_units(loss: str, task: str, n_classes: int, n_targets: int = 1) -> int:
    """Output units: one per class (softmax), one (binary), one per label (multilabel) or per target."""
    if task == "classification":
        return 1 if loss == "binary_cross_entropy" else n_classes
    return n_classes if task == "multilabel" else n_targets


# --- the model and its optimization -----------------------------------------------------------


def model_spec(config: Config, n_in: int, n_out: int) -> dict[str, Any]:
    """Everything needed to rebuild the network: stored in the model file."""
    return {
        "layers": _layer_specs(config.model),
        "output_init": config.model.output_init,
        "n_in": n_in,
        "n_out": n_out,
        "dtype": config.model.dtype,
    }


def make_model(spec: dict[str, Any], *, rng: np.random.Generator, noise_rng: np.random.Generator | None, batch_size: int):
    with config_errors():
        return build_model(
            spec["layers"],
            int(spec["n_in"]),
            int(spec["n_out"]),
            dtype=spec["dtype"],
            rng=rng,
            noise_rng=noise_rng,
            batch_size=batch_size,
            output_init=spec["output_init"],
        )


def make_optimizer(config: Config, params):
    with config_errors():
        return OPTIMIZERS.get(config.optimizer.name)(params, **_optimizer_options(config.optimizer))


def needs_two_rows(config: Config) -> bool:
    """True when a layer of the network cannot train on a batch of one row (batch norm)."""
    return Sequential(hidden_layers(_layer_specs(config.model))).min_batch_rows > 1


def with_schedule_total(config: Config, rows: int) -> Config:
    """Fix a schedule's `total` (default: the whole run, stopping.max_epochs epochs of `rows` training
    rows) in the config itself, so that a resumed run with a larger budget keeps the schedule it
    started with. Steps per epoch are counted as the training loop takes them."""
    schedule = config.schedule
    if getattr(schedule, "total", 0) is not None:
        return config
    epochs = config.stopping.max_epochs
    steps = epoch_steps(rows, config.training.batch_size, needs_two_rows(config))
    total = epochs if schedule.interval == "epoch" else epochs * steps
    return config.model_copy(update={"schedule": schedule.model_copy(update={"total": total})})


def make_rate(config: Config, logged: list[str]) -> LearningRate:
    options = config.schedule.model_dump(exclude={"name"})
    monitor = options.get("monitor")
    if monitor is not None:
        check_monitor("schedule.monitor", monitor, logged)
    with config_errors():
        return LearningRate(config.schedule.name, config.optimizer.lr, options)


def make_regularizer(config: Config, params) -> Regularizer | None:
    reg = config.regularization
    if reg.l1 == 0.0 and reg.l2 == 0.0:
        return None
    return Regularizer(params, l1=reg.l1, l2=reg.l2, include_bias=reg.include_bias)


def make_clip(config: Config) -> Callable[[list], object] | None:
    clip = config.training.clip
    if clip is None:
        return None
    if clip.global_norm is not None:
        return lambda params: clip_global_norm(params, clip.global_norm)
    if clip.norm is not None:
        return lambda params: clip_norm_per_param(params, clip.norm)
    return lambda params: clip_value(params, clip.value)


# --- what is logged and watched ----------------------------------------------------------------


def metric_columns(config: Config, task: str, has_val: bool) -> list[str]:
    """The metrics.csv header: epoch, step, lr, train_loss, [penalty], val_loss, val_<metric>..., seconds."""
    columns = ["epoch", "step", "lr", "train_loss"]
    if config.regularization.l1 or config.regularization.l2:
        columns.append("penalty")
    if has_val:
        columns += ["val_loss"] + [f"val_{m}" for m in metrics.names(task)]
    return columns + ["seconds"]


def logged_metrics(columns: list[str]) -> list[str]:
    return [c for c in columns if c not in ("epoch", "step", "lr", "seconds")]


def check_monitor(key: str, monitor: str, logged: list[str]) -> None:
    if monitor in logged:
        return
    why = ""
    if monitor.startswith("val_") and "val_loss" not in logged:
        why = " (there is no validation split: set data.split.val or data.val)"
    raise ConfigError(
        f"{key}: {monitor!r} is not a logged metric{why}; choose from {', '.join(logged)}.{did_you_mean(monitor, logged)}"
    )


def make_early_stopping(config: Config, logged: list[str]) -> tuple[EarlyStopping | None, bool]:
    spec = config.stopping.early_stopping
    if spec is None:
        return None, False
    check_monitor("stopping.early_stopping.monitor", spec.monitor, logged)
    mode = resolve_mode(spec.monitor, spec.mode)
    return EarlyStopping(spec.monitor, mode, spec.patience, spec.min_delta, spec.start_from_epoch), spec.restore_best


def make_conditions(config: Config, logged: list[str]) -> tuple[tuple[Condition, ...], tuple[Condition, ...]]:
    """The stopping.target and stopping.divergence rules, their metrics checked against the log."""
    rules = []
    for key in ("target", "divergence"):
        spec = getattr(config.stopping, key) or {}
        for metric in spec:
            check_monitor(f"stopping.{key}", metric, logged)
        rules.append(tuple(Condition.parse(metric, text) for metric, text in spec.items()))
    return rules[0], rules[1]


def make_budget(config: Config) -> Budget:
    stopping = config.stopping
    max_time = parse_duration(stopping.max_time) if stopping.max_time is not None else None
    return Budget(stopping.max_epochs, stopping.max_steps, max_time)


def make_cadence(config: Config) -> Cadence:
    spec = config.training.checkpoint
    return Cadence(spec.every_epochs, spec.every_steps, spec.every_seconds)


# --- the assembly ---------------------------------------------------------------------------------


@dataclass
class Rules:
    """What a run logs and watches, each metric checked against the log: fit trains with these, check stops here."""

    config: Config  # with the schedule's total fixed (with_schedule_total)
    columns: list[str]  # of metrics.csv
    rate: LearningRate
    early_stopping: EarlyStopping | None
    restore_best: bool
    targets: tuple[Condition, ...]
    divergence: tuple[Condition, ...]

    def callbacks(self) -> list[Callback]:
        """The stopping rules and the plateau schedule as callbacks, in the order the loop asks them."""
        out: list[Callback] = [ReduceOnPlateau()] if self.rate.plateau is not None else []
        if self.early_stopping is not None:
            out.append(EarlyStoppingCallback(self.early_stopping, self.restore_best))
        return out + [Targets(self.targets), Divergence(self.divergence)]


def rules(config: Config, task: str, has_val: bool, train_rows: int) -> Rules:
    """The metrics logged, and the schedule and stopping rules that watch them; ConfigError naming the key."""
    columns = metric_columns(config, task, has_val)
    logged = logged_metrics(columns)
    stopper, restore_best = make_early_stopping(config, logged)
    config = with_schedule_total(config, train_rows)
    rate = make_rate(config, logged)
    targets, divergence = make_conditions(config, logged)
    return Rules(config, columns, rate, stopper, restore_best, targets, divergence)


def model_for(spec: dict[str, Any], seed: int | None, batch_size: int):
    """The network of a model spec, initialized from `seed`'s streams, or, with seed None, with
    placeholder weights (a model file's replace them) and no dropout noise."""
    if seed is None:
        init_rng, noise_rng = np.random.default_rng(0), None
    else:
        _, init_rng, _, noise_rng = seeds.streams(seed)
    return make_model(spec, rng=init_rng, noise_rng=noise_rng, batch_size=batch_size)


def engine_for(config: Config, model: Sequential, train_rows: int, batch_size: int) -> engine.Engine:
    """The engine of the update (training.engine) for `model` trained on `train_rows` rows: auto weighs
    the most steps and time the run may take (stopping.max_epochs, max_steps, max_time); ConfigError
    as engine.choose."""
    budget = make_budget(config)
    steps = epoch_steps(train_rows, batch_size, model.min_batch_rows > 1) * budget.max_epochs
    steps = min(steps, budget.max_steps or steps)
    return engine.choose(config.training.engine, sum(p.value.size for p in model.params), steps, budget.max_time)


@dataclass
class Assembly:
    """A training run put together: the setup the loop runs, the rules that watch it, and what the model file stores."""

    setup: Setup
    rules: Rules
    spec: dict[str, Any]  # model_spec
    loss: tuple[str, dict[str, Any]]  # (name, options)


def assemble(config: Config, prep, n_in: int, loss: tuple[str, dict[str, Any]], train_rows: int, has_val: bool, dtype: str | None = None) -> Assembly:
    """The training setup for `config` (its seed set) on data of `n_in` inputs and `train_rows` training
    rows, preprocessed by `prep`, with the loss `loss`; `dtype` overrides the model's (gradcheck: float64)."""
    watched = rules(config, prep.task, has_val, train_rows)
    config = watched.config
    n_out = output_units(loss[0], prep.task, len(prep.classes), len(prep.targets))
    spec = {**model_spec(config, n_in, n_out), **({"dtype": dtype} if dtype else {})}
    batch_size = min(config.training.batch_size, train_rows)
    model = model_for(spec, config.seed, batch_size)
    optimizer = make_optimizer(config, model.params)
    used = engine_for(config, model, train_rows, batch_size)
    if used.name == "numba":
        optimizer.use_fused()
    setup = Setup(
        model=model,
        loss=make_loss(*loss, spec["dtype"]),
        optimizer=optimizer,
        rate=watched.rate,
        prep=prep,
        batch_size=batch_size,
        shuffle=config.training.shuffle,
        rng=seeds.stream(config.seed, seeds.SHUFFLE),
        budget=make_budget(config),
        regularizer=make_regularizer(config, model.params),
        clip=make_clip(config),
        detect_anomaly=config.training.detect_anomaly,
        engine=used,
    )
    return Assembly(setup, watched, spec, loss)
