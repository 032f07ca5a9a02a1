import numpy as np
import pytest

from bptrain.nn.activations import ACTIVATIONS
from bptrain.nn.gradcheck import numeric_gradient, relative_error

TEXTBOOK = {
    "identity": lambda z: z,
    "relu": lambda z: np.where(z > 0, z, 0.0),
    "tanh": lambda z: (np.exp(z) - np.exp(-z)) / (np.exp(z) + np.exp(-z)),
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
}


def away_from_zero(rng, shape):
    """Values in ±[0.1, 3]: finite differences never straddle ReLU's kink."""
    return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.1, 3.0, shape)


def test_every_activation_has_a_textbook_formula_here():
    assert set(TEXTBOOK) == set(ACTIVATIONS)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_forward_matches_the_textbook_formula_and_writes_into_out(name):
    z = away_from_zero(np.random.default_rng(0), (6, 5))
    out = np.empty_like(z)
    a = ACTIVATIONS.get(name)().forward(z, out)
    assert a is out
    np.testing.assert_allclose(a, TEXTBOOK[name](z), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("with_scratch", [True, False])
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_backward_matches_finite_differences(name, with_scratch):
    rng = np.random.default_rng(1)
    z = away_from_zero(rng, (6, 5))
    w = rng.standard_normal(z.shape)  # L = sum(w * f(z)), so dL/da = w
    act = ACTIVATIONS.get(name)()

    numeric = numeric_gradient(lambda: float(np.vdot(w, act.forward(z, np.empty_like(z)))), z)
    a = act.forward(z, np.empty_like(z))
    grad = w.copy()
    analytic = act.backward(grad, z, a, np.empty_like(z) if with_scratch else None)

    assert analytic is grad  # multiplied in place
    assert relative_error(analytic, numeric) < 1e-6


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_huge_inputs_give_the_limits_without_warnings_and_keep_the_dtype(name, dtype):
    z = np.array([[-1e4, -800.0, -30.0, 0.0, 30.0, 800.0, 1e4]], dtype)
    act = ACTIVATIONS.get(name)()
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        a = act.forward(z, np.empty_like(z))
        grad = act.backward(np.ones_like(z), z, a, np.empty_like(z))
    assert a.dtype == grad.dtype == dtype
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(grad))
    limits = {
        "identity": z,
        "relu": np.maximum(z, 0),
        "tanh": np.sign(z),
        "sigmoid": (np.sign(z) + 1) / 2,
    }[name]
    np.testing.assert_allclose(a[:, [0, 1, 3, 5, 6]], limits[:, [0, 1, 3, 5, 6]], rtol=1e-6)


def test_sigmoid_keeps_relative_precision_for_very_negative_inputs():
    z = np.array([-30.0, -100.0, -700.0])
    a = ACTIVATIONS.get("sigmoid")().forward(z, np.empty_like(z))
    np.testing.assert_allclose(a, np.exp(z) / (1.0 + np.exp(z)), rtol=1e-12)
