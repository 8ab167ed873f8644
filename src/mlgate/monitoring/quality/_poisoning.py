"""Label poisoning signals: label distribution shift and k-NN label disagreement.

Label shift
    Two-sample Pearson chi-square on the 2 x K contingency table (reference class
    counts, batch class counts), ``scipy.stats.chi2_contingency`` without Yates'
    correction. Both samples are finite, so the reference counts are not treated
    as the true distribution (the one-sample form flags drift-free data far above
    its alpha). The effect size is the total variation distance
    ``0.5 * sum |p_ref - p_batch|``; at a million rows every p-value is tiny, so
    the check needs both.

Label-flip suspicion
    A flipped label sits among neighbours that carry another label. Following the
    k-NN noise filters (Wilson 1972, "Asymptotic properties of nearest neighbor
    rules using edited data"; Brodley & Friedl 1999, "Identifying mislabeled
    training data"), a row is *suspect* when at least ``agreement`` (0.8) of its
    ``k`` (10) nearest neighbours, in numeric features standardised by the
    reference median and IQR, disagree with its label. Class overlap makes some
    clean rows suspect too, so the check compares the batch's suspect share with
    the reference's own (leave-one-out) share. The neighbours come from a trusted
    reference sample by default: neighbours drawn from the batch itself let a
    poisoned cluster vouch for itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats
from sklearn.neighbors import NearestNeighbors

__all__ = ["LabelShift", "label_shift", "suspect_rows", "suspect_rows_loo"]


@dataclass(frozen=True, slots=True)
class LabelShift:
    statistic: float
    p_value: float
    dof: int
    total_variation: float


def label_shift(reference: dict[str, int], batch: dict[str, int]) -> LabelShift | None:
    """Chi-square contingency test and total variation; None if fewer than two classes."""
    classes = sorted(set(reference) | set(batch))
    ref = np.array([reference.get(c, 0) for c in classes], dtype=np.float64)
    cur = np.array([batch.get(c, 0) for c in classes], dtype=np.float64)
    if len(classes) < 2 or ref.sum() == 0 or cur.sum() == 0:
        return None
    result = stats.chi2_contingency(np.stack([ref, cur]), correction=False)
    tv = 0.5 * float(np.abs(ref / ref.sum() - cur / cur.sum()).sum())
    return LabelShift(
        statistic=float(result.statistic),
        p_value=float(result.pvalue),
        dof=int(result.dof),
        total_variation=tv,
    )


def _disagreement(
    neighbours: npt.NDArray[np.intp],
    index_labels: npt.NDArray[np.int64],
    labels: npt.NDArray[np.int64],
    agreement: float,
) -> npt.NDArray[np.bool_]:
    share = np.mean(index_labels[neighbours] != labels[:, None], axis=1)
    # A tiny slack so that 8 of 10 counts as 0.8 whatever the float rounding.
    return np.asarray(share >= agreement - 1e-12)


def suspect_rows_loo(
    points: npt.NDArray[np.float64],
    labels: npt.NDArray[np.int64],
    k: int,
    agreement: float,
) -> npt.NDArray[np.bool_]:
    """Suspect flags for every row of ``points`` against the others (leave-one-out).

    Each row's own index is removed from its ``k + 1`` neighbours; when exact
    duplicates hide it, the farthest neighbour is dropped instead.
    """
    n = points.shape[0]
    model = NearestNeighbors(n_neighbors=k + 1).fit(points)
    found = model.kneighbors(points, return_distance=False)
    is_self = found == np.arange(n)[:, None]
    keep = ~is_self
    keep[~is_self.any(axis=1), -1] = False
    neighbours = found[keep].reshape(n, k)
    return _disagreement(neighbours, labels, labels, agreement)


def suspect_rows(
    index_points: npt.NDArray[np.float64],
    index_labels: npt.NDArray[np.int64],
    points: npt.NDArray[np.float64],
    labels: npt.NDArray[np.int64],
    k: int,
    agreement: float,
) -> npt.NDArray[np.bool_]:
    """Suspect flags for ``points`` whose neighbours are searched in a separate index."""
    model = NearestNeighbors(n_neighbors=k).fit(index_points)
    found = model.kneighbors(points, return_distance=False)
    return _disagreement(found, index_labels, labels, agreement)
