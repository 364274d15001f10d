"""DAGCL's loss terms. All are O(cells x dims) or O(edges x dims)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .smoothness_graph import SmoothnessGraph, weighted_edge_distance


def reconstruction(x_hat: Tensor, x: Tensor) -> Tensor:
    """Mean squared error between reconstruction and (log-normalised) input."""
    return F.mse_loss(x_hat, x)


def _standardise(z: Tensor) -> Tensor:
    return (z - z.mean(0)) / (z.std(0, unbiased=False) + 1e-6)


def decorrelation(z: Tensor) -> Tensor:
    """Mean squared off-diagonal correlation between latent dimensions (a d x d matrix)."""
    d = z.shape[1]
    zs = _standardise(z)
    corr = zs.T @ zs / z.shape[0]
    off = corr - torch.diag(torch.diagonal(corr))
    return off.pow(2).sum() / (d * (d - 1))


def decorrelation_from_moments(mean: Tensor, second: Tensor) -> Tensor:
    """:func:`decorrelation` from the mean ``(d,)`` and second moment ``(d, d)`` of the embedding."""
    d = mean.shape[0]
    cov = second - torch.outer(mean, mean)
    std = torch.diagonal(cov).clamp_min(0.0).sqrt() + 1e-6
    corr = cov / torch.outer(std, std)
    off = corr - torch.diag(torch.diagonal(corr))
    return off.pow(2).sum() / (d * (d - 1))


def graph_smoothness(
    z: Tensor, graph: SmoothnessGraph, *, mean: Tensor | None = None, std: Tensor | None = None
) -> Tensor:
    """Weighted mean squared distance of standardised embeddings across graph edges.

    Standardising first means the term cannot be lowered by shrinking the embedding; ``mean``
    and ``std`` replace the statistics of ``z`` when given.
    """
    zs = _standardise(z) if mean is None else (z - mean) / (std + 1e-6)
    return weighted_edge_distance(zs, graph) / (z.shape[1] * graph.total_weight.clamp_min(1e-12))


def kl_divergence(p: Tensor, q: Tensor, mask: Tensor | None = None) -> Tensor:
    """KL(p || q) per cell, averaged over the cells in ``mask`` (all cells if None)."""
    per_cell = (p * (torch.log(p.clamp_min(1e-12)) - torch.log(q.clamp_min(1e-12)))).sum(1)
    if mask is None:
        return per_cell.mean()
    weights = mask.to(per_cell.dtype)
    return (per_cell * weights).sum() / weights.sum().clamp_min(1)
