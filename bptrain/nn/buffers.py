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


def rows_like(buf: np.ndarray | None, like: np.ndarray, dtype=None) -> tuple[np.ndarray, np.ndarray]:
    """(buffer, view): reserve(buf, like.shape, dtype or like.dtype) and its first len(like) rows.

    Use as `self._tmp, tmp = rows_like(self._tmp, z)`: the buffer is kept, the view is worked in.
    """
    buf = reserve(buf, like.shape, like.dtype if dtype is None else np.dtype(dtype))
    return buf, buf[: like.shape[0]]
