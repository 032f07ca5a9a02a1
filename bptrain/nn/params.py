"""A parameter is a named value and its gradient; the name is also its key in model files."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(slots=True)
class Param:
    name: str  # "layers.0.W"
    value: np.ndarray  # changed in place, by the optimizer only
    grad: np.ndarray  # overwritten by each backward, same shape and dtype as value
