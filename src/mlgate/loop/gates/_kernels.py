"""The metrics themselves: scikit-learn's value, and a vectorised resampler for each.

Each function gets the holdout already encoded (class positions in the label universe,
or the model's probability columns in sorted class order) and returns the point value
from ``sklearn.metrics`` plus a resampler: given an index matrix ``[resamples, rows]``
it returns the metric on every resample at once from per-row quantities (right or not,
loss per row, confusion counts); ROC AUC as the Mann-Whitney statistic over each
resample's multiset of scores. Tests hold every resampler to scikit-learn on explicit
resamples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import sklearn.metrics as skm
from numpy.typing import NDArray

from mlgate.errors import GateError

__all__ = [
    "MetricUndefinedError",
    "Scored",
    "accuracy",
    "balanced_accuracy",
    "brier",
    "f1",
    "log_loss",
    "mae",
    "r2",
    "rmse",
    "roc_auc",
]

Floats = NDArray[np.float64]
Resampler = Callable[[NDArray[np.intp]], Floats]


class MetricUndefinedError(GateError):
    """This metric has no value on these rows or predictions; the check fails, saying why."""


@dataclass(frozen=True)
class Scored:
    """A metric's value on the holdout, and the same metric on resamples of its rows."""

    value: float
    resample: Resampler


def accuracy(y: NDArray[np.intp], p: NDArray[np.intp], k: int) -> Scored:
    correct = (y == p).astype(np.float64)
    return Scored(float(skm.accuracy_score(y, p)), lambda idx: correct[idx].mean(axis=1))


def balanced_accuracy(y: NDArray[np.intp], p: NDArray[np.intp], k: int) -> Scored:
    # balanced_accuracy_score is the mean recall over the classes present in y_true; calling
    # recall_score with those labels is the same number without its "y_pred contains classes
    # not in y_true" warning (a normal event here).
    present = np.unique(y)
    value = skm.recall_score(y, p, labels=present, average="macro", zero_division=0.0)

    def resample(idx: NDArray[np.intp]) -> Floats:
        yb, hit = y[idx], (y == p)[idx]
        counts = np.stack([(yb == c).sum(axis=1) for c in present])
        hits = np.stack([((yb == c) & hit).sum(axis=1) for c in present])
        recall = np.divide(hits, counts, out=np.zeros(counts.shape), where=counts > 0)
        return np.asarray(recall.sum(axis=0) / (counts > 0).sum(axis=0), np.float64)

    return Scored(float(value), resample)


def f1(y: NDArray[np.intp], p: NDArray[np.intp], k: int) -> Scored:
    # Binary (at most two labels): F1 of the larger label. More: macro F1 over the universe.
    classes = [k - 1] if k <= 2 else list(range(k))
    if k <= 2:
        value = skm.f1_score(y, p, pos_label=k - 1, average="binary", zero_division=0.0)
    else:
        value = skm.f1_score(y, p, labels=classes, average="macro", zero_division=0.0)

    def resample(idx: NDArray[np.intp]) -> Floats:
        yb, pb = y[idx], p[idx]
        scores = []
        for c in classes:
            tp = ((yb == c) & (pb == c)).sum(axis=1)
            wrong = ((yb == c) != (pb == c)).sum(axis=1)  # false positives + false negatives
            denom = 2 * tp + wrong
            scores.append(np.divide(2 * tp, denom, out=np.zeros(len(tp)), where=denom > 0))
        return np.asarray(np.mean(scores, axis=0), np.float64)

    return Scored(float(value), resample)


def roc_auc(y: NDArray[np.intp], proba: Floats) -> Scored:
    k = proba.shape[1]
    if k < 2 or len(np.unique(y)) < k:
        raise MetricUndefinedError(
            f"roc_auc needs every one of the model's {k} classes in the holdout, found "
            f"{len(np.unique(y))}; gather more varied labels or gate on another metric"
        )
    if k == 2:
        value = skm.roc_auc_score(y, proba[:, 1])
    else:
        value = skm.roc_auc_score(y, proba, multi_class="ovr", labels=range(k))
    # One-vs-rest macro AUC is the mean of each class's binary AUC (binary: class 1 only).
    columns = [1] if k == 2 else list(range(k))

    def resample(idx: NDArray[np.intp]) -> Floats:
        return np.asarray(np.mean([_auc(y == c, proba[:, c], idx) for c in columns], axis=0))

    return Scored(float(value), resample)


def _auc(positive: NDArray[np.bool_], score: Floats, idx: NDArray[np.intp]) -> Floats:
    """Binary AUC on every resample: the Mann-Whitney U statistic over distinct scores.

    AUC = P(score of a positive > score of a negative) + P(tie) / 2, counted with the
    multiplicity each row has in the resample. NaN where a resample lacks a class.
    """
    levels, group = np.unique(score, return_inverse=True)
    b, width = idx.shape[0], len(levels)
    cell = (np.arange(b)[:, None] * width + group[idx]).ravel()
    pos_here = positive[idx].ravel()
    pos = np.bincount(cell[pos_here], minlength=b * width).reshape(b, width)
    neg = np.bincount(cell[~pos_here], minlength=b * width).reshape(b, width)
    below = np.cumsum(neg, axis=1) - neg
    wins = (pos * (below + 0.5 * neg)).sum(axis=1)
    pairs = (pos.sum(axis=1) * neg.sum(axis=1)).astype(np.float64)
    auc: Floats = np.divide(wins, pairs, out=np.full(b, np.nan), where=pairs > 0)
    return auc


def log_loss(y: NDArray[np.intp], proba: Floats) -> Scored:
    value = skm.log_loss(y, proba, labels=range(proba.shape[1]))
    eps = np.finfo(np.float64).eps  # scikit-learn clips to the dtype's eps the same way
    row_loss = -np.log(np.clip(proba[np.arange(len(y)), y], eps, 1 - eps))
    return Scored(float(value), lambda idx: row_loss[idx].mean(axis=1))


def brier(y: NDArray[np.intp], proba: Floats) -> Scored:
    if proba.shape[1] != 2:
        raise MetricUndefinedError(
            f"brier is for binary classification; the model has {proba.shape[1]} classes. "
            "Use log_loss for more classes"
        )
    positive = (y == 1).astype(np.float64)
    value = skm.brier_score_loss(positive, proba[:, 1], pos_label=1.0)
    row_loss = (proba[:, 1] - positive) ** 2
    return Scored(float(value), lambda idx: row_loss[idx].mean(axis=1))


def rmse(y: Floats, p: Floats) -> Scored:
    sq = (y - p) ** 2
    value = skm.root_mean_squared_error(y, p)
    return Scored(float(value), lambda idx: np.sqrt(sq[idx].mean(axis=1)))


def mae(y: Floats, p: Floats) -> Scored:
    err = np.abs(y - p)
    return Scored(float(skm.mean_absolute_error(y, p)), lambda idx: err[idx].mean(axis=1))


def r2(y: Floats, p: Floats) -> Scored:
    if len(y) < 2:
        raise MetricUndefinedError("r2 needs at least two holdout rows")
    sq = (y - p) ** 2

    def resample(idx: NDArray[np.intp]) -> Floats:
        yb, sse = y[idx], sq[idx].sum(axis=1)
        sst = ((yb - yb.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
        # r2_score's force_finite rule when y is constant: 1 for a perfect fit, else 0.
        flat = np.where(sse == 0, 1.0, 0.0)
        return np.where(sst > 0, 1 - sse / np.where(sst > 0, sst, 1.0), flat)

    return Scored(float(skm.r2_score(y, p)), resample)
