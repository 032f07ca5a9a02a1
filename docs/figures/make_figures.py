"""The README's two figures, from a real run of configs/iris.yaml: its learning curves and its gradients.

Usage (from the repository root):

    python docs/figures/make_figures.py        # writes docs/figures/curves.png and gradients.png

The gradient figure reads the run's diagnostics.csv. Where fit does not write that file, this
script records the same columns itself while the run trains (the norms of each layer's weight
gradient and weights, and ‖ΔW‖/‖W‖, at the last step of every epoch) through a training callback.
"""

from __future__ import annotations

import csv
import math
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bptrain import app  # noqa: E402
from bptrain.config.loading import load_config  # noqa: E402
from bptrain.insight import plots  # noqa: E402
from bptrain.insight.runlist import read_json  # noqa: E402
from bptrain.training.callbacks import Callback  # noqa: E402


class GradientLog(Callback):
    """diagnostics.csv's norm columns at each epoch's last step (dead and saturated units left empty)."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.before: dict[str, np.ndarray] = {}

    def on_batch_end(self, trainer, event) -> None:
        weights = [p for p in trainer.model.params if p.name.endswith(".W")]
        if event.batch == event.batches:
            for p in weights:
                norm = float(np.linalg.norm(p.value))
                step = float(np.linalg.norm(p.value - self.before[p.name])) if p.name in self.before else math.nan
                layer = p.name.rsplit(".", 1)[0]
                self.rows.append({"epoch": event.epoch, "layer": layer, "grad_norm": float(np.linalg.norm(p.grad)),
                                  "weight_norm": norm, "update_ratio": step / norm, "dead_fraction": "", "saturated_fraction": ""})
        if event.batch == event.batches - 1 or event.batches == 1:
            self.before = {p.name: p.value.copy() for p in weights}

    def write(self, path: Path) -> None:
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=plots.DIAGNOSTICS_COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(self.rows)


def main() -> None:
    out = ROOT / "docs" / "figures"
    log = GradientLog()
    with tempfile.TemporaryDirectory() as tmp:
        run = app.fit(load_config(ROOT / "configs" / "iris.yaml"), runs_dir=Path(tmp), callbacks=[log]).run_dir
        if not (run / plots.DIAGNOSTICS_FILE).is_file():
            log.write(run / plots.DIAGNOSTICS_FILE)
        report = read_json(run / "report.json")
        rows = plots.epoch_rows(run)
        plots.save(plots.curves(rows, report["best_epoch"], report["stop_reason"], "accuracy", log=True, title="configs/iris.yaml"), out / "curves.png")
        plots.save(plots.gradients(plots.diagnostics(run), title="configs/iris.yaml"), out / "gradients.png")
    for name in ("curves.png", "gradients.png"):
        small(out / name)
        print(f"{out / name}: {(out / name).stat().st_size // 1024} KB")


def small(path: Path) -> None:
    """The PNG with a palette of 64 colours, so that the repository holds a few tens of KB per figure."""
    from PIL import Image

    with Image.open(path) as image:
        image.convert("RGB").quantize(colors=64).save(path, optimize=True)


if __name__ == "__main__":
    main()
