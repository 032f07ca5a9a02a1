"""Metrics against values worked out by hand."""

import math

import numpy as np
import pytest

from bptrain import metrics


def one_hot_proba(pred, k, p=0.8):
    proba = np.full((len(pred), k), (1 - p) / (k - 1))
    proba[np.arange(len(pred)), pred] = p
    return proba


def test_classification_metrics_by_hand():
    y = np.array([0, 0, 1, 1, 2])
    pred = np.array([0, 1, 1, 1, 0])
    result = metrics.classification(y, one_hot_proba(pred, 3))
    # precision: 1/2, 2/3, 0   recall: 1/2, 1, 0   f1: 1/2, 4/5, 0
    assert result["accuracy"] == pytest.approx(3 / 5)
    assert result["precision_macro"] == pytest.approx((1 / 2 + 2 / 3 + 0) / 3)
    assert result["recall_macro"] == pytest.approx((1 / 2 + 1 + 0) / 3)
    assert result["balanced_accuracy"] == pytest.approx((1 / 2 + 1 + 0) / 3)
    assert result["f1_macro"] == pytest.approx((1 / 2 + 4 / 5 + 0) / 3)
    # the true class gets 0.8 in rows 0, 2, 3 and 0.1 in rows 1, 4
    assert result["log_loss"] == pytest.approx(-(3 * math.log(0.8) + 2 * math.log(0.1)) / 5)


def test_confusion_matrix_rows_are_true_classes():
    cm = metrics.confusion_matrix(np.array([0, 0, 1, 2]), np.array([1, 0, 1, 1]), 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]


def test_balanced_accuracy_ignores_classes_absent_from_the_labels():
    y = np.array([0, 0, 1])
    pred = np.array([0, 2, 1])
    assert metrics.classification(y, one_hot_proba(pred, 3))["balanced_accuracy"] == pytest.approx((1 / 2 + 1) / 2)



def test_macro_means_skip_classes_neither_in_the_labels_nor_predicted():
    # one class's rows (as a slice of iris holding only setosa): 49 right, 1 taken for class 1;
    # class 2 is in neither, so it counts for nothing, as in scikit-learn's precision_score et al.
    y = np.zeros(50, dtype=int)
    pred = np.zeros(50, dtype=int)
    pred[7] = 1
    result = metrics.classification(y, one_hot_proba(pred, 3))
    assert result["balanced_accuracy"] == pytest.approx(49 / 50)
    assert result["precision_macro"] == pytest.approx((1 + 0) / 2)
    assert result["recall_macro"] == pytest.approx((49 / 50 + 0) / 2)
    assert result["f1_macro"] == pytest.approx((2 * 49 / 50 / (1 + 49 / 50) + 0) / 2)

def test_regression_metrics_by_hand():
    result = metrics.regression(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.0, 3.0, 5.0]))
    assert result == pytest.approx({"mse": 0.25, "rmse": 0.5, "mae": 0.25, "r2": 1 - 1 / 5})


def test_direction_of_improvement():
    assert metrics.higher_is_better("val_accuracy") and metrics.higher_is_better("val_r2")
    assert not metrics.higher_is_better("val_loss") and not metrics.higher_is_better("train_loss")
    assert not metrics.higher_is_better("val_log_loss") and not metrics.higher_is_better("val_mae")


def test_multilabel_metrics_by_hand():
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    proba = np.array([[0.9, 0.2], [0.6, 0.7], [0.8, 0.4], [0.1, 0.3]])  # predicted: [1,0] [1,1] [1,0] [0,0]
    result = metrics.multilabel(y, proba)
    assert result["accuracy"] == pytest.approx(2 / 4)  # rows 0 and 3 are entirely right
    assert result["hamming_loss"] == pytest.approx(2 / 8)
    # label 0: tp 2, predicted 3, actual 2 -> p 2/3, r 1; label 1: tp 1, predicted 1, actual 2 -> p 1, r 1/2
    assert result["precision_macro"] == pytest.approx((2 / 3 + 1) / 2)
    assert result["recall_macro"] == pytest.approx((1 + 1 / 2) / 2)
    assert result["f1_macro"] == pytest.approx((0.8 + 2 / 3) / 2)
    p_true = [0.9, 0.8, 0.4, 0.7, 0.8, 0.4, 0.9, 0.7]
    assert result["log_loss"] == pytest.approx(-np.mean(np.log(p_true)))
    assert metrics.names("multilabel") == ("accuracy", "hamming_loss", "precision_macro", "recall_macro", "f1_macro", "log_loss")
    assert not metrics.higher_is_better("val_hamming_loss")


def test_several_regression_targets_average_the_per_target_metrics():
    y = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0]])
    pred = np.array([[1.0, 12.0], [2.0, 20.0], [3.0, 30.0], [5.0, 40.0]])
    first, second = metrics.regression(y[:, 0], pred[:, 0]), metrics.regression(y[:, 1], pred[:, 1])
    both = metrics.regression(y, pred)
    assert both == pytest.approx({k: (first[k] + second[k]) / 2 for k in first})
    assert both["rmse"] == pytest.approx((0.5 + 1.0) / 2)  # the mean of the per-target RMSE, not the RMSE of all


# --- ROC and precision-recall curves (scikit-learn's documented example: AUC 0.75, AP 0.83) ----------


def test_roc_curve_of_the_textbook_example():
    fpr, tpr, auc = metrics.roc_curve(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    np.testing.assert_array_equal(fpr, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_array_equal(tpr, [0, 0.5, 0.5, 1, 1])
    assert auc == 0.75


def test_pr_curve_of_the_textbook_example():
    recall, precision, ap = metrics.pr_curve(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    np.testing.assert_array_equal(recall, [0.5, 0.5, 1, 1])
    np.testing.assert_allclose(precision, [1, 0.5, 2 / 3, 0.5])
    assert ap == pytest.approx(5 / 6)


def test_tied_scores_make_one_point():
    y, score = np.array([0, 1, 0, 1]), np.full(4, 0.5)
    fpr, tpr, auc = metrics.roc_curve(y, score)
    np.testing.assert_array_equal(np.c_[fpr, tpr], [[0, 0], [1, 1]])
    assert auc == 0.5
    recall, precision, ap = metrics.pr_curve(y, score)
    assert (recall.tolist(), precision.tolist(), ap) == ([1.0], [0.5], 0.5)
