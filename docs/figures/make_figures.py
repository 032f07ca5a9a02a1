"""The README's two figures, from a real run of configs/iris.yaml: its learning curves and its gradients.

Usage (from the repository root):

    python docs/figures/make_figures.py        # writes docs/figures/curves.png and gradients.png

The gradient figure reads the diagnostics.csv that fit writes into the run folder.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bptrain import app  # noqa: E402
from bptrain.config.loading import load_config  # noqa: E402
from bptrain.insight import plots  # noqa: E402
from bptrain.insight.runlist import read_json  # noqa: E402


def main() -> None:
    out = ROOT / "docs" / "figures"
    with tempfile.TemporaryDirectory() as tmp:
        run = app.fit(load_config(ROOT / "configs" / "iris.yaml"), runs_dir=Path(tmp)).run_dir
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
