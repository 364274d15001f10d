"""Principal components of standardised, clipped features, without a dense cells x genes copy.

``sc.pp.scale(max_value=c)`` then a PCA is what the initial partition reads; done directly it
is a dense cells x genes copy (8 GB at a million cells and 2,000 genes). Here the per-gene mean
and standard deviation come from the sparse matrix, and a scaled row is its zeros' common value
plus a sparse offset at its stored entries, so column sums and products with the loadings stay
sparse. Only the ``(f, f)`` covariance densifies rows, one chunk at a time. Up to
``GRAM_MAX_FEATURES`` features the components are the exact eigenvectors of that covariance
(deterministic, equal to a dense SVD up to sign), accumulated over every cell up to
``FIT_CELLS`` cells and over a seeded subsample of that many above. Wider inputs (all genes, no
highly variable subset) use a randomised SVD (Halko, Martinsson and Tropp 2011) over every cell.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.linalg
import scipy.sparse as sp

#: cells densified at a time (a chunk of 10,000 cells x 2,000 genes is 160 MB in float64)
CHUNK_CELLS = 10_000
#: up to this many cells the covariance is accumulated over all of them, above over a seeded subsample
FIT_CELLS = 50_000
#: up to this many features the covariance is formed and the components are exact
GRAM_MAX_FEATURES = 5_000
#: randomised SVD (wide inputs): extra random directions and power iterations
OVERSAMPLING = 10
POWER_ITERATIONS = 7


def _sparse_column_moments(matrix: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and mean square of a CSR matrix, a chunk of its stored values at a time."""
    n, f = matrix.shape
    total, total_sq = np.zeros(f), np.zeros(f)
    for start in range(0, n, CHUNK_CELLS):
        lo, hi = matrix.indptr[start], matrix.indptr[min(start + CHUNK_CELLS, n)]
        values, columns = matrix.data[lo:hi].astype(np.float64), matrix.indices[lo:hi]
        total += np.bincount(columns, weights=values, minlength=f)
        total_sq += np.bincount(columns, weights=values * values, minlength=f)
    return total / n, total_sq / n


class _ScaledRows:
    """The standardised, clipped, centred features: dense chunks of rows, and products with small matrices.

    For sparse input every row is ``base`` (the scaled value of a zero, centred) plus a sparse
    offset at the row's stored entries.
    """

    def __init__(self, matrix, scale_max: float | None) -> None:
        self.sparse = sp.issparse(matrix)
        self.matrix = matrix.tocsr() if self.sparse else np.asarray(matrix)
        n, f = self.matrix.shape
        if self.sparse:
            mean, mean_sq = _sparse_column_moments(self.matrix)
        else:
            mean = self.matrix.mean(0, dtype=np.float64)
            mean_sq = np.square(self.matrix, dtype=np.float64).mean(0)
        variance = np.clip(mean_sq - mean * mean, 0.0, None) * n / max(n - 1, 1)
        self.mean = mean
        self.scale = 1.0 / np.maximum(np.sqrt(variance), 1e-12) if scale_max is not None else np.ones_like(mean)
        self.scale_max = scale_max
        # the clip changes the column means: centre with the clipped values' own means
        self.base = np.zeros(f)
        if self.sparse:
            self.zero_value = self._transform(np.zeros(f), np.arange(f))
            # a row is zero_value + its offsets; centred, zero_value less the column means is minus the mean offset
            self.base = -sum(np.asarray(self._offsets(rows).sum(0)).ravel() for rows in self._ranges()) / n
        else:
            self.base = -sum(self._dense(rows).sum(0) for rows in self._ranges()) / n

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape

    def _ranges(self) -> Iterator[slice]:
        for start in range(0, self.shape[0], CHUNK_CELLS):
            yield slice(start, start + CHUNK_CELLS)

    def _transform(self, values: np.ndarray, columns: np.ndarray) -> np.ndarray:
        scaled = (values.astype(np.float64) - self.mean[columns]) * self.scale[columns]
        return scaled if self.scale_max is None else np.minimum(scaled, self.scale_max)

    def _offsets(self, rows) -> sp.csr_matrix:
        """Sparse input: each row of ``rows`` minus the value of an all-zero row, at its stored entries."""
        block = self.matrix[rows]
        values = self._transform(block.data, block.indices) - self.zero_value[block.indices]
        return sp.csr_matrix((values, block.indices, block.indptr), shape=block.shape)

    def _dense(self, rows) -> np.ndarray:
        """The rows ``rows`` (at most one chunk) as dense float64 ``(rows, f)``."""
        if self.sparse:
            # ok-dense: one chunk of at most CHUNK_CELLS cells x features
            block = self._offsets(rows).toarray()
            block += self.base
            return block
        return self._transform(np.asarray(self.matrix[rows]), np.arange(self.shape[1])) + self.base

    def gram(self, rows: np.ndarray) -> np.ndarray:
        """``(f, f)`` sum of the outer products of the rows ``rows``."""
        return sum(
            values.T @ values
            for values in (self._dense(rows[i : i + CHUNK_CELLS]) for i in range(0, rows.size, CHUNK_CELLS))
        )

    def times(self, m: np.ndarray) -> np.ndarray:
        out = np.empty((self.shape[0], m.shape[1]))
        for rows in self._ranges():
            out[rows] = (self._offsets(rows) @ m + self.base @ m) if self.sparse else self._dense(rows) @ m
        return out

    def transpose_times(self, y: np.ndarray) -> np.ndarray:
        if not self.sparse:
            return sum(self._dense(rows).T @ y[rows] for rows in self._ranges())
        return sum(self._offsets(rows).T @ y[rows] for rows in self._ranges()) + np.outer(self.base, y.sum(0))


def fit_cells(n: int, seed: int) -> np.ndarray:
    """The sorted cells the covariance is accumulated over: all, or a seeded subsample above ``FIT_CELLS``."""
    if n <= FIT_CELLS:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, FIT_CELLS, replace=False))


def _covariance_components(scaled: _ScaledRows, q: int, seed: int) -> np.ndarray:
    gram = scaled.gram(fit_cells(scaled.shape[0], seed))
    f = gram.shape[0]
    # only the top q eigenpairs: several times faster than the full decomposition
    eigenvectors = scipy.linalg.eigh(gram, subset_by_index=[f - q, f - 1], driver="evr")[1]
    return eigenvectors[:, ::-1]


def _randomised_components(scaled: _ScaledRows, q: int, seed: int) -> np.ndarray:
    n, f = scaled.shape
    width = min(q + OVERSAMPLING, n, f)
    basis = np.linalg.qr(scaled.times(np.random.default_rng(seed).standard_normal((f, width))))[0]
    for _ in range(POWER_ITERATIONS):
        basis = np.linalg.qr(scaled.times(np.linalg.qr(scaled.transpose_times(basis))[0]))[0]
    return np.linalg.svd(scaled.transpose_times(basis).T, full_matrices=False)[2][:q].T


def principal_components(
    matrix, n_components: int = 30, *, scale_max: float | None = None, seed: int = 0
) -> np.ndarray:
    """Scores ``(n, q)`` of the top principal components of ``matrix`` (cells x features), centred.

    With ``scale_max``, each feature is first standardised to unit variance and its values
    clipped at ``scale_max``, as ``sc.pp.scale(max_value=scale_max)`` does before scanpy's PCA.
    Standardising lets the many weakly expressed marker genes of sparse data count next to the
    few highly expressed ones; clipping keeps a handful of cells from defining a component alone.
    Each component's sign is fixed so that its largest loading is positive.

    Parameters
    ----------
    matrix
        scipy sparse or dense ``(n, f)`` features.
    n_components
        Components kept (at most ``min(n, f)``).
    scale_max
        Clip of the standardised values, or ``None`` to centre the features as they are.
    seed
        Seed of the covariance's subsample above ``FIT_CELLS`` cells and of the randomised SVD
        (above ``GRAM_MAX_FEATURES`` features).
    """
    scaled = _ScaledRows(matrix, scale_max)
    n, f = scaled.shape
    q = min(n_components, n, f)
    if f <= GRAM_MAX_FEATURES:
        loadings = _covariance_components(scaled, q, seed)
    else:
        loadings = _randomised_components(scaled, q, seed)
    loadings = loadings * np.sign(loadings[np.abs(loadings).argmax(0), np.arange(q)])
    return scaled.times(loadings).astype(np.float32)
