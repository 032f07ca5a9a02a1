"""Sequential: layers run in order forward and in reverse backward; layer i's params and buffers are named "layers.{i}.<name>"."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from bptrain.nn.errors import OptionError, UnknownName
from bptrain.nn.layers import LAYERS, Dense
from bptrain.nn.params import Param, pack
from bptrain.nn.state import check_state

DTYPES = ("float32", "float64")


class Sequential:
    def __init__(self, layers: list):
        self.layers = list(layers)
        self.noise_rng: np.random.Generator | None = None

    def build(
        self,
        in_features: int,
        batch_size: int,
        dtype,
        rng: np.random.Generator,
        noise_rng: np.random.Generator | None = None,
    ) -> Sequential:
        """Allocate every layer's params (drawn from rng in layer order) and buffers; returns self.

        noise_rng draws the dropout masks (None: the model cannot train with dropout).
        """
        if np.dtype(dtype).name not in DTYPES:
            raise OptionError(f"model dtype must be one of {', '.join(DTYPES)} (got {dtype})")
        self.dtype = np.dtype(dtype)
        self.noise_rng = noise_rng
        self.in_features = width = in_features
        for i, layer in enumerate(self.layers):
            width = layer.build(width, batch_size, self.dtype, rng, f"layers.{i}", noise_rng=noise_rng)
        self.out_features = width
        pack(self.params)
        return self

    @property
    def min_batch_rows(self) -> int:
        """The fewest rows a training batch may hold (batch norm needs 2)."""
        return max((getattr(layer, "min_batch_rows", 1) for layer in self.layers), default=1)

    @property
    def params(self) -> list[Param]:
        return [p for layer in self.layers for p in layer.params]

    @property
    def buffers(self) -> dict[str, np.ndarray]:
        """The layers' saved, unlearned state (batch norm running statistics), live, by name."""
        return {name: array for layer in self.layers for name, array in layer.buffers.items()}

    def forward(self, x: np.ndarray, *, train: bool = True) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x, train=train)
        return x

    def backward(self, grad: np.ndarray) -> np.ndarray:
        """Every param.grad from dL/dlogits; returns dL/dx, the gradient with respect to the input."""
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        return grad

    def param_grads(self, grad: np.ndarray) -> None:
        """Every param.grad from dL/dlogits, as backward, without dL/dx: training never uses it,
        and for a first dense layer it is a third of that layer's matrix work."""
        for layer in reversed(self.layers[1:]):
            grad = layer.backward(grad)
        self.layers[0].param_grads(grad)

    def _state(self) -> dict[str, np.ndarray]:
        return {**{p.name: p.value for p in self.params}, **self.buffers}

    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of every param value and buffer, keyed by its name."""
        return {name: array.copy() for name, array in self._state().items()}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Copy values back in place; ValueError naming a key that is missing, unexpected or misshapen."""
        arrays = self._state()
        check_state(arrays, state, "model state")
        for name, array in arrays.items():
            np.copyto(array, state[name])


def _spec(i: int, spec: Mapping) -> tuple[str, dict]:
    """(layer type, its options) of a layer dict; keys given as None count as missing, so a flat
    dump of every layer type's keys is accepted."""
    options = {key: value for key, value in spec.items() if value is not None}
    kind = options.pop("type", "dense")
    if kind not in LAYERS:
        raise UnknownName(f"layers[{i}]: {LAYERS.unknown(kind)}")
    return kind, options


def hidden_layers(specs: list[Mapping]) -> list:
    """The layers that the dicts describe (see build_model), in order."""
    layers: list = []
    for i, spec in enumerate(specs):
        kind, options = _spec(i, spec)
        try:
            layers += LAYERS[kind](**options)
        except OptionError as e:
            raise type(e)(f"layers[{i}]: {e}") from None
    return layers


def build_model(
    layers: list[Mapping],
    n_in: int,
    n_out: int,
    *,
    dtype="float32",
    rng: np.random.Generator,
    noise_rng: np.random.Generator | None = None,
    batch_size: int,
    output_init: str = "glorot_uniform",
) -> Sequential:
    """The hidden layers that the dicts describe, then a Dense(n_out) output of logits (the loss applies the link).

    Layer dicts: "type" (default "dense") names a layer type of nn.layers.LAYERS, and the other keys
    are its declared options, missing (or None) keys taking their defaults; e.g.
      {"type": "dense", "units": int, "activation": "relu", "activation_options": {}, "init": "auto",
       "bias_init": 0.0, "dropout": 0.0}  -> Dense + Activation (+ Dropout(dropout) when > 0);
       init "auto" picks the initializer from the activation (auto_initializer)
    rng draws the initial weights in layer order; noise_rng (kept as model.noise_rng) the dropout masks.
    Sequential layer i (after dense dicts expand) is named f"layers.{i}".
    """
    model = Sequential([*hidden_layers(layers), Dense(n_out, init=output_init)])
    return model.build(n_in, batch_size, dtype, rng, noise_rng)

