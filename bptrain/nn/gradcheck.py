"""Gradient checks: backprop gradients against central finite differences, in float64.

The error of one gradient array is one number for the whole array, a ratio of norms
(rel_error_norm): ‖a − n‖₂ / (‖a‖₂ + ‖n‖₂), 0 when both are zero. Per-entry ratios would blow up
on entries that are ~0 (a dead ReLU unit), where differences see round-off.
Checks run in training mode with every dropout mask drawn once and then frozen, and leave the
model as they found it: param values, buffers (batch norm running statistics) and noise generator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np


def rel_error_norm(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """‖a − n‖ / (‖a‖ + ‖n‖): 0 for identical arrays, 1 for opposite or unrelated ones; nan when
    either holds a non-finite value (it never passes a tolerance)."""
    if not (np.isfinite(analytic).all() and np.isfinite(numeric).all()):
        return float("nan")
    scale = float(np.linalg.norm(analytic) + np.linalg.norm(numeric))
    return float(np.linalg.norm(analytic - numeric)) / scale if scale > 0.0 else 0.0


def numeric_gradient(f: Callable[[], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """d f() / d x by central differences, perturbing each entry of x in place and restoring it exactly."""
    grad = np.empty(x.shape, np.float64)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        up = f()
        x[i] = old - eps
        down = f()
        x[i] = old
        grad[i] = (up - down) / (2.0 * eps)
    return grad


def _require_float64(array: np.ndarray, what: str) -> None:
    if array.dtype != np.float64:
        raise ValueError(f"gradient checks need float64, but {what} is {array.dtype}; build with float64")


@contextmanager
def fixed_noise(layers: list, noise_rng: np.random.Generator | None = None) -> Iterator[None]:
    """Within: each dropout layer keeps reusing its mask (drawn at the first forward if it has none
    of the right size). After: the layers' buffers and noise_rng's state are as they were before."""
    buffers = [(array, array.copy()) for layer in layers for array in getattr(layer, "buffers", {}).values()]
    rng_state = noise_rng.bit_generator.state if noise_rng is not None else None
    frozen = [(layer, layer.freeze_mask) for layer in layers if hasattr(layer, "freeze_mask")]
    for layer, _ in frozen:
        layer.freeze_mask = True
    try:
        yield
    finally:
        for layer, was in frozen:
            layer.freeze_mask = was
        for array, saved in buffers:
            np.copyto(array, saved)
        if rng_state is not None:
            noise_rng.bit_generator.state = rng_state


def gradcheck(model, loss, x, y, *, eps: float = 1e-6, regularizer=None) -> dict[str, float]:
    """rel_error_norm (see module docstring) of each param's backprop gradient, keyed by param name.

    The objective is loss(model.forward(x, train=True), y), plus regularizer.value() when given.
    Leaves each param's grad holding its backprop gradient (with the regularizer's part).
    """
    for p in model.params:
        _require_float64(p.value, p.name)
    x = np.asarray(x, dtype=np.float64)

    def f() -> float:
        value = loss(model.forward(x, train=True), y)[0]
        return value + regularizer.value() if regularizer is not None else value

    with fixed_noise(model.layers, getattr(model, "noise_rng", None)):
        _, grad = loss(model.forward(x, train=True), y)
        model.backward(grad)
        if regularizer is not None:
            regularizer.add_grad()
        return {p.name: rel_error_norm(p.grad, numeric_gradient(f, p.value, eps)) for p in model.params}


def layer_gradcheck(layer, x: np.ndarray, *, eps: float = 1e-6, seed: int = 0, train: bool = True) -> dict[str, float]:
    """rel_error_norm of a built float64 layer's dL/dx (key "x") and of its param grads, in train or eval mode.

    L = sum(w * forward(x)) for a random w, so backward receives dL/d(output) = w.
    """
    _require_float64(x, "x")
    with fixed_noise([layer], getattr(layer, "noise_rng", None)):
        w = np.random.default_rng(seed).standard_normal(layer.forward(x, train=train).shape)

        def f() -> float:
            return float(np.vdot(w, layer.forward(x, train=train)))

        dx = layer.backward(w.copy()).copy()
        grads = {p.name: p.grad.copy() for p in layer.params}
        errors = {"x": rel_error_norm(dx, numeric_gradient(f, x, eps))}
        for p in layer.params:
            errors[p.name] = rel_error_norm(grads[p.name], numeric_gradient(f, p.value, eps))
    return errors
