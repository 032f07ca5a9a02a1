import math

import numpy as np
import pytest

from bptrain.nn.activations import ACTIVATIONS
from bptrain.nn.initializers import INITIALIZERS, auto_initializer

FAN_IN, FAN_OUT = 400, 300

# name -> (distribution, its bound or standard deviation) by the Glorot/He formulas
TEXTBOOK = {
    "glorot_uniform": ("uniform", math.sqrt(6 / (FAN_IN + FAN_OUT))),
    "glorot_normal": ("normal", math.sqrt(2 / (FAN_IN + FAN_OUT))),
    "he_uniform": ("uniform", math.sqrt(6 / FAN_IN)),
    "he_normal": ("normal", math.sqrt(2 / FAN_IN)),
    "lecun_uniform": ("uniform", math.sqrt(3 / FAN_IN)),
    "lecun_normal": ("normal", math.sqrt(1 / FAN_IN)),
    "orthogonal": ("orthogonal", 1 / math.sqrt(FAN_IN)),  # unit columns of FAN_IN entries
    "zeros": ("zeros", 0.0),
}


def draw(name, seed=0, dtype=np.float64):
    return INITIALIZERS.get(name)(np.random.default_rng(seed), FAN_IN, FAN_OUT, dtype)


def test_every_initializer_has_a_textbook_formula_here():
    assert set(TEXTBOOK) == set(INITIALIZERS)


@pytest.mark.parametrize("name", sorted(INITIALIZERS))
def test_draws_follow_the_textbook_distribution(name):
    w = draw(name)
    kind, scale = TEXTBOOK[name]
    assert w.shape == (FAN_IN, FAN_OUT)
    if kind == "uniform":
        assert np.abs(w).max() <= scale
        assert np.abs(w).max() > 0.999 * scale
        assert w.std() == pytest.approx(scale / math.sqrt(3), rel=0.01)
    elif kind in ("normal", "orthogonal"):
        assert w.std() == pytest.approx(scale, rel=0.01)
        assert abs(w.mean()) < 0.01 * scale
    else:
        assert not w.any()


@pytest.mark.parametrize("name", sorted(INITIALIZERS))
def test_same_seed_same_bytes_and_float32_is_float64_rounded(name):
    assert draw(name, seed=7).tobytes() == draw(name, seed=7).tobytes()
    w32 = draw(name, seed=7, dtype=np.float32)
    assert w32.dtype == np.float32
    assert w32.tobytes() == draw(name, seed=7).astype(np.float32).tobytes()
    if name != "zeros":
        assert draw(name, seed=8).tobytes() != draw(name, seed=7).tobytes()


@pytest.mark.parametrize("fan_in, fan_out", [(7, 3), (3, 7), (5, 5)])
def test_orthogonal_is_orthonormal_along_its_shorter_side(fan_in, fan_out):
    w = INITIALIZERS.get("orthogonal")(np.random.default_rng(0), fan_in, fan_out, np.float64)
    assert w.shape == (fan_in, fan_out) and w.flags.c_contiguous
    gram = w.T @ w if fan_in >= fan_out else w @ w.T
    np.testing.assert_allclose(gram, np.eye(min(fan_in, fan_out)), atol=1e-14)


def test_orthogonal_fixes_signs_so_r_has_a_positive_diagonal():
    """The draw is Q of the QR of a standard normal matrix with R's diagonal made positive,
    which makes it the unique such factor: recompute it here from the same draw."""
    a = np.random.default_rng(3).standard_normal((6, 4))
    w = INITIALIZERS.get("orthogonal")(np.random.default_rng(3), 6, 4, np.float64)
    r = w.T @ a  # a = Q R, so R = Q^T a
    np.testing.assert_allclose(np.tril(r, -1), 0.0, atol=1e-13)
    assert np.all(np.diagonal(r) > 0)


AUTO = {  # the rule in initializers' docstring, one line per activation
    "relu": "he_uniform",
    "leaky_relu": "he_uniform",
    "elu": "he_uniform",
    "gelu": "he_uniform",
    "silu": "he_uniform",
    "softplus": "he_uniform",
    "selu": "lecun_normal",
    "identity": "glorot_uniform",
    "sigmoid": "glorot_uniform",
    "tanh": "glorot_uniform",
}


def test_the_auto_rule_covers_every_activation():
    assert set(AUTO) == set(ACTIVATIONS)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_auto_initializer(activation):
    assert auto_initializer(activation) == AUTO[activation]
