import numpy as np
import pytest

from bptrain.nn.errors import OptionError
from bptrain.nn.gradcheck import numeric_gradient, rel_error_norm
from bptrain.nn.losses import LOSSES, loss_for_task

N, K = 6, 3


def targets(name, rng, n=N, k=K, dtype=np.float64):
    """Targets each loss takes for (n, k) logits."""
    if name == "cross_entropy":
        return rng.integers(0, k, n)
    if name == "binary_cross_entropy":
        return rng.integers(0, 2, (n, k)).astype(dtype)
    return rng.standard_normal((n, k)).astype(dtype)


def softmax(z):
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def cross_entropy(z, y, label_smoothing=0.0, weight=None):
    """PyTorch's documented CrossEntropyLoss: target distribution q = (1 - ε)·onehot + ε/k, each class
    term weighted by w_c, the sum divided by Σ_i w[y_i] (the weighted mean's denominator)."""
    n, k = z.shape
    w = np.ones(k) if weight is None else np.asarray(weight, float)
    q = (1 - label_smoothing) * np.eye(k)[y] + label_smoothing / k
    return np.sum(-q * w * np.log(softmax(z))) / np.sum(w[y])


def binary_cross_entropy(z, y, pos_weight=None):
    pw = 1.0 if pos_weight is None else np.asarray(pos_weight, float)
    return np.mean(-pw * y * np.log(sigmoid(z)) - (1 - y) * np.log(1 - sigmoid(z)))


def huber(z, y, delta=1.0):
    d = np.abs(z - y)
    return np.mean(np.where(d < delta, 0.5 * d**2, delta * (d - 0.5 * delta)))


TEXTBOOK = {  # mean loss on moderate logits, written the naive way
    "cross_entropy": cross_entropy,
    "binary_cross_entropy": binary_cross_entropy,
    "mse": lambda z, y: np.mean((z - y) ** 2),
    "mae": lambda z, y: np.mean(np.abs(z - y)),
    "huber": huber,
}
LINKS = {
    "cross_entropy": softmax,
    "binary_cross_entropy": sigmoid,
    "mse": lambda z: z,
    "mae": lambda z: z,
    "huber": lambda z: z,
}
TASKS = {
    "cross_entropy": "classification",
    "binary_cross_entropy": "classification",
    "mse": "regression",
    "mae": "regression",
    "huber": "regression",
}
OPTIONS = {  # keyword options and their PyTorch defaults
    "cross_entropy": {"label_smoothing": 0.0, "weight": None},
    "binary_cross_entropy": {"pos_weight": None},
    "huber": {"delta": 1.0},
}
VARIANTS = [(name, {}) for name in sorted(LOSSES)] + [
    ("cross_entropy", {"label_smoothing": 0.1}),
    ("cross_entropy", {"weight": [0.2, 1.0, 3.0]}),
    ("cross_entropy", {"label_smoothing": 0.25, "weight": (0.2, 1.0, 3.0)}),
    ("binary_cross_entropy", {"pos_weight": 2.5}),
    ("binary_cross_entropy", {"pos_weight": [0.5, 1.0, 4.0]}),
    ("huber", {"delta": 0.5}),
    ("huber", {"delta": 3.0}),
]
IDS = [f"{name}{options or ''}" for name, options in VARIANTS]


def make(name, options=None):
    return LOSSES.get(name)(**(options or {}))


def test_every_loss_has_textbook_formulas_and_a_task_here():
    assert set(TEXTBOOK) == set(LINKS) == set(TASKS) == set(LOSSES)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_task_and_options(name):
    cls = LOSSES.get(name)
    assert cls.task == TASKS[name]
    assert dict(cls.declaration.defaults) == OPTIONS.get(name, {})


@pytest.mark.parametrize("name, options", VARIANTS, ids=IDS)
def test_loss_is_the_textbook_mean_as_a_python_float(name, options):
    rng = np.random.default_rng(0)
    z, y = 2.0 * rng.standard_normal((N, K)), targets(name, rng)
    loss, _ = make(name, options)(z, y)
    assert type(loss) is float
    assert loss == pytest.approx(TEXTBOOK[name](z, y, **options), rel=1e-12)


@pytest.mark.parametrize("name, options", VARIANTS, ids=IDS)
def test_gradient_matches_finite_differences(name, options):
    rng = np.random.default_rng(1)
    z, y = 2.0 * rng.standard_normal((N, K)), targets(name, rng)
    loss = make(name, options)
    numeric = numeric_gradient(lambda: loss(z, y)[0], z)
    _, grad = loss(z, y)
    assert rel_error_norm(grad, numeric) < 1e-7


@pytest.mark.parametrize("delta", [0.5, 1.0])
def test_the_huber_gradient_check_covers_both_regimes(delta):
    rng = np.random.default_rng(1)  # as in test_gradient_matches_finite_differences
    z, y = 2.0 * rng.standard_normal((N, K)), targets("huber", rng)
    d = np.abs(z - y)
    assert np.any(d < delta) and np.any(d > delta)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_link_maps_logits_to_a_new_array_of_predictions(name):
    rng = np.random.default_rng(2)
    z = 2.0 * rng.standard_normal((N, K))
    p = make(name).link(z)
    assert not np.shares_memory(p, z)
    np.testing.assert_allclose(p, LINKS[name](z), rtol=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_logits_give_exact_finite_losses_and_gradients(dtype):
    z = np.array([[1e4, -1e4], [-1e4, 1e4]], dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        ce, ce_grad = make("cross_entropy")(z, np.array([0, 0]))
        bce, bce_grad = make("binary_cross_entropy")(z, np.array([[1, 0], [1, 0]], dtype))
        ls, _ = make("cross_entropy", {"label_smoothing": 0.5})(z, np.array([0, 0]))
        ce_p = make("cross_entropy").link(z)
        bce_p = make("binary_cross_entropy").link(z)
    assert ce == 1e4  # (0 + 2e4) / 2 rows
    np.testing.assert_array_equal(ce_grad, [[0.0, 0.0], [-0.5, 0.5]])
    assert ls == pytest.approx(0.5 * 1e4 + 0.25 * (2e4 + 2e4) / 2)  # ε/k · Σ_i Σ_c (-log p_ic) / n
    assert bce == 5e3  # (0 + 0 + 1e4 + 1e4) / 4 entries
    np.testing.assert_array_equal(bce_grad, [[0.0, 0.0], [-0.25, 0.25]])
    np.testing.assert_array_equal(ce_p, [[1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_array_equal(bce_p, [[1.0, 0.0], [0.0, 1.0]])
    assert ce_grad.dtype == bce_grad.dtype == ce_p.dtype == bce_p.dtype == dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, options", VARIANTS, ids=IDS)
def test_gradient_buffer_is_owned_reused_and_keeps_the_dtype(name, options, dtype):
    rng = np.random.default_rng(3)
    loss = make(name, options)
    z = rng.standard_normal((N, K)).astype(dtype)
    _, g1 = loss(z, targets(name, rng, dtype=dtype))
    _, g2 = loss(z[:4], targets(name, rng, n=4, dtype=dtype))  # smaller last batch
    assert g1.dtype == g2.dtype == dtype
    assert g2.shape == (4, K) and np.shares_memory(g1, g2)
    _, g3 = loss(np.zeros((N + 5, K), dtype), targets(name, rng, n=N + 5, dtype=dtype))  # grown
    assert g3.shape == (N + 5, K) and np.all(np.isfinite(g3))


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_targets_of_the_wrong_shape_are_refused(name):
    rng = np.random.default_rng(4)
    y = targets(name, rng, n=N - 1)
    with pytest.raises(ValueError, match=name):
        make(name)(np.zeros((N, K)), y)


def test_mae_gradient_is_the_sign_over_the_count_and_zero_where_exact():
    z = np.array([[1.0, 2.0], [3.0, -1.0]])
    y = np.array([[0.0, 2.0], [5.0, -1.0]])
    loss, grad = make("mae")(z, y)
    assert loss == 0.75
    np.testing.assert_array_equal(grad, [[0.25, 0.0], [-0.25, 0.0]])


def test_huber_gradient_is_the_clipped_difference_over_the_count():
    z = np.array([[0.0, 0.0, 0.0, 0.0]])
    y = np.array([[-3.0, -0.5, 0.5, 2.0]])
    loss, grad = make("huber", {"delta": 2.0})(z, y)
    np.testing.assert_array_equal(grad, [[0.5, 0.125, -0.125, -0.5]])
    assert loss == pytest.approx((2 * (3 - 1) + 0.125 + 0.125 + 2 * (2 - 1)) / 4, rel=1e-15)


def test_cross_entropy_weights_scale_rows_and_the_denominator():
    """Weight c on every class leaves the mean unchanged; weights only matter relative to each other."""
    rng = np.random.default_rng(5)
    z, y = rng.standard_normal((N, K)), targets("cross_entropy", rng)
    base = make("cross_entropy", {"label_smoothing": 0.3})(z, y)[0]
    scaled = make("cross_entropy", {"label_smoothing": 0.3, "weight": [4.0, 4.0, 4.0]})(z, y)[0]
    assert scaled == pytest.approx(base, rel=1e-14)


def test_a_class_weight_of_zero_is_refused_when_the_loss_is_made():
    with pytest.raises(OptionError) as caught:
        make("cross_entropy", {"weight": [0.0, 1.0, 1.0]})
    assert str(caught.value) == "loss 'cross_entropy': weight must be a list of finite numbers > 0 (got [0.0, 1.0, 1.0])"


@pytest.mark.parametrize("name, options, message", [
    ("cross_entropy", {"label_smoothing": 1.5}, "label_smoothing must be a finite number in [0, 1) (got 1.5)"),
    ("cross_entropy", {"weight": [1.0, -1.0]}, "weight must be a list of finite numbers > 0 (got [1.0, -1.0])"),
    ("cross_entropy", {"weight": 2.0}, "weight must be a list of finite numbers > 0 (got 2.0)"),
    ("cross_entropy", {"weight": [[1.0], [2.0]]}, "weight must be a list of finite numbers > 0 (got [[1.0], [2.0]])"),
    ("binary_cross_entropy", {"pos_weight": -2.0}, "pos_weight must be a number > 0 or a list of finite numbers > 0 (got -2.0)"),
    ("binary_cross_entropy", {"pos_weight": "x"}, "pos_weight must be a number > 0 or a list of finite numbers > 0 (got 'x')"),
    ("huber", {"delta": 0.0}, "delta must be a finite number > 0 (got 0.0)"),
    ("huber", {"delt": 1.0}, "unknown option 'delt'; allowed: delta. Did you mean 'delta'?"),
    ("mse", {"delta": 1.0}, "unknown option 'delta'; it takes no options."),
])
def test_impossible_options_are_config_errors(name, options, message):
    with pytest.raises(OptionError) as caught:
        make(name, options)
    assert str(caught.value) == f"loss {name!r}: {message}"


@pytest.mark.parametrize("name, option", [("cross_entropy", "weight"), ("binary_cross_entropy", "pos_weight")])
def test_per_output_options_must_match_the_number_of_outputs(name, option):
    loss = make(name, {option: [1.0, 2.0]})
    rng = np.random.default_rng(6)
    with pytest.raises(OptionError, match=f"{option} has 2 entries, but the model has 3 outputs"):
        loss(np.zeros((N, K)), targets(name, rng))


@pytest.mark.parametrize("task, n_classes, expected", [
    ("classification", 3, "cross_entropy"),
    ("classification", 10, "cross_entropy"),
    ("classification", 2, "binary_cross_entropy"),
    ("regression", 0, "mse"),
])
def test_loss_for_task(task, n_classes, expected):
    assert loss_for_task(task, n_classes) == expected


def test_loss_for_task_refuses_one_class_and_unknown_tasks():
    with pytest.raises(OptionError, match="at least 2 classes"):
        loss_for_task("classification", 1)
    with pytest.raises(OptionError, match="unknown task 'ranking'"):
        loss_for_task("ranking", 3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_without_weights_gives_the_bits_of_unit_weights(dtype):
    """Without class weights or smoothing the loss skips its products with w[y_i] = 1: the loss and
    the gradient are those of the general computation with weights of one, bit for bit."""
    rng = np.random.default_rng(8)
    plain, unit = LOSSES["cross_entropy"](), LOSSES["cross_entropy"](weight=(1.0, 1.0, 1.0, 1.0))
    for n in (7, 32, 5):  # the buffers grow and shrink
        logits = (rng.standard_normal((n, 4)) * 3).astype(dtype)
        y = rng.integers(0, 4, n)
        (a, ga), (b, gb) = plain(logits, y), unit(logits, y)
        assert a == b
        assert ga.tobytes() == gb.tobytes()
