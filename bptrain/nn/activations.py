"""Activations: forward(z, out) writes f(z) into out; backward(grad, z, a) multiplies grad in place by f'(z).

z and a are the input and output of the latest forward (out must not overlap z). The derivative
comes from the output a where the maths allows, else from z or from what forward kept (Φ(z) for
gelu, σ(z) for silu); scratch arrays are the activation's own, reserved on first use.

Options are declared when registered (nn.options), with PyTorch's defaults:
ACTIVATIONS.get(name)(**options) builds one, and an unknown option or an impossible value raises
OptionError.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from bptrain.nn.buffers import rows_like
from bptrain.nn.names import Registry
from bptrain.nn.options import ABOVE_0, AT_LEAST_0, Declaration, Option

ACTIVATIONS = Registry("activation", number="a finite number")


class Options:
    """A registered component whose constructor takes its declared keyword options (nn.options).

    Cls(**given) checks them (OptionError) and sets each as an attribute, given or default.
    """

    declaration: ClassVar[Declaration]

    def __init__(self, **given: Any):
        vars(self).update(self.declaration.check(given))

    def error(self, message: str) -> ValueError:
        return self.declaration.error(message)


class Elementwise(Options):
    """Base of the activations; `_d`, `_e`, `_mask` are scratch and `_kept` what forward keeps for backward."""

    _d = _e = _mask = _kept = None


def sigmoid(z: np.ndarray, out: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-z)), computed as exp(z - softplus(z)) so that no |z| overflows."""
    np.logaddexp(0.0, z, out=out)  # softplus(z) = max(z, 0) + log1p(exp(-|z|))
    np.subtract(z, out, out=out)  # log sigmoid(z) <= 0
    return np.exp(out, out=out)


# (1 + 2x)·exp(x²)·erfc(x) for x >= 0 as a polynomial in s = (x - 3)/(x + 3) ∈ [-1, 1): coefficients
# of s⁰..s²⁴ of its degree-24 Chebyshev interpolant, computed for bptrain offline in 60-digit arithmetic
# (mpmath). The relative error stays below 1e-15 for every x >= 0; tests check Φ against math.erf.
_ERFC_POLY = (
    1.2530080582697296, -0.13562110612458117, -0.04756229435345087, 0.1296451587027606,
    -0.11927366341530699, 0.06830802734397848, -0.023770514918645888, 0.002529391816066239,
    0.0018886903591561553, -0.0007798322721083991, -0.00010515979981501177, 0.00012509935235563107,
    4.949484992570595e-06, -2.0100567931289227e-05, -7.315105164159062e-07, 3.472414602875686e-06,
    3.5683839153992204e-07, -6.166496077604353e-07, -1.4160064940265987e-07, 1.0187000600072885e-07,
    4.180784698845582e-08, -1.3326364813003834e-08, -8.500397929772615e-09, 9.885798831139365e-10,
    8.864219016427092e-10,
)


def normal_cdf(z: np.ndarray, out: np.ndarray, tmp1: np.ndarray, tmp2: np.ndarray) -> np.ndarray:
    """Φ(z) = erfc(-z/√2)/2 into out, to a few ulps; tmp1 and tmp2 are scratch shaped like z.

    With x = |z|/√2, the lower tail q = erfc(x)/2 is computed without cancellation, then
    Φ(z) = q + [z > 0]·(1 - 2q). NumPy has no erf; math.erf would need a Python loop.
    """
    x = np.abs(z, out=tmp1)
    x *= math.sqrt(0.5)
    np.multiply(x, x, out=out)
    np.negative(out, out=out)
    np.exp(out, out=out)
    np.multiply(x, 2.0, out=tmp2)
    tmp2 += 1.0
    out /= tmp2  # exp(-x²)/(1 + 2x)
    np.add(x, 3.0, out=tmp2)
    x -= 3.0
    s = np.divide(x, tmp2, out=x)
    poly = np.multiply(s, _ERFC_POLY[-1], out=tmp2)
    for c in _ERFC_POLY[-2:0:-1]:
        poly += c
        poly *= s
    poly += _ERFC_POLY[0]
    poly *= out  # erfc(x)
    np.multiply(poly, 0.5, out=out)  # q
    upper = np.greater(z, 0.0, out=tmp1)
    np.subtract(1.0, poly, out=poly)
    poly *= upper
    out += poly
    return out


@ACTIVATIONS.register("identity", doc="z unchanged")
class Identity(Elementwise):
    def forward(self, z, out):
        np.copyto(out, z)
        return out

    def backward(self, grad, z, a):
        return grad


@ACTIVATIONS.register("relu", doc="max(z, 0)")
class ReLU(Elementwise):
    def forward(self, z, out):
        return np.maximum(z, 0.0, out=out)

    def backward(self, grad, z, a):
        self._d, d = rows_like(self._d, grad)
        grad *= np.greater(a, 0.0, out=d)  # relu' = 1 where the output is positive, 0 at z = 0 as in PyTorch
        return grad


@ACTIVATIONS.register(
    "leaky_relu", Option("negative_slope", "number", "slope for z < 0", 0.01, AT_LEAST_0), doc="z, or negative_slope·z for z < 0"
)
class LeakyReLU(Elementwise):
    """z for z > 0, negative_slope·z otherwise."""

    def forward(self, z, out):
        np.multiply(z, self.negative_slope, out=out)
        pick = np.maximum if self.negative_slope <= 1.0 else np.minimum
        return pick(z, out, out=out)

    def backward(self, grad, z, a):
        self._d, d = rows_like(self._d, grad)
        np.greater(z, 0.0, out=d)  # from z: with a negative slope the sign of a tells nothing
        d *= 1.0 - self.negative_slope
        d += self.negative_slope
        grad *= d
        return grad


@ACTIVATIONS.register(
    "elu", Option("alpha", "number", "the limit for very negative z is -alpha", 1.0, ABOVE_0), doc="z, or alpha·(exp(z) - 1) for z < 0"
)
class ELU(Elementwise):
    """scale·z for z > 0, scale·alpha·(exp(z) - 1) otherwise, with scale 1 (selu changes it)."""

    scale = 1.0

    def forward(self, z, out):
        self._d, d = rows_like(self._d, z)
        np.minimum(z, 0.0, out=out)
        np.expm1(out, out=out)
        out *= self.scale * self.alpha
        np.maximum(z, 0.0, out=d)
        d *= self.scale
        out += d
        return out

    def backward(self, grad, z, a):
        self._d, d = rows_like(self._d, grad)
        self._mask, positive = rows_like(self._mask, grad, bool)
        np.add(a, self.scale * self.alpha, out=d)  # scale·alpha·exp(z) = a + scale·alpha where z <= 0
        np.copyto(d, self.scale, where=np.greater(z, 0.0, out=positive))
        grad *= d
        return grad


@ACTIVATIONS.register("selu", doc="ELU scaled by PyTorch's self-normalizing constants")
class SELU(ELU):
    """ELU with PyTorch's self-normalizing constants; no options."""

    alpha = 1.6732632423543772848170429916717
    scale = 1.0507009873554804934193349852946


@ACTIVATIONS.register(
    "gelu",
    Option("approximate", "choice", "`tanh`: the tanh approximation of Φ", "none", choices=("none", "tanh")),
    doc="z·Φ(z), Φ the normal CDF",
)
class GELU(Elementwise):
    """z·P(z) with P = Φ, the normal CDF, or for approximate="tanh" P = (1 + tanh(√(2/π)(z + 0.044715 z³)))/2.

    forward keeps P; f' = P + z·P' with P' = φ(z) = exp(-z²/2)/√(2π), or for tanh P' = 2P(1 - P)·u'(z).
    """

    C = 0.044715
    K = math.sqrt(2.0 / math.pi)

    def forward(self, z, out):
        self._kept, p = rows_like(self._kept, z)
        if self.approximate == "none":
            self._d, d = rows_like(self._d, z)
            normal_cdf(z, p, d, out)
        else:
            np.multiply(z, z, out=p)
            p *= self.C
            p += 1.0
            p *= z
            p *= self.K
            np.tanh(p, out=p)
            p += 1.0
            p *= 0.5
        return np.multiply(z, p, out=out)

    def backward(self, grad, z, a):
        p = self._kept[: grad.shape[0]]
        self._d, d = rows_like(self._d, grad)
        if self.approximate == "none":
            np.multiply(z, z, out=d)
            d *= -0.5
            np.exp(d, out=d)
            d *= 1.0 / math.sqrt(2.0 * math.pi)
        else:
            self._e, e = rows_like(self._e, grad)
            np.subtract(1.0, p, out=d)
            d *= p
            d *= 2.0
            np.multiply(z, z, out=e)
            e *= 3.0 * self.C
            e += 1.0
            e *= self.K  # u'(z)
            d *= e
        d *= z
        d += p
        grad *= d
        return grad


@ACTIVATIONS.register("silu", doc="z·sigmoid(z)")
class SiLU(Elementwise):
    """z·σ(z); forward keeps σ(z), and f' = σ(z)(1 - a) + a."""

    def forward(self, z, out):
        self._kept, s = rows_like(self._kept, z)
        sigmoid(z, s)
        return np.multiply(z, s, out=out)

    def backward(self, grad, z, a):
        self._d, d = rows_like(self._d, grad)
        np.subtract(1.0, a, out=d)
        d *= self._kept[: grad.shape[0]]
        d += a
        grad *= d
        return grad


@ACTIVATIONS.register(
    "softplus",
    Option("beta", "number", "sharpness: log(1 + exp(beta z)) / beta", 1.0, ABOVE_0),
    Option("threshold", "number", "z itself where beta z > threshold", 20.0, ABOVE_0),
    doc="log(1 + exp(beta·z)) / beta",
)
class Softplus(Elementwise):
    """log(1 + exp(beta·z))/beta, and z itself where beta·z > threshold (PyTorch's linear region)."""

    def forward(self, z, out):
        self._mask, linear = rows_like(self._mask, z, bool)
        np.multiply(z, self.beta, out=out)
        np.greater(out, self.threshold, out=linear)
        np.logaddexp(0.0, out, out=out)
        out *= 1.0 / self.beta
        np.copyto(out, z, where=linear)
        return out

    def backward(self, grad, z, a):
        self._d, d = rows_like(self._d, grad)
        np.multiply(a, -self.beta, out=d)
        np.expm1(d, out=d)
        np.negative(d, out=d)  # σ(beta·z) = 1 - exp(-beta·a)
        np.copyto(d, 1.0, where=self._mask[: grad.shape[0]])
        grad *= d
        return grad


@ACTIVATIONS.register("sigmoid", doc="1 / (1 + exp(-z))")
class Sigmoid(Elementwise):
    def forward(self, z, out):
        return sigmoid(z, out)

    def backward(self, grad, z, a):
        self._d, d = rows_like(self._d, grad)
        np.subtract(1.0, a, out=d)
        d *= a  # sigmoid' = a (1 - a)
        grad *= d
        return grad


@ACTIVATIONS.register("tanh", doc="tanh(z)")
class Tanh(Elementwise):
    def forward(self, z, out):
        return np.tanh(z, out=out)

    def backward(self, grad, z, a):
        self._d, d = rows_like(self._d, grad)
        np.multiply(a, a, out=d)
        grad *= np.subtract(1.0, d, out=d)  # tanh' = 1 - a²
        return grad
