"""Plots of DAGCL runs: training diagnostics, the curriculum's stages and assignment confidence."""

from ._confidence import confidence
from ._curriculum import curriculum
from ._schedules import schedules
from ._stages import stages

__all__ = ["confidence", "curriculum", "schedules", "stages"]
