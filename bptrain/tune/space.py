"""The search space: the config's `tune:` section (or a --space file holding the same keys), checked
once, and a trial's parameters turned into config overrides.

Each key of `space` is a dotted config key (`optimizer.lr`), plus two for the hidden layers:
`model.layers.count` (how many: copies of the config's first hidden layer) and `model.layers.<option>`
(the option, e.g. units or dropout, of every hidden layer that has it). A value is a list of choices,
or a mapping: `{choices: [...]}`, or `{low, high}` with `log: true` and/or `step` (whole numbers at
both ends make an int range; `type: float` or `type: int` says so explicitly).
"""

from __future__ import annotations

import copy
import difflib
import sys
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bptrain.config.choices import INT_MAX
from bptrain.errors import ConfigError
from bptrain.nn.options import did_you_mean, shown

SETTINGS = ("space", "metric", "direction", "sampler", "pruner", "seed")
SAMPLERS = ("tpe", "random", "grid", "qmc")
PRUNERS = ("median", "hyperband", "none")
DIRECTIONS = ("minimize", "maximize")
RANGE_KEYS = ("low", "high", "log", "step", "type")
LAYERS, COUNT = "model.layers", "model.layers.count"


@dataclass(frozen=True)
class Param:
    """One searched config key: a float or int range, or a list of choices."""

    key: str
    kind: str  # float | int | choice
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple = ()

    def distribution(self):
        import optuna

        if self.kind == "choice":
            return optuna.distributions.CategoricalDistribution(self.choices)
        if self.kind == "int":
            return optuna.distributions.IntDistribution(int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return optuna.distributions.FloatDistribution(float(self.low), float(self.high), log=self.log, step=self.step)

    def ends(self) -> list[tuple[str, Any]]:
        """The values that stand for the whole range when checking it against the config."""
        if self.kind == "choice":
            return [(f"choice {c!r}", c) for c in self.choices]
        return [(f"low {self.low!r}", self.low), (f"high {self.high!r}", self.high)]

    def grid(self) -> list | None:
        """Every value the grid sampler tries, or None for a float range without a step."""
        if self.kind == "choice":
            return list(self.choices)
        if self.kind == "int":
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if self.step is None:
            return None
        count = int(round((self.high - self.low) / self.step)) + 1
        return [round(self.low + i * self.step, 12) for i in range(count)]


@dataclass(frozen=True)
class Search:
    """The whole `tune:` section: what to search, what to optimize, how to sample and prune."""

    params: tuple[Param, ...]
    metric: str | None = None  # None: the early-stopping monitor, else val_loss
    direction: str | None = None  # None: from the metric
    sampler: str = "tpe"
    pruner: str = "median"
    seed: int | None = None  # None: the config's seed

    def as_dict(self) -> dict[str, Any]:
        space = {}
        for p in self.params:
            if p.kind == "choice":
                space[p.key] = {"choices": list(p.choices)}
            else:
                space[p.key] = {"type": p.kind, "low": p.low, "high": p.high, "log": p.log, "step": p.step}
        return {"space": space, "metric": self.metric, "direction": self.direction, "sampler": self.sampler, "pruner": self.pruner, "seed": self.seed}


def split(raw: dict) -> tuple[dict, Any]:
    """(the config without its `tune:` section, the section or None)."""
    raw = dict(raw)
    return raw, raw.pop("tune", None)


def parse(section: Any, source: str, prefix: str = "tune.") -> Search:
    """The Search a `tune:` section (or a --space file's mapping) declares; ConfigError lists every problem.

    `source` names the file in the message; `prefix` is how the section's keys are shown (`tune.space.x`).
    """
    problems: list[str] = []
    if not isinstance(section, dict):
        raise ConfigError(f"{source}: {prefix.rstrip('.') or 'the space file'} must be a mapping with keys among {', '.join(SETTINGS)}")
    if not prefix and list(section) == ["tune"]:  # a config's tune: section copied whole into a --space file
        raise ConfigError(
            f"{source}: a --space file holds the keys of a tune: section ({', '.join(SETTINGS)}) without the tune: "
            "key itself; remove that line and unindent what it holds"
        )
    for key in section:
        if key not in SETTINGS:
            problems.append(f"{prefix}{key}: unknown key.{did_you_mean(str(key), SETTINGS) or ' Allowed: ' + ', '.join(SETTINGS)}")
    space = section.get("space")
    params: list[Param] = []
    if not isinstance(space, dict) or not space:
        problems.append(f"{prefix}space: needs at least one config key to search, e.g. optimizer.lr: {{low: 0.0001, high: 0.1, log: true}}")
    else:
        for key, spec in space.items():
            where = f"{prefix}space.{key}"
            unknown = config_key_problem(str(key))
            if unknown:
                problems.append(f"{where}: {unknown}")
                continue
            param = _param(str(key), spec, where, problems)
            wrong = _count_problem(param) if param is not None and param.key == COUNT else None
            if wrong:
                problems.append(f"{where}: {wrong}")
            elif param is not None:
                params.append(param)
    metric = section.get("metric")
    if metric is not None and (not isinstance(metric, str) or not metric.startswith("val_")):
        problems.append(f"{prefix}metric: must be a validation metric such as val_loss or val_accuracy (got {shown(metric)})")
    direction = section.get("direction")
    if direction is not None and direction not in DIRECTIONS:
        problems.append(f"{prefix}direction: must be one of {', '.join(DIRECTIONS)} (got {shown(direction)})")
    sampler = section.get("sampler", "tpe")
    if sampler not in SAMPLERS:
        problems.append(f"{prefix}sampler: unknown sampler {shown(sampler)}; choose from {', '.join(SAMPLERS)}.{did_you_mean(sampler, SAMPLERS)}")
    pruner = section.get("pruner", "median")
    pruner = "none" if pruner is None or pruner is False else pruner
    if pruner not in PRUNERS:
        problems.append(f"{prefix}pruner: unknown pruner {shown(pruner)}; choose from {', '.join(PRUNERS)}.{did_you_mean(pruner, PRUNERS)}")
    seed = section.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= INT_MAX):
        problems.append(f"{prefix}seed: must be a whole number from 0 (got {shown(seed)})")
    if sampler == "grid" and not problems:
        for p in params:
            if p.grid() is None:
                problems.append(f"{prefix}space.{p.key}: the grid sampler needs choices, an int range or a step (got a float range without a step)")
    _raise(source, problems)
    return Search(tuple(params), metric, direction, sampler, pruner, seed)


def _count_problem(param: Param) -> str | None:
    """Why `param` cannot be a number of hidden layers (model.layers.count), or None."""
    if param.kind == "choice":
        wrong = [c for c in param.choices if not isinstance(c, int) or isinstance(c, bool) or c < 0]
        if not wrong:
            return None
        return f"each choice must be a whole number of hidden layers, 0 or more (got {shown(wrong[0])})"
    if param.kind != "int":
        return f"a number of hidden layers is a whole number: give an int range, e.g. {{low: 1, high: 3}} (got low {param.low!r}, high {param.high!r})"
    if param.low < 0:
        return f"a number of hidden layers is 0 or more (got low {param.low!r})"
    return None


def _raise(source: str, problems: list[str]) -> None:
    if problems:
        count = "1 problem" if len(problems) == 1 else f"{len(problems)} problems"
        raise ConfigError(f"{source}: {count}\n" + "\n".join(f"  {p}" for p in problems))


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _finite(value: Any) -> bool:
    """A number that is neither infinite nor NaN, and that a float can hold (YAML reads any whole number)."""
    return _number(value) and abs(value) <= sys.float_info.max  # NaN fails the comparison


def _read_number(value: Any) -> Any:
    """YAML 1.1 reads `1e-4` (no dot) as text: such text is the number it spells."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _param(key: str, spec: Any, where: str, problems: list[str]) -> Param | None:
    if isinstance(spec, list):
        spec = {"choices": spec}
    if not isinstance(spec, dict):
        problems.append(f"{where}: must be a list of choices or a mapping with low and high, or choices (got {shown(spec)})")
        return None
    return _choices(key, spec, where, problems) if "choices" in spec else _range(key, spec, where, problems)


def _choices(key: str, spec: dict, where: str, problems: list[str]) -> Param | None:
    extra = [k for k in spec if k != "choices"]
    choices = spec["choices"]
    if extra:
        problems.append(f"{where}: choices take no {extra[0]}; give either choices or low and high")
    elif not isinstance(choices, list) or not choices:
        problems.append(f"{where}: choices must be a list of at least one value (got {shown(choices)})")
    elif not all(c is None or isinstance(c, (bool, int, float, str)) for c in choices):
        problems.append(f"{where}: each choice must be a number, text, true/false or null (got {shown(choices)})")
    elif len(set(map(repr, choices))) < len(choices):
        problems.append(f"{where}: choices repeat a value (got {shown(choices)})")
    else:
        return Param(key, "choice", choices=tuple(choices))
    return None


def _range(key: str, spec: dict, where: str, problems: list[str]) -> Param | None:
    extra = [k for k in spec if k not in RANGE_KEYS]
    if extra:
        problems.append(f"{where}: unknown key {shown(extra[0])}.{did_you_mean(str(extra[0]), RANGE_KEYS + ('choices',)) or ' Allowed: choices, or ' + ', '.join(RANGE_KEYS)}")
        return None
    low, high, log, step, kind = (_read_number(spec.get(k)) for k in RANGE_KEYS)
    if not (_number(low) and _number(high)):
        problems.append(f"{where}: needs low and high numbers, or choices (got low {shown(low)}, high {shown(high)})")
        return None
    if not (_finite(low) and _finite(high)):
        problems.append(f"{where}: low and high must be finite numbers (got low {shown(low)}, high {shown(high)})")
        return None
    if kind is None:
        kind = "int" if all(isinstance(v, int) for v in (low, high)) and (step is None or isinstance(step, int)) else "float"
    if kind not in ("int", "float"):
        problems.append(f"{where}: type must be float or int (got {shown(kind)})")
        return None
    if not isinstance(log if log is not None else False, bool):
        problems.append(f"{where}: log must be true or false (got {shown(log)})")
        return None
    log = bool(log)
    if kind == "int" and not all(float(v).is_integer() for v in (low, high)):
        problems.append(f"{where}: an int range needs whole numbers (got low {low!r}, high {high!r})")
        return None
    if low >= high:
        what = "an empty range" if low == high else "an inverted range"
        problems.append(f"{where}: low must be below high; {what} (got low {low!r}, high {high!r})")
        return None
    if log and low <= 0:
        problems.append(f"{where}: a log scale needs low above 0 (got low {low!r})")
        return None
    if step is not None:
        if log:
            problems.append(f"{where}: step and log cannot be combined; drop one")
            return None
        if _number(step) and not _finite(step):
            problems.append(f"{where}: step must be a finite number above 0 (got {shown(step)})")
            return None
        if not _number(step) or step <= 0 or (kind == "int" and not float(step).is_integer()):
            problems.append(f"{where}: step must be a {'whole ' if kind == 'int' else ''}number above 0 (got {shown(step)})")
            return None
    if kind == "int":
        low, high, step = int(low), int(high), None if step is None else int(step)
    else:
        low, high, step = float(low), float(high), None if step is None else float(step)
    return Param(key, kind, low, high, log, step)


# --- config keys ---------------------------------------------------------------------------------


def _container(annotation: Any) -> str | None:
    """'list' or 'dict' when the annotation (through Annotated and Optional) holds one."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _container(typing.get_args(annotation)[0])
    if origin in (list, dict):
        return origin.__name__
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        for arg in typing.get_args(annotation):
            found = _container(arg)
            if found:
                return found
    return None


def layer_options() -> list[str]:
    from bptrain.config.schema import LAYER_MODELS

    return sorted({f for m in LAYER_MODELS for f in m.model_fields if f != "type"})


def config_key_problem(key: str) -> str | None:
    """Why `key` is not a dotted config key (with a did-you-mean), or None when it is one."""
    from bptrain.config.loading import _models_in
    from bptrain.config.schema import Config

    parts = key.split(".")
    if key.startswith(LAYERS + ".") and len(parts) == 3 and not parts[2].isdigit():
        allowed = ["count", *layer_options()]
        if parts[2] in allowed:
            return None
        hint = did_you_mean(key, [f"{LAYERS}.{a}" for a in allowed])
        return f"not a config key.{hint or ' The hidden layers take ' + ', '.join(f'{LAYERS}.{a}' for a in allowed)}"
    models, container, done = [Config], None, []
    for part in parts:
        if container == "list" and part.isdigit():
            container = None
            done.append(part)
            continue
        if container == "dict":  # a column name or a metric: any key
            return None
        fields = {}
        for m in models:
            fields.update(m.model_fields)
        if part not in fields:
            where = ".".join(done)
            if not fields:
                return f"not a config key: {where} takes no keys below it"
            close = difflib.get_close_matches(part.lower(), list(fields), n=1)
            hint = f" Did you mean {'.'.join([*done, close[0], *parts[len(done) + 1:]])!r}?" if close else ""
            return f"not a config key.{hint or ' Allowed here: ' + ', '.join(sorted(fields))}"
        annotation = fields[part].annotation
        models, container = _models_in(annotation), _container(annotation)
        done.append(part)
    return None


# --- a trial's parameters as a config -----------------------------------------------------------


def apply(raw: dict, params: dict[str, Any]) -> dict:
    """A copy of the raw config with the trial's parameters set, the layer keys first."""
    from bptrain.config.loading import set_dotted

    raw = copy.deepcopy(raw)
    layer_keys = {k: v for k, v in params.items() if k.startswith(LAYERS + ".") and len(k.split(".")) == 3 and not k.split(".")[2].isdigit()}
    if layer_keys:
        if not isinstance(raw.get("model"), dict):
            raw["model"] = {}
        model = raw["model"]
        listed = model.get("layers")
        layers = [_layer_dict(item) for item in (listed if isinstance(listed, list) else _default_layers())]
        if COUNT in layer_keys:
            template = layers[0] if layers else {"units": 16}
            layers = [copy.deepcopy(template) for _ in range(int(layer_keys[COUNT]))]
        for key, value in layer_keys.items():
            option = key.split(".")[2]
            if option == "count":
                continue
            for layer in layers:
                if _takes(layer, option):
                    layer[option] = value
        model["layers"] = layers
    for key, value in params.items():
        if key not in layer_keys:
            set_dotted(raw, key, value)
    return raw


def _default_layers() -> list:
    from bptrain.config.schema import ModelConfig

    return ModelConfig().model_dump(mode="json")["layers"]


def _layer_dict(item: Any) -> Any:
    """A layer as a mapping: `64` is a dense layer of 64 units, `batch_norm` a layer of that type."""
    if isinstance(item, int) and not isinstance(item, bool):
        return {"units": item}
    if isinstance(item, str):
        return {"type": item}
    return copy.deepcopy(item)


def _takes(layer: Any, option: str) -> bool:
    from bptrain.config.schema import LAYER_MODELS

    if not isinstance(layer, dict):
        return False
    kind = str(layer.get("type", "dense")).lower()
    model = next((m for m in LAYER_MODELS if m.model_fields["type"].annotation.__args__[0] == kind), None)
    return model is not None and option in model.model_fields


def check_against(raw: dict, path: Path, search: Search, prefix: str = "tune.") -> None:
    """Every choice, and both ends of every range, set alone into the config: the config's own
    validation message for any that makes it invalid."""
    from bptrain.config.loading import validate_config

    problems = []
    for p in search.params:
        for label, value in p.ends():
            try:
                candidate = apply(raw, {p.key: value})
            except ConfigError as e:  # the key leads nowhere (a list item the config lacks): one line, as --set says it
                found = str(e).removeprefix(f"--set {p.key}: ")
                problems.append(f"{prefix}space.{p.key}: {label} makes the config invalid: {found}")
                continue
            try:
                validate_config(candidate, path)
            except ConfigError as e:
                found = "; ".join(line.strip() for line in str(e).splitlines()[1:])
                problems.append(f"{prefix}space.{p.key}: {label} makes the config invalid: {found}")
    _raise(str(path), problems)


def objective(search: Search, config, metrics: list[str], prefix: str = "tune.") -> tuple[str, str]:
    """(the metric, the direction) a study of `config` optimizes; ConfigError when the config's run
    does not log the metric (`metrics`: what it logs)."""
    from bptrain.metrics import higher_is_better

    stopping = config.stopping.early_stopping
    metric = search.metric or (stopping.monitor if stopping else "val_loss")
    if metric not in metrics:
        logged = ", ".join(m for m in metrics if m.startswith("val_"))
        if not logged:
            raise ConfigError(f"{prefix}metric: {metric} is not logged for this config: it holds out no validation rows "
                              "(data.split.val), and a search scores each trial on them")
        raise ConfigError(f"{prefix}metric: {metric} is not logged for this config; choose from {logged}")
    direction = search.direction
    if direction is None:
        mode = stopping.mode if stopping is not None and stopping.monitor == metric and stopping.mode != "auto" else None
        direction = {"min": "minimize", "max": "maximize"}.get(mode) or ("maximize" if higher_is_better(metric) else "minimize")
    return metric, direction


def checked(section: Any, raw: dict, path: Path, config, metrics: list[str]) -> tuple[Search, str, str]:
    """A config's `tune:` section checked as `bptrain tune` checks it before its first trial: (the search,
    its metric, its direction), or ConfigError. `raw` is the config's mapping with any overrides set,
    `config` its validation, `metrics` what its run logs."""
    search = parse(section, str(path))
    check_against(raw, path, search)
    return (search, *objective(search, config, metrics))


def describe(params: dict[str, Any]) -> str:
    """`optimizer.lr=0.0031 training.batch_size=32`: a trial's parameters, numbers in four significant digits."""
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
