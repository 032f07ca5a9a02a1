"""curves.png is drawn on the Agg canvas, without pyplot."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

IRIS = ROOT / "configs" / "iris.yaml"

# bptrain's own entry point in a fresh interpreter; then which matplotlib modules that process loaded
IN_PROCESS = """
import json, sys
from bptrain import cli
sys.argv = ["bptrain", *sys.argv[1:]]
try:
    cli.main()
except SystemExit as exited:
    code = exited.code
loaded = sorted(m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib."))
print(json.dumps({"code": code, "matplotlib": loaded}), file=sys.stderr)
"""


def fit_in_process(runs: Path, *sets: str) -> tuple[dict, Path]:
    args = ["fit", IRIS, "-q", "--runs-dir", runs, "--set", "stopping.max_epochs=3"]
    for item in sets:
        args += ["--set", item]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", IN_PROCESS, *map(str, args)], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    outcome = json.loads(result.stderr.splitlines()[-1])
    assert outcome["code"] == 0, result.stderr
    (run,) = Path(runs).iterdir()
    return outcome, run


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    assert data[-8:-4] == b"IEND"
    return struct.unpack(">II", data[16:24])


def test_default_draws_curves_without_pyplot(tmp_path):
    outcome, run = fit_in_process(tmp_path)
    assert "matplotlib.backends.backend_agg" in outcome["matplotlib"]
    assert "matplotlib.pyplot" not in outcome["matplotlib"]
    # two panels (loss, validation accuracy) of 5.5 x 4 inches at 100 dpi
    assert png_size(run / "curves.png") == (1100, 400)
