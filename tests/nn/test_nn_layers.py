import numpy as np
import pytest

from bptrain.errors import ConfigError
from bptrain.nn.activations import ACTIVATIONS
from bptrain.nn.gradcheck import layer_gradcheck
from bptrain.nn.layers import LAYERS, Activation, Dense

EXAMPLES = {  # one instance of each registered layer
    "dense": lambda: Dense(3, bias_init=0.1),
    "activation": lambda: Activation("tanh"),
}


def built(layer, in_features=4, batch_size=5, dtype=np.float64, seed=0):
    layer.build(in_features, batch_size, dtype, np.random.default_rng(seed), "layers.0")
    return layer


def inputs(rows=5, cols=4, seed=1):
    return np.random.default_rng(seed).standard_normal((rows, cols))


def test_every_layer_has_an_example_here():
    assert set(EXAMPLES) == set(LAYERS)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_gradients_match_finite_differences(name):
    errors = layer_gradcheck(built(EXAMPLES[name]()), inputs())
    assert set(errors) == {"x"} | {p.name for p in built(EXAMPLES[name]()).params}
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_layer_gradients_match_finite_differences(name):
    x = inputs()
    x += np.sign(x) * 0.1  # keep ReLU's kink out of reach of the differences
    assert layer_gradcheck(built(Activation(name)), x)["x"] < 1e-6


def test_dense_computes_the_textbook_affine_map_and_gradients():
    layer, x = built(Dense(3, bias_init=0.5)), inputs()
    W, b = layer.W.value, layer.b.value
    assert layer.W.name == "layers.0.W" and layer.b.name == "layers.0.b"
    assert W.shape == (4, 3) and np.all(b == 0.5)
    np.testing.assert_allclose(layer.forward(x), x @ W + b, rtol=1e-14)

    g = np.random.default_rng(2).standard_normal((5, 3))
    dx = layer.backward(g.copy())
    np.testing.assert_allclose(layer.W.grad, x.T @ g, rtol=1e-14)
    np.testing.assert_allclose(layer.b.grad, g.sum(axis=0), rtol=1e-14)
    np.testing.assert_allclose(dx, g @ W.T, rtol=1e-14)


def test_backward_overwrites_param_grads_instead_of_summing():
    layer, x = built(Dense(3)), inputs()
    g = np.random.default_rng(2).standard_normal((5, 3))
    layer.forward(x)
    layer.backward(g.copy())
    first = layer.W.grad.copy(), layer.b.grad.copy()
    layer.forward(x)
    layer.backward(g.copy())
    np.testing.assert_array_equal(layer.W.grad, first[0])
    np.testing.assert_array_equal(layer.b.grad, first[1])


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_forward_returns_a_view_of_an_owned_buffer(name):
    layer = built(EXAMPLES[name]())
    out1 = layer.forward(inputs(seed=1))
    saved = out1.copy()
    out2 = layer.forward(inputs(rows=3, seed=2))  # a smaller last batch: a row slice
    assert out2.shape[0] == 3 and np.shares_memory(out1, out2)
    assert not np.array_equal(out1[:3], saved[:3])  # overwritten: valid only until the next forward


def test_dense_backward_returns_a_view_of_an_owned_buffer():
    layer = built(Dense(3))
    layer.forward(inputs(rows=5))
    dx1 = layer.backward(np.ones((5, 3)))
    layer.forward(inputs(rows=3))
    dx2 = layer.backward(np.ones((3, 3)))
    assert dx2.shape == (3, 4) and np.shares_memory(dx1, dx2)


def test_activation_backward_overwrites_the_gradient_it_is_given():
    layer = built(Activation("tanh"))
    a = layer.forward(inputs()).copy()
    grad = np.ones_like(a)
    assert layer.backward(grad) is grad
    np.testing.assert_allclose(grad, 1.0 - a * a, rtol=1e-14)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_a_batch_larger_than_the_buffers_grows_them(name):
    small, big = built(EXAMPLES[name](), batch_size=2), built(EXAMPLES[name](), batch_size=9)
    x = inputs(rows=9)
    np.testing.assert_array_equal(small.forward(x), big.forward(x))
    g = np.random.default_rng(4).standard_normal((9, 3 if name == "dense" else 4))
    np.testing.assert_array_equal(small.backward(g.copy()), big.backward(g.copy()))


def test_dense_rejects_no_units_and_misspelled_initializers():
    with pytest.raises(ConfigError, match="at least 1 unit"):
        Dense(0)
    with pytest.raises(ConfigError, match="Did you mean 'glorot_uniform'"):
        Dense(3, init="glorot_unifrom")
    with pytest.raises(ConfigError, match="Did you mean 'relu'"):
        Activation("rellu")
