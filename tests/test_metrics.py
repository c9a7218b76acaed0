"""src/metrics.py against scikit-learn and SciPy on seeded random inputs and edge cases."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

sklearn_metrics = pytest.importorskip("sklearn.metrics")
stats = pytest.importorskip("scipy.stats")

from src.metrics import (METRICS, ConstantInputWarning, accuracy, compute_metrics, f1, macro_f1,  # noqa: E402
                         matthews_corrcoef, pearson, rankdata, spearman)

TOL = 1e-12
SEEDS = range(40)


def reference_classification(y, p) -> dict:
    """scikit-learn's values (its zero-division warnings silenced: it returns 0.0 as we do)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = {
            "accuracy": sklearn_metrics.accuracy_score(y, p),
            "macro_f1": sklearn_metrics.f1_score(y, p, average="macro"),
            "mcc": sklearn_metrics.matthews_corrcoef(y, p),
        }
        if len(np.union1d(y, p)) <= 2:
            out["f1"] = sklearn_metrics.f1_score(y, p)
    return out


def reference_regression(x, y) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {"pearson": float(stats.pearsonr(x, y)[0]), "spearman": float(stats.spearmanr(x, y)[0])}


def assert_close(ours: dict, reference: dict) -> None:
    assert set(ours) == set(reference)
    for name, value in reference.items():
        if math.isnan(value):
            assert math.isnan(ours[name]), f"{name}: {ours[name]} but reference nan"
        else:
            assert abs(ours[name] - value) <= TOL, f"{name}: {ours[name]!r} vs reference {value!r}"


def random_classification(seed: int, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels and noisy predictions (right about half the time), of random length 1..200."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 200))
    y = rng.integers(0, classes, n)
    p = np.where(rng.random(n) < 0.5, y, rng.integers(0, classes, n))
    return y, p


@pytest.mark.parametrize("classes", [2, 3, 15])
def test_classification_matches_sklearn(classes):
    for seed in SEEDS:
        y, p = random_classification(seed * 100 + classes, classes)
        names = ["accuracy", "macro_f1", "mcc"] + (["f1"] if len(np.union1d(y, p)) <= 2 else [])
        assert_close(compute_metrics(names, y, p), reference_classification(y, p))


@pytest.mark.parametrize("ties", [False, True])
def test_regression_matches_scipy(ties):
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        n = int(rng.integers(3, 300))
        x = rng.normal(size=n) * 3.0 + 1.0
        y = 0.6 * x + rng.normal(size=n)
        if ties:  # integer-valued scores, as STS-B gold labels 0..5
            x, y = np.round(x), np.round(y * 0.5)
        assert_close(compute_metrics(["pearson", "spearman"], x, y), reference_regression(x, y))


def test_rankdata_matches_scipy():
    rng = np.random.default_rng(0)
    for x in (rng.integers(0, 5, 50), rng.normal(size=50), np.array([3, 1, 3, 3, 2, 1])):
        np.testing.assert_array_equal(rankdata(x), stats.rankdata(x))
    np.testing.assert_array_equal(rankdata([3, 1, 3, 3, 2, 1]), [5, 1.5, 5, 5, 3, 1.5])


@pytest.mark.parametrize("y, p", [
    ([1, 1, 1, 1], [1, 1, 1, 1]),           # a single class in labels and predictions, all right
    ([0, 0, 0], [0, 0, 0]),                 # a single class that is not the positive one
    ([0, 1, 1, 0], [1, 0, 0, 1]),           # all wrong (binary)
    ([0, 1, 2, 0, 1, 2], [1, 2, 0, 2, 0, 1]),  # all wrong (3 classes)
    ([0, 1, 2, 2], [0, 1, 2, 2]),           # all right
    ([0, 1, 1, 0], [1, 1, 1, 1]),           # constant predictions: mcc denominator 0
    ([1, 1, 1, 1], [0, 1, 0, 1]),           # constant labels
    ([0, 1], [1, 1]),                       # length 2
    ([5], [5]),                             # length 1
    ([-1, 1, 1, -1], [-1, 1, -1, -1]),      # classes -1/1 with positive 1
])
def test_classification_edge_cases(y, p):
    y, p = np.array(y), np.array(p)
    names = ["accuracy", "macro_f1", "mcc"] + (["f1"] if len(np.union1d(y, p)) <= 2 else [])
    assert_close(compute_metrics(names, y, p), reference_classification(y, p))


def test_classification_exact_values():
    assert accuracy([0, 1, 1, 0], [0, 1, 0, 0]) == 0.75
    assert f1([0, 1, 1, 0], [0, 1, 0, 0]) == pytest.approx(2 / 3)
    assert f1([0, 1, 1, 0], [0, 1, 0, 0], positive=0) == pytest.approx(0.8)
    assert matthews_corrcoef([0, 1, 0, 1], [0, 1, 0, 1]) == 1.0
    assert matthews_corrcoef([0, 1, 0, 1], [1, 0, 1, 0]) == -1.0
    assert matthews_corrcoef([0, 1, 0, 1], [1, 1, 1, 1]) == 0.0
    assert macro_f1(["a", "b", "c"], ["a", "b", "b"]) == pytest.approx((1 + 2 / 3 + 0) / 3)


def test_f1_rejects_what_sklearn_rejects():
    with pytest.raises(ValueError, match="3 classes"):
        f1([0, 1, 2], [0, 1, 1])
    with pytest.raises(ValueError, match="positive class 1 is not one of the classes 0, 2"):
        f1([0, 2, 2], [0, 2, 0])
    for y, p in (([0, 1, 2], [0, 1, 1]), ([0, 2, 2], [0, 2, 0])):
        with pytest.raises(ValueError):
            sklearn_metrics.f1_score(y, p)


@pytest.mark.parametrize("fn", [pearson, spearman])
def test_constant_input_is_nan_with_warning_as_scipy(fn):
    reference = {pearson: stats.pearsonr, spearman: stats.spearmanr}[fn]
    for x, y in (([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]), ([1.0, 2.0, 3.0], [0.5, 0.5, 0.5]), ([1, 1], [1, 1])):
        with pytest.warns(ConstantInputWarning, match="constant"):
            assert math.isnan(fn(x, y))
        with pytest.warns(stats.ConstantInputWarning):
            assert math.isnan(reference(x, y)[0])


@pytest.mark.parametrize("x, y", [([1.0, 2.0], [3.0, 5.0]), ([1.0, 2.0], [5.0, 3.0]), ([0, 1], [1, 1e-300])])
def test_length_two(x, y):
    assert_close({"pearson": pearson(x, y), "spearman": spearman(x, y)}, reference_regression(x, y))
    assert abs(pearson(x, y)) == 1.0


def test_nan_propagates_as_scipy():
    x, y = [1.0, np.nan, 3.0, 4.0], [1.0, 2.0, 3.0, 5.0]
    assert math.isnan(pearson(x, y)) and math.isnan(spearman(x, y))
    assert_close({"pearson": pearson(x, y), "spearman": spearman(x, y)}, reference_regression(x, y))


def test_large_scores_do_not_overflow():
    rng = np.random.default_rng(1)
    x = rng.normal(size=100) * 1e200
    y = x + rng.normal(size=100) * 1e200
    assert_close({"pearson": pearson(x, y)}, {"pearson": float(stats.pearsonr(x, y)[0])})


@pytest.mark.parametrize("fn", list(METRICS.values()))
def test_bad_inputs(fn):
    with pytest.raises(ValueError, match="differ in length: 3 and 2"):
        fn([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="empty"):
        fn([], [])
    with pytest.raises(ValueError, match=r"1-D, got shape \(3, 2\).*argmax"):
        fn([0, 1, 1], np.zeros((3, 2)))


def test_correlation_of_one_value_is_an_error():
    with pytest.raises(ValueError, match="at least 2 values, got 1"):
        pearson([1.0], [2.0])
    with pytest.raises(ValueError, match="at least 2 values, got 1"):
        spearman([1.0], [2.0])


def test_compute_metrics_names():
    out = compute_metrics(["mcc", "accuracy"], [0, 1, 1], [0, 1, 0])
    assert list(out) == ["mcc", "accuracy"] and all(type(v) is float for v in out.values())
    assert compute_metrics("accuracy", [0, 1], [0, 0]) == {"accuracy": 0.5}
    with pytest.raises(ValueError, match=r"unknown metric 'auc'; valid names: accuracy, f1, macro_f1, mcc, "
                                         r"pearson, spearman"):
        compute_metrics(["accuracy", "auc"], [0, 1], [0, 1])
    with pytest.raises(ValueError, match="no metric names"):
        compute_metrics([], [0, 1], [0, 1])
    with pytest.raises(ValueError, match="empty"):
        compute_metrics(["accuracy"], [], [])
    with pytest.raises(ValueError, match="differ in length"):
        compute_metrics(["pearson"], [0.1, 0.2], [0.3])
