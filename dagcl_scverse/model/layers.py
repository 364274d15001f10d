"""The dynamic graph-attention layer."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import softmax

from .attention_aggregate import SortedGraph, attention_aggregate


class DynamicGraphAttention(MessagePassing):
    r"""Graph attention whose reach and width grow during training.

    .. math::
        \alpha_{ij} = \operatorname{softmax}_{j \in \mathcal{N}(i)}
            \Big(\tfrac{1}{\tau}\,\mathrm{LeakyReLU}(a_s^\top W x_j + a_d^\top W x_i) + \log w_{ij}\Big)

        x_i' = m \odot \Big((1 - s)\, W x_i + s \sum_{j \in \mathcal{N}(i)} \alpha_{ij} W x_j + b\Big)

    with a learnable temperature :math:`\tau`, the aggregation strength :math:`s` and a
    channel gate :math:`m` that keeps the first ``capacity * out_channels`` channels (the
    boundary channel fractionally) and zeroes the rest. Edge weights :math:`w_{ij}` (kNN
    connectivities) enter the attention logits, so strong graph edges start out preferred.
    The neighbour sum is fused (:meth:`message_and_aggregate`): one sparse matrix product
    instead of a tensor of per-edge messages, with the sorted graph cached while the same
    ``edge_index`` tensor comes back.

    Parameters
    ----------
    in_channels
        Size of each input feature vector.
    out_channels
        Size of each output feature vector (the channels the gate acts on).
    negative_slope
        Slope of the LeakyReLU in the attention logits.
    learn_temperature
        Whether the attention temperature is a trainable parameter (else fixed at 1).

    Shapes:
        - **input:** node features :math:`(N, F_{in})`, edge indices :math:`(2, E)`
          (row 0 source, row 1 target), edge weights :math:`(E,)` optional
        - **output:** node features :math:`(N, F_{out})`; with ``return_attention=True`` also
          the attention coefficients :math:`(E,)`
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        negative_slope: float = 0.2,
        learn_temperature: bool = True,
    ) -> None:
        super().__init__(aggr="add", node_dim=0)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.negative_slope = negative_slope
        self.lin = nn.Linear(in_channels, out_channels, bias=False)
        self.att_src = nn.Parameter(torch.empty(out_channels))
        self.att_dst = nn.Parameter(torch.empty(out_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.log_temperature = nn.Parameter(torch.zeros(()), requires_grad=learn_temperature)
        self._graph_cache: tuple[Tensor, int, int, SortedGraph] | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise the projection and the attention vectors."""
        self.lin.reset_parameters()
        bound = 1.0 / math.sqrt(self.out_channels)
        nn.init.uniform_(self.att_src, -bound, bound)
        nn.init.uniform_(self.att_dst, -bound, bound)
        nn.init.zeros_(self.bias)

    @property
    def temperature(self) -> Tensor:
        """The attention temperature (positive: stored as its logarithm)."""
        return self.log_temperature.exp()

    def channel_gate(self, capacity: float) -> Tensor:
        """Per-channel multiplier: 1 for active channels, 0 for gated ones, fractional at the boundary."""
        active = capacity * self.out_channels
        idx = torch.arange(self.out_channels, device=self.bias.device, dtype=self.bias.dtype)
        return (active - idx).clamp(0.0, 1.0)

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        edge_weight: Tensor | None = None,
        *,
        aggregation: float = 1.0,
        capacity: float = 1.0,
        return_attention: bool = False,
        graph: SortedGraph | None = None,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Mix each node's projection with its attention-weighted in-neighbours (see the class docstring).

        ``graph`` is ``edge_index`` already sorted (:meth:`SortedGraph.from_edge_index`), for
        callers that keep the sorted edges of several graphs.
        """
        h = self.lin(x)
        src, dst = edge_index[0], edge_index[1]
        # index_select rather than advanced indexing: its backward is deterministic on CPU
        score_src = torch.index_select((h * self.att_src).sum(-1), 0, src)
        score_dst = torch.index_select((h * self.att_dst).sum(-1), 0, dst)
        logits = F.leaky_relu(score_src + score_dst, self.negative_slope) / self.temperature
        if edge_weight is not None:
            logits = logits + torch.log(edge_weight.clamp_min(1e-12))
        alpha = softmax(logits, dst, num_nodes=x.shape[0])
        graph = self._sorted_graph(edge_index, x.shape[0]) if graph is None else graph
        neighbours = self.message_and_aggregate(graph, h, torch.index_select(alpha, 0, graph.order))
        out = (1.0 - aggregation) * h + aggregation * neighbours + self.bias
        out = out * self.channel_gate(capacity)
        if return_attention:
            return out, alpha
        return out

    def message_and_aggregate(self, graph: SortedGraph, x: Tensor, alpha: Tensor) -> Tensor:
        """Fused message passing: ``sum_j alpha_ij x_j`` as one sparse-dense product."""
        return attention_aggregate(alpha, x, graph)

    def _sorted_graph(self, edge_index: Tensor, n_nodes: int) -> SortedGraph:
        # training passes the same edge_index every epoch: sort it once
        cached = self._graph_cache
        if cached is not None and cached[0] is edge_index and cached[1:3] == (edge_index._version, n_nodes):
            return cached[3]
        graph = SortedGraph.from_edge_index(edge_index, n_nodes)
        self._graph_cache = (edge_index, edge_index._version, n_nodes, graph)
        return graph

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, {self.out_channels})"
