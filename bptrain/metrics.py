"""Metrics: pure functions of true values and predictions, returning Python floats.

Classification takes class indices and a probability matrix (n, k); multilabel a 0/1 matrix
(n, k) and one probability per label; regression values in the targets' original units, one column
per target (metrics averaged over the targets). Names are those of report.json and metrics.csv.
"""

from __future__ import annotations

import math

import numpy as np

CLASSIFICATION = ("accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro", "log_loss")
MULTILABEL = ("accuracy", "hamming_loss", "precision_macro", "recall_macro", "f1_macro", "log_loss")
REGRESSION = ("mse", "rmse", "mae", "r2")
HIGHER_IS_BETTER = {"accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro", "r2"}


def names(task: str) -> tuple[str, ...]:
    return {"classification": CLASSIFICATION, "multilabel": MULTILABEL}.get(task, REGRESSION)


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
    # the macro means run over the classes in y or in pred, as scikit-learn's: a class the model
    # knows but that neither the rows nor the predictions hold is no evidence either way
    seen = present | (cm.sum(axis=0) > 0)
    p_true = np.clip(proba[np.arange(len(y)), y].astype(np.float64), 1e-15, 1.0)
    return {
        "accuracy": float(np.mean(pred == y)),
        "balanced_accuracy": float(stats["recall"][present].mean()),
        "precision_macro": float(stats["precision"][seen].mean()),
        "recall_macro": float(stats["recall"][seen].mean()),
        "f1_macro": float(stats["f1"][seen].mean()),
        "log_loss": float(-np.mean(np.log(p_true))),
    }


def per_label(y: np.ndarray, pred: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support (positives) of each label of 0/1 matrices y and pred."""
    tp = np.sum((pred == 1) & (y == 1), axis=0).astype(np.float64)
    predicted = np.sum(pred == 1, axis=0).astype(np.float64)
    actual = np.sum(y == 1, axis=0).astype(np.float64)
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, actual)
    f1 = _ratio(2 * precision * recall, precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1, "support": actual}


def multilabel(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Subset accuracy (every label right), Hamming loss (share of wrong labels), macro precision,
    recall and F1 over the labels, and the mean binary log loss, from label probabilities `proba`."""
    y = np.asarray(y)
    pred = (proba >= 0.5).astype(y.dtype)
    stats = per_label(y, pred)
    p = np.clip(proba.astype(np.float64), 1e-15, 1.0 - 1e-15)
    return {
        "accuracy": float(np.mean(np.all(pred == y, axis=1))),
        "hamming_loss": float(np.mean(pred != y)),
        "precision_macro": float(stats["precision"].mean()),
        "recall_macro": float(stats["recall"].mean()),
        "f1_macro": float(stats["f1"].mean()),
        "log_loss": float(-np.mean(y * np.log(p) + (1 - y) * np.log(1.0 - p))),
    }


def regression(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """MSE, RMSE, MAE and R² (1 - SSE/SST; 0 when the target is constant and fitted exactly); with
    several targets (columns), each is computed per target and averaged, as scikit-learn's
    multioutput="uniform_average"."""
    y = np.asarray(y, dtype=np.float64)
    y = y.reshape(len(y), -1)
    pred = np.asarray(pred, dtype=np.float64).reshape(y.shape)
    err = pred - y
    mse = np.mean(err * err, axis=0)
    sst = np.sum((y - y.mean(axis=0)) ** 2, axis=0)
    sse = np.sum(err * err, axis=0)
    r2 = [1.0 - e / t if t > 0 else (0.0 if e == 0 else -math.inf) for e, t in zip(sse, sst)]
    return {
        "mse": float(np.mean(mse)),
        "rmse": float(np.mean(np.sqrt(mse))),
        "mae": float(np.mean(np.abs(err))),
        "r2": float(np.mean(r2)),
    }


def higher_is_better(metric: str) -> bool:
    """True for metrics to maximize (accuracy, r2, ...), False for losses and errors."""
    return metric.split("_", 1)[1] in HIGHER_IS_BETTER if "_" in metric else metric in HIGHER_IS_BETTER


def _ranked(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Cumulative true and false positives at each distinct score, highest first, and the class sizes."""
    order = np.argsort(-np.asarray(score, dtype=np.float64), kind="stable")
    s, y = np.asarray(score, dtype=np.float64)[order], np.asarray(y)[order].astype(bool)
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # the last row of each group of equal scores
    tp = np.cumsum(y)[last].astype(np.float64)
    fp = (last + 1 - tp).astype(np.float64)
    return tp, fp, int(y.sum()), int(len(y) - y.sum())


def roc_curve(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(false positive rates, true positive rates, area under the curve) of 0/1 labels `y` ranked by
    `score`, a point per distinct score from (0, 0); nan rates and area when a class is absent."""
    tp, fp, positives, negatives = _ranked(y, score)
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = np.r_[0.0, tp / positives]
        fpr = np.r_[0.0, fp / negatives]
    return fpr, tpr, float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def pr_curve(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(recall, precision, average precision) of 0/1 labels `y` ranked by `score`, a point per
    distinct score; average precision is the sum of precision times the rise in recall (scikit-learn's)."""
    tp, fp, positives, _ = _ranked(y, score)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = tp / positives
        precision = tp / (tp + fp)
    return recall, precision, float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
