"""`dagcl.tl.ingest`: map new cells onto a trained DAGCL model, as `sc.tl.ingest` does for Leiden."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from anndata import AnnData
from scanpy import logging as logg
from sklearn.neighbors import NearestNeighbors

from dagcl_scverse.model.inference import infer, module_from_state
from dagcl_scverse.tl._inputs import FLOAT32_MAX, RAW_COUNT_PROBE_ROWS, _check_name, _check_real_dtype
from dagcl_scverse.tl._model import CHUNK_CELLS, project, read_model
from dagcl_scverse.tl._results import _versions

#: genes named in the error for genes the query lacks
N_NAMED_GENES = 5
#: bisection steps for the bandwidth of the neighbour weights (as UMAP's smooth_knn_dist)
BANDWIDTH_STEPS = 64
#: the bandwidth is at least this share of the mean distance to the neighbours (UMAP's MIN_K_DIST_SCALE)
MIN_BANDWIDTH_SCALE = 1e-3


def _looks_like_counts(matrix) -> bool:
    """Whether the first cells of ``matrix`` hold integers above 50, as raw counts do (log-normalised data do not)."""
    probe = matrix[:RAW_COUNT_PROBE_ROWS]
    values = probe.data if sp.issparse(probe) else np.asarray(probe).ravel()
    return bool(values.size and values.min() >= 0 and values.max() > 50 and np.array_equal(values, np.round(values)))


def _argument(which: str) -> str:
    """The argument's name, for messages."""
    return "adata_query" if which == "query" else "adata_ref"


def _gene_columns(adata: AnnData, names: np.ndarray, which: str) -> np.ndarray:
    """Positions of the genes ``names`` in ``adata.var_names``; a KeyError names the missing ones."""
    if not adata.var_names.is_unique:
        raise ValueError(f"The {which}'s var_names are not unique; run `{_argument(which)}.var_names_make_unique()`.")
    columns = adata.var_names.get_indexer(names)
    missing = names[columns < 0]
    if missing.size:
        shown = ", ".join(f"{name!r}" for name in missing[:N_NAMED_GENES].tolist()) + (
            ", ..." if missing.size > N_NAMED_GENES else ""
        )
        raise KeyError(
            f"The {which} lacks {missing.size} of the {names.size} genes the reference was clustered on ({shown}); "
            f"genes are matched by var_names, and the {which} needs all of "
            "`adata_ref.uns[key_added]['model']['feature_names']`."
        )
    return columns


def _expression(adata: AnnData, names: np.ndarray, layer: str | None, which: str):
    """The genes ``names`` (in that order) of ``X`` or ``layers[layer]``, as float32 CSR or dense."""
    if layer is not None and layer not in adata.layers:
        raise KeyError(
            f"The reference was clustered on `layers[{layer!r}]`, which `{_argument(which)}` lacks "
            f"(found: {list(adata.layers.keys())})."
        )
    matrix = adata.X if layer is None else adata.layers[layer]
    if matrix is None:
        raise ValueError(f"`{_argument(which)}.X` is empty; it must hold the log-normalised expression.")
    matrix = matrix[:, _gene_columns(adata, names, which)]
    source = f"{_argument(which)}.{'X' if layer is None else f'layers[{layer!r}]'}"
    matrix = sp.csr_matrix(matrix) if sp.issparse(matrix) else np.asarray(matrix)
    _check_real_dtype(matrix.dtype, f"The expression in {source}")
    values = matrix.data if sp.issparse(matrix) else matrix
    if not np.isfinite(values).all():
        raise ValueError(f"The expression in {source} contains NaN or inf values; remove or impute them.")
    if values.size and max(abs(float(values.max())), abs(float(values.min()))) > FLOAT32_MAX:
        raise ValueError(f"The expression in {source} exceeds the float32 range; log-normalise it.")
    return matrix.astype(np.float32)


def _check_normalisation(query, reference, preprocessing: Mapping) -> None:
    """A query of raw counts mapped onto a log-normalised reference: an error naming the normalisation."""
    if not _looks_like_counts(query) or _looks_like_counts(reference):
        return
    target = preprocessing.get("target_sum")
    steps = (
        f"`sc.pp.normalize_total(adata_query, target_sum={target:g}); sc.pp.log1p(adata_query)`"
        if target is not None
        else "the same normalisation as the reference's X (e.g. `sc.pp.normalize_total`, `sc.pp.log1p`)"
    )
    raise ValueError(
        f"`adata_query` looks like raw counts (integers up to {float(query.max()):.0f}), but the reference was "
        f"clustered on log-normalised expression; run {steps} on all of the query's genes first."
    )


def nearest_reference_cells(
    query: np.ndarray, reference: np.ndarray, n_neighbors: int, *, chunk: int = CHUNK_CELLS
) -> tuple[np.ndarray, np.ndarray]:
    """``(indices, distances)``, ``(n_query, n_neighbors)``: each query cell's nearest reference cells.

    Exact Euclidean search (scikit-learn's brute force, which itself bounds its memory), over
    ``chunk`` query cells at a time; each row lists the neighbours by increasing distance.
    """
    search = NearestNeighbors(n_neighbors=n_neighbors, algorithm="brute", metric="euclidean").fit(reference)
    indices = np.empty((query.shape[0], n_neighbors), dtype=np.int64)
    distances = np.empty((query.shape[0], n_neighbors), dtype=np.float64)
    for start in range(0, query.shape[0], chunk):
        distances[start : start + chunk], indices[start : start + chunk] = search.kneighbors(
            query[start : start + chunk]
        )
    return indices, distances


def neighbour_weights(distances: np.ndarray) -> np.ndarray:
    """UMAP's membership strengths of each cell's neighbours: ``exp(-(d - rho) / sigma)``, in (0, 1].

    ``rho`` is the distance to the nearest neighbour at a positive distance and ``sigma`` is found
    by bisection so that a row sums to ``log2(n_neighbors)``, as in UMAP's ``smooth_knn_dist``,
    which builds the connectivities of ``sc.pp.neighbors`` that the model was trained on.
    """
    k = distances.shape[1]
    target = np.log2(k)
    positive = np.where(distances > 0, distances, np.inf)
    rho = positive.min(1)
    rho[~np.isfinite(rho)] = 0.0
    excess = np.maximum(distances - rho[:, None], 0.0)
    lo = np.zeros(distances.shape[0])
    hi = np.full(distances.shape[0], np.inf)
    mid = np.ones(distances.shape[0])
    for _ in range(BANDWIDTH_STEPS):
        total = np.exp(-excess / mid[:, None]).sum(1)
        too_wide = total > target
        hi = np.where(too_wide, mid, hi)
        lo = np.where(too_wide, lo, mid)
        mid = np.where(np.isfinite(hi), (lo + hi) / 2, mid * 2)
    sigma = np.maximum(mid, MIN_BANDWIDTH_SCALE * distances.mean(1))
    sigma = np.maximum(sigma, np.finfo(np.float64).tiny)
    return np.exp(-excess / sigma[:, None])


def _map_cells(module, query, reference, indices, weights, model: Mapping) -> tuple[np.ndarray, np.ndarray]:
    """Embedding and soft assignments of the query cells, ``CHUNK_CELLS`` at a time.

    Each chunk is one graph: the reference cells that are some query cell's neighbour (senders,
    their own input features) and the query cells (receivers), with one edge reference -> query
    per neighbour. A query cell's result depends on its features and its neighbours' only.
    """
    settings = model["settings"]
    mean = torch.as_tensor(np.asarray(model["latent_mean"], dtype=np.float32))
    std = torch.as_tensor(np.asarray(model["latent_std"], dtype=np.float32))
    k = np.asarray(model["centres"]).shape[0]
    embedding = np.empty((query.shape[0], int(settings["latent"])), dtype=np.float32)
    proba = np.empty((query.shape[0], k), dtype=np.float32)
    for start in range(0, query.shape[0], CHUNK_CELLS):
        stop = min(start + CHUNK_CELLS, query.shape[0])
        senders, local = np.unique(indices[start:stop], return_inverse=True)
        local = local.reshape(stop - start, -1)
        rows = [reference[senders], query[start:stop]]
        # ok-dense: one chunk of query cells and their reference neighbours x genes
        dense = [r.toarray() if sp.issparse(r) else np.asarray(r) for r in rows]
        features = torch.as_tensor(np.vstack(dense).astype(np.float32, copy=False))
        # neighbours sorted by reference index: the sum over them runs in the same order in any chunk
        order = np.argsort(local, axis=1, kind="stable")
        src = np.take_along_axis(local, order, axis=1).ravel()
        dst = senders.size + np.repeat(np.arange(stop - start), local.shape[1])
        edge_index = torch.as_tensor(np.stack([src, dst]), dtype=torch.long)
        edge_weight = torch.as_tensor(
            np.take_along_axis(weights[start:stop], order, axis=1).ravel(), dtype=torch.float32
        )
        z, q = infer(
            module, features, edge_index, edge_weight, aggregation=float(settings["aggregation"]),
            capacity=float(settings["capacity"]), latent_mean=mean, latent_std=std,
        )  # fmt: skip
        embedding[start:stop] = module.cluster_space(z[senders.size :], mean=mean, std=std).numpy()
        proba[start:stop] = q[senders.size :].numpy()
    return embedding, proba


def _categories(adata_ref: AnnData, key: str, model: Mapping) -> pd.Index:
    """The reference's label names: those of ``obs[key]`` (renamed ones too), else the stored ones."""
    stored = pd.Index(np.asarray(model["categories"], dtype=str))
    labels = adata_ref.obs.get(key)
    if isinstance(labels, pd.Series) and isinstance(labels.dtype, pd.CategoricalDtype):
        if len(labels.cat.categories) == len(stored):
            return labels.cat.categories
    return stored


def ingest(adata_query: AnnData, adata_ref: AnnData, *, key_added: str = "dagcl") -> None:
    """Map new cells onto a reference's trained DAGCL model, as :func:`scanpy.tl.ingest` does for Leiden.

    Each query cell is linked to its ``n_neighbors`` nearest reference cells (the reference
    graph's ``n_neighbors``) in the reference's PCA space: the query is projected with the
    reference's own centring and loadings (``varm["PCs"]``), and the neighbours are found by an
    exact Euclidean search. The query cell is then encoded by the trained graph-attention
    encoder over these neighbours only (the reference cells' own expression as the messages,
    edges weighted by UMAP's membership strengths of the distances, as in the connectivities of
    ``sc.pp.neighbors``), and assigned to the trained cluster centres, standardised with the
    reference's own embedding statistics. Nothing is trained and the reference is not modified;
    each query cell's result depends on that cell alone, not on the others mapped with it.

    Batch effects between query and reference are not corrected. Cells of a type absent from
    the reference are still assigned to one of its clusters, often with high confidence: a low
    confidence marks cells between clusters, not reliably new types.

    Parameters
    ----------
    adata_query
        The new cells, with expression processed like the reference's ``X`` (log-normalised;
        ``sc.pp.normalize_total`` and ``sc.pp.log1p``) for at least the genes the reference was
        clustered on, matched by ``var_names``. It needs no PCA or neighbour graph of its own.
    adata_ref
        The reference, clustered by :func:`dagcl_scverse.tl.cluster` on its genes (not on
        ``use_rep``), as it was clustered.
    key_added
        The key of the reference's clustering (``adata_ref.uns[key_added]["model"]``), and the
        name under which results are written into the query.

    Returns
    -------
    ``None``. Sets, in ``adata_query``,

    ``adata_query.obs[key_added]``
        Categorical cluster labels, with the categories of the reference's ``obs[key_added]``.
    ``adata_query.obs[key_added + "_confidence"]``
        The largest soft-assignment probability of each cell.
    ``adata_query.obsm["X_" + key_added]``
        The embedding, in the reference's latent space.
    ``adata_query.obsm[key_added + "_proba"]``
        Soft assignments (cells x clusters, the reference's column order).
    ``adata_query.obsm["X_umap"]``
        When the reference has a UMAP: each cell at the mean of its reference neighbours' UMAP
        coordinates, weighted by the edge weights.
    ``adata_query.uns[key_added]``
        ``params``: the reference key, ``n_neighbors``, the edge weights, the number of
        reference cells and package versions.

    Examples
    --------
    >>> import scanpy as sc
    >>> import dagcl_scverse as dagcl
    >>> dagcl.tl.cluster(adata_ref, n_clusters=13)
    >>> sc.pp.normalize_total(adata_query, target_sum=1e4)
    ... sc.pp.log1p(adata_query)
    >>> dagcl.tl.ingest(adata_query, adata_ref)
    >>> adata_query.obs["dagcl"].value_counts()
    """
    for name, value in (("adata_query", adata_query), ("adata_ref", adata_ref)):
        if not isinstance(value, AnnData):
            raise TypeError(f"`{name}` must be an AnnData, got {type(value).__name__}.")
    _check_name("key_added", key_added)
    if adata_query is adata_ref:
        raise ValueError("`adata_query` is `adata_ref`; the reference is never modified, pass a copy as the query.")
    if adata_query.n_obs == 0:
        raise ValueError("`adata_query` has no cells.")
    model = read_model(adata_ref, key_added)
    start = logg.info(f"mapping {adata_query.n_obs} cells onto the DAGCL model in adata_ref.uns[{key_added!r}]")

    # Everything is computed before the query is written to; the reference is only read.
    preprocessing = model["preprocessing"]
    names = np.asarray(model["feature_names"], dtype=str)
    layer = preprocessing.get("layer")
    reference = _expression(adata_ref, names, layer, "reference")
    query = _expression(adata_query, names, layer, "query")
    _check_normalisation(query, reference, preprocessing)
    mean = np.asarray(preprocessing["pca_mean"], dtype=np.float64)
    loadings = np.asarray(preprocessing["pca_loadings"], dtype=np.float64)
    n_neighbors = min(int(preprocessing["n_neighbors"]), adata_ref.n_obs)
    indices, distances = nearest_reference_cells(
        project(query, mean, loadings), project(reference, mean, loadings), n_neighbors
    )
    weights = neighbour_weights(distances)
    module = module_from_state(model["settings"], model["state_dict"], np.asarray(model["centres"]))
    embedding, proba = _map_cells(module, query, reference, indices, weights, model)

    categories = _categories(adata_ref, key_added, model)
    labels = pd.Categorical.from_codes(proba[:, : len(categories)].argmax(1), categories=categories)
    umap = None
    if "X_umap" in adata_ref.obsm:
        ref_umap = np.asarray(adata_ref.obsm["X_umap"], dtype=np.float64)
        umap = np.einsum("ij,ijd->id", weights / weights.sum(1, keepdims=True), ref_umap[indices])
    params = {
        "reference_key": key_added,
        "n_neighbors": int(n_neighbors),
        "edge_weights": "umap",
        "n_reference_cells": int(adata_ref.n_obs),
        "versions": _versions(),
    }

    adata_query.obs[key_added] = labels
    adata_query.obs[f"{key_added}_confidence"] = proba.max(1)
    adata_query.obsm[f"X_{key_added}"] = embedding
    adata_query.obsm[f"{key_added}_proba"] = proba
    if umap is not None:
        adata_query.obsm["X_umap"] = umap.astype(np.float32)
    adata_query.uns[key_added] = {"params": params}
    added = f"'{key_added}', '{key_added}_confidence' (obs), 'X_{key_added}', '{key_added}_proba'"
    added += ", 'X_umap' (obsm)" if umap is not None else " (obsm)"
    logg.info("    finished", time=start, deep=f"added to adata_query\n    {added}, '{key_added}' params (uns)")
