"""Fine-tuning metrics in NumPy: accuracy, F1, macro F1, Matthews correlation, Pearson, Spearman.

Each function takes two 1-D array-likes of the same non-zero length and returns a Python float
that equals scikit-learn's / SciPy's value (tests compare within 1e-12):

==================  =====================================================  ==========================
name                function                                               reference
==================  =====================================================  ==========================
``accuracy``        :func:`accuracy`                                       ``sklearn.metrics.accuracy_score``
``f1``              :func:`f1` (binary, positive class 1)                  ``sklearn.metrics.f1_score``
``macro_f1``        :func:`macro_f1`                                       ``f1_score(average="macro")``
``mcc``             :func:`matthews_corrcoef` (binary and K classes)       ``sklearn.metrics.matthews_corrcoef``
``pearson``         :func:`pearson`                                        ``scipy.stats.pearsonr``
``spearman``        :func:`spearman` (average ranks for ties)              ``scipy.stats.spearmanr``
==================  =====================================================  ==========================

Classification metrics take class ids (``logits.argmax(-1)``), not logits; the regression metrics
take scores. GLUE uses: CoLA ``mcc``; SST-2, QNLI, RTE, WNLI ``accuracy``; MRPC, QQP ``accuracy``
and ``f1``; STS-B ``pearson`` and ``spearman``; MNLI ``accuracy``.
"""
from __future__ import annotations

import math
import warnings
from typing import Callable, Iterable, Union

import numpy as np

__all__ = ["ConstantInputWarning", "METRICS", "accuracy", "compute_metrics", "f1", "macro_f1",
           "matthews_corrcoef", "pearson", "rankdata", "spearman"]


class ConstantInputWarning(RuntimeWarning):
    """A correlation was asked of an input whose values are all equal; the result is nan."""


def _pair(labels, preds, what: str = "labels and predictions") -> tuple[np.ndarray, np.ndarray]:
    """Two 1-D arrays of equal, non-zero length, or a ValueError naming the problem."""
    a, b = np.asarray(labels), np.asarray(preds)
    for name, arr in (("labels", a), ("predictions", b)):
        if arr.ndim != 1:
            hint = " (pass class ids, e.g. logits.argmax(-1), not logits)" if arr.ndim == 2 else ""
            raise ValueError(f"{name} must be 1-D, got shape {arr.shape}{hint}")
    if len(a) != len(b):
        raise ValueError(f"{what} differ in length: {len(a)} and {len(b)}")
    if len(a) == 0:
        raise ValueError(f"{what} are empty")
    return a, b


def accuracy(labels, preds) -> float:
    """Share of predictions equal to the label.

    Args:
        labels: [N] true class ids.
        preds: [N] predicted class ids.
    """
    y, p = _pair(labels, preds)
    return float(np.mean(y == p))


def _f1_from_counts(tp, fp, fn):
    """2 tp / (2 tp + fp + fn) elementwise; 0 where the denominator is 0 (sklearn's zero_division)."""
    tp, fp, fn = (np.asarray(v, np.float64) for v in (tp, fp, fn))
    denom = 2 * tp + fp + fn
    return np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1), 0.0)


def f1(labels, preds, positive=1) -> float:
    """Binary F1 of class ``positive``: ``2 tp / (2 tp + fp + fn)``.

    As scikit-learn: 0.0 when neither the labels nor the predictions contain ``positive``;
    ValueError when labels and predictions together hold more than two classes, or two classes
    of which none is ``positive`` (labels -1/1 with ``positive=1`` are fine; 0/2 are not).

    Args:
        labels: [N] true class ids.
        preds: [N] predicted class ids.
        positive: the class whose F1 is reported.
    """
    y, p = _pair(labels, preds)
    classes = np.union1d(y, p)
    if len(classes) > 2:
        raise ValueError(f"f1 is binary but labels and predictions hold {len(classes)} classes "
                         f"({', '.join(map(str, classes[:10]))}); use macro_f1")
    if len(classes) == 2 and positive not in classes.tolist():
        raise ValueError(f"positive class {positive!r} is not one of the classes "
                         f"{', '.join(map(str, classes))}")
    tp = np.sum((y == positive) & (p == positive))
    fp = np.sum((y != positive) & (p == positive))
    fn = np.sum((y == positive) & (p != positive))
    return float(_f1_from_counts(tp, fp, fn))


def _confusion(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """[K, K] counts, rows true class, columns predicted, over the union of classes (sorted)."""
    classes, codes = np.unique(np.concatenate([y, p]), return_inverse=True)
    k = len(classes)
    yi, pi = codes[:len(y)], codes[len(y):]
    return np.bincount(yi * k + pi, minlength=k * k).reshape(k, k)


def macro_f1(labels, preds) -> float:
    """Unweighted mean of the per-class F1 over every class in the labels or the predictions.

    Args:
        labels: [N] true class ids.
        preds: [N] predicted class ids.
    """
    y, p = _pair(labels, preds)
    c = _confusion(y, p)
    tp = np.diag(c)
    return float(np.mean(_f1_from_counts(tp, c.sum(axis=0) - tp, c.sum(axis=1) - tp)))


def matthews_corrcoef(labels, preds) -> float:
    """Matthews correlation coefficient for two or more classes (Gorodkin's R_K, as scikit-learn).

    With C the confusion matrix over K classes, t = row sums, p = column sums, c = trace and
    n = N: ``(c n - t.p) / sqrt((n^2 - t.t) (n^2 - p.p))``; for two classes this is the usual
    ``(tp tn - fp fn) / sqrt(...)``. Returns 0.0 when the denominator is 0 (a single class in
    the labels or in the predictions), as scikit-learn does.

    Args:
        labels: [N] true class ids.
        preds: [N] predicted class ids.
    """
    y, p = _pair(labels, preds)
    c = _confusion(y, p)
    t_sum = c.sum(axis=1, dtype=np.float64)
    p_sum = c.sum(axis=0, dtype=np.float64)
    n = p_sum.sum()
    correct = np.trace(c, dtype=np.float64)
    cov_tp = correct * n - np.dot(t_sum, p_sum)
    cov_pp = n * n - np.dot(p_sum, p_sum)
    cov_tt = n * n - np.dot(t_sum, t_sum)
    if cov_pp * cov_tt == 0:
        return 0.0
    return float(cov_tp / np.sqrt(cov_tt * cov_pp))


def _scores(x, y) -> tuple[np.ndarray, np.ndarray]:
    a, b = _pair(x, y, "x and y")
    if len(a) < 2:
        raise ValueError(f"a correlation needs at least 2 values, got {len(a)}")
    return a.astype(np.float64), b.astype(np.float64)


def _correlation(a: np.ndarray, b: np.ndarray, name: str) -> float:
    if np.isnan(a).any() or np.isnan(b).any():
        return math.nan
    if (a == a[0]).all() or (b == b[0]).all():
        warnings.warn(f"{name}: an input is constant; the correlation is not defined (nan)",
                      ConstantInputWarning, stacklevel=3)
        return math.nan
    if len(a) == 2:  # exactly +-1, not 1 - 1e-16
        return float(np.sign(a[1] - a[0]) * np.sign(b[1] - b[0]))
    am, bm = a - a.mean(), b - b.mean()
    # scale to max |.| = 1 before the norm, whose squares overflow for scores beyond ~1e154
    am, bm = am / np.abs(am).max(), bm / np.abs(bm).max()
    r = np.dot(am / np.linalg.norm(am), bm / np.linalg.norm(bm))
    return float(np.clip(r, -1.0, 1.0))


def pearson(x, y) -> float:
    """Pearson's linear correlation coefficient r of two score arrays, as ``scipy.stats.pearsonr``.

    Returns nan, with a :class:`ConstantInputWarning`, when either input is constant (SciPy
    does the same), and nan when an input holds nan (SciPy's default ``nan_policy``).

    Args:
        x, y: [N] float scores, N >= 2.
    """
    a, b = _scores(x, y)
    return _correlation(a, b, "pearson")


def rankdata(x) -> np.ndarray:
    """1-based ranks of ``x`` [N], tied values sharing the average of their ranks (float64 [N])."""
    x = np.asarray(x)
    order = np.argsort(x, kind="stable")
    sorted_x = x[order]
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])  # first index of each run of ties
    ends = np.r_[starts[1:], len(x)]
    run_rank = (starts + 1 + ends) / 2.0  # mean of the ranks starts+1 .. ends
    ranks = np.empty(len(x), np.float64)
    ranks[order] = np.repeat(run_rank, ends - starts)
    return ranks


def spearman(x, y) -> float:
    """Spearman's rank correlation: Pearson's r of the ranks (average ranks for ties), as
    ``scipy.stats.spearmanr``.

    Returns nan, with a :class:`ConstantInputWarning`, when either input is constant (SciPy
    does the same), and nan when an input holds nan (SciPy's default ``nan_policy``).

    Args:
        x, y: [N] float scores, N >= 2.
    """
    a, b = _scores(x, y)
    if np.isnan(a).any() or np.isnan(b).any():
        return math.nan
    return _correlation(rankdata(a), rankdata(b), "spearman")


METRICS: dict[str, Callable[..., float]] = {
    "accuracy": accuracy,
    "f1": f1,
    "macro_f1": macro_f1,
    "mcc": matthews_corrcoef,
    "pearson": pearson,
    "spearman": spearman,
}


def compute_metrics(names: Union[str, Iterable[str]], labels, predictions) -> dict[str, float]:
    """Several metrics of one set of predictions.

    Args:
        names: metric names (or one name), from ``accuracy, f1, macro_f1, mcc, pearson, spearman``.
        labels: [N] true class ids or scores.
        predictions: [N] predicted class ids (classification metrics) or scores (pearson, spearman).

    Returns:
        ``{name: value}`` in the order of ``names``.

    Raises:
        ValueError: an unknown or no metric name, empty inputs, or inputs of different lengths.
    """
    names = [names] if isinstance(names, str) else list(names)
    if not names:
        raise ValueError(f"no metric names given; choose from {', '.join(METRICS)}")
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric {', '.join(map(repr, unknown))}; valid names: {', '.join(METRICS)}")
    _pair(labels, predictions)
    return {name: METRICS[name](labels, predictions) for name in names}
