"""Activations: forward(z, out) writes f(z) into out; backward(grad, z, a) multiplies grad in place by f'(z).

The derivative is computed from the output `a` where the maths allows. backward's optional
`tmp` (shaped like grad) is scratch for the derivative; without it one temporary is allocated.
"""

from __future__ import annotations

import numpy as np

from bptrain.registry import Registry

ACTIVATIONS = Registry("activation")


def sigmoid(z: np.ndarray, out: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-z)), computed as exp(z - softplus(z)) so that no |z| overflows."""
    np.logaddexp(0.0, z, out=out)  # softplus(z) = max(z, 0) + log1p(exp(-|z|))
    np.subtract(z, out, out=out)  # log sigmoid(z) <= 0
    return np.exp(out, out=out)


@ACTIVATIONS.register("identity")
class Identity:
    def forward(self, z, out):
        np.copyto(out, z)
        return out

    def backward(self, grad, z, a, tmp=None):
        return grad


@ACTIVATIONS.register("relu")
class ReLU:
    def forward(self, z, out):
        return np.maximum(z, 0.0, out=out)

    def backward(self, grad, z, a, tmp=None):
        grad *= np.greater(a, 0.0, out=tmp)  # relu' = 1 where the output is positive
        return grad


@ACTIVATIONS.register("tanh")
class Tanh:
    def forward(self, z, out):
        return np.tanh(z, out=out)

    def backward(self, grad, z, a, tmp=None):
        d = np.multiply(a, a, out=tmp)
        grad *= np.subtract(1.0, d, out=d)  # tanh' = 1 - a²
        return grad


@ACTIVATIONS.register("sigmoid")
class Sigmoid:
    def forward(self, z, out):
        return sigmoid(z, out)

    def backward(self, grad, z, a, tmp=None):
        d = np.subtract(1.0, a, out=tmp)
        d *= a  # sigmoid' = a (1 - a)
        grad *= d
        return grad
