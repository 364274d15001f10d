"""Reading DAGCL's inputs (features, cell graph) out of an AnnData, with clear errors."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
from anndata import AnnData


def get_features(adata: AnnData, *, layer: str | None, use_rep: str | None) -> np.ndarray:
    """Dense float32 ``(n_obs, n_features)`` features: ``obsm[use_rep]``, else ``layers[layer]``, else ``X``.

    Gene-level features are restricted to ``var["highly_variable"]`` when that column exists.
    """
    if layer is not None and use_rep is not None:
        raise ValueError("Pass either `layer` or `use_rep`, not both.")
    if use_rep is not None:
        if use_rep not in adata.obsm:
            raise KeyError(
                f"`use_rep={use_rep!r}` is not in `adata.obsm` (found: {list(adata.obsm.keys())}); "
                "run e.g. `sc.pp.pca(adata)` for 'X_pca'."
            )
        matrix = adata.obsm[use_rep]
    else:
        if layer is not None:
            if layer not in adata.layers:
                raise KeyError(f"`layer={layer!r}` is not in `adata.layers` (found: {list(adata.layers.keys())}).")
            matrix = adata.layers[layer]
        else:
            matrix = adata.X
        if matrix is None:
            raise ValueError("`adata.X` is empty; pass `layer=` or `use_rep=` to choose the features.")
        if "highly_variable" in adata.var.columns:
            mask = adata.var["highly_variable"].to_numpy(dtype=bool)
            if not mask.any():
                raise ValueError("`adata.var['highly_variable']` selects no gene; rerun `sc.pp.highly_variable_genes`.")
            matrix = matrix[:, mask]
    if hasattr(matrix, "to_numpy"):
        matrix = matrix.to_numpy()
    if sp.issparse(matrix):
        matrix = matrix.toarray()
    matrix = np.asarray(matrix)
    if not np.issubdtype(matrix.dtype, np.number) or np.issubdtype(matrix.dtype, np.complexfloating):
        raise TypeError(f"Features must be real numbers, got dtype {matrix.dtype}.")
    features = np.ascontiguousarray(matrix, dtype=np.float32)
    if features.ndim != 2 or features.shape[1] == 0:
        raise ValueError(f"Features must be a non-empty 2-D matrix, got shape {features.shape}.")
    if not np.isfinite(features).all():
        raise ValueError(
            "The features contain NaN or inf values; fix or remove them (e.g. re-run `sc.pp.log1p` on counts)."
        )
    if not features.any():
        raise ValueError("The feature matrix is all zeros; check `layer`/`use_rep` and the preprocessing.")
    return features


def get_graph(adata: AnnData, *, neighbors_key: str | None, obsp: str | None) -> sp.csr_matrix:
    """The cell graph (connectivities) as CSR, looked up as scanpy does."""
    if neighbors_key is not None and obsp is not None:
        raise ValueError("Pass either `neighbors_key` or `obsp`, not both.")
    if obsp is not None:
        if obsp not in adata.obsp:
            raise KeyError(f"`obsp={obsp!r}` is not in `adata.obsp` (found: {list(adata.obsp.keys())}).")
        graph = adata.obsp[obsp]
        source = f"obsp[{obsp!r}]"
    else:
        key = "neighbors" if neighbors_key is None else neighbors_key
        if key not in adata.uns:
            if neighbors_key is None:
                raise KeyError("No neighbour graph found: run `sc.pp.neighbors(adata)` first.")
            raise KeyError(
                f"`neighbors_key={neighbors_key!r}` is not in `adata.uns`; run "
                f"`sc.pp.neighbors(adata, key_added={neighbors_key!r})` first."
            )
        conn_key = adata.uns[key].get("connectivities_key", "connectivities")
        if conn_key not in adata.obsp:
            raise KeyError(
                f"`adata.uns[{key!r}]` names `obsp[{conn_key!r}]`, which does not exist; "
                "re-run `sc.pp.neighbors`."
            )
        graph = adata.obsp[conn_key]
        source = f"obsp[{conn_key!r}]"
    if graph.shape != (adata.n_obs, adata.n_obs):
        raise ValueError(
            f"The graph in {source} has shape {graph.shape}, but there are {adata.n_obs} cells; "
            "re-run `sc.pp.neighbors` on this AnnData."
        )
    graph = sp.csr_matrix(graph, dtype=np.float64)
    if not np.isfinite(graph.data).all():
        raise ValueError(f"The graph in {source} has non-finite weights; re-run `sc.pp.neighbors`.")
    if (graph.data < 0).any():
        raise ValueError(f"The graph in {source} has negative weights; DAGCL needs non-negative connectivities.")
    return graph


def graph_to_edges(graph: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Edge list ``(2, E)`` (source, target) and weights; self-loops dropped, isolated cells get one back.

    Row ``i`` of the graph lists the neighbours ``j`` whose messages cell ``i`` receives.
    """
    graph = graph.tocoo()
    keep = (graph.row != graph.col) & (graph.data > 0)
    rows, cols, weights = graph.row[keep], graph.col[keep], graph.data[keep]
    has_neighbour = np.zeros(graph.shape[0], dtype=bool)
    has_neighbour[rows] = True
    isolated = np.flatnonzero(~has_neighbour)
    if isolated.size:
        warnings.warn(
            f"{isolated.size} cell(s) have no neighbours in the graph; they are clustered from their own "
            "features only. Consider re-running `sc.pp.neighbors` with more neighbours.",
            UserWarning,
            stacklevel=3,
        )
        rows = np.concatenate([rows, isolated])
        cols = np.concatenate([cols, isolated])
        weights = np.concatenate([weights, np.ones(isolated.size)])
    order = np.lexsort((cols, rows))
    edge_index = np.stack([cols[order], rows[order]]).astype(np.int64)
    return edge_index, weights[order].astype(np.float32)
