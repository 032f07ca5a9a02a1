"""Progress on stderr for the CLI: a live bar on a terminal, one plain line per epoch otherwise."""

from __future__ import annotations

import sys
from typing import Any

SHOWN = ("train_loss", "val_loss", "val_accuracy", "val_r2")


def epoch_line(row: dict[str, Any], epochs: int) -> str:
    width = len(str(epochs))
    values = "  ".join(f"{k} {row[k]:.4f}" for k in SHOWN if k in row and row[k] is not None)
    return f"epoch {row['epoch']:>{width}}/{epochs}  {values}  ({row['seconds']:.2f} s)"


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
                status = "  ".join(f"{k} {row[k]:.4f}" for k in SHOWN if k in row and row[k] is not None)
                self._bar.update(self._task, completed=row["epoch"], status=status)
            else:
                self._write(epoch_line(row, payload["epochs"]))
        elif kind == "done" and self._bar is not None:
            self._bar.stop()
            self._bar = None

    def _start_bar(self, epochs: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn

        self._bar = Bar(
            TextColumn("epoch"),
            MofNCompleteColumn(),
            BarColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[status]}"),
            console=Console(file=self.stream),
            transient=False,
        )
        self._bar.start()
        self._task = self._bar.add_task("train", total=epochs, status="")
