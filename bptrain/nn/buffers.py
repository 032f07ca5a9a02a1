"""Work arrays allocated once and reused: grown when a batch has more rows, row-sliced when fewer."""

from __future__ import annotations

import numpy as np


def reserve(buf: np.ndarray | None, shape: tuple[int, ...], dtype) -> np.ndarray:
    """`buf` if it holds `shape` (at least shape[0] rows, same tail and dtype), else a new empty array."""
    fits = (
        buf is not None
        and buf.dtype == dtype
        and buf.shape[1:] == tuple(shape[1:])
        and buf.shape[0] >= shape[0]
    )
    return buf if fits else np.empty(shape, dtype)
