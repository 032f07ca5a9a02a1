"""`bptrain gradcheck`: every shipped config passes; the table and verdict are printed on stdout.

The shipped configs are checked through the CLI's entry point in this process (call_cli); the other
tests run `python -m bptrain gradcheck` as a process.
"""

import re

import pytest

from conftest import ROOT, call_cli, run_cli

CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_every_shipped_config_passes(config):
    result = call_cli("gradcheck", config)
    assert result.returncode == 0, result.stderr
    *table, verdict = result.stdout.strip().splitlines()
    assert table[0].split() == ["parameter", "shape", "relative", "error"]
    assert all(line.endswith("  ok") for line in table[1:])
    assert re.fullmatch(r"passed: \d+ parameters, 16 rows, loss \w+, largest relative error \S+ \(tolerance 1e-06\)", verdict)


def test_dropout_norms_and_penalties_are_checked_too():
    result = run_cli(
        "gradcheck", ROOT / "configs" / "iris.yaml", "--rows", "8",
        "--set", "model.layers=[{units: 6, activation: selu, dropout: 0.5}, {type: batch_norm}, {type: layer_norm}, {units: 5, activation: {name: gelu, approximate: tanh}}]",
        "--set", "regularization={l1: 0.01, l2: 0.01, include_bias: true}",
    )
    assert result.returncode == 0, result.stderr
    names = [line.split()[0] for line in result.stdout.splitlines()[1:-1]]
    assert names == ["layers.0.W", "layers.0.b", "layers.3.gamma", "layers.3.beta", "layers.4.gamma", "layers.4.beta", "layers.5.W", "layers.5.b", "layers.7.W", "layers.7.b"]
    assert result.stdout.splitlines()[-1].startswith("passed: 10 parameters, 8 rows")


def test_a_bad_config_is_a_usage_error():
    result = run_cli("gradcheck", ROOT / "configs" / "iris.yaml", "--set", "model.layers.0.activation=rleu")
    assert result.returncode == 2
    assert "model.layers[0].activation: unknown activation 'rleu';" in result.stderr
    assert "(from --set)" in result.stderr and "Traceback" not in result.stderr


def test_a_loss_not_finite_at_the_start_is_an_error_not_a_pass():
    # biases near float64's largest value (float32 refuses them as config errors) overflow the second layer's sums
    layers = "model.layers=[{units: 4, bias_init: 1e308}, {units: 4, bias_init: 1e308}]"
    result = run_cli("gradcheck", ROOT / "configs" / "iris.yaml", "--set", "model.dtype=float64", "--set", layers)
    assert result.returncode == 4, result.stdout
    assert result.stderr.strip() == (
        "error: gradcheck: the loss on 16 training rows is nan at the starting weights, so its gradients "
        "cannot be checked; check model.layers' init and bias_init"
    )
    assert result.stdout == ""


def test_every_gradient_exactly_zero_is_an_error_not_a_pass():
    # a bias this large saturates the softmax exactly: no gradient reaches any weight
    layers = "model.layers=[{units: 4, bias_init: 1e308}]"
    result = call_cli("gradcheck", ROOT / "configs" / "iris.yaml", "--set", "model.dtype=float64", "--set", layers)
    assert (result.returncode, result.stdout) == (4, "")
    assert result.stderr == (
        "error: gradcheck: every gradient on 16 training rows is exactly 0 at the starting weights, so nothing "
        "can be checked; check model.layers' init and bias_init\n"
    )


def test_a_parameter_with_a_zero_gradient_is_marked_not_checked():
    # every unit of the hidden layer dead (relu of a sum near -100): only the output bias gets a gradient
    result = call_cli("gradcheck", ROOT / "configs" / "iris.yaml", "--set", "model.layers=[{units: 4, bias_init: -100}]")
    assert result.returncode == 0, result.stderr
    *table, verdict = result.stdout.strip().splitlines()
    assert [line.split("  ")[-1] for line in table[1:]] == ["zero gradient, not checked"] * 3 + ["ok"]
    assert verdict.startswith("passed: 4 parameters (3 with a zero gradient, not checked), 16 rows, loss cross_entropy, ")
