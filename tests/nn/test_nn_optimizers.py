import inspect
import math
import tracemalloc

import numpy as np
import pytest

from bptrain.nn.errors import OptionError
from bptrain.nn.optimizers import OPTIMIZERS, Optimizer
from bptrain.nn.params import flat, pack
from bptrain.nn.params import Param

STEPS = 6
LRS = [0.1, 0.1, 0.05, 0.05, 0.02, 0.01]  # as a schedule would hand them out


def grads_for(theta, step):
    """A gradient depending on the weights and shrinking over steps (so AMSGrad's max matters)."""
    return (theta - 1.0) * 3.0 / (step + 1) + np.sin(theta + step)


# --- the textbook algorithms, as PyTorch documents them, in plain float64 numpy --------------------


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


def adam_textbook(theta, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, decoupled=False):
    """torch.optim.Adam's documented algorithm (AMSGrad takes the max of v before bias correction);
    with decoupled=True, torch.optim.AdamW's (theta shrinks by lr * weight_decay first)."""
    b1, b2 = betas
    m = v = v_max = np.zeros_like(theta)
    for t in range(1, STEPS + 1):
        lr = LRS[t - 1]
        g = grads_for(theta, t)
        if decoupled:
            theta = theta * (1 - lr * weight_decay)
        elif weight_decay:
            g = g + weight_decay * theta
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat = m / (1 - b1**t)
        if amsgrad:
            v_max = np.maximum(v_max, v)
            v_hat = v_max / (1 - b2**t)
        else:
            v_hat = v / (1 - b2**t)
        theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
    return theta


def adamw_textbook(theta, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False):
    return adam_textbook(theta, betas, eps, weight_decay, amsgrad, decoupled=True)


def nadam_textbook(theta, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, momentum_decay=4e-3,
                   decoupled_weight_decay=False):
    """torch.optim.NAdam's documented algorithm: mu_t = b1 (1 - 0.5 * 0.96^(t psi))."""
    b1, b2 = betas
    m = v = np.zeros_like(theta)
    mu_product = 1.0
    for t in range(1, STEPS + 1):
        lr = LRS[t - 1]
        g = grads_for(theta, t)
        if decoupled_weight_decay:
            theta = theta * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * theta
        mu = b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
        mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
        mu_product *= mu
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        v_hat = v / (1 - b2**t)
        m_hat = mu_next * m / (1 - mu_product * mu_next) + (1 - mu) * g / (1 - mu_product)
        theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
    return theta


def adamax_textbook(theta, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    """torch.optim.Adamax's documented algorithm (eps inside the max, as torch's code has it)."""
    b1, b2 = betas
    m = u = np.zeros_like(theta)
    for t in range(1, STEPS + 1):
        g = grads_for(theta, t) + weight_decay * theta
        m = b1 * m + (1 - b1) * g
        u = np.maximum(b2 * u, np.abs(g) + eps)
        theta = theta - LRS[t - 1] * m / ((1 - b1**t) * u)
    return theta


def rmsprop_textbook(theta, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
    """torch.optim.RMSprop's documented algorithm."""
    v = g_avg = b = np.zeros_like(theta)
    for t in range(1, STEPS + 1):
        g = grads_for(theta, t) + weight_decay * theta
        v = alpha * v + (1 - alpha) * g**2
        v_tilde = v
        if centered:
            g_avg = alpha * g_avg + (1 - alpha) * g
            v_tilde = v - g_avg**2
        if momentum > 0:
            b = momentum * b + g / (np.sqrt(v_tilde) + eps)
            theta = theta - LRS[t - 1] * b
        else:
            theta = theta - LRS[t - 1] * g / (np.sqrt(v_tilde) + eps)
    return theta


def adagrad_textbook(theta, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
    """torch.optim.Adagrad's documented algorithm."""
    state_sum = np.full_like(theta, initial_accumulator_value)
    for t in range(1, STEPS + 1):
        g = grads_for(theta, t) + weight_decay * theta
        lr = LRS[t - 1] / (1 + (t - 1) * lr_decay)
        state_sum = state_sum + g**2
        theta = theta - lr * g / (np.sqrt(state_sum) + eps)
    return theta


def adadelta_textbook(theta, rho=0.9, eps=1e-6, weight_decay=0.0):
    """torch.optim.Adadelta's documented algorithm (lr multiplies the step)."""
    v = u = np.zeros_like(theta)
    for t in range(1, STEPS + 1):
        g = grads_for(theta, t) + weight_decay * theta
        v = v * rho + g**2 * (1 - rho)
        delta = np.sqrt(u + eps) / np.sqrt(v + eps) * g
        u = u * rho + delta**2 * (1 - rho)
        theta = theta - LRS[t - 1] * delta
    return theta


def lion_textbook(theta, betas=(0.9, 0.99), weight_decay=0.0):
    """Lion, Algorithm 2 of Chen et al. (2023): the sign of an interpolation of m and g, decoupled decay."""
    b1, b2 = betas
    m = np.zeros_like(theta)
    for t in range(1, STEPS + 1):
        lr = LRS[t - 1]
        g = grads_for(theta, t)
        update = np.sign(b1 * m + (1 - b1) * g)
        theta = theta - lr * (update + weight_decay * theta)
        m = b2 * m + (1 - b2) * g
    return theta


TEXTBOOK = {
    "sgd": sgd_textbook,
    "adam": adam_textbook,
    "adamw": adamw_textbook,
    "nadam": nadam_textbook,
    "adamax": adamax_textbook,
    "rmsprop": rmsprop_textbook,
    "adagrad": adagrad_textbook,
    "adadelta": adadelta_textbook,
    "lion": lion_textbook,
}

CASES = {
    "sgd": [
        {},
        {"momentum": 0.9},
        {"momentum": 0.9, "dampening": 0.5},
        {"momentum": 0.9, "nesterov": True},
        {"weight_decay": 0.1},
        {"momentum": 0.8, "dampening": 0.3, "weight_decay": 0.1},
        {"momentum": 0.9, "nesterov": True, "weight_decay": 0.1},
    ],
    "adam": [
        {},
        {"weight_decay": 0.1},
        {"amsgrad": True},
        {"betas": (0.5, 0.9), "eps": 1e-3, "weight_decay": 0.05, "amsgrad": True},
    ],
    "adamw": [
        {},
        {"weight_decay": 0.0},
        {"weight_decay": 0.1},
        {"amsgrad": True},
        {"betas": (0.5, 0.9), "eps": 1e-3, "weight_decay": 0.2, "amsgrad": True},
    ],
    "nadam": [
        {},
        {"weight_decay": 0.1},
        {"weight_decay": 0.1, "decoupled_weight_decay": True},
        {"momentum_decay": 0.05},
        {"betas": (0.5, 0.9), "eps": 1e-3},
    ],
    "adamax": [
        {},
        {"weight_decay": 0.1},
        {"betas": (0.5, 0.9), "eps": 1e-3},
    ],
    "rmsprop": [
        {},
        {"momentum": 0.9},
        {"centered": True},
        {"centered": True, "momentum": 0.9},
        {"weight_decay": 0.1},
        {"alpha": 0.9, "eps": 1e-3},
    ],
    "adagrad": [
        {},
        {"lr_decay": 0.1},
        {"initial_accumulator_value": 0.5},
        {"weight_decay": 0.1},
        {"eps": 1e-3},
    ],
    "adadelta": [
        {},
        {"weight_decay": 0.1},
        {"rho": 0.5, "eps": 1e-3},
    ],
    "lion": [
        {},
        {"betas": (0.5, 0.9)},
        {"weight_decay": 0.5},
        {"betas": (0.95, 0.5), "weight_decay": 0.1},
    ],
}
ALL_CASES = [(name, hyper) for name, cases in CASES.items() for hyper in cases]
CASE_IDS = [f"{name}{hyper}" for name, hyper in ALL_CASES]


def start():
    return np.random.default_rng(0).standard_normal((3, 4))


def run(name, dtype=np.float64, **hyper):
    """Our optimizer on two params (a matrix and a vector) for STEPS steps."""
    theta = start().astype(dtype)
    params = [
        Param("W", theta[:, :3].copy(), np.empty((3, 3), dtype)),
        Param("b", theta[:, 3].copy(), np.empty(3, dtype)),
    ]
    opt = OPTIMIZERS.get(name)(params, **hyper)
    for t in range(1, STEPS + 1):
        for p in params:
            p.grad[...] = grads_for(p.value, t)
        grads = [p.grad.copy() for p in params]
        opt.step(LRS[t - 1])
        for p, g in zip(params, grads):
            np.testing.assert_array_equal(p.grad, g)  # step() leaves grads alone
    return np.column_stack([params[0].value, params[1].value])


# --- the tables cover every optimizer and option --------------------------------------------------


def test_every_registered_optimizer_has_a_textbook_and_cases():
    assert set(TEXTBOOK) == set(CASES) == set(OPTIMIZERS)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_option_is_moved_off_its_default_in_some_case(name):
    defaults = OPTIMIZERS[name].defaults
    moved = {key for hyper in CASES[name] for key, value in hyper.items() if value != defaults[key]}
    assert moved == set(defaults)


# --- update rules ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name, hyper", ALL_CASES, ids=CASE_IDS)
def test_optimizer_follows_the_textbook_trajectory(name, hyper):
    np.testing.assert_allclose(run(name, **hyper), TEXTBOOK[name](start(), **hyper), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_trajectories_tell_the_options_apart(name):
    """Guards the test above: each option changes the result, so a missing one would be caught."""
    results = [run(name, **hyper) for hyper in CASES[name]]
    for i in range(len(results)):
        assert np.abs(results[i] - start()).max() > 1e-4  # every case moves the weights (adadelta least)
        for j in range(i):
            assert np.abs(results[i] - results[j]).max() > 1e-6, (CASES[name][i], CASES[name][j])


def test_adam_first_step_moves_each_weight_by_lr_against_the_gradient_sign():
    p = Param("w", np.array([1.0, -2.0, 3.0]), np.array([0.5, -4.0, 1e-3]))
    OPTIMIZERS.get("adam")([p]).step(0.01)
    # m_hat = g, v_hat = g², so the step is lr * g / (|g| + eps)
    expected = [1.0, -2.0, 3.0] - 0.01 * p.grad / (np.abs(p.grad) + 1e-8)
    np.testing.assert_allclose(p.value, expected, rtol=1e-15)


@pytest.mark.parametrize("name, hyper", [
    ("adamw", {"weight_decay": 0.1}),
    ("nadam", {"weight_decay": 0.1, "decoupled_weight_decay": True}),
])
def test_decoupled_weight_decay_shrinks_weights_by_lr_times_decay_when_the_gradient_is_zero(name, hyper):
    p = Param("w", np.array([1.0, -2.0, 0.5]), np.zeros(3))
    OPTIMIZERS.get(name)([p], **hyper).step(0.5)
    np.testing.assert_array_equal(p.value, np.array([1.0, -2.0, 0.5]) * (1 - 0.5 * 0.1))


def test_adagrad_lr_decay_divides_the_step_by_one_plus_steps_before_times_decay():
    """With g = 1 throughout, sum = t, so step t moves the weight by lr / (1 + (t - 1) decay) / sqrt(t)."""
    p = Param("w", np.zeros(1), np.ones(1))
    opt = OPTIMIZERS.get("adagrad")([p], lr_decay=0.5, eps=1e-300)  # eps > 0, lost beside sqrt(t)
    moves = []
    for _ in range(3):
        before = p.value[0]
        opt.step(0.3)
        moves.append(before - p.value[0])
    np.testing.assert_allclose(moves, [0.3, 0.3 / 1.5 / math.sqrt(2), 0.3 / 2.0 / math.sqrt(3)], rtol=1e-15)


def test_adadelta_first_step_is_lr_times_sqrt_eps_over_rms_gradient():
    p = Param("w", np.zeros(2), np.array([2.0, -0.5]))
    OPTIMIZERS.get("adadelta")([p], rho=0.9, eps=1e-6).step(1.0)
    expected = -np.sqrt(1e-6) / np.sqrt(0.1 * p.grad**2 + 1e-6) * p.grad
    np.testing.assert_allclose(p.value, expected, rtol=1e-15)


# --- defaults, keyword-only options, dtype, allocation ---------------------------------------------


PYTORCH_DEFAULTS = {
    "sgd": (1e-3, {"momentum": 0.0, "dampening": 0.0, "nesterov": False, "weight_decay": 0.0}),
    "adam": (1e-3, {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False}),
    "adamw": (1e-3, {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 1e-2, "amsgrad": False}),
    "nadam": (2e-3, {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "momentum_decay": 4e-3,
                     "decoupled_weight_decay": False}),
    "adamax": (2e-3, {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0}),
    "rmsprop": (1e-2, {"alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0, "momentum": 0.0, "centered": False}),
    "adagrad": (1e-2, {"lr_decay": 0.0, "weight_decay": 0.0, "initial_accumulator_value": 0.0, "eps": 1e-10}),
    "adadelta": (1.0, {"rho": 0.9, "eps": 1e-6, "weight_decay": 0.0}),
    "lion": (1e-4, {"betas": (0.9, 0.99), "weight_decay": 0.0}),  # torch has none: the paper's reference code
}


def test_defaults_and_default_lr_are_pytorchs():
    assert set(PYTORCH_DEFAULTS) == set(OPTIMIZERS)
    for name, (lr, defaults) in PYTORCH_DEFAULTS.items():
        cls = OPTIMIZERS[name]
        assert (cls.default_lr, cls.defaults) == (lr, defaults), name
        assert issubclass(cls, Optimizer) and type(cls.default_lr) is float


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_options_are_keyword_only_and_lr_is_not_one(name):
    params = inspect.signature(OPTIMIZERS[name]).parameters
    assert [p.name for p in params.values() if p.kind is not p.VAR_KEYWORD] == ["params"]
    assert "lr" not in OPTIMIZERS[name].defaults
    with pytest.raises(TypeError):
        OPTIMIZERS[name]([Param("w", np.zeros(2), np.zeros(2))], 0.5)
    with pytest.raises(OptionError, match=f"^{name}: unknown option 'lr'; allowed: "):
        OPTIMIZERS[name]([Param("w", np.zeros(2), np.zeros(2))], lr=0.5)


@pytest.mark.parametrize("name, hyper", ALL_CASES, ids=CASE_IDS)
def test_float32_stays_float32(name, hyper):
    result = run(name, dtype=np.float32, **hyper)
    assert result.dtype == np.float32
    np.testing.assert_allclose(result, run(name, **hyper), rtol=1e-4, atol=1e-5)
    params = [Param("w", np.ones(3, np.float32), np.full(3, 0.5, np.float32))]
    opt = OPTIMIZERS[name](params, **hyper)
    opt.step(0.1)
    assert params[0].value.dtype == np.float32
    arrays = {k: a for k, a in opt.state_dict().items() if k not in ("t", "mu_product")}
    assert all(a.dtype == np.float32 for a in arrays.values())


@pytest.mark.parametrize("name, hyper", ALL_CASES, ids=CASE_IDS)
def test_step_allocates_nothing_param_sized(name, hyper):
    rng = np.random.default_rng(1)
    params = [Param(f"p{i}", rng.standard_normal((256, 256)), rng.standard_normal((256, 256))) for i in range(2)]
    opt = OPTIMIZERS[name](params, **hyper)
    opt.step(0.01)  # SGD's first step copies the gradient into its momentum buffer
    tracemalloc.start()
    try:
        for _ in range(3):
            opt.step(0.01)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 256 * 256 * 8 // 8  # far below one param-sized array (512 KiB)


# --- bad options ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, hyper, message", [
    ("sgd", {"momentum": -0.1}, "sgd: momentum must be a number in [0, 1) (got -0.1)"),
    ("sgd", {"momentum": 1.0}, "sgd: momentum must be a number in [0, 1) (got 1.0)"),
    ("sgd", {"dampening": 1.5}, "sgd: dampening must be a number in [0, 1] (got 1.5)"),
    ("sgd", {"nesterov": True}, "sgd: nesterov needs momentum > 0 and dampening 0 (got momentum=0.0, dampening=0.0)"),
    ("sgd", {"nesterov": True, "momentum": 0.9, "dampening": 0.1},
     "sgd: nesterov needs momentum > 0 and dampening 0 (got momentum=0.9, dampening=0.1)"),
    ("sgd", {"nesterov": "yes"}, "sgd: nesterov must be true or false (got 'yes')"),
    ("sgd", {"weight_decay": float("nan")}, "sgd: weight_decay must be a number >= 0 (got nan)"),
    ("adam", {"betas": (0.9, 1.0)}, "adam: betas must be two numbers in [0, 1) (got (0.9, 1.0))"),
    ("adam", {"betas": 0.9}, "adam: betas must be two numbers in [0, 1) (got 0.9)"),
    ("adam", {"eps": -1.0}, "adam: eps must be a number > 0 (got -1.0)"),
    ("adam", {"eps": 0.0}, "adam: eps must be a number > 0 (got 0.0)"),
    ("adamw", {"weight_decay": -0.01}, "adamw: weight_decay must be a number >= 0 (got -0.01)"),
    ("adamw", {"amsgrad": 1}, "adamw: amsgrad must be true or false (got 1)"),
    ("nadam", {"momentum_decay": -1}, "nadam: momentum_decay must be a number >= 0 (got -1)"),
    ("nadam", {"decoupled_weight_decay": None}, "nadam: decoupled_weight_decay must be true or false (got None)"),
    ("adamax", {"betas": (-0.1, 0.9)}, "adamax: betas must be two numbers in [0, 1) (got (-0.1, 0.9))"),
    ("rmsprop", {"alpha": 1.5}, "rmsprop: alpha must be a number in [0, 1) (got 1.5)"),
    ("rmsprop", {"alpha": 1.0}, "rmsprop: alpha must be a number in [0, 1) (got 1.0)"),
    ("rmsprop", {"momentum": "0.9"}, "rmsprop: momentum must be a number in [0, 1) (got '0.9')"),
    ("rmsprop", {"centered": "false"}, "rmsprop: centered must be true or false (got 'false')"),
    ("adagrad", {"lr_decay": -0.1}, "adagrad: lr_decay must be a number >= 0 (got -0.1)"),
    ("adagrad", {"initial_accumulator_value": -1.0},
     "adagrad: initial_accumulator_value must be a number >= 0 (got -1.0)"),
    ("adagrad", {"eps": True}, "adagrad: eps must be a number > 0 (got True)"),
    ("adadelta", {"rho": 1.1}, "adadelta: rho must be a number in [0, 1] (got 1.1)"),
    ("lion", {"betas": (0.9, 1.0)}, "lion: betas must be two numbers in [0, 1) (got (0.9, 1.0))"),
    ("lion", {"weight_decay": -0.1}, "lion: weight_decay must be a number >= 0 (got -0.1)"),
    ("lion", {"eps": 1e-8}, "lion: unknown option 'eps'; allowed: betas, weight_decay."),
])
def test_impossible_settings_are_config_errors_that_say_what_and_why(name, hyper, message):
    with pytest.raises(OptionError) as error:
        OPTIMIZERS.get(name)([Param("w", np.zeros(2), np.zeros(2))], **hyper)
    assert str(error.value) == message


# --- state_dict / load_state_dict -------------------------------------------------------------------


@pytest.mark.parametrize("name, hyper, keys", [
    ("sgd", {}, {"t"}),
    ("sgd", {"momentum": 0.9}, {"t", "momentum_buffer.W", "momentum_buffer.b"}),
    ("adam", {}, {"t", "m.W", "m.b", "v.W", "v.b"}),
    ("adam", {"amsgrad": True}, {"t", "m.W", "m.b", "v.W", "v.b", "v_max.W", "v_max.b"}),
    ("adamw", {"amsgrad": True}, {"t", "m.W", "m.b", "v.W", "v.b", "v_max.W", "v_max.b"}),
    ("nadam", {}, {"t", "mu_product", "m.W", "m.b", "v.W", "v.b"}),
    ("adamax", {}, {"t", "m.W", "m.b", "u.W", "u.b"}),
    ("rmsprop", {}, {"t", "v.W", "v.b"}),
    ("rmsprop", {"centered": True, "momentum": 0.9},
     {"t", "v.W", "v.b", "g_avg.W", "g_avg.b", "momentum_buffer.W", "momentum_buffer.b"}),
    ("adagrad", {}, {"t", "sum.W", "sum.b"}),
    ("adadelta", {}, {"t", "v.W", "v.b", "u.W", "u.b"}),
])
def test_state_dict_holds_the_named_arrays(name, hyper, keys):
    params = [Param("W", np.ones((3, 2)), np.ones((3, 2))), Param("b", np.ones(2), np.ones(2))]
    opt = OPTIMIZERS.get(name)(params, **hyper)
    opt.step(0.1)
    state = opt.state_dict()
    assert set(state) == keys
    assert all(isinstance(a, np.ndarray) for a in state.values())
    assert state["t"].shape == () and state["t"].dtype == np.int64 and state["t"] == 1
    if "mu_product" in state:
        assert state["mu_product"].shape == () and state["mu_product"].dtype == np.float64


def test_adagrad_state_starts_at_the_initial_accumulator_value():
    opt = OPTIMIZERS.get("adagrad")([Param("w", np.zeros(2), np.zeros(2))], initial_accumulator_value=0.25)
    np.testing.assert_array_equal(opt.state_dict()["sum.w"], [0.25, 0.25])


@pytest.mark.parametrize("name, hyper", ALL_CASES, ids=CASE_IDS)
def test_state_dict_round_trip_resumes_exactly(name, hyper):
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
    assert state["t"] == 3 and state["t"].dtype == np.int64
    steps(params, opt, range(4, 7))

    resumed_params, resumed = make()
    for p, v in zip(resumed_params, values):
        p.value[...] = v
    resumed.load_state_dict(state)
    steps(resumed_params, resumed, range(4, 7))
    for p, q in zip(params, resumed_params):
        assert p.value.tobytes() == q.value.tobytes()


@pytest.mark.parametrize("name, hyper", ALL_CASES, ids=CASE_IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_packed_params_update_in_one_pass_exactly_as_one_pass_each(name, hyper, dtype):
    """nn.params.pack lays params back to back; the optimizer then updates the whole array at once,
    and every weight and state array ends bit for bit where the per-param updates put it."""
    def make(packed):
        rng = np.random.default_rng(3)
        params = [
            Param("W", rng.standard_normal((5, 4)).astype(dtype), np.zeros((5, 4), dtype)),
            Param("b", rng.standard_normal(4).astype(dtype), np.zeros(4, dtype)),
            Param("V", rng.standard_normal((4, 3)).astype(dtype), np.zeros((4, 3), dtype)),
        ]
        if packed:
            pack(params)
        return params, OPTIMIZERS.get(name)(params, **hyper)

    (alone, one_by_one), (packed, at_once) = make(False), make(True)
    assert len(one_by_one._units) == 3 and len(at_once._units) == 1
    for t in range(1, STEPS + 1):
        for p, q in zip(alone, packed):
            p.grad[...] = grads_for(p.value, t)
            q.grad[...] = grads_for(q.value, t)
        one_by_one.step(LRS[t - 1])
        at_once.step(LRS[t - 1])
    for p, q in zip(alone, packed):
        assert p.value.tobytes() == q.value.tobytes(), p.name
    expected, got = one_by_one.state_dict(), at_once.state_dict()
    assert sorted(expected) == sorted(got)
    for key in expected:
        assert expected[key].shape == got[key].shape and expected[key].tobytes() == got[key].tobytes(), key


def test_params_not_back_to_back_are_updated_one_by_one():
    values = np.zeros(10)
    grads = np.zeros(10)
    gap = [Param("a", values[0:3], grads[0:3]), Param("b", values[4:10], grads[4:10])]  # values[3] is no param's
    swapped = [Param("a", values[0:3], grads[3:6]), Param("b", values[3:6], grads[0:3])]
    for params in (gap, swapped, gap[:1]):
        assert flat(params) is None
    whole = [Param("a", values[0:4], grads[0:4]), Param("b", values[4:10].reshape(2, 3), grads[4:10].reshape(2, 3))]
    (unit,) = flat(whole)
    assert np.shares_memory(unit.value, values) and unit.value.shape == (10,) and unit.grad.shape == (10,)


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
    nadam = OPTIMIZERS.get("nadam")(p)
    with pytest.raises(ValueError, match="missing key 'mu_product'"):
        nadam.load_state_dict({k: a for k, a in nadam.state_dict().items() if k != "mu_product"})


# --- the compiled loop (training.engine numba) writes the same bits as the NumPy passes ------------


def _twin_runs(name, hyper, dtype, grads, packed=True):
    """Params and optimizer state after `grads` (a list per step), by NumPy's passes and by the loop;
    `packed`: the params in one array (one unit, as a model's), else a unit per param."""
    results = []
    for fused in (False, True):
        rng = np.random.default_rng(3)
        params = [
            Param("W", (rng.standard_normal((6, 5)) * 2).astype(dtype), np.empty((6, 5), dtype)),
            Param("b", rng.standard_normal(5).astype(dtype), np.empty(5, dtype)),
        ]
        params[1].value[0] = -0.0  # the sign of a zero is part of the bits
        if packed:
            pack(params)
        opt = OPTIMIZERS[name](params, **hyper)
        assert len(opt._units) == (1 if packed else 2)
        if fused:
            opt.use_fused()
        for t, (lr, g) in enumerate(grads):
            params[0].grad[...], params[1].grad[...] = g[:30].reshape(6, 5), g[30:]
            opt.step(lr)
        results.append([p.value.copy() for p in params] + [a for k, a in sorted(opt.state_dict().items())])
    return results


def _gradients(rng, dtype, steps=25):
    """Gradients of every kind a run meets: ordinary, tiny, huge, exact zeros of either sign."""
    out = []
    for t in range(steps):
        g = rng.standard_normal(35) * 10.0 ** rng.integers(-8, 4, 35)
        g[rng.integers(0, 35, 4)] = 0.0
        g[rng.integers(0, 35, 2)] = -0.0
        out.append((0.5 ** (t % 5) * 0.05, g.astype(dtype)))
    return out


@pytest.mark.parametrize("packed", [True, False], ids=["packed", "apart"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, hyper", ALL_CASES, ids=CASE_IDS)
def test_the_compiled_loop_writes_the_bits_numpys_passes_write(name, hyper, dtype, packed):
    passes, loop = _twin_runs(name, hyper, dtype, _gradients(np.random.default_rng(7), dtype), packed)
    assert len(passes) == len(loop)
    for a, b in zip(passes, loop):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), np.flatnonzero(a.reshape(-1) != b.reshape(-1))
    assert not np.array_equal(passes[0], _twin_runs(name, hyper, dtype, [])[0][0])  # the steps moved the weights


@pytest.mark.parametrize("name, hyper", ALL_CASES, ids=CASE_IDS)
def test_the_compiled_loop_spreads_nan_and_inf_as_numpys_passes_do(name, hyper):
    grads = _gradients(np.random.default_rng(8), np.float32, steps=6)
    grads[2][1][[3, 31]] = np.nan
    grads[3][1][[4, 32]] = np.inf
    grads[4][1][[5, 33]] = -np.inf
    with np.errstate(all="ignore"):
        passes, loop = _twin_runs(name, hyper, np.float32, grads)
    for a, b in zip(passes, loop):
        assert a.tobytes() == b.tobytes()
