"""`dagcl.tl.cluster`: the AnnData boundary of DAGCL training."""

from __future__ import annotations

import traceback

import numpy as np
import torch
from anndata import AnnData
from scanpy import logging as logg

from dagcl_scverse.model.config import TrainingConfig
from dagcl_scverse.model.determinism import deterministic_algorithms
from dagcl_scverse.model.distributed import train_in_processes
from dagcl_scverse.model.trainer import TrainingResult, train
from dagcl_scverse.model.world import World
from dagcl_scverse.tl._checks import check_cluster_arguments
from dagcl_scverse.tl._inputs import get_features, get_graph, graph_to_edges
from dagcl_scverse.tl._model import model_entry
from dagcl_scverse.tl._results import added_message, resolved_params, write_results
from dagcl_scverse.tl._settings import (
    resolve_config,
    resolve_device,
    resolve_n_clusters,
    stage_cells,
)

#: torch>=2.5 raises torch.OutOfMemoryError for CUDA and CPU allocations; older torch only the CUDA one
OUT_OF_MEMORY_ERROR = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError


def out_of_memory_advice(device: torch.device, n_cells: int, n_features: int) -> str:
    """What to try after running out of memory while training."""
    tips = [
        "fewer features (e.g. `sc.pp.highly_variable_genes(adata, n_top_genes=1000, subset=True)`)",
        "`use_rep='X_pca'` (train on the principal components instead of genes)",
    ]
    if device.type == "cuda":
        tips.append("`accelerator='cpu'` (slower, but uses main memory)")
    return (
        f"DAGCL ran out of {device.type.upper()} memory training on {n_cells} cells x {n_features} features. "
        f"Try {'; or '.join(tips)}. `adata` was not modified."
    )


def _train(
    features: np.ndarray,
    edge_index: np.ndarray,
    edge_weight: np.ndarray,
    config: TrainingConfig,
    *,
    device: torch.device,
    deterministic: bool,
    progress_bar: bool,
    stage_indices: np.ndarray | None,
    nproc: int,
) -> TrainingResult:
    """Train on the graph's edges; an out-of-memory error comes back with advice, its memory freed."""
    world = World.current()
    processes = world.size if world.size > 1 else nproc
    batches = "full-batch" if config.batch_size is None else f"batches of {config.batch_size}"
    logg.info(
        f"    {features.shape[0]} cells, {features.shape[1]} features, {edge_index.shape[1]} edges, "
        f"k={config.n_clusters}, {config.pretrain_epochs}+{config.epochs} epochs ({batches}) on {device.type}"
        + (f", {processes} processes" if processes > 1 else "")
    )
    arguments = (features, edge_index, edge_weight, config)
    options = {"device": device, "progress_bar": progress_bar, "stage_indices": stage_indices}
    try:
        with deterministic_algorithms(device, deterministic):
            if world.size == 1 and nproc > 1:
                return train_in_processes(*arguments, nproc=nproc, **options)
            return train(*arguments, world=world, **options)
    except OUT_OF_MEMORY_ERROR as err:
        # The failed step's frames still hold the model and its tensors; free them so that a
        # retry in the same session gets the memory back.
        traceback.clear_frames(err.__traceback__)
        if device.type == "cuda":
            torch.cuda.empty_cache()
        raise OUT_OF_MEMORY_ERROR(out_of_memory_advice(device, features.shape[0], features.shape[1])) from err


def cluster(
    adata: AnnData,
    n_clusters: int | None = None,
    *,
    layer: str | None = None,
    use_rep: str | None = None,
    neighbors_key: str | None = None,
    obsp: str | None = None,
    key_added: str = "dagcl",
    epochs: int | None = None,
    pretrain_epochs: int | None = None,
    batch_size: int | None = None,
    nproc: int = 1,
    lr: float = 1e-3,
    schedule: str = "convex",
    dynamic_attention: bool = True,
    curriculum: bool = True,
    balance: bool = True,
    stages: int = 3,
    random_state: int = 0,
    deterministic: bool = False,
    accelerator: str = "auto",
    progress_bar: bool = True,
    copy: bool = False,
) -> AnnData | None:
    """Cluster cells with DAGCL, a curriculum graph-attention deep clustering method.

    A graph-attention autoencoder is first pre-trained on the neighbour graph (reconstruction,
    decorrelation of latent dimensions, graph smoothness), then self-trained with a Student-t
    soft assignment pulled toward Sinkhorn-balanced targets, under a KL weight that rises with
    training progress, on a growing share of the most confident cells.

    Parameters
    ----------
    adata
        Annotated data matrix with a neighbour graph (``sc.pp.neighbors``).
    n_clusters
        Number of clusters; ``None`` estimates it with Leiden (igraph, resolution 1) on the graph.
    layer
        Use ``adata.layers[layer]`` as features instead of ``adata.X``.
    use_rep
        Use ``adata.obsm[use_rep]`` as features (e.g. ``"X_pca"``).
    neighbors_key
        The graph is ``adata.uns[neighbors_key]["connectivities_key"]`` (default ``"neighbors"``).
    obsp
        Use ``adata.obsp[obsp]`` as the graph; exclusive with ``neighbors_key``.
    key_added
        Name under which results are stored (see below).
    epochs
        Self-training epochs; ``None`` picks a size-aware default.
    pretrain_epochs
        Pre-training epochs; ``None`` picks a size-aware default.
    batch_size
        Seed cells per step (an epoch is one pass over all cells); ``None``: full-batch up to
        65,536 cells, batches of at most 65,536 above.
    nproc
        Train data-parallel in this many processes here (torch.distributed); within torchrun, its size.
    lr
        Adam learning rate. In self-training a mini-batch step uses ``lr / steps_per_epoch``, so
        that an epoch moves the weights about as far in any batch size.
    schedule
        KL weight over self-training: ``"linear"``, ``"convex"``, ``"concave"``, ``"composite"``, ``"constant"``.
    dynamic_attention
        Grow aggregation and channel capacity, learn the attention temperature (``False``: static).
    curriculum
        Let only the most confident, growing share of cells drive the KL term.
    balance
        Balance targets with Sinkhorn optimal transport toward the estimated cluster sizes.
    stages
        Snapshots of embedding and labels over self-training for ``dagcl.pl.stages`` (0: none).
    random_state
        Seed (0 to 2**32 - 1); the same seed gives the same labels and embedding on CPU.
    deterministic
        On CUDA, train with deterministic kernels (``torch.use_deterministic_algorithms``, restored
        afterwards): repeated runs on one GPU agree, at some cost in speed. CPU runs always do.
    accelerator
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"gpu"``.
    progress_bar
        Show a progress bar over epochs.
    copy
        Return a new AnnData instead of writing into ``adata``.

    Returns
    -------
    ``None``, or a new AnnData when ``copy=True``. Sets

    ``adata.obs[key_added]``
        Categorical cluster labels ``"0"``, ``"1"``, ... ordered by size.
    ``adata.obs[key_added + "_confidence"]``
        The largest soft-assignment probability of each cell (the row maximum of
        ``obsm[key_added + "_proba"]``); low values mark cells between clusters
        (see ``dagcl.pl.confidence``).
    ``adata.obsm["X_" + key_added]``
        The learned embedding, standardised per dimension: the space in which the soft
        assignment is computed (``sc.pp.neighbors(adata, use_rep="X_dagcl")`` reads it as is).
    ``adata.obsm[key_added + "_proba"]``
        Soft assignments (cells x n_clusters, columns in label order, rows sum to 1).
    ``adata.uns[key_added]``
        ``params`` (resolved settings, versions), ``history`` (per-epoch traces), ``initial_labels``,
        ``start_labels`` (the labels ``epochs=1`` gives: the start of self-training), ``stages``
        (when ``stages > 0``), ``timings`` (seconds per epoch) and ``model`` (what
        :func:`dagcl_scverse.tl.ingest` reads; ``{"available": False, ...}`` after ``use_rep``).

    Examples
    --------
    >>> import scanpy as sc
    >>> import dagcl_scverse as dagcl
    >>> adata = dagcl.datasets.mouse_pancreas()
    >>> sc.pp.normalize_total(adata, target_sum=1e4)
    ... sc.pp.log1p(adata)
    >>> sc.pp.highly_variable_genes(adata, n_top_genes=2000, subset=True)
    >>> sc.pp.pca(adata, n_comps=50)
    ... sc.pp.neighbors(adata, n_neighbors=15)
    >>> dagcl.tl.cluster(adata, n_clusters=13)
    >>> adata.obs["dagcl"].value_counts()
    """
    start = logg.info("running DAGCL clustering")
    # Every check runs before training, and nothing is written until training has finished.
    switches = {"dynamic_attention": dynamic_attention, "curriculum": curriculum, "balance": balance}
    check_cluster_arguments(
        adata, n_clusters, key_added=key_added, schedule=schedule, epochs=epochs, pretrain_epochs=pretrain_epochs,
        lr=lr, stages=stages, random_state=random_state, batch_size=batch_size, nproc=nproc,
        switches={**switches, "deterministic": deterministic, "progress_bar": progress_bar, "copy": copy},
    )  # fmt: skip
    device = resolve_device(accelerator)
    features = get_features(adata, layer=layer, use_rep=use_rep)
    graph = get_graph(adata, neighbors_key=neighbors_key, obsp=obsp)
    edge_index, edge_weight = graph_to_edges(graph)
    n_clusters, estimated = resolve_n_clusters(n_clusters, graph, adata.n_obs, random_state)
    config = resolve_config(
        adata.n_obs, n_clusters, epochs=epochs, pretrain_epochs=pretrain_epochs, stages=stages, use_rep=use_rep,
        lr=float(lr), schedule=schedule, random_state=random_state, batch_size=batch_size, **switches,
    )  # fmt: skip
    stages = len(config.stage_progress)
    result = _train(
        features, edge_index, edge_weight, config, device=device, deterministic=deterministic, progress_bar=progress_bar,
        stage_indices=stage_cells(adata.n_obs, stages, random_state), nproc=nproc,
    )  # fmt: skip

    # Training has succeeded: every output is assembled, then all are written at once.
    names = {"layer": layer, "use_rep": use_rep, "neighbors_key": neighbors_key, "obsp": obsp}
    params = resolved_params(
        config, result, estimated=estimated, accelerator=accelerator, device=device, deterministic=deterministic,
        n_features=features.shape[1], stages=stages, names=names,
    )  # fmt: skip
    model = model_entry(
        adata, features, result, config, layer=layer, use_rep=use_rep, neighbors_key=neighbors_key, obsp=obsp
    )
    # A view becomes its own AnnData here (anndata warns), as with scanpy's tools.
    adata = adata.copy() if copy else adata
    write_results(adata, result, params, key_added, model)
    logg.info("    finished", time=start, deep=added_message(key_added))
    return adata if copy else None
