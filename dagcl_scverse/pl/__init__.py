"""Plots of DAGCL runs: training diagnostics and the curriculum's stages."""

from ._curriculum import curriculum
from ._schedules import schedules
from ._stages import stages

__all__ = ["curriculum", "schedules", "stages"]
