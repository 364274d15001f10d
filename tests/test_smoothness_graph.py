"""The graph-smoothness loss as a CSR quadratic form equals the edge-by-edge sum."""

import torch

from dagcl_scverse.model import losses
from dagcl_scverse.model.smoothness_graph import SmoothnessGraph, weighted_edge_distance


def _graph(n=40, e=200, seed=0, dtype=torch.float64):
    """A directed, asymmetric graph with repeated edges and self-loops, as a user's obsp may hold."""
    generator = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, n, (2, e), generator=generator)
    edge_index[:, :5] = torch.arange(5).repeat(2, 1)  # self-loops
    edge_index[:, 5:10] = edge_index[:, 10:15]  # repeated edges
    edge_weight = torch.rand(e, generator=generator, dtype=dtype)
    return edge_index, edge_weight, generator


def _edge_by_edge(z, edge_index, edge_weight):
    src, dst = edge_index
    return (edge_weight * (z[src] - z[dst]).pow(2).sum(1)).sum()


def test_weighted_edge_distance_matches_edge_by_edge_sum_with_gradients():
    edge_index, edge_weight, generator = _graph()
    graph = SmoothnessGraph.from_edges(edge_index, edge_weight, 40)
    z = torch.randn(40, 6, generator=generator, dtype=torch.float64, requires_grad=True)
    got = weighted_edge_distance(z, graph)
    expected = _edge_by_edge(z, edge_index, edge_weight)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(torch.autograd.grad(got, z)[0], torch.autograd.grad(expected, z)[0])


def test_gradcheck():
    edge_index, edge_weight, generator = _graph(n=8, e=20, seed=1)
    graph = SmoothnessGraph.from_edges(edge_index, edge_weight, 8)
    z = torch.randn(8, 3, generator=generator, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: weighted_edge_distance(x, graph), (z,))


def test_graph_smoothness_is_the_weighted_mean_squared_distance_of_standardised_embeddings():
    edge_index, edge_weight, generator = _graph(dtype=torch.float32)
    graph = SmoothnessGraph.from_edges(edge_index, edge_weight, 40)
    z = 5.0 + 3.0 * torch.randn(40, 6, generator=generator)
    zs = (z - z.mean(0)) / (z.std(0, unbiased=False) + 1e-6)
    expected = _edge_by_edge(zs, edge_index, edge_weight) / (6 * edge_weight.sum())
    torch.testing.assert_close(losses.graph_smoothness(z, graph), expected)
    # scale-free: shrinking the embedding cannot lower it
    torch.testing.assert_close(losses.graph_smoothness(0.01 * z, graph), expected, rtol=1e-4, atol=1e-5)


def test_a_constant_embedding_costs_nothing_and_never_goes_negative():
    """The two terms of the quadratic form cancel exactly here; rounding must not leave a negative."""
    edge_index, edge_weight, _ = _graph(dtype=torch.float32)
    graph = SmoothnessGraph.from_edges(edge_index, edge_weight, 40)
    for value in (3.7, 0.1, 123.456):
        z = torch.full((40, 4), value)
        scale = float(graph.degree @ (z * z).sum(1))
        assert 0.0 <= float(weighted_edge_distance(z, graph)) <= 1e-5 * scale
