"""Principal components of standardised, clipped features, densifying one chunk of cells at a time.

``sc.pp.scale(max_value=c)`` then a PCA is what the initial partition reads; done directly it
is a dense cells x genes copy (8 GB at a million cells and 2,000 genes). Here the per-gene mean
and standard deviation come from the sparse matrix, and the scaled rows exist only a chunk at a
time. Up to ``GRAM_MAX_FEATURES`` features the components are exact: the eigenvectors of the
``(f, f)`` covariance, accumulated chunk by chunk (deterministic, and equal to a dense SVD up to
sign). Wider inputs (all genes, no highly variable subset) use a randomised SVD (Halko,
Martinsson and Tropp 2011) whose products with the scaled matrix also run chunk by chunk.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.linalg
import scipy.sparse as sp

#: cells densified at a time
CHUNK_CELLS = 20_000
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
    """The standardised, clipped, centred features, produced a chunk of rows at a time."""

    def __init__(self, matrix, scale_max: float | None) -> None:
        self.matrix = matrix.tocsr() if sp.issparse(matrix) else np.asarray(matrix)
        n = self.matrix.shape[0]
        if sp.issparse(self.matrix):
            mean, mean_sq = _sparse_column_moments(self.matrix)
        else:
            mean = self.matrix.mean(0, dtype=np.float64)
            mean_sq = np.square(self.matrix, dtype=np.float64).mean(0)
        variance = np.clip(mean_sq - mean * mean, 0.0, None) * n / max(n - 1, 1)
        self.mean = mean
        self.scale = 1.0 / np.maximum(np.sqrt(variance), 1e-12) if scale_max is not None else np.ones_like(mean)
        self.scale_max = scale_max
        # the clip changes the column means: centre with the clipped values' own means
        self.centre = 0.0
        self.centre = sum(chunk.sum(0, dtype=np.float64) for _, chunk in self.chunks()) / n

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape

    def chunks(self) -> Iterator[tuple[slice, np.ndarray]]:
        """``(rows, values)`` of every chunk: ``values`` dense float64 ``(rows, f)``."""
        for start in range(0, self.shape[0], CHUNK_CELLS):
            rows = slice(start, start + CHUNK_CELLS)
            block = self.matrix[rows]
            # ok-dense: one chunk of at most CHUNK_CELLS cells x features
            block = block.toarray() if sp.issparse(block) else block
            values = (np.asarray(block, dtype=np.float64) - self.mean) * self.scale
            if self.scale_max is not None:
                np.minimum(values, self.scale_max, out=values)
            yield rows, values - self.centre

    def times(self, m: np.ndarray) -> np.ndarray:
        out = np.empty((self.shape[0], m.shape[1]))
        for rows, values in self.chunks():
            out[rows] = values @ m
        return out

    def transpose_times(self, y: np.ndarray) -> np.ndarray:
        return sum(values.T @ y[rows] for rows, values in self.chunks())


def _covariance_components(scaled: _ScaledRows, q: int) -> np.ndarray:
    gram = sum(values.T @ values for _, values in scaled.chunks())
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
        Seed of the randomised SVD (used above ``GRAM_MAX_FEATURES`` features only).
    """
    scaled = _ScaledRows(matrix, scale_max)
    n, f = scaled.shape
    q = min(n_components, n, f)
    if f <= GRAM_MAX_FEATURES:
        loadings = _covariance_components(scaled, q)
    else:
        loadings = _randomised_components(scaled, q, seed)
    loadings = loadings * np.sign(loadings[np.abs(loadings).argmax(0), np.arange(q)])
    return scaled.times(loadings).astype(np.float32)
