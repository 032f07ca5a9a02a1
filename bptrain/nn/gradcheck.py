"""Gradient checks: backprop gradients against central finite differences, in float64.

The error of one gradient array is ‖a − n‖₂ / (‖a‖₂ + ‖n‖₂), 0 when both are zero. Per-entry
ratios would blow up on entries that are ~0 (a dead ReLU unit), where differences see round-off.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """‖a − n‖ / (‖a‖ + ‖n‖): 0 for identical arrays, 1 for opposite or unrelated ones."""
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


def gradcheck(model, loss, x, y, *, eps: float = 1e-6) -> dict[str, float]:
    """Relative error (see module docstring) of each param's backprop gradient, keyed by param name.

    Leaves the param values unchanged and each param's grad holding its backprop gradient.
    """
    for p in model.params:
        _require_float64(p.value, p.name)
    x = np.asarray(x, dtype=np.float64)

    def f() -> float:
        return loss(model.forward(x, train=True), y)[0]

    _, grad = loss(model.forward(x, train=True), y)
    model.backward(grad)
    return {p.name: relative_error(p.grad, numeric_gradient(f, p.value, eps)) for p in model.params}


def layer_gradcheck(layer, x: np.ndarray, *, eps: float = 1e-6, seed: int = 0) -> dict[str, float]:
    """Relative errors of a built float64 layer's dL/dx (key "x") and param grads.

    L = sum(w * forward(x)) for a random w, so backward receives dL/d(output) = w.
    """
    _require_float64(x, "x")
    w = np.random.default_rng(seed).standard_normal(layer.forward(x).shape)

    def f() -> float:
        return float(np.vdot(w, layer.forward(x)))

    layer.forward(x)
    dx = layer.backward(w.copy()).copy()
    grads = {p.name: p.grad.copy() for p in layer.params}
    errors = {"x": relative_error(dx, numeric_gradient(f, x, eps))}
    for p in layer.params:
        errors[p.name] = relative_error(grads[p.name], numeric_gradient(f, p.value, eps))
    return errors
