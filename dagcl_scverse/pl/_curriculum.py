"""`dagcl.pl.curriculum`: how a DAGCL run went, epoch by epoch."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from dagcl_scverse.model.config import TrainingConfig

from ._utils import OKABE_ITO, cluster_colors, finish, get_run, self_training_start, shade_pretraining

BLACK, ORANGE, SKY_BLUE, GREEN, BLUE, VERMILLION, PURPLE = OKABE_ITO
#: (history field, legend label, colour, line style)
LOSSES = (
    ("loss_total", "total (weighted sum)", BLACK, "-"),
    ("loss_recon", "reconstruction", ORANGE, "--"),
    ("loss_decorrelation", "decorrelation", SKY_BLUE, "-."),
    ("loss_smoothness", "graph smoothness", GREEN, ":"),
    ("loss_kl", "KL(p ‖ q), unweighted", VERMILLION, "-"),
)
SCHEDULE_TRACES = (
    ("gamma", "KL weight γ(t)", VERMILLION, "-"),
    ("capacity", "channel capacity", SKY_BLUE, "--"),
    ("aggregation", "aggregation strength", GREEN, "-."),
    ("curriculum_share", "curriculum share\n(cells driving KL)", PURPLE, ":"),
)


def _trace(history: Mapping, name: str) -> np.ndarray:
    return np.asarray(history[name], dtype=float)


def _legend(ax: Axes, **kwargs) -> None:
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize="small", **kwargs)


def _plot_losses(ax: Axes, history: Mapping) -> None:
    epoch = _trace(history, "epoch")
    for name, label, color, ls in LOSSES:
        values = _trace(history, name)
        # a log axis cannot show zero or negative values; leave gaps rather than fail
        values = np.where(values > 0, values, np.nan)
        if np.isnan(values).all():
            continue
        ax.plot(epoch, values, color=color, ls=ls, lw=1.4, label=label)
    ax.set_yscale("log")
    ax.set_ylabel("loss (log scale)")
    ax.set_title("Losses", loc="left", fontsize="medium")
    _legend(ax)


def _plot_schedules(ax: Axes, history: Mapping, schedule: str) -> None:
    epoch = _trace(history, "epoch")
    for name, label, color, ls in SCHEDULE_TRACES:
        if name == "gamma":
            label = f"{label}, {schedule}"
        ax.plot(epoch, _trace(history, name), color=color, ls=ls, lw=2.2 if name == "gamma" else 1.6, label=label)
    ax.set_ylim(-0.04, 1.04)
    ax.set_ylabel("value")
    ax.set_title("Schedules: clustering pressure and model capacity", loc="left", fontsize="medium")
    _legend(ax)


def _plot_assignment(ax: Axes, history: Mapping) -> None:
    epoch = _trace(history, "epoch")
    ax.plot(
        epoch,
        _trace(history, "assignment_entropy"),
        color=BLUE,
        lw=1.6,
        label="assignment entropy\n(normalised, 1 = uniform)",
    )
    threshold = TrainingConfig.confidence_threshold
    ax.plot(
        epoch,
        _trace(history, "confident_share"),
        color=ORANGE,
        ls="--",
        lw=1.6,
        label=f"confident cells\n(max q ≥ {threshold:g})",
    )
    ax.set_ylim(-0.04, 1.04)
    ax.set_ylabel("entropy / share")
    ax.set_title("Soft assignments sharpen", loc="left", fontsize="medium")
    _legend(ax)


def _plot_label_change(ax: Axes, history: Mapping) -> None:
    epoch = _trace(history, "epoch")
    change = _trace(history, "label_change")
    ax.plot(epoch, change, color=PURPLE, lw=1.2, label="cells whose\ncluster changed")
    ax.set_ylim(bottom=0)
    largest = np.nanmax(change) if not np.isnan(change).all() else 0.0
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0 if largest > 0.05 else 1))
    ax.set_ylabel("cells changed")
    ax.set_title("Labels settle: change since the last target refresh", loc="left", fontsize="medium")
    _legend(ax)


def _plot_cluster_sizes(ax: Axes, history: Mapping, colors: list[str]) -> None:
    epoch = _trace(history, "epoch")
    sizes = np.asarray(history["cluster_sizes"], dtype=float)
    rows = ~np.isnan(sizes).all(1)
    shares = sizes[rows] / sizes[rows].sum(1, keepdims=True)
    k = sizes.shape[1]
    ax.stackplot(epoch[rows], shares.T, colors=colors, labels=[str(c) for c in range(k)], lw=0)
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    ax.set_ylabel("share of cells")
    ax.set_title("Cluster sizes", loc="left", fontsize="medium")
    _legend(ax, title="cluster", ncols=2 if k > 10 else 1, columnspacing=0.8, handlelength=1.2)


def curriculum(
    adata: AnnData,
    key: str = "dagcl",
    *,
    show: bool | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure | None:
    """Plot how a DAGCL run went: losses, schedules and clustering dynamics per epoch.

    Five panels share one epoch axis; pre-training epochs are shaded grey and the dashed line
    marks the start of self-training, after which clustering pressure (the KL weight) rises.

    1. **Losses** (log scale): each term of the objective; the KL term is shown unweighted.
    2. **Schedules**: KL weight gamma(t), active channel share, aggregation strength, and the
       share of cells (most confident first) that drive the KL term.
    3. **Soft assignments**: normalised entropy of the soft assignments q and the share of
       confidently assigned cells.
    4. **Label change**: share of cells whose cluster differs from the last target refresh.
    5. **Cluster sizes**: share of cells per cluster (colours as in ``sc.pl.umap(color=key)``).

    Parameters
    ----------
    adata
        Annotated data matrix after ``dagcl.tl.cluster``.
    key
        The ``key_added`` of the run.
    show
        Show the figure; ``None`` follows ``scanpy.settings.autoshow``.
    figsize
        Figure size in inches; default ``(9, 11)``.

    Returns
    -------
    The figure, when it is not shown.

    Examples
    --------
    >>> dagcl.tl.cluster(adata, n_clusters=13)
    >>> dagcl.pl.curriculum(adata)
    """
    run = get_run(adata, key)
    history, params = run["history"], run["params"]
    n_clusters = np.asarray(history["cluster_sizes"]).shape[1]
    colors = cluster_colors(adata, key, n_clusters)

    fig, axes = plt.subplots(
        5,
        1,
        sharex=True,
        figsize=figsize or (9, 11),
        layout="constrained",
        gridspec_kw={"height_ratios": (1.4, 1.1, 1.0, 0.8, 1.2)},
    )
    _plot_losses(axes[0], history)
    _plot_schedules(axes[1], history, str(params.get("schedule", "")))
    _plot_assignment(axes[2], history)
    _plot_label_change(axes[3], history)
    _plot_cluster_sizes(axes[4], history, colors)

    epoch = _trace(history, "epoch")
    for ax in axes:
        shade_pretraining(ax, history)
        ax.spines[["top", "right"]].set_visible(False)
    axes[-1].set_xlim(epoch[0] - 0.5, epoch[-1] + 0.5)
    axes[-1].set_xlabel("epoch")

    start = self_training_start(history)
    if start is not None and start > epoch[0]:
        for ax in axes[2:]:
            ax.text(
                (epoch[0] + start) / 2,
                0.5,
                "clusters exist only\nin self-training",
                transform=ax.get_xaxis_transform(),
                ha="center",
                va="center",
                fontsize="small",
                style="italic",
                color="0.45",
            )
    top = axes[0]
    for x, text, ha in (
        (start if start is not None else epoch[-1], "pre-training ", "right"),
        (start, " self-training", "left"),
    ):
        if x is not None and (ha == "left" or x > epoch[0]):
            top.annotate(
                text,
                xy=(x - 0.5, 1.0),
                xycoords=("data", "axes fraction"),
                ha=ha,
                va="bottom",
                fontsize="small",
                color="0.3",
            )
    fig.suptitle(
        f"DAGCL curriculum ({key!r}): {n_clusters} clusters, {params.get('schedule', '?')} schedule, "
        f"{params.get('pretrain_epochs', '?')} + {params.get('epochs', '?')} epochs",
        fontsize="large",
    )
    return finish(fig, show)
