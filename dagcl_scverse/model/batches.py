"""Graph-aware batches of cells: the steps of one training epoch.

The encoder has one attention layer, so a cell's embedding depends on its own features and on
those of the cells it receives messages from. A batch is therefore a set of *seed* cells, whose
losses are scored, plus their in-neighbours outside the set as unscored *context*: the seeds'
embeddings are exactly those of a full-graph pass (training steps may read context cells' first
layer from a :class:`~dagcl_scverse.model.context_history.ContextHistory`, one epoch old). Seeds are grown as balls on the kNN graph
(breadth first, most connected cells first) and their borders refined
(:mod:`~dagcl_scverse.model.partition_refinement`), so most of a seed's neighbours are seeds too
and the context stays small; random groups of cells would bring in ~15 context cells per seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import reverse_cuthill_mckee

from .attention_aggregate import SortedGraph
from .features import CellFeatures
from .partition_refinement import refine_groups
from .smoothness_graph import SmoothnessGraph


@dataclass(frozen=True)
class GraphBatch:
    """Seeds first, then context cells, with the edges into the seeds in local numbering.

    The context held by other processes comes first: with the seeds, the ``n_encoded`` nodes a
    training step encodes from their features. The rest are seeds of this process's other
    batches, whose first layer a step can read from a
    :class:`~dagcl_scverse.model.context_history.ContextHistory` instead.
    """

    nodes: np.ndarray
    n_seeds: int
    #: ``(2, E)`` local (sender, receiver) of every edge into a seed
    edge_index: np.ndarray
    edge_weight: np.ndarray
    n_encoded: int

    @property
    def seeds(self) -> np.ndarray:
        """Global ids of the scored cells."""
        return self.nodes[: self.n_seeds]

    def inside_share(self) -> float:
        """Share of the seeds' incoming edges whose sender is a seed too."""
        return float((self.edge_index[0] < self.n_seeds).mean()) if self.edge_index.shape[1] else 1.0


def incoming_matrix(edge_index: np.ndarray, edge_weight: np.ndarray, n_cells: int) -> sp.csr_matrix:
    """``(n, n)`` CSR whose row ``i`` holds the senders of cell ``i``'s messages and their weights."""
    matrix = sp.csr_matrix((edge_weight, (edge_index[1], edge_index[0])), shape=(n_cells, n_cells))
    matrix.sort_indices()
    return matrix


def _neighbours(graph: sp.csr_matrix, frontier: np.ndarray) -> np.ndarray:
    """All entries of the rows ``frontier`` of ``graph``, concatenated (with repeats)."""
    starts, lengths = graph.indptr[frontier], np.diff(graph.indptr)[frontier]
    offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
    return graph.indices[offsets]


def grow_balls(graph: sp.csr_matrix, cells: np.ndarray, n_parts: int) -> list[np.ndarray]:
    """Split ``cells`` into ``n_parts`` groups (sizes differ by at most one) grown breadth first on ``graph``.

    ``graph`` is symmetric. Each group starts from the first free cell in reverse Cuthill-McKee
    order (so consecutive groups lie side by side) and takes, level by level, the free
    neighbours with the most edges into the group so far.
    """
    n = graph.shape[0]
    free = np.zeros(n, dtype=bool)
    free[cells] = True
    order = reverse_cuthill_mckee(graph, symmetric_mode=True)
    order = order[free[order]]
    sizes = [len(cells) // n_parts + (i < len(cells) % n_parts) for i in range(n_parts)]
    groups, cursor = [], 0
    for size in sizes:
        group, taken = [np.empty(0, dtype=np.int64)], 0
        frontier = np.empty(0, dtype=np.int64)
        while taken < size:
            candidates = _neighbours(graph, frontier) if frontier.size else frontier
            candidates = candidates[free[candidates]]
            if candidates.size:
                found, counts = np.unique(candidates, return_counts=True)
                frontier = found[np.argsort(-counts, kind="stable")][: size - taken]
            else:  # the reachable free cells are used up: start again elsewhere
                while not free[order[cursor]]:
                    cursor += 1
                frontier = order[cursor : cursor + 1]
            free[frontier] = False
            group.append(frontier)
            taken += frontier.size
        groups.append(np.sort(np.concatenate(group)))
    return groups


def shard_groups(graph: sp.csr_matrix, shard: np.ndarray, n_parts: int, capacity: int) -> list[np.ndarray]:
    """The seed groups of one process's ``shard`` (sorted ids): balls on ``graph``, their borders refined."""
    groups = grow_balls(graph, shard, n_parts)
    if n_parts == 1:
        return groups
    local = graph if shard.size == graph.shape[0] else graph[shard][:, shard]
    refined = refine_groups(local.tocsr(), [np.searchsorted(shard, g) for g in groups], capacity)
    return [shard[g] for g in refined]


def make_batch(incoming: sp.csr_matrix, seeds: np.ndarray, position: np.ndarray, owned: np.ndarray) -> GraphBatch:
    """The batch of ``seeds`` with their in-neighbours as context, those outside ``owned`` first.

    ``position`` is an ``(n,)`` scratch array of -1, restored before returning, so that a batch
    costs O(its edges) and not O(cells); ``owned`` marks this process's shard, ``(n,)`` bool.
    """
    rows = incoming[seeds]
    senders = rows.indices
    position[seeds] = np.arange(seeds.size)
    context = np.unique(senders[position[senders] < 0])
    elsewhere = ~owned[context]
    context = np.concatenate([context[elsewhere], context[~elsewhere]])
    position[context] = seeds.size + np.arange(context.size)
    edge_index = np.stack([position[senders], np.repeat(np.arange(seeds.size), np.diff(rows.indptr))])
    position[seeds] = -1
    position[context] = -1
    return GraphBatch(
        nodes=np.concatenate([seeds, context]).astype(np.int64),
        n_seeds=int(seeds.size),
        edge_index=edge_index.astype(np.int32 if position.size < 2**31 else np.int64),
        edge_weight=rows.data.astype(np.float32),
        n_encoded=int(seeds.size + elsewhere.sum()),
    )


class BatchPlan:
    """The batches of one process: its shard of the cells, cut into ``steps_per_epoch`` graph-aware batches.

    One process with ``batch_size`` at least the number of cells trains full-batch: a single
    batch of all cells in their own order, with the graph as given. Otherwise the cells are
    first split into ``world_size`` disjoint shards that together cover every cell (one per
    process), and each shard into the same number of batches on every process, so the
    processes step together.

    Parameters
    ----------
    edge_index, edge_weight
        The cell graph, as :func:`dagcl_scverse.model.trainer.train` takes it.
    n_cells
        Number of cells.
    batch_size
        Seed cells per step (``None``: all of this process's cells in one step).
    rank, world_size
        This process and the number of processes.
    """

    def __init__(
        self,
        edge_index: np.ndarray,
        edge_weight: np.ndarray,
        n_cells: int,
        *,
        batch_size: int | None,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.n_cells = n_cells
        #: the whole graph (the initial partition's modularity reads it)
        self.graph_edges = (edge_index, edge_weight)
        if world_size == 1 and (batch_size is None or batch_size >= n_cells):
            self.shards = [np.arange(n_cells)]
            everyone = np.arange(n_cells)
            self.batches = [GraphBatch(everyone, n_cells, np.asarray(edge_index), np.asarray(edge_weight), n_cells)]
            return
        incoming = incoming_matrix(edge_index, edge_weight, n_cells)
        symmetric = ((incoming + incoming.T) > 0).astype(np.int8).tocsr()
        everyone = np.arange(n_cells)
        self.shards = [everyone] if world_size == 1 else grow_balls(symmetric, everyone, world_size)
        largest = max(shard.size for shard in self.shards)
        capacity = largest if batch_size is None else min(batch_size, largest)
        steps = math.ceil(largest / capacity)
        position = np.full(n_cells, -1, dtype=np.int64)
        owned = np.zeros(n_cells, dtype=bool)
        owned[self.shards[rank]] = True
        self.batches = [
            make_batch(incoming, seeds, position, owned)
            for seeds in shard_groups(symmetric, self.shards[rank], steps, capacity)
        ]

    @property
    def full_batch(self) -> bool:
        """Whether the one batch is every cell with the whole graph."""
        return len(self.shards) == 1 and len(self.batches) == 1

    @property
    def steps_per_epoch(self) -> int:
        """Batches (optimisation steps) per epoch on this process."""
        return len(self.batches)

    def epoch_order(self, epoch: int, seed: int) -> list[GraphBatch]:
        """The batches of ``epoch``, in a seeded order."""
        if len(self.batches) == 1:
            return self.batches
        order = np.random.default_rng([seed, epoch]).permutation(len(self.batches))
        return [self.batches[i] for i in order]


@dataclass(frozen=True)
class DeviceGraph:
    """A batch's edges on the training device, sorted once for the attention layer and the smoothness loss."""

    edge_index: torch.Tensor
    edge_weight: torch.Tensor
    sorted: SortedGraph
    #: the edges between seeds (context cells have no embedding of their own to smooth)
    smoothness: SmoothnessGraph

    @classmethod
    def from_batch(cls, batch: GraphBatch, device: torch.device) -> DeviceGraph:
        """The edges of ``batch`` on ``device``."""
        edge_index = torch.as_tensor(batch.edge_index, dtype=torch.long, device=device)
        edge_weight = torch.as_tensor(batch.edge_weight, dtype=torch.float32, device=device)
        inside = edge_index[0] < batch.n_seeds
        return cls(
            edge_index=edge_index,
            edge_weight=edge_weight,
            sorted=SortedGraph.from_edge_index(edge_index, batch.nodes.size),
            smoothness=SmoothnessGraph.from_edges(edge_index[:, inside], edge_weight[inside], batch.n_seeds),
        )


@dataclass
class DeviceBatch:
    """A batch's tensors on the training device (``seed_ids``: the seeds' global ids on the host)."""

    seeds: torch.Tensor
    seed_ids: np.ndarray
    n_seeds: int
    full: bool
    features: object
    graph: DeviceGraph
    #: a mini-batch's standardisation, set by its representation losses (see LatentBank)
    latent_mean: torch.Tensor | None = None
    latent_std: torch.Tensor | None = None


class DeviceBatches:
    """Device tensors of the plan's batches.

    Each batch's graph is built and sorted once and kept (about 2 GB per million cells at 15
    neighbours, less than sorting it again at every step costs in time); a mini-batch's
    features are copied to the device at each use, so that only one batch of them is held
    there at a time; the full batch keeps its features.
    """

    def __init__(self, plan: BatchPlan, cells: CellFeatures) -> None:
        self.plan, self.cells = plan, cells
        self._graphs: dict[int, DeviceGraph] = {}
        self._full = self._device_batch(plan.batches[0]) if plan.full_batch else None

    def get(self, batch: GraphBatch, *, encoded_only: bool = False) -> DeviceBatch:
        """The tensors of ``batch``, one of ``plan.batches``.

        ``encoded_only``: features of its first ``n_encoded`` nodes only, for a training step
        that reads the other context cells' first layer from a history.
        """
        return self._full or self._device_batch(batch, encoded_only)

    def _device_batch(self, batch: GraphBatch, encoded_only: bool = False) -> DeviceBatch:
        graph = self._graphs.get(id(batch))
        if graph is None:
            graph = self._graphs[id(batch)] = DeviceGraph.from_batch(batch, self.cells.device)
        full = self.plan.full_batch
        return DeviceBatch(
            seeds=torch.as_tensor(batch.seeds, device=self.cells.device),
            seed_ids=batch.seeds,
            n_seeds=batch.n_seeds,
            full=full,
            features=self.cells.encoder_input(
                None if full else batch.nodes[: batch.n_encoded] if encoded_only else batch.nodes
            ),
            graph=graph,
        )
