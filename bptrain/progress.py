"""Progress on stderr for the CLI: a live bar on a terminal, one plain line per epoch otherwise.

The bar and the epoch lines fit the terminal (plain lines: 80 columns): fields that do not fit are
left out, least important first, so the epoch and the losses always show.
"""

from __future__ import annotations

import sys
from typing import Any

SHOWN = ("train_loss", "val_loss", "val_accuracy", "val_r2")
WIDTH = 80  # plain lines go to logs, read later in terminals of any size


def number(value: float) -> str:
    """Four decimals, or four significant digits from 10000 on: at most 11 characters."""
    return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.4g}"


def metric_fields(row: dict[str, Any]) -> list[str]:
    return [f"{k} {number(row[k])}" for k in SHOWN if row.get(k) is not None]


def fitted(fields: list[str], width: int) -> str:
    """The first field, then as many of the following ones as fit in `width` columns."""
    line = fields[0] if fields else ""
    for field in fields[1:]:
        if len(line) + 2 + len(field) > width:
            break
        line += "  " + field
    return line


def epoch_line(row: dict[str, Any], epochs: int) -> str:
    digits = len(str(epochs))
    return fitted([f"epoch {row['epoch']:>{digits}}/{epochs}", *metric_fields(row), f"({row['seconds']:.2f} s)"], WIDTH)


class Progress:
    """Receives the service's events (`handle`) and renders them on stderr."""

    def __init__(self, enabled: bool = True, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.live = enabled and self.stream.isatty()
        self._bar = None
        self._task = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def _write(self, text: str) -> None:
        if self._bar is not None:
            self._bar.console.print(text, highlight=False, markup=False)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def handle(self, kind: str, **payload: Any) -> None:
        if kind in ("warning", "notice"):  # shown even with -q
            self._write(f"{kind}: {payload['message']}")
            return
        if not self.enabled:
            return
        if kind == "fold":
            self._write(f"fold {payload['fold']}/{payload['folds']}")
        elif kind == "start":
            rows = "/".join(str(v) for v in payload["rows"].values())
            what = {"classification": f"{len(payload['classes'])} classes", "multilabel": f"{len(payload['classes'])} labels"}.get(
                payload["task"], "regression"
            )
            inputs = payload.get("inputs", payload["features"])
            shown = f"{payload['features']} features" + (f" ({inputs} inputs)" if inputs != payload["features"] else "")
            self._write(
                f"{payload['run_dir']}: {payload['task']} ({what}), {shown}, "
                f"{rows} rows ({'/'.join(payload['rows'])}), loss {payload['loss']}"
            )
            if payload.get("resumed_at"):
                epoch, step = payload["resumed_at"]
                self._write(f"resuming from the checkpoint at epoch {epoch}, step {step}")
            if self.live:
                self._start_bar(payload["epochs"])
        elif kind == "epoch":
            row = payload["row"]
            if self._bar is not None:
                status = fitted(metric_fields(row), self._bar.console.width)
                self._bar.update(self._task, completed=row["epoch"], status=status)
            else:
                self._write(epoch_line(row, payload["epochs"]))
        elif kind == "done" and self._bar is not None:
            self._bar.stop()
            self._bar = None

    def _start_bar(self, epochs: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn
        from rich.text import Text

        class TwoRows(Bar):
            """The bar on one row and the last epoch's metrics on the next: neither crowds the other out."""

            def get_renderables(self):
                yield self.make_tasks_table(self.tasks)
                for task in self.tasks:
                    yield Text(task.fields["status"], no_wrap=True, overflow="ellipsis")

        self._bar = TwoRows(
            TextColumn("epoch"),
            MofNCompleteColumn(),
            BarColumn(),
            TimeElapsedColumn(),
            console=Console(file=self.stream),
            transient=False,
        )
        self._bar.start()
        self._task = self._bar.add_task("train", total=epochs, status="")
