"""Sequential: layers run in order forward and in reverse backward; params are named "layers.{i}.W"/".b"."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from bptrain.errors import ConfigError
from bptrain.nn.initializers import auto_initializer
from bptrain.nn.layers import Activation, Dense
from bptrain.nn.params import Param
from bptrain.nn.state import check_state

DTYPES = ("float32", "float64")


class Sequential:
    def __init__(self, layers: list):
        self.layers = list(layers)

    def build(self, in_features: int, batch_size: int, dtype, rng: np.random.Generator) -> Sequential:
        """Allocate every layer's params (drawn from rng in layer order) and buffers; returns self."""
        if np.dtype(dtype).name not in DTYPES:
            raise ConfigError(f"model dtype must be one of {', '.join(DTYPES)} (got {dtype})")
        self.dtype = np.dtype(dtype)
        self.in_features = width = in_features
        for i, layer in enumerate(self.layers):
            width = layer.build(width, batch_size, self.dtype, rng, f"layers.{i}")
        self.out_features = width
        return self

    @property
    def params(self) -> list[Param]:
        return [p for layer in self.layers for p in layer.params]

    def forward(self, x: np.ndarray, *, train: bool = True) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x, train=train)
        return x

    def backward(self, grad: np.ndarray) -> np.ndarray:
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        return grad

    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of every param value, keyed by its name."""
        return {p.name: p.value.copy() for p in self.params}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Copy values back in place; ValueError naming a key that is missing, unexpected or misshapen."""
        values = {p.name: p.value for p in self.params}
        check_state(values, state, "model state")
        for name, value in values.items():
            np.copyto(value, state[name])


def build_mlp(
    hidden: list[dict],
    n_in: int,
    n_out: int,
    *,
    dtype="float32",
    seed_or_rng,
    batch_size: int,
) -> Sequential:
    """Dense + Activation per hidden layer, then a Dense output of logits (the loss applies the link).

    Each hidden dict is {"units": int, "activation": str, "init": str}; init "auto" (the default)
    picks the initializer from the activation. Layer i of the list is named f"layers.{i}".
    """
    layers = []
    for spec in hidden:
        activation = spec["activation"]
        init = spec.get("init", "auto")
        if init == "auto":
            init = auto_initializer(activation)
        layers += [Dense(spec["units"], init=init), Activation(activation)]
    layers.append(Dense(n_out, init="glorot_uniform"))
    rng = np.random.default_rng(seed_or_rng)  # a Generator is used as it is
    return Sequential(layers).build(n_in, batch_size, dtype, rng)
