"""Progress on stderr for the CLI: a live bar on a terminal, one plain line per epoch otherwise.

The bar and the epoch lines fit the terminal (plain lines: 80 columns): fields that do not fit are
left out, least important first, so the epoch and the losses always show. The bar shows the
epoch, the batches done in it (updated at most about ten times a second, from events.Batch), the
time elapsed and the time left until stopping.max_epochs at the recent pace; the last epoch's
metrics are on the row below it.
"""

from __future__ import annotations

import math
import sys
from typing import Any

from bptrain import events
from bptrain.runs.report import number

SHOWN = ("train_loss", "val_loss", "val_accuracy", "val_r2")
WIDTH = 80  # plain lines go to logs, read later in terminals of any size


def metric_fields(row: dict[str, Any]) -> list[str]:
    """A loss that is not finite shows as it is (inf, nan: training diverges); another metric that is
    not finite is undefined (r2 of a constant target) and shows as `-`, as in the summaries."""
    return [f"{k} {number(row[k]) if k.endswith('loss') or math.isfinite(row[k]) else '-'}" for k in SHOWN if row.get(k) is not None]


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


def trial_line(event: events.TrialDone) -> str:
    """`trial   7 (8/30)  complete  val_loss 0.0395  best 0.0394 (trial 2)  0.6 s  optimizer.lr=0.04623 ...`."""
    from bptrain.tune.space import describe

    head = f"trial {event.number:>3} ({event.finished}/{event.trials})"
    if event.state == "failed":
        return f"{head}  failed    {describe(event.params)}: {event.message}"
    value = f"{event.metric} {number(event.value)}" if event.value is not None else f"{event.metric} -"
    best = f"best {number(event.best[1])} (trial {event.best[0]})" if event.best else "best -"
    return f"{head}  {event.state:<8}  {value}  {best}  {event.seconds:.1f} s  {describe(event.params)}"


class Progress:
    """Receives the service's events (`handle`) and renders them on stderr."""

    def __init__(self, enabled: bool = True, stream=None, console=None):
        """`console`: the rich Console the bar draws on (default: one on `stream`, drawing when it is a terminal)."""
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.console = console
        self.live = enabled and (console.is_terminal if console is not None else self.stream.isatty())
        self._bar = None
        self._task = None
        self._epochs = 0
        self._unit = "epoch"  # what the bar counts: epochs, or a study's trials
        self._renderers = {
            events.Fold: self._on_fold,
            events.Start: self._on_start,
            events.Epoch: self._on_epoch,
            events.Batch: self._on_batch,
            events.Done: self._on_done,
            events.TrialDone: self._on_trial,
        }

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

    def handle(self, event: events.Event) -> None:
        """Render one event (bptrain.events) by its type; warnings and notices show even when disabled."""
        if isinstance(event, (events.Warning, events.Notice)):
            self._write(f"{'warning' if isinstance(event, events.Warning) else 'notice'}: {event.message}")
        elif self.enabled:
            render = self._renderers.get(type(event))
            if render is not None:
                render(event)

    def _on_fold(self, event: events.Fold) -> None:
        self._write(f"fold {event.fold}/{event.folds}")

    def _on_start(self, event: events.Start) -> None:
        rows = "/".join(str(v) for v in event.rows.values())
        what = {"classification": f"{len(event.classes)} classes", "multilabel": f"{len(event.classes)} labels"}.get(event.task)
        if what is None:  # regression: what it predicts
            targets = event.targets
            what = f"target {targets[0]}" if len(targets) == 1 else f"{len(targets)} targets: {', '.join(targets)}" if targets else "1 target"
        shown = f"{event.features} features" + (f" ({event.inputs} inputs)" if event.inputs != event.features else "")
        self._write(f"{event.run_dir}: {event.task} ({what}), {shown}, {rows} rows ({'/'.join(event.rows)}), loss {event.loss}")
        if event.resumed_at:
            epoch, step = event.resumed_at
            self._write(f"resuming from the checkpoint at epoch {epoch}, step {step}")
        if self.live:
            self._start_bar(event.epochs, event.resumed_at[0] - 1 if event.resumed_at else 0)

    def _epoch_text(self, epoch: int) -> str:
        return f"{self._unit} {epoch:>{len(str(self._epochs))}}/{self._epochs}"

    def _on_epoch(self, event: events.Epoch) -> None:
        row = event.row
        if self._bar is not None:
            status = fitted(metric_fields(row), self._bar.console.width)
            epoch = min(row["epoch"] + 1, self._epochs)
            self._bar.update(self._task, completed=row["epoch"], status=status, epoch=self._epoch_text(epoch), batch="")
        else:
            self._write(epoch_line(row, event.epochs))

    def _on_batch(self, event: events.Batch) -> None:
        if self._bar is not None:
            width = len(str(event.batches))
            self._bar.update(
                self._task,
                completed=event.epoch - 1 + event.batch / event.batches,
                epoch=self._epoch_text(event.epoch),
                batch=f"batch {event.batch:>{width}}/{event.batches}",
            )

    def _on_done(self, event: events.Done) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def _on_trial(self, event: events.TrialDone) -> None:
        """A tuning study's trial ended: its line; on a terminal, a bar of trials below the lines."""
        if self.live and self._bar is None:
            self._start_bar(event.trials, 0, unit="trials")
        self._write(trial_line(event))
        if self._bar is not None:
            best = f"best {event.metric} {number(event.best[1])} (trial {event.best[0]})" if event.best else "no trial complete yet"
            done = min(event.finished, event.trials)
            self._bar.update(self._task, completed=done, status=best, epoch=self._epoch_text(done))

    def _start_bar(self, epochs: int, done: int, unit: str = "epoch") -> None:
        from rich.console import Console
        from rich.progress import BarColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
        from rich.progress import Progress as Bar
        from rich.text import Text

        class TwoRows(Bar):
            """The bar on one row and the last epoch's metrics on the next: neither crowds the other out."""

            def get_renderables(self):
                yield self.make_tasks_table(self.tasks)
                for task in self.tasks:
                    yield Text(task.fields["status"], no_wrap=True, overflow="ellipsis")

        self._epochs, self._unit = epochs, unit
        self._bar = TwoRows(
            TextColumn("{task.fields[epoch]}", markup=False),
            BarColumn(bar_width=None),
            TextColumn("{task.fields[batch]}", markup=False),
            TimeElapsedColumn(),
            TextColumn("elapsed"),
            TimeRemainingColumn(),
            TextColumn("left"),
            console=self.console or Console(file=self.stream),
            transient=False,
            expand=True,
        )
        self._bar.start()
        self._task = self._bar.add_task("train", total=epochs, completed=done, status="", epoch=self._epoch_text(done + 1 if unit == "epoch" else done), batch="")
