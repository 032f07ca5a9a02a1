"""`bptrain compare`: the config keys in which runs differ, their results side by side, and their
learning curves overlaid in one figure."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from bptrain.errors import ConfigError, DataError
from bptrain.insight import plots
from bptrain.insight.runlist import main_metric, require_run
from bptrain.runs.report import read_json
from bptrain.runs.resuming import recorded_config

OUTCOME = ("stop_reason", "epochs_run", "best_epoch", "seconds")
FIGURE_FILE = "compare.png"


def read_config(run_dir: Path) -> dict[str, Any]:
    """The config the run trained with (nested mappings and lists): the one its checkpoint records,
    which an edit to config.yaml afterwards does not change, in config.yaml's order of keys; where
    no checkpoint records one, config.yaml as written."""
    from bptrain.config.loading import read_yaml_mapping

    written = read_yaml_mapping(run_dir / "config.yaml")
    recorded = recorded_config(run_dir)
    return written if recorded is None else ordered_like(recorded, written)


def ordered_like(value: Any, template: Any) -> Any:
    """`value` with the keys of each mapping in the order `template`'s same mapping has them (the
    checkpoint records its config with sorted keys), keys the template lacks last."""
    if isinstance(value, dict):
        shape = template if isinstance(template, dict) else {}
        keys = [k for k in shape if k in value] + [k for k in value if k not in shape]
        return {k: ordered_like(value[k], shape.get(k)) for k in keys}
    if isinstance(value, list):
        shape = template if isinstance(template, list) else []
        return [ordered_like(item, shape[i] if i < len(shape) else None) for i, item in enumerate(value)]
    return value


ABSENT = object()  # a key a run's config does not have (unlike null, a value it has)


def differing(configs: list[Any], prefix: str = "") -> dict[str, list[Any]]:
    """The dotted keys (list items as `[i]`) whose values are not the same in every config, each
    with its value per config, ABSENT where a config lacks the key. Mappings (and lists) are
    compared key by key (item by item) when every config that has the key holds one; a mapping
    against a scalar (early_stopping on in one run, null in another) is one key with both values."""
    present = [v for v in configs if v is not ABSENT]
    out: dict[str, list[Any]] = {}
    if present and all(isinstance(v, dict) for v in present):
        keys = list(dict.fromkeys(k for v in present for k in v))
        for key in keys:
            out.update(differing([v.get(key, ABSENT) if v is not ABSENT else ABSENT for v in configs], f"{prefix}.{key}" if prefix else str(key)))
    elif present and all(isinstance(v, list) for v in present):
        for i in range(max(len(v) for v in present)):
            out.update(differing([v[i] if v is not ABSENT and i < len(v) else ABSENT for v in configs], f"{prefix}[{i}]"))
    else:
        return {prefix: list(configs)} if any(not _same(v, configs[0]) for v in configs[1:]) else {}
    if not out and any(not _same(v, configs[0]) for v in configs[1:]):  # {} or [] against an absent key
        out[prefix] = list(configs)
    return out


def _same(a: Any, b: Any) -> bool:
    return a is b if a is ABSENT or b is ABSENT else a == b


def _json_form(config: dict[str, list[Any]]) -> tuple[dict[str, list[Any]], dict[str, list[bool]]]:
    """`differing`'s keys for JSON: the values with null where a run lacks the key, and for each key
    that some run lacks, whether each run lacks it."""
    values = {k: [None if v is ABSENT else v for v in vs] for k, vs in config.items()}
    absent = {k: [v is ABSENT for v in vs] for k, vs in config.items() if any(v is ABSENT for v in vs)}
    return values, absent


def compare(given: list[Path], out_dir: Path | None = None) -> dict[str, Any]:
    """The differing config keys, the outcomes and metrics of each run, and the overlaid curves
    written to `out_dir`/compare.png (default: the current folder)."""
    if len(given) < 2:
        raise ConfigError(f"compare needs two runs or more; got {len(given)}: e.g. bptrain compare latest runs/iris-20261130-101500")
    plots.not_stdout(out_dir)
    run_dirs = [require_run(run) for run in given]
    reports = [read_json(r / "report.json") or {} for r in run_dirs]
    config, absent = _json_form(differing([read_config(r) for r in run_dirs]))
    result: dict[str, Any] = {
        "runs": [str(r) for r in run_dirs],
        "config": config,
        "absent": absent,
        "outcome": {key: [report.get(key) for report in reports] for key in OUTCOME},
        "metrics": _metrics(reports),
    }
    target = plots.output_folder(Path(out_dir) if out_dir is not None else Path("."))
    rows = [plots.epoch_rows(r) for r in run_dirs]
    metric = main_metric(reports[0].get("task")) if len({r.get("task") for r in reports}) == 1 else None
    names = [f"{letter}  {r.name}" for letter, r in zip(letters(len(run_dirs)), run_dirs)]
    figure = overlaid(names, rows, [r.get("best_epoch") for r in reports], metric)
    result["figure"] = str(plots.save(figure, target / FIGURE_FILE))
    return result


def letters(count: int) -> list[str]:
    """A, B, C ... for the runs compared (numbers after Z), as the text output names them."""
    return [chr(ord("A") + i) if i < 26 else str(i + 1) for i in range(count)]


def _metrics(reports: list[dict]) -> dict[str, dict[str, list[float | None]]]:
    """{split: {metric: value per run}} for the splits and metrics any run has."""
    out: dict[str, dict[str, list[float | None]]] = {}
    for split in ("val", "test"):
        names = list(dict.fromkeys(k for r in reports for k in ((r.get("metrics") or {}).get(split) or {})))
        if names:
            out[split] = {name: [_value(r, split, name) for r in reports] for name in names}
    return out


def _value(report: dict, split: str, name: str) -> float | None:
    value = ((report.get("metrics") or {}).get(split) or {}).get(name)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def overlaid(names: list[str], rows: list[list[dict]], best: list[int | None], metric: str | None):
    """Validation loss (training loss where a run has none) of every run on one log-scale axis, and
    the main validation metric on a second; each run's best epoch marked with a dot."""
    has_metric = metric is not None and any(r and f"val_{metric}" in r[0] for r in rows)
    figure, axes = plots.new_figure(2 if has_metric else 1)
    for name, run_rows, best_epoch in zip(names, rows, best):
        if not run_rows:
            raise DataError(f"{name}: its metrics log holds no epoch; there is no curve to compare")
        key = "val_loss" if "val_loss" in run_rows[0] else "train_loss"
        columns = [(axes[0], key)] + ([(axes[1], f"val_{metric}")] if has_metric and f"val_{metric}" in run_rows[0] else [])
        for ax, column in columns:
            epochs, values = plots.series_of(run_rows, "epoch"), plots.series_of(run_rows, column)
            if ax is axes[0]:
                values[values <= 0] = np.nan  # a log axis cannot show zero
            (line,) = ax.plot(epochs, values, label=name + ("" if column != "train_loss" else " (training loss)"))
            if best_epoch and best_epoch <= len(values):
                ax.plot([best_epoch], [values[best_epoch - 1]], "o", color=line.get_color(), markersize=5)
    plots.log_axis(axes[0])
    axes[0].set(title="Validation loss, log scale (dots: best epochs)", ylabel="loss (training objective)")
    if has_metric:
        axes[1].set(title=f"Validation {metric}", ylabel=metric)
    for ax in axes:
        ax.grid(alpha=0.3)
        plots.epoch_axis(ax)
        ax.legend(fontsize="small", title="run", title_fontsize="small")
    return figure
