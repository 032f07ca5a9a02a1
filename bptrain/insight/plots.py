"""A run's figures as PNG files: learning curves, gradient diagnostics, and what its predictions on
held-out rows look like (confusion matrix, ROC and precision-recall curves, predicted against actual,
residuals).

matplotlib is imported here only, on first use, and draws on its Agg canvas (no pyplot, no window).
Each figure is a function of plain data, so it can be drawn from a run folder or from arrays.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from bptrain import fileio, metrics
from bptrain.errors import ConfigError, DataError, StorageError
from bptrain.nn.options import did_you_mean

DIAGNOSTICS_FILE = "diagnostics.csv"
DIAGNOSTICS_COLUMNS = ("epoch", "layer", "grad_norm", "weight_norm", "update_ratio", "dead_fraction", "saturated_fraction")
FIGURES = ("curves", "gradients", "confusion", "roc", "pr", "predicted", "residuals")
NEEDS_PREDICTIONS = ("confusion", "roc", "pr", "predicted", "residuals")
TASK_FIGURES = {"classification": ("confusion", "roc", "pr"), "regression": ("predicted", "residuals")}  # by the task they are for
DPI = 100
BEST_COLOR, STOP_COLOR = "#606060", "#d62728"


# --- which figures -----------------------------------------------------------------------------


def chosen(what: str | None) -> list[str] | None:
    """The figure names of `--what` (comma-separated), checked; None when not given (every figure that applies)."""
    if what is None:
        return None
    names = [n.strip() for n in what.split(",") if n.strip()]
    if not names:
        raise ConfigError(f"--what {what!r}: name at least one figure: {', '.join(FIGURES)}")
    for name in names:
        if name not in FIGURES:
            raise ConfigError(f"--what {name}: unknown figure; choose from {', '.join(FIGURES)}.{did_you_mean(name, FIGURES)}")
    return list(dict.fromkeys(names))


def not_applicable(name: str, task: str, classes: list[str], has_rows: bool, has_diagnostics: bool | None, epochs: int = 1) -> str | None:
    """Why figure `name` cannot be drawn for this run, or None when it can. `has_diagnostics`:
    whether diagnostics.csv holds a row (None: there is no such file)."""
    if name == "curves" and epochs == 0:
        return "the run logged no epoch (metrics.jsonl is empty)"
    if name == "gradients" and has_diagnostics is None:
        return f"the run has no {DIAGNOSTICS_FILE} (fit writes it unless report.diagnostics is false)"
    if name == "gradients" and not has_diagnostics:
        return f"the run logged no epoch of diagnostics ({DIAGNOSTICS_FILE} holds no row)"
    if name in NEEDS_PREDICTIONS and not has_rows:
        return "the run has no test or validation rows to predict"
    if name == "confusion" and task != "classification":
        return f"a confusion matrix is for classification; this run's task is {task}"
    if name in ("roc", "pr") and (task != "classification" or len(classes) != 2):
        found = f"{len(classes)} classes" if task == "classification" else f"task {task}"
        return f"ROC and precision-recall curves are for binary classification; this run has {found}"
    if name in ("predicted", "residuals") and task != "regression":
        return f"predicted-against-actual and residual plots are for regression; this run's task is {task}"
    return None


# --- reading a run's logs ----------------------------------------------------------------------


def epoch_rows(run_dir: Path) -> list[dict[str, Any]]:
    """metrics.jsonl's rows (one per epoch)."""
    path = Path(run_dir) / "metrics.jsonl"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]
    except OSError as e:
        raise DataError(f"{path}: cannot read the run's metrics log ({e.strerror})") from None
    except ValueError as e:
        raise DataError(f"{path}: not JSON lines ({e}); the run's metrics log is damaged") from None


def diagnostics_state(run_dir: Path) -> bool | None:
    """Whether the run's diagnostics.csv holds a row after its header; None when it has no such file."""
    try:
        with (Path(run_dir) / DIAGNOSTICS_FILE).open("rb") as f:
            return any(line.strip() for line in f.read(1 << 16).splitlines()[1:])
    except FileNotFoundError:
        return None
    except OSError as e:
        raise DataError(f"{Path(run_dir) / DIAGNOSTICS_FILE}: cannot read the run's diagnostics ({e.strerror})") from None


def diagnostics(run_dir: Path) -> dict[str, dict[str, list[float]]] | None:
    """diagnostics.csv as {layer: {column: values by epoch}} (nan for an empty field), or None when absent."""
    path = Path(run_dir) / DIAGNOSTICS_FILE
    if not path.is_file():
        return None
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in DIAGNOSTICS_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{path}: missing column {missing[0]!r}; its columns should be {','.join(DIAGNOSTICS_COLUMNS)}")
        layers: dict[str, dict[str, list[float]]] = {}
        for line, row in enumerate(reader, start=2):
            series = layers.setdefault(row["layer"], {c: [] for c in DIAGNOSTICS_COLUMNS if c != "layer"})
            for column, values in series.items():
                text = row[column] or ""
                try:
                    values.append(float(text) if text.strip() else math.nan)
                except ValueError:
                    raise DataError(f"{path}, line {line}: column {column!r} holds {text!r}, not a number") from None
    return layers


# --- drawing -----------------------------------------------------------------------------------


def new_figure(panels: int, height: float = 4.2):
    """A matplotlib Figure on the Agg canvas with `panels` axes side by side."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4.8 * panels + 0.4, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, panels, squeeze=False)[0]
    return figure, list(axes)


def not_stdout(out_dir: Path | None) -> None:
    """`-o -` means stdout to predict and export; PNG files need a folder, not one named `-`."""
    if out_dir is not None and str(out_dir) == "-":
        raise ConfigError("-o -: the PNG files are written into a folder, not to stdout; give a folder")


def output_folder(folder: Path) -> Path:
    """`folder` for PNG files, created when missing; ConfigError when it is a file."""
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"-o {folder}: is a file, not a folder; give a folder for the PNG files")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise fileio.storage_error(folder, e, "create the folder") or StorageError(f"{folder}: cannot create the folder ({e.strerror})") from None
    return folder


def save(figure, path: Path) -> Path:
    """Write `figure` as a PNG, atomically."""
    fileio.atomic_write(Path(path), lambda f: figure.savefig(f, format="png", dpi=DPI))
    return Path(path)


def series_of(rows: list[dict], key: str) -> np.ndarray:
    return np.array([math.nan if r.get(key) is None else float(r[key]) for r in rows], dtype=np.float64)


def epoch_axis(ax) -> None:
    """Whole epochs on the x axis, labelled."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")


def log_axis(ax) -> None:
    """A log-scale y axis whose ticks read as plain numbers (0.05, 0.1, 0.2), not powers of ten."""
    from matplotlib.ticker import FuncFormatter

    ax.set_yscale("log")
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    ax.yaxis.set_major_formatter(plain)

    def minor(value: float, _) -> str:  # 2 and 5 times a power of ten, when the axis spans three decades or less
        low, high = ax.get_ylim()
        few = low > 0 and high / low <= 1000
        return f"{value:g}" if few and f"{value:.0e}"[0] in "25" else ""

    ax.yaxis.set_minor_formatter(FuncFormatter(minor))


def _mark_epochs(ax, best_epoch: int | None, stop_epoch: int, stop_reason: str | None) -> None:
    if best_epoch:
        ax.axvline(best_epoch, color=BEST_COLOR, linestyle="--", linewidth=1, label=f"best epoch ({best_epoch})")
    if stop_reason:
        ax.axvline(stop_epoch, color=STOP_COLOR, linestyle=":", linewidth=1.2, label=f"stopped: {stop_reason} ({stop_epoch})")


def curves(rows: list[dict], best_epoch: int | None, stop_reason: str | None, metric: str | None, *, log: bool = False, title: str = ""):
    """Training and validation loss by epoch (log scale with `log`), and the main validation metric;
    the best epoch and the stop marked."""
    epochs = series_of(rows, "epoch")
    has_metric = metric is not None and f"val_{metric}" in rows[0]
    figure, axes = new_figure(2 if has_metric else 1)
    ax = axes[0]
    ax.plot(epochs, series_of(rows, "train_loss"), label="training loss", color="#1f77b4")
    if "val_loss" in rows[0]:
        ax.plot(epochs, series_of(rows, "val_loss"), label="validation loss", color="#ff7f0e")
    if log:
        log_axis(ax)
    ax.set(title="Loss" + (" (log scale)" if log else ""), xlabel="epoch", ylabel="loss (training objective)")
    _mark_epochs(ax, best_epoch, int(epochs[-1]), stop_reason)
    ax.legend(fontsize="small")
    if has_metric:
        ax = axes[1]
        ax.plot(epochs, series_of(rows, f"val_{metric}"), color="#2ca02c", label=f"validation {metric}")
        ax.set(title=f"Validation {metric}", xlabel="epoch", ylabel=metric)
        _mark_epochs(ax, best_epoch, int(epochs[-1]), stop_reason)
        ax.legend(fontsize="small")
    for ax in axes:
        ax.grid(alpha=0.3)
        epoch_axis(ax)
    if title:
        figure.suptitle(title)
    return figure


GRADIENT_PANELS = (
    ("grad_norm", "Gradient norm per layer", "‖∂loss/∂W‖ (L2 norm)", True),
    ("update_ratio", "Update-to-weight ratio", "‖ΔW‖ / ‖W‖ of a step", True),
    ("dead_fraction", "Dead units (ReLU family)", "fraction of the layer's units", False),
    ("saturated_fraction", "Saturated units (sigmoid, tanh)", "fraction of the layer's units", False),
)


def gradients(layers: dict[str, dict[str, list[float]]], title: str = ""):
    """Per layer, by epoch: the gradient norm and the update-to-weight ratio (log scales), and the
    dead or saturated fractions of units when the run recorded any."""
    shown = [p for p in GRADIENT_PANELS if p[3] or any(np.isfinite(v).any() for v in (np.array(s[p[0]]) for s in layers.values()))]
    figure, axes = new_figure(len(shown))
    for ax, (column, panel_title, unit, logarithmic) in zip(axes, shown):
        for layer, series in layers.items():
            values = np.array(series[column], dtype=np.float64)
            if not np.isfinite(values).any():  # not applicable to this layer (its activation)
                continue
            if logarithmic:
                values[values <= 0] = np.nan  # a log axis cannot show zero
            ax.plot(series["epoch"], values, marker="." if len(values) < 30 else None, label=layer)
        if logarithmic:
            log_axis(ax)
        else:
            ax.set_ylim(-0.02, 1.02)
        if column == "update_ratio":
            ax.axhline(1e-3, color=BEST_COLOR, linestyle="--", linewidth=1, label="1e-3 (a healthy size)")
        ax.set(title=panel_title, ylabel=unit)
        epoch_axis(ax)
        ax.grid(alpha=0.3, which="both" if logarithmic else "major")
        ax.legend(fontsize="small", title="layer", title_fontsize="small")
    if title:
        figure.suptitle(title)
    return figure


def confusion(cm: np.ndarray, classes: list[str], split: str):
    """Counts of true class (rows) against predicted class (columns), each cell written in."""
    k = len(classes)
    size = min(3.2 + 0.45 * k, 10.0)
    figure, (ax,) = new_figure(1, height=size)
    figure.set_size_inches(size + 1.2, size)
    image = ax.imshow(cm, cmap="Blues")
    figure.colorbar(image, ax=ax, label="rows", shrink=0.8)
    rotate = k * max(len(str(c)) for c in classes) > 40  # labels that would not fit side by side
    ax.set_xticks(range(k), [str(c) for c in classes], rotation=45 if rotate else 0, ha="right" if rotate else "center")
    ax.set_yticks(range(k), [str(c) for c in classes])
    if k <= 20:
        threshold = cm.max() / 2 if cm.size else 0
        for i in range(k):
            for j in range(k):
                ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize="small" if k > 8 else "medium",
                        color="white" if cm[i, j] > threshold else "black")
    accuracy = np.trace(cm) / cm.sum() if cm.sum() else math.nan
    ax.set(title=f"Confusion matrix ({split} rows: {int(cm.sum())}, accuracy {accuracy:.3f})", xlabel="predicted class", ylabel="true class")
    return figure


def roc(y: np.ndarray, score: np.ndarray, positive: str, split: str):
    """The ROC curve of the positive class, with its area and the chance diagonal."""
    fpr, tpr, auc = metrics.roc_curve(y, score)
    figure, (ax,) = new_figure(1, height=4.6)
    figure.set_size_inches(5.2, 4.8)
    ax.plot(fpr, tpr, color="#1f77b4", label=f"model (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], color=BEST_COLOR, linestyle="--", linewidth=1, label="chance (AUC 0.5)")
    ax.set(title=f"ROC curve, positive class {positive!r}\n({split} rows: {len(y)})", xlabel="false positive rate",
           ylabel="true positive rate (recall)", xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), aspect="equal")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    return figure


def pr(y: np.ndarray, score: np.ndarray, positive: str, split: str):
    """The precision-recall curve of the positive class, with its average precision and the share of positives."""
    recall, precision, ap = metrics.pr_curve(y, score)
    share = float(np.mean(y)) if len(y) else math.nan
    figure, (ax,) = new_figure(1, height=4.6)
    figure.set_size_inches(5.2, 4.8)
    ax.plot(np.r_[0.0, recall], np.r_[precision[:1], precision], color="#1f77b4", drawstyle="steps-post", label=f"model (AP {ap:.3f})")
    ax.axhline(share, color=BEST_COLOR, linestyle="--", linewidth=1, label=f"chance (share of positives {share:.3f})")
    ax.set(title=f"Precision-recall, positive class {positive!r}\n({split} rows: {len(y)})", xlabel="recall",
           ylabel="precision", xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), aspect="equal")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize="small")
    return figure


def predicted(actual: np.ndarray, pred: np.ndarray, targets: list[str], split: str):
    """Predicted against actual values, one panel per target, with the line of perfect predictions."""
    figure, axes = new_figure(len(targets))
    for i, (ax, target) in enumerate(zip(axes, targets)):
        a, p = actual[:, i], pred[:, i]
        r2 = metrics.regression(a, p)["r2"]
        ax.scatter(a, p, s=12, alpha=0.6, color="#1f77b4", label=f"{split} rows ({len(a)})")
        lo, hi = float(min(a.min(), p.min())), float(max(a.max(), p.max()))
        ax.plot([lo, hi], [lo, hi], color=STOP_COLOR, linestyle="--", linewidth=1, label="predicted = actual")
        ax.set(title=f"{target}: predicted against actual (R² {r2:.3f})", xlabel=f"actual {target} (target units)",
               ylabel=f"predicted {target} (target units)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return figure


def residuals(actual: np.ndarray, pred: np.ndarray, targets: list[str], split: str):
    """Residuals (predicted - actual) against the prediction, and their histogram, per target."""
    figure, axes = new_figure(2 * len(targets))
    for i, target in enumerate(targets):
        scatter, histogram = axes[2 * i], axes[2 * i + 1]
        error = pred[:, i] - actual[:, i]
        scatter.scatter(pred[:, i], error, s=12, alpha=0.6, color="#1f77b4")
        scatter.axhline(0.0, color=STOP_COLOR, linestyle="--", linewidth=1)
        scatter.set(title=f"{target}: residuals ({split} rows: {len(error)})", xlabel=f"predicted {target} (target units)",
                    ylabel="residual: predicted - actual")
        histogram.hist(error, bins=min(40, max(10, len(error) // 10)), color="#1f77b4", alpha=0.8)
        histogram.axvline(0.0, color=STOP_COLOR, linestyle="--", linewidth=1)
        mae = float(np.mean(np.abs(error))) if len(error) else math.nan
        histogram.set(title=f"{target}: residual distribution (MAE {mae:.3g})", xlabel="residual: predicted - actual (target units)", ylabel="rows")
        for ax in (scatter, histogram):
            ax.grid(alpha=0.3)
    return figure
