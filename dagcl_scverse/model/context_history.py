"""Context cells' first layer, kept from their own batch's latest step (historical embeddings).

A mini-batch's context cells (in-neighbours of its seeds that are seeds of other batches) are
encoded only for the messages they send, and those need only the input layer's output
``h = ELU(W x + b)``: the layer whose sparse products are half of an epoch at a million cells.
Every cell is a seed of exactly one batch of its process, and each step keeps its seeds' ``h``
here; the other batches read it instead of copying the cell's features and encoding them again
(GNNAutoScale's historical embeddings, one layer deep). A kept value is at most one epoch old and
gets no gradient. The global inference passes (target refreshes, the final embedding) still
encode every context cell from its features. Context cells of another process's shard are not
kept here: a training step encodes them from their features, as before.
"""

from __future__ import annotations

import numpy as np
import torch

from .batches import BatchPlan, DeviceBatch
from .features import CellFeatures
from .module import DAGCLModule

#: cells whose first layer :meth:`ContextHistory.fill` computes at a time
FILL_CHUNK = 20_000


class ContextHistory:
    """The latest first-layer output ``(cells, hidden)`` of every cell that is context of a batch.

    Parameters
    ----------
    plan
        This process's batches; only their context cells from its own shard are kept.
    hidden
        Width of the input layer.
    device
        Where the table lives (the training device).
    """

    def __init__(self, plan: BatchPlan, hidden: int, device: torch.device) -> None:
        kept = [batch.nodes[batch.n_encoded :] for batch in plan.batches]
        #: sorted global ids of the kept cells
        self.cells = np.unique(np.concatenate(kept)) if kept else np.empty(0, dtype=np.int64)
        slot = np.full(plan.n_cells, -1, dtype=np.int64)
        slot[self.cells] = np.arange(self.cells.size)
        self._reads, self._writes = {}, {}
        for batch, context in zip(plan.batches, kept, strict=True):
            key = int(batch.seeds[0])
            self._reads[key] = torch.as_tensor(slot[context], device=device)
            seed_slots = slot[batch.seeds]
            local = np.flatnonzero(seed_slots >= 0)
            self._writes[key] = (
                torch.as_tensor(local, device=device),
                torch.as_tensor(seed_slots[local], device=device),
            )
        self.table = torch.zeros(self.cells.size, hidden, device=device)

    def fill(self, model: DAGCLModule, cells: CellFeatures) -> None:
        """Every kept row computed from the cells' features with the model as it is now."""
        with torch.no_grad():
            for lo in range(0, self.cells.size, FILL_CHUNK):
                rows = self.cells[lo : lo + FILL_CHUNK]
                self.table[lo : lo + rows.size] = model.input_layer(cells.encoder_input(rows))

    def first_layer(self, model: DAGCLModule, batch: DeviceBatch) -> torch.Tensor:
        """The first layer of every node of ``batch``: its encoded rows, then the kept context rows.

        The batch's seeds that are context elsewhere are stored (detached) on the way.
        """
        key = int(batch.seed_ids[0])  # seeds are disjoint, so a batch's first seed names it
        h = model.input_layer(batch.features)
        local, slots = self._writes[key]
        self.table[slots] = h.detach()[local]
        return torch.cat([h, self.table[self._reads[key]]])
