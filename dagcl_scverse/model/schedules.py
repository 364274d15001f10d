"""Progress schedules that synchronise DAGCL's three quantities.

Every function maps a training progress ``t`` in [0, 1] to a value in [0, 1].
"""

from __future__ import annotations

import math

SCHEDULES = ("linear", "convex", "concave", "composite", "constant")


def _clip(t: float) -> float:
    return min(max(float(t), 0.0), 1.0)


def gamma(t: float, kind: str = "convex") -> float:
    """Weight of the KL self-training loss at self-training progress ``t``.

    ``linear``: t; ``convex``: t^2 (pressure arrives late); ``concave``: sqrt(t);
    ``composite``: smoothstep 3t^2 - 2t^3 (slow, fast, slow); ``constant``: 1 (the ablation).
    """
    t = _clip(t)
    if kind == "linear":
        return t
    if kind == "convex":
        return t * t
    if kind == "concave":
        return math.sqrt(t)
    if kind == "composite":
        return 3 * t * t - 2 * t**3
    if kind == "constant":
        return 1.0
    raise ValueError(f"Unknown schedule {kind!r}; choose one of {', '.join(SCHEDULES)}.")


def capacity(t: float, start: float = 0.25, warmup: float = 0.3) -> float:
    """Fraction of active hidden channels: ramps from ``start`` to 1 over the first ``warmup`` of training."""
    t = _clip(t)
    if warmup <= 0:
        return 1.0
    return start + (1.0 - start) * min(1.0, t / warmup)


def aggregation(t: float, start: float = 0.2, end: float = 0.8) -> float:
    """Aggregation strength (weight of the attention-weighted neighbours): rises linearly with ``t``."""
    return start + (end - start) * _clip(t)


def curriculum_share(t: float, start: float = 0.5, full_at: float = 0.7) -> float:
    """Share of the most confident cells that drive the KL term; all cells from ``full_at`` on."""
    t = _clip(t)
    return start + (1.0 - start) * min(1.0, t / full_at)


def sharpening(t: float, start: float = 1.0, end: float = 2.0) -> float:
    """Exponent applied to q before balancing (1 / entropic regularisation): rises with ``t``."""
    return start + (end - start) * _clip(t)
