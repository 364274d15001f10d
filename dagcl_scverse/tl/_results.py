"""Result writing of `dagcl.tl.cluster`: labels ordered by size, params, history, snapshots."""

from __future__ import annotations

from importlib import metadata

import numpy as np
import pandas as pd
import torch
from anndata import AnnData

from dagcl_scverse.model.config import TrainingConfig
from dagcl_scverse.model.trainer import TrainingResult


def _versions() -> dict[str, str]:
    from dagcl_scverse import __version__

    versions = {"dagcl_scverse": __version__}
    for package in ("torch", "torch_geometric", "scanpy", "anndata"):
        versions[package] = metadata.version(package.replace("_", "-"))
    return versions


def _relabel_by_size(labels: np.ndarray, k: int) -> np.ndarray:
    """Permutation ``order`` with ``order[new] = old``: cluster 0 is the largest, as in Leiden."""
    counts = np.bincount(labels, minlength=k)
    return np.argsort(-counts, kind="stable")


def resolved_params(
    config: TrainingConfig,
    result: TrainingResult,
    *,
    estimated: bool,
    accelerator: str,
    device: torch.device,
    deterministic: bool,
    n_features: int,
    stages: int,
    names: dict[str, str | None],
) -> dict:
    """``uns[key]["params"]``: every setting as resolved; the unset optional ``names`` are left out."""
    params = {
        "n_clusters": int(config.n_clusters),
        "n_clusters_estimated": bool(estimated),
        "epochs": int(config.epochs),
        "pretrain_epochs": int(config.pretrain_epochs),
        "lr": float(config.lr),
        "schedule": config.schedule,
        "dynamic_attention": bool(config.dynamic_attention),
        "curriculum": bool(config.curriculum),
        "balance": bool(config.balance),
        "init_space": config.init_space,
        # size-aware, as the epochs are (50 up to 65,536 cells)
        "carry_steps": int(config.carry_steps),
        "stages": int(stages),
        "random_state": int(config.random_state),
        "deterministic": bool(deterministic),
        "accelerator": accelerator,
        "device": device.type,
        "n_features": int(n_features),
        # seed cells per step as trained (the cells of the largest batch), one epoch = one pass over all cells
        "batch_size": int(result.batch_size),
        "steps_per_epoch": int(result.steps_per_epoch),
        "world_size": int(result.world_size),
        "versions": _versions(),
    }
    params.update({name: value for name, value in names.items() if value is not None})
    return params


def write_results(
    adata: AnnData, result: TrainingResult, params: dict, key_added: str, model: dict | None = None
) -> None:
    """Write labels (cluster 0 the largest), confidence, embedding, soft assignments and ``uns[key_added]``.

    ``model`` (from :func:`~._model.model_entry`) is stored as ``uns[key_added]["model"]``, with
    the centres in label order and the label names. Every output is assembled before the first
    one is written.
    """
    k = params["n_clusters"]
    order = _relabel_by_size(result.labels, k)
    new_of_old = np.empty_like(order)
    new_of_old[order] = np.arange(k)
    labels = new_of_old[result.labels]
    history = dict(result.history)
    history["cluster_sizes"] = history["cluster_sizes"][:, order]
    history["epoch"] = history["epoch"].astype(np.int64)
    history["phase"] = history["phase"].astype(np.int64)
    uns_entry = {"params": params, "history": history}
    if result.timings:
        uns_entry["timings"] = dict(result.timings)
    if result.initial_labels is not None:
        uns_entry["initial_labels"] = new_of_old[result.initial_labels]
    if result.start_labels is not None:
        uns_entry["start_labels"] = new_of_old[result.start_labels]
    if result.stages is not None:
        stage = dict(result.stages)
        stage["labels"] = new_of_old[stage["labels"]]
        uns_entry["stages"] = stage
    n_found = int(labels.max()) + 1
    categorical = pd.Categorical(labels.astype(str), categories=[str(i) for i in range(n_found)])
    proba = result.proba[:, order]
    confidence = proba.max(axis=1)
    if model is not None:
        model = dict(model)
        if model.get("available", False):
            model["centres"] = np.ascontiguousarray(result.centres[order], dtype=np.float32)
            model["categories"] = np.asarray(categorical.categories, dtype=str)
        uns_entry["model"] = model

    adata.obs[key_added] = categorical
    adata.obs[f"{key_added}_confidence"] = confidence
    adata.obsm[f"X_{key_added}"] = result.embedding
    adata.obsm[f"{key_added}_proba"] = proba
    adata.uns[key_added] = uns_entry


def added_message(key_added: str) -> str:
    """What :func:`write_results` added, for scanpy's ``deep`` log message."""
    return (
        f"added\n    '{key_added}', the cluster labels (adata.obs, categorical)\n"
        f"    '{key_added}_confidence', the largest soft-assignment probability of each cell (adata.obs)\n"
        f"    'X_{key_added}', the embedding (adata.obsm)\n"
        f"    '{key_added}_proba', soft assignments (adata.obsm)\n"
        f"    '{key_added}', params, history, stages and the trained model (adata.uns)"
    )
