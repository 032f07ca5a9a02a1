"""Sequential: layers run in order forward and in reverse backward; layer i's params and buffers are named "layers.{i}.<name>"."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import numpy as np

from bptrain.errors import ConfigError
from bptrain.nn.initializers import auto_initializer
from bptrain.nn.layers import Activation, BatchNorm, Dense, Dropout, LayerNorm
from bptrain.nn.params import Param
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
            raise ConfigError(f"model dtype must be one of {', '.join(DTYPES)} (got {dtype})")
        self.dtype = np.dtype(dtype)
        self.noise_rng = noise_rng
        self.in_features = width = in_features
        for i, layer in enumerate(self.layers):
            width = layer.build(width, batch_size, self.dtype, rng, f"layers.{i}", noise_rng=noise_rng)
        self.out_features = width
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
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        return grad

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


NONE: Mapping = MappingProxyType({})
LAYER_KEYS = {  # each layer type's keys in build_model's dicts, with their defaults (None: required)
    "dense": {"units": None, "activation": "relu", "activation_options": NONE, "init": "auto", "bias_init": 0.0, "dropout": 0.0},
    "activation": {"activation": None, "activation_options": NONE},
    "dropout": {"p": None},
    "batch_norm": {"momentum": 0.1, "eps": 1e-5},
    "layer_norm": {"eps": 1e-5},
}


def _spec(i: int, spec: Mapping) -> dict:
    """spec with its "type" (default "dense") and every default filled in; ConfigError on unknown or missing keys.

    Keys given as None count as missing, so a flat dump of every layer type's keys is accepted.
    """
    spec = {key: value for key, value in spec.items() if value is not None}
    kind = spec.get("type", "dense")
    if kind not in LAYER_KEYS:
        raise ConfigError(f"layers[{i}]: unknown layer type {kind!r}; choose from {', '.join(LAYER_KEYS)}")
    keys = LAYER_KEYS[kind]
    for key in spec:
        if key != "type" and key not in keys:
            raise ConfigError(f"layers[{i}]: unknown key {key!r} for a {kind} layer; allowed: {', '.join(keys)}")
    full = {"type": kind, **keys, **spec}
    missing = [key for key, value in full.items() if value is None]
    if missing:
        raise ConfigError(f"layers[{i}]: a {kind} layer needs {', '.join(missing)}")
    return full


def hidden_layers(specs: list[Mapping]) -> list:
    """The layers that the dicts describe (see build_model), in order."""
    layers: list = []
    for i, spec in enumerate(specs):
        s = _spec(i, spec)
        kind = s["type"]
        if kind == "dense":
            init = auto_initializer(s["activation"]) if s["init"] == "auto" else s["init"]
            layers += [Dense(s["units"], init=init, bias_init=s["bias_init"])]
            layers += [Activation(s["activation"], **s["activation_options"])]
            layers += [Dropout(s["dropout"])] if s["dropout"] > 0.0 else []
        elif kind == "activation":
            layers.append(Activation(s["activation"], **s["activation_options"]))
        elif kind == "dropout":
            layers.append(Dropout(s["p"]))
        elif kind == "batch_norm":
            layers.append(BatchNorm(momentum=s["momentum"], eps=s["eps"]))
        else:
            layers.append(LayerNorm(eps=s["eps"]))
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

    Layer dicts, missing (or None) keys taking the defaults shown:
      {"type": "dense", "units": int, "activation": "relu", "activation_options": {}, "init": "auto",
       "bias_init": 0.0, "dropout": 0.0}  -> Dense + Activation (+ Dropout(dropout) when > 0);
       init "auto" picks the initializer from the activation (auto_initializer)
      {"type": "activation", "activation": str, "activation_options": {}}
      {"type": "dropout", "p": float}
      {"type": "batch_norm", "momentum": 0.1, "eps": 1e-5}
      {"type": "layer_norm", "eps": 1e-5}
    rng draws the initial weights in layer order; noise_rng (kept as model.noise_rng) the dropout masks.
    Sequential layer i (after dense dicts expand) is named f"layers.{i}".
    """
    model = Sequential([*hidden_layers(layers), Dense(n_out, init=output_init)])
    return model.build(n_in, batch_size, dtype, rng, noise_rng)

