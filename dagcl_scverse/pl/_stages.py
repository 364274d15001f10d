"""`dagcl.pl.stages`: the cells' embedding early, midway and late in self-training."""

from __future__ import annotations

import math
from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import scanpy as sc
from anndata import AnnData
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from scipy.linalg import orthogonal_procrustes

from ._utils import cluster_colors, finish, get_run

BASES = ("umap", "pca")
#: seed of the plot-time layouts, so the same run always gives the same picture
LAYOUT_SEED = 0


def _umap(latent: np.ndarray) -> np.ndarray:
    tmp = AnnData(
        obs=pd.DataFrame(index=np.arange(latent.shape[0]).astype(str)),
        obsm={"X_latent": np.asarray(latent, dtype=np.float32)},
    )
    n_neighbors = max(2, min(15, latent.shape[0] - 1))
    sc.pp.neighbors(tmp, use_rep="X_latent", n_neighbors=n_neighbors, random_state=LAYOUT_SEED)
    sc.tl.umap(tmp, random_state=LAYOUT_SEED)
    return tmp.obsm["X_umap"]


def _pca(latent: np.ndarray) -> np.ndarray:
    centred = np.asarray(latent, dtype=np.float64) - latent.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    layout = centred @ vt[:2].T
    if layout.shape[1] < 2:
        layout = np.column_stack([layout, np.zeros(len(layout))])
    return layout


def _align(layout: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Rotate/reflect ``layout`` onto ``reference`` (same cells).

    The panels then share an orientation; a rigid motion changes nothing about the layout itself.
    """
    a = layout - layout.mean(0)
    b = reference - reference.mean(0)
    rotation, _ = orthogonal_procrustes(a, b)
    return a @ rotation


def _stage_names(progress: np.ndarray) -> list[str]:
    if len(progress) == 3:
        return ["early", "middle", "late"]
    return [f"stage {i + 1}" for i in range(len(progress))]


def stages(
    adata: AnnData,
    key: str = "dagcl",
    *,
    basis: str = "umap",
    show: bool | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure | None:
    """Plot the cells' embedding at several points of self-training, coloured by that moment's clusters.

    The panels show how the curriculum turns a smooth representation into a partition.

    Uses the snapshots ``dagcl.tl.cluster`` keeps in ``adata.uns[key]["stages"]`` (its
    ``stages`` argument; default 3: start, middle and end of self-training). Cluster numbers
    and colours are those of the final labels, so a cluster keeps its colour across panels.
    The 2-D layouts are computed here, from each snapshot's embedding, and rotated onto the
    last one so the panels share an orientation; ``adata`` is not modified.

    Parameters
    ----------
    adata
        Annotated data matrix after ``dagcl.tl.cluster`` with ``stages > 0``.
    key
        The ``key_added`` of the run.
    basis
        ``"umap"`` (scanpy's UMAP on a neighbour graph of the snapshot embedding, seeded) or
        ``"pca"`` (first two principal components of the snapshot embedding).
    show
        Show the figure; ``None`` follows ``scanpy.settings.autoshow``.
    figsize
        Figure size in inches; default 3.6 inches per panel wide, plus room for the legend.

    Returns
    -------
    The figure, when it is not shown.

    Examples
    --------
    >>> dagcl.tl.cluster(adata, n_clusters=13, stages=3)
    >>> dagcl.pl.stages(adata, basis="pca")
    """
    if basis not in BASES:
        raise ValueError(f"Unknown basis {basis!r}; choose one of {', '.join(BASES)}.")
    run = get_run(adata, key, need=("params", "history", "stages"))
    snapshots: Mapping = run["stages"]
    progress = np.atleast_1d(np.asarray(snapshots["progress"], dtype=float))
    latent = np.asarray(snapshots["latent"])
    labels = np.asarray(snapshots["labels"]).astype(np.int64)
    n_stages, n_cells = labels.shape
    if n_stages == 0 or n_cells == 0:
        raise ValueError(f"adata.uns[{key!r}]['stages'] holds no snapshots; run `dagcl.tl.cluster(..., stages=3)`.")
    n_clusters = int(np.asarray(run["history"]["cluster_sizes"]).shape[1])
    colors = np.asarray(cluster_colors(adata, key, max(n_clusters, int(labels.max()) + 1)))
    params = run["params"]
    pretrain, epochs = params.get("pretrain_epochs"), params.get("epochs")

    compute = _umap if basis == "umap" else _pca
    layouts = [compute(latent[s]) for s in range(n_stages)]
    layouts = [_align(layout, layouts[-1]) for layout in layouts]

    n_cols = min(n_stages, 4)
    n_rows = math.ceil(n_stages / n_cols)
    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        squeeze=False,
        layout="constrained",
        figsize=figsize or (3.6 * n_cols + 1.4, 3.6 * n_rows + 0.5),
    )
    size = float(np.clip(12_000 / n_cells, 1.0, 25.0))
    order = np.random.default_rng(LAYOUT_SEED).permutation(n_cells)  # no cluster painted last
    names = _stage_names(progress)
    axis_name = "UMAP" if basis == "umap" else "PC"
    for s, ax in enumerate(axes.flat):
        if s >= n_stages:
            ax.set_axis_off()
            continue
        xy = layouts[s][order]
        ax.scatter(xy[:, 0], xy[:, 1], c=colors[labels[s][order]], s=size, lw=0, rasterized=True)
        title = f"{names[s]}: t = {progress[s]:.2f}"
        if pretrain is not None and epochs is not None:
            title += f" (epoch {int(pretrain) + round(progress[s] * max(int(epochs) - 1, 0))})"
        n_used = len(np.unique(labels[s]))
        ax.set_title(f"{title}\n{n_used} clusters in use", fontsize="medium")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(f"{axis_name}1")
        ax.set_ylabel(f"{axis_name}2")
        ax.set_aspect("equal", adjustable="datalim")

    present = np.unique(labels)
    handles = [
        Line2D([], [], marker="o", ls="", markersize=6, markerfacecolor=colors[c], markeredgewidth=0, label=str(c))
        for c in present
    ]
    fig.legend(
        handles=handles,
        title="cluster\n(final)",
        loc="outside right center",
        frameon=False,
        ncols=2 if len(present) > 12 else 1,
        fontsize="small",
        columnspacing=0.8,
        handletextpad=0.2,
    )
    fig.suptitle(f"DAGCL stages ({key!r}): embedding through self-training, {n_cells} cells", fontsize="large")
    return finish(fig, show)
