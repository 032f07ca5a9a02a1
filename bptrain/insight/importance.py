"""`bptrain explain`: permutation feature importance of a trained model, per input column.

A column's importance is how much worse the model does when that column's values are shuffled
among the rows, which breaks its link to the target and keeps everything else (Breiman, "Random
Forests", 2001; scikit-learn's permutation_importance). A categorical column's one-hot inputs are
shuffled together, as one column. Each column is shuffled `repeats` times with a seeded generator;
the mean and the standard deviation over the repeats are reported, for the model's loss (its
increase) and for the main metric (its drop: accuracy, or R² for regression).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bptrain import app
from bptrain import threads as blas
from bptrain.data.splits import Split
from bptrain.data import reading
from bptrain.errors import ConfigError, DataError
from bptrain.events import Events, quiet
from bptrain.inference import score
from bptrain.insight import plots
from bptrain.insight.runlist import RUN, kind_of, main_metric, require_run
from bptrain.metrics import higher_is_better

FIGURE_FILE = "importance.png"


def explain(
    run: Path, data: str | None = None, *, repeats: int = 5, seed: int = 0, strict: bool = False, on_event: Events = quiet
) -> dict[str, Any]:
    """Each feature column's permutation importance on RUN's test rows (its validation rows when it
    has no test split), or on the labelled file `data`; most important first."""
    if repeats < 1:
        raise ConfigError(f"--repeats {repeats}: give 1 or more")
    trained = app.load_trained(run if data is not None else require_run(run))  # a model file alone serves --data
    if data is not None:
        split = app.labelled(trained, data, strict=strict, on_event=on_event, command="explain")
    else:
        dataset = app.held_out(trained, on_event)
        split = dataset.test or dataset.val
        if split is None:
            raise ConfigError(f"{run}: the run has no test or validation rows; give labelled rows with --data FILE")
    if len(split.x) < 2:
        few = f"{len(split.x)} row{'' if len(split.x) == 1 else 's'} to shuffle; permutation importance needs two rows or more"
        if data is not None:  # the file given is too small: a data problem
            raise DataError(f"{reading.source_name(data)}: {few}")
        raise ConfigError(f"{run}: {few}")
    with blas.limited(app.inference_threads(trained).count):
        baseline = score(trained.model, trained.loss, trained.prep, split)
        columns = _importances(trained, split, baseline, repeats, seed)
    metric = main_metric(trained.prep.task)
    in_a_run = data is None or kind_of(trained.run_dir) == RUN
    return {
        "run": str(trained.run_dir if in_a_run else trained.model_path),  # a model file alone: that file
        "rows": split.name,
        "row_count": len(split.x),
        "repeats": repeats,
        "seed": seed,
        "metric": metric,
        "baseline": {"loss": baseline["loss"], metric: baseline[metric]},
        "columns": sorted(columns, key=lambda c: -c["loss_increase"]),
    }


def _importances(trained: app.Trained, split: Split, base: dict[str, Any], repeats: int, seed: int) -> list[dict[str, Any]]:
    """Per column: the mean and standard deviation over `repeats` shuffles of the loss increase and
    the metric drop from `base` (the split's unshuffled scores)."""
    prep, model, loss = trained.prep, trained.model, trained.loss
    metric = main_metric(prep.task)
    sign = 1.0 if higher_is_better(metric) else -1.0
    rng = np.random.default_rng(seed)
    out, at = [], 0
    for column in prep.columns:
        width = len(column.inputs())
        x = split.x.copy()
        increases, drops = [], []
        for _ in range(repeats):
            x[:, at : at + width] = split.x[rng.permutation(len(x)), at : at + width]
            shuffled = score(model, loss, prep, Split(split.name, x, split.y, split.frame, split.labels))
            increases.append(shuffled["loss"] - base["loss"])
            drops.append(sign * (base[metric] - shuffled[metric]))
        out.append(
            {
                "column": column.name,
                "inputs": width,
                "loss_increase": float(np.mean(increases)),
                "loss_increase_std": float(np.std(increases, ddof=1)) if repeats > 1 else 0.0,
                f"{metric}_drop": float(np.mean(drops)),
                f"{metric}_drop_std": float(np.std(drops, ddof=1)) if repeats > 1 else 0.0,
            }
        )
        at += width
    return out


def figure(result: dict[str, Any], out: Path) -> Path:
    """A horizontal bar per column (most important on top): the loss increase, its spread as error bars."""
    columns = result["columns"][:30][::-1]
    figure, (ax,) = plots.new_figure(1, height=max(2.6, 0.9 + 0.28 * len(columns)))
    figure.set_size_inches(7.2, figure.get_size_inches()[1])
    positions = np.arange(len(columns))
    ax.barh(positions, [c["loss_increase"] for c in columns], xerr=[c["loss_increase_std"] for c in columns],
            color="#1f77b4", alpha=0.85, capsize=3)
    ax.set_yticks(positions, [c["column"] for c in columns])
    ax.axvline(0.0, color="black", linewidth=0.8)
    shown = "" if len(result["columns"]) <= 30 else f"\nthe 30 most important of {len(result['columns'])} columns"
    ax.set(title=f"Permutation importance ({result['rows']} rows: {result['row_count']}, {result['repeats']} repeats){shown}",
           xlabel="increase of the loss when the column is shuffled (mean ± std over repeats)", ylabel="input column")
    ax.grid(alpha=0.3, axis="x")
    return plots.save(figure, out)
