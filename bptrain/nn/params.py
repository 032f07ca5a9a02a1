"""A parameter is a named value, its gradient and its kind; the name is also its key in model files.

kind says what the value is, so that regularization can pick the weights alone: "weight" (a
dense layer's W), "bias" (its b), "scale" and "shift" (a norm layer's gamma and beta).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KINDS = ("weight", "bias", "scale", "shift")


@dataclass(slots=True)
class Param:
    name: str  # "layers.0.W"
    value: np.ndarray  # changed in place, by the optimizer only
    grad: np.ndarray  # overwritten by each backward, same shape and dtype as value
    kind: str = "weight"  # one of KINDS
