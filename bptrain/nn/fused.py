"""The optimizers' update rules as one compiled loop each (numba), for training.engine numba.

nn.optimizers holds the rules as NumPy passes: a dozen passes over every parameter per step, each
reading and writing arrays larger than the caches. Here each rule is one loop that reads every
array once. Each loop computes, value by value, exactly what the passes compute: the same
operations on the same operands in the same order, in the arrays' dtype (the callers cast every
number to it, as NumPy casts a Python float it combines with an array; a number literal in a loop
would make numba compute in float64, so none takes part in arithmetic), and numba compiles them
without fast-math, so nothing is reordered, fused or approximated: the two engines give the same
bits (tests/nn/test_nn_optimizers.py compares them step by step, tests/unit/test_engine.py whole fits).

Every loop takes the unit's value p and gradient grad (1-d, the same length as every other array),
then l2: the rule's gradient is g = p * l2 + grad when l2 is not 0 (coupled weight decay), else grad.
The loops are compiled on first use, in each process (numba's on-disk cache is pickle, which bptrain never reads).
"""

from __future__ import annotations

import numba
import numpy as np

_jit = numba.njit(nogil=True, error_model="numpy")  # error_model numpy: x / 0 gives inf or nan, as NumPy's


@numba.njit(inline="always")
def _maximum(a, b):
    """np.maximum of two floats: nan when either is nan."""
    return a if a != a or a >= b else b


@numba.njit(inline="always")
def _gradient(w, grad, l2):
    """The rule's gradient of one value: w * l2 + grad (coupled weight decay), or grad when l2 is 0."""
    return w * l2 + grad if l2 != 0 else grad


@numba.njit(inline="always")
def _moments(p, grad, m, v, i, l2, decay, b1, c1, b2, c2):
    """Adam's and NAdam's start at value i: (the weight after decay, the gradient, m, v), m and v stored."""
    w = p[i] * decay if decay != 1 else p[i]
    g = _gradient(w, grad[i], l2)
    mi = m[i] * b1 + g * c1
    vi = v[i] * b2 + g * g * c2
    m[i] = mi
    v[i] = vi
    return w, g, mi, vi


@_jit
def sgd(p, grad, l2, buf, lr, mu, damp_c, first, nesterov):
    """SGD; lr negated; with momentum mu > 0: damp_c = 1 - dampening, first: the first step (buf = g)."""
    for i in range(p.shape[0]):
        g = _gradient(p[i], grad[i], l2)
        if mu == 0:
            p[i] = p[i] + g * lr
            continue
        b = g if first else buf[i] * mu + g * damp_c
        buf[i] = b
        step = (b * mu + g) * lr if nesterov else b * lr
        p[i] = p[i] + step


@_jit
def adam(p, grad, l2, m, v, v_max, decay, b1, c1, b2, c2, eps_c, scale, amsgrad):
    """Adam, AdamW: decay (1 for none) first; c1 = 1 - b1, c2 = 1 - b2; eps_c = eps sqrt(1 - b2^t);
    scale = -lr sqrt(1 - b2^t) / (1 - b1^t); v_max is v itself without amsgrad."""
    for i in range(p.shape[0]):
        w, g, mi, vi = _moments(p, grad, m, v, i, l2, decay, b1, c1, b2, c2)
        if amsgrad:
            vi = _maximum(v_max[i], vi)
            v_max[i] = vi
        p[i] = w + mi / (np.sqrt(vi) + eps_c) * scale


@_jit
def nadam(p, grad, l2, m, v, decay, b1, c1, b2, c2, eps_c, g_scale, m_scale):
    """NAdam: as adam, then p += g / denom * g_scale, then p += m / denom * m_scale."""
    for i in range(p.shape[0]):
        w, g, mi, vi = _moments(p, grad, m, v, i, l2, decay, b1, c1, b2, c2)
        denom = np.sqrt(vi) + eps_c
        w = w + g / denom * g_scale
        p[i] = w + mi / denom * m_scale


@_jit
def adamax(p, grad, l2, m, u, b1, c1, b2, eps, scale):
    """Adamax: u = max(b2 u, |g| + eps); scale = -lr / (1 - b1^t)."""
    for i in range(p.shape[0]):
        g = _gradient(p[i], grad[i], l2)
        mi = m[i] * b1 + g * c1
        m[i] = mi
        ui = _maximum(u[i] * b2, abs(g) + eps)
        u[i] = ui
        p[i] = p[i] + mi / ui * scale


@_jit
def rmsprop(p, grad, l2, v, g_avg, buf, a, c, eps, lr, centered, mu):
    """RMSprop: c = 1 - alpha; g_avg with centered, buf with momentum mu > 0; lr negated."""
    for i in range(p.shape[0]):
        g = _gradient(p[i], grad[i], l2)
        vi = v[i] * a + g * g * c
        v[i] = vi
        if centered:
            ga = g_avg[i] * a + g * c
            g_avg[i] = ga
            denom = np.sqrt(vi - ga * ga) + eps
        else:
            denom = np.sqrt(vi) + eps
        step = g / denom
        if mu != 0:
            b = buf[i] * mu + step
            buf[i] = b
            step = b * lr
        else:
            step = step * lr
        p[i] = p[i] + step


@_jit
def adagrad(p, grad, l2, s, eps, scale):
    """Adagrad: s += g²; scale = -lr / (1 + (t - 1) lr_decay)."""
    for i in range(p.shape[0]):
        g = _gradient(p[i], grad[i], l2)
        si = s[i] + g * g
        s[i] = si
        p[i] = p[i] + g / (np.sqrt(si) + eps) * scale


@_jit
def adadelta(p, grad, l2, v, u, rho, c, eps, lr):
    """Adadelta: c = 1 - rho; lr negated."""
    for i in range(p.shape[0]):
        g = _gradient(p[i], grad[i], l2)
        vi = v[i] * rho + g * g * c
        v[i] = vi
        delta = np.sqrt(u[i] + eps) / np.sqrt(vi + eps) * g
        u[i] = u[i] * rho + delta * delta * c
        p[i] = p[i] + delta * lr


@_jit
def lion(p, grad, l2, m, decay, b1, c1, b2, c2, lr):
    """Lion (l2 is always 0): decay (1 for none) first; c1 = 1 - b1, c2 = 1 - b2; lr negated."""
    for i in range(p.shape[0]):
        w = p[i] * decay if decay != 1 else p[i]
        g = grad[i]
        c = m[i] * b1 + g * c1
        if c > 0:  # np.sign(c) * lr: lr, -lr, +0 * lr for either zero, nan for nan
            step = lr
        elif c < 0:
            step = -lr
        else:
            step = (c - c) * lr
        p[i] = w + step
        m[i] = m[i] * b2 + g * c2
