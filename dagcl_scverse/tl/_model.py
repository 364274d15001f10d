"""The trained model stored by `dagcl.tl.cluster` in ``uns[key_added]["model"]``, and its reading by `tl.ingest`.

What is stored is what :func:`dagcl_scverse.tl.ingest` needs to map new cells without
retraining: the settings that rebuild the module, its weights and centres, the statistics the
final assignment standardised the embedding with, the names of the genes used as features, and
the preprocessing the reference went through (its normalisation when it can be verified, the
centring and loadings of its PCA, and the number of neighbours of its graph). Everything is a
numpy array, a string or a scalar, so that it survives ``write_h5ad`` / ``read_h5ad``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp
from anndata import AnnData
from scanpy import logging as logg

from dagcl_scverse.model.config import TrainingConfig
from dagcl_scverse.model.inference import MODULE_SETTINGS
from dagcl_scverse.model.trainer import TrainingResult
from dagcl_scverse.tl._inputs import feature_names

#: scanpy's default number of neighbours, used when the graph records none
DEFAULT_N_NEIGHBORS = 15
#: cells whose totals are checked when verifying the reference's normalisation
NORMALISATION_PROBE_ROWS = 1_000
#: relative spread of the probed cells' totals below which they count as one normalisation target
NORMALISATION_RTOL = 1e-3
#: largest deviation from obsm["X_pca"], relative to its largest entry, of the stored PCA projection
PCA_RTOL = 1e-3
#: cells handled at a time by the projections and the mapping of new cells
CHUNK_CELLS = 2_000


def project(matrix, mean: np.ndarray, loadings: np.ndarray, *, chunk: int = CHUNK_CELLS) -> np.ndarray:
    """``(matrix - mean) @ loadings`` in float64, ``chunk`` rows at a time (``matrix`` dense or sparse)."""
    out = np.empty((matrix.shape[0], loadings.shape[1]), dtype=np.float64)
    for start in range(0, matrix.shape[0], chunk):
        rows = matrix[start : start + chunk]
        # ok-dense: one chunk of cells x genes
        rows = rows.toarray() if sp.issparse(rows) else np.asarray(rows)
        out[start : start + chunk] = (rows.astype(np.float64) - mean) @ loadings
    return out


def _unavailable(reason: str) -> dict:
    return {"available": False, "reason": reason}


def _pca_space(adata: AnnData, features, n_pcs: int | None) -> tuple[np.ndarray, np.ndarray] | str:
    """``(mean, loadings)`` with ``(features - mean) @ loadings == obsm["X_pca"][:, :n_pcs]``, or why there are none."""
    if "X_pca" not in adata.obsm or "PCs" not in adata.varm:
        return "the reference has no PCA (obsm['X_pca'] and varm['PCs']); run `sc.pp.pca` before `dagcl.tl.cluster`"
    x_pca = np.asarray(adata.obsm["X_pca"], dtype=np.float64)
    n_pcs = x_pca.shape[1] if n_pcs is None else min(int(n_pcs), x_pca.shape[1])
    names = feature_names(adata)
    loadings = np.asarray(adata.varm["PCs"], dtype=np.float64)[adata.var_names.get_indexer(names), :n_pcs]
    record = adata.uns.get("pca")
    params = record.get("params") if isinstance(record, Mapping) else None
    zero_center = params.get("zero_center", True) if isinstance(params, Mapping) else True
    mean = np.asarray(features.mean(0, dtype=np.float64)).ravel() if zero_center else np.zeros(features.shape[1])
    deviation = np.abs(project(features, mean, loadings) - x_pca[:, :n_pcs]).max()
    if deviation > PCA_RTOL * max(1.0, float(np.abs(x_pca[:, :n_pcs]).max())):
        return (
            "the reference's PCA (varm['PCs']) was not computed from the clustered features; run "
            "`sc.pp.pca` on them (same genes, same layer) before `dagcl.tl.cluster`"
        )
    return mean, loadings


def _normalisation(adata: AnnData) -> dict:
    """``log1p`` (natural) and ``target_sum`` of ``normalize_total``, as far as they can be verified.

    ``log1p`` is scanpy's record in ``uns["log1p"]``; the target sum is the common total of the
    un-logged ``adata.raw`` (kept by the standard pipeline before the highly variable genes subset).
    """
    record = adata.uns.get("log1p")
    if not isinstance(record, Mapping) or record.get("base") is not None:
        return {"log1p": False}
    found = {"log1p": True}
    if adata.raw is None or adata.raw.n_obs != adata.n_obs:
        return found
    probe = adata.raw.X[:NORMALISATION_PROBE_ROWS]
    if sp.issparse(probe):
        probe = probe.tocsr(copy=True)
        probe.data = np.expm1(probe.data.astype(np.float64))
        totals = np.asarray(probe.sum(1)).ravel()
    else:
        totals = np.expm1(np.asarray(probe, dtype=np.float64)).sum(1)
    target = float(np.median(totals)) if totals.size else 0.0
    if target > 0 and np.all(np.abs(totals - target) <= NORMALISATION_RTOL * target):
        found["target_sum"] = float(f"{target:.4g}")
    return found


def _graph_settings(adata: AnnData, neighbors_key: str | None, obsp: str | None) -> tuple[int, int | None]:
    """``(n_neighbors, n_pcs)`` of the reference's graph, from ``uns[neighbors_key]["params"]``."""
    entry = adata.uns.get("neighbors" if neighbors_key is None else neighbors_key) if obsp is None else None
    params = entry.get("params", {}) if isinstance(entry, Mapping) else {}
    if "n_neighbors" not in params:
        logg.info(
            f"    the graph records no n_neighbors; new cells will be linked to {DEFAULT_N_NEIGHBORS} reference cells"
        )
    n_pcs = params.get("n_pcs") if params.get("use_rep", "X_pca") == "X_pca" else None
    # older h5ad files (scanpy's pbmc68k_reduced) store these scalars as 1-element arrays
    n_neighbors = int(np.ravel(params.get("n_neighbors", DEFAULT_N_NEIGHBORS))[0])
    return n_neighbors, None if n_pcs is None else int(np.ravel(n_pcs)[0])


def model_entry(
    adata: AnnData,
    features,
    result: TrainingResult,
    config: TrainingConfig,
    *,
    layer: str | None,
    use_rep: str | None,
    neighbors_key: str | None,
    obsp: str | None,
) -> dict:
    """``uns[key]["model"]`` without the centres, which :func:`~._results.write_results` adds in label order.

    A reference clustered on ``use_rep``, or without a PCA of its features, gets
    ``{"available": False, "reason": ...}``: its model cannot map new cells.
    """
    if use_rep is not None:
        return _unavailable(
            f"it was clustered on `use_rep={use_rep!r}`, not on genes; cluster the reference on its genes "
            "(without `use_rep`)"
        )
    n_neighbors, n_pcs = _graph_settings(adata, neighbors_key, obsp)
    pca = _pca_space(adata, features, n_pcs)
    if isinstance(pca, str):
        logg.info(f"    no model for `dagcl.tl.ingest` is stored: {pca}")
        return _unavailable(pca)
    settings = {
        "n_features": int(features.shape[1]),
        "hidden": int(config.hidden),
        "attention_channels": int(config.attention_channels),
        "latent": int(config.latent),
        "student_t_dof": float(config.student_t_dof),
        "learn_temperature": bool(config.dynamic_attention),
        "aggregation": float(result.aggregation),
        "capacity": float(result.capacity),
    }
    preprocessing = {
        "pca_mean": pca[0].astype(np.float32),
        "pca_loadings": pca[1].astype(np.float32),
        "n_neighbors": n_neighbors,
    }
    if layer is None:
        preprocessing.update(_normalisation(adata))
    else:
        preprocessing.update(layer=layer, log1p=False)
    return {
        "available": True,
        "settings": settings,
        "state_dict": dict(result.state_dict),
        "latent_mean": result.latent_mean.astype(np.float32),
        "latent_std": result.latent_std.astype(np.float32),
        "feature_names": feature_names(adata),
        "preprocessing": preprocessing,
        "n_cells": int(adata.n_obs),
    }


def read_model(adata_ref: AnnData, key: str) -> dict:
    """The model stored in ``adata_ref.uns[key]["model"]``, checked; errors name `dagcl.tl.cluster`."""
    entry = adata_ref.uns.get(key)
    if not isinstance(entry, Mapping):
        raise KeyError(
            f"`adata_ref.uns[{key!r}]` does not exist: cluster the reference first with "
            f"`dagcl.tl.cluster(adata_ref, key_added={key!r})`."
        )
    model = entry.get("model")
    if not isinstance(model, Mapping):
        raise KeyError(
            f"`adata_ref.uns[{key!r}]` holds no trained model (it was clustered by an older dagcl-scverse, or the "
            f"model was removed); re-run `dagcl.tl.cluster(adata_ref, key_added={key!r})`."
        )
    if not bool(model.get("available", False)):
        reason = model.get("reason", "no usable model was stored")
        raise ValueError(f"The reference's DAGCL model cannot map new cells: {reason}, then re-run `dagcl.tl.cluster`.")
    required = (
        "settings",
        "state_dict",
        "centres",
        "latent_mean",
        "latent_std",
        "feature_names",
        "preprocessing",
        "n_cells",
    )
    missing = [name for name in required if name not in model]
    settings_missing = [
        name for name in (*MODULE_SETTINGS, "aggregation", "capacity") if name not in model.get("settings", {})
    ]
    if missing or settings_missing:
        raise KeyError(
            f"`adata_ref.uns[{key!r}]['model']` is incomplete (missing {', '.join(missing + settings_missing)}); "
            "re-run `dagcl.tl.cluster`."
        )
    if int(model["n_cells"]) != adata_ref.n_obs:
        raise ValueError(
            f"The reference has {adata_ref.n_obs} cells, but its DAGCL model was trained on {int(model['n_cells'])}: "
            "pass the reference as it was clustered (not a subset), or re-run `dagcl.tl.cluster` on it."
        )
    return model
