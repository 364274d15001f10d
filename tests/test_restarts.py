"""Restarts of the initial partition chosen by graph modularity, and the partition carried into the embedding."""

import igraph as ig
import numpy as np
import pytest
import torch

import dagcl_scverse as dagcl
from dagcl_scverse.metrics import adjusted_rand_index
from dagcl_scverse.model import restarts
from dagcl_scverse.model.centre_init import initial_centres


def _two_cliques():
    """Two 4-cliques joined by one edge, each undirected edge listed in both directions."""
    edges = [(a, b) for block in (range(4), range(4, 8)) for a in block for b in block if a < b] + [(3, 4)]
    weights = np.linspace(0.5, 1.5, len(edges))
    index = torch.tensor([[a for a, b in edges] + [b for a, b in edges], [b for a, b in edges] + [a for a, b in edges]])
    return edges, weights, index, torch.tensor(np.concatenate([weights, weights]), dtype=torch.float64)


@pytest.mark.parametrize("labels", [[0, 0, 0, 0, 1, 1, 1, 1], [0, 1, 0, 1, 0, 1, 0, 1], [0, 0, 0, 1, 1, 2, 2, 2]])
def test_modularity_matches_igraph(labels):
    edges, weights, index, weight = _two_cliques()
    expected = ig.Graph(n=8, edges=edges).modularity(labels, weights=weights)
    assert restarts.modularity(torch.tensor(labels), index, weight) == pytest.approx(expected, abs=1e-12)


def _blobs_and_knn(seed=0, n=150, k_nn=8):
    generator = torch.Generator().manual_seed(seed)
    centres = torch.eye(6)[:3] * 3.0
    points = torch.cat([centres[i] + torch.randn(n, 6, generator=generator) for i in range(3)])
    distance = torch.cdist(points, points)  # ok-dense: a 450-cell test graph
    neighbours = distance.topk(k_nn + 1, largest=False).indices[:, 1:]
    src = neighbours.reshape(-1)
    dst = torch.arange(points.shape[0]).repeat_interleave(k_nn)
    index = torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], 1)
    return points, index, torch.ones(index.shape[1])


def test_one_restart_is_the_plain_initial_partition():
    points, index, weight = _blobs_and_knn()
    _, labels, chosen = restarts.most_modular_partition(
        points, 3, space=points, edge_index=index, edge_weight=weight, restarts=1, seed=7
    )
    _, plain = initial_centres(points, 3, space=points, seed=7)
    assert chosen == 0
    torch.testing.assert_close(labels, plain)


def test_the_kept_restart_is_the_most_modular():
    points, index, weight = _blobs_and_knn()
    _, labels, chosen = restarts.most_modular_partition(
        points, 3, space=points, edge_index=index, edge_weight=weight, restarts=4, seed=3
    )
    scores = [
        restarts.modularity(initial_centres(points, 3, space=points, seed=s)[1], index, weight)
        for s in restarts.restart_seeds(3, 4)
    ]
    assert restarts.modularity(labels, index, weight) == pytest.approx(max(scores))
    assert chosen == int(np.argmax(scores))
    assert restarts.restart_seeds(3, 4)[0] == 3 and len(set(restarts.restart_seeds(3, 4))) == 4


def test_restarts_switch_off_above_the_size_limit(monkeypatch):
    points, index, weight = _blobs_and_knn()
    monkeypatch.setattr(restarts, "MAX_RESTART_CELLS", 100)
    calls = []
    real = restarts.initial_centres
    monkeypatch.setattr(restarts, "initial_centres", lambda *a, **kw: calls.append(kw["seed"]) or real(*a, **kw))
    restarts.most_modular_partition(points, 3, space=points, edge_index=index, edge_weight=weight, restarts=5, seed=2)
    assert calls == [2]


def test_start_of_self_training_is_the_initial_partition(pancreas):
    """The partition is carried into the embedding before self-training, without loss."""
    dagcl.tl.cluster(pancreas, n_clusters=13, epochs=1, stages=0, progress_bar=False)
    start, initial = pancreas.obs["dagcl"].to_numpy(), pancreas.uns["dagcl"]["initial_labels"]
    assert adjusted_rand_index(initial, start) > 0.98
    assert np.mean(start.astype(int) == initial) > 0.98
