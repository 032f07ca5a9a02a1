"""Predictions as CSV cells: the header and the rows that `bptrain predict` writes for model outputs.

One target: `prediction` (a class label or a number in the target's units), then with `--proba`
one `proba_<class>` per class. Several targets: `prediction_<target>` for each (0/1 for multilabel,
numbers for regression), then with `--proba` one `proba_<label>` per label (multilabel). Kept
input columns come first and may not take one of these names.
"""

from __future__ import annotations

import numpy as np

from bptrain.errors import ConfigError
from bptrain.preprocess import Preprocessor
from bptrain.train import probabilities, unscale


def header(prep: Preprocessor, proba: bool) -> list[str]:
    if prep.task == "classification":
        return ["prediction"] + ([f"proba_{c}" for c in prep.classes] if proba else [])
    if prep.task == "multilabel":
        return [f"prediction_{c}" for c in prep.classes] + ([f"proba_{c}" for c in prep.classes] if proba else [])
    return ["prediction"] if len(prep.targets) == 1 else [f"prediction_{t}" for t in prep.targets]


def output_header(prep: Preprocessor, proba: bool, keep: list[str]) -> list[str]:
    """The kept columns, then `header`; ConfigError when a kept column has the name of an output column."""
    names = header(prep, proba)
    clash = next((c for c in keep if c in names), None)
    if clash is not None:
        raise ConfigError(
            f"--keep {clash}: predict writes a column of that name itself ({', '.join(names)}); "
            "rename that column in the input to keep it"
        )
    return keep + names


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
