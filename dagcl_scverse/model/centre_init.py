"""Centre initialisation: cosine average linkage over k-means micro-clusters.

Average linkage (UPGMA) under cosine similarity keeps large, spread-out cell populations whole
and spends spare clusters on small distinct groups, where k-means would cut big populations
into equal-volume pieces. For unit vectors the mean pairwise similarity of two groups equals
the dot product of their (unnormalised) mean vectors, so exact average linkage can run on
``m`` micro-clusters (an ``m x m`` table, ``m`` at most a few hundred) instead of on cells.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from .kmeans import kmeans
from .noise_clusters import cut_without_noise

MICRO_CLUSTERS = 200
#: above this many cells the micro-cluster centres are fitted on a subsample of this size
MICRO_FIT_CELLS = 20_000
#: cells whose distances to the micro-cluster centres are held at once
NEAREST_CHUNK = 50_000
#: features are standardised and clipped at this value before the PCA of the initial partition
#: (``sc.pp.scale``'s ``max_value``, as in scanpy's and Seurat's standard workflows; see ``chunked_pca``)
SCALE_MAX_VALUE = 10.0


def average_linkage_groups(means: Tensor, sizes: Tensor, k: int) -> Tensor:
    """Merge groups by cosine average linkage until ``k`` remain.

    Parameters
    ----------
    means
        ``(m, d)`` mean unit vector of each group.
    sizes
        ``(m,)`` number of cells in each group.
    k
        Number of groups to keep.

    Returns
    -------
    ``(m,)`` int tensor: the merged group (0..k-1) of each input group.
    """
    return groups_after(linkage_merges(means, sizes, k), means.shape[0])


def linkage_merges(means: Tensor, sizes: Tensor, k: int) -> list[tuple[int, int]]:
    """The pairs ``(a, b)`` that cosine average linkage merges, in order, until ``k`` groups remain (``b`` into ``a``).

    The first ``m - c`` of them give the cut into ``c >= k`` groups (:func:`groups_after`).
    """
    m = means.shape[0]
    # ok-dense: micro-clusters x micro-clusters (m <= a few hundred), never cells
    sim = (means @ means.T).double()
    sizes = sizes.double().clone()
    alive = torch.ones(m, dtype=torch.bool)
    sim.fill_diagonal_(-float("inf"))
    merges = []
    for _ in range(m - k):
        masked = sim.masked_fill(~(alive[:, None] & alive[None, :]), -float("inf"))
        flat = int(torch.argmax(masked))
        a, b = divmod(flat, m)
        a, b = min(a, b), max(a, b)
        merged = (sizes[a] * sim[a] + sizes[b] * sim[b]) / (sizes[a] + sizes[b])
        sim[a], sim[:, a] = merged, merged
        sim[a, a] = -float("inf")
        sizes[a] += sizes[b]
        alive[b] = False
        merges.append((a, b))
    return merges


def groups_after(merges: list[tuple[int, int]], m: int) -> Tensor:
    """``(m,)`` group (numbered from 0) of each of ``m`` input groups after ``merges``."""
    owner = torch.arange(m)
    for a, b in merges:
        owner[owner == b] = a
    _, relabelled = torch.unique(owner, return_inverse=True)
    return relabelled


def _micro_clusters(u: Tensor, m: int, seed: int) -> Tensor:
    """k-means labels of ``u`` into ``m`` groups.

    Above ``MICRO_FIT_CELLS`` cells the centres are fitted on a seeded subsample and every cell
    takes the nearest one: k-means needs more iterations on more cells, this stays linear.
    """
    n = u.shape[0]
    if n <= MICRO_FIT_CELLS:
        return kmeans(u, m, seed=seed, n_init=1)[1]
    generator = torch.Generator().manual_seed(seed)
    subsample = torch.randperm(n, generator=generator)[:MICRO_FIT_CELLS].to(u.device)
    centres, _ = kmeans(u[subsample], m, seed=seed, n_init=1)
    # ok-dense: a chunk of cells x micro-clusters at a time
    return torch.cat([torch.cdist(u[i : i + NEAREST_CHUNK], centres).argmin(1) for i in range(0, n, NEAREST_CHUNK)])


def _linkage_cut(merges: list[tuple[int, int]], micro: Tensor, m: int, n_groups: int) -> Tensor:
    """Cell labels of the micro-clusters' linkage tree (``merges`` down to k groups) cut into ``n_groups >= k``."""
    return groups_after(merges[: m - n_groups], m).to(micro.device)[micro]


def initial_centres(
    z: Tensor, k: int, *, space: Tensor | None = None, seed: int = 0, edge_index: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Centres ``(k, d)`` in the embedding ``z`` and labels ``(n,)`` of the initial partition.

    The partition is cosine average linkage over micro-clusters of ``space`` (``z`` when None);
    the centres are the embedding means of its groups. With the cell graph's ``edge_index``,
    clusters that are not communities of the graph give their place to deeper cuts of the same
    tree (:mod:`.noise_clusters`).
    """
    n = z.shape[0]
    space = z if space is None else space
    # centred first: cosine similarity of uncentred vectors is dominated by their common offset
    u = space - space.mean(0)
    u = u / u.norm(dim=1, keepdim=True).clamp_min(1e-12)
    m = min(n, max(MICRO_CLUSTERS, 2 * k))
    micro = _micro_clusters(u, m, seed)
    sizes = torch.bincount(micro, minlength=m)
    present = sizes > 0
    index = torch.cumsum(present.long(), 0) - 1
    micro = index[micro]
    sizes = sizes[present]
    m = int(present.sum())
    means = torch.zeros(m, u.shape[1], dtype=u.dtype, device=u.device).index_add_(0, micro, u) / sizes[:, None]
    if m <= k:
        labels = torch.arange(m, device=z.device)[micro]
    else:
        cut_at = functools.partial(_linkage_cut, linkage_merges(means.cpu(), sizes.cpu(), k), micro, m)
        labels = cut_at(k) if edge_index is None else cut_without_noise(cut_at, edge_index, k, m)
    n_groups = int(labels.max()) + 1
    counts = torch.bincount(labels, minlength=n_groups).to(z)
    centres = torch.zeros(n_groups, z.shape[1], dtype=z.dtype, device=z.device).index_add_(0, labels, z)
    centres = centres / counts[:, None]
    if n_groups < k:
        # fewer distinct micro-clusters than k (tiny data): fill with seeded distinct cells
        generator = torch.Generator().manual_seed(seed)
        extra = torch.randperm(n, generator=generator)[: k - n_groups].to(z.device)
        centres = torch.cat([centres, z[extra]])
    return centres, labels
