"""Large synthetic data for the scaling benchmark: sparse log-normalised expression and a kNN graph.

The expression imitates 10x data after highly variable gene selection: about 8 % of the entries
are non-zero, each cell type raises the detection rate and level of its own marker genes, and
the types have unequal sizes. The kNN graph is built from the features alone (never from the
types): a principal component projection (``dagcl_scverse.model.chunked_pca``), then an
inverted-file search that compares each cell with the cells of its own and the nearest
neighbouring k-means lists only, so that a million cells take minutes on two cores.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from dagcl_scverse.model.chunked_pca import principal_components
from dagcl_scverse.model.kmeans import kmeans

N_GENES = 2_000
N_TYPES = 12
DENSITY = 0.08
MARKERS_PER_TYPE = 60
CHUNK = 20_000


def sparse_expression(n_cells: int, seed: int = 0) -> tuple[sp.csr_matrix, np.ndarray]:
    """Log-normalised-like CSR expression ``(n_cells, N_GENES)`` and each cell's type."""
    rng = np.random.default_rng(seed)
    detection = np.clip(rng.lognormal(np.log(DENSITY) - 0.6, 1.0, N_GENES), 0.002, 0.9)
    level = rng.lognormal(0.0, 0.5, N_GENES)
    detection = np.tile(detection, (N_TYPES, 1))
    level = np.tile(level, (N_TYPES, 1))
    for t in range(N_TYPES):
        markers = rng.choice(N_GENES, MARKERS_PER_TYPE, replace=False)
        detection[t, markers] = np.clip(detection[t, markers] * 4 + 0.1, 0, 0.95)
        level[t, markers] *= 3.0
    types = rng.choice(N_TYPES, size=n_cells, p=rng.dirichlet(np.full(N_TYPES, 3.0)))
    blocks = []
    for start in range(0, n_cells, CHUNK):
        chunk_types = types[start : start + CHUNK]
        rows, cols = np.nonzero(rng.random((chunk_types.size, N_GENES), dtype=np.float32) < detection[chunk_types])
        values = np.log1p(rng.gamma(2.0, level[chunk_types[rows], cols])).astype(np.float32)
        blocks.append(sp.csr_matrix((values, (rows, cols)), shape=(chunk_types.size, N_GENES)))
    return sp.vstack(blocks, format="csr"), types


def synthetic_anndata(n_cells: int, graph_path):
    """The synthetic cells as AnnData (types in ``obs["cell_type"]``) with a saved graph in ``obsp``."""
    import anndata as ad
    import pandas as pd

    features, types = sparse_expression(n_cells)
    adata = ad.AnnData(features, obs=pd.DataFrame({"cell_type": pd.Categorical(types.astype(str))}))
    adata.obsp["connectivities"] = sp.load_npz(graph_path).tocsr()
    return adata


def knn_graph(features, n_neighbors: int = 15, seed: int = 0, probes: int = 3) -> sp.csr_matrix:
    """Symmetric kNN connectivities (Gaussian weights, scaled by each cell's k-th distance)."""
    pcs = torch.as_tensor(principal_components(features, 30, seed=seed))
    n = pcs.shape[0]
    n_lists = max(1, n // 2_000)
    subsample = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[: min(n, 50 * n_lists)]
    centroids, _ = kmeans(pcs[subsample], n_lists, seed=seed, n_init=1, max_iter=20)
    lists = torch.cat([torch.cdist(pcs[i : i + CHUNK], centroids).argmin(1) for i in range(0, n, CHUNK)])
    nearest_lists = torch.cdist(centroids, centroids).topk(min(probes, n_lists), largest=False).indices
    members = [torch.nonzero(lists == i).ravel() for i in range(n_lists)]
    rows, cols, dists = [], [], []
    for i in range(n_lists):
        queries = members[i]
        if queries.numel() == 0:
            continue
        candidates = torch.cat([members[j] for j in nearest_lists[i].tolist()])
        d = torch.cdist(pcs[queries], pcs[candidates])  # ok-dense: one list x its probed lists
        d[candidates[None, :] == queries[:, None]] = float("inf")
        top = d.topk(min(n_neighbors, candidates.numel() - 1), largest=False)
        rows.append(queries.repeat_interleave(top.indices.shape[1]))
        cols.append(candidates[top.indices].ravel())
        dists.append(top.values.ravel())
    rows, cols, dists = (torch.cat(x).numpy() for x in (rows, cols, dists))
    sigma = np.zeros(n)
    np.maximum.at(sigma, rows, dists)
    weights = np.exp(-((dists / np.maximum(sigma[rows], 1e-12)) ** 2))
    graph = sp.csr_matrix((weights.astype(np.float32), (rows, cols)), shape=(n, n))
    return graph.maximum(graph.T).tocsr()
