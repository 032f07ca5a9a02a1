import numpy as np
import pytest

from bptrain.nn.errors import OptionError
from bptrain.nn.activations import ACTIVATIONS
from bptrain.nn.gradcheck import layer_gradcheck
from bptrain.nn.layers import Activation, BatchNorm, Dense, Dropout, LayerNorm
from bptrain.nn.layers import LAYERS

EXAMPLES = {  # one instance of each layer type build_model takes, with options that differ from the defaults
    "dense": lambda: Dense(3, bias_init=0.1),
    "activation": lambda: Activation("leaky_relu", negative_slope=0.2),
    "dropout": lambda: Dropout(0.3),
    "batch_norm": lambda: BatchNorm(momentum=0.2, eps=1e-3),
    "layer_norm": lambda: LayerNorm(eps=1e-3),
}
WIDTH = {"dense": 3}  # output width when not the input's 4


def built(layer, in_features=4, batch_size=5, dtype=np.float64, seed=0):
    layer.build(in_features, batch_size, dtype, np.random.default_rng(seed), "layers.0",
                noise_rng=np.random.default_rng(seed + 100))
    return layer


def randomized(layer, seed=9):
    """Norm layers start at gamma = 1, beta = 0; other values make gradient checks see more."""
    rng = np.random.default_rng(seed)
    for p in layer.params:
        if p.kind in ("scale", "shift"):
            p.value[...] = rng.uniform(0.5, 1.5, p.value.shape) * rng.choice([-1, 1], p.value.shape)
    return layer


def inputs(rows=5, cols=4, seed=1):
    return np.random.default_rng(seed).standard_normal((rows, cols))


def test_every_layer_has_an_example_here():
    assert set(EXAMPLES) == set(LAYERS)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_gradients_match_finite_differences_in_training(name):
    layer = randomized(built(EXAMPLES[name]()))
    errors = layer_gradcheck(layer, inputs())
    assert set(errors) == {"x"} | {p.name for p in layer.params}
    assert max(errors.values()) < 1e-7, errors


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_gradients_match_finite_differences_at_evaluation(name):
    layer = randomized(built(EXAMPLES[name]()))
    layer.forward(inputs(seed=7))  # batch norm: running statistics that are not 0 and 1
    errors = layer_gradcheck(layer, inputs(), train=False)
    assert max(errors.values()) < 1e-7, errors


ACTIVATION_CASES = [(name, {}) for name in sorted(ACTIVATIONS)] + [
    ("leaky_relu", {"negative_slope": 0.2}),
    ("gelu", {"approximate": "tanh"}),
    ("softplus", {"beta": 2.0, "threshold": 1.0}),
]


@pytest.mark.parametrize("name, options", ACTIVATION_CASES, ids=str)
def test_activation_layer_gradients_match_finite_differences(name, options):
    x = inputs()
    x += np.sign(x) * 0.1  # keep ReLU's kink out of reach of the differences
    layer = built(Activation(name, **options))
    assert layer.fn.__dict__.items() >= options.items()
    assert layer_gradcheck(layer, x)["x"] < 1e-7


def test_gradchecks_leave_dropout_and_batch_norm_as_they_were():
    drop, norm = built(Dropout(0.5)), built(BatchNorm())
    state = drop.noise_rng.bit_generator.state
    layer_gradcheck(drop, inputs())
    assert drop.noise_rng.bit_generator.state == state and not drop.freeze_mask
    layer_gradcheck(norm, inputs())
    np.testing.assert_array_equal(norm.running_mean, 0.0)
    np.testing.assert_array_equal(norm.running_var, 1.0)


def test_dense_computes_the_textbook_affine_map_and_gradients():
    layer, x = built(Dense(3, bias_init=0.5)), inputs()
    W, b = layer.W.value, layer.b.value
    assert layer.W.name == "layers.0.W" and layer.b.name == "layers.0.b"
    assert (layer.W.kind, layer.b.kind) == ("weight", "bias")
    assert W.shape == (4, 3) and np.all(b == 0.5)
    np.testing.assert_allclose(layer.forward(x), x @ W + b, rtol=1e-14)

    g = np.random.default_rng(2).standard_normal((5, 3))
    dx = layer.backward(g.copy())
    np.testing.assert_allclose(layer.W.grad, x.T @ g, rtol=1e-14)
    np.testing.assert_allclose(layer.b.grad, g.sum(axis=0), rtol=1e-14)
    np.testing.assert_allclose(dx, g @ W.T, rtol=1e-14)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_backward_overwrites_param_grads_instead_of_summing(name):
    layer, x = built(EXAMPLES[name]()), inputs()
    g = np.random.default_rng(2).standard_normal((5, WIDTH.get(name, 4)))
    layer.forward(x)
    layer.backward(g.copy())
    first = [p.grad.copy() for p in layer.params]
    layer.forward(x)
    layer.backward(g.copy())
    for p, grad in zip(layer.params, first):
        np.testing.assert_array_equal(p.grad, grad)


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


@pytest.mark.parametrize("name", ["activation", "dropout", "batch_norm", "layer_norm"])
def test_backward_may_return_the_gradient_it_is_given_overwritten(name):
    layer = built(EXAMPLES[name]())
    layer.forward(inputs())
    grad = np.ones((5, 4))
    assert layer.backward(grad) is grad


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_a_batch_larger_than_the_buffers_grows_them(name):
    small, big = built(EXAMPLES[name](), batch_size=2), built(EXAMPLES[name](), batch_size=9)
    x = inputs(rows=9)
    np.testing.assert_array_equal(small.forward(x), big.forward(x))
    g = np.random.default_rng(4).standard_normal((9, WIDTH.get(name, 4)))
    np.testing.assert_array_equal(small.backward(g.copy()), big.backward(g.copy()))


def test_dense_rejects_no_units_and_misspelled_initializers():
    with pytest.raises(OptionError) as caught:
        Dense(0)
    assert str(caught.value) == "dense: units must be an integer > 0 (got 0)"
    with pytest.raises(OptionError, match="Did you mean 'glorot_uniform'"):
        Dense(3, init="glorot_unifrom")
    with pytest.raises(OptionError, match="Did you mean 'relu'"):
        Activation("rellu")
    with pytest.raises(OptionError, match="unknown option 'alpha'"):
        Activation("relu", alpha=1.0)


# --- dropout ------------------------------------------------------------------------------------


def test_dropout_is_the_identity_at_evaluation_and_for_p_0():
    x = inputs()
    layer = built(Dropout(0.5))
    assert layer.forward(x, train=False) is x
    g = np.ones_like(x)
    assert layer.backward(g) is g and np.all(g == 1.0)
    assert built(Dropout(0.0)).forward(x) is x


def test_dropout_zeroes_entries_and_scales_the_rest_by_1_over_1_minus_p():
    x = inputs(rows=50, cols=40)
    layer = built(Dropout(0.25), in_features=40, batch_size=50)
    out = layer.forward(x)
    kept = out != 0.0
    np.testing.assert_allclose(out[kept], x[kept] / 0.75, rtol=1e-15)
    g = layer.backward(np.ones_like(x))
    np.testing.assert_array_equal(g, kept / 0.75)  # the same mask backward
    assert 0.2 < 1.0 - kept.mean() < 0.3


def test_dropout_masks_come_from_the_noise_generator_only():
    def mask(noise_seed, init_seed=0, dtype=np.float64):
        layer = Dropout(0.5)
        layer.build(4, 8, dtype, np.random.default_rng(init_seed), "layers.0", noise_rng=np.random.default_rng(noise_seed))
        return layer.forward(np.ones((8, 4), dtype)) != 0

    assert np.array_equal(mask(1), mask(1, init_seed=5))
    assert not np.array_equal(mask(1), mask(2))
    assert np.array_equal(mask(3, dtype=np.float32), mask(3, dtype=np.float32))


def test_dropout_preserves_the_mean():
    layer = built(Dropout(0.4), in_features=500, batch_size=400)
    out = layer.forward(np.ones((400, 500)))  # 200k entries: the mean's standard error is 0.0018
    assert out.mean() == pytest.approx(1.0, abs=0.01)


def test_dropout_draws_a_new_mask_each_training_forward_unless_frozen():
    layer, x = built(Dropout(0.5)), np.ones((5, 4))
    first = layer.forward(x).copy()
    assert not np.array_equal(layer.forward(x), first)
    layer.freeze_mask = True
    frozen = layer.forward(x).copy()
    np.testing.assert_array_equal(layer.forward(x), frozen)
    layer.freeze_mask = False
    assert not np.array_equal(layer.forward(x), frozen)


def test_dropout_needs_a_noise_generator_to_train_but_not_to_evaluate():
    layer = Dropout(0.5)
    layer.build(4, 5, np.float64, np.random.default_rng(0), "layers.0")
    x = inputs()
    assert layer.forward(x, train=False) is x
    with pytest.raises(ValueError, match="noise_rng"):
        layer.forward(x)


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_dropout_p_must_be_a_probability_below_1(p):
    with pytest.raises(OptionError) as caught:
        Dropout(p)
    assert str(caught.value) == f"dropout: p must be a number in [0, 1) (got {p!r})"


# --- batch norm and layer norm ------------------------------------------------------------------


def test_batch_norm_training_forward_is_the_textbook_formula():
    layer, x = randomized(built(BatchNorm(eps=1e-3))), inputs()
    gamma, beta = layer.gamma.value, layer.beta.value
    expected = (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-3) * gamma + beta  # biased variance
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-13)
    assert [(p.name, p.kind) for p in layer.params] == [("layers.0.gamma", "scale"), ("layers.0.beta", "shift")]
    assert set(layer.buffers) == {"layers.0.running_mean", "layers.0.running_var"}


def test_batch_norm_running_statistics_move_as_in_torch():
    """torch.nn.BatchNorm1d: r ← (1 - momentum)·r + momentum·s, with the unbiased variance for s."""
    layer = built(BatchNorm(momentum=0.3), batch_size=6)
    mean, var = np.zeros(4), np.ones(4)
    for seed, rows in [(1, 6), (2, 6), (3, 3)]:
        x = inputs(rows=rows, seed=seed)
        layer.forward(x)
        mean = 0.7 * mean + 0.3 * x.mean(0)
        var = 0.7 * var + 0.3 * x.var(0, ddof=1)
        np.testing.assert_allclose(layer.running_mean, mean, rtol=1e-14)
        np.testing.assert_allclose(layer.running_var, var, rtol=1e-14)
        assert layer.buffers["layers.0.running_mean"] is layer.running_mean


def test_batch_norm_evaluation_uses_the_running_statistics_and_changes_nothing():
    layer = randomized(built(BatchNorm(eps=1e-4)))
    layer.forward(inputs(seed=3))
    mean, var = layer.running_mean.copy(), layer.running_var.copy()
    x = inputs(rows=1, seed=4)  # one row is fine at evaluation
    expected = (x - mean) / np.sqrt(var + 1e-4) * layer.gamma.value + layer.beta.value
    np.testing.assert_allclose(layer.forward(x, train=False), expected, rtol=1e-13)
    np.testing.assert_array_equal(layer.running_mean, mean)
    np.testing.assert_array_equal(layer.running_var, var)


def test_batch_norm_refuses_to_train_on_one_row():
    with pytest.raises(OptionError, match="at least 2 rows in a training batch"):
        built(BatchNorm()).forward(inputs(rows=1))


def test_layer_norm_is_the_textbook_formula_in_training_and_evaluation():
    layer, x = randomized(built(LayerNorm(eps=1e-3))), inputs()
    mean, var = x.mean(1, keepdims=True), x.var(1, keepdims=True)
    expected = (x - mean) / np.sqrt(var + 1e-3) * layer.gamma.value + layer.beta.value
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-13)
    np.testing.assert_allclose(layer.forward(x, train=False), expected, rtol=1e-13)
    assert layer.buffers == {}


@pytest.mark.parametrize("make, message", [
    (lambda: BatchNorm(momentum=1.5), r"batch_norm: momentum must be a number in \(0, 1\] \(got 1.5\)"),
    (lambda: BatchNorm(momentum=0.0), r"batch_norm: momentum must be a number in \(0, 1\] \(got 0.0\)"),
    (lambda: BatchNorm(eps=0.0), r"batch_norm: eps must be a number > 0 \(got 0.0\)"),
    (lambda: LayerNorm(eps=-1.0), r"layer_norm: eps must be a number > 0 \(got -1.0\)"),
])
def test_norm_options_are_checked(make, message):
    with pytest.raises(OptionError, match=message):
        make()
