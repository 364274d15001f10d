"""Clustering accuracy (Hungarian matching), NMI and ARI of label arrays.

ARI and NMI are scikit-learn's (``adjusted_rand_score``, ``normalized_mutual_info_score`` with
the arithmetic mean); ACC matches types to clusters with ``scipy.optimize.linear_sum_assignment``
on the sparse contingency table. Memory grows with the number of cells, never with its square.
Labels may be of any hashable type (integers, strings, a pandas categorical).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import ArrayLike
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

__all__ = ["accuracy", "adjusted_rand_index", "contingency", "normalized_mutual_info"]

#: largest types x clusters table that Hungarian matching builds densely
_MAX_MATCHING_ENTRIES = 50_000_000


def _codes(labels: ArrayLike, name: str) -> np.ndarray:
    if isinstance(labels, (pd.Series, pd.Categorical, pd.Index)):
        values = labels
    else:
        values = np.asarray(labels)
        if values.ndim != 1:
            raise ValueError(f"`{name}` must be one label per cell (1-D), got shape {values.shape}.")
    codes, _ = pd.factorize(values, use_na_sentinel=True)
    if (codes < 0).any():
        raise ValueError(f"`{name}` contains {(codes < 0).sum()} missing label(s); drop those cells first.")
    return codes


def _checked_codes(labels_true: ArrayLike, labels_pred: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of both label arrays, after checking they score the same non-empty set of cells."""
    true = _codes(labels_true, "labels_true")
    pred = _codes(labels_pred, "labels_pred")
    if true.shape != pred.shape:
        raise ValueError(f"Got {true.size} true labels but {pred.size} cluster labels; they must match per cell.")
    if true.size == 0:
        raise ValueError("Cannot score a clustering of zero cells.")
    return true, pred


def contingency(labels_true: ArrayLike, labels_pred: ArrayLike) -> sp.csr_matrix:
    """Sparse contingency table: entry ``(i, j)`` counts the cells of type ``i`` in cluster ``j``.

    Parameters
    ----------
    labels_true
        One true label per cell.
    labels_pred
        One cluster label per cell.

    Returns
    -------
    A ``(n_types, n_clusters)`` CSR matrix of int64 counts, rows and columns in order of first
    appearance.

    Examples
    --------
    >>> from dagcl_scverse.metrics import contingency
    >>> contingency(["a", "a", "b", "b", "b"], [1, 1, 0, 0, 1]).toarray()
    array([[2, 0],
           [1, 2]])
    """
    true, pred = _checked_codes(labels_true, labels_pred)
    table = sp.coo_matrix(
        (np.ones(true.size, dtype=np.int64), (true, pred)),
        shape=(true.max() + 1, pred.max() + 1),
    )
    return table.tocsr()  # duplicates are summed here


def accuracy(labels_true: ArrayLike, labels_pred: ArrayLike) -> float:
    """Clustering accuracy: the share of cells correctly labelled under the best one-to-one matching.

    Clusters are matched to types by the Hungarian algorithm on the contingency table. When the
    numbers differ, only ``min(n_types, n_clusters)`` pairs are matched and the cells of unmatched
    clusters (or types) count as errors.

    Parameters
    ----------
    labels_true
        One true label per cell.
    labels_pred
        One cluster label per cell.

    Returns
    -------
    ACC in ``[0, 1]``.

    Examples
    --------
    >>> from dagcl_scverse.metrics import accuracy
    >>> accuracy(["a", "a", "b", "b", "b"], [1, 1, 0, 0, 1])
    0.8
    """
    table = contingency(labels_true, labels_pred)
    if table.shape[0] * table.shape[1] > _MAX_MATCHING_ENTRIES:
        raise ValueError(
            f"Matching {table.shape[0]} types to {table.shape[1]} clusters needs a dense table that is too large; "
            "accuracy is meant for clusterings with far fewer clusters than cells."
        )
    # ok-dense: types x clusters contingency table, capped by _MAX_MATCHING_ENTRIES
    dense = table.toarray()
    rows, cols = linear_sum_assignment(dense, maximize=True)
    return float(dense[rows, cols].sum() / table.sum())


def adjusted_rand_index(labels_true: ArrayLike, labels_pred: ArrayLike) -> float:
    """Adjusted Rand index (Hubert and Arabie): pair agreement corrected for chance.

    Parameters
    ----------
    labels_true
        One true label per cell.
    labels_pred
        One cluster label per cell.

    Returns
    -------
    ARI, 1 for identical partitions and about 0 for random ones; 1 as well when both partitions
    are trivial in the same way (one group, or one cell per group).

    Examples
    --------
    >>> from dagcl_scverse.metrics import adjusted_rand_index
    >>> round(adjusted_rand_index(["a", "a", "b", "b", "b"], [1, 1, 0, 0, 1]), 3)
    0.167
    """
    return float(adjusted_rand_score(*_checked_codes(labels_true, labels_pred)))


def normalized_mutual_info(labels_true: ArrayLike, labels_pred: ArrayLike) -> float:
    """Normalised mutual information, with the arithmetic mean of the two entropies as normaliser.

    Parameters
    ----------
    labels_true
        One true label per cell.
    labels_pred
        One cluster label per cell.

    Returns
    -------
    NMI in ``[0, 1]``; 1 when both partitions put all cells in one group.

    Examples
    --------
    >>> from dagcl_scverse.metrics import normalized_mutual_info
    >>> round(normalized_mutual_info(["a", "a", "b", "b", "b"], [1, 1, 0, 0, 1]), 3)
    0.433
    """
    true, pred = _checked_codes(labels_true, labels_pred)
    return float(normalized_mutual_info_score(true, pred, average_method="arithmetic"))
