import math

import numpy as np
import pytest

from bptrain.nn.initializers import INITIALIZERS, auto_initializer

FAN_IN, FAN_OUT = 400, 300

# name -> (distribution, its bound or standard deviation) by the Glorot/He formulas
TEXTBOOK = {
    "glorot_uniform": ("uniform", math.sqrt(6 / (FAN_IN + FAN_OUT))),
    "glorot_normal": ("normal", math.sqrt(2 / (FAN_IN + FAN_OUT))),
    "he_uniform": ("uniform", math.sqrt(6 / FAN_IN)),
    "he_normal": ("normal", math.sqrt(2 / FAN_IN)),
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
    elif kind == "normal":
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


@pytest.mark.parametrize("activation, expected", [
    ("relu", "he_uniform"),
    ("tanh", "glorot_uniform"),
    ("sigmoid", "glorot_uniform"),
    ("identity", "glorot_uniform"),
])
def test_auto_initializer(activation, expected):
    assert auto_initializer(activation) == expected
