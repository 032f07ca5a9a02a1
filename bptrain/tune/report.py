"""What a study leaves in its tune folder besides the trials: trials.csv, best.yaml, report.json,
report.md and (under report.figures) history.svg and importances.svg.

The test rows are scored once, after the search, for the best trial only; trials are chosen on
validation rows alone. Written again whenever a study ends, so an interrupted one has them too.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import bptrain
from bptrain import fileio
from bptrain.runs import figures
from bptrain.runs import report as run_report
from bptrain.tune import space

STATES = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running", "WAITING": "waiting"}


def state_of(trial) -> str:
    name = STATES.get(trial.state.name, trial.state.name.lower())
    return "interrupted" if name == "failed" and trial.user_attrs.get("interrupted") else name


def write(tune_dir: Path, study, plan) -> dict[str, Any]:
    """Write the tune folder's reports; return report.json's content."""
    trials = study.get_trials(deepcopy=False)
    keys = [p.key for p in plan.search.params]
    _trials_csv(tune_dir / "trials.csv", trials, keys, plan.metric)
    counts: dict[str, int] = {}
    for t in trials:
        counts[state_of(t)] = counts.get(state_of(t), 0) + 1
    summary: dict[str, Any] = {
        "bptrain_version": bptrain.__version__,
        "tune": tune_dir.name,
        "tune_dir": str(tune_dir),
        "config": plan.to_json()["config"],
        "metric": plan.metric,
        "direction": plan.direction,
        "sampler": plan.search.sampler,
        "pruner": plan.search.pruner,
        "folds": plan.folds,
        "trials_requested": plan.trials,
        "trials": counts,
        "best": None,
        "importances": None,
    }
    try:
        best = study.best_trial
    except ValueError:
        best = None
    if best is not None:
        summary["best"] = {
            "trial": best.number,
            "value": best.value,
            "params": best.params,
            "run": best.user_attrs.get("run"),
            "test": _test_metrics(tune_dir / best.user_attrs["run"], plan.folds),
            "test_note": "the test rows scored once, after the search, for the best trial only",
        }
        _best_yaml(tune_dir, plan, best)
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    if len(complete) >= 2:
        summary["importances"] = _importances(study)
    run_report.write_json(tune_dir / "report.json", summary)
    fileio.atomic_write_text(tune_dir / "report.md", markdown(summary, keys))
    if (plan.raw.get("report") or {}).get("figures", True):
        fileio.atomic_write_text(tune_dir / "history.svg", history_svg(trials, plan.metric, plan.direction))
        if summary["importances"]:
            fileio.atomic_write_text(tune_dir / "importances.svg", figures.bars_svg("Parameter importances", summary["importances"]))
    return summary


def _trials_csv(path: Path, trials, keys: list[str], metric: str) -> None:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["number", "state", metric, *keys, "seconds", "fit_seconds", "run", "message"])
    for t in trials:
        value = t.value if t.state.name == "COMPLETE" else last_reported(t) if t.state.name == "PRUNED" else None
        a = t.user_attrs
        writer.writerow([
            t.number, state_of(t), _cell(value), *(_cell(t.params.get(k)) for k in keys),
            _cell(a.get("seconds")), _cell(a.get("fit_seconds")), a.get("run", ""), a.get("message", ""),
        ])
    fileio.atomic_write_text(path, out.getvalue())


def last_reported(trial) -> float | None:
    """A pruned trial's value: the last one it reported, which the pruner judged."""
    values = trial.intermediate_values
    return values[max(values)] if values else None


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    return "" if value is None else value


def _test_metrics(run: Path, folds: int | None) -> dict[str, float] | None:
    """The best trial's model on the test rows (the mean over its folds' models)."""
    from bptrain import app

    if not folds:
        return app.evaluate(run).get("test")
    per_fold = [app.evaluate(run / f"fold-{i}").get("test") for i in range(1, folds + 1)]
    if any(m is None for m in per_fold):
        return None
    return {k: sum(m[k] for m in per_fold) / len(per_fold) for k in per_fold[0]}


def _best_yaml(tune_dir: Path, plan, best) -> None:
    """The best trial's config, complete and resolved, data paths relative to the tune folder; ready for bptrain fit."""
    from bptrain.config.loading import dump_yaml, load_config, resolved_dict, validate_config

    run = tune_dir / best.user_attrs["run"]
    if plan.folds:  # one ordinary run with the best parameters, on the config's own split
        config = load_config(run / "fold-1" / "config.yaml")
        split = config.data.split.model_copy(update={"fold": None, "folds": None})
        config = config.model_copy(update={"data": config.data.model_copy(update={"split": split})})
        config = validate_config(config.model_dump(mode="json"), tune_dir / "best.yaml")
    else:
        config = load_config(run / "config.yaml")
    header = f"# bptrain tune {tune_dir.name}: trial {best.number}, {plan.metric} {best.value:.6g}; {space.describe(best.params)}\n"
    fileio.atomic_write_text(tune_dir / "best.yaml", header + dump_yaml(resolved_dict(config, tune_dir)))


def _importances(study) -> dict[str, float] | None:
    """Optuna's PED-ANOVA importances, named rather than left to Optuna's default (fANOVA before
    Optuna 5, and fANOVA needs scikit-learn); its warnings (e.g. equal importances from trials that
    differ little) are not the user's to read on stderr."""
    import warnings

    importance = _importance_module()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = importance.get_param_importances(study, evaluator=importance.PedAnovaImportanceEvaluator())
    except (RuntimeError, ValueError, ZeroDivisionError):  # e.g. every trial with the same parameters
        return None
    return {k: float(v) for k, v in found.items()}


def _importance_module():
    """optuna.importance, imported without scikit-learn: its fANOVA and mean-decrease-impurity
    evaluators import scikit-learn as the package loads, where it is installed (2.4-2.8 s on the
    2-core machine of benchmarks/README.md), and PED-ANOVA needs none of it. The command's process
    ends with the study, so those evaluators staying unavailable in it costs nothing."""
    import sys

    if "optuna.importance" not in sys.modules and "sklearn" not in sys.modules:
        sys.modules["sklearn"] = None  # importing it raises ImportError, which optuna's guards take as "not installed"
        try:
            import optuna.importance
        finally:
            del sys.modules["sklearn"]
    import optuna.importance

    return optuna.importance


def markdown(summary: dict[str, Any], keys: list[str]) -> str:
    counts = ", ".join(f"{n} {state}" for state, n in summary["trials"].items())
    lines = [
        f"# Tune {summary['tune']}",
        "",
        f"- config: {summary['config']}",
        f"- {summary['direction']} {summary['metric']}"
        + (f" (mean over {summary['folds']} folds)" if summary["folds"] else "")
        + f"; sampler {summary['sampler']}, pruner {summary['pruner']}",
        f"- trials: {counts or 'none'} (requested {summary['trials_requested']}); every trial in trials.csv, its run in trials/",
        "",
    ]
    best = summary["best"]
    if best is None:
        lines += ["No trial completed.", ""]
        return "\n".join(lines)
    lines += ["## Best trial", "", f"Trial {best['trial']} ({best['run']}): {summary['metric']} {run_report.number(best['value'])}; fit it with `bptrain fit best.yaml`.", ""]
    lines += ["| parameter | value |", "|---|---|"]
    for k, v in best["params"].items():
        lines.append(f"| {k} | {v:.6g} |" if isinstance(v, float) else f"| {k} | {v} |")
    if best["test"]:
        lines += ["", f"Test metrics ({best['test_note']}):", "", "| metric | test |", "|---|---:|"]
        lines += [f"| {k} | {run_report.number(v)} |" if isinstance(v, float) else f"| {k} | – |" for k, v in best["test"].items()]
    if summary["importances"]:
        lines += ["", "## Parameter importances (PED-ANOVA, Optuna)", "", "| parameter | importance |", "|---|---:|"]
        lines += [f"| {k} | {v:.3f} |" for k, v in summary["importances"].items()]
    lines.append("")
    return "\n".join(lines)


# --- figures -----------------------------------------------------------------------------------


def history_svg(trials, metric: str, direction: str) -> str:
    """Each complete trial's value, and the best so far, by trial number."""
    numbers, values, best, so_far = [], [], [], None
    for t in trials:
        if t.state.name != "COMPLETE":
            continue
        numbers.append(t.number)
        values.append(t.value)
        better = so_far is None or (t.value < so_far if direction == "minimize" else t.value > so_far)
        so_far = t.value if better else so_far
        best.append(so_far)
    return figures.history_svg(numbers, values, best, metric)


