"""Clusters of the initial cut that are not communities of the cell graph give their place to deeper cuts.

Average linkage sometimes spends clusters on a few stray cells of a large population: pieces
whose graph neighbours lie mostly outside them. A cluster is kept as a community when more than
half of the neighbour slots its cells could fill inside it are filled there: its inside edges
against ``sum_i min(degree_i, size - 1)``, so that a real population of three cells, whose cells
are each other's neighbours, counts as a community, while three stray cells, whose neighbours lie
in the population they came from, do not (the weak community of Radicchi et al. 2004, relative to
what the cluster's size allows). When ``m`` clusters of the cut at ``k`` fail, the same linkage
tree is cut at ``k + 1`` up to ``k + m`` clusters; at the first cut with exactly ``k``
communities, every other cluster joins the community its cells share most edges with. Where no
such cut exists the cut at ``k`` is kept, so the partition is never cut deeper than the pieces it
frees. Everything is O(edges) plus ``clusters x clusters`` tables.

Off by default (``TrainingConfig.absorb_noise_clusters``): it passed the leave-one-out rule on
the ``--quick`` grid and lost on the full grid's other cases ("What we tried" #73).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

#: share of the possible inside neighbour slots a community fills (a weak community: a majority)
COMMUNITY_SHARE = 0.5


def _edge_counts(labels: Tensor, edge_index: Tensor, n_groups: int) -> tuple[Tensor, Tensor]:
    """``(n_groups, n_groups)`` directed edge counts between groups, and each cell's degree (self-loops left out)."""
    src, dst = edge_index[0], edge_index[1]
    off_diagonal = src != dst
    src, dst = src[off_diagonal], dst[off_diagonal]
    pairs = labels[src] * n_groups + labels[dst]
    counts = torch.bincount(pairs, minlength=n_groups * n_groups).reshape(n_groups, n_groups)
    degree = torch.bincount(src, minlength=labels.shape[0])
    return counts, degree


def communities(labels: Tensor, edge_index: Tensor, n_groups: int) -> tuple[Tensor, Tensor]:
    """Which groups are communities (see the module docstring), and the edge counts between groups."""
    counts, degree = _edge_counts(labels, edge_index, n_groups)
    sizes = torch.bincount(labels, minlength=n_groups)
    slots = torch.minimum(degree, sizes[labels] - 1).clamp_min(0)
    possible = torch.zeros(n_groups, dtype=slots.dtype, device=slots.device).index_add_(0, labels, slots)
    inside = torch.diagonal(counts)
    return inside > COMMUNITY_SHARE * possible, counts


def cut_without_noise(cut_at: Callable[[int], Tensor], edge_index: Tensor, k: int, max_groups: int) -> Tensor:
    """Cell labels (``0..k-1``) of the shallowest cut with exactly ``k`` communities, the rest absorbed.

    ``cut_at(c)`` gives the cells' labels of the linkage tree cut into ``c`` groups (``c <= max_groups``).
    """
    plain = cut_at(k)
    freed = int((~communities(plain, edge_index, k)[0]).sum())
    for n_groups in range(k + 1, min(k + freed, max_groups) + 1):
        labels = cut_at(n_groups)
        kept, counts = communities(labels, edge_index, n_groups)
        n_kept = int(kept.sum())
        if n_kept > k:
            break
        if n_kept == k:
            return _absorb(labels, kept, counts)
    return plain


def _absorb(labels: Tensor, kept: Tensor, counts: Tensor) -> Tensor:
    """Every group outside ``kept`` joins the kept group it shares most edges with; labels renumbered 0..k-1."""
    kept_ids = torch.nonzero(kept).flatten()
    to_kept = counts[:, kept_ids]
    home = kept_ids[to_kept.argmax(1)]
    home[kept_ids] = kept_ids
    return torch.unique(home[labels], return_inverse=True)[1]
