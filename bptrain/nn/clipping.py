"""Gradient clipping, in place on p.grad between backward and the optimizer step, as PyTorch's clip_grad_*_.

A norm is the 2-norm of the gradient entries; when it exceeds max_norm the gradients are scaled by
max_norm / (norm + 1e-6), PyTorch's coefficient, so the clipped norm lands just below max_norm.
"""

from __future__ import annotations

import math

import numpy as np

from bptrain.nn.errors import OptionError
from bptrain.nn.params import Param

EPS = 1e-6


def _positive(what: str, value: float) -> float:
    if not value > 0.0:
        raise OptionError(f"{what} must be > 0 (got {value})")
    return float(value)


def _norm(p: Param) -> float:
    return math.sqrt(float(np.vdot(p.grad, p.grad)))


def clip_global_norm(params: list[Param], max_norm: float) -> float:
    """Scale every grad by one coefficient if the norm of all of them together exceeds max_norm;
    returns that total norm, measured before clipping (torch.nn.utils.clip_grad_norm_)."""
    max_norm = _positive("max_norm", max_norm)
    total = math.sqrt(sum(float(np.vdot(p.grad, p.grad)) for p in params))
    coef = max_norm / (total + EPS)
    if coef < 1.0:
        for p in params:
            p.grad *= coef
    return total


def clip_norm_per_param(params: list[Param], max_norm: float) -> None:
    """The same, each param's grad on its own."""
    max_norm = _positive("max_norm", max_norm)
    for p in params:
        coef = max_norm / (_norm(p) + EPS)
        if coef < 1.0:
            p.grad *= coef


def clip_value(params: list[Param], clip_value: float) -> None:
    """Clamp every gradient entry into [-clip_value, clip_value] (torch.nn.utils.clip_grad_value_)."""
    c = _positive("clip_value", clip_value)
    for p in params:
        np.clip(p.grad, -c, c, out=p.grad)
