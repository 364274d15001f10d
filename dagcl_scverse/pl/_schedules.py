"""`dagcl.pl.schedules`: the shapes of the KL weight schedules, to choose one."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from dagcl_scverse.model.config import TrainingConfig
from dagcl_scverse.model.schedules import SCHEDULES, gamma

from ._utils import OKABE_ITO, finish

BLACK, ORANGE, SKY_BLUE, GREEN, BLUE, VERMILLION, PURPLE = OKABE_ITO
#: colour and line style per schedule; the default's vermillion matches gamma in `pl.curriculum`
STYLES = {
    "linear": (ORANGE, "--"),
    "convex": (VERMILLION, "-"),
    "concave": (GREEN, "-."),
    "composite": (BLUE, ":"),
    "constant": (BLACK, "-"),
}


def schedules(*, ax: Axes | None = None, show: bool | None = None) -> Figure | None:
    """Plot the KL weight gamma(t) of each schedule over self-training progress t.

    The schedule (``dagcl.tl.cluster(schedule=...)``) decides when clustering pressure
    arrives: ``convex`` (the default) keeps it low until the representation has settled,
    ``concave`` applies it early, ``composite`` is slow-fast-slow, and ``constant`` applies
    full pressure throughout (the ablation).

    Parameters
    ----------
    ax
        Axes to draw into; a new figure is made when ``None``.
    show
        Show the figure; ``None`` follows ``scanpy.settings.autoshow``.

    Returns
    -------
    The figure holding the axes, when it is not shown.

    Examples
    --------
    >>> dagcl.pl.schedules()
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.2, 3.4), layout="constrained")
    elif isinstance(ax, Axes):
        fig = ax.figure
    else:
        raise TypeError(f"`ax` must be a matplotlib Axes or None, got {type(ax).__name__}.")
    t = np.linspace(0.0, 1.0, 201)
    default = TrainingConfig.schedule
    for i, kind in enumerate(SCHEDULES):
        color, ls = STYLES.get(kind, (OKABE_ITO[i % len(OKABE_ITO)], "-"))
        label = f"{kind} (default)" if kind == default else kind
        ax.plot(t, [gamma(v, kind) for v in t], color=color, ls=ls, lw=2.6 if kind == default else 1.6, label=label)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.03, 1.05)
    ax.set_xlabel("self-training progress t")
    ax.set_ylabel("KL weight γ(t)")
    ax.set_title("Clustering pressure schedules", fontsize="medium")
    ax.spines[["top", "right"]].set_visible(False)
    # outside the axes: every corner of [0, 1] x [0, 1] holds some curve
    ax.legend(title="schedule", frameon=False, fontsize="small", loc="center left", bbox_to_anchor=(1.02, 0.5))
    return finish(fig, show)
