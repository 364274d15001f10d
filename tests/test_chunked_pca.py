"""The standardised, clipped PCA of the initial partition, densifying one chunk of cells at a time."""

import numpy as np
import pytest
import scanpy as sc
import scipy.sparse as sp

import dagcl_scverse as dagcl
from dagcl_scverse.model import chunked_pca
from dagcl_scverse.model.chunked_pca import principal_components


def _exact_scores(values: np.ndarray, n_components: int, scale_max: float | None) -> np.ndarray:
    values = values.astype(np.float64)
    centred = values - values.mean(0)
    if scale_max is not None:
        centred = np.minimum(centred / np.maximum(values.std(0, ddof=1), 1e-12), scale_max)
        centred -= centred.mean(0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    return (u * s)[:, :n_components]


def _assert_equal_up_to_sign(scores, expected, rtol):
    signs = np.sign((scores * expected).sum(0))
    deviation = np.abs(scores * signs - expected).max()
    assert deviation <= rtol * np.abs(expected).max(), deviation


def _outlier_data(seed=0):
    """Three latent factors of falling strength on features of very different scales; one extreme cell."""
    rng = np.random.default_rng(seed)
    factors = rng.standard_normal((300, 3)) * [4.0, 2.0, 1.0]
    x = factors @ rng.random((3, 8)) + 0.1 * rng.standard_normal((300, 8))
    x = x * [20.0, 10.0, 5.0, 1.0, 0.3, 0.2, 0.1, 0.1]
    x[0, 4] = 50.0
    return x


@pytest.mark.parametrize("scale_max", [None, 10.0])
@pytest.mark.parametrize("chunk", [20_000, 7])  # one chunk, and many (the last one short)
def test_components_equal_an_exact_svd_of_the_scaled_features(monkeypatch, scale_max, chunk):
    monkeypatch.setattr(chunked_pca, "CHUNK_CELLS", chunk)
    x = _outlier_data() + 50.0  # the offset must be centred away
    scores = principal_components(x, n_components=5, scale_max=scale_max)
    assert scores.shape == (300, 5) and scores.dtype == np.float32
    _assert_equal_up_to_sign(scores, _exact_scores(x, 5, scale_max), 1e-5)
    if scale_max is not None:  # the outlier lies far beyond the clip: an unclipped PCA could not match
        unclipped = (x - x.mean(0)) / x.std(0, ddof=1)
        assert unclipped[0, 4] > scale_max + 5


def test_sparse_input_gives_the_dense_result_without_densifying_it(monkeypatch):
    rng = np.random.default_rng(1)
    dense = rng.random((500, 40)) * (rng.random((500, 40)) < 0.1) * 5
    matrix = sp.csr_matrix(dense, dtype=np.float32)
    monkeypatch.setattr(chunked_pca, "CHUNK_CELLS", 64)
    original = sp.csr_matrix.toarray

    def one_chunk_at_most(self, *args, **kwargs):
        assert self.shape[0] <= 64, "a dense block larger than one chunk"
        return original(self, *args, **kwargs)

    monkeypatch.setattr(sp.csr_matrix, "toarray", one_chunk_at_most)
    scores = principal_components(matrix, n_components=10, scale_max=10.0)
    _assert_equal_up_to_sign(scores, _exact_scores(dense.astype(np.float32), 10, 10.0), 1e-4)


def test_wide_inputs_use_a_randomised_svd_with_the_same_result(monkeypatch):
    monkeypatch.setattr(chunked_pca, "GRAM_MAX_FEATURES", 0)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((400, 6)) * [30.0, 20.0, 10.0, 5.0, 1.0, 0.5] @ rng.standard_normal((6, 60))
    x = x + 0.01 * rng.standard_normal((400, 60))
    scores = principal_components(x, n_components=4, seed=0)
    _assert_equal_up_to_sign(scores, _exact_scores(x, 4, None), 1e-4)


def test_standardising_lets_weak_marker_features_define_the_first_component():
    """Two groups differ in six low-variance markers, hidden under two loud noise features."""
    rng = np.random.default_rng(0)
    groups = np.arange(400) % 2
    markers = 0.5 * groups[:, None] + 0.1 * rng.standard_normal((400, 6))
    x = np.concatenate([10.0 * rng.standard_normal((400, 2)), markers], 1)

    def separation(scores):
        return abs(np.corrcoef(scores[:, 0], groups)[0, 1])

    assert separation(principal_components(x, n_components=2)) < 0.3
    assert separation(principal_components(x, n_components=2, scale_max=10.0)) > 0.9


def test_shipped_data_match_the_dense_scaled_pca_to_1e4():
    adata = dagcl.datasets.mouse_pancreas()
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    sc.pp.highly_variable_genes(adata, n_top_genes=2000, subset=True)
    matrix = sp.csr_matrix(adata.X, dtype=np.float32)
    scores = principal_components(matrix, n_components=30, scale_max=10.0)
    _assert_equal_up_to_sign(scores, _exact_scores(matrix.toarray(), 30, 10.0), 1e-4)
    # the sign convention: each component's largest loading is positive, whatever the input's layout
    np.testing.assert_allclose(principal_components(matrix.toarray(), 30, scale_max=10.0), scores, atol=1e-3)


def test_above_fit_cells_the_covariance_of_a_seeded_subsample_gives_nearly_the_same_components(monkeypatch):
    rng = np.random.default_rng(3)
    groups = rng.integers(3, size=2000)
    dense = (rng.random((2000, 60)) < 0.1) * rng.gamma(2.0, 1.0, (2000, 60))
    dense[:, :20] += 3.0 * (groups[:, None] == np.arange(20)[None, :] % 3)
    matrix = sp.csr_matrix(dense, dtype=np.float32)
    exact = principal_components(matrix, n_components=2, scale_max=10.0)
    monkeypatch.setattr(chunked_pca, "FIT_CELLS", 500)
    subsampled = principal_components(matrix, n_components=2, scale_max=10.0, seed=0)
    assert not np.allclose(subsampled, exact, atol=1e-4)  # the subsample was used
    # the same plane (the two group-separating components may rotate within it)
    fitted = subsampled @ np.linalg.lstsq(subsampled, exact, rcond=None)[0]
    assert (1 - ((exact - fitted) ** 2).sum(0) / ((exact - exact.mean(0)) ** 2).sum(0)).min() > 0.99
    np.testing.assert_array_equal(principal_components(matrix, n_components=2, scale_max=10.0, seed=0), subsampled)
