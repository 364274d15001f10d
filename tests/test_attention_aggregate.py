"""The sparse attention aggregation equals the edge-by-edge sum, values and gradients."""

import pytest
import torch

from dagcl_scverse.model.attention_aggregate import SortedGraph, attention_aggregate


def _random_graph(n=30, e=120, seed=0):
    g = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, n, (2, e), generator=g)
    return edge_index, g


def _edge_by_edge(alpha, h, edge_index):
    src, dst = edge_index
    return torch.zeros_like(h).index_add(0, dst, alpha[:, None] * h[src])


def test_matches_edge_by_edge_sum_with_gradients():
    edge_index, g = _random_graph()
    graph = SortedGraph.from_edge_index(edge_index, 30)
    alpha = torch.rand(edge_index.shape[1], generator=g, dtype=torch.float64, requires_grad=True)
    h = torch.randn(30, 5, generator=g, dtype=torch.float64, requires_grad=True)
    out = attention_aggregate(alpha[graph.order], h, graph)
    reference = _edge_by_edge(alpha, h, edge_index)
    torch.testing.assert_close(out, reference)
    grad_out = torch.randn(30, 5, generator=g, dtype=torch.float64)
    got = torch.autograd.grad(out, (alpha, h), grad_out)
    expected = torch.autograd.grad(reference, (alpha, h), grad_out)
    for a, b in zip(got, expected, strict=False):
        torch.testing.assert_close(a, b)


def test_gradcheck():
    edge_index, g = _random_graph(n=8, e=20, seed=1)
    graph = SortedGraph.from_edge_index(edge_index, 8)
    alpha = torch.rand(20, generator=g, dtype=torch.float64, requires_grad=True)
    h = torch.randn(8, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, x: attention_aggregate(a, x, graph), (alpha, h))


def test_cells_without_incoming_edges_get_zero():
    edge_index = torch.tensor([[0, 1], [1, 1]])
    graph = SortedGraph.from_edge_index(edge_index, 3)
    out = attention_aggregate(torch.tensor([0.25, 0.75]), torch.eye(3), graph)
    torch.testing.assert_close(out, torch.tensor([[0, 0, 0], [0.25, 0.75, 0], [0, 0, 0.0]]))


@pytest.mark.parametrize("transpose", [False, True])
def test_matrix_holds_every_edge(transpose):
    edge_index, _ = _random_graph(n=10, e=25, seed=2)
    graph = SortedGraph.from_edge_index(edge_index, 10)
    values = torch.arange(1, 26, dtype=torch.float32)
    dense = graph.matrix(values[graph.order], transpose=transpose).to_dense()
    expected = torch.zeros(10, 10).index_put_((edge_index[1], edge_index[0]), values, accumulate=True)
    torch.testing.assert_close(dense, expected.T if transpose else expected)
