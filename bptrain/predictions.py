"""Predictions as CSV cells: the header and the rows that `bptrain predict` writes for model outputs.

One target: `prediction` (a class label or a number in the target's units), then with `--proba`
one `proba_<class>` per class. Several targets: `prediction_<target>` for each (0/1 for multilabel,
numbers for regression), then with `--proba` one `proba_<label>` per label (multilabel).
"""

from __future__ import annotations

import numpy as np

from bptrain.preprocess import Preprocessor
from bptrain.train import probabilities, unscale


def header(prep: Preprocessor, proba: bool) -> list[str]:
    if prep.task == "classification":
        return ["prediction"] + ([f"proba_{c}" for c in prep.classes] if proba else [])
    if prep.task == "multilabel":
        return [f"prediction_{c}" for c in prep.classes] + ([f"proba_{c}" for c in prep.classes] if proba else [])
    return ["prediction"] if len(prep.targets) == 1 else [f"prediction_{t}" for t in prep.targets]


def columns(prep: Preprocessor, out: np.ndarray, proba: bool, dtype: str) -> list[np.ndarray]:
    """The output columns for `out` (the model's outputs for a chunk of rows, in output space)."""
    if prep.task == "classification":
        p = probabilities(out)
        labels = np.array(prep.classes, dtype=object)[p.argmax(axis=1)]
        return [labels] + ([p[:, i] for i in range(p.shape[1])] if proba else [])
    if prep.task == "multilabel":
        chosen = (out >= 0.5).astype(np.int64)
        return [chosen[:, i] for i in range(out.shape[1])] + ([out[:, i] for i in range(out.shape[1])] if proba else [])
    values = unscale(prep, out).astype(dtype)
    return [values[:, i] for i in range(values.shape[1])]
