import numpy as np
import pytest

from bptrain.errors import ConfigError
from bptrain.nn.optimizers import OPTIMIZERS
from bptrain.nn.params import Param

STEPS = 6
LRS = [0.1, 0.1, 0.05, 0.05, 0.02, 0.01]  # as a schedule would hand them out


def grads_for(theta, step):
    """A gradient depending on the weights and shrinking over steps (so AMSGrad's max matters)."""
    return (theta - 1.0) * 3.0 / (step + 1) + np.sin(theta + step)


def sgd_textbook(theta, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
    """torch.optim.SGD's documented algorithm."""
    b = None
    for t in range(1, STEPS + 1):
        g = grads_for(theta, t)
        if weight_decay:
            g = g + weight_decay * theta
        if momentum:
            b = g if t == 1 else momentum * b + (1 - dampening) * g
            g = g + momentum * b if nesterov else b
        theta = theta - LRS[t - 1] * g
    return theta


def adam_textbook(theta, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False):
    """torch.optim.Adam's documented algorithm (AMSGrad takes the max of v before bias correction)."""
    b1, b2 = betas
    m = v = v_max = np.zeros_like(theta)
    for t in range(1, STEPS + 1):
        g = grads_for(theta, t)
        if weight_decay:
            g = g + weight_decay * theta
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat = m / (1 - b1**t)
        if amsgrad:
            v_max = np.maximum(v_max, v)
            v_hat = v_max / (1 - b2**t)
        else:
            v_hat = v / (1 - b2**t)
        theta = theta - LRS[t - 1] * m_hat / (np.sqrt(v_hat) + eps)
    return theta


def start():
    return np.random.default_rng(0).standard_normal((3, 4))


def run(name, **hyper):
    """Our optimizer on two params (a matrix and a vector) for STEPS steps."""
    theta = start()
    params = [Param("W", theta[:, :3].copy(), np.empty((3, 3))), Param("b", theta[:, 3].copy(), np.empty(3))]
    opt = OPTIMIZERS.get(name)(params, **hyper)
    for t in range(1, STEPS + 1):
        for p in params:
            p.grad[...] = grads_for(p.value, t)
        grads = [p.grad.copy() for p in params]
        opt.step(LRS[t - 1])
        for p, g in zip(params, grads):
            np.testing.assert_array_equal(p.grad, g)  # step() leaves grads alone
    return np.column_stack([params[0].value, params[1].value])


SGD_CASES = [
    {},
    {"momentum": 0.9},
    {"momentum": 0.9, "dampening": 0.5},
    {"momentum": 0.9, "nesterov": True},
    {"weight_decay": 0.1},
    {"momentum": 0.8, "dampening": 0.3, "weight_decay": 0.1},
    {"momentum": 0.9, "nesterov": True, "weight_decay": 0.1},
]
ADAM_CASES = [
    {},
    {"weight_decay": 0.1},
    {"amsgrad": True},
    {"betas": (0.5, 0.9), "eps": 1e-3, "weight_decay": 0.05, "amsgrad": True},
]


@pytest.mark.parametrize("hyper", SGD_CASES, ids=str)
def test_sgd_follows_the_textbook_trajectory(hyper):
    np.testing.assert_allclose(run("sgd", **hyper), sgd_textbook(start(), **hyper), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("hyper", ADAM_CASES, ids=str)
def test_adam_follows_the_textbook_trajectory(hyper):
    np.testing.assert_allclose(run("adam", **hyper), adam_textbook(start(), **hyper), rtol=1e-12, atol=1e-14)


def test_the_trajectories_tell_the_options_apart():
    """Guards the two tests above: each option changes the result, so a missing one would be caught."""
    sgd = [run("sgd", **h) for h in SGD_CASES]
    adam = [run("adam", **h) for h in ADAM_CASES]
    for results in (sgd, adam):
        for i in range(len(results)):
            for j in range(i):
                assert np.abs(results[i] - results[j]).max() > 1e-6


def test_adam_first_step_moves_each_weight_by_lr_against_the_gradient_sign():
    p = Param("w", np.array([1.0, -2.0, 3.0]), np.array([0.5, -4.0, 1e-3]))
    OPTIMIZERS.get("adam")([p]).step(0.01)
    # m_hat = g, v_hat = g², so the step is lr * g / (|g| + eps)
    expected = [1.0, -2.0, 3.0] - 0.01 * p.grad / (np.abs(p.grad) + 1e-8)
    np.testing.assert_allclose(p.value, expected, rtol=1e-15)


def test_defaults_are_pytorchs():
    p = [Param("w", np.zeros(2), np.zeros(2))]
    sgd, adam = OPTIMIZERS.get("sgd")(p), OPTIMIZERS.get("adam")(p)
    assert (sgd.momentum, sgd.dampening, sgd.nesterov, sgd.weight_decay) == (0.0, 0.0, False, 0.0)
    assert (adam.beta1, adam.beta2, adam.eps, adam.weight_decay, adam.amsgrad) == (0.9, 0.999, 1e-8, 0.0, False)


@pytest.mark.parametrize("hyper", [
    {"nesterov": True},
    {"nesterov": True, "momentum": 0.9, "dampening": 0.1},
    {"momentum": -0.1},
])
def test_sgd_refuses_impossible_settings(hyper):
    with pytest.raises(ConfigError, match="sgd"):
        OPTIMIZERS.get("sgd")([Param("w", np.zeros(2), np.zeros(2))], **hyper)


@pytest.mark.parametrize("hyper", [{"betas": (0.9, 1.0)}, {"eps": -1.0}])
def test_adam_refuses_impossible_settings(hyper):
    with pytest.raises(ConfigError, match="adam"):
        OPTIMIZERS.get("adam")([Param("w", np.zeros(2), np.zeros(2))], **hyper)


@pytest.mark.parametrize("name, hyper, keys", [
    ("sgd", {}, {"t"}),
    ("sgd", {"momentum": 0.9}, {"t", "momentum_buffer.W", "momentum_buffer.b"}),
    ("adam", {}, {"t", "m.W", "m.b", "v.W", "v.b"}),
    ("adam", {"amsgrad": True}, {"t", "m.W", "m.b", "v.W", "v.b", "v_max.W", "v_max.b"}),
])
def test_state_dict_round_trip_resumes_exactly(name, hyper, keys):
    def make():
        rng = np.random.default_rng(5)
        params = [
            Param("W", rng.standard_normal((3, 2)), np.zeros((3, 2))),
            Param("b", rng.standard_normal(2), np.zeros(2)),
        ]
        return params, OPTIMIZERS.get(name)(params, **hyper)

    def steps(params, opt, ts):
        for t in ts:
            for p in params:
                p.grad[...] = grads_for(p.value, t)
            opt.step(0.05)

    params, opt = make()
    steps(params, opt, range(1, 4))
    state, values = opt.state_dict(), [p.value.copy() for p in params]
    assert set(state) == keys and state["t"] == 3 and state["t"].dtype == np.int64
    steps(params, opt, range(4, 7))

    resumed_params, resumed = make()
    for p, v in zip(resumed_params, values):
        p.value[...] = v
    resumed.load_state_dict(state)
    steps(resumed_params, resumed, range(4, 7))
    for p, q in zip(params, resumed_params):
        assert p.value.tobytes() == q.value.tobytes()


def test_load_state_dict_names_the_offending_key():
    p = [Param("w", np.zeros(2), np.zeros(2))]
    opt = OPTIMIZERS.get("adam")(p)
    state = opt.state_dict()
    with pytest.raises(ValueError, match="missing key 'v.w'"):
        opt.load_state_dict({k: a for k, a in state.items() if k != "v.w"})
    with pytest.raises(ValueError, match="'m.w' has shape"):
        opt.load_state_dict({**state, "m.w": np.zeros(3)})
    with pytest.raises(ValueError, match="unexpected key 'v_max.w'"):
        opt.load_state_dict({**state, "v_max.w": np.zeros(2)})
