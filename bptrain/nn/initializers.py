"""Weight initializers: f(rng, fan_in, fan_out, dtype) -> a new (fan_in, fan_out) array.

Draws are made in float64 and then cast, so one seed gives the same weights (up to rounding)
in float32 and float64. Formulas are PyTorch's (plain, not truncated, normals).
"""

from __future__ import annotations

import math

import numpy as np

from bptrain.registry import Registry

INITIALIZERS = Registry("initializer")


@INITIALIZERS.register("glorot_uniform")
def glorot_uniform(rng: np.random.Generator, fan_in: int, fan_out: int, dtype) -> np.ndarray:
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, (fan_in, fan_out)).astype(dtype)


@INITIALIZERS.register("glorot_normal")
def glorot_normal(rng: np.random.Generator, fan_in: int, fan_out: int, dtype) -> np.ndarray:
    std = math.sqrt(2.0 / (fan_in + fan_out))
    return rng.normal(0.0, std, (fan_in, fan_out)).astype(dtype)


@INITIALIZERS.register("he_uniform")
def he_uniform(rng: np.random.Generator, fan_in: int, fan_out: int, dtype) -> np.ndarray:
    limit = math.sqrt(6.0 / fan_in)
    return rng.uniform(-limit, limit, (fan_in, fan_out)).astype(dtype)


@INITIALIZERS.register("he_normal")
def he_normal(rng: np.random.Generator, fan_in: int, fan_out: int, dtype) -> np.ndarray:
    std = math.sqrt(2.0 / fan_in)
    return rng.normal(0.0, std, (fan_in, fan_out)).astype(dtype)


@INITIALIZERS.register("zeros")
def zeros(rng: np.random.Generator, fan_in: int, fan_out: int, dtype) -> np.ndarray:
    return np.zeros((fan_in, fan_out), dtype)


def auto_initializer(activation: str) -> str:
    """The initializer suited to a hidden layer's activation: He for ReLU, Glorot otherwise."""
    return "he_uniform" if activation == "relu" else "glorot_uniform"
