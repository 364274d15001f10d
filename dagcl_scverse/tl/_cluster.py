"""`dagcl.tl.cluster`: the AnnData boundary of DAGCL training."""

from __future__ import annotations

import os
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from numbers import Integral, Real

import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse as sp
import torch
from anndata import AnnData
from scanpy import logging as logg

from dagcl_scverse.model.config import TrainingConfig
from dagcl_scverse.model.schedules import SCHEDULES
from dagcl_scverse.model.trainer import train

from ._inputs import get_features, get_graph, graph_to_edges

ACCELERATORS = ("auto", "cpu", "cuda", "gpu")
MAX_STAGE_CELLS = 20_000
#: Leiden's igraph seeding (numpy RandomState) takes 32-bit seeds
MAX_RANDOM_STATE = 2**32 - 1
#: torch>=2.5 raises torch.OutOfMemoryError for CUDA and CPU allocations; older torch only the CUDA one
OUT_OF_MEMORY_ERROR = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError


def default_epochs(n_cells: int) -> tuple[int, int]:
    """Size-aware ``(pretrain_epochs, epochs)``.

    One epoch is one full-graph step, so the largest data sets (less noisy gradients, more
    time per step) get fewer epochs.
    """
    if n_cells <= 20_000:
        return 100, 100
    return 75, 75


def resolve_device(accelerator: str) -> torch.device:
    """Map ``"auto"``/``"cpu"``/``"cuda"``/``"gpu"`` to a torch device."""
    if accelerator not in ACCELERATORS:
        raise ValueError(f"Unknown accelerator {accelerator!r}; choose one of {', '.join(ACCELERATORS)}.")
    if accelerator == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if accelerator in ("cuda", "gpu"):
        if not torch.cuda.is_available():
            raise ValueError(
                f"accelerator={accelerator!r} but torch sees no CUDA device; use accelerator='cpu' or 'auto'."
            )
        return torch.device("cuda")
    return torch.device("cpu")


@contextmanager
def deterministic_algorithms(device: torch.device, enabled: bool) -> Iterator[None]:
    """On CUDA, make torch pick deterministic kernels while the block runs; restore the previous mode after.

    CPU training is deterministic already, so nothing changes there. On CUDA, PyG's sum
    aggregation and softmax go through ``scatter_add_`` / ``scatter_reduce_`` and
    ``index_select``, which torch replaces by deterministic kernels in this mode. ``warn_only``
    keeps a long run alive if some other operation has no deterministic kernel: torch then
    warns and names it. cuBLAS needs ``CUBLAS_WORKSPACE_CONFIG`` set for reproducible matmuls.
    """
    if not enabled or device.type != "cuda":
        yield
        return
    previous_mode = torch.are_deterministic_algorithms_enabled()
    previous_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    previous_cublas = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    if previous_cublas is None:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous_mode, warn_only=previous_warn_only)
        if previous_cublas is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)


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


def estimate_n_clusters(graph, random_state: int) -> int:
    """Number of Leiden (igraph flavour, resolution 1) communities on ``graph``."""
    between_cells = sp.csr_matrix(graph - sp.diags(graph.diagonal()))
    between_cells.eliminate_zeros()
    if between_cells.nnz == 0:
        raise ValueError(
            "The graph has no edges between cells, so the number of clusters cannot be estimated; "
            "pass `n_clusters`, or re-run `sc.pp.neighbors`."
        )
    tmp = AnnData(obs=pd.DataFrame(index=np.arange(graph.shape[0]).astype(str)))
    sc.tl.leiden(tmp, adjacency=graph, flavor="igraph", n_iterations=2, directed=False, random_state=random_state)
    return int(tmp.obs["leiden"].nunique())


def _check_positive_int(name: str, value, *, minimum: int = 1, maximum: int | None = None) -> None:
    if isinstance(value, bool | np.bool_) or not isinstance(value, Integral):
        raise TypeError(f"`{name}` must be an integer, got {type(value).__name__}.")
    if value < minimum:
        raise ValueError(f"`{name}` must be at least {minimum}, got {value}.")
    if maximum is not None and value > maximum:
        raise ValueError(f"`{name}` must be at most {maximum}, got {value}.")


def _check_bool(name: str, value) -> None:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"`{name}` must be True or False, got {value!r}.")


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
        Number of clusters. ``None`` estimates it with Leiden (igraph flavour, resolution 1)
        on the same graph.
    layer
        Use ``adata.layers[layer]`` as features instead of ``adata.X``.
    use_rep
        Use ``adata.obsm[use_rep]`` as features (e.g. ``"X_pca"``).
    neighbors_key
        Where to find the graph: ``adata.uns[neighbors_key]["connectivities_key"]``
        (default ``"neighbors"``).
    obsp
        Use ``adata.obsp[obsp]`` as the graph; exclusive with ``neighbors_key``.
    key_added
        Name under which results are stored (see below).
    epochs
        Self-training epochs; ``None`` picks a size-aware default.
    pretrain_epochs
        Pre-training epochs; ``None`` picks a size-aware default.
    lr
        Adam learning rate.
    schedule
        Shape of the KL weight over self-training: ``"linear"``, ``"convex"``, ``"concave"``,
        ``"composite"`` or ``"constant"`` (no schedule).
    dynamic_attention
        Grow aggregation strength and channel capacity with training and learn the attention
        temperature; ``False`` gives a static attention layer.
    curriculum
        Let only the most confident, growing share of cells drive the KL term.
    balance
        Balance targets with Sinkhorn optimal transport toward the estimated cluster sizes.
    stages
        Number of snapshots of embedding and labels over self-training kept for
        ``dagcl.pl.stages`` (0 keeps none).
    random_state
        Seed (0 to 2**32 - 1); the same seed gives the same labels and embedding on CPU.
    deterministic
        On CUDA, use deterministic kernels (``torch.use_deterministic_algorithms``) during
        training, so that repeated runs on the same GPU give the same result, at some cost
        in speed. The previous torch setting is restored afterwards. CPU runs are
        deterministic anyway.
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
    ``adata.obsm["X_" + key_added]``
        The learned embedding.
    ``adata.obsm[key_added + "_proba"]``
        Soft assignments (cells x n_clusters, columns in label order, rows sum to 1).
    ``adata.uns[key_added]``
        ``params`` (resolved settings and versions), ``history`` (per-epoch traces) and
        ``stages`` (snapshots, when ``stages > 0``).

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
    if not isinstance(adata, AnnData):
        raise TypeError(f"`adata` must be an AnnData, got {type(adata).__name__}.")
    if adata.n_obs < 2:
        raise ValueError(
            f"DAGCL needs at least 2 cells, got {adata.n_obs}; check the filtering or subsetting "
            "that produced this AnnData."
        )
    if not isinstance(key_added, str):
        raise TypeError(f"`key_added` must be a string, got {type(key_added).__name__}.")
    if not key_added:
        raise ValueError("`key_added` must not be empty; it names the results, e.g. 'dagcl'.")
    if not isinstance(schedule, str) or schedule not in SCHEDULES:
        raise ValueError(f"Unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}.")
    for name, value in (("epochs", epochs), ("pretrain_epochs", pretrain_epochs)):
        if value is not None:
            _check_positive_int(name, value)
    if isinstance(lr, bool | np.bool_) or not isinstance(lr, Real):
        raise TypeError(f"`lr` must be a number, got {type(lr).__name__}.")
    if not np.isfinite(lr) or lr <= 0:
        raise ValueError(f"`lr` must be a positive number, got {lr!r}.")
    _check_positive_int("stages", stages, minimum=0)
    _check_positive_int("random_state", random_state, minimum=0, maximum=MAX_RANDOM_STATE)
    for name, value in (
        ("dynamic_attention", dynamic_attention),
        ("curriculum", curriculum),
        ("balance", balance),
        ("deterministic", deterministic),
        ("progress_bar", progress_bar),
        ("copy", copy),
    ):
        _check_bool(name, value)
    if n_clusters is not None:
        _check_positive_int("n_clusters", n_clusters, minimum=2)
        if n_clusters > adata.n_obs:
            raise ValueError(
                f"`n_clusters={n_clusters}` exceeds the number of cells ({adata.n_obs}); pass at most {adata.n_obs}."
            )
    device = resolve_device(accelerator)

    features = get_features(adata, layer=layer, use_rep=use_rep)
    graph = get_graph(adata, neighbors_key=neighbors_key, obsp=obsp)
    edge_index, edge_weight = graph_to_edges(graph)

    estimated = n_clusters is None
    if estimated:
        n_clusters = estimate_n_clusters(graph, random_state)
        if n_clusters < 2:
            raise ValueError(
                f"Leiden found {n_clusters} cluster on this graph, so the number of clusters cannot be "
                "estimated; pass `n_clusters` explicitly."
            )
        n_clusters = min(n_clusters, adata.n_obs)
        logg.info(f"    estimated n_clusters={n_clusters} with Leiden (resolution 1)")
    # Snapshots are taken at distinct self-training epochs, so there can be no more than epochs.
    self_epochs = default_epochs(adata.n_obs)[1] if epochs is None else epochs
    if stages > self_epochs:
        logg.warning(f"`stages={stages}` exceeds the {self_epochs} self-training epochs; keeping {self_epochs}.")
        stages = self_epochs
    default_pre, default_self = default_epochs(adata.n_obs)
    config = TrainingConfig(
        n_clusters=n_clusters,
        pretrain_epochs=default_pre if pretrain_epochs is None else pretrain_epochs,
        epochs=default_self if epochs is None else epochs,
        lr=float(lr),
        schedule=schedule,
        dynamic_attention=dynamic_attention,
        curriculum=curriculum,
        balance=balance,
        random_state=random_state,
        # expression values are standardised for the initial partition as scanpy does before its
        # PCA; a representation the user chose (use_rep, e.g. PCs) is taken as it is
        init_space="input_pca" if use_rep is not None else "input_pca_scaled",
        stage_progress=tuple(np.linspace(0.0, 1.0, stages)) if stages > 1 else ((1.0,) if stages else ()),
    )
    stage_indices = None
    if stages:
        rng = np.random.default_rng(random_state)
        n_keep = min(adata.n_obs, MAX_STAGE_CELLS)
        stage_indices = np.sort(rng.choice(adata.n_obs, n_keep, replace=False))
    logg.info(
        f"    {adata.n_obs} cells, {features.shape[1]} features, {edge_index.shape[1]} edges, "
        f"k={n_clusters}, {config.pretrain_epochs}+{config.epochs} epochs on {device.type}"
    )

    try:
        with deterministic_algorithms(device, deterministic):
            result = train(
                features,
                edge_index,
                edge_weight,
                config,
                device=device,
                progress_bar=progress_bar,
                stage_indices=stage_indices,
            )
    except OUT_OF_MEMORY_ERROR as err:
        # The failed step's frames still hold the model and its tensors; free them so that a
        # retry in the same session gets the memory back.
        traceback.clear_frames(err.__traceback__)
        if device.type == "cuda":
            torch.cuda.empty_cache()
        raise OUT_OF_MEMORY_ERROR(out_of_memory_advice(device, adata.n_obs, features.shape[1])) from err

    # Training has succeeded: assemble every output first, then write them all at once.
    order = _relabel_by_size(result.labels, n_clusters)
    new_of_old = np.empty_like(order)
    new_of_old[order] = np.arange(n_clusters)
    labels = new_of_old[result.labels]
    n_found = int(labels.max()) + 1
    history = dict(result.history)
    history["cluster_sizes"] = history["cluster_sizes"][:, order]
    history["epoch"] = history["epoch"].astype(np.int64)
    history["phase"] = history["phase"].astype(np.int64)

    params = {
        "n_clusters": int(n_clusters),
        "n_clusters_estimated": bool(estimated),
        "epochs": int(config.epochs),
        "pretrain_epochs": int(config.pretrain_epochs),
        "lr": float(config.lr),
        "schedule": schedule,
        "dynamic_attention": bool(dynamic_attention),
        "curriculum": bool(curriculum),
        "balance": bool(balance),
        "init_space": config.init_space,
        "stages": int(stages),
        "random_state": int(random_state),
        "deterministic": bool(deterministic),
        "accelerator": accelerator,
        "device": device.type,
        "n_features": int(features.shape[1]),
        "versions": _versions(),
    }
    for name, value in (("layer", layer), ("use_rep", use_rep), ("neighbors_key", neighbors_key), ("obsp", obsp)):
        if value is not None:
            params[name] = value
    uns_entry = {"params": params, "history": history}
    if result.initial_labels is not None:
        uns_entry["initial_labels"] = new_of_old[result.initial_labels]
    if result.stages is not None:
        stage = dict(result.stages)
        stage["labels"] = new_of_old[stage["labels"]]
        uns_entry["stages"] = stage
    categorical = pd.Categorical(labels.astype(str), categories=[str(i) for i in range(n_found)])
    proba = result.proba[:, order]

    # A view becomes its own AnnData here (anndata warns), as with scanpy's tools.
    adata = adata.copy() if copy else adata
    adata.obs[key_added] = categorical
    adata.obsm[f"X_{key_added}"] = result.embedding
    adata.obsm[f"{key_added}_proba"] = proba
    adata.uns[key_added] = uns_entry
    logg.info(
        "    finished",
        time=start,
        deep=(
            f"added\n    '{key_added}', the cluster labels (adata.obs, categorical)\n"
            f"    'X_{key_added}', the embedding (adata.obsm)\n"
            f"    '{key_added}_proba', soft assignments (adata.obsm)\n"
            f"    '{key_added}', params, history and stages (adata.uns)"
        ),
    )
    return adata if copy else None
