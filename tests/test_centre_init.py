"""The initial partition: cosine average linkage over k-means micro-clusters."""

import numpy as np
import pytest
import torch

from dagcl_scverse.metrics import adjusted_rand_index
from dagcl_scverse.model import centre_init


def _blobs(seed=0):
    """A wide population and two compact ones, in 5 dimensions."""
    generator = torch.Generator().manual_seed(seed)
    directions = torch.eye(5)[:3] * 10
    spreads = torch.tensor([1.0, 0.3, 0.3])
    sizes = [200, 100, 100]
    points = [directions[i] + spreads[i] * torch.randn(size, 5, generator=generator) for i, size in enumerate(sizes)]
    labels = np.repeat(np.arange(3), sizes)
    return torch.cat(points), labels


@pytest.mark.parametrize("fit_cells", [None, 100])
def test_initial_partition_recovers_a_wide_and_two_compact_populations(monkeypatch, fit_cells):
    if fit_cells is not None:  # the subsampled micro-cluster path of large data sets
        monkeypatch.setattr(centre_init, "MICRO_FIT_CELLS", fit_cells)
        monkeypatch.setattr(centre_init, "MICRO_CLUSTERS", 20)
    space, truth = _blobs()
    z = torch.randn(space.shape[0], 4, generator=torch.Generator().manual_seed(1))
    centres, labels = centre_init.initial_centres(z, 3, space=space, seed=0)
    assert labels.shape == (space.shape[0],)
    assert adjusted_rand_index(truth, labels.numpy()) > 0.95
    # the centres are the groups' means in the embedding
    for group in range(3):
        torch.testing.assert_close(centres[group], z[labels == group].mean(0))


def test_micro_clusters_on_a_subsample_label_every_cell_within_one_population(monkeypatch):
    monkeypatch.setattr(centre_init, "MICRO_FIT_CELLS", 100)
    space, truth = _blobs()
    micro = centre_init._micro_clusters(space, 20, seed=0).numpy()
    assert micro.shape == (space.shape[0],)
    assert int(micro.min()) >= 0 and int(micro.max()) < 20
    assert len(np.unique(micro)) > 10
    for group in np.unique(micro):
        assert len(np.unique(truth[micro == group])) == 1


@pytest.mark.parametrize("n_components", [8, 3])  # exact SVD, and the randomised one of wider data
def test_principal_components_are_the_centred_svd_scores(n_components):
    generator = torch.Generator().manual_seed(0)
    scales = torch.tensor([20.0, 10.0, 5.0, 0.3, 0.2, 0.2, 0.1, 0.1])
    x = torch.randn(300, 8, generator=generator) * scales + 50.0  # the offset must be centred away
    scores = centre_init.principal_components(x, n_components=n_components)
    u, s, _ = np.linalg.svd((x - x.mean(0)).numpy().astype(np.float64), full_matrices=False)
    expected = (u * s)[:, :n_components]
    assert scores.shape == (300, n_components)
    np.testing.assert_allclose(np.abs(scores.numpy()), np.abs(expected), atol=1e-2 * s[0])


def _outlier_data():
    """Three latent factors of falling strength seen through features on very different scales;
    feature 4 has one extreme cell (z-score about 17)."""
    generator = torch.Generator().manual_seed(0)
    factors = torch.randn(300, 3, generator=generator) * torch.tensor([4.0, 2.0, 1.0])
    loadings = torch.rand(3, 8, generator=generator)
    x = factors @ loadings + 0.1 * torch.randn(300, 8, generator=generator)
    x = x * torch.tensor([20.0, 10.0, 5.0, 1.0, 0.3, 0.2, 0.1, 0.1])
    x[0, 4] = 50.0
    return x


@pytest.mark.parametrize("n_components", [8, 2])  # exact SVD; randomised (the outlier makes a 4th component)
def test_scaled_principal_components_are_those_of_the_standardised_clipped_features(n_components):
    x = _outlier_data()
    before = x.clone()
    scores = centre_init.principal_components(x, n_components=n_components, scale_max=10.0)
    torch.testing.assert_close(x, before, rtol=0, atol=0)  # the caller's features are left alone

    values = x.numpy().astype(np.float64)
    scaled = np.minimum((values - values.mean(0)) / values.std(0, ddof=1), 10.0)
    u, s, _ = np.linalg.svd(scaled - scaled.mean(0), full_matrices=False)
    expected = (u * s)[:, :n_components]
    np.testing.assert_allclose(np.abs(scores.numpy()), np.abs(expected), atol=1e-2 * s[0])
    # the outlier lies far beyond the clip, so an unclipped result could not match the above
    unclipped = (values - values.mean(0)) / values.std(0, ddof=1)
    assert np.abs(unclipped[0, 4] - scaled[0, 4]) > 5


def test_standardising_lets_weak_marker_features_define_the_first_component():
    """Two groups differ in six low-variance markers, hidden under two loud noise features."""
    generator = torch.Generator().manual_seed(0)
    groups = torch.arange(400) % 2
    markers = 0.5 * groups[:, None] + 0.1 * torch.randn(400, 6, generator=generator)
    noise = 10.0 * torch.randn(400, 2, generator=generator)
    x = torch.cat([noise, markers], 1)

    def separation(scores):
        return abs(np.corrcoef(scores[:, 0].numpy(), groups.numpy())[0, 1])

    assert separation(centre_init.principal_components(x, n_components=2)) < 0.3
    assert separation(centre_init.principal_components(x, n_components=2, scale_max=10.0)) > 0.9
