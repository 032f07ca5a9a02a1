"""Layers: forward passes activations on, backward passes gradients back.

build() allocates params and buffers for a batch size; forward() returns a row-slice view of a
buffer the layer owns, valid until its next forward(), and keeps a reference to its input;
backward(grad) overwrites (never sums) param grads and returns dL/dx: a view of an owned
buffer, or `grad` itself, which backward may overwrite.
"""

from __future__ import annotations

import numpy as np

from bptrain.errors import ConfigError
from bptrain.nn.activations import ACTIVATIONS
from bptrain.nn.buffers import reserve
from bptrain.nn.initializers import INITIALIZERS
from bptrain.nn.params import Param
from bptrain.registry import Registry

LAYERS = Registry("layer")


@LAYERS.register("dense")
class Dense:
    """y = x W + b, with W of shape (in_features, units)."""

    def __init__(self, units: int, init: str = "glorot_uniform", bias_init: float = 0.0):
        if units < 1:
            raise ConfigError(f"a dense layer needs at least 1 unit (got {units})")
        self.units = units
        self.init = init
        self._initializer = INITIALIZERS.get(init)
        self.bias_init = bias_init
        self.params: list[Param] = []

    def build(self, in_features: int, batch_size: int, dtype, rng: np.random.Generator, name: str) -> int:
        self.dtype = dtype = np.dtype(dtype)
        W = self._initializer(rng, in_features, self.units, dtype)
        b = np.full(self.units, self.bias_init, dtype)
        self.W = Param(f"{name}.W", W, np.zeros_like(W))
        self.b = Param(f"{name}.b", b, np.zeros_like(b))
        self.params = [self.W, self.b]
        self._out = np.empty((batch_size, self.units), dtype)
        self._dx = np.empty((batch_size, in_features), dtype)
        self._x = None
        return self.units

    def forward(self, x: np.ndarray, *, train: bool = True) -> np.ndarray:
        n = x.shape[0]
        self._out = reserve(self._out, (n, self.units), self.dtype)
        out = np.matmul(x, self.W.value, out=self._out[:n])
        out += self.b.value
        self._x = x
        return out

    def backward(self, grad: np.ndarray) -> np.ndarray:
        n = grad.shape[0]
        np.matmul(self._x.T, grad, out=self.W.grad)
        np.sum(grad, axis=0, out=self.b.grad)
        self._dx = reserve(self._dx, (n, self._dx.shape[1]), self.dtype)
        return np.matmul(grad, self.W.value.T, out=self._dx[:n])


@LAYERS.register("activation")
class Activation:
    """a = f(z) elementwise, for f an ACTIVATIONS entry; no params."""

    def __init__(self, name: str):
        self.activation = name
        self.fn = ACTIVATIONS.get(name)()
        self.params: list[Param] = []

    def build(self, in_features: int, batch_size: int, dtype, rng: np.random.Generator, name: str) -> int:
        self.dtype = np.dtype(dtype)
        self._out = np.empty((batch_size, in_features), self.dtype)
        self._tmp = np.empty((batch_size, in_features), self.dtype)  # scratch for the derivative
        self._z = self._a = None
        return in_features

    def forward(self, x: np.ndarray, *, train: bool = True) -> np.ndarray:
        self._out = reserve(self._out, x.shape, self.dtype)
        self._z = x
        self._a = self.fn.forward(x, self._out[: x.shape[0]])
        return self._a

    def backward(self, grad: np.ndarray) -> np.ndarray:
        self._tmp = reserve(self._tmp, grad.shape, self.dtype)
        return self.fn.backward(grad, self._z, self._a, self._tmp[: grad.shape[0]])
