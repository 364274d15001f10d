"""Reading DAGCL's inputs (features, cell graph) out of an AnnData, with clear errors.

Nothing here writes to the AnnData: every check runs before training, so a failed call
leaves the user's object exactly as it was.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp
from anndata import AnnData

FLOAT32_MAX = float(np.finfo(np.float32).max)
#: rows looked at when guessing whether features are raw counts
RAW_COUNT_PROBE_ROWS = 1_000
#: rows of a dense gene matrix converted to CSR at a time
DENSE_CHUNK_CELLS = 20_000


def _check_name(name: str, value) -> None:
    if not isinstance(value, str):
        raise TypeError(f"`{name}` must be a string (a key), got {type(value).__name__}.")


def _check_real_dtype(dtype: np.dtype, what: str) -> None:
    if not (np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.bool_)) or np.issubdtype(
        dtype, np.complexfloating
    ):
        raise TypeError(f"{what} must hold real numbers, got dtype {dtype}.")


def _warn_if_raw_counts(features) -> None:
    probe = features[:RAW_COUNT_PROBE_ROWS]
    # ok-dense: at most RAW_COUNT_PROBE_ROWS cells
    probe = probe.toarray() if sp.issparse(probe) else probe
    if probe.size and probe.min() >= 0 and probe.max() > 50 and np.array_equal(probe, np.round(probe)):
        warnings.warn(
            "The features look like raw counts (integers up to "
            f"{probe.max():.0f}); DAGCL reconstructs log-normalised data. Run "
            "`sc.pp.normalize_total(adata, target_sum=1e4); sc.pp.log1p(adata)` first, "
            "or pass `use_rep='X_pca'`.",
            UserWarning,
            stacklevel=4,
        )


def gene_mask(adata: AnnData) -> np.ndarray | None:
    """The genes used as features: ``var["highly_variable"]`` when that column exists, else ``None`` (all)."""
    if "highly_variable" not in adata.var.columns:
        return None
    mask = adata.var["highly_variable"].to_numpy(dtype=bool)
    if not mask.any():
        raise ValueError("`adata.var['highly_variable']` selects no gene; rerun `sc.pp.highly_variable_genes`.")
    return mask


def feature_names(adata: AnnData) -> np.ndarray:
    """The ``var_names`` of the genes :func:`get_features` uses (without ``use_rep``), as strings."""
    mask = gene_mask(adata)
    names = adata.var_names if mask is None else adata.var_names[mask]
    return np.asarray(names, dtype=str)


def _feature_matrix(adata: AnnData, layer: str | None, use_rep: str | None) -> tuple[object, str]:
    """The matrix the features come from, and its name for messages."""
    if layer is not None and use_rep is not None:
        raise ValueError("Pass either `layer` or `use_rep`, not both.")
    if use_rep is not None:
        _check_name("use_rep", use_rep)
        if use_rep not in adata.obsm:
            raise KeyError(
                f"`use_rep={use_rep!r}` is not in `adata.obsm` (found: {list(adata.obsm.keys())}); "
                "run e.g. `sc.pp.pca(adata)` for 'X_pca'."
            )
        matrix = adata.obsm[use_rep]
        matrix = matrix.to_numpy() if hasattr(matrix, "to_numpy") else matrix
        # ok-dense: a representation (cells x components)
        return (matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)), f"adata.obsm[{use_rep!r}]"
    if layer is not None:
        _check_name("layer", layer)
        if layer not in adata.layers:
            raise KeyError(f"`layer={layer!r}` is not in `adata.layers` (found: {list(adata.layers.keys())}).")
        matrix, source = adata.layers[layer], f"adata.layers[{layer!r}]"
    else:
        matrix, source = adata.X, "adata.X"
    if matrix is None:
        raise ValueError("`adata.X` is empty; pass `layer=` or `use_rep=` to choose the features.")
    if adata.n_vars == 0:
        raise ValueError(f"{source} has no genes (0 columns); check the gene filtering.")
    if not (sp.issparse(matrix) or isinstance(matrix, np.ndarray)):
        raise TypeError(
            f"{source} is a {type(matrix).__name__}; DAGCL reads a numpy array or a scipy sparse matrix in memory. "
            "Load it first, e.g. `adata = adata.to_memory()` for a backed AnnData, or `adata.X = adata.X.compute()` "
            "for a dask array."
        )
    return matrix, source


def _genes_as_csr(matrix, mask: np.ndarray | None) -> sp.csr_matrix:
    """Gene features as CSR, restricted to ``mask``; a dense matrix is converted a chunk of rows at a time."""
    if sp.issparse(matrix):
        return sp.csr_matrix(matrix if mask is None else matrix[:, mask])
    columns = slice(None) if mask is None else mask
    starts = range(0, matrix.shape[0], DENSE_CHUNK_CELLS)
    # ok-dense: a chunk of at most DENSE_CHUNK_CELLS rows of the user's own dense matrix at a time
    chunks = [sp.csr_matrix(matrix[start : start + DENSE_CHUNK_CELLS, columns]) for start in starts]
    return sp.vstack(chunks, format="csr") if chunks else sp.csr_matrix(matrix[:, columns])


def get_features(adata: AnnData, *, layer: str | None, use_rep: str | None):
    """Features ``(n_obs, n_features)``: ``obsm[use_rep]`` (dense), else ``layers[layer]``, else ``X``.

    Gene-level features come back as a float32 CSR matrix, whatever their density (a dense
    ``X`` is converted, never the other way round), restricted to ``var["highly_variable"]``
    when that column exists; ``use_rep`` comes back as a dense float32 array.
    """
    matrix, source = _feature_matrix(adata, layer, use_rep)
    _check_real_dtype(matrix.dtype, f"The features in {source}")
    if matrix.ndim != 2 or matrix.shape[1] == 0:
        raise ValueError(f"The features in {source} must be a non-empty 2-D matrix, got shape {matrix.shape}.")
    features = _genes_as_csr(matrix, gene_mask(adata)) if use_rep is None else np.asarray(matrix)
    values = features.data if sp.issparse(features) else features
    finite = np.isfinite(values)
    if not finite.all():
        if sp.issparse(features):
            rows = np.repeat(np.arange(features.shape[0]), np.diff(features.indptr))
            n_bad = np.unique(rows[~finite]).size
        else:
            n_bad = int((~finite).any(axis=1).sum())
        raise ValueError(
            f"The features in {source} contain NaN or inf values ({int((~finite).sum())} entries in "
            f"{n_bad} cells); remove or impute them, or choose other features with "
            "`layer=` / `use_rep=`."
        )
    del finite
    peak = float(np.abs(values).max()) if values.size else 0.0
    if peak > FLOAT32_MAX:
        raise ValueError(
            f"The features in {source} exceed the float32 range (max |x| = {peak:.3g}); log-transform or scale them."
        )
    if sp.issparse(features):
        features = features.astype(np.float32, copy=False)
        if not features.has_canonical_format:  # never change the user's matrix in place
            features = features.copy()
            features.sum_duplicates()
    else:
        features = np.ascontiguousarray(features, dtype=np.float32)
    if peak == 0.0:
        raise ValueError(f"The features in {source} are all zeros; check `layer`/`use_rep` and the preprocessing.")
    _warn_if_raw_counts(features)
    return features


def get_graph(adata: AnnData, *, neighbors_key: str | None, obsp: str | None) -> sp.csr_matrix:
    """The cell graph (connectivities) as CSR, looked up as scanpy does."""
    if neighbors_key is not None and obsp is not None:
        raise ValueError("Pass either `neighbors_key` or `obsp`, not both.")
    if obsp is not None:
        _check_name("obsp", obsp)
        if obsp not in adata.obsp:
            raise KeyError(f"`obsp={obsp!r}` is not in `adata.obsp` (found: {list(adata.obsp.keys())}).")
        graph = adata.obsp[obsp]
        source = f"obsp[{obsp!r}]"
    else:
        if neighbors_key is not None:
            _check_name("neighbors_key", neighbors_key)
        key = "neighbors" if neighbors_key is None else neighbors_key
        if key not in adata.uns:
            if neighbors_key is None:
                raise KeyError("No neighbour graph found: run `sc.pp.neighbors(adata)` first.")
            raise KeyError(
                f"`neighbors_key={neighbors_key!r}` is not in `adata.uns`; run "
                f"`sc.pp.neighbors(adata, key_added={neighbors_key!r})` first."
            )
        entry = adata.uns[key]
        if not isinstance(entry, Mapping):
            raise TypeError(
                f"`adata.uns[{key!r}]` is a {type(entry).__name__}, not the dict `sc.pp.neighbors` writes; "
                "re-run `sc.pp.neighbors`, or pass the graph with `obsp=`."
            )
        conn_key = entry.get("connectivities_key", "connectivities")
        if not isinstance(conn_key, str) or conn_key not in adata.obsp:
            raise KeyError(
                f"`adata.uns[{key!r}]` names `obsp[{conn_key!r}]`, which does not exist "
                f"(found: {list(adata.obsp.keys())}); re-run `sc.pp.neighbors`."
            )
        graph = adata.obsp[conn_key]
        source = f"obsp[{conn_key!r}]"
    if graph.shape != (adata.n_obs, adata.n_obs):
        raise ValueError(
            f"The graph in {source} has shape {graph.shape}, but there are {adata.n_obs} cells; "
            "re-run `sc.pp.neighbors` on this AnnData."
        )
    _check_real_dtype(graph.dtype, f"The graph in {source}")
    graph = sp.csr_matrix(graph, dtype=np.float64)
    if not np.isfinite(graph.data).all():
        raise ValueError(f"The graph in {source} has non-finite weights; re-run `sc.pp.neighbors`.")
    if (graph.data < 0).any():
        raise ValueError(
            f"The graph in {source} has negative weights; DAGCL needs non-negative connectivities "
            "(e.g. from `sc.pp.neighbors`)."
        )
    if graph.nnz and graph.data.max() > FLOAT32_MAX:
        raise ValueError(f"The graph in {source} has weights beyond the float32 range; rescale them.")
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
