"""State dicts: named arrays copied out of a model or optimizer and checked before being copied back in."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def check_state(expected: Mapping[str, np.ndarray], state: Mapping[str, np.ndarray], what: str) -> None:
    """Raise ValueError naming the first key of `state` that is missing, unexpected or misshapen."""
    for key, array in expected.items():
        if key not in state:
            raise ValueError(f"{what}: missing key {key!r}")
        if np.shape(state[key]) != np.shape(array):
            raise ValueError(f"{what}: {key!r} has shape {np.shape(state[key])}, expected {np.shape(array)}")
    for key in state:
        if key not in expected:
            raise ValueError(f"{what}: unexpected key {key!r}")
