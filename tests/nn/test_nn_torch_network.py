"""bptrain.nn against PyTorch: logits, losses and gradients saved by tools/make_fixtures_network.py.

Tolerance: rtol 1e-6 and atol 1e-12, float64 on both sides. The differences are round-off: at most
about 5e-13 relative, and about 1e-17 absolute on entries that are 0 in exact arithmetic (the bias
before a batch norm; an mae bias gradient whose signs cancel). Dropout is left out: its masks come
from another generator than torch's.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from bptrain.nn.activations import ACTIVATIONS
from bptrain.nn.losses import LOSSES
from bptrain.nn.layers import LAYERS
from bptrain.nn.model import build_model

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "network"
INDEX = json.loads((FIXTURES / "index.json").read_text(encoding="utf-8"))
CASES = INDEX["cases"]
RTOL, ATOL = 1e-6, 1e-12
REGENERATE = "regenerate with: python tools/make_fixtures_network.py"


def specs(kind=None):
    return [spec for case in CASES for spec in case["layers"] if kind is None or spec["type"] == kind]


def test_the_index_is_float64_and_lists_exactly_the_files_present():
    assert INDEX["format_version"] == 1 and INDEX["dtype"] == "float64"
    assert {case["file"] for case in CASES} == {p.name for p in FIXTURES.glob("*.npz")}, REGENERATE


def test_every_registered_activation_and_each_of_its_options_has_a_fixture():
    used = [(spec["activation"], spec.get("activation_options", {})) for spec in specs() if "activation" in spec]
    assert {name for name, _ in used} == set(ACTIVATIONS), REGENERATE
    for name, cls in ACTIVATIONS.items():
        for option in cls.declaration.defaults:
            assert any(n == name and option in options for n, options in used), f"{name} {option}: {REGENERATE}"


def test_every_registered_loss_and_each_of_its_options_has_a_fixture():
    assert {case["loss"] for case in CASES} == set(LOSSES), REGENERATE
    for name, cls in LOSSES.items():
        for option in cls.declaration.defaults:
            assert any(c["loss"] == name and option in c["loss_options"] for c in CASES), f"{name} {option}: {REGENERATE}"


def test_every_layer_type_but_dropout_has_a_fixture():
    assert set(LAYERS) - {spec["type"] for spec in specs()} == {"dropout"}, REGENERATE
    assert any(spec.get("momentum", 0.1) != 0.1 for spec in specs("batch_norm"))
    assert any(spec.get("eps", 1e-5) != 1e-5 for spec in specs("layer_norm"))


def prefixed(arrays, prefix):
    return {key[len(prefix):]: value for key, value in arrays.items() if key.startswith(prefix)}


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_bptrain_matches_pytorch(case):
    with np.load(FIXTURES / case["file"], allow_pickle=False) as saved:
        arrays = dict(saved)
    x, y = arrays["x"], arrays["y"]
    model = build_model(case["layers"], case["n_in"], case["n_out"], dtype="float64",
                        rng=np.random.default_rng(0), batch_size=len(x))
    params = prefixed(arrays, "param/")
    assert set(params) == {p.name for p in model.params}
    model.load_state_dict({**model.state_dict(), **params})  # the buffers keep their initial 0 and 1
    loss = LOSSES.get(case["loss"])(**case["loss_options"])

    logits = model.forward(x, train=True)
    np.testing.assert_allclose(logits, arrays["logits"], rtol=RTOL, atol=ATOL)
    value, grad = loss(logits, y)
    assert value == pytest.approx(float(arrays["loss"]), rel=RTOL, abs=ATOL)
    model.backward(grad)
    for p in model.params:
        np.testing.assert_allclose(p.grad, arrays[f"grad/{p.name}"], rtol=RTOL, atol=ATOL, err_msg=p.name)

    buffers = prefixed(arrays, "buffer/")
    assert set(buffers) == set(model.buffers)
    for name, expected in buffers.items():  # moved once, by the training forward
        np.testing.assert_allclose(model.buffers[name], expected, rtol=RTOL, atol=ATOL, err_msg=name)
    if "eval_logits" in arrays:
        np.testing.assert_allclose(model.forward(x, train=False), arrays["eval_logits"], rtol=RTOL, atol=ATOL)
