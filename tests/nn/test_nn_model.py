import numpy as np
import pytest

from bptrain.nn.errors import OptionError
from bptrain.nn.activations import ACTIVATIONS
from bptrain.nn.gradcheck import gradcheck
from bptrain.nn.layers import Activation, BatchNorm, Dense, Dropout, LayerNorm
from bptrain.nn.losses import LOSSES
from bptrain.nn.layers import LAYERS
from bptrain.nn.model import Sequential, build_model
from bptrain.nn.optimizers import OPTIMIZERS
from bptrain.nn.regularizers import Regularizer

N_IN, N_OUT, BATCH = 4, 3, 8


def mlp(activation="tanh", dtype="float64", seed=0, batch_size=BATCH, init="auto"):
    hidden = [{"units": units, "activation": activation, "init": init} for units in (6, 5)]
    return build_model(hidden, N_IN, N_OUT, dtype=dtype, rng=np.random.default_rng(seed), batch_size=batch_size)


def data(loss_name, n=BATCH, dtype=np.float64, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, N_IN)).astype(dtype)
    if loss_name == "cross_entropy":
        return x, rng.integers(0, N_OUT, n)
    if loss_name == "binary_cross_entropy":
        return x, rng.integers(0, 2, (n, N_OUT)).astype(dtype)
    return x, rng.standard_normal((n, N_OUT)).astype(dtype)


@pytest.mark.parametrize("loss_name", sorted(LOSSES))
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_whole_mlp_backprop_matches_finite_differences(activation, loss_name):
    model = mlp(activation)
    before = model.state_dict()
    errors = gradcheck(model, LOSSES.get(loss_name)(), *data(loss_name))
    assert set(errors) == {p.name for p in model.params}
    assert max(errors.values()) < 1e-6, errors
    for name, value in model.state_dict().items():
        assert value.tobytes() == before[name].tobytes()  # perturbations undone exactly


def test_gradcheck_catches_a_wrong_gradient():
    class HalfGradient(Dense):
        def backward(self, grad):
            dx = super().backward(grad)
            self.W.grad *= 0.5
            return dx

    model = Sequential([HalfGradient(3)]).build(N_IN, BATCH, "float64", np.random.default_rng(0))
    errors = gradcheck(model, LOSSES.get("mse")(), *data("mse"))
    assert errors["layers.0.W"] > 0.1 and errors["layers.0.b"] < 1e-6


def test_gradcheck_needs_float64():
    with pytest.raises(ValueError, match="float64"):
        gradcheck(mlp(dtype="float32"), LOSSES.get("mse")(), *data("mse", dtype=np.float32))


def test_build_model_names_layers_in_order_and_ends_with_logits():
    model = mlp("relu")
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Dense", "Activation", "Dense", "Activation", "Dense"]
    assert [p.name for p in model.params] == [
        "layers.0.W", "layers.0.b", "layers.2.W", "layers.2.b", "layers.4.W", "layers.4.b",
    ]
    assert [p.value.shape for p in model.params] == [(4, 6), (6,), (6, 5), (5,), (5, 3), (3,)]
    assert [layer.init for layer in model.layers[::2]] == ["he_uniform", "he_uniform", "glorot_uniform"]
    assert model.forward(data("mse")[0]).shape == (BATCH, N_OUT)


def test_same_seed_gives_identical_initial_weights():
    def weights(seed_or_rng):
        return b"".join(p.value.tobytes() for p in mlp(seed=seed_or_rng).params)

    assert weights(3) == weights(3) == weights(np.random.default_rng(3))
    assert weights(3) != weights(4)


def test_build_refuses_other_dtypes():
    with pytest.raises(OptionError, match="float16"):
        mlp(dtype="float16")


def arrays_in(obj, seen=None) -> list[np.ndarray]:
    """Every array that obj holds: itself, in lists, tuples and dicts, and in the attributes of
    bptrain objects (layers, their activation functions, losses, optimizers), at any depth."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return [obj]
    if isinstance(obj, dict):
        return [a for value in obj.values() for a in arrays_in(value, seen)]
    if isinstance(obj, (list, tuple)):
        return [a for item in obj for a in arrays_in(item, seen)]
    if type(obj).__module__.startswith("bptrain."):
        attrs = vars(obj) if hasattr(obj, "__dict__") else {k: getattr(obj, k) for k in obj.__slots__}
        return arrays_in(attrs, seen)
    return []


EVERY_LAYER = [  # every layer type, every activation, dropout both ways
    *[{"units": 5, "activation": name} for name in sorted(ACTIVATIONS)],
    {"type": "dense", "units": 6, "activation": "gelu", "activation_options": {"approximate": "tanh"},
     "init": "orthogonal", "bias_init": 0.1, "dropout": 0.2},
    {"type": "batch_norm", "momentum": 0.2},
    {"type": "activation", "activation": "leaky_relu", "activation_options": {"negative_slope": 0.1}},
    {"type": "layer_norm", "eps": 1e-4},
    {"type": "dropout", "p": 0.3},
    {"type": "dense", "units": 5, "activation": "softplus", "activation_options": {"beta": 2.0}},
]


def every_layer_model(dtype="float64", seed=0, batch_size=BATCH):
    return build_model(EVERY_LAYER, N_IN, N_OUT, dtype=dtype, rng=np.random.default_rng(seed),
                       noise_rng=np.random.default_rng(seed + 1), batch_size=batch_size)


def test_the_every_layer_model_has_every_layer_type():
    assert {spec.get("type", "dense") for spec in EVERY_LAYER} == set(LAYERS)
    assert {type(layer) for layer in every_layer_model().layers} == {Dense, Activation, Dropout, BatchNorm, LayerNorm}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss_name", sorted(LOSSES))
def test_training_keeps_every_array_in_the_model_dtype(dtype, loss_name):
    model, loss = every_layer_model(dtype), LOSSES.get(loss_name)()
    regularizer = Regularizer(model.params, l1=1e-3, l2=1e-2, include_bias=True)
    optimizers = [OPTIMIZERS.get(name)(model.params) for name in sorted(OPTIMIZERS)]
    x, y = data(loss_name, dtype=np.dtype(dtype))
    for opt in optimizers:
        for _ in range(3):
            _, grad = loss(model.forward(x), y)
            model.backward(grad)
            regularizer.add_grad()
            opt.step(0.01)
    model.forward(x, train=False)
    assert type(regularizer.value()) is float

    checked = [a for p in model.params for a in (p.value, p.grad)] + list(model.buffers.values())
    for owner in (*model.layers, loss, regularizer, *optimizers):
        checked += arrays_in(owner)
    for opt in optimizers:  # 0-d entries are step counters and scalar products, not per-param state
        checked += [a for a in opt.state_dict().values() if a.ndim > 0]
    assert len(checked) > 300
    assert {str(a.dtype) for a in checked if a.dtype.kind == "f"} == {dtype}
    assert any(a.dtype.kind == "f" for a in arrays_in(model.layers[1].fn))  # activation scratch is walked


def test_forward_returns_views_of_owned_buffers():
    model, (x, _) = mlp(), data("mse")
    out1 = model.forward(x)
    out2 = model.forward(x[:5])
    assert np.shares_memory(out1, out2) and out2.shape == (5, N_OUT)


def test_eval_batches_larger_than_the_training_batch_give_the_same_predictions():
    model, (x, _) = mlp(batch_size=2), data("mse", n=20)
    whole = model.forward(x, train=False).copy()
    rows = np.vstack([model.forward(x[i : i + 2], train=False).copy() for i in range(0, 20, 2)])
    np.testing.assert_allclose(whole, rows, rtol=1e-13)


def test_state_dict_round_trip():
    model, other = mlp(seed=0), mlp(seed=1)
    state = model.state_dict()
    assert set(state) == {p.name for p in model.params}
    assert not np.shares_memory(state["layers.0.W"], model.params[0].value)  # copies
    other.load_state_dict(state)
    for p in other.params:
        assert p.value.tobytes() == state[p.name].tobytes()
    x = data("mse")[0]
    np.testing.assert_array_equal(other.forward(x), model.forward(x).copy())


def test_load_state_dict_names_the_offending_key_and_changes_nothing():
    model = mlp()
    before = model.state_dict()
    state = mlp(seed=1).state_dict()
    with pytest.raises(ValueError, match="missing key 'layers.2.b'"):
        model.load_state_dict({k: v for k, v in state.items() if k != "layers.2.b"})
    with pytest.raises(ValueError, match=r"'layers.4.W' has shape \(5, 2\), expected \(5, 3\)"):
        model.load_state_dict({**state, "layers.4.W": np.zeros((5, 2))})
    with pytest.raises(ValueError, match="unexpected key 'layers.6.W'"):
        model.load_state_dict({**state, "layers.6.W": np.zeros((3, 3))})
    for name, value in model.state_dict().items():
        assert value.tobytes() == before[name].tobytes()


def test_sequential_runs_layers_forward_then_backward_in_reverse():
    model = Sequential([Dense(3), Activation("relu"), Dense(2)])
    model.build(4, 5, "float64", np.random.default_rng(0))
    x = data("mse", n=5)[0]
    W0, b0, W2, b2 = (p.value for p in model.params)
    z = x @ W0 + b0
    np.testing.assert_allclose(model.forward(x), np.maximum(z, 0) @ W2 + b2, rtol=1e-13)
    g = np.ones((5, 2))
    np.testing.assert_allclose(model.backward(g.copy()), ((g @ W2.T) * (z > 0)) @ W0.T, rtol=1e-13)


# --- build_model, buffers, noise ----------------------------------------------------------------


def test_build_model_expands_dense_dicts_and_names_layers_in_order():
    specs = [
        {"type": "dense", "units": 6, "activation": "selu", "dropout": 0.5},
        {"type": "batch_norm"},
        {"units": 5, "activation": "tanh", "init": "he_normal", "bias_init": 0.25},
        {"type": "layer_norm", "eps": 1e-3},
        {"type": "dropout", "p": 0.1},
        {"type": "activation", "activation": "elu", "activation_options": {"alpha": 0.5}},
    ]
    noise = np.random.default_rng(1)
    model = build_model(specs, N_IN, N_OUT, rng=np.random.default_rng(0), noise_rng=noise, batch_size=BATCH,
                        output_init="zeros")
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Dense", "Activation", "Dropout", "BatchNorm", "Dense", "Activation", "LayerNorm",
                     "Dropout", "Activation", "Dense"]
    assert model.dtype == np.float32 and model.noise_rng is noise
    dense = [layer for layer in model.layers if isinstance(layer, Dense)]
    assert [layer.init for layer in dense] == ["lecun_normal", "he_normal", "zeros"]
    assert np.all(dense[1].b.value == 0.25) and not dense[2].W.value.any()
    assert (model.layers[2].p, model.layers[7].p) == (0.5, 0.1)
    assert (model.layers[3].momentum, model.layers[3].eps, model.layers[6].eps) == (0.1, 1e-5, 1e-3)
    assert model.layers[8].fn.alpha == 0.5
    assert [p.name for p in model.params] == [
        "layers.0.W", "layers.0.b", "layers.3.gamma", "layers.3.beta", "layers.4.W", "layers.4.b",
        "layers.6.gamma", "layers.6.beta", "layers.9.W", "layers.9.b",
    ]
    assert [p.kind for p in model.params] == ["weight", "bias", "scale", "shift"] * 2 + ["weight", "bias"]
    assert list(model.buffers) == ["layers.3.running_mean", "layers.3.running_var"]
    assert model.forward(data("mse")[0]).shape == (BATCH, N_OUT)


@pytest.mark.parametrize("spec, message", [
    ({"type": "conv", "units": 3},
     "layers[0]: unknown layer type 'conv'; choose from activation, batch_norm, dense, dropout, layer_norm."),
    ({"units": 3, "activaton": "relu"},
     "layers[0]: dense: unknown option 'activaton'; allowed: units, activation, activation_options, init, bias_init, "
     "dropout. Did you mean 'activation'?"),
    ({"activation": "relu"}, "layers[0]: dense: units is required"),
    ({"type": "dropout", "p": 1.0}, "layers[0]: dropout: p must be a number in [0, 1) (got 1.0)"),
    ({"units": 3, "activation": "rleu"},
     "layers[0]: dense: unknown activation 'rleu'; choose from elu, gelu, identity, leaky_relu, relu, selu, sigmoid, "
     "silu, softplus, tanh. Did you mean 'relu'?"),
    ({"units": 3, "activation": "relu", "activation_options": {"alpha": 1.0}},
     "layers[0]: activation 'relu': unknown option 'alpha'; it takes no options."),
])
def test_build_model_refuses_bad_layer_dicts(spec, message):
    with pytest.raises(OptionError) as caught:
        build_model([spec], N_IN, N_OUT, rng=np.random.default_rng(0), batch_size=BATCH)
    assert str(caught.value) == message


@pytest.mark.parametrize("loss_name", sorted(LOSSES))
def test_every_layer_model_with_a_regularizer_matches_finite_differences(loss_name):
    model = every_layer_model()
    rng = np.random.default_rng(5)
    for p in model.params:  # leave the initial gamma = 1, beta = 0 of the norm layers
        if p.kind in ("scale", "shift"):
            p.value[...] = rng.uniform(0.5, 1.5, p.value.shape)
    model.forward(data(loss_name, seed=9)[0])  # running statistics that are not 0 and 1
    regularizer = Regularizer(model.params, l1=0.01, l2=0.05, include_bias=True)
    before, noise = model.state_dict(), model.noise_rng.bit_generator.state

    errors = gradcheck(model, LOSSES.get(loss_name)(), *data(loss_name), regularizer=regularizer)

    assert set(errors) == {p.name for p in model.params}
    assert max(errors.values()) < 1e-6, errors
    after = model.state_dict()
    assert after.keys() == before.keys() and any(".running_" in key for key in after)
    for name, value in after.items():
        assert value.tobytes() == before[name].tobytes(), name  # params and running statistics restored
    assert model.noise_rng.bit_generator.state == noise
    assert not any(getattr(layer, "freeze_mask", False) for layer in model.layers)


def test_gradcheck_counts_the_regularizer_in_the_objective():
    model, (x, y) = mlp(), data("mse")
    loss, regularizer = LOSSES.get("mse")(), Regularizer(model.params, l2=10.0)
    _, grad = loss(model.forward(x), y)
    model.backward(grad)
    plain = {p.name: p.grad.copy() for p in model.params}

    errors = gradcheck(model, loss, x, y, regularizer=regularizer)

    assert max(errors.values()) < 1e-6
    for p in model.params:  # the grads left behind hold the penalty's part, 2·l2·W, on weights only
        expected = plain[p.name] + (20.0 * p.value if p.kind == "weight" else 0.0)
        np.testing.assert_allclose(p.grad, expected, rtol=1e-12)


def test_state_dict_holds_params_and_buffers_and_round_trips_them():
    model, other = every_layer_model(seed=0), every_layer_model(seed=1)
    model.forward(data("mse")[0])  # move the running statistics
    state = model.state_dict()
    assert set(state) == {p.name for p in model.params} | set(model.buffers)
    other.load_state_dict(state)
    for name, value in other.state_dict().items():
        assert value.tobytes() == state[name].tobytes()
    x = data("mse", seed=3)[0]
    np.testing.assert_array_equal(other.forward(x, train=False), model.forward(x, train=False).copy())
    with pytest.raises(ValueError, match="missing key 'layers.23.running_var'"):
        other.load_state_dict({k: v for k, v in state.items() if k != "layers.23.running_var"})


def test_evaluation_is_deterministic_and_draws_no_noise():
    model, (x, _) = every_layer_model(), data("mse")
    model.forward(x)
    state = model.noise_rng.bit_generator.state
    first = model.forward(x, train=False).copy()
    np.testing.assert_array_equal(model.forward(x, train=False), first)
    assert model.noise_rng.bit_generator.state == state


def test_same_seeds_give_the_same_training_forward_with_dropout():
    x = data("mse")[0]
    a, b, c = every_layer_model(seed=2), every_layer_model(seed=2), every_layer_model(seed=3)
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    assert not np.array_equal(a.forward(x), c.forward(x))


def test_keys_given_as_none_take_their_defaults():
    flat = {"type": "dense", "units": 3, "activation": "tanh", "activation_options": None, "init": None,
            "bias_init": None, "dropout": None, "p": None, "momentum": None, "eps": None}
    model = build_model([flat], N_IN, N_OUT, rng=np.random.default_rng(0), batch_size=BATCH)
    assert [type(layer).__name__ for layer in model.layers] == ["Dense", "Activation", "Dense"]
    assert model.layers[0].init == "glorot_uniform" and not model.layers[0].b.value.any()


@pytest.mark.parametrize(
    "first",
    [{"type": "dense", "units": 6, "activation": "tanh"}, {"type": "batch_norm"}, {"type": "layer_norm"}, {"type": "activation", "activation": "relu"}],
)
def test_param_grads_equal_backwards_parameter_gradients_bit_for_bit(first):
    # training calls param_grads, which skips the input gradient of the first layer: the parameter
    # gradients must be exactly backward's, whatever the first layer is
    layers = [first, {"type": "dense", "units": 5, "activation": "relu"}]
    x = np.random.default_rng(1).normal(size=(9, 4))
    grad = np.random.default_rng(2).normal(size=(9, 3))
    grads = []
    for method in ("backward", "param_grads"):
        model = build_model(layers, 4, 3, dtype="float64", rng=np.random.default_rng(0), batch_size=9)
        model.forward(x, train=True)
        getattr(model, method)(grad.copy())
        grads.append({p.name: p.grad.copy() for p in model.params})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        np.testing.assert_array_equal(grads[1][name], grads[0][name], err_msg=name)


def test_param_grads_leaves_the_first_dense_layers_input_gradient_uncomputed():
    model = build_model([{"type": "dense", "units": 5}], 4, 2, dtype="float64", rng=np.random.default_rng(0), batch_size=3)
    first = model.layers[0]
    model.forward(np.ones((3, 4)), train=True)
    first._dx.fill(7.0)
    model.param_grads(np.ones((3, 2)))
    assert (first._dx == 7.0).all()
    model.backward(np.ones((3, 2)))
    assert not (first._dx == 7.0).all()


def test_a_built_model_packs_its_params_for_a_one_pass_optimizer():
    """Values and grads lie back to back in one array each, in param order, with the values the
    layers drew; the optimizer then sees the params as one."""
    model, again = mlp(seed=4), mlp(seed=4)
    params = model.params
    for kind in ("value", "grad"):
        arrays = [getattr(p, kind) for p in params]
        base = arrays[0].base
        assert base is not None and base.size == sum(a.size for a in arrays)
        assert all(a.base is base for a in arrays)
        assert np.array_equal(np.concatenate([a.ravel() for a in arrays]), base)
    optimizer = OPTIMIZERS.get("adam")(params)
    assert len(optimizer._units) == 1 and optimizer._units[0].value.size == sum(p.value.size for p in params)
    x, y = data("cross_entropy")
    logits = model.forward(x)
    _, grad = LOSSES.get("cross_entropy")()(logits, y)
    model.param_grads(grad)  # each layer writes its grads into its part of the shared array
    assert np.count_nonzero(optimizer._units[0].grad) > 0
    assert [p.value.tobytes() for p in params] == [p.value.tobytes() for p in again.params]
