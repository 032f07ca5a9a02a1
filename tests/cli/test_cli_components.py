"""The core's option errors reach the user as config errors: one `error:` line, exit 2, no traceback."""

from conftest import ROOT, run_cli

IRIS = ROOT / "configs" / "iris.yaml"


def test_a_rule_the_core_checks_when_the_run_is_assembled_is_a_config_error():
    result = run_cli("check", IRIS, "--set", "schedule.name=cosine", "--set", "schedule.total=10", "--set", "schedule.warmup=10")
    assert result.returncode == 2
    assert result.stderr == "error: cosine: warmup must be < total (got warmup=10, total=10)\n"


def test_lion_trains_end_to_end(tmp_path):
    result = run_cli("fit", IRIS, "--runs-dir", tmp_path, "-q", "--set", "optimizer.name=lion", "--set", "optimizer.lr=0.001",
                     "--set", "stopping.max_epochs=5")
    assert result.returncode == 0, result.stderr
    (run,) = tmp_path.iterdir()
    assert "optimizer:\n  name: lion\n  lr: 0.001\n  betas:\n  - 0.9\n  - 0.99\n  weight_decay: 0.0\n" in (run / "config.yaml").read_text()
    rows = [line.split(",") for line in (run / "metrics.csv").read_text().splitlines()]
    losses = [float(row[rows[0].index("train_loss")]) for row in rows[1:]]
    assert len(losses) == 5 and losses[-1] < losses[0]


def test_a_lion_option_out_of_range_is_a_config_error():
    result = run_cli("check", IRIS, "--set", "optimizer.name=lion", "--set", "optimizer.weight_decay=-1")
    assert result.returncode == 2
    assert result.stderr == (
        f"error: {IRIS}: 1 problem\n"
        "  optimizer.weight_decay: must be greater than or equal to 0 (got -1) (from --set)\n"
    )
