"""Predictions as CSV cells: the header and the rows that `bptrain predict` writes for model outputs.

One target: `prediction` (a class label or a number in the target's units), then with `--proba`
one `proba_<class>` per class. Several targets: `prediction_<target>` for each (0/1 for multilabel,
numbers for regression), then with `--proba` one `proba_<label>` per label (multilabel).
"""

from __future__ import annotations

import math

import numpy as np

from bptrain.preprocess import Preprocessor
from bptrain.train import probabilities, unscale


def header(prep: Preprocessor, proba: bool) -> list[str]:
    if prep.task == "classification":
        return ["prediction"] + ([f"proba_{c}" for c in prep.classes] if proba else [])
    if prep.task == "multilabel":
        return [f"prediction_{c}" for c in prep.classes] + ([f"proba_{c}" for c in prep.classes] if proba else [])
    return ["prediction"] if len(prep.targets) == 1 else [f"prediction_{t}" for t in prep.targets]


def rows(prep: Preprocessor, out: np.ndarray, proba: bool, dtype: str) -> list[list[str]]:
    """The cells of `out` (the model's outputs for a chunk of rows, in output space)."""
    if prep.task == "classification":
        p = probabilities(out)
        labels = [prep.classes[i] for i in p.argmax(axis=1)]
        return [[label] + ([number(v, dtype) for v in row] if proba else []) for label, row in zip(labels, p)]
    if prep.task == "multilabel":
        chosen = (out >= 0.5).astype(np.int64)
        return [[str(v) for v in picks] + ([number(v, dtype) for v in row] if proba else []) for picks, row in zip(chosen, out)]
    return [[number(v, dtype) for v in row] for row in unscale(prep, out)]


def number(value: float, dtype: str) -> str:
    """As many digits as the model's dtype holds: 7 significant for float32, all for float64."""
    if not math.isfinite(value):
        return str(value)
    return f"{value:.7g}" if dtype == "float32" else repr(float(value))
