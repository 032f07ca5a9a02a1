import numpy as np
import pytest

from bptrain.errors import ConfigError, DataError
from bptrain.nn.gradcheck import numeric_gradient, relative_error
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


TEXTBOOK = {  # mean loss on moderate logits, written the naive way
    "cross_entropy": lambda z, y: np.mean(-np.log(softmax(z)[np.arange(len(y)), y])),
    "binary_cross_entropy": lambda z, y: np.mean(-y * np.log(sigmoid(z)) - (1 - y) * np.log(1 - sigmoid(z))),
    "mse": lambda z, y: np.mean((z - y) ** 2),
}
LINKS = {"cross_entropy": softmax, "binary_cross_entropy": sigmoid, "mse": lambda z: z}


def test_every_loss_has_textbook_formulas_here():
    assert set(TEXTBOOK) == set(LINKS) == set(LOSSES)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_is_the_textbook_mean_as_a_python_float(name):
    rng = np.random.default_rng(0)
    z, y = 2.0 * rng.standard_normal((N, K)), targets(name, rng)
    loss, _ = LOSSES.get(name)()(z, y)
    assert type(loss) is float
    assert loss == pytest.approx(TEXTBOOK[name](z, y), rel=1e-12)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradient_matches_finite_differences(name):
    rng = np.random.default_rng(1)
    z, y = 2.0 * rng.standard_normal((N, K)), targets(name, rng)
    loss = LOSSES.get(name)()
    numeric = numeric_gradient(lambda: loss(z, y)[0], z)
    _, grad = loss(z, y)
    assert relative_error(grad, numeric) < 1e-6


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_link_maps_logits_to_a_new_array_of_predictions(name):
    rng = np.random.default_rng(2)
    z = 2.0 * rng.standard_normal((N, K))
    p = LOSSES.get(name)().link(z)
    assert not np.shares_memory(p, z)
    np.testing.assert_allclose(p, LINKS[name](z), rtol=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_logits_give_exact_finite_losses_and_gradients(dtype):
    z = np.array([[1e4, -1e4], [-1e4, 1e4]], dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        ce, ce_grad = LOSSES.get("cross_entropy")()(z, np.array([0, 0]))
        bce, bce_grad = LOSSES.get("binary_cross_entropy")()(z, np.array([[1, 0], [1, 0]], dtype))
        ce_p = LOSSES.get("cross_entropy")().link(z)
        bce_p = LOSSES.get("binary_cross_entropy")().link(z)
    assert ce == 1e4  # (0 + 2e4) / 2 rows
    np.testing.assert_array_equal(ce_grad, [[0.0, 0.0], [-0.5, 0.5]])
    assert bce == 5e3  # (0 + 0 + 1e4 + 1e4) / 4 entries
    np.testing.assert_array_equal(bce_grad, [[0.0, 0.0], [-0.25, 0.25]])
    np.testing.assert_array_equal(ce_p, [[1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_array_equal(bce_p, [[1.0, 0.0], [0.0, 1.0]])
    assert ce_grad.dtype == bce_grad.dtype == ce_p.dtype == bce_p.dtype == dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradient_buffer_is_owned_reused_and_keeps_the_dtype(name, dtype):
    rng = np.random.default_rng(3)
    loss = LOSSES.get(name)()
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
        LOSSES.get(name)()(np.zeros((N, K)), y)


@pytest.mark.parametrize("task, n_classes, expected", [
    ("classification", 3, "cross_entropy"),
    ("classification", 10, "cross_entropy"),
    ("classification", 2, "binary_cross_entropy"),
    ("regression", 0, "mse"),
])
def test_loss_for_task(task, n_classes, expected):
    assert loss_for_task(task, n_classes) == expected


def test_loss_for_task_refuses_one_class_and_unknown_tasks():
    with pytest.raises(DataError, match="at least 2 classes"):
        loss_for_task("classification", 1)
    with pytest.raises(ConfigError, match="unknown task 'ranking'"):
        loss_for_task("ranking", 3)
