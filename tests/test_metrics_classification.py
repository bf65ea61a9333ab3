"""evaluation/classification.py: graded-prediction scores, against scikit-learn and by hand."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk

from evaluation.classification import (
    accuracy,
    bootstrap_ci,
    confusion_matrix,
    expected_calibration_error,
    grade_scores,
    hamming_accuracy,
    indicator_scores,
    macro_f1,
    mean_absolute_error,
    overall_macro_f1,
    plot_confusion_matrix,
    precision_recall_f1,
    quadratic_weighted_kappa,
)

RNG = np.random.default_rng(7)
TRUE = RNG.integers(0, 4, 200)
# A noisy grader: right 60% of the time, else one grade off or random.
PRED = np.where(RNG.random(200) < 0.6, TRUE, np.clip(TRUE + RNG.choice([-1, 1, 2], 200), 0, 3))


def test_macro_f1_matches_sklearn_on_fixed_arrays():
    assert macro_f1(TRUE, PRED) == pytest.approx(sk.f1_score(TRUE, PRED, average="macro"))
    # A grade nobody has nor predicts: excluded by default, counted as 0 when labels are forced.
    true3, pred3 = np.minimum(TRUE, 2), np.minimum(PRED, 2)
    assert macro_f1(true3, pred3) == pytest.approx(sk.f1_score(true3, pred3, average="macro"))
    forced = sk.f1_score(true3, pred3, average="macro", labels=[0, 1, 2, 3], zero_division=0)
    assert macro_f1(true3, pred3, labels=(0, 1, 2, 3)) == pytest.approx(forced)
    assert forced < macro_f1(true3, pred3)


def test_per_grade_precision_recall_and_confusion_match_sklearn():
    matrix = confusion_matrix(TRUE, PRED, 4)
    np.testing.assert_array_equal(matrix, sk.confusion_matrix(TRUE, PRED, labels=[0, 1, 2, 3]))
    ours = precision_recall_f1(matrix)
    p, r, f, s = sk.precision_recall_fscore_support(TRUE, PRED, labels=[0, 1, 2, 3], zero_division=0)
    np.testing.assert_allclose(ours["precision"], p)
    np.testing.assert_allclose(ours["recall"], r)
    np.testing.assert_allclose(ours["f1"], f)
    np.testing.assert_array_equal(ours["support"], s)


def test_qwk_matches_sklearn_and_orders_near_misses_above_far_misses():
    assert quadratic_weighted_kappa(TRUE, PRED, 4) == pytest.approx(sk.cohen_kappa_score(TRUE, PRED, weights="quadratic"))
    near = np.clip(TRUE + 1, 0, 3)
    far = 3 - TRUE
    assert quadratic_weighted_kappa(TRUE, near) > 0.5 > quadratic_weighted_kappa(TRUE, far)
    assert quadratic_weighted_kappa(TRUE, far) < 0


def test_perfect_and_all_wrong_by_hand():
    truth = np.array([0, 1, 2, 3, 0, 1])
    assert macro_f1(truth, truth) == 1.0
    assert accuracy(truth, truth) == 1.0 and quadratic_weighted_kappa(truth, truth) == 1.0
    assert mean_absolute_error(truth, truth) == 0.0
    wrong = (truth + 1) % 4
    assert macro_f1(truth, wrong) == 0.0 and accuracy(truth, wrong) == 0.0
    assert mean_absolute_error(truth, np.full(6, 3)) == pytest.approx((3 + 2 + 1 + 0 + 3 + 2) / 6)


def test_known_confusion_matrix_gives_known_macro_f1():
    # rows truth, columns prediction: [[2, 1], [0, 1]]
    truth = np.array([0, 0, 0, 1])
    pred = np.array([0, 0, 1, 1])
    np.testing.assert_array_equal(confusion_matrix(truth, pred, 2), [[2, 1], [0, 1]])
    # class 0: P 1, R 2/3, F1 0.8; class 1: P 1/2, R 1, F1 2/3
    assert macro_f1(truth, pred) == pytest.approx((0.8 + 2 / 3) / 2)


def test_unknown_labels_are_left_out():
    truth = [0, None, 2, -1, 3]
    pred = [0, 3, 2, 0, 1]
    assert accuracy(truth, pred) == pytest.approx(2 / 3)
    assert macro_f1(truth, pred) == pytest.approx(macro_f1([0, 2, 3], [0, 2, 1]))
    assert np.isnan(macro_f1([None, -1], [0, 1]))


def test_hamming_and_overall_macro_f1_by_hand():
    # 3 images x 3 indicators; the last indicator has no labels at all.
    truth = np.array([[0, 1, -1], [2, 1, -1], [3, -1, -1]])
    pred = np.array([[0, 2, 0], [2, 1, 1], [1, 0, 3]])
    assert hamming_accuracy(truth, pred) == pytest.approx(3 / 5)  # 5 labelled cells, 3 right
    first = macro_f1([0, 2, 3], [0, 2, 1])  # F1: grade0 1, grade2 1, grade3 0, grade1 0 → 0.5
    second = macro_f1([1, 1], [2, 1])  # grade1 2/3, grade2 0 → 1/3
    assert first == pytest.approx(0.5) and second == pytest.approx(1 / 3)
    assert overall_macro_f1(truth, pred) == pytest.approx((first + second) / 2)
    block = indicator_scores(truth, pred, ["a", "b", "c"])
    assert set(block) == {"overall_macro_f1", "hamming", "a", "b"}


def test_expected_calibration_error_by_hand():
    # Two bins used: confidence 0.9 (2 right of 2 → gap 0.1) and 0.6 (1 right of 2 → gap 0.1).
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.4, 0.6]])
    truth = np.array([0, 0, 1, 0])
    assert expected_calibration_error(probs, truth, n_bins=10) == pytest.approx(0.1)
    # Confidently wrong everywhere: ECE = confidence.
    assert expected_calibration_error(np.array([[1.0, 0.0]] * 4), np.ones(4, int)) == pytest.approx(1.0)
    # Calibrated by construction: confidence 0.75, three of four right.
    assert expected_calibration_error(np.array([[0.75, 0.25]] * 4), np.array([0, 0, 0, 1])) == pytest.approx(0.0)


def test_bootstrap_ci_brackets_the_estimate_and_is_reproducible():
    point = accuracy(TRUE, PRED)
    low, high = bootstrap_ci(accuracy, TRUE, PRED, n_resamples=300, seed=1)
    assert low < point < high and high - low < 0.2
    assert (low, high) == bootstrap_ci(accuracy, TRUE, PRED, n_resamples=300, seed=1)
    assert bootstrap_ci(accuracy, TRUE, TRUE, n_resamples=50) == (1.0, 1.0)
    with pytest.raises(ValueError, match="one row per image"):
        bootstrap_ci(accuracy, TRUE, PRED[:-1])


def test_bootstrap_resamples_whole_images_across_indicators():
    truth = np.array([[0, 0], [1, 1], [2, 2], [3, 3]] * 10)
    pred = truth.copy()
    pred[::4] = 3  # every first image of four wrong in both indicators
    low, high = bootstrap_ci(hamming_accuracy, truth, pred, n_resamples=200)
    assert low <= hamming_accuracy(truth, pred) <= high


def test_grade_scores_report_and_confusion_png(tmp_path):
    probs = np.eye(4)[PRED] * 0.7 + 0.075
    scores = grade_scores(TRUE, PRED, ["good", "mild", "moderate", "severe"], probs)
    assert scores["n"] == 200 and scores["macro_f1"] == pytest.approx(macro_f1(TRUE, PRED))
    assert scores["per_grade"]["mild"]["recall"] == pytest.approx(sk.recall_score(TRUE, PRED, labels=[1], average="macro"))
    assert 0 <= scores["ece"] <= 1 and "qwk" in scores and "mae" in scores
    path = plot_confusion_matrix(np.array(scores["confusion_matrix"]), ["good", "mild", "moderate", "severe"], "test", tmp_path / "cm.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 2000
