"""Optimizers: step(lr) updates each Param.value in place from its grad, as PyTorch's namesake does.

The base class owns the params, the step count t and every array: state and scratch are allocated
once, in __init__, per unit with its dtype (a unit is a param, or all params at once when
nn.params.pack laid them back to back: every rule is element-wise, so one pass computes the same), and scalars are Python floats, so float32 stays float32.
Each optimizer is registered with its declared options (nn.options): the base __init__ checks
them (OptionError) and sets each as an attribute, then the subclass's _allocate() makes its state,
and step() applies the update rule; step() never allocates and never changes p.grad. The learning
rate is declared as the config-only option `lr` (PyTorch's default): the caller passes the rate to
every step() (it comes from a schedule). `defaults` maps each constructor option to its default. state_dict()/load_state_dict() copy the state
out and back in (arrays only; the step count "t" as a 0-d int64 array) so a resumed run continues
bit for bit.

use_fused() switches step() to the same rule as one compiled loop (nn.fused, which needs numba): the
arrays, and every value written into them, are the same; only the passes are fewer.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from bptrain.nn.names import Registry
from bptrain.nn.options import ABOVE_0, AT_LEAST_0, FRACTION, UNIT, Declaration, Option, Rule
from bptrain.nn.params import Param, flat, parts
from bptrain.nn.state import check_state

OPTIMIZERS = Registry("optimizer", label="{name}")


# --- options shared by several optimizers ---------------------------------------------------------


def lr(default: float) -> Option:
    return Option("lr", "number", "base learning rate, scaled by the schedule", default, ABOVE_0, nn=False)


def weight_decay(default: float = 0.0, doc: str = "L2 penalty, added to the gradient as wd * p") -> Option:
    return Option("weight_decay", "number", doc, default, AT_LEAST_0)


BETAS = Option("betas", "pair", "decay rates of the running averages of g and g²", (0.9, 0.999), FRACTION)
EPS = Option("eps", "number", "added to the denominator for stability", 1e-8, ABOVE_0)
AMSGRAD = Option("amsgrad", "flag", "divide by the largest v so far (AMSGrad)", False)
DECOUPLED = "decoupled: weights shrink by lr * wd each step"
NESTEROV = Rule(
    "nesterov needs momentum > 0 and dampening 0",
    lambda o: o["nesterov"] and (o["momentum"] <= 0.0 or o["dampening"] != 0.0),
    lambda o: f"momentum={o['momentum']!r}, dampening={o['dampening']!r}",
    in_config=True,
)


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

    declaration: ClassVar[Declaration]
    defaults: ClassVar[dict[str, Any]]  # each constructor option's default
    default_lr: ClassVar[float]
    _scalars: ClassVar[tuple[str, ...]] = ()  # float attributes saved as 0-d float64 state
    _coupled = True  # weight_decay is added to the gradient (else the subclass applies it itself)
    _kernel: ClassVar[str]  # the name of the rule's loop in nn.fused

    def __init__(self, params: list[Param], **options: Any):
        vars(self).update(self.declaration.check(options))
        self.params = list(params)
        self._units = flat(self.params) or self.params  # what the rule updates: all params at once when packed
        self.t = 0  # steps taken
        self._state: dict[str, list[np.ndarray]] = {}
        self._l2 = getattr(self, "weight_decay", 0.0) if self._coupled else 0.0  # added to the gradient by _grad()
        self._g = self._empty() if self._l2 else []
        self._fused: Any = None  # the rule's compiled loop (use_fused), or None: NumPy's passes
        self._allocate()

    def use_fused(self) -> None:
        """Run each step as the rule's compiled loop (nn.fused; imports numba). The loop is compiled
        here, by a step of a twin with these options on two values of the same dtype, so that no
        step of training pays for it (nor counts it against stopping.max_time)."""
        from bptrain.nn import fused

        dtype = self._units[0].value.dtype
        twin = type(self)([Param("twin", np.zeros(2, dtype), np.zeros(2, dtype))], **{k: getattr(self, k) for k in self.defaults})
        twin._fused = getattr(fused, self._kernel)
        twin.step(1e-3)
        self._fused = twin._fused

    def _run(self, i: int, *args: Any) -> None:
        """The compiled loop over unit i: its value, its grad and the l2 factor, then `args`, arrays
        flattened and floats cast to the unit's dtype, as NumPy casts a Python float it combines with an array."""
        p = self._units[i]
        cast = p.value.dtype.type
        rest = [a.reshape(-1) if isinstance(a, np.ndarray) else a if isinstance(a, bool) else cast(a) for a in args]
        self._fused(p.value.reshape(-1), p.grad.reshape(-1), cast(self._l2), *rest)

    def _allocate(self) -> None:
        """Make the state and scratch arrays (the options are set)."""

    def _zeros(self, key: str, fill: float = 0.0) -> list[np.ndarray]:
        """One array per unit filled with `fill`, saved in state_dict() as f"{key}.{param name}" (a
        flat unit's array in the params' parts)."""
        arrays = [np.full_like(u.value, fill) for u in self._units]
        self._state[key] = parts(arrays[0], self.params) if self._units is not self.params else arrays
        return arrays

    def _empty(self) -> list[np.ndarray]:
        """One scratch array per unit, not saved."""
        return [np.empty_like(u.value) for u in self._units]

    def _grad(self, i: int) -> np.ndarray:
        """Unit i's gradient as the rule sees it: p.grad, or p.grad + l2 * p in a buffer of ours."""
        p = self._units[i]
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
        t = int(state["t"])
        if t < 0:  # a bias correction 1 - beta ** t of a negative count overflows
            raise ValueError(f"optimizer state: 't' is {t}, not a count of steps (0 or more)")
        for key, a in arrays.items():
            np.copyto(a, state[key])
        for name in self._scalars:
            setattr(self, name, float(state[name]))
        self.t = t


def _optimizer(name: str, *options: Option, rules: tuple[Rule, ...] = ()):
    """Register an Optimizer subclass under `name` with its options (`lr` first, as the config lists it)."""

    def add(cls: type[Optimizer]) -> type[Optimizer]:
        OPTIMIZERS.register(name, *options, rules=rules)(cls)
        cls.defaults = cls.declaration.defaults
        cls.default_lr = cls.declaration.option("lr").default
        return cls

    return add


# --- the optimizers -------------------------------------------------------------------------------


@_optimizer(
    "sgd",
    lr(1e-3),
    Option("momentum", "number", "momentum factor", 0.0, FRACTION),
    Option("dampening", "number", "damping of the momentum's new gradient", 0.0, UNIT),
    Option("nesterov", "flag", "Nesterov momentum (needs momentum > 0, dampening 0)", False),
    weight_decay(),
    rules=(NESTEROV,),
)
class SGD(Optimizer):
    """torch.optim.SGD: coupled weight decay; the momentum buffer starts as the first gradient.

    b = momentum * b + (1 - dampening) * g (b = g at the first step); the step is lr * b, or
    lr * (g + momentum * b) with nesterov.
    """

    _kernel = "sgd"

    def _allocate(self) -> None:
        self._buf = self._zeros("momentum_buffer") if self.momentum else []
        self._tmp = self._empty()

    def step(self, lr: float) -> None:
        lr, mu = float(lr), self.momentum
        first = self.t == 0
        self.t += 1
        if self._fused is not None:
            for i, tmp in enumerate(self._tmp):
                self._run(i, self._buf[i] if mu else tmp, -lr, mu, 1.0 - self.dampening, first, self.nesterov)
            return
        for i, (p, tmp) in enumerate(zip(self._units, self._tmp)):
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


@_optimizer("adam", lr(1e-3), BETAS, EPS, weight_decay(), AMSGRAD)
class Adam(Optimizer):
    """torch.optim.Adam: coupled L2 weight decay, bias corrections, eps added after sqrt(v_hat).

    m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g²; v_max = max(v_max, v) with amsgrad;
    p -= lr / (1 - b1^t) * m / (sqrt(v or v_max) / sqrt(1 - b2^t) + eps), computed with both
    sides of the fraction times c = sqrt(1 - b2^t): lr c / (1 - b1^t) * m / (sqrt(v) + eps c),
    which spares a pass of division (the slowest of the step's passes).
    """

    _decoupled = False  # AdamW: p *= 1 - lr * weight_decay instead of g += weight_decay * p
    _kernel = "adam"

    def _allocate(self) -> None:
        self.beta1, self.beta2 = self.betas
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
        if self._fused is not None:
            for i, (m, v, v_max) in enumerate(zip(self._m, self._v, self._v_max)):
                self._run(i, m, v, v_max, 1.0 if decay is None else decay, b1, 1.0 - b1, b2, 1.0 - b2, self.eps * bc2_sqrt, -step_size * bc2_sqrt, self.amsgrad)
            return
        for i, (p, m, v, v_max, tmp) in enumerate(zip(self._units, self._m, self._v, self._v_max, self._tmp)):
            if decay is not None:
                p.value *= decay
            g = self._grad(i)
            _average(m, g, b1, tmp)
            _average_square(v, g, b2, tmp)
            if self.amsgrad:
                np.maximum(v_max, v, out=v_max)
            denom = np.sqrt(v_max, out=tmp)
            denom += self.eps * bc2_sqrt
            np.divide(m, denom, out=tmp)
            tmp *= -step_size * bc2_sqrt
            p.value += tmp


@_optimizer("adamw", lr(1e-3), BETAS, EPS, weight_decay(1e-2, DECOUPLED), AMSGRAD)
class AdamW(Adam):
    """torch.optim.AdamW: Adam with decoupled weight decay, p *= 1 - lr * weight_decay, first."""

    _coupled = False
    _decoupled = True


@_optimizer(
    "nadam",
    lr(2e-3),
    BETAS,
    EPS,
    weight_decay(),
    Option("momentum_decay", "number", "how fast the momentum schedule mu_t approaches beta1", 4e-3, AT_LEAST_0),
    Option("decoupled_weight_decay", "flag", "apply weight_decay as AdamW does", False),
)
class NAdam(Optimizer):
    """torch.optim.NAdam: Adam with Nesterov momentum on the schedule mu_t of Dozat (2016).

    mu_t = b1 (1 - 0.5 * 0.96^(t * momentum_decay)); mu_product = mu_1 ... mu_t;
    m, v as in Adam; denom = sqrt(v / (1 - b2^t)) + eps;
    p -= lr (1 - mu_t) / (1 - mu_product) * g / denom
         + lr mu_{t+1} / (1 - mu_product mu_{t+1}) * m / denom,
    with denom and both factors times c = sqrt(1 - b2^t), as Adam does: denom c = sqrt(v) + eps c.
    Weight decay is coupled (g += wd p), or decoupled (p *= 1 - lr wd) as in AdamW.
    """

    _scalars = ("mu_product",)
    _kernel = "nadam"

    @property
    def _coupled(self) -> bool:  # type: ignore[override]
        return not self.decoupled_weight_decay

    def _allocate(self) -> None:
        self.beta1, self.beta2 = self.betas
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
        c = math.sqrt(1.0 - b2**self.t)
        g_scale = -lr * (1.0 - mu) / (1.0 - self.mu_product) * c
        m_scale = -lr * mu_next / (1.0 - self.mu_product * mu_next) * c
        decay = 1.0 - lr * self.weight_decay if self.decoupled_weight_decay and self.weight_decay else None
        if self._fused is not None:
            for i, (m, v) in enumerate(zip(self._m, self._v)):
                self._run(i, m, v, 1.0 if decay is None else decay, b1, 1.0 - b1, b2, 1.0 - b2, self.eps * c, g_scale, m_scale)
            return
        for i, (p, m, v, denom, tmp) in enumerate(zip(self._units, self._m, self._v, self._tmp, self._tmp2)):
            if decay is not None:
                p.value *= decay
            g = self._grad(i)
            _average(m, g, b1, tmp)
            _average_square(v, g, b2, tmp)
            np.sqrt(v, out=denom)
            denom += self.eps * c
            np.divide(g, denom, out=tmp)
            tmp *= g_scale
            p.value += tmp
            np.divide(m, denom, out=tmp)
            tmp *= m_scale
            p.value += tmp


@_optimizer("adamax", lr(2e-3), BETAS, EPS, weight_decay())
class Adamax(Optimizer):
    """torch.optim.Adamax: Adam with an infinity norm; eps goes inside the max.

    m = b1 m + (1 - b1) g; u = max(b2 u, |g| + eps); p -= lr / (1 - b1^t) * m / u.
    """

    _kernel = "adamax"

    def _allocate(self) -> None:
        self.beta1, self.beta2 = self.betas
        self._m = self._zeros("m")
        self._u = self._zeros("u")
        self._tmp = self._empty()

    def step(self, lr: float) -> None:
        self.t += 1
        b1 = self.beta1
        step_size = float(lr) / (1.0 - b1**self.t)
        if self._fused is not None:
            for i, (m, u) in enumerate(zip(self._m, self._u)):
                self._run(i, m, u, b1, 1.0 - b1, self.beta2, self.eps, -step_size)
            return
        for i, (p, m, u, tmp) in enumerate(zip(self._units, self._m, self._u, self._tmp)):
            g = self._grad(i)
            _average(m, g, b1, tmp)
            u *= self.beta2
            np.abs(g, out=tmp)
            tmp += self.eps
            np.maximum(u, tmp, out=u)
            np.divide(m, u, out=tmp)
            tmp *= -step_size
            p.value += tmp


@_optimizer(
    "rmsprop",
    lr(1e-2),
    Option("alpha", "number", "decay rate of the running average of g²", 0.99, FRACTION),
    EPS,
    weight_decay(),
    Option("momentum", "number", "momentum factor", 0.0, FRACTION),
    Option("centered", "flag", "divide by the variance of g rather than its second moment", False),
)
class RMSprop(Optimizer):
    """torch.optim.RMSprop: eps added after the square root; no bias correction.

    v = alpha v + (1 - alpha) g²; centered: g_avg = alpha g_avg + (1 - alpha) g and
    denom = sqrt(v - g_avg²) + eps, else sqrt(v) + eps; with momentum: b = momentum b + g / denom
    and p -= lr b, else p -= lr g / denom.
    """

    _kernel = "rmsprop"

    def _allocate(self) -> None:
        self._v = self._zeros("v")
        self._g_avg = self._zeros("g_avg") if self.centered else []
        self._buf = self._zeros("momentum_buffer") if self.momentum else []
        self._tmp = self._empty()

    def step(self, lr: float) -> None:
        lr, a = float(lr), self.alpha
        self.t += 1
        if self._fused is not None:
            for i, (v, tmp) in enumerate(zip(self._v, self._tmp)):
                g_avg = self._g_avg[i] if self.centered else tmp
                buf = self._buf[i] if self.momentum else tmp
                self._run(i, v, g_avg, buf, a, 1.0 - a, self.eps, -lr, self.centered, self.momentum)
            return
        for i, (p, v, tmp) in enumerate(zip(self._units, self._v, self._tmp)):
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


@_optimizer(
    "adagrad",
    lr(1e-2),
    Option("lr_decay", "number", "the rate at step t is lr / (1 + (t - 1) lr_decay)", 0.0, AT_LEAST_0),
    weight_decay(),
    Option("initial_accumulator_value", "number", "starting value of the sum of g²", 0.0, AT_LEAST_0),
    Option("eps", "number", "added to the denominator for stability", 1e-10, ABOVE_0),
)
class Adagrad(Optimizer):
    """torch.optim.Adagrad: a running sum of squared gradients, started at initial_accumulator_value.

    s += g²; p -= lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + eps).
    """

    _kernel = "adagrad"

    def _allocate(self) -> None:
        self._sum = self._zeros("sum", self.initial_accumulator_value)
        self._tmp = self._empty()

    def step(self, lr: float) -> None:
        self.t += 1
        clr = float(lr) / (1.0 + (self.t - 1) * self.lr_decay)
        if self._fused is not None:
            for i, s in enumerate(self._sum):
                self._run(i, s, self.eps, -clr)
            return
        for i, (p, s, tmp) in enumerate(zip(self._units, self._sum, self._tmp)):
            g = self._grad(i)
            np.multiply(g, g, out=tmp)
            s += tmp
            std = np.sqrt(s, out=tmp)
            std += self.eps
            np.divide(g, std, out=tmp)
            tmp *= -clr
            p.value += tmp


@_optimizer(
    "adadelta",
    lr(1.0),
    Option("rho", "number", "decay rate of the running averages", 0.9, UNIT),
    Option("eps", "number", "added inside the square roots", 1e-6, ABOVE_0),
    weight_decay(),
)
class Adadelta(Optimizer):
    """torch.optim.Adadelta: the step is lr * delta, with lr a plain multiplier (PyTorch's default 1.0).

    v = rho v + (1 - rho) g²; delta = sqrt(u + eps) / sqrt(v + eps) * g; u = rho u + (1 - rho) delta²;
    p -= lr delta.
    """

    _kernel = "adadelta"

    def _allocate(self) -> None:
        self._v = self._zeros("v")
        self._u = self._zeros("u")
        self._tmp, self._delta = self._empty(), self._empty()

    def step(self, lr: float) -> None:
        lr, rho = float(lr), self.rho
        self.t += 1
        if self._fused is not None:
            for i, (v, u) in enumerate(zip(self._v, self._u)):
                self._run(i, v, u, rho, 1.0 - rho, self.eps, -lr)
            return
        for i, (p, v, u, tmp, delta) in enumerate(zip(self._units, self._v, self._u, self._tmp, self._delta)):
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


@_optimizer(
    "lion",
    lr(1e-4),
    Option("betas", "pair", "beta1 mixes m and g for the update's sign; beta2 is the decay of m", (0.9, 0.99), FRACTION),
    weight_decay(0.0, DECOUPLED),
)
class Lion(Optimizer):
    """Lion (Chen et al. 2023, Symbolic Discovery of Optimization Algorithms): steps of lr times a sign.

    c = b1 m + (1 - b1) g; p *= 1 - lr wd (decoupled); p -= lr sign(c); m = b2 m + (1 - b2) g.
    Defaults are the paper's reference implementation's; it suits an lr 3-10x smaller than AdamW's.
    """

    _coupled = False

    _kernel = "lion"

    def _allocate(self) -> None:
        self.beta1, self.beta2 = self.betas
        self._m = self._zeros("m")
        self._tmp, self._tmp2 = self._empty(), self._empty()

    def step(self, lr: float) -> None:
        lr = float(lr)
        self.t += 1
        b1 = self.beta1
        decay = 1.0 - lr * self.weight_decay if self.weight_decay else None
        if self._fused is not None:
            for i, m in enumerate(self._m):
                self._run(i, m, 1.0 if decay is None else decay, b1, 1.0 - b1, self.beta2, 1.0 - self.beta2, -lr)
            return
        for p, m, c, tmp in zip(self._units, self._m, self._tmp, self._tmp2):
            if decay is not None:
                p.value *= decay
            np.multiply(m, b1, out=c)
            c += np.multiply(p.grad, 1.0 - b1, out=tmp)
            np.sign(c, out=c)
            c *= -lr
            p.value += c
            _average(m, p.grad, self.beta2, tmp)
