"""Optimizers: step(lr) updates each Param.value in place from its grad, as PyTorch's namesake does.

The base class owns the params, the step count t and every array: state and scratch are allocated
once, in __init__, with each param's dtype, and scalars are Python floats, so float32 stays float32.
A subclass validates its options and writes its update rule; step() never allocates and never
changes p.grad. The learning rate is not an option: the caller passes it to every step() (it comes
from a schedule); `default_lr` is PyTorch's default. `defaults` maps each keyword-only option to its
default, read from the subclass's __init__ signature. state_dict()/load_state_dict() copy the state
out and back in (arrays only; the step count "t" as a 0-d int64 array) so a resumed run continues
bit for bit.
"""

from __future__ import annotations

import inspect
import math
from numbers import Real
from typing import Any, ClassVar

import numpy as np

from bptrain.errors import ConfigError
from bptrain.nn.params import Param
from bptrain.nn.state import check_state
from bptrain.registry import Registry

OPTIMIZERS = Registry("optimizer")


# --- option checks: each raises ConfigError("<optimizer>: <option> must be ... (got ...)") --------


def _number(optimizer: str, option: str, value: Any, low: float = 0.0, high: float | None = None) -> float:
    """`value` as a float in [low, high] (high None: no upper bound)."""
    ok = isinstance(value, Real) and not isinstance(value, bool) and low <= value
    if ok and high is not None:
        ok = value <= high
    if not ok:
        where = f">= {low:g}" if high is None else f"in [{low:g}, {high:g}]"
        raise ConfigError(f"{optimizer}: {option} must be a number {where} (got {value!r})")
    return float(value)


def _flag(optimizer: str, option: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"{optimizer}: {option} must be true or false (got {value!r})")
    return bool(value)


def _betas(optimizer: str, betas: Any) -> tuple[float, float]:
    ok = (
        isinstance(betas, (tuple, list))
        and len(betas) == 2
        and all(isinstance(b, Real) and not isinstance(b, bool) and 0.0 <= b < 1.0 for b in betas)
    )
    if not ok:
        raise ConfigError(f"{optimizer}: betas must be two numbers in [0, 1) (got {betas!r})")
    return float(betas[0]), float(betas[1])


# --- running averages, in place ------------------------------------------------------------------


def _average(avg: np.ndarray, x: np.ndarray, beta: float, tmp: np.ndarray) -> None:
    """avg = beta avg + (1 - beta) x, in place; tmp is scratch."""
    avg *= beta
    np.multiply(x, 1.0 - beta, out=tmp)
    avg += tmp


def _average_square(avg: np.ndarray, x: np.ndarray, beta: float, tmp: np.ndarray) -> None:
    """avg = beta avg + (1 - beta) x², in place; tmp is scratch."""
    avg *= beta
    np.multiply(x, x, out=tmp)
    tmp *= 1.0 - beta
    avg += tmp


# --- the base class -------------------------------------------------------------------------------


class Optimizer:
    """Owns the params, the step count t and named state arrays; subclasses write step()."""

    default_lr: ClassVar[float]
    defaults: ClassVar[dict[str, Any]] = {}
    _scalars: ClassVar[tuple[str, ...]] = ()  # float attributes saved as 0-d float64 state

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        options = inspect.signature(cls.__init__).parameters.values()
        cls.defaults = {o.name: o.default for o in options if o.kind is o.KEYWORD_ONLY}

    def __init__(self, params: list[Param], *, l2: float = 0.0):
        """`l2`: coupled weight decay, added to the gradient as l2 * p by _grad()."""
        self.params = list(params)
        self.t = 0  # steps taken
        self._state: dict[str, list[np.ndarray]] = {}
        self._l2 = l2
        self._g = self._empty() if l2 else []

    def _zeros(self, key: str, fill: float = 0.0) -> list[np.ndarray]:
        """One array per param filled with `fill`, saved in state_dict() as f"{key}.{param name}"."""
        self._state[key] = [np.full_like(p.value, fill) for p in self.params]
        return self._state[key]

    def _empty(self) -> list[np.ndarray]:
        """One scratch array per param, not saved."""
        return [np.empty_like(p.value) for p in self.params]

    def _grad(self, i: int) -> np.ndarray:
        """Param i's gradient as the rule sees it: p.grad, or p.grad + l2 * p in a buffer of ours."""
        p = self.params[i]
        if not self._l2:
            return p.grad
        g = np.multiply(p.value, self._l2, out=self._g[i])
        g += p.grad
        return g

    def step(self, lr: float) -> None:
        raise NotImplementedError

    def _arrays(self) -> dict[str, np.ndarray]:
        """The live state arrays, keyed as in state_dict()."""
        return {
            f"{key}.{p.name}": a for key, arrays in self._state.items() for p, a in zip(self.params, arrays)
        }

    def state_dict(self) -> dict[str, np.ndarray]:
        state = {key: a.copy() for key, a in self._arrays().items()}
        state.update({name: np.array(getattr(self, name), dtype=np.float64) for name in self._scalars})
        state["t"] = np.array(self.t, dtype=np.int64)
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy `state` back in place; ValueError naming the key when keys or shapes differ."""
        arrays = self._arrays()
        scalars = {name: np.array(0.0) for name in self._scalars}
        check_state({**arrays, **scalars, "t": np.array(self.t)}, state, "optimizer state")
        for key, a in arrays.items():
            np.copyto(a, state[key])
        for name in self._scalars:
            setattr(self, name, float(state[name]))
        self.t = int(state["t"])


# --- the optimizers -------------------------------------------------------------------------------


@OPTIMIZERS.register("sgd")
class SGD(Optimizer):
    """torch.optim.SGD: coupled weight decay; the momentum buffer starts as the first gradient.

    b = momentum * b + (1 - dampening) * g (b = g at the first step); the step is lr * b, or
    lr * (g + momentum * b) with nesterov.
    """

    default_lr = 1e-3

    def __init__(
        self,
        params: list[Param],
        *,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ):
        self.momentum = _number("sgd", "momentum", momentum)
        self.dampening = _number("sgd", "dampening", dampening, 0.0, 1.0)
        self.nesterov = _flag("sgd", "nesterov", nesterov)
        self.weight_decay = _number("sgd", "weight_decay", weight_decay)
        if self.nesterov and (self.momentum <= 0.0 or self.dampening != 0.0):
            raise ConfigError(
                f"sgd: nesterov needs momentum > 0 and dampening = 0 "
                f"(got momentum={momentum!r}, dampening={dampening!r})"
            )
        super().__init__(params, l2=self.weight_decay)
        self._buf = self._zeros("momentum_buffer") if self.momentum else []
        self._tmp = self._empty()

    def step(self, lr: float) -> None:
        lr, mu = float(lr), self.momentum
        first = self.t == 0
        self.t += 1
        for i, (p, tmp) in enumerate(zip(self.params, self._tmp)):
            g = self._grad(i)
            if not mu:
                np.multiply(g, -lr, out=tmp)
                p.value += tmp
                continue
            b = self._buf[i]
            if first:
                np.copyto(b, g)
            else:
                b *= mu
                np.multiply(g, 1.0 - self.dampening, out=tmp)
                b += tmp
            if self.nesterov:  # p -= lr * (g + mu * b)
                np.multiply(b, mu, out=tmp)
                tmp += g
                tmp *= -lr
            else:
                np.multiply(b, -lr, out=tmp)
            p.value += tmp


@OPTIMIZERS.register("adam")
class Adam(Optimizer):
    """torch.optim.Adam: coupled L2 weight decay, bias corrections, eps added after sqrt(v_hat).

    m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g²; v_max = max(v_max, v) with amsgrad;
    p -= lr / (1 - b1^t) * m / (sqrt(v or v_max) / sqrt(1 - b2^t) + eps).
    """

    default_lr = 1e-3
    _decoupled = False  # AdamW: p *= 1 - lr * weight_decay instead of g += weight_decay * p

    def __init__(
        self,
        params: list[Param],
        *,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ):
        name = "adamw" if self._decoupled else "adam"
        self.beta1, self.beta2 = _betas(name, betas)
        self.eps = _number(name, "eps", eps)
        self.weight_decay = _number(name, "weight_decay", weight_decay)
        self.amsgrad = _flag(name, "amsgrad", amsgrad)
        super().__init__(params, l2=0.0 if self._decoupled else self.weight_decay)
        self._m = self._zeros("m")
        self._v = self._zeros("v")
        self._v_max = self._zeros("v_max") if self.amsgrad else self._v  # step() uses v_max either way
        self._tmp = self._empty()

    def step(self, lr: float) -> None:
        lr = float(lr)
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        step_size = lr / (1.0 - b1**self.t)
        bc2_sqrt = math.sqrt(1.0 - b2**self.t)
        decay = 1.0 - lr * self.weight_decay if self._decoupled and self.weight_decay else None
        for i, (p, m, v, v_max, tmp) in enumerate(zip(self.params, self._m, self._v, self._v_max, self._tmp)):
            if decay is not None:
                p.value *= decay
            g = self._grad(i)
            _average(m, g, b1, tmp)
            _average_square(v, g, b2, tmp)
            if self.amsgrad:
                np.maximum(v_max, v, out=v_max)
            denom = np.sqrt(v_max, out=tmp)
            denom /= bc2_sqrt
            denom += self.eps
            np.divide(m, denom, out=tmp)
            tmp *= -step_size
            p.value += tmp


@OPTIMIZERS.register("adamw")
class AdamW(Adam):
    """torch.optim.AdamW: Adam with decoupled weight decay, p *= 1 - lr * weight_decay, first."""

    default_lr = 1e-3
    _decoupled = True

    def __init__(
        self,
        params: list[Param],
        *,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
    ):
        super().__init__(params, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)


@OPTIMIZERS.register("nadam")
class NAdam(Optimizer):
    """torch.optim.NAdam: Adam with Nesterov momentum on the schedule mu_t of Dozat (2016).

    mu_t = b1 (1 - 0.5 * 0.96^(t * momentum_decay)); mu_product = mu_1 ... mu_t;
    m, v as in Adam; denom = sqrt(v / (1 - b2^t)) + eps;
    p -= lr (1 - mu_t) / (1 - mu_product) * g / denom
         + lr mu_{t+1} / (1 - mu_product mu_{t+1}) * m / denom.
    Weight decay is coupled (g += wd p), or decoupled (p *= 1 - lr wd) as in AdamW.
    """

    default_lr = 2e-3
    _scalars = ("mu_product",)

    def __init__(
        self,
        params: list[Param],
        *,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
    ):
        self.beta1, self.beta2 = _betas("nadam", betas)
        self.eps = _number("nadam", "eps", eps)
        self.weight_decay = _number("nadam", "weight_decay", weight_decay)
        self.momentum_decay = _number("nadam", "momentum_decay", momentum_decay)
        self.decoupled_weight_decay = _flag("nadam", "decoupled_weight_decay", decoupled_weight_decay)
        super().__init__(params, l2=0.0 if self.decoupled_weight_decay else self.weight_decay)
        self.mu_product = 1.0
        self._m = self._zeros("m")
        self._v = self._zeros("v")
        self._tmp, self._tmp2 = self._empty(), self._empty()

    def _mu(self, t: int) -> float:
        return self.beta1 * (1.0 - 0.5 * 0.96 ** (t * self.momentum_decay))

    def step(self, lr: float) -> None:
        lr = float(lr)
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        mu, mu_next = self._mu(self.t), self._mu(self.t + 1)
        self.mu_product *= mu
        bc2 = 1.0 - b2**self.t
        g_scale = -lr * (1.0 - mu) / (1.0 - self.mu_product)
        m_scale = -lr * mu_next / (1.0 - self.mu_product * mu_next)
        decay = 1.0 - lr * self.weight_decay if self.decoupled_weight_decay and self.weight_decay else None
        for i, (p, m, v, denom, tmp) in enumerate(zip(self.params, self._m, self._v, self._tmp, self._tmp2)):
            if decay is not None:
                p.value *= decay
            g = self._grad(i)
            _average(m, g, b1, tmp)
            _average_square(v, g, b2, tmp)
            np.divide(v, bc2, out=denom)
            np.sqrt(denom, out=denom)
            denom += self.eps
            np.divide(g, denom, out=tmp)
            tmp *= g_scale
            p.value += tmp
            np.divide(m, denom, out=tmp)
            tmp *= m_scale
            p.value += tmp


@OPTIMIZERS.register("adamax")
class Adamax(Optimizer):
    """torch.optim.Adamax: Adam with an infinity norm; eps goes inside the max.

    m = b1 m + (1 - b1) g; u = max(b2 u, |g| + eps); p -= lr / (1 - b1^t) * m / u.
    """

    default_lr = 2e-3

    def __init__(
        self,
        params: list[Param],
        *,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        self.beta1, self.beta2 = _betas("adamax", betas)
        self.eps = _number("adamax", "eps", eps)
        self.weight_decay = _number("adamax", "weight_decay", weight_decay)
        super().__init__(params, l2=self.weight_decay)
        self._m = self._zeros("m")
        self._u = self._zeros("u")
        self._tmp = self._empty()

    def step(self, lr: float) -> None:
        self.t += 1
        b1 = self.beta1
        step_size = float(lr) / (1.0 - b1**self.t)
        for i, (p, m, u, tmp) in enumerate(zip(self.params, self._m, self._u, self._tmp)):
            g = self._grad(i)
            _average(m, g, b1, tmp)
            u *= self.beta2
            np.abs(g, out=tmp)
            tmp += self.eps
            np.maximum(u, tmp, out=u)
            np.divide(m, u, out=tmp)
            tmp *= -step_size
            p.value += tmp


@OPTIMIZERS.register("rmsprop")
class RMSprop(Optimizer):
    """torch.optim.RMSprop: eps added after the square root; no bias correction.

    v = alpha v + (1 - alpha) g²; centered: g_avg = alpha g_avg + (1 - alpha) g and
    denom = sqrt(v - g_avg²) + eps, else sqrt(v) + eps; with momentum: b = momentum b + g / denom
    and p -= lr b, else p -= lr g / denom.
    """

    default_lr = 1e-2

    def __init__(
        self,
        params: list[Param],
        *,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ):
        self.alpha = _number("rmsprop", "alpha", alpha, 0.0, 1.0)
        self.eps = _number("rmsprop", "eps", eps)
        self.weight_decay = _number("rmsprop", "weight_decay", weight_decay)
        self.momentum = _number("rmsprop", "momentum", momentum)
        self.centered = _flag("rmsprop", "centered", centered)
        super().__init__(params, l2=self.weight_decay)
        self._v = self._zeros("v")
        self._g_avg = self._zeros("g_avg") if self.centered else []
        self._buf = self._zeros("momentum_buffer") if self.momentum else []
        self._tmp = self._empty()

    def step(self, lr: float) -> None:
        lr, a = float(lr), self.alpha
        self.t += 1
        for i, (p, v, tmp) in enumerate(zip(self.params, self._v, self._tmp)):
            g = self._grad(i)
            _average_square(v, g, a, tmp)
            if self.centered:
                g_avg = self._g_avg[i]
                _average(g_avg, g, a, tmp)
                np.multiply(g_avg, g_avg, out=tmp)
                np.subtract(v, tmp, out=tmp)
                denom = np.sqrt(tmp, out=tmp)
            else:
                denom = np.sqrt(v, out=tmp)
            denom += self.eps
            np.divide(g, denom, out=tmp)
            if self.momentum:
                b = self._buf[i]
                b *= self.momentum
                b += tmp
                np.multiply(b, -lr, out=tmp)
            else:
                tmp *= -lr
            p.value += tmp


@OPTIMIZERS.register("adagrad")
class Adagrad(Optimizer):
    """torch.optim.Adagrad: a running sum of squared gradients, started at initial_accumulator_value.

    s += g²; p -= lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + eps).
    """

    default_lr = 1e-2

    def __init__(
        self,
        params: list[Param],
        *,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
    ):
        self.lr_decay = _number("adagrad", "lr_decay", lr_decay)
        self.weight_decay = _number("adagrad", "weight_decay", weight_decay)
        self.initial_accumulator_value = _number("adagrad", "initial_accumulator_value", initial_accumulator_value)
        self.eps = _number("adagrad", "eps", eps)
        super().__init__(params, l2=self.weight_decay)
        self._sum = self._zeros("sum", self.initial_accumulator_value)
        self._tmp = self._empty()

    def step(self, lr: float) -> None:
        self.t += 1
        clr = float(lr) / (1.0 + (self.t - 1) * self.lr_decay)
        for i, (p, s, tmp) in enumerate(zip(self.params, self._sum, self._tmp)):
            g = self._grad(i)
            np.multiply(g, g, out=tmp)
            s += tmp
            std = np.sqrt(s, out=tmp)
            std += self.eps
            np.divide(g, std, out=tmp)
            tmp *= -clr
            p.value += tmp


@OPTIMIZERS.register("adadelta")
class Adadelta(Optimizer):
    """torch.optim.Adadelta: the step is lr * delta, with lr a plain multiplier (PyTorch's default 1.0).

    v = rho v + (1 - rho) g²; delta = sqrt(u + eps) / sqrt(v + eps) * g; u = rho u + (1 - rho) delta²;
    p -= lr delta.
    """

    default_lr = 1.0

    def __init__(
        self,
        params: list[Param],
        *,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0.0,
    ):
        self.rho = _number("adadelta", "rho", rho, 0.0, 1.0)
        self.eps = _number("adadelta", "eps", eps)
        self.weight_decay = _number("adadelta", "weight_decay", weight_decay)
        super().__init__(params, l2=self.weight_decay)
        self._v = self._zeros("v")
        self._u = self._zeros("u")
        self._tmp, self._delta = self._empty(), self._empty()

    def step(self, lr: float) -> None:
        lr, rho = float(lr), self.rho
        self.t += 1
        for i, (p, v, u, tmp, delta) in enumerate(zip(self.params, self._v, self._u, self._tmp, self._delta)):
            g = self._grad(i)
            _average_square(v, g, rho, tmp)
            np.add(v, self.eps, out=tmp)
            std = np.sqrt(tmp, out=tmp)
            np.add(u, self.eps, out=delta)
            np.sqrt(delta, out=delta)
            delta /= std
            delta *= g
            _average_square(u, delta, rho, tmp)
            delta *= -lr
            p.value += delta
