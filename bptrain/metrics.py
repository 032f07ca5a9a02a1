"""Metrics: pure functions of true values and predictions, returning Python floats.

Classification takes class indices and a probability matrix (n, k); regression takes values in
the target's original units. Names are those of report.json and metrics.csv.
"""

from __future__ import annotations

import math

import numpy as np

CLASSIFICATION = ("accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro", "log_loss")
REGRESSION = ("mse", "rmse", "mae", "r2")
HIGHER_IS_BETTER = {"accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro", "r2"}


def names(task: str) -> tuple[str, ...]:
    return CLASSIFICATION if task == "classification" else REGRESSION


def confusion_matrix(y: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """counts[i, j]: rows of true class i predicted as class j."""
    return np.bincount(y * k + pred, minlength=k * k).reshape(k, k)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where den is 0 (scikit-learn's zero_division=0)."""
    out = np.zeros(len(num), dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def per_class(cm: np.ndarray) -> dict[str, np.ndarray]:
    tp = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    actual = cm.sum(axis=1).astype(np.float64)
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, actual)
    f1 = _ratio(2 * precision * recall, precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1, "support": actual}


def classification(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Accuracy, balanced accuracy, macro precision/recall/F1 and log loss of probabilities `proba`."""
    k = proba.shape[1]
    pred = proba.argmax(axis=1)
    cm = confusion_matrix(y, pred, k)
    stats = per_class(cm)
    present = stats["support"] > 0
    p_true = np.clip(proba[np.arange(len(y)), y].astype(np.float64), 1e-15, 1.0)
    return {
        "accuracy": float(np.mean(pred == y)),
        "balanced_accuracy": float(stats["recall"][present].mean()),
        "precision_macro": float(stats["precision"].mean()),
        "recall_macro": float(stats["recall"].mean()),
        "f1_macro": float(stats["f1"].mean()),
        "log_loss": float(-np.mean(np.log(p_true))),
    }


def regression(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """MSE, RMSE, MAE and R² (1 - SSE/SST; 0 when the target is constant and fitted exactly)."""
    y = np.asarray(y, dtype=np.float64).ravel()
    pred = np.asarray(pred, dtype=np.float64).ravel()
    err = pred - y
    mse = float(np.mean(err * err))
    sst = float(np.sum((y - y.mean()) ** 2))
    sse = float(np.sum(err * err))
    r2 = 1.0 - sse / sst if sst > 0 else (0.0 if sse == 0 else -math.inf)
    return {"mse": mse, "rmse": math.sqrt(mse), "mae": float(np.mean(np.abs(err))), "r2": r2}


def higher_is_better(metric: str) -> bool:
    """True for metrics to maximize (accuracy, r2, ...), False for losses and errors."""
    return metric.split("_", 1)[1] in HIGHER_IS_BETTER if "_" in metric else metric in HIGHER_IS_BETTER
