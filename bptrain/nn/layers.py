"""Layers: forward passes activations on, backward passes gradients back.

build(in_features, batch_size, dtype, rng, name, noise_rng=None) allocates params, buffers and
scratch for a batch size and returns the output width. forward(x, *, train) returns a row-slice
view of a buffer the layer owns, valid until its next forward() (dropout at evaluation returns x
itself), and keeps a reference to its input; backward(grad) overwrites (never sums) param grads
and returns dL/dx: a view of an owned buffer, or `grad` itself, which backward may overwrite.
`params` lists the Params; `buffers` maps names like "layers.3.running_mean" to state that is not
learned but saved with the model.

LAYERS holds the layer types of a model's layer list, each a factory declared with its options
(nn.options): LAYERS.get(type)(**options) checks them (OptionError) and returns the layers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from functools import wraps
from typing import Any

import numpy as np

from bptrain.nn.activations import ACTIVATIONS
from bptrain.nn.buffers import reserve, rows_like
from bptrain.nn.errors import OptionError
from bptrain.nn.initializers import INITIALIZERS, auto_initializer
from bptrain.nn.names import Registry
from bptrain.nn.options import ABOVE_0, ANY, FRACTION, Option, Range
from bptrain.nn.params import Param

LAYERS = Registry("layer type", label="{name}")


def _name_in(registry: Registry, *extra: str):
    """A check that accepts a name `registry` holds (or one of `extra`)."""

    def check(value: Any) -> str:
        if value not in extra:
            registry.get(value)  # UnknownName says what exists
        return value

    return check


def _mapping(value: Any) -> dict:
    if not isinstance(value, Mapping):
        raise ValueError(value)
    return dict(value)


UNITS = Option("units", "integer", "output width", range=Range(0, low_open=True))
ACTIVATION = Option(
    "activation", "custom", "an activation name, or {name: ..., option: value}", must="an activation name",
    check=_name_in(ACTIVATIONS), config="Activation", shown="an activation below",
)
ACTIVATION_OPTIONS = Option(
    "activation_options", "custom", "the activation's options", {}, must="a mapping", check=_mapping, in_config=False
)
P = Option("p", "number", "probability that a value is zeroed in training", 0.5, FRACTION)
EPS = Option("eps", "number", "added to the variance for stability", 1e-5, ABOVE_0)
MOMENTUM = Option("momentum", "number", "weight of the batch in the running statistics", 0.1, Range(0.0, 1.0, low_open=True))


def _checked(kind: str, **given: Any) -> dict[str, Any]:
    """A layer class's constructor arguments, checked against its layer type's declaration."""
    declaration = LAYERS[kind].declaration
    return declaration.check({o.name: given[o.name] for o in declaration.nn_options if o.name in given})


class Layer:
    """No params and no buffers until build() makes them."""

    min_batch_rows = 1  # the fewest rows a training batch may hold

    def __init__(self):
        self.params: list[Param] = []
        self.buffers: dict[str, np.ndarray] = {}

    def param_grads(self, grad: np.ndarray) -> None:
        """Backward for the network's first layer: its parameter gradients, without the gradient
        with respect to its input, which nothing uses (layers that save nothing by it run backward)."""
        self.backward(grad)


class Dense(Layer):
    """y = x W + b, with W of shape (in_features, units)."""

    def __init__(self, units: int, init: str = "glorot_uniform", bias_init: float = 0.0):
        super().__init__()
        try:
            self.units = UNITS.parse(units)
        except OptionError as e:
            raise OptionError(f"dense: {e}") from None
        self.init = init
        self._initializer = INITIALIZERS.get(init)
        self.bias_init = float(bias_init)

    def build(self, in_features, batch_size, dtype, rng, name, noise_rng=None) -> int:
        self.dtype = dtype = np.dtype(dtype)
        W = self._initializer(rng, in_features, self.units, dtype)
        b = np.full(self.units, self.bias_init, dtype)
        self.W = Param(f"{name}.W", W, np.zeros_like(W), "weight")
        self.b = Param(f"{name}.b", b, np.zeros_like(b), "bias")
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
        np.add.reduce(grad, axis=0, out=self.b.grad)  # np.sum's wrapper costs more than a small batch's sum
        self._dx = reserve(self._dx, (n, self._dx.shape[1]), self.dtype)
        return np.matmul(grad, self.W.value.T, out=self._dx[:n])

    def param_grads(self, grad: np.ndarray) -> None:
        np.matmul(self._x.T, grad, out=self.W.grad)
        np.add.reduce(grad, axis=0, out=self.b.grad)  # np.sum's wrapper costs more than a small batch's sum


class Activation(Layer):
    """a = f(z) elementwise, for f = ACTIVATIONS.get(name)(**options); no params."""

    def __init__(self, name: str, **options):
        super().__init__()
        self.activation = name
        self.activation_options = dict(options)
        self.fn = ACTIVATIONS.get(name)(**options)

    def build(self, in_features, batch_size, dtype, rng, name, noise_rng=None) -> int:
        self.dtype = np.dtype(dtype)
        self._out = np.empty((batch_size, in_features), self.dtype)
        self._z = self._a = None
        return in_features

    def forward(self, x: np.ndarray, *, train: bool = True) -> np.ndarray:
        self._out, out = rows_like(self._out, x)
        self._z = x
        self._a = self.fn.forward(x, out)
        return self._a

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return self.fn.backward(grad, self._z, self._a)


class Dropout(Layer):
    """Inverted dropout: in training each entry is kept with probability 1 - p and scaled by 1/(1 - p).

    Evaluation passes x through. Masks are drawn from the noise generator given to build(), with
    Generator.random(out=) into an owned buffer; while `freeze_mask` is True, training forwards
    of a batch as big as the last one reuse its mask (a gradient check needs one fixed function).
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = _checked("dropout", p=p)["p"]
        self.freeze_mask = False

    def build(self, in_features, batch_size, dtype, rng, name, noise_rng=None) -> int:
        self.dtype = np.dtype(dtype)
        self.noise_rng = noise_rng
        self._mask = np.empty((batch_size, in_features), self.dtype)
        self._out = np.empty((batch_size, in_features), self.dtype)
        self._drawn = 0  # rows of the current mask
        self._dropping = False  # whether the latest forward applied a mask
        return in_features

    def forward(self, x: np.ndarray, *, train: bool = True) -> np.ndarray:
        self._dropping = train and self.p > 0.0
        if not self._dropping:
            return x
        n = x.shape[0]
        if self.freeze_mask and self._drawn == n:
            mask = self._mask[:n]
        else:
            if self.noise_rng is None:
                raise ValueError("dropout: training needs a noise generator; build the model with noise_rng")
            self._mask, mask = rows_like(self._mask, x)
            self.noise_rng.random(dtype=self.dtype, out=mask)
            np.greater_equal(mask, self.p, out=mask)  # kept with probability 1 - p
            mask *= 1.0 / (1.0 - self.p)
            self._drawn = n
        self._out, out = rows_like(self._out, x)
        return np.multiply(x, mask, out=out)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        if self._dropping:
            grad *= self._mask[: grad.shape[0]]
        return grad


class _Norm(Layer):
    """Shared by the norm layers: out = gamma·xhat + beta per feature, with learnable gamma and beta."""

    def __init__(self, **options: float):
        super().__init__()
        vars(self).update(_checked(self.kind, **options))

    def build(self, in_features, batch_size, dtype, rng, name, noise_rng=None) -> int:
        self.dtype = dtype = np.dtype(dtype)
        k = in_features
        self.gamma = Param(f"{name}.gamma", np.ones(k, dtype), np.zeros(k, dtype), "scale")
        self.beta = Param(f"{name}.beta", np.zeros(k, dtype), np.zeros(k, dtype), "shift")
        self.params = [self.gamma, self.beta]
        self._xhat = np.empty((batch_size, k), dtype)  # the normalized input, kept for backward
        self._out = np.empty((batch_size, k), dtype)
        self._tmp = np.empty((batch_size, k), dtype)
        return k

    def _affine(self, xhat: np.ndarray, out: np.ndarray) -> np.ndarray:
        np.multiply(xhat, self.gamma.value, out=out)
        out += self.beta.value
        return out

    def _param_grads(self, grad: np.ndarray, xhat: np.ndarray, tmp: np.ndarray) -> None:
        np.sum(grad, axis=0, out=self.beta.grad)
        np.multiply(grad, xhat, out=tmp)
        np.sum(tmp, axis=0, out=self.gamma.grad)


class BatchNorm(_Norm):
    """torch.nn.BatchNorm1d: normalizes each feature over the batch.

    Training uses the batch mean and biased variance, and moves the running statistics:
    running_mean ← (1 - momentum)·running_mean + momentum·mean, and running_var likewise with the
    unbiased variance (n/(n - 1) times the biased one). Evaluation uses the running statistics.
    """

    min_batch_rows = 2  # a variance over one row is undefined

    kind = "batch_norm"

    def __init__(self, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__(momentum=momentum, eps=eps)

    def build(self, in_features, batch_size, dtype, rng, name, noise_rng=None) -> int:
        k = super().build(in_features, batch_size, dtype, rng, name)
        self.running_mean = np.zeros(k, self.dtype)
        self.running_var = np.ones(k, self.dtype)
        self.buffers = {f"{name}.running_mean": self.running_mean, f"{name}.running_var": self.running_var}
        self._mean, self._var, self._invstd, self._k = (np.empty(k, self.dtype) for _ in range(4))
        self._train = False
        return k

    def forward(self, x: np.ndarray, *, train: bool = True) -> np.ndarray:
        n = x.shape[0]
        self._xhat, xhat = rows_like(self._xhat, x)
        self._out, out = rows_like(self._out, x)
        self._train, invstd = train, self._invstd
        if train:
            if n < 2:
                raise OptionError(
                    f"batch_norm needs at least 2 rows in a training batch (got {n}); "
                    "choose a batch size that leaves no last batch of one row"
                )
            np.mean(x, axis=0, out=self._mean)
            np.subtract(x, self._mean, out=xhat)
            np.multiply(xhat, xhat, out=out)
            np.mean(out, axis=0, out=self._var)  # biased: it normalizes
            self._update_running_stats(n)
            np.add(self._var, self.eps, out=invstd)
        else:
            np.subtract(x, self.running_mean, out=xhat)
            np.add(self.running_var, self.eps, out=invstd)
        np.sqrt(invstd, out=invstd)
        np.divide(1.0, invstd, out=invstd)
        xhat *= invstd
        return self._affine(xhat, out)

    def _update_running_stats(self, n: int) -> None:
        m = self.momentum
        self.running_mean *= 1.0 - m
        self.running_mean += np.multiply(self._mean, m, out=self._k)
        self.running_var *= 1.0 - m
        self.running_var += np.multiply(self._var, m * n / (n - 1), out=self._k)  # unbiased

    def backward(self, grad: np.ndarray) -> np.ndarray:
        n = grad.shape[0]
        xhat = self._xhat[:n]
        self._tmp, tmp = rows_like(self._tmp, grad)
        self._param_grads(grad, xhat, tmp)
        if self._train:  # the batch statistics depend on x: dx = gamma·invstd·(g - mean(g) - xhat·mean(g·xhat))
            np.multiply(xhat, self.gamma.grad, out=tmp)
            tmp += self.beta.grad
            tmp *= 1.0 / n
            grad -= tmp
        grad *= np.multiply(self.gamma.value, self._invstd, out=self._k)
        return grad


class LayerNorm(_Norm):
    """torch.nn.LayerNorm over the feature axis: each row normalized by its own mean and biased
    variance, the same in training and evaluation."""

    kind = "layer_norm"

    def __init__(self, eps: float = 1e-5):
        super().__init__(eps=eps)

    def build(self, in_features, batch_size, dtype, rng, name, noise_rng=None) -> int:
        k = super().build(in_features, batch_size, dtype, rng, name)
        self._mean = np.empty((batch_size, 1), self.dtype)
        self._invstd = np.empty((batch_size, 1), self.dtype)  # kept for backward
        self._m2 = np.empty((batch_size, 1), self.dtype)
        return k

    def forward(self, x: np.ndarray, *, train: bool = True) -> np.ndarray:
        n = x.shape[0]
        self._xhat, xhat = rows_like(self._xhat, x)
        self._out, out = rows_like(self._out, x)
        self._mean = reserve(self._mean, (n, 1), self.dtype)
        self._invstd = reserve(self._invstd, (n, 1), self.dtype)
        mean, invstd = self._mean[:n], self._invstd[:n]
        np.mean(x, axis=1, keepdims=True, out=mean)
        np.subtract(x, mean, out=xhat)
        np.multiply(xhat, xhat, out=out)
        np.mean(out, axis=1, keepdims=True, out=invstd)
        invstd += self.eps
        np.sqrt(invstd, out=invstd)
        np.divide(1.0, invstd, out=invstd)
        xhat *= invstd
        return self._affine(xhat, out)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        n = grad.shape[0]
        xhat, invstd = self._xhat[:n], self._invstd[:n]
        self._tmp, tmp = rows_like(self._tmp, grad)
        self._m2 = reserve(self._m2, (n, 1), self.dtype)
        m1, m2 = self._mean[:n], self._m2[:n]  # the forward's mean is no longer needed
        self._param_grads(grad, xhat, tmp)
        grad *= self.gamma.value  # dL/dxhat; then dx = invstd·(gh - mean(gh) - xhat·mean(gh·xhat))
        np.mean(grad, axis=1, keepdims=True, out=m1)
        np.multiply(grad, xhat, out=tmp)
        np.mean(tmp, axis=1, keepdims=True, out=m2)
        grad -= np.multiply(xhat, m2, out=tmp)
        grad -= m1
        grad *= invstd
        return grad


# --- the layer types of a model's layer list ----------------------------------------------------------


def _layer_type(name: str, *options: Option, doc: str):
    """Register a factory of layers under `name`; calling it checks the options first."""

    def add(factory):
        @wraps(factory)
        def checked(**given: Any) -> list[Layer]:
            return factory(**checked.declaration.check(given))

        return LAYERS.register(name, *options, doc=doc)(checked)

    return add


@_layer_type(
    "dense",
    UNITS,
    replace(ACTIVATION, default="relu"),
    ACTIVATION_OPTIONS,
    Option("init", "custom", "weight initializer, or `auto` (see below)", "auto", must="an initializer name or 'auto'",
           check=_name_in(INITIALIZERS, "auto"), config="InitializerOrAuto", shown="an initializer below, or `auto`"),
    Option("bias_init", "number", "starting value of every bias", 0.0, ANY),
    Option("dropout", "number", "dropout after the activation when > 0", 0.0, FRACTION),
    doc="`x W + b`, then the activation, then dropout when `dropout` > 0",
)
def dense(units, activation, activation_options, init, bias_init, dropout) -> list[Layer]:
    init = auto_initializer(activation) if init == "auto" else init
    layers: list[Layer] = [Dense(units, init=init, bias_init=bias_init), Activation(activation, **activation_options)]
    return layers + ([Dropout(dropout)] if dropout > 0.0 else [])


@_layer_type(
    "activation",
    ACTIVATION,
    ACTIVATION_OPTIONS,
    doc="an activation on its own, e.g. after a `batch_norm`",
)
def activation(activation, activation_options) -> list[Layer]:
    return [Activation(activation, **activation_options)]


@_layer_type(
    "dropout",
    P,
    doc="inverted dropout: zeroes each value with probability p and scales the rest by 1/(1-p) in training",
)
def dropout(p) -> list[Layer]:
    return [Dropout(p)]


@_layer_type(
    "batch_norm",
    MOMENTUM,
    EPS,
    doc="as `torch.nn.BatchNorm1d`: batch statistics in training, running statistics (kept in `model.npz`) at evaluation",
)
def batch_norm(momentum, eps) -> list[Layer]:
    return [BatchNorm(momentum=momentum, eps=eps)]


@_layer_type("layer_norm", EPS, doc="as `torch.nn.LayerNorm` over the features of each row; learnable scale and shift")
def layer_norm(eps) -> list[Layer]:
    return [LayerNorm(eps=eps)]
