"""Optimizers: step(lr) updates each Param.value in place from its grad, as PyTorch's namesake does.

State and scratch arrays are allocated once, in __init__, with each param's dtype; step() never
allocates and never changes p.grad. state_dict()/load_state_dict() copy the state out and back in.
"""

from __future__ import annotations

import math

import numpy as np

from bptrain.errors import ConfigError
from bptrain.nn.params import Param
from bptrain.nn.state import check_state
from bptrain.registry import Registry

OPTIMIZERS = Registry("optimizer")


def _add_scaled(y: np.ndarray, x: np.ndarray, a: float, tmp: np.ndarray) -> None:
    """y += a * x, using tmp as scratch (tmp may be x itself, which is then overwritten)."""
    np.multiply(x, a, out=tmp)
    y += tmp


class Optimizer:
    """Owns the params, the step count t and named state arrays; subclasses write step()."""

    def __init__(self, params: list[Param]):
        self.params = list(params)
        self.t = 0  # steps taken
        self._state: dict[str, list[np.ndarray]] = {}
        self._scratch = [np.empty_like(p.value) for p in self.params]

    def _zeros(self, key: str) -> list[np.ndarray]:
        """One zero array per param, saved in state_dict() as f"{key}.{param name}"."""
        self._state[key] = [np.zeros_like(p.value) for p in self.params]
        return self._state[key]

    def step(self, lr: float) -> None:
        raise NotImplementedError

    def _arrays(self) -> dict[str, np.ndarray]:
        """The live state arrays, keyed as in state_dict()."""
        return {
            f"{key}.{p.name}": a for key, arrays in self._state.items() for p, a in zip(self.params, arrays)
        }

    def state_dict(self) -> dict[str, np.ndarray]:
        state = {key: a.copy() for key, a in self._arrays().items()}
        state["t"] = np.array(self.t, dtype=np.int64)
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy `state` back in place; ValueError naming the key when keys or shapes differ."""
        arrays = self._arrays()
        check_state({**arrays, "t": np.array(self.t)}, state, "optimizer state")
        for key, a in arrays.items():
            np.copyto(a, state[key])
        self.t = int(state["t"])


@OPTIMIZERS.register("sgd")
class SGD(Optimizer):
    """torch.optim.SGD: coupled weight decay; the momentum buffer starts as the first gradient."""

    def __init__(
        self,
        params: list[Param],
        *,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ):
        if momentum < 0.0 or weight_decay < 0.0:
            raise ConfigError(f"sgd: momentum and weight_decay must be >= 0 (got {momentum}, {weight_decay})")
        if nesterov and (momentum <= 0.0 or dampening != 0.0):
            raise ConfigError("sgd: nesterov needs momentum > 0 and dampening = 0")
        super().__init__(params)
        self.momentum = float(momentum)
        self.dampening = float(dampening)
        self.nesterov = nesterov
        self.weight_decay = float(weight_decay)
        self._buf = self._zeros("momentum_buffer") if momentum else []

    def step(self, lr: float) -> None:
        lr = float(lr)
        first = self.t == 0
        self.t += 1
        for i, (p, tmp) in enumerate(zip(self.params, self._scratch)):
            d_p = p.grad
            if self.weight_decay:
                d_p = np.multiply(p.value, self.weight_decay, out=tmp)
                d_p += p.grad  # g + wd * p
            if not self.momentum:
                _add_scaled(p.value, d_p, -lr, tmp)
                continue
            buf = self._buf[i]
            if first:
                np.copyto(buf, d_p)
            else:
                buf *= self.momentum
                _add_scaled(buf, d_p, 1.0 - self.dampening, tmp)  # nesterov has dampening 0: d_p intact
            if self.nesterov:  # p -= lr * (d_p + momentum * buf)
                _add_scaled(p.value, d_p, -lr, tmp)
                _add_scaled(p.value, buf, -lr * self.momentum, tmp)
            else:
                _add_scaled(p.value, buf, -lr, tmp)


@OPTIMIZERS.register("adam")
class Adam(Optimizer):
    """torch.optim.Adam: coupled L2 weight decay, bias corrections, eps added after sqrt(v_hat)."""

    def __init__(
        self,
        params: list[Param],
        *,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ):
        beta1, beta2 = betas
        if not (0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0):
            raise ConfigError(f"adam: betas must be in [0, 1) (got {tuple(betas)})")
        if eps < 0.0 or weight_decay < 0.0:
            raise ConfigError(f"adam: eps and weight_decay must be >= 0 (got {eps}, {weight_decay})")
        super().__init__(params)
        self.beta1, self.beta2 = float(beta1), float(beta2)
        self.eps = float(eps)
        self.weight_decay = float(weight_decay)
        self.amsgrad = amsgrad
        self._m = self._zeros("m")
        self._v = self._zeros("v")
        self._v_max = self._zeros("v_max") if amsgrad else self._v  # step() uses v_max either way
        self._decayed = [np.empty_like(p.value) for p in self.params] if weight_decay else []

    def step(self, lr: float) -> None:
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        moments = zip(self.params, self._m, self._v, self._v_max, self._scratch)
        step_size = float(lr) / (1.0 - b1**self.t)
        bc2_sqrt = math.sqrt(1.0 - b2**self.t)
        for i, (p, m, v, v_max, tmp) in enumerate(moments):
            g = p.grad
            if self.weight_decay:
                g = np.multiply(p.value, self.weight_decay, out=self._decayed[i])
                g += p.grad  # g + wd * p
            m *= b1
            _add_scaled(m, g, 1.0 - b1, tmp)
            v *= b2
            np.multiply(g, g, out=tmp)
            _add_scaled(v, tmp, 1.0 - b2, tmp)
            if self.amsgrad:
                np.maximum(v_max, v, out=v_max)
            denom = np.sqrt(v_max, out=tmp)
            denom /= bc2_sqrt
            denom += self.eps
            np.divide(m, denom, out=tmp)
            _add_scaled(p.value, tmp, -step_size, tmp)
