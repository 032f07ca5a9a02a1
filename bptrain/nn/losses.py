"""Losses fused with the output link: loss(logits, y) -> (mean loss as a float, dL/dlogits).

dL/dlogits lives in a buffer the loss owns, reused by the next call (grown for a bigger batch).
Every formula is stable for any finite logits. link(logits) returns new predictions in output space.
"""

from __future__ import annotations

import numpy as np

from bptrain.errors import ConfigError, DataError
from bptrain.nn.activations import sigmoid
from bptrain.nn.buffers import reserve
from bptrain.registry import Registry

LOSSES = Registry("loss")


def _check_shape(y: np.ndarray, shape: tuple[int, ...], loss: str) -> None:
    if y.shape != shape:
        raise ValueError(f"{loss}: targets of shape {y.shape} for predictions needing {shape}")


@LOSSES.register("cross_entropy")
class CrossEntropy:
    """Softmax cross-entropy, mean over rows; y holds class indices, shape (n,)."""

    def __init__(self):
        self._grad = self._max = self._lse = self._rows = None

    def __call__(self, logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        n = logits.shape[0]
        _check_shape(y, (n,), "cross_entropy")
        self._grad = reserve(self._grad, logits.shape, logits.dtype)
        self._max = reserve(self._max, (n, 1), logits.dtype)
        self._lse = reserve(self._lse, (n, 1), logits.dtype)
        if self._rows is None or len(self._rows) < n:
            self._rows = np.arange(n)
        rows, top, lse, p = self._rows[:n], self._max[:n], self._lse[:n], self._grad[:n]

        np.max(logits, axis=1, keepdims=True, out=top)
        np.subtract(logits, top, out=p)
        np.exp(p, out=p)  # each row's largest entry is exp(0) = 1, so nothing overflows
        np.sum(p, axis=1, keepdims=True, out=lse)
        p /= lse  # softmax
        np.log(lse, out=lse)
        lse += top  # log-sum-exp of each row
        lse[:, 0] -= logits[rows, y]  # -log softmax(z)[y] = logsumexp(z) - z[y]
        loss = float(np.sum(lse)) / n

        p[rows, y] -= 1.0
        p *= 1.0 / n
        return loss, p

    def link(self, logits: np.ndarray) -> np.ndarray:
        """Softmax probabilities."""
        p = logits - logits.max(axis=1, keepdims=True)
        np.exp(p, out=p)
        p /= p.sum(axis=1, keepdims=True)
        return p


@LOSSES.register("binary_cross_entropy")
class BinaryCrossEntropy:
    """Sigmoid cross-entropy on logits, mean over all entries; y holds 0/1 of the logits' shape."""

    def __init__(self):
        self._grad = self._softplus = None

    def __call__(self, logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        n = logits.shape[0]
        _check_shape(y, logits.shape, "binary_cross_entropy")
        self._grad = reserve(self._grad, logits.shape, logits.dtype)
        self._softplus = reserve(self._softplus, logits.shape, logits.dtype)
        g, softplus = self._grad[:n], self._softplus[:n]

        np.logaddexp(0.0, logits, out=softplus)  # max(z, 0) + log1p(exp(-|z|))
        np.multiply(logits, y, out=g)
        np.subtract(softplus, g, out=g)  # -[y log p + (1 - y) log(1 - p)] = softplus(z) - z y
        loss = float(np.sum(g)) / g.size

        np.subtract(logits, softplus, out=g)  # log p
        np.exp(g, out=g)
        g -= y
        g *= 1.0 / g.size
        return loss, g

    def link(self, logits: np.ndarray) -> np.ndarray:
        """Sigmoid probabilities."""
        return sigmoid(logits, np.empty_like(logits))


@LOSSES.register("mse")
class MeanSquaredError:
    """Mean squared error over all entries; y has the predictions' shape."""

    def __init__(self):
        self._grad = None

    def __call__(self, logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        n = logits.shape[0]
        _check_shape(y, logits.shape, "mse")
        self._grad = reserve(self._grad, logits.shape, logits.dtype)
        g = np.subtract(logits, y, out=self._grad[:n])
        loss = float(np.vdot(g, g)) / g.size
        g *= 2.0 / g.size
        return loss, g

    def link(self, logits: np.ndarray) -> np.ndarray:
        """The predictions themselves, copied."""
        return logits.copy()


def loss_for_task(task: str, n_classes: int) -> str:
    """The loss name for a task: cross_entropy (> 2 classes), binary_cross_entropy (2), mse (regression)."""
    if task == "regression":
        return "mse"
    if task != "classification":
        raise ConfigError(f"unknown task {task!r}; choose from classification, regression")
    if n_classes < 2:
        raise DataError(f"classification needs at least 2 classes in the target (got {n_classes})")
    return "cross_entropy" if n_classes > 2 else "binary_cross_entropy"
