"""Reports: the metrics log (CSV + JSON lines), report.json, report.md and curves.svg of a run.

JSON is written with allow_nan=False: non-finite numbers become null.
"""

from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path
from typing import Any

from bptrain.fileio import atomic_write_text, writing
from bptrain.training.callbacks import Callback


def finite_or_none(value: Any) -> Any:
    """`value` with every non-finite float replaced by None, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    return value


def to_json(value: Any, indent: int | None = 2) -> str:
    return json.dumps(finite_or_none(value), indent=indent, allow_nan=False)


_LINES = json.JSONEncoder(allow_nan=False)  # one encoder for every line (json.dumps with options builds one per call)


class RowLog:
    """Rows appended to <stem>.csv and <stem>.jsonl (the same rows as JSON lines), written as they
    come, or gathered and written at most every `flush_seconds` (and when closed)."""

    def __init__(self, folder: Path, columns: list[str], stem: str, flush_seconds: float = 0.0):
        self.columns = columns
        self.flush_seconds, self._flushed = flush_seconds, time.monotonic()
        self._pending: list[dict] = []
        self._csv_path, self._jsonl_path = Path(folder) / f"{stem}.csv", Path(folder) / f"{stem}.jsonl"
        with writing(self._csv_path):
            self._csv = open(self._csv_path, "w", newline="", encoding="utf-8")
        with writing(self._jsonl_path):
            self._jsonl = open(self._jsonl_path, "w", encoding="utf-8")
        self._writer = csv.writer(self._csv, lineterminator="\n")
        with writing(self._csv_path):
            self._writer.writerow(columns)
            self._csv.flush()

    def rewrite(self, rows: list[dict]) -> None:
        """Start both logs again with `rows` (the rows a resumed checkpoint holds)."""
        with writing(self._csv_path):
            for stream in (self._csv, self._jsonl):
                stream.seek(0)
                stream.truncate()
            self._writer.writerow(self.columns)
            self._csv.flush()
        self._pending = list(rows)
        self.flush()

    def write(self, *rows: dict) -> None:
        """Append flat rows (each a mapping of column to number, text or None)."""
        self._pending.extend(rows)
        if time.monotonic() - self._flushed >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        clean = [{k: _finite(row.get(k)) for k in self.columns} for row in self._pending]
        self._pending = []
        with writing(self._csv_path):
            self._writer.writerows([["" if v is None else _cell(v) for v in row.values()] for row in clean])
        with writing(self._jsonl_path):
            self._jsonl.write("".join(_LINES.encode(row) + "\n" for row in clean))
        with writing(self._csv_path):
            self._csv.flush()
        with writing(self._jsonl_path):
            self._jsonl.flush()
        self._flushed = time.monotonic()

    def close(self) -> None:
        self.flush()
        self._csv.close()
        self._jsonl.close()


class MetricsLog(RowLog, Callback):
    """metrics.csv and metrics.jsonl: one row per epoch (a training callback)."""

    def __init__(self, folder: Path, columns: list[str]):
        super().__init__(folder, columns, "metrics")

    def on_epoch_end(self, trainer, row: dict) -> None:
        self.write(row)


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _cell(value: Any) -> Any:
    return repr(value) if isinstance(value, float) else value


def write_json(path: Path, value: Any) -> None:
    atomic_write_text(path, to_json(value) + "\n")


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in `path` (report.json, cv.json, ...), or None when it is absent, unreadable or not an object."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def number(value: float) -> str:
    """A metric as shown: four decimals, or four significant digits from 10000 on (at most 11 characters)."""
    return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.4g}"


def cell(value: Any, missing: str = "–") -> str:
    """A table cell: a number as `number` shows it, `missing` for None or a non-finite number (null in
    report.json, e.g. r2 of a constant target), anything else as text."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return missing
    if isinstance(value, float):
        return number(value)
    return str(value)


def markdown(report: dict) -> str:
    """report.json for people."""
    lines = [
        f"# Run {report['run']}",
        "",
        f"- task: {report['task']}" + (f" ({len(report['classes'])} classes)" if report.get("classes") else ""),
        f"- seed: {report['seed']}",
        f"- stopped by: {report['stop_reason']} after {report['epochs_run']} epochs "
        f"({report['seconds']:.1f} s); best epoch {report['best_epoch']}",
        "",
        "## Metrics",
        "",
    ]
    splits = [s for s in ("train", "val", "test") if report["metrics"].get(s)]
    names = list(next(iter(report["metrics"][s] for s in splits)).keys()) if splits else []
    lines.append("| metric | " + " | ".join(splits) + " |")
    lines.append("|---|" + "---:|" * len(splits))
    for name in names:
        lines.append(f"| {name} | " + " | ".join(cell(report["metrics"][s].get(name)) for s in splits) + " |")
    if report.get("per_class"):
        split = report.get("per_class_split", "test")
        lines += ["", f"## Per class ({split})", "", "| class | precision | recall | f1 | support |", "|---|---:|---:|---:|---:|"]
        for name, stats in report["per_class"].items():
            lines.append(
                f"| {_md_cell(name)} | {cell(stats['precision'])} | {cell(stats['recall'])} | {cell(stats['f1'])} | {stats['support']} |"
            )
    if report.get("confusion_matrix"):
        classes = [_md_cell(c) for c in report["classes"]]
        lines += ["", "## Confusion matrix (rows: true class, columns: predicted)", ""]
        lines.append("| | " + " | ".join(classes) + " |")
        lines.append("|---|" + "---:|" * len(classes))
        for name, row in zip(classes, report["confusion_matrix"]):
            lines.append(f"| {name} | " + " | ".join(str(v) for v in row) + " |")
    if report.get("diagnostics") is not None:
        lines += _diagnostics_md(report["diagnostics"])
    lines += ["", "## Data", "", "| split | path | rows | sha256 |", "|---|---|---:|---|"]
    for entry in report["data"]:
        lines.append(f"| {entry['split']} | {_md_cell(entry['path'])} | {entry['rows']} | `{entry['sha256'][:16]}…` |")
    env = report["environment"]
    lines += ["", "## Environment", "", ", ".join(f"{k} {v}" for k, v in env.items()), ""]
    lines += [f"BLAS threads: {report['threads']['count']} ({report['threads']['chosen']})", ""]
    lines += [f"Optimizer engine: {report['engine']['name']} ({report['engine']['chosen']})", ""]
    return "\n".join(lines)


def _diagnostics_md(diagnostics: dict) -> list[str]:
    """The warnings of the diagnostics, each with its epoch, and the last epoch's row of each dense layer."""
    lines = ["", "## Diagnostics", ""]
    lines += [f"- epoch {w['epoch']}: {w['message']}" for w in diagnostics["warnings"]] or ["No warnings."]
    last = diagnostics["last_epoch"]
    if last:
        lines += ["", f"Epoch {last[0]['epoch']} (diagnostics.csv has every epoch):", ""]
        lines += ["| layer | grad_norm | weight_norm | update_ratio | dead_fraction | saturated_fraction |", "|---|---:|---:|---:|---:|---:|"]
        for row in last:
            cells = [_sci(row[k]) for k in ("grad_norm", "weight_norm", "update_ratio", "dead_fraction", "saturated_fraction")]
            lines.append(f"| {row['layer']} | " + " | ".join(cells) + " |")
    return lines


def _sci(value: Any) -> str:
    return "–" if value is None else f"{value:.3g}"


def _md_cell(text: Any) -> str:
    """A table cell: pipes escaped, and leading formula characters defused for spreadsheet imports."""
    text = str(text).replace("|", "\\|")
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def curves(path: Path, rows: list[dict], best_epoch: int, task_metric: str | None) -> None:
    """Learning curves (bptrain.runs.figures): training and validation loss, and the main validation metric, by epoch."""
    from bptrain.runs.figures import curves_svg

    atomic_write_text(path, curves_svg(rows, best_epoch, task_metric))
