"""The core's option errors reach the user as config errors: one `error:` line, exit 2, no traceback."""

from conftest import ROOT, run_cli

IRIS = ROOT / "configs" / "iris.yaml"


def test_a_rule_the_core_checks_when_the_run_is_assembled_is_a_config_error():
    result = run_cli("check", IRIS, "--set", "schedule.name=cosine", "--set", "schedule.total=10", "--set", "schedule.warmup=10")
    assert result.returncode == 2
    assert result.stderr == "error: cosine: warmup must be < total (got warmup=10, total=10)\n"
