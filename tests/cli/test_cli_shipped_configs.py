"""Every shipped config trains to its documented quality with its own seed (report.json metrics.test),
and writes its diagnostics without a diagnostic warning.

The fits go through the CLI's entry point in this process (call_cli): the quality is the subject, not the process.
"""

import json
import re

import pytest

from conftest import ROOT, call_cli

TARGETS = {
    "iris": ("accuracy", 0.93),
    "wine": ("accuracy", 0.94),
    "breast_cancer": ("accuracy", 0.95),
    "digits": ("accuracy", 0.95),
    "diabetes": ("r2", 0.40),
    "penguins": ("accuracy", 0.97),
}

DIAGNOSTIC_WARNING = re.compile(r"^warning: (vanishing gradients|exploding gradients|dead units|large updates|tiny updates)", re.M)


def test_every_config_has_a_target():
    assert {p.stem for p in (ROOT / "configs").glob("*.yaml")} == set(TARGETS)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_shipped_config_reaches_its_target(tmp_path, name):
    result = call_cli("fit", ROOT / "configs" / f"{name}.yaml", "--runs-dir", tmp_path, "-q")
    assert result.returncode == 0, result.stderr
    (run,) = tmp_path.iterdir()
    report = json.loads((run / "report.json").read_text())
    metric, target = TARGETS[name]
    assert report["metrics"]["test"][metric] >= target, report["metrics"]["test"]
    assert report["diagnostics"]["warnings"] == []
    assert not DIAGNOSTIC_WARNING.search(result.stderr), result.stderr
    epochs = {int(line.split(",", 1)[0]) for line in (run / "diagnostics.csv").read_text().splitlines()[1:]}
    assert epochs == set(range(1, report["epochs_run"] + 1))
