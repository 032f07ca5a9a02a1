"""Weight initializers: f(rng, fan_in, fan_out, dtype) -> a new (fan_in, fan_out) array.

Draws are made in float64 and then cast, so one seed gives the same weights (up to rounding)
in float32 and float64. Formulas are PyTorch's (plain, not truncated, normals; gain 1).

auto_initializer(activation) picks for a hidden layer: he_uniform after relu, leaky_relu, elu,
gelu, silu and softplus (ReLU-like: they pass about half the variance); lecun_normal after selu
(its self-normalizing fixed point assumes it); glorot_uniform otherwise (identity, sigmoid, tanh).
"""

from __future__ import annotations

import math

import numpy as np

from bptrain.nn.names import Registry

INITIALIZERS = Registry("initializer")

RELU_LIKE = frozenset({"relu", "leaky_relu", "elu", "gelu", "silu", "softplus"})


@INITIALIZERS.register("glorot_uniform", doc="U(-a, a), a = sqrt(6 / (fan_in + fan_out))")
def glorot_uniform(rng: np.random.Generator, fan_in: int, fan_out: int, dtype) -> np.ndarray:
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, (fan_in, fan_out)).astype(dtype)


@INITIALIZERS.register("glorot_normal", doc="N(0, 2 / (fan_in + fan_out))")
def glorot_normal(rng: np.random.Generator, fan_in: int, fan_out: int, dtype) -> np.ndarray:
    std = math.sqrt(2.0 / (fan_in + fan_out))
    return rng.normal(0.0, std, (fan_in, fan_out)).astype(dtype)


@INITIALIZERS.register("he_uniform", doc="U(-a, a), a = sqrt(6 / fan_in)")
def he_uniform(rng: np.random.Generator, fan_in: int, fan_out: int, dtype) -> np.ndarray:
    limit = math.sqrt(6.0 / fan_in)
    return rng.uniform(-limit, limit, (fan_in, fan_out)).astype(dtype)


@INITIALIZERS.register("he_normal", doc="N(0, 2 / fan_in)")
def he_normal(rng: np.random.Generator, fan_in: int, fan_out: int, dtype) -> np.ndarray:
    std = math.sqrt(2.0 / fan_in)
    return rng.normal(0.0, std, (fan_in, fan_out)).astype(dtype)


@INITIALIZERS.register("lecun_uniform", doc="U(-a, a), a = sqrt(3 / fan_in)")
def lecun_uniform(rng: np.random.Generator, fan_in: int, fan_out: int, dtype) -> np.ndarray:
    limit = math.sqrt(3.0 / fan_in)
    return rng.uniform(-limit, limit, (fan_in, fan_out)).astype(dtype)


@INITIALIZERS.register("lecun_normal", doc="N(0, 1 / fan_in)")
def lecun_normal(rng: np.random.Generator, fan_in: int, fan_out: int, dtype) -> np.ndarray:
    std = math.sqrt(1.0 / fan_in)
    return rng.normal(0.0, std, (fan_in, fan_out)).astype(dtype)


@INITIALIZERS.register("orthogonal", doc="orthonormal columns (or rows), as torch.nn.init.orthogonal_")
def orthogonal(rng: np.random.Generator, fan_in: int, fan_out: int, dtype) -> np.ndarray:
    """Orthonormal columns (W.T @ W = I) when fan_in >= fan_out, else orthonormal rows (W @ W.T = I).

    As torch.nn.init.orthogonal_: Q of the QR decomposition of a standard normal matrix, each
    column's sign flipped to make R's diagonal positive, so Q is uniform over orthogonal matrices.
    """
    tall = rng.standard_normal((max(fan_in, fan_out), min(fan_in, fan_out)))
    q, r = np.linalg.qr(tall)
    q *= np.where(np.diagonal(r) < 0.0, -1.0, 1.0)
    return np.ascontiguousarray(q if fan_in >= fan_out else q.T, dtype=dtype)


@INITIALIZERS.register("zeros", doc="all zeros")
def zeros(rng: np.random.Generator, fan_in: int, fan_out: int, dtype) -> np.ndarray:
    return np.zeros((fan_in, fan_out), dtype)


def auto_initializer(activation: str) -> str:
    """The initializer suited to a hidden layer's activation (rule in the module docstring)."""
    if activation in RELU_LIKE:
        return "he_uniform"
    return "lecun_normal" if activation == "selu" else "glorot_uniform"
