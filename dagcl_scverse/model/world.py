"""The processes of one training run: one (the default), or the ranks of a torch.distributed group.

Every collective is a no-op for a single process, so the training loop reads the same either
way. Each rank holds a disjoint shard of the cells; results that every cell contributes to
once (its embedding, its label) are assembled by filling zeros and summing over the ranks.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass

import torch
import torch.distributed as dist

#: test hook: the rank named here kills itself after its first optimisation step
KILL_RANK_ENV = "DAGCL_TEST_KILL_RANK"


@dataclass(frozen=True)
class World:
    """The rank of this process and the number of processes (``size``)."""

    rank: int = 0
    size: int = 1

    @classmethod
    def current(cls) -> World:
        """The initialised default process group, or a single process."""
        if dist.is_available() and dist.is_initialized():
            return cls(rank=dist.get_rank(), size=dist.get_world_size())
        return cls()

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over the ranks, in place; returned for chaining."""
        if self.size > 1:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def average_gradients(self, parameters) -> None:
        """Replace each gradient by its mean over the ranks (a rank without one contributes zeros)."""
        if self.size == 1:
            return
        for parameter in parameters:
            if parameter.grad is None:
                parameter.grad = torch.zeros_like(parameter)
            self.sum_(parameter.grad).div_(self.size)

    def broadcast_parameters(self, module: torch.nn.Module) -> None:
        """Give every rank rank 0's parameters."""
        if self.size == 1:
            return
        with torch.no_grad():
            for tensor in module.state_dict().values():
                if tensor.numel():
                    dist.broadcast(tensor, src=0)

    def after_first_step(self) -> None:
        """The documented failure hook: ``DAGCL_TEST_KILL_RANK=r`` kills rank r here (tests only)."""
        if self.size > 1 and os.environ.get(KILL_RANK_ENV) == str(self.rank):
            os.kill(os.getpid(), signal.SIGKILL)
