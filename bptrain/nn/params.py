"""A parameter is a named value, its gradient and its kind; the name is also its key in model files.

`pack` lays a model's params back to back in one array (values) and another (grads); `flat` finds
that layout again, so that an optimizer can update them all in one pass.

kind says what the value is, so that regularization can pick the weights alone: "weight" (a
dense layer's W), "bias" (its b), "scale" and "shift" (a norm layer's gamma and beta).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KINDS = ("weight", "bias", "scale", "shift")


@dataclass(slots=True)
class Param:
    name: str  # "layers.0.W"
    value: np.ndarray  # changed in place, by the optimizer only
    grad: np.ndarray  # overwritten by each backward, same shape and dtype as value
    kind: str = "weight"  # one of KINDS


# --- all params in one array --------------------------------------------------------------------


def parts(array: np.ndarray, params: list[Param]) -> list[np.ndarray]:
    """Views of the flat `array`, one per param in order, shaped as its value."""
    views, start = [], 0
    for p in params:
        views.append(array[start : start + p.value.size].reshape(p.value.shape))
        start += p.value.size
    return views


def pack(params: list[Param]) -> None:
    """Move the params' values into one array, back to back in order, and their grads into another;
    each param keeps a view of its part. An optimizer then updates all of them with one call per
    operation (`flat`), which saves a call per param and operation."""
    if len(params) < 2 or len({p.value.dtype for p in params}) > 1:
        return
    total = sum(p.value.size for p in params)
    values, grads = np.empty(total, params[0].value.dtype), np.zeros(total, params[0].value.dtype)
    for p, value, grad in zip(params, parts(values, params), parts(grads, params)):
        value[...], grad[...] = p.value, p.grad
        p.value, p.grad = value, grad


def flat(params: list[Param]) -> list[Param] | None:
    """[one Param spanning all of `params`] when their values, and their grads, lie back to back in
    one array each (as `pack` leaves them); None otherwise. The update rules are element-wise,
    so one pass over the whole array computes exactly what a pass per param does."""
    values, grads = _span([p.value for p in params]), _span([p.grad for p in params])
    if len(params) < 2 or values is None or grads is None:
        return None
    return [Param("all", values, grads)]


def _span(arrays: list[np.ndarray]) -> np.ndarray | None:
    """The 1-d array that `arrays` (C-contiguous views of one base) tile in order, or None."""
    base = arrays[0].base if arrays else None
    if base is None or base.ndim != 1 or not all(a.base is base and a.flags.c_contiguous for a in arrays):
        return None
    origin = base.__array_interface__["data"][0]
    start = end = (arrays[0].__array_interface__["data"][0] - origin) // base.itemsize
    for a in arrays:
        if a.__array_interface__["data"][0] != origin + end * base.itemsize:
            return None
        end += a.size
    return base[start:end]
