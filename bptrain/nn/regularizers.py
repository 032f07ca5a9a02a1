"""Weight penalties: value() = l1·Σ|w| + l2·Σw² (Keras' convention), add_grad() adds its gradient to p.grad.

The sums run over the "weight" params (dense W), and over every param when include_bias is True.
Call add_grad() after the model's backward and before the optimizer step; it allocates nothing.
"""

from __future__ import annotations

import math

import numpy as np

from bptrain.nn.errors import OptionError
from bptrain.nn.params import Param


class Regularizer:
    def __init__(self, params: list[Param], *, l1: float = 0.0, l2: float = 0.0, include_bias: bool = False):
        for key, value in (("l1", l1), ("l2", l2)):
            if not (math.isfinite(value) and value >= 0.0):
                raise OptionError(f"regularization {key} must be a finite number >= 0 (got {value})")
        self.l1, self.l2 = float(l1), float(l2)
        self.include_bias = include_bias
        self.params = [p for p in params if include_bias or p.kind == "weight"]
        self._scratch = [np.empty_like(p.value) for p in self.params] if self.l1 or self.l2 else []

    def value(self) -> float:
        """l1·Σ|w| + l2·Σw² as a Python float."""
        total = 0.0
        for p, tmp in zip(self.params, self._scratch):
            if self.l1:
                total += self.l1 * float(np.sum(np.abs(p.value, out=tmp)))
            if self.l2:
                total += self.l2 * float(np.vdot(p.value, p.value))
        return total

    def add_grad(self) -> None:
        """p.grad += l1·sign(w) + 2·l2·w, in place (sign(0) = 0)."""
        for p, tmp in zip(self.params, self._scratch):
            if self.l1:
                p.grad += np.multiply(np.sign(p.value, out=tmp), self.l1, out=tmp)
            if self.l2:
                p.grad += np.multiply(p.value, 2.0 * self.l2, out=tmp)
