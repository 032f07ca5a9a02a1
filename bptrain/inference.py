"""Inference: a model's outputs, loss and metrics on rows, each row's result independent of how rows are grouped."""

from __future__ import annotations

import numpy as np

from bptrain import metrics
from bptrain.data.preprocess import Preprocessor
from bptrain.data.splits import Split

INFERENCE_ROWS = 256  # every evaluation of the network is one batch of exactly this many rows


def outputs(model, loss, x: np.ndarray, first_row: int = 0) -> np.ndarray:
    """The model's predictions for `x` in output space (probabilities or standardized values).

    `first_row` is the number of x's first row in its file; see `_batches` for why it matters.
    """
    return _outputs(model, loss, x, None, first_row)[0]


def outputs_and_loss(model, loss, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """outputs(x), and the mean loss over x's rows in evaluation mode, from one forward pass."""
    return _outputs(model, loss, x, y)


def _outputs(model, loss, x: np.ndarray, y: np.ndarray | None, first_row: int = 0) -> tuple[np.ndarray, float]:
    out, total = None, 0.0
    for a, b, logits, i in _batches(model, x, first_row):
        if y is not None:
            value, _ = loss(logits[i : i + b - a], y[a:b])
            total += value * (b - a)
        p = loss.link(logits)  # on the whole batch, so that element-wise kernels see the same shape too
        if out is None:
            out = np.empty((len(x), p.shape[1]), p.dtype)
        out[a:b] = p[i : i + b - a]
    return (out if out is not None else np.empty((0, 1))), (total / len(x) if len(x) else float("nan"))


def _batches(model, x: np.ndarray, first_row: int = 0):
    """(a, b, logits, i): the network's logits for one batch of INFERENCE_ROWS rows, x[a:b] at logits[i : i + b - a].

    Row r of a file always sits at position r % INFERENCE_ROWS of a batch of exactly
    INFERENCE_ROWS rows, zero-padded at the ends, so its result does not depend on how the rows
    are grouped into blocks, nor on the other rows: a BLAS may choose its kernel (gemv for one row,
    edge kernels for a remainder) by the shape of a product and by where a row sits in it. The
    BLAS thread count is the caller's (bptrain.threads): for a given count, a product of a given
    shape is split between threads the same way every time.
    """
    size = INFERENCE_ROWS
    batch = np.zeros((size, *x.shape[1:]), x.dtype)
    for start in range(-(first_row % size), len(x), size):
        a, b = max(start, 0), min(start + size, len(x))
        if b - a < size:
            batch.fill(0)
        batch[a - start : b - start] = x[a:b]
        yield a, b, model.forward(batch, train=False), a - start


def probabilities(out: np.ndarray) -> np.ndarray:
    """One column per class: a single sigmoid column p becomes [1 - p, p]."""
    return np.hstack([1.0 - out, out]) if out.shape[1] == 1 else out


def score(model, loss, prep: Preprocessor, split: Split) -> dict[str, float]:
    """`loss` and the task's metrics of `model` on one split (non-finite values are reported, not warned about)."""
    with np.errstate(all="ignore"):
        return _score(model, loss, prep, split)


def _score(model, loss, prep: Preprocessor, split: Split) -> dict[str, float]:
    out, value = outputs_and_loss(model, loss, split.x, split.y)
    result = {"loss": value}
    if prep.task == "classification":
        result.update(metrics.classification(split.labels, probabilities(out)))
    elif prep.task == "multilabel":
        result.update(metrics.multilabel(split.labels, out))
    else:
        result.update(metrics.regression(prep.target_values(split.frame), unscale(prep, out)))
    return result


def unscale(prep: Preprocessor, out: np.ndarray) -> np.ndarray:
    """Regression outputs back in the targets' original units, one column per target."""
    return out.astype(np.float64) * prep.target_scale + prep.target_center
