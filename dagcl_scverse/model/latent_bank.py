"""Every cell's latest embedding and its moments: the statistics of all cells, kept current by mini-batch steps."""

from __future__ import annotations

import torch

from .world import World


class LatentBank:
    """The latest embedding of every cell, and its first and second moments, kept current step by step.

    A mini-batch of nearby cells is no sample of all cells: statistics of the batch alone
    (its standardisation, the correlation of latent dimensions) describe one neighbourhood.
    Mini-batch steps use the moments of every cell's most recent embedding instead, with the
    batch's own rows substituted (and differentiable); each step then stores its seeds' rows
    and moves the sums, summed over the processes, by the difference.
    """

    def __init__(self, z: torch.Tensor) -> None:
        self.z = z.detach().clone()
        z64 = self.z.double()
        self.total = z64.sum(0)
        self.outer = z64.T @ z64

    def moments(self, seeds: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean ``(d,)`` and second moment ``(d, d)`` over every cell, with ``z`` as the seeds' rows."""
        old, new = self.z[seeds].double(), z.double()
        n = self.z.shape[0]
        return (self.total - old.sum(0) + new.sum(0)) / n, (self.outer - old.T @ old + new.T @ new) / n

    def update(self, seeds: torch.Tensor, z: torch.Tensor, world: World) -> None:
        """Store the seeds' new rows ``z``."""
        old, new = self.z[seeds].double(), z.detach().double()
        d = new.shape[1]
        delta = torch.cat([(new.sum(0) - old.sum(0))[None], new.T @ new - old.T @ old])
        world.sum_(delta)
        self.total += delta[0]
        self.outer += delta[1 : d + 1]
        self.z[seeds] = z.detach()


def statistics(mean: torch.Tensor, second: torch.Tensor, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (biased) standard deviation per dimension from the moments.

    Differentiable in the batch's rows, as a full batch's own statistics are. Detached, they
    gave mini-batch steps other gradients than a full batch's, and forced small batches lost
    more ARI on worm neuron ("What we tried" #54).
    """
    std = (torch.diagonal(second) - mean.pow(2)).clamp_min(1e-12).sqrt()
    return mean.to(dtype), std.to(dtype)
