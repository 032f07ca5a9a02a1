import math

import numpy as np
import pytest

from bptrain.nn.errors import OptionError
from bptrain.nn.clipping import clip_global_norm, clip_norm_per_param, clip_value
from bptrain.nn.params import Param


def params(dtype=np.float64):
    """Two params whose grads have norms 5 (3-4-0) and 12 (12-0): 13 together."""
    return [
        Param("W", np.zeros((1, 3), dtype), np.array([[3.0, -4.0, 0.0]], dtype)),
        Param("b", np.zeros(2, dtype), np.array([0.0, 12.0], dtype)),
    ]


def grads(ps):
    return [p.grad.copy() for p in ps]


@pytest.mark.parametrize("max_norm, coef", [
    (1.0, 1.0 / (13.0 + 1e-6)),
    (13.0, 13.0 / (13.0 + 1e-6)),  # PyTorch's 1e-6 clips even at exactly max_norm
    (20.0, 1.0),
])
def test_clip_global_norm_scales_all_grads_by_one_coefficient(max_norm, coef):
    ps = params()
    before = grads(ps)
    total = clip_global_norm(ps, max_norm)
    assert type(total) is float and total == 13.0
    for p, g in zip(ps, before):
        np.testing.assert_allclose(p.grad, g * coef, rtol=1e-15)


def test_clip_norm_per_param_scales_each_grad_by_its_own_norm():
    ps = params()
    before = grads(ps)
    clip_norm_per_param(ps, 6.0)
    np.testing.assert_array_equal(ps[0].grad, before[0])  # norm 5 <= 6
    np.testing.assert_allclose(ps[1].grad, before[1] * 6.0 / (12.0 + 1e-6), rtol=1e-15)
    assert math.sqrt(float(np.vdot(ps[1].grad, ps[1].grad))) < 6.0


def test_clip_value_clamps_every_entry():
    ps = params()
    clip_value(ps, 3.5)
    np.testing.assert_array_equal(ps[0].grad, [[3.0, -3.5, 0.0]])
    np.testing.assert_array_equal(ps[1].grad, [0.0, 3.5])


def test_clipping_works_in_place_and_keeps_float32():
    ps = params(np.float32)
    arrays = [p.grad for p in ps]
    clip_global_norm(ps, 1.0)
    clip_norm_per_param(ps, 0.5)
    clip_value(ps, 0.1)
    assert all(p.grad is a and a.dtype == np.float32 for p, a in zip(ps, arrays))


@pytest.mark.parametrize("clip, name", [
    (lambda ps: clip_global_norm(ps, 0.0), "max_norm"),
    (lambda ps: clip_norm_per_param(ps, -1.0), "max_norm"),
    (lambda ps: clip_value(ps, 0.0), "clip_value"),
])
def test_limits_must_be_positive(clip, name):
    with pytest.raises(OptionError, match=f"{name} must be > 0"):
        clip(params())
