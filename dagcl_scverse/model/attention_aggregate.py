"""Attention-weighted neighbour sums as sparse matrix products.

``out[i] = sum_j alpha_ij h[j]`` written edge by edge materialises an ``(edges, channels)``
message tensor forwards and again backwards; on the CPU that was most of an epoch. As a CSR
sparse-dense product it never does: forwards ``A @ h``, backwards ``A.T @ grad`` for ``h`` and
the sampled product ``(grad @ h.T)`` at the edges for ``alpha``. Memory stays O(edges).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .sparse_input import csr_beta_warning_silenced


@dataclass(frozen=True)
class SortedGraph:
    """An edge list in CSR form by target (rows) and by source (the transpose).

    ``order`` puts the original edges in target-major order; ``order_t`` takes that order to
    source-major order.
    """

    n_nodes: int
    order: Tensor
    crow: Tensor
    col: Tensor
    order_t: Tensor
    crow_t: Tensor
    col_t: Tensor

    @classmethod
    def from_edge_index(cls, edge_index: Tensor, n_nodes: int) -> SortedGraph:
        """Sort the edges of ``edge_index`` (``(2, E)``, source row 0) over ``n_nodes`` nodes."""
        src, dst = edge_index[0], edge_index[1]
        order = torch.argsort(dst * n_nodes + src, stable=True)
        src, dst = src[order], dst[order]
        order_t = torch.argsort(src * n_nodes + dst, stable=True)
        return cls(
            n_nodes=n_nodes,
            order=order,
            crow=_row_pointers(dst, n_nodes),
            col=src,
            order_t=order_t,
            crow_t=_row_pointers(src[order_t], n_nodes),
            col_t=dst[order_t],
        )

    def matrix(self, values: Tensor, *, transpose: bool = False) -> Tensor:
        """``(n, n)`` sparse CSR matrix with ``values`` given in target-major edge order."""
        crow, col = (self.crow_t, self.col_t) if transpose else (self.crow, self.col)
        if transpose:
            values = torch.index_select(values, 0, self.order_t)
        with csr_beta_warning_silenced():
            return torch.sparse_csr_tensor(crow, col, values, (self.n_nodes, self.n_nodes), check_invariants=False)


def _row_pointers(rows: Tensor, n_nodes: int) -> Tensor:
    crow = torch.zeros(n_nodes + 1, dtype=torch.long, device=rows.device)
    crow[1:] = torch.cumsum(torch.bincount(rows, minlength=n_nodes), 0)
    return crow


class _AttentionAggregate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, alpha: Tensor, h: Tensor, graph: SortedGraph) -> Tensor:
        ctx.save_for_backward(alpha, h)
        ctx.graph = graph
        return graph.matrix(alpha) @ h

    @staticmethod
    def backward(ctx, grad: Tensor):
        alpha, h = ctx.saved_tensors
        graph: SortedGraph = ctx.graph
        grad_alpha = grad_h = None
        if ctx.needs_input_grad[0]:
            pattern = graph.matrix(torch.zeros_like(alpha))
            grad_alpha = torch.sparse.sampled_addmm(pattern, grad.contiguous(), h.T).values()
        if ctx.needs_input_grad[1]:
            grad_h = graph.matrix(alpha, transpose=True) @ grad
        return grad_alpha, grad_h, None


def attention_aggregate(alpha: Tensor, h: Tensor, graph: SortedGraph) -> Tensor:
    """``out[i] = sum over edges (j -> i) of alpha_e * h[j]``, ``alpha`` in target-major order."""
    return _AttentionAggregate.apply(alpha.contiguous(), h.contiguous(), graph)
