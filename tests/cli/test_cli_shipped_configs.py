"""Every shipped config trains to its documented quality with its own seed (report.json metrics.test).

The fits go through the CLI's entry point in this process (call_cli): the quality is the subject, not the process.
"""

import json

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
