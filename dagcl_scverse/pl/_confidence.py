"""`dagcl.pl.confidence`: how sure the soft assignments are, cluster by cluster."""

from __future__ import annotations

from numbers import Real

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ._utils import cluster_colors, finish

#: colour of the threshold line and of the violins' medians
INK = "0.2"


def _assignments(adata: AnnData, key: str) -> tuple[pd.Categorical, np.ndarray]:
    """Cluster labels ``obs[key]`` and each cell's confidence, the row maximum of ``obsm[key + "_proba"]``."""
    if not isinstance(adata, AnnData):
        raise TypeError(f"`adata` must be an AnnData, got {type(adata).__name__}.")
    if not isinstance(key, str):
        raise TypeError(f"`key` must be a string, got {type(key).__name__}.")
    proba_key = f"{key}_proba"
    missing = [f"adata.obs[{key!r}]"] if key not in adata.obs else []
    missing += [f"adata.obsm[{proba_key!r}]"] if proba_key not in adata.obsm else []
    if missing:
        raise KeyError(
            f"No DAGCL clusters: {' and '.join(missing)} missing; run `dagcl.tl.cluster` first, or pass the "
            "`key_added` you gave it as `key`."
        )
    proba = np.asarray(adata.obsm[proba_key], dtype=np.float64)
    if proba.ndim != 2 or proba.shape[1] == 0:
        raise ValueError(f"adata.obsm[{proba_key!r}] must be a cells x clusters matrix, got shape {proba.shape}.")
    labels = adata.obs[key]
    labels = labels.array if isinstance(labels.dtype, pd.CategoricalDtype) else pd.Categorical(labels)
    return labels, proba.max(axis=1)


def _share_text(share: float) -> str:
    if 0 < share < 0.005:
        return "<1 %"
    return f"{100 * share:.0f} %"


def confidence(
    adata: AnnData,
    key: str = "dagcl",
    *,
    threshold: float = 0.5,
    ax: Axes | None = None,
    show: bool | None = None,
) -> Figure | None:
    """Plot the distribution of the cells' assignment confidence in each cluster.

    A cell's confidence is its largest soft-assignment probability (the row maximum of
    ``adata.obsm[key + "_proba"]``, which ``dagcl.tl.cluster`` also stores as
    ``adata.obs[key + "_confidence"]``). It is at least 1 / k, and low for cells between
    clusters. Each cluster gets a violin in its colour, with the share of its cells below
    ``threshold`` written above it; a dashed line marks the threshold. A cluster whose share
    is high is not well separated from its neighbours.

    Parameters
    ----------
    adata
        Annotated data matrix after ``dagcl.tl.cluster``.
    key
        The ``key_added`` of the run: labels in ``adata.obs[key]``, soft assignments in
        ``adata.obsm[key + "_proba"]``.
    threshold
        Confidence below which a cell counts as uncertain, in [0, 1].
    ax
        Axes to draw into; a new figure is made when ``None``.
    show
        Show the figure; ``None`` follows ``scanpy.settings.autoshow``.

    Returns
    -------
    The figure holding the axes, when it is not shown.

    Examples
    --------
    >>> dagcl.tl.cluster(adata, n_clusters=13)
    >>> dagcl.pl.confidence(adata, threshold=0.6)
    """
    labels, values = _assignments(adata, key)
    if isinstance(threshold, bool) or not isinstance(threshold, Real) or not 0 <= threshold <= 1:
        raise ValueError(f"`threshold` must be a number between 0 and 1, got {threshold!r}.")
    if ax is not None and not isinstance(ax, Axes):
        raise TypeError(f"`ax` must be a matplotlib Axes or None, got {type(ax).__name__}.")
    categories = list(labels.categories)
    codes = np.asarray(labels.codes)
    colors = cluster_colors(adata, key, len(categories))
    # empty categories and unlabelled cells (code -1) are left out
    present = [c for c in range(len(categories)) if (codes == c).any()]
    if not present:
        raise ValueError(f"adata.obs[{key!r}] labels no cells.")
    groups = [values[codes == c] for c in present]

    if ax is None:
        fig, ax = plt.subplots(figsize=(max(5.2, 0.45 * len(present) + 1.8), 3.6), layout="constrained")
    else:
        fig = ax.figure
    positions = np.arange(len(present), dtype=float)
    # a kernel density needs spread: clusters of identical values are drawn as points
    spread = [i for i, group in enumerate(groups) if np.ptp(group) > 0]
    if spread:
        parts = ax.violinplot(
            [groups[i] for i in spread], positions=positions[spread], widths=0.8, showextrema=False, showmedians=True
        )
        for body, i in zip(parts["bodies"], spread, strict=True):
            body.set_facecolor(colors[present[i]])
            body.set_edgecolor(INK)
            body.set_linewidth(0.5)
            body.set_alpha(0.85)
        parts["cmedians"].set_color(INK)
        parts["cmedians"].set_linewidth(1.0)
    for i, group in enumerate(groups):
        if i not in spread:
            ax.scatter(np.full(len(group), positions[i]), group, color=colors[present[i]], s=14, lw=0, zorder=3)

    ax.axhline(threshold, color=INK, ls="--", lw=1.0, zorder=2)
    many = len(present) > 15
    for position, group in zip(positions, groups, strict=True):
        ax.text(
            position,
            1.01,
            _share_text(float(np.mean(group < threshold))),
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="bottom",
            fontsize="x-small" if many else "small",
            rotation=90 if many else 0,
        )
    ax.set_xticks(positions, [str(categories[c]) for c in present])
    ax.set_xlim(-0.6, len(present) - 0.4)
    ax.set_ylim(max(0.0, min(float(values.min()), threshold) - 0.05), 1.02)
    ax.set_xlabel("cluster")
    ax.set_ylabel("confidence (largest soft assignment)")
    ax.set_title(
        f"Assignment confidence ({key!r})\nabove each cluster: its share of cells below {threshold:g} (dashed)",
        fontsize="medium",
        pad=26 if many else 16,
    )
    ax.spines[["top", "right"]].set_visible(False)
    return finish(fig, show)
