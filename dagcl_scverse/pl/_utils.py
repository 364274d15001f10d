"""What every DAGCL plot shares: finding the run in AnnData, colours, and scanpy's ``show``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import scanpy as sc
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.figure import Figure

#: Okabe & Ito's colour-blind-safe palette (yellow left out: too faint on white)
OKABE_ITO = ("#000000", "#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7")
#: light grey behind the pre-training epochs
PRETRAIN_SHADE = "#EBEBEB"


def get_run(adata: AnnData, key: str, *, need: Sequence[str] = ("params", "history")) -> Mapping:
    """``adata.uns[key]`` of a ``dagcl.tl.cluster`` run, checked to hold the fields in ``need``."""
    if not isinstance(adata, AnnData):
        raise TypeError(f"`adata` must be an AnnData, got {type(adata).__name__}.")
    if not isinstance(key, str):
        raise TypeError(f"`key` must be a string, got {type(key).__name__}.")
    run = adata.uns.get(key)
    if not isinstance(run, Mapping) or not all(name in run for name in ("params", "history")):
        raise KeyError(
            f"No DAGCL run under adata.uns[{key!r}]: run `dagcl.tl.cluster` first, or pass the "
            "`key_added` you gave it as `key`."
        )
    missing = [name for name in need if name not in run]
    if missing:
        raise KeyError(
            f"adata.uns[{key!r}] has no {', '.join(repr(m) for m in missing)}; run "
            f"`dagcl.tl.cluster(..., key_added={key!r})` again"
            + (" with `stages` > 0." if "stages" in missing else ".")
        )
    return run


def cluster_colors(adata: AnnData, key: str, n: int) -> list[str]:
    """Colours of clusters ``0..n-1``.

    The ones scanpy already uses for ``obs[key]`` if set, else scanpy's default categorical
    palette, so the plots match ``sc.pl.umap(color=key)``.
    """
    stored = adata.uns.get(f"{key}_colors")
    if stored is not None and len(stored) >= n:
        return [str(c) for c in stored[:n]]
    if n <= 20:
        palette = sc.pl.palettes.default_20
    elif n <= 28:
        palette = sc.pl.palettes.default_28
    else:
        palette = sc.pl.palettes.default_102
    return [palette[i % len(palette)] for i in range(n)]


def self_training_start(history: Mapping) -> float | None:
    """The first self-training epoch, or ``None`` when the run had none."""
    phase = np.asarray(history["phase"])
    epoch = np.asarray(history["epoch"])
    if not (phase == 1).any():
        return None
    return float(epoch[np.argmax(phase == 1)])


def shade_pretraining(ax: Axes, history: Mapping) -> None:
    """Grey out the pre-training epochs and draw the boundary to self-training."""
    start = self_training_start(history)
    epoch = np.asarray(history["epoch"])
    if start is None:
        ax.axvspan(epoch[0] - 0.5, epoch[-1] + 0.5, color=PRETRAIN_SHADE, zorder=0, lw=0)
        return
    if start > epoch[0]:
        ax.axvspan(epoch[0] - 0.5, start - 0.5, color=PRETRAIN_SHADE, zorder=0, lw=0)
    ax.axvline(start - 0.5, color="0.35", lw=0.9, ls="--", zorder=1)


def finish(fig: Figure, show: bool | None) -> Figure | None:
    """Show ``fig`` or return it, with scanpy's ``show`` semantics.

    ``None`` follows ``sc.settings.autoshow``; the figure is returned only when it is not shown.
    """
    show = sc.settings.autoshow if show is None else show
    if show:
        plt.show()
        return None
    return fig
