import tracemalloc

import numpy as np
import pytest

from bptrain.nn.errors import OptionError
from bptrain.nn.gradcheck import numeric_gradient, rel_error_norm
from bptrain.nn.params import KINDS, Param
from bptrain.nn.regularizers import Regularizer


def params(dtype=np.float64, seed=0):
    """One param of each kind, every entry in ±[0.1, 2] so that |w| has no kink within reach."""
    rng = np.random.default_rng(seed)
    shapes = {"weight": (4, 3), "bias": (3,), "scale": (3,), "shift": (3,)}
    out = []
    for kind in KINDS:
        value = rng.choice([-1.0, 1.0], shapes[kind]) * rng.uniform(0.1, 2.0, shapes[kind])
        out.append(Param(f"layers.0.{kind}", value.astype(dtype), np.zeros(shapes[kind], dtype), kind))
    return out


CASES = [
    {"l1": 0.3},
    {"l2": 0.7},
    {"l1": 0.3, "l2": 0.7},
    {"l1": 0.3, "l2": 0.7, "include_bias": True},
]


@pytest.mark.parametrize("options", CASES, ids=str)
def test_value_is_the_keras_penalty_over_the_chosen_params(options):
    ps = params()
    chosen = ps if options.get("include_bias") else ps[:1]
    expected = sum(options.get("l1", 0.0) * np.abs(p.value).sum() + options.get("l2", 0.0) * (p.value**2).sum()
                   for p in chosen)
    value = Regularizer(ps, **options).value()
    assert type(value) is float
    assert value == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize("options", CASES, ids=str)
def test_add_grad_matches_finite_differences_of_value(options):
    ps = params()
    reg = Regularizer(ps, **options)
    reg.add_grad()
    for p in ps:
        numeric = numeric_gradient(reg.value, p.value)
        if p.kind == "weight" or options.get("include_bias"):
            assert rel_error_norm(p.grad, numeric) < 1e-8, p.name
        else:
            assert not p.grad.any() and not numeric.any()


def test_add_grad_adds_to_the_gradient_in_place():
    ps = params()
    start = [np.full(p.grad.shape, 5.0) for p in ps]
    for p, g in zip(ps, start):
        p.grad[...] = g
    grads = [p.grad for p in ps]
    Regularizer(ps, l1=0.5, l2=0.25).add_grad()
    W = ps[0]
    assert all(p.grad is g for p, g in zip(ps, grads))
    np.testing.assert_allclose(W.grad, 5.0 + 0.5 * np.sign(W.value) + 0.5 * W.value, rtol=1e-15)
    for p in ps[1:]:
        np.testing.assert_array_equal(p.grad, 5.0)


def test_l1_takes_sign_0_as_0():
    p = Param("W", np.array([[0.0, 2.0, -3.0]]), np.zeros((1, 3)))
    Regularizer([p], l1=1.0).add_grad()
    np.testing.assert_array_equal(p.grad, [[0.0, 1.0, -1.0]])


def test_no_penalty_is_zero_and_leaves_grads_alone():
    ps = params()
    reg = Regularizer(ps)
    reg.add_grad()
    assert reg.value() == 0.0 and not any(p.grad.any() for p in ps)


def test_float32_stays_float32_and_nothing_is_allocated_per_call():
    big = [Param("W", np.ones((300, 300), np.float32), np.zeros((300, 300), np.float32))]
    reg = Regularizer(big, l1=0.1, l2=0.1)
    reg.add_grad()
    tracemalloc.start()
    try:
        reg.add_grad()
        reg.value()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10_000  # a param-sized temporary would be 360 kB
    assert big[0].grad.dtype == np.float32


@pytest.mark.parametrize("options", [{"l1": -0.1}, {"l2": float("inf")}])
def test_negative_or_infinite_strengths_are_config_errors(options):
    with pytest.raises(OptionError, match="must be a finite number >= 0"):
        Regularizer(params(), **options)
