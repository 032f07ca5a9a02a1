"""Learning curves as an SVG file written directly: a figure in a millisecond, no plotting library loaded.

`fit` draws curves.svg at the end of every run, so the figure must cost next to nothing beside a
small run (loading and drawing with matplotlib took about a second, more than training iris). The
drawing is plain SVG text (lines, polylines, text), which every browser and editor shows at any size.
One panel per chart, side by side: the losses, and the main validation metric when there is one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape  # quotes too: titles and labels also go into attribute values

WIDTH, HEIGHT = 550, 400  # one panel, in pixels
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 36, 48  # the margins around a panel's plot area
COLORS = {"train loss": "#1f77b4", "validation loss": "#ff7f0e"}
METRIC_COLOR = "#2ca02c"
BEST_COLOR = "#808080"


@dataclass(frozen=True)
class Series:
    label: str
    values: list[float | None]  # one per epoch; None or non-finite values leave a gap
    color: str


@dataclass(frozen=True)
class Panel:
    title: str
    y_label: str
    series: list[Series]
    x_label: str = "epoch"


def curves_svg(rows: list[dict], best_epoch: int, task_metric: str | None) -> str:
    """The SVG text of the learning curves of `rows` (metrics.csv's rows), the best epoch marked."""
    epochs = [int(r["epoch"]) for r in rows]
    losses = [Series("train loss", [r["train_loss"] for r in rows], COLORS["train loss"])]
    if "val_loss" in rows[0]:
        losses.append(Series("validation loss", [r["val_loss"] for r in rows], COLORS["validation loss"]))
    panels = [Panel("Loss", "loss", losses)]
    if task_metric and f"val_{task_metric}" in rows[0]:
        metric = Series(f"validation {task_metric}", [r[f"val_{task_metric}"] for r in rows], METRIC_COLOR)
        panels.append(Panel(f"Validation {task_metric}", task_metric, [metric]))
    return _svg(panels, epochs, best_epoch)


def history_svg(trials: list[int], values: list[float], best: list[float], metric: str) -> str:
    """A tuning study's history: each complete trial's metric, and the best so far, by trial number."""
    series = [Series(f"trial {metric}", values, COLORS["train loss"]), Series("best so far", best, METRIC_COLOR)]
    return _svg([Panel("Optimization history", metric, series, x_label="trial")] if trials else [], trials, 0)


def bars_svg(title: str, values: dict[str, float]) -> str:
    """One horizontal bar per name, in the order given, for values from 0 to 1 (e.g. a tuning study's
    parameter importances)."""
    row, left, bars = 24, 220, 300
    width, height = left + bars + 60, 50 + row * len(values)
    parts = [f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14">{escape(title)}</text>']
    for i, (name, value) in enumerate(values.items()):
        y = 36 + row * i
        parts.append(f'<text x="{left - 8}" y="{y + 10}" text-anchor="end" dominant-baseline="middle">{escape(name)}</text>')
        parts.append(f'<rect x="{left}" y="{y}" width="{value * bars:.1f}" height="{row - 6}" fill="{COLORS["train loss"]}"/>')
        parts.append(f'<text x="{left + value * bars + 4:.1f}" y="{y + 10}" dominant-baseline="middle">{value:.3f}</text>')
    return _document(width, height, parts)


def _svg(panels: list[Panel], xs: list[int], best_x: int) -> str:
    parts = []
    for i, panel in enumerate(panels):
        parts += _panel(panel, xs, best_x, WIDTH * i)
    return _document(WIDTH * max(1, len(panels)), HEIGHT, parts)


def _document(width: int, height: int, parts: list[str]) -> str:
    """The SVG file holding `parts` on a white page of `width` x `height` pixels."""
    head = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="DejaVu Sans, Arial, sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
    ]
    return "\n".join(head + parts + ["</svg>"]) + "\n"


# --- one panel ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scale:
    """A linear map from data to pixels, with its ticks."""

    lo: float
    hi: float
    start: float  # pixel of lo
    end: float  # pixel of hi
    ticks: list[float]
    step: float

    def __call__(self, value: float) -> float:
        return self.start + (value - self.lo) / (self.hi - self.lo) * (self.end - self.start)


def _panel(panel: Panel, epochs: list[int], best_epoch: int, left: int) -> list[str]:
    x0, x1, y0, y1 = left + LEFT, left + WIDTH - RIGHT, HEIGHT - BOTTOM, TOP
    x = _scale(min(epochs), max(epochs), x0, x1, integer=True)
    finite = [v for s in panel.series for v in s.values if _finite(v)]
    y = _scale(min(finite, default=0.0), max(finite, default=1.0), y0, y1, integer=False)
    out = [f'<g class="panel" data-title="{escape(panel.title)}">']
    out += _axes(panel, x, y, left)
    for series in panel.series:
        out += _line(series, epochs, x, y)
    labels = [(s.label, s.color, "") for s in panel.series]
    if best_epoch and x.lo <= best_epoch <= x.hi:
        bx = f"{x(best_epoch):.1f}"
        out.append(f'<line class="best" x1="{bx}" y1="{y0}" x2="{bx}" y2="{y1}" stroke="{BEST_COLOR}" stroke-dasharray="5,4"/>')
        labels.append((f"best epoch ({best_epoch})", BEST_COLOR, ' stroke-dasharray="5,4"'))
    out += _legend(labels, _legend_top(panel, epochs, x, y), x1)
    out.append("</g>")
    return out


def _axes(panel: Panel, x: Scale, y: Scale, left: int) -> list[str]:
    """The frame, grid lines, tick labels, title and axis labels."""
    x0, x1, y0, y1 = x.start, x.end, y.start, y.end
    out = [f'<rect x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}" fill="none" stroke="black"/>']
    for t in x.ticks:
        px = f"{x(t):.1f}"
        out.append(f'<line x1="{px}" y1="{y0}" x2="{px}" y2="{y1}" stroke="#e0e0e0"/>')
        out.append(f'<text x="{px}" y="{y0 + 16}" text-anchor="middle">{_label(t, x.step)}</text>')
    for t in y.ticks:
        py = f"{y(t):.1f}"
        out.append(f'<line x1="{x0}" y1="{py}" x2="{x1}" y2="{py}" stroke="#e0e0e0"/>')
        out.append(f'<text x="{x0 - 6}" y="{py}" text-anchor="end" dominant-baseline="middle">{_label(t, y.step)}</text>')
    middle = (x0 + x1) / 2
    out.append(f'<text x="{middle:.1f}" y="{TOP - 14}" text-anchor="middle" font-size="14">{escape(panel.title)}</text>')
    out.append(f'<text x="{middle:.1f}" y="{HEIGHT - 12}" text-anchor="middle">{escape(panel.x_label)}</text>')
    ly, lx = (y0 + y1) / 2, left + 16
    out.append(f'<text x="{lx}" y="{ly:.1f}" text-anchor="middle" transform="rotate(-90 {lx} {ly:.1f})">{escape(panel.y_label)}</text>')
    return out


def _line(series: Series, epochs: list[int], x: Scale, y: Scale) -> list[str]:
    """A polyline per run of finite values (a lone value: a dot), so a NaN leaves a gap."""
    out, run = [], []
    for epoch, value in [*zip(epochs, series.values), (None, None)]:
        if epoch is not None and _finite(value):
            run.append(f"{x(epoch):.1f},{y(value):.1f}")
            continue
        if len(run) == 1:
            cx, cy = run[0].split(",")
            out.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{series.color}"/>')
        elif run:
            out.append(f'<polyline points="{" ".join(run)}" fill="none" stroke="{series.color}" stroke-width="1.5"/>')
        run = []
    return [f'<g class="series" data-label="{escape(series.label)}">', *out, "</g>"]


def _legend_top(panel: Panel, epochs: list[int], x: Scale, y: Scale) -> bool:
    """True to put the legend in the upper right corner, False for the lower right: the emptier one."""
    right = [v for s in panel.series for e, v in zip(epochs, s.values) if _finite(v) and x(e) > (x.start + x.end) / 2]
    middle = (y.lo + y.hi) / 2
    return sum(v > middle for v in right) <= sum(v <= middle for v in right)


def _legend(labels: list[tuple[str, str, str]], top: bool, right: float) -> list[str]:
    height = 8 + 16 * len(labels)
    width = 24 + 7 * max(len(text) for text, _, _ in labels) + 8
    x = right - width - 8
    y = TOP + 8 if top else HEIGHT - BOTTOM - 8 - height
    out = [f'<g class="legend"><rect x="{x}" y="{y}" width="{width}" height="{height}" fill="white" fill-opacity="0.85" stroke="#c0c0c0"/>']
    for i, (text, color, dash) in enumerate(labels):
        row = y + 12 + 16 * i
        out.append(f'<line x1="{x + 6}" y1="{row}" x2="{x + 22}" y2="{row}" stroke="{color}" stroke-width="1.5"{dash}/>')
        out.append(f'<text x="{x + 28}" y="{row}" dominant-baseline="middle">{escape(text)}</text>')
    out.append("</g>")
    return out


# --- numbers ------------------------------------------------------------------------------------


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _scale(lo: float, hi: float, start: float, end: float, *, integer: bool) -> Scale:
    """A scale over [lo, hi] widened to whole ticks: about five of them, at 1, 2, 2.5 or 5 times a power of ten."""
    if hi - lo <= 0:
        pad = 0.5 if integer else max(abs(lo) * 0.1, 0.5)
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / 5
    power = 10.0 ** math.floor(math.log10(raw))
    steps = (1, 2, 5, 10) if integer else (1, 2, 2.5, 5, 10)
    step = next(m * power for m in steps if m * power >= raw)
    if integer:
        step = max(1.0, round(step))
    first, last = math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step
    ticks = [first + i * step for i in range(round((last - first) / step) + 1)]
    return Scale(first, last, start, end, ticks, step)


def _label(value: float, step: float) -> str:
    """A tick label with as many decimals as the step needs."""
    decimals = 0
    while decimals < 12 and abs(step * 10**decimals - round(step * 10**decimals)) > 1e-6:
        decimals += 1
    text = f"{value:.{decimals}f}"
    return "0" if float(text) == 0 else text
