"""What a PNG of the learning curves would add to `fit`, against the curves.svg it writes now.

Usage (from the repository root):

    python benchmarks/figure_cost.py            # median of 5 fresh processes each

One short iris run is trained first; then each measurement runs in a fresh interpreter (a process
that has not imported matplotlib yet, as `fit` has not), timing inside it: importing matplotlib's
Figure and Agg canvas, drawing and saving curves.png with bptrain.insight.plots, and writing
curves.svg with bptrain.runs.report. The whole `fit configs/iris.yaml -q` process is timed alongside
to put the figures beside what a small run costs.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import describe

ROOT = Path(__file__).resolve().parent.parent
REPEATS = 5

MEASURE = """
import json, sys, time
from pathlib import Path
run = Path(sys.argv[1])
from bptrain.insight import plots
from bptrain.runs import report
rows = plots.epoch_rows(run)
summary = json.loads((run / "report.json").read_text())
t0 = time.perf_counter()
report.curves(run / "bench.svg", rows, summary["best_epoch"], "accuracy")
t1 = time.perf_counter()
from matplotlib.figure import Figure
from matplotlib.backends.backend_agg import FigureCanvasAgg
t2 = time.perf_counter()
plots.save(plots.curves(rows, summary["best_epoch"], summary["stop_reason"], "accuracy"), run / "bench.png")
t3 = time.perf_counter()
print(json.dumps({"svg": t1 - t0, "import matplotlib": t2 - t1, "png": t3 - t2, "epochs": len(rows)}))
"""


def main() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as tmp:
        fits = []
        for i in range(REPEATS):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "bptrain", "fit", "configs/iris.yaml", "-q", "--runs-dir", tmp, "--name", f"bench{i}"],
                           cwd=ROOT, env=env, check=True, capture_output=True)
            fits.append(time.perf_counter() - start)
        run = sorted(Path(tmp).iterdir())[0]
        samples = [
            json.loads(subprocess.run([sys.executable, "-c", MEASURE, str(run)], cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout)
            for _ in range(REPEATS)
        ]
    print(describe())
    print(f"iris run of {samples[0]['epochs']} epochs; median of {REPEATS} fresh processes, seconds")
    print(f"  fit configs/iris.yaml -q (whole process)  {statistics.median(fits):.3f}")
    for key in ("svg", "import matplotlib", "png"):
        print(f"  {key:<40} {statistics.median(s[key] for s in samples):.4f}")


if __name__ == "__main__":
    main()
