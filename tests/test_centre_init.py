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


def test_a_deeper_cut_of_the_linkage_tree_is_a_prefix_of_its_merges():
    generator = torch.Generator().manual_seed(3)
    means = torch.nn.functional.normalize(torch.randn(40, 6, generator=generator), dim=1)
    sizes = torch.randint(1, 30, (40,), generator=generator)
    merges = centre_init.linkage_merges(means, sizes, 4)
    assert len(merges) == 36
    for n_groups in (4, 7, 12):
        alone = centre_init.groups_after(centre_init.linkage_merges(means, sizes, n_groups), 40)
        torch.testing.assert_close(centre_init.groups_after(merges[: 40 - n_groups], 40), alone)
        assert len(torch.unique(alone)) == n_groups
