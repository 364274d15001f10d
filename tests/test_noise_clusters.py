"""Clusters that are not graph communities give their place to deeper cuts of the linkage tree."""

import itertools

import numpy as np
import torch

from dagcl_scverse.metrics import adjusted_rand_index
from dagcl_scverse.model import centre_init
from dagcl_scverse.model.noise_clusters import communities, cut_without_noise


def _edges(pairs):
    """Both directions of each undirected pair, as a ``(2, E)`` edge index."""
    pairs = np.asarray(list(pairs))
    return torch.as_tensor(np.concatenate([pairs, pairs[:, ::-1]]).T.copy(), dtype=torch.long)


def _clique(cells):
    return itertools.combinations(cells, 2)


# cells 0-19 and 20-39: two populations (cliques); 40-42: three stray cells of the first,
# each linked to five of its cells and not to each other; 43-45: a tiny population of three
# cells, each other's neighbours, with one link to the second population
STRAY = [(40 + i, j) for i in range(3) for j in range(5 * i, 5 * i + 5)]
TINY = [(43, 44), (43, 45), (44, 45), (45, 20)]
EDGES = _edges([*_clique(range(20)), *_clique(range(20, 40)), *STRAY, *TINY])
POPULATION = np.array([0] * 20 + [1] * 20 + [0] * 3 + [2] * 3)


def test_stray_cells_are_no_community_and_a_tiny_population_is_one():
    labels = torch.as_tensor(POPULATION.copy())
    labels[40:43] = 3
    kept, counts = communities(labels, EDGES, 4)
    assert kept.tolist() == [True, True, True, False]
    assert counts[3].tolist() == [15, 0, 0, 0]  # every edge of the stray cells leads into population 0


def _tree_cut(n_groups):
    """A linkage tree's cuts: 3 groups merge populations 1 and 2 and keep the strays apart; 4 split them."""
    labels = POPULATION.copy()
    labels[40:43] = 3
    if n_groups == 3:
        labels[labels == 2] = 1
        labels[labels == 3] = 2
    return torch.as_tensor(labels)


def test_the_place_of_stray_cells_goes_to_the_next_cut_and_they_join_their_population():
    labels = cut_without_noise(_tree_cut, EDGES, 3, max_groups=10)
    assert adjusted_rand_index(POPULATION, labels.numpy()) == 1.0
    assert sorted(labels.unique().tolist()) == [0, 1, 2]


def test_the_cut_at_k_is_kept_when_no_deeper_cut_has_k_communities():
    def never_whole(n_groups):
        labels = _tree_cut(3).clone()
        # every deeper cut splits off strays of its own, so communities never reach k
        labels[: n_groups - 3] = torch.arange(3, n_groups)
        return labels

    labels = cut_without_noise(never_whole, EDGES, 3, max_groups=10)
    torch.testing.assert_close(labels, _tree_cut(3))


def test_initial_partition_with_the_graph_absorbs_strays_into_their_population():
    generator = torch.Generator().manual_seed(0)
    # populations 1 and 2 lie close together: the cut at 3 merges them and keeps the strays apart
    centres = torch.stack([8 * torch.eye(6)[0], 8 * torch.eye(6)[1], 8 * torch.eye(6)[1] + 4 * torch.eye(6)[2]])
    points = [centres[i] + 0.5 * torch.randn(60, 6, generator=generator) for i in range(3)]
    # three outlying cells of population 0, far from everything along a direction of their own
    stray = centres[0] + torch.tensor([0.0, 0, 0, 0, 30, 0]) + 0.1 * torch.randn(3, 6, generator=generator)
    space = torch.cat([*points, stray])
    truth = np.array([0] * 60 + [1] * 60 + [2] * 60 + [0] * 3)
    pairs = [*(pair for i in range(3) for pair in _clique(range(60 * i, 60 * i + 60)))]
    pairs += [(180 + i, j) for i in range(3) for j in range(10 * i, 10 * i + 10)]
    edges = _edges(pairs)
    plain = centre_init.initial_centres(space, 3, space=space, seed=0)[1]
    assert len(torch.unique(plain[180:])) == 1 and int(plain[180]) not in plain[:60].tolist()  # the strays' own cluster
    _, labels = centre_init.initial_centres(space, 3, space=space, seed=0, edge_index=edges)
    assert adjusted_rand_index(truth, labels.numpy()) == 1.0
