"""Mini-batch standardisation whose backward pass sees every cell, as a full batch's does.

The soft assignment reads the embedding standardised per dimension. In a full batch the
statistics are the batch's own, so the gradient of the KL term through them removes, per
dimension, the mean of the cells' gradients and their component along the standardised
embedding (the backward pass of a batch norm): the KL term cannot sharpen the assignment by
shifting or stretching every cell at once. A mini-batch of nearby cells holds only its own
share of those sums; read from the batch alone they are a neighbourhood's and push it about
("What we tried" #64: worm neuron fell from 0.656 to 0.49 ARI), and through the shared
statistics they arrive at a batch's share of their weight, nearly nothing (#64: full-batch
training at that share scored as mini-batches do). :class:`GradientBank` keeps each batch's
latest sums and removes their total, an estimate over every cell of this process's shard.
"""

from __future__ import annotations

import torch


class GradientBank:
    """Each batch's latest sums of the gradient reaching its standardised embedding.

    A batch's loss is a mean over its cells, so its gradients are scaled by ``1 / n_seeds``:
    sums are stored times ``n_seeds`` (per-cell units) and the correction is returned in the
    units of the batch at hand. Within an epoch every batch of the shard has an entry; before
    that, the batches seen so far.
    """

    def __init__(self) -> None:
        self._sums: dict[int, tuple[torch.Tensor, torch.Tensor, int]] = {}

    def standardise(self, z: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, batch_key: int) -> torch.Tensor:
        """``(z - mean) / std`` with fixed ``mean`` and ``std`` and the bank's backward pass."""
        return _BankedStandardise.apply(z, mean.detach(), std.detach(), self, batch_key)

    def _correction(self, g: torch.Tensor, zs: torch.Tensor, batch_key: int) -> tuple[torch.Tensor, torch.Tensor]:
        n_seeds = zs.shape[0]
        self._sums[batch_key] = ((n_seeds * g.sum(0)).detach(), (n_seeds * (g * zs).sum(0)).detach(), n_seeds)
        shift = sum(entry[0] for entry in self._sums.values())
        stretch = sum(entry[1] for entry in self._sums.values())
        cells = sum(entry[2] for entry in self._sums.values())
        return shift / (cells * n_seeds), stretch / (cells * n_seeds)


class _BankedStandardise(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z, mean, std, bank: GradientBank, batch_key: int):
        zs = (z - mean) / std
        ctx.save_for_backward(zs, std)
        ctx.bank, ctx.batch_key = bank, batch_key
        return zs

    @staticmethod
    def backward(ctx, g):
        zs, std = ctx.saved_tensors
        shift, stretch = ctx.bank._correction(g, zs, ctx.batch_key)
        return (g - shift - zs * stretch) / std, None, None, None, None
