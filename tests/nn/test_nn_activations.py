import math

import numpy as np
import pytest

from bptrain.nn.errors import OptionError
from bptrain.nn.activations import ACTIVATIONS, normal_cdf
from bptrain.nn.gradcheck import numeric_gradient, rel_error_norm

SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def phi(z):
    """The standard normal CDF, via math.erfc (no cancellation in either tail)."""
    return np.vectorize(lambda v: 0.5 * math.erfc(-v / math.sqrt(2.0)))(z)


TEXTBOOK = {  # f(z, **options), written the naive way from PyTorch's documentation
    "identity": lambda z: z,
    "relu": lambda z: np.where(z > 0, z, 0.0),
    "leaky_relu": lambda z, negative_slope=0.01: np.where(z > 0, z, negative_slope * z),
    "elu": lambda z, alpha=1.0: np.where(z > 0, z, alpha * np.expm1(z)),
    "selu": lambda z: SELU_SCALE * np.where(z > 0, z, SELU_ALPHA * np.expm1(z)),
    "gelu": lambda z, approximate="none": (
        z * phi(z) if approximate == "none"
        else 0.5 * z * (1 + np.tanh(math.sqrt(2 / math.pi) * (z + 0.044715 * z**3)))
    ),
    "silu": lambda z: z / (1 + np.exp(-z)),
    "softplus": lambda z, beta=1.0, threshold=20.0: np.where(beta * z > threshold, z, np.log1p(np.exp(beta * z)) / beta),
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "tanh": lambda z: (np.exp(z) - np.exp(-z)) / (np.exp(z) + np.exp(-z)),
}

OPTIONS = {  # each activation's keyword options and their PyTorch defaults
    "leaky_relu": {"negative_slope": 0.01},
    "elu": {"alpha": 1.0},
    "gelu": {"approximate": "none"},
    "softplus": {"beta": 1.0, "threshold": 20.0},
}

VARIANTS = [(name, {}) for name in sorted(ACTIVATIONS)] + [
    ("leaky_relu", {"negative_slope": 0.2}),
    ("leaky_relu", {"negative_slope": 0.0}),
    ("leaky_relu", {"negative_slope": 1.5}),
    ("elu", {"alpha": 0.5}),
    ("elu", {"alpha": 2.0}),
    ("gelu", {"approximate": "tanh"}),
    ("softplus", {"beta": 2.0}),
    ("softplus", {"beta": 2.0, "threshold": 1.0}),  # linear above z = 0.5
]
IDS = [f"{name}{options or ''}" for name, options in VARIANTS]


def away_from_zero(rng, shape):
    """Values in ±[0.1, 3]: finite differences never straddle ReLU's kink."""
    return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.1, 3.0, shape)


def make(name, options):
    return ACTIVATIONS.get(name)(**options)


def test_every_activation_has_a_textbook_formula_here():
    assert set(TEXTBOOK) == set(ACTIVATIONS)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_options_are_the_keyword_defaults_and_become_attributes(name):
    cls = ACTIVATIONS.get(name)
    assert dict(cls.declaration.defaults) == OPTIONS.get(name, {})
    act = cls()
    for key, default in cls.declaration.defaults.items():
        assert getattr(act, key) == default


@pytest.mark.parametrize("name, options", VARIANTS, ids=IDS)
def test_forward_matches_the_textbook_formula_and_writes_into_out(name, options):
    z = away_from_zero(np.random.default_rng(0), (6, 5))
    out = np.empty_like(z)
    a = make(name, options).forward(z, out)
    assert a is out
    np.testing.assert_allclose(a, TEXTBOOK[name](z, **options), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("name, options", VARIANTS, ids=IDS)
def test_backward_matches_finite_differences(name, options):
    rng = np.random.default_rng(1)
    z = away_from_zero(rng, (6, 5))
    w = rng.standard_normal(z.shape)  # L = sum(w * f(z)), so dL/da = w
    act = make(name, options)

    numeric = numeric_gradient(lambda: float(np.vdot(w, act.forward(z, np.empty_like(z)))), z)
    a = act.forward(z, np.empty_like(z))
    grad = w.copy()
    analytic = act.backward(grad, z, a)

    assert analytic is grad  # multiplied in place
    assert rel_error_norm(analytic, numeric) < 1e-7


@pytest.mark.parametrize("name, options", VARIANTS, ids=IDS)
def test_backward_of_a_smaller_batch_uses_that_batchs_rows(name, options):
    act, rng = make(name, options), np.random.default_rng(2)
    big, small = away_from_zero(rng, (8, 3)), away_from_zero(rng, (3, 3))
    act.backward(np.ones_like(big), big, act.forward(big, np.empty_like(big)))
    a = act.forward(small, np.empty_like(small))
    fresh = make(name, options)
    expected = fresh.backward(np.ones_like(small), small, fresh.forward(small, np.empty_like(small)))
    np.testing.assert_array_equal(act.backward(np.ones_like(small), small, a), expected)


LIMITS = {  # f at -1e4, -800, 0, 800, 1e4 (options as in VARIANTS)
    "identity": lambda z: z,
    "relu": lambda z: np.maximum(z, 0),
    "leaky_relu": lambda z, negative_slope=0.01: np.where(z > 0, z, negative_slope * z),
    "elu": lambda z, alpha=1.0: np.where(z > 0, z, -alpha * (z < 0)),
    "selu": lambda z: SELU_SCALE * np.where(z > 0, z, -SELU_ALPHA * (z < 0)),
    "gelu": lambda z, **_: np.maximum(z, 0),
    "silu": lambda z: np.maximum(z, 0),
    "softplus": lambda z, beta=1.0, **_: np.where(z == 0, math.log(2) / beta, np.maximum(z, 0)),
    "sigmoid": lambda z: (np.sign(z) + 1) / 2,
    "tanh": np.sign,
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, options", VARIANTS, ids=IDS)
def test_huge_inputs_give_the_limits_without_warnings_and_keep_the_dtype(name, options, dtype):
    z = np.array([[-1e4, -800.0, -30.0, 0.0, 30.0, 800.0, 1e4]], dtype)
    act = make(name, options)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        a = act.forward(z, np.empty_like(z))
        grad = act.backward(np.ones_like(z), z, a)
    assert a.dtype == grad.dtype == dtype
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(grad))
    ends = [0, 1, 3, 5, 6]
    np.testing.assert_allclose(a[:, ends], LIMITS[name](z, **options)[:, ends].astype(dtype), rtol=1e-6)


@pytest.mark.parametrize("name, derivative", [
    ("relu", 0.0),
    ("leaky_relu", 0.01),
    ("elu", 1.0),
    ("selu", SELU_SCALE * SELU_ALPHA),
])
def test_the_derivative_at_the_kink_is_pytorchs(name, derivative):
    z = np.zeros((1, 1))
    act = make(name, {})
    assert act.backward(np.ones_like(z), z, act.forward(z, np.empty_like(z)))[0, 0] == pytest.approx(derivative, rel=1e-15)


def test_softplus_is_exactly_linear_above_its_threshold():
    z = np.array([[0.4, 0.5, 0.6, 7.0]])  # beta·z > 1 from 0.6 on
    act = make("softplus", {"beta": 2.0, "threshold": 1.0})
    a = act.forward(z, np.empty_like(z))
    grad = act.backward(np.ones_like(z), z, a.copy())
    np.testing.assert_array_equal(a[0, 2:], z[0, 2:])
    np.testing.assert_array_equal(grad[0, 2:], [1.0, 1.0])
    np.testing.assert_allclose(a[0, :2], np.log1p(np.exp(2 * z[0, :2])) / 2, rtol=1e-15)
    np.testing.assert_allclose(grad[0, :2], 1 / (1 + np.exp(-2 * z[0, :2])), rtol=1e-15)


def test_sigmoid_keeps_relative_precision_for_very_negative_inputs():
    z = np.array([-30.0, -100.0, -700.0])
    a = ACTIVATIONS.get("sigmoid")().forward(z, np.empty_like(z))
    np.testing.assert_allclose(a, np.exp(z) / (1.0 + np.exp(z)), rtol=1e-12)


def test_normal_cdf_matches_math_erfc_to_a_few_ulps_in_both_tails():
    z = np.linspace(-37.0, 9.0, 20001)
    out, tmp1, tmp2 = np.empty_like(z), np.empty_like(z), np.empty_like(z)
    normal_cdf(z, out, tmp1, tmp2)
    near = np.abs(z) < 6  # beyond, exp(-z²/2) inherits the rounding of z², relative 1e-16·z²/2
    np.testing.assert_allclose(out[near], phi(z[near]), rtol=2e-14)
    np.testing.assert_allclose(out, phi(z), rtol=1e-12, atol=0)


def test_an_unknown_option_is_a_config_error_naming_the_allowed_ones():
    with pytest.raises(OptionError, match=r"activation 'leaky_relu': unknown option 'negative_slop'; "
                                          r"allowed: negative_slope\. Did you mean 'negative_slope'\?"):
        make("leaky_relu", {"negative_slop": 0.2})
    with pytest.raises(OptionError, match="activation 'softplus': unknown option 'alpha'; allowed: beta, threshold"):
        make("softplus", {"alpha": 1.0})
    with pytest.raises(OptionError, match="activation 'relu': unknown option 'alpha'; it takes no options"):
        make("relu", {"alpha": 1.0})


@pytest.mark.parametrize("name, options, message", [
    ("gelu", {"approximate": "fast"}, "approximate must be 'none' or 'tanh' (got 'fast')"),
    ("softplus", {"beta": 0.0}, "beta must be a finite number > 0 (got 0.0)"),
    ("elu", {"alpha": float("nan")}, "alpha must be a finite number > 0 (got nan)"),
    ("elu", {"alpha": 0.0}, "alpha must be a finite number > 0 (got 0.0)"),
    ("leaky_relu", {"negative_slope": -0.5}, "negative_slope must be a finite number >= 0 (got -0.5)"),
    ("softplus", {"threshold": -1.0}, "threshold must be a finite number > 0 (got -1.0)"),
    ("leaky_relu", {"negative_slope": "steep"}, "negative_slope must be a finite number >= 0 (got 'steep')"),
    ("leaky_relu", {"negative_slope": True}, "negative_slope must be a finite number >= 0 (got True)"),
])
def test_impossible_option_values_are_config_errors(name, options, message):
    with pytest.raises(OptionError) as caught:
        make(name, options)
    assert str(caught.value) == f"activation {name!r}: {message}"


def test_numeric_options_become_python_floats_so_float32_stays_float32():
    act = make("leaky_relu", {"negative_slope": np.float64(0.2)})
    assert type(act.negative_slope) is float
    z = np.array([[-1.0, 2.0]], np.float32)
    a = act.forward(z, np.empty_like(z))
    assert a.dtype == act.backward(np.ones_like(z), z, a).dtype == np.float32


def test_a_non_finite_gradient_never_passes_a_tolerance():
    assert np.isnan(rel_error_norm(np.array([np.nan, 1.0]), np.array([np.nan, 1.0])))
    assert np.isnan(rel_error_norm(np.array([1.0]), np.array([np.inf])))
    assert rel_error_norm(np.zeros(2), np.zeros(2)) == 0.0
