"""Clustering accuracy (Hungarian matching), NMI and ARI of label arrays.

All three are computed from the sparse contingency table of true types x clusters, so memory
grows with the number of cells, never with its square. Labels may be of any hashable type
(integers, strings, a pandas categorical).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import ArrayLike
from scipy.optimize import linear_sum_assignment

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
    true = _codes(labels_true, "labels_true")
    pred = _codes(labels_pred, "labels_pred")
    if true.shape != pred.shape:
        raise ValueError(f"Got {true.size} true labels but {pred.size} cluster labels; they must match per cell.")
    if true.size == 0:
        raise ValueError("Cannot score a clustering of zero cells.")
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


def _pairs(counts: np.ndarray) -> float:
    counts = counts.astype(np.float64)
    return float((counts * (counts - 1) / 2).sum())


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
    table = contingency(labels_true, labels_pred)
    n = table.sum()
    both = _pairs(table.data)
    same_type = _pairs(np.asarray(table.sum(axis=1)).ravel())
    same_cluster = _pairs(np.asarray(table.sum(axis=0)).ravel())
    all_pairs = n * (n - 1) / 2
    if all_pairs == 0:
        return 1.0
    expected = same_type * same_cluster / all_pairs
    maximum = (same_type + same_cluster) / 2
    if maximum == expected:
        return 1.0
    return float((both - expected) / (maximum - expected))


def _entropy(counts: np.ndarray, n: float) -> float:
    p = counts[counts > 0] / n
    return float(-(p * np.log(p)).sum())


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
    table = contingency(labels_true, labels_pred).tocoo()
    n = float(table.sum())
    type_sizes = np.asarray(table.sum(axis=1), dtype=np.float64).ravel()
    cluster_sizes = np.asarray(table.sum(axis=0), dtype=np.float64).ravel()
    if type_sizes.size == 1 and cluster_sizes.size == 1:
        return 1.0
    joint = table.data.astype(np.float64)
    mutual = float((joint / n * np.log(joint * n / (type_sizes[table.row] * cluster_sizes[table.col]))).sum())
    normaliser = (_entropy(type_sizes, n) + _entropy(cluster_sizes, n)) / 2
    if normaliser <= 0:
        return 0.0
    return float(np.clip(mutual / normaliser, 0.0, 1.0))
