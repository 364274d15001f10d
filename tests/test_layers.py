"""The dynamic graph-attention layer on tiny graphs."""

import torch
from torch_geometric.utils import scatter

from dagcl_scverse.model.layers import DynamicGraphAttention


def _tiny_graph():
    # 4 nodes: 0 <- 1, 0 <- 2, 1 <- 0, 2 <- 3, 3 <- 2, 3 <- 1
    edge_index = torch.tensor([[1, 2, 0, 3, 2, 1], [0, 0, 1, 2, 3, 3]])
    edge_weight = torch.tensor([1.0, 0.5, 1.0, 0.2, 0.7, 0.9])
    return torch.randn(4, 5, generator=torch.Generator().manual_seed(0)), edge_index, edge_weight


def test_output_shape_and_attention_normalised_per_cell():
    x, edge_index, edge_weight = _tiny_graph()
    layer = DynamicGraphAttention(5, 7)
    out, alpha = layer(x, edge_index, edge_weight, return_attention=True)
    assert out.shape == (4, 7)
    assert alpha.shape == (edge_index.shape[1],)
    assert (alpha > 0).all()
    per_target = scatter(alpha, edge_index[1], dim=0, dim_size=4, reduce="sum")
    torch.testing.assert_close(per_target, torch.ones(4))


def test_capacity_gate_zeroes_channels():
    x, edge_index, edge_weight = _tiny_graph()
    layer = DynamicGraphAttention(5, 8)
    out = layer(x, edge_index, edge_weight, capacity=0.25)
    assert torch.all(out[:, 2:] == 0)
    assert torch.any(out[:, :2] != 0)
    torch.testing.assert_close(layer.channel_gate(0.3), torch.tensor([1, 1, 0.4, 0, 0, 0, 0, 0.0]))
    assert torch.all(layer.channel_gate(1.0) == 1)


def test_aggregation_strength_mixes_self_and_neighbours():
    x, edge_index, edge_weight = _tiny_graph()
    layer = DynamicGraphAttention(5, 3)
    with torch.no_grad():
        self_only = layer(x, edge_index, edge_weight, aggregation=0.0)
        expected = layer.lin(x) + layer.bias
        torch.testing.assert_close(self_only, expected)
        neighbours_only = layer(x, edge_index, edge_weight, aggregation=1.0)
        # node 1 has a single neighbour (0): full aggregation copies its transformed features
        torch.testing.assert_close(neighbours_only[1], layer.lin(x)[0] + layer.bias)


def test_edge_weights_and_temperature_shape_attention():
    x, edge_index, _ = _tiny_graph()
    layer = DynamicGraphAttention(5, 3)
    strong = torch.tensor([100.0, 0.01, 1, 1, 1, 1])
    _, alpha = layer(x, edge_index, strong, return_attention=True)
    assert alpha[0] > 0.99  # node 0 attends to its heavy edge from node 1
    with torch.no_grad():
        layer.log_temperature.fill_(5.0)  # very hot: attention close to the edge-weight prior
    _, alpha_hot = layer(x, edge_index, torch.ones(6), return_attention=True)
    torch.testing.assert_close(alpha_hot[:2], torch.tensor([0.5, 0.5]), atol=1e-2, rtol=0)


def test_temperature_is_learnable_and_gradients_flow():
    x, edge_index, edge_weight = _tiny_graph()
    layer = DynamicGraphAttention(5, 3)
    layer(x, edge_index, edge_weight).pow(2).sum().backward()
    assert layer.log_temperature.grad is not None and layer.log_temperature.grad != 0
    assert layer.att_src.grad.abs().sum() > 0
    frozen = DynamicGraphAttention(5, 3, learn_temperature=False)
    assert not frozen.log_temperature.requires_grad
