"""Settings resolution of `dagcl.tl.cluster`: device, number of clusters, epochs, the training config."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse as sp
import torch
from anndata import AnnData
from scanpy import logging as logg

from dagcl_scverse.model.config import TrainingConfig
from dagcl_scverse.model.size_defaults import size_defaults

ACCELERATORS = ("auto", "cpu", "cuda", "gpu")
MAX_STAGE_CELLS = 20_000


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


def resolve_n_clusters(n_clusters: int | None, graph, n_cells: int, random_state: int) -> tuple[int, bool]:
    """``(n_clusters, estimated)``: the given number, or Leiden's estimate on ``graph``."""
    if n_clusters is not None:
        return n_clusters, False
    n_clusters = estimate_n_clusters(graph, random_state)
    if n_clusters < 2:
        raise ValueError(
            f"Leiden found {n_clusters} cluster on this graph, so the number of clusters cannot be "
            "estimated; pass `n_clusters` explicitly."
        )
    n_clusters = min(n_clusters, n_cells)
    logg.info(f"    estimated n_clusters={n_clusters} with Leiden (resolution 1)")
    return n_clusters, True


def resolve_config(
    n_cells: int,
    n_clusters: int,
    *,
    epochs: int | None,
    pretrain_epochs: int | None,
    stages: int,
    use_rep: str | None,
    batch_size: int | None = None,
    **settings,
) -> TrainingConfig:
    """The training config with size-aware epochs and carry steps and the stage snapshots' progress points.

    ``settings`` are passed to :class:`~dagcl_scverse.model.config.TrainingConfig` as they are.
    """
    defaults = size_defaults(n_cells, batch_size)
    epochs = defaults["epochs"] if epochs is None else epochs
    # Snapshots are taken at distinct self-training epochs, so there can be no more than epochs.
    if stages > epochs:
        logg.warning(f"`stages={stages}` exceeds the {epochs} self-training epochs; keeping {epochs}.")
        stages = epochs
    return TrainingConfig(
        n_clusters=n_clusters,
        pretrain_epochs=defaults["pretrain_epochs"] if pretrain_epochs is None else pretrain_epochs,
        epochs=epochs,
        # expression values are standardised for the initial partition as scanpy does before its
        # PCA; a representation the user chose (use_rep, e.g. PCs) is taken as it is
        init_space="input_pca" if use_rep is not None else "input_pca_scaled",
        batch_size=defaults["batch_size"],
        carry_steps=settings.pop("carry_steps", defaults["carry_steps"]),
        stage_progress=tuple(np.linspace(0.0, 1.0, stages)) if stages > 1 else ((1.0,) if stages else ()),
        **settings,
    )


def stage_cells(n_cells: int, n_stages: int, random_state: int) -> np.ndarray | None:
    """A seeded, sorted subsample of at most ``MAX_STAGE_CELLS`` cells for the stage snapshots."""
    if not n_stages:
        return None
    rng = np.random.default_rng(random_state)
    return np.sort(rng.choice(n_cells, min(n_cells, MAX_STAGE_CELLS), replace=False))
