"""Settings resolution of `dagcl.tl.cluster`: device, number of clusters, epochs, the training config."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse as sp
import torch
from anndata import AnnData
from scanpy import logging as logg

from dagcl_scverse.model.config import TrainingConfig

ACCELERATORS = ("auto", "cpu", "cuda", "gpu")
MAX_STAGE_CELLS = 20_000
#: up to this many cells training is full-batch by default (every generalisation case is below it).
#: Above, batches of at most this many seed cells: their in-neighbours outside the batch are encoded
#: too, about 0.25 context cells per seed at 65,536 seeds on 1M synthetic cells, against 0.70 at
#: 20,000 and 1.38 at 8,192 (docs/large_data.md), and an epoch's time grows with seeds plus context
FULL_BATCH_MAX_CELLS = 65_536
#: seed cells per step above FULL_BATCH_MAX_CELLS
AUTO_BATCH_SIZE = FULL_BATCH_MAX_CELLS
#: the fewest pre-training and self-training epochs, however many cells
MIN_EPOCHS = 10


def default_epochs(n_cells: int) -> tuple[int, int]:
    """Size-aware ``(pretrain_epochs, epochs)``: 100 + 100 up to ``FULL_BATCH_MAX_CELLS`` cells.

    Above that an epoch is many mini-batch steps, each on as many cells as a small data set
    holds, so the epochs fall in proportion to 1 / cells, down to ``MIN_EPOCHS``.
    """
    if n_cells <= FULL_BATCH_MAX_CELLS:
        return 100, 100
    epochs = max(MIN_EPOCHS, round(100 * FULL_BATCH_MAX_CELLS / n_cells))
    return epochs, epochs


def resolve_batch_size(batch_size: int | None, n_cells: int) -> int | None:
    """Seed cells per step: the given number, else full-batch (``None``) up to ``FULL_BATCH_MAX_CELLS`` cells."""
    if batch_size is not None:
        return None if batch_size >= n_cells else int(batch_size)
    return None if n_cells <= FULL_BATCH_MAX_CELLS else AUTO_BATCH_SIZE


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
    """The training config with size-aware epochs and the stage snapshots' progress points.

    ``settings`` are passed to :class:`~dagcl_scverse.model.config.TrainingConfig` as they are.
    """
    default_pre, default_self = default_epochs(n_cells)
    epochs = default_self if epochs is None else epochs
    # Snapshots are taken at distinct self-training epochs, so there can be no more than epochs.
    if stages > epochs:
        logg.warning(f"`stages={stages}` exceeds the {epochs} self-training epochs; keeping {epochs}.")
        stages = epochs
    return TrainingConfig(
        n_clusters=n_clusters,
        pretrain_epochs=default_pre if pretrain_epochs is None else pretrain_epochs,
        epochs=epochs,
        # expression values are standardised for the initial partition as scanpy does before its
        # PCA; a representation the user chose (use_rep, e.g. PCs) is taken as it is
        init_space="input_pca" if use_rep is not None else "input_pca_scaled",
        batch_size=resolve_batch_size(batch_size, n_cells),
        stage_progress=tuple(np.linspace(0.0, 1.0, stages)) if stages > 1 else ((1.0,) if stages else ()),
        **settings,
    )


def stage_cells(n_cells: int, n_stages: int, random_state: int) -> np.ndarray | None:
    """A seeded, sorted subsample of at most ``MAX_STAGE_CELLS`` cells for the stage snapshots."""
    if not n_stages:
        return None
    rng = np.random.default_rng(random_state)
    return np.sort(rng.choice(n_cells, min(n_cells, MAX_STAGE_CELLS), replace=False))
