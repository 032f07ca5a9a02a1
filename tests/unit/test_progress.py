"""Progress on stderr fits an 80-column terminal: the live bar and the plain per-epoch lines."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from bptrain import events
from bptrain.progress import Progress, epoch_line

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
START = {
    "run_dir": "runs/iris",
    "task": "classification",
    "loss": "cross_entropy",
    "rows": {"train": 102, "val": 24, "test": 24},
    "features": 4,
    "inputs": 4,
    "classes": ["setosa", "versicolor", "virginica"],
}


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def row(epoch: int, train_loss: float = 0.1234, val_loss: float = 0.2345, seconds: float = 0.01) -> dict:
    return {"epoch": epoch, "step": 7 * epoch, "lr": 0.01, "train_loss": train_loss, "val_loss": val_loss, "val_accuracy": 0.9333, "seconds": seconds}


@pytest.mark.parametrize(
    "line, epochs, expected",
    [
        (row(12), 300, "epoch  12/300  train_loss 0.1234  val_loss 0.2345  val_accuracy 0.9333  (0.01 s)"),
        # what does not fit is left out, least important first: the seconds, then the metric
        (row(12, seconds=12.5), 300, "epoch  12/300  train_loss 0.1234  val_loss 0.2345  val_accuracy 0.9333"),
        (row(1234, seconds=12.5), 10000, "epoch  1234/10000  train_loss 0.1234  val_loss 0.2345  val_accuracy 0.9333"),
        # large values take four significant digits, so that both losses always show
        (
            row(999999, train_loss=123456789.0, val_loss=float("inf")),
            1000000,
            "epoch  999999/1000000  train_loss 1.235e+08  val_loss inf  val_accuracy 0.9333",
        ),
        (row(1, train_loss=float("nan"), val_loss=-1.5e200), 1000000, "epoch       1/1000000  train_loss nan  val_loss -1.5e+200  val_accuracy 0.9333"),
        (row(1, train_loss=-1.5e200, val_loss=-1.5e200), 1000000, "epoch       1/1000000  train_loss -1.5e+200  val_loss -1.5e+200"),
    ],
)
def test_plain_epoch_lines_fit_80_columns_and_keep_the_epoch_and_losses(line, epochs, expected):
    assert epoch_line(line, epochs) == expected
    assert len(expected) <= 80


def test_an_undefined_r2_shows_as_a_dash_as_in_the_summaries():
    line = {"epoch": 3, "step": 21, "lr": 0.01, "train_loss": 0.5, "val_loss": 0.25, "val_r2": float("-inf"), "seconds": 0.01}
    assert epoch_line(line, 10) == "epoch  3/10  train_loss 0.5000  val_loss 0.2500  val_r2 -  (0.01 s)"


def test_plain_progress_writes_the_fitted_lines():
    stream = io.StringIO()
    with Progress(stream=stream) as progress:
        progress.handle(events.Start(**START, epochs=300))
        progress.handle(events.Epoch(row(300, train_loss=12345.678, seconds=99.99), 300))
    lines = stream.getvalue().splitlines()
    assert lines[1:] == ["epoch 300/300  train_loss 1.235e+04  val_loss 0.2345  val_accuracy 0.9333"]


def frames(output: str) -> list[str]:
    """What a terminal shows, line by line, without colours and cursor moves."""
    return [part for part in re.split(r"[\r\n]", ANSI.sub("", output)) if part.strip()]


@pytest.mark.parametrize("epochs", [300, 1000000])
def test_the_live_bar_fits_80_columns_and_shows_the_epoch_and_every_metric(monkeypatch, epochs):
    monkeypatch.setenv("COLUMNS", "80")
    stream = Terminal()
    with Progress(stream=stream) as progress:
        progress.handle(events.Start(**START, epochs=epochs))
        for epoch in (1, 2, 3):
            progress.handle(events.Epoch(row(epoch, seconds=123.4), epochs))
        progress._bar.refresh()
        progress.handle(events.Done(Path("runs/iris"), {}))
    start, *shown = frames(stream.getvalue())
    assert start.startswith("runs/iris: classification (3 classes)")
    assert all(len(line) <= 80 for line in shown), shown
    bar, status = shown[-2:]
    assert re.fullmatch(rf"epoch +4/{epochs} [━╸╺]+ +\d:\d\d:\d\d elapsed (\d:\d\d:\d\d|-:--:--) left", bar), bar
    assert status == "train_loss 0.1234  val_loss 0.2345  val_accuracy 0.9333"


@pytest.mark.parametrize("epochs, batches", [(300, 7), (1000000, 100000)])
def test_the_live_bar_shows_the_batches_of_a_long_epoch_and_the_time_left_in_80_columns(epochs, batches):
    stream = Terminal()
    with Progress(stream=stream) as progress:
        progress.handle(events.Start(**START, epochs=epochs))
        progress._bar.console.width = 80  # as rich's Console(width=80) renders it
        progress.handle(events.Epoch(row(1), epochs))
        progress.handle(events.Batch(2, batches // 2 + 1, batches))
        progress._bar.refresh()
        bar, status = frames(stream.getvalue())[-2:]
        progress.handle(events.Done(Path("runs/iris"), {}))
    assert len(bar) <= 80, bar
    digits = len(str(batches))
    assert re.fullmatch(
        rf"epoch +2/{epochs} [━╸╺]+ batch +{batches // 2 + 1}/{batches} \d:\d\d:\d\d elapsed (\d+:\d\d:\d\d|-:--:--) left", bar
    ), bar
    assert f"batch {batches // 2 + 1:>{digits}}/{batches}" in bar
    assert status == "train_loss 0.1234  val_loss 0.2345  val_accuracy 0.9333"


def test_the_bar_renders_into_a_forced_terminal_of_80_columns():
    """rich's Console(width=80, force_terminal=True) into a StringIO: the widest epoch and batch counts still fit."""
    from rich.console import Console

    out = io.StringIO()
    with Progress(stream=out, console=Console(file=out, width=80, force_terminal=True)) as progress:
        progress.handle(events.Start(**START, epochs=1000000))
        progress.handle(events.Epoch(row(999998, train_loss=123456789.0), 1000000))
        progress.handle(events.Batch(999999, 99999, 100000))
        progress._bar.refresh()
        progress.handle(events.Done(Path("runs/iris"), {}))
    bar, status = frames(out.getvalue())[-2:]
    assert len(bar) <= 80 and len(status) <= 80
    assert re.fullmatch(r"epoch  999999/1000000 [━╸╺]+ batch  99999/100000 \d:\d\d:\d\d elapsed (\d+:\d\d:\d\d|-:--:--) left", bar), bar
    assert status == "train_loss 1.235e+08  val_loss 0.2345  val_accuracy 0.9333"


def test_batch_events_come_at_most_every_tenth_of_a_second(monkeypatch):
    from bptrain.training import callbacks

    clock = iter([0.0] + [0.03 * i for i in range(1, 40)])
    monkeypatch.setattr(callbacks.time, "perf_counter", lambda: next(clock))
    sent = []
    watcher = callbacks.ProgressEvents(sent.append, 5)
    for batch in range(1, 40):
        watcher.on_batch_end(None, callbacks.BatchEnd(1, batch, 39, batch))
    assert [e.batch for e in sent] == [4, 8, 12, 16, 20, 24, 28, 32, 36]  # at 0.12 s, 0.24 s, ...: never two within 0.1 s


def test_events_are_rendered_by_type_and_warnings_and_notices_show_even_when_quiet():
    stream = io.StringIO()
    with Progress(enabled=False, stream=stream) as progress:
        progress.handle(events.Start(**START, epochs=3))
        progress.handle(events.Warning("w.csv: something to fix"))
        progress.handle(events.Notice("runs/iris: already finished"))
        progress.handle(events.Epoch(row(1), 3))
    assert stream.getvalue() == "warning: w.csv: something to fix\nnotice: runs/iris: already finished\n"


def test_a_fold_and_a_resumed_start_in_plain_lines():
    stream = io.StringIO()
    with Progress(stream=stream) as progress:
        progress.handle(events.Fold(2, 5))
        progress.handle(events.Start(**{**START, "inputs": 7}, epochs=300, resumed_at=(4, 28)))
    assert stream.getvalue().splitlines() == [
        "fold 2/5",
        "runs/iris: classification (3 classes), 4 features (7 inputs), 102/24/24 rows (train/val/test), loss cross_entropy",
        "resuming from the checkpoint at epoch 4, step 28",
    ]


@pytest.mark.parametrize(
    "targets, what",
    [(("progression",), "target progression"), (("lat", "lon"), "2 targets: lat, lon")],
)
def test_a_regression_start_names_its_targets(targets, what):
    stream = io.StringIO()
    start = {**START, "run_dir": "runs/diabetes", "task": "regression", "loss": "mse", "classes": []}
    with Progress(stream=stream) as progress:
        progress.handle(events.Start(**start, epochs=3, targets=targets))
    assert stream.getvalue().splitlines() == [
        f"runs/diabetes: regression ({what}), 4 features, 102/24/24 rows (train/val/test), loss mse",
    ]
