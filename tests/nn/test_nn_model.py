import numpy as np
import pytest

from bptrain.errors import ConfigError
from bptrain.nn.activations import ACTIVATIONS
from bptrain.nn.gradcheck import gradcheck
from bptrain.nn.layers import Activation, Dense
from bptrain.nn.losses import LOSSES
from bptrain.nn.model import Sequential, build_mlp
from bptrain.nn.optimizers import OPTIMIZERS

N_IN, N_OUT, BATCH = 4, 3, 8


def mlp(activation="tanh", dtype="float64", seed=0, batch_size=BATCH, init="auto"):
    hidden = [{"units": units, "activation": activation, "init": init} for units in (6, 5)]
    return build_mlp(hidden, N_IN, N_OUT, dtype=dtype, seed_or_rng=seed, batch_size=batch_size)


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


def test_build_mlp_names_layers_in_order_and_ends_with_logits():
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
    with pytest.raises(ConfigError, match="float16"):
        mlp(dtype="float16")


def arrays_in(obj) -> list[np.ndarray]:
    """Every array held in obj, a list or a dict of them, at any depth."""
    if isinstance(obj, np.ndarray):
        return [obj]
    if isinstance(obj, dict):
        obj = list(obj.values())
    return [a for item in obj for a in arrays_in(item)] if isinstance(obj, (list, tuple)) else []


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss_name", sorted(LOSSES))
def test_training_keeps_every_array_in_the_model_dtype(dtype, loss_name):
    model, loss = mlp("sigmoid", dtype=dtype), LOSSES.get(loss_name)()
    optimizers = [
        OPTIMIZERS.get("adam")(model.params, weight_decay=0.01, amsgrad=True),
        OPTIMIZERS.get("sgd")(model.params, momentum=0.9, nesterov=True, weight_decay=0.01),
    ]
    x, y = data(loss_name, dtype=np.dtype(dtype))
    for opt in optimizers:
        for _ in range(3):
            _, grad = loss(model.forward(x), y)
            model.backward(grad)
            opt.step(0.01)

    checked = [a for p in model.params for a in (p.value, p.grad)]
    for owner in (*model.layers, loss, *optimizers):
        checked += arrays_in(vars(owner))
    for opt in optimizers:
        checked += [a for key, a in opt.state_dict().items() if key != "t"]
    assert len(checked) > 40
    assert {str(a.dtype) for a in checked if a.dtype.kind == "f"} == {dtype}


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
