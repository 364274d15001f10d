"""DAGCL training: pre-train -> initialise centres -> self-train with scheduled, balanced KL.

One loop serves every mode: an epoch is one pass over all cells in ``steps_per_epoch``
graph-aware batches (:mod:`.batches`); full-batch training is the case of one batch holding
every cell, and data-parallel training (:mod:`.world`) gives each process a disjoint shard of
the cells, whose gradients are averaged. Targets are refreshed globally, from an inference
pass over every cell, so all batches and processes train against the same targets.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from . import losses, schedules
from .batches import BatchPlan, DeviceBatch, DeviceBatches, GraphBatch
from .centre_init import SCALE_MAX_VALUE
from .chunked_pca import principal_components
from .config import TrainingConfig
from .context_history import ContextHistory
from .features import CellFeatures
from .inference import embed, latent_statistics, state_dict_arrays
from .kmeans import kmeans
from .latent_bank import LatentBank, statistics
from .module import DAGCLModule
from .restarts import most_modular_partition
from .sinkhorn import sinkhorn_balance
from .standardisation_gradient import GradientBank
from .world import World

HISTORY_SCALARS = (
    "epoch",
    "phase",
    "loss_total",
    "loss_recon",
    "loss_decorrelation",
    "loss_smoothness",
    "loss_kl",
    "gamma",
    "capacity",
    "aggregation",
    "curriculum_share",
    "label_change",
    "assignment_entropy",
    "confident_share",
)
LOSS_SCALARS = ("loss_total", "loss_recon", "loss_decorrelation", "loss_smoothness", "loss_kl")

#: Adam step size when fitting the centres to the initial partition
CENTRE_FIT_LR = 0.05
#: above this many cells the centres are fitted to the initial partition, and Sinkhorn's column
#: scaling solved, on a seeded subsample of this size
FIT_CELLS = 50_000


class TrainingDivergedError(FloatingPointError):
    """A loss became NaN or infinite during training."""


@dataclass
class TrainingResult:
    """What a run produces, as numpy arrays on the CPU."""

    #: ``(n, latent)`` embedding standardised per dimension: the space the soft assignment is computed in
    embedding: np.ndarray
    proba: np.ndarray
    labels: np.ndarray
    history: dict[str, np.ndarray]
    stages: dict[str, np.ndarray] | None
    #: the initial partition the centres were fitted to (cluster j of it initialised centre j)
    initial_labels: np.ndarray | None = None
    #: the labels a run with one self-training epoch returns (the start of self-training)
    start_labels: np.ndarray | None = None
    #: the trained module's parameters as numpy arrays, without the centres (see ``inference.state_dict_arrays``)
    state_dict: dict[str, np.ndarray] | None = None
    #: ``(k, latent)`` cluster centres, in the numbering of ``labels``
    centres: np.ndarray | None = None
    #: per-dimension mean and standard deviation of the encoder's final output, that ``embedding`` was standardised with
    latent_mean: np.ndarray | None = None
    latent_std: np.ndarray | None = None
    #: aggregation strength and channel capacity of the final inference pass
    aggregation: float | None = None
    capacity: float | None = None
    #: optimisation steps per epoch (1: full-batch), seed cells of the largest step, the number of processes
    steps_per_epoch: int = 1
    batch_size: int = 0
    world_size: int = 1
    #: wall seconds per epoch of the training pass (``"epoch_seconds"``) and of the one-off work
    #: before it (``"one_off_seconds"``: initial partition and centre fit, global target refreshes)
    timings: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class _Targets:
    """The self-training state a global refresh renews."""

    reference_labels: torch.Tensor
    proportions: torch.Tensor
    p: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    column_potential: torch.Tensor | None = None


@dataclass
class _EpochRecord:
    """Per-cell results of one epoch, each cell written by the one batch that scores it."""

    n_cells: int
    k: int
    device: torch.device
    keep_latent: bool = False
    sums: dict[str, float] = field(default_factory=dict)
    labels: torch.Tensor | None = None
    entropy: torch.Tensor | None = None
    confident: torch.Tensor | None = None
    latent: torch.Tensor | None = None

    def add_losses(self, values: dict[str, float]) -> None:
        for name, value in values.items():
            self.sums[name] = self.sums.get(name, 0.0) + value

    def add_assignments(self, seeds: torch.Tensor, z: torch.Tensor, q: torch.Tensor, threshold: float) -> None:
        if self.labels is None:
            self.labels = torch.zeros(self.n_cells, dtype=torch.long, device=self.device)
            self.entropy = torch.zeros(self.n_cells, dtype=q.dtype, device=self.device)
            self.confident = torch.zeros(self.n_cells, dtype=q.dtype, device=self.device)
            if self.keep_latent:
                self.latent = torch.zeros(self.n_cells, z.shape[1], dtype=z.dtype, device=self.device)
        self.labels[seeds] = q.argmax(1)
        self.entropy[seeds] = -(q * torch.log(q.clamp_min(1e-12))).sum(1)
        self.confident[seeds] = (q.max(1).values >= threshold).to(q.dtype)
        if self.latent is not None:
            self.latent[seeds] = z


def _training_progress(epoch: int, config: TrainingConfig) -> float:
    """Progress in [0, 1] that drives aggregation and capacity.

    Pre-training fills the first half and self-training the second, so the number of
    self-training epochs never changes pre-training.
    """
    if epoch < config.pretrain_epochs:
        return 0.5 * epoch / config.pretrain_epochs
    t = (epoch - config.pretrain_epochs) / max(config.epochs - 1, 1)
    return 0.5 + 0.5 * t


def _aggregation_capacity(config: TrainingConfig, progress: float) -> tuple[float, float]:
    agg_end = config.aggregation_end
    if config.dynamic_attention:
        return (
            schedules.aggregation(progress, config.aggregation_start, agg_end),
            schedules.capacity(progress, config.capacity_start, config.capacity_warmup),
        )
    return agg_end, 1.0


def _marginals(proportions: torch.Tensor, config: TrainingConfig) -> torch.Tensor:
    # a floor, not a uniform mixture: mixing would shrink large clusters at every refresh and,
    # fed back through the hard labels, balance them away over training
    k = proportions.shape[0]
    # the small absolute floor keeps an emptied cluster's log-marginal finite
    marginals = proportions.clamp_min(max(config.proportion_floor / k, 1e-6))
    return marginals / marginals.sum()


def _targets(
    q: torch.Tensor,
    proportions: torch.Tensor,
    t: float,
    config: TrainingConfig,
    column_potential: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Targets p and, when balancing, Sinkhorn's column potential to warm-start the next refresh.

    The balanced targets are Sinkhorn's plan normalised per cell, which is ``q ** sharpen``
    times the column scaling, renormalised: above ``FIT_CELLS`` cells that scaling is solved on
    a seeded subsample of the cells and applied to every cell.
    """
    sharpen = schedules.sharpening(t, end=config.sharpen_end)
    if not config.balance:
        p = q.pow(sharpen)
        return p / p.sum(1, keepdim=True), column_potential
    log_q = torch.log(q.clamp_min(1e-12))
    fit = _fit_cells(q.shape[0], config.random_state)
    _, column_potential = sinkhorn_balance(
        log_q[fit],
        _marginals(proportions, config),
        sharpen=sharpen,
        column_potential=column_potential,
        return_potential=True,
    )
    return torch.softmax(sharpen * log_q + column_potential, dim=1), column_potential


def step_learning_rate(lr: float, steps_per_epoch: int) -> float:
    """The learning rate of one self-training step: ``lr`` shared out over the epoch's steps.

    An epoch of self-training in many small steps then moves the weights about as far as one
    full-batch step (the linear scaling rule): at full ``lr`` each, the extra steps drifted the
    labels ("What we tried" #53). Pre-training keeps the full ``lr``: shared out there too, it
    left CITE CBMC's representation behind (#55).
    """
    return lr / steps_per_epoch


def _fit_centres(
    model: DAGCLModule,
    z: torch.Tensor,
    labels: torch.Tensor,
    steps: int,
    *,
    mean: torch.Tensor | None = None,
    std: torch.Tensor | None = None,
) -> None:
    """Move the centres (embedding fixed) so that the soft assignment reproduces ``labels``.

    Centres without cells in ``labels`` (fill-ins on tiny data) keep their place: the fit would
    push them away from every cell. ``mean`` and ``std`` standardise the embedding (see
    :meth:`DAGCLModule.cluster_space`; by default those of ``z``).
    """
    z = z.detach()
    start = model.centres.detach().clone()
    has_cells = torch.bincount(labels, minlength=start.shape[0]) > 0
    optimiser = torch.optim.Adam([model.centres], lr=CENTRE_FIT_LR)
    for _ in range(steps):
        optimiser.zero_grad(set_to_none=True)
        q = model.soft_assign(z, mean=mean, std=std)
        torch.nn.functional.nll_loss(torch.log(q.clamp_min(1e-12)), labels).backward()
        optimiser.step()
    with torch.no_grad():
        model.centres[~has_cells] = start[~has_cells]
    model.centres.grad = None


def _fit_cells(n: int, seed: int) -> slice | torch.Tensor:
    """The cells the centre fit and Sinkhorn read: all of them, or a seeded subsample above ``FIT_CELLS``."""
    if n <= FIT_CELLS:
        return slice(None)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:FIT_CELLS]


def _partition_space(init_space: str, cells: CellFeatures, zc: torch.Tensor, seed: int) -> torch.Tensor:
    """The cells' coordinates for the initial partition, as ``config.init_space`` names them."""
    if init_space == "embedding":
        return zc
    if init_space not in ("input_pca_scaled", "input_pca"):
        raise ValueError(f"Unknown init_space {init_space!r}; choose 'input_pca_scaled', 'input_pca' or 'embedding'.")
    scale_max = SCALE_MAX_VALUE if init_space == "input_pca_scaled" else None
    return torch.as_tensor(principal_components(cells.matrix, scale_max=scale_max, seed=seed), device=zc.device)


def _curriculum_mask(p: torch.Tensor, share: float) -> torch.Tensor:
    n = p.shape[0]
    n_keep = max(1, math.ceil(share * n))
    order = torch.argsort(-p.max(1).values, stable=True)
    mask = torch.zeros(n, dtype=torch.bool, device=p.device)
    mask[order[:n_keep]] = True
    return mask


def _encode(run: _Run, batch: DeviceBatch, agg: float, cap: float) -> torch.Tensor:
    """The training embedding of the seeds of ``batch`` (from :meth:`_Run.training_batch`)."""
    model, graph = run.model, batch.graph
    h = model.input_layer(batch.features) if run.history is None else run.history.first_layer(model, batch)
    z = model.encode_hidden(h, graph.edge_index, graph.edge_weight, aggregation=agg, capacity=cap, graph=graph.sorted)
    return z[: batch.n_seeds]


def _soft_assign(model, z: torch.Tensor, batch: DeviceBatch) -> torch.Tensor:
    # the full batch standardises with its own statistics (with gradients); a mini-batch with
    # those of every cell's latest embedding, differentiable in its own rows (see LatentBank)
    if batch.full:
        return model.soft_assign(z)
    return model.soft_assign(z, mean=batch.latent_mean, std=batch.latent_std)


def _representation_losses(run, z: torch.Tensor, batch: DeviceBatch, weight_smoothness: float):
    """Total and parts of the representation losses: reconstruction of a seeded subset, decorrelation, smoothness.

    A mini-batch measures decorrelation and standardises for smoothness (and for its soft
    assignment, stored on ``batch``) with the moments of every cell's latest embedding.
    """
    config = run.config
    recon_idx = torch.randperm(batch.n_seeds, generator=run.generator)[: config.recon_cells]
    target = run.cells.dense_rows(batch.seed_ids[recon_idx.numpy()])
    recon = losses.reconstruction(_decode_rows(run.model, z, recon_idx), target)
    if batch.full:
        decor, smooth = losses.decorrelation(z), losses.graph_smoothness(z, batch.graph.smoothness)
    else:
        mean, second = run.bank.moments(batch.seeds, z)
        batch.latent_mean, batch.latent_std = statistics(mean, second, z.dtype)
        decor = losses.decorrelation_from_moments(mean, second).to(z.dtype)
        smooth = losses.graph_smoothness(z, batch.graph.smoothness, mean=batch.latent_mean, std=batch.latent_std)
    total = recon + config.weight_decorrelation * decor + weight_smoothness * smooth
    return total, recon, decor, smooth


def _decode_rows(model: DAGCLModule, z: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Reconstruction of the cells ``rows`` of the batch embedding ``z``."""
    return model.decode(torch.index_select(z, 0, rows.to(z.device)))


def _global_embedding(model, batches: DeviceBatches, world: World, agg: float, cap: float) -> torch.Tensor:
    """The embedding ``(n, latent)`` of every cell, each encoded by the process whose shard holds it."""
    z_all = None
    for batch in batches.plan.batches:
        on_device = batches.get(batch)
        graph = on_device.graph
        z = embed(
            model, on_device.features, graph.edge_index, graph.edge_weight, aggregation=agg, capacity=cap,
            graph=graph.sorted,
        )[: on_device.n_seeds]  # fmt: skip
        if on_device.full:
            return z
        if z_all is None:
            z_all = torch.zeros(batches.plan.n_cells, z.shape[1], dtype=z.dtype, device=z.device)
        z_all[on_device.seeds] = z
    return world.sum_(z_all)


@dataclass
class _Run:
    """What every step of a run reads: the model and optimiser, the data, the processes, the settings."""

    model: DAGCLModule
    optimiser: torch.optim.Optimizer
    cells: CellFeatures
    batches: DeviceBatches
    world: World
    config: TrainingConfig
    generator: torch.Generator
    steps_taken: int = 0
    timings: dict[str, np.ndarray] = field(default_factory=dict)
    bank: LatentBank | None = None
    #: mini-batches: the first layer of context cells, kept from their own batch's step
    history: ContextHistory | None = None
    #: the sums that give a mini-batch's KL term a full batch's gradient through the standardisation
    gradient_bank: GradientBank = field(default_factory=GradientBank)

    def training_batch(self, batch: GraphBatch) -> DeviceBatch:
        """The tensors a training step of ``batch`` reads (without the kept context's features)."""
        return self.batches.get(batch, encoded_only=self.history is not None)

    def reset_bank(self, z: torch.Tensor) -> None:
        """Start the bank of latest embeddings from a global pass (mini-batches only)."""
        if not self.batches.plan.full_batch:
            self.bank = LatentBank(z)

    def step(self, loss: torch.Tensor, epoch: int, batch: DeviceBatch, z: torch.Tensor) -> None:
        """Backpropagate ``loss``, average the gradients over the processes, update."""
        if not torch.isfinite(loss):
            raise TrainingDivergedError(
                f"The DAGCL loss became {loss.item()} at epoch {epoch}. Try a lower `lr` "
                "(e.g. lr=1e-4) and check that the features are log-normalised and finite."
            )
        loss.backward()
        self.world.average_gradients(p for p in self.model.parameters() if p.requires_grad)
        self.optimiser.step()
        if self.bank is not None:
            self.bank.update(batch.seeds, z, self.world)
        self.steps_taken += 1
        if self.steps_taken == 1:
            self.world.after_first_step()

    def global_embedding(self, agg: float, cap: float) -> torch.Tensor:
        return _global_embedding(self.model, self.batches, self.world, agg, cap)


def _initial_partition(run: _Run, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Centres and labels of the initial partition of the embedding ``z`` of every cell."""
    config, model = run.config, run.model
    zc = model.cluster_space(z, mean=z.mean(0), std=z.std(0, unbiased=False))
    if config.centre_init == "kmeans":
        return kmeans(zc, config.n_clusters, seed=config.random_state)
    edges, weights = run.batches.plan.graph_edges
    space = _partition_space(config.init_space, run.cells, zc, config.random_state)
    centres, labels, _ = most_modular_partition(
        zc, config.n_clusters, space=space, restarts=config.partition_restarts, seed=config.random_state,
        edge_index=torch.as_tensor(edges, dtype=torch.long, device=z.device),
        edge_weight=torch.as_tensor(weights, dtype=torch.float32, device=z.device),
        absorb_noise=config.absorb_noise_clusters,
    )  # fmt: skip
    return centres, labels


def _start_self_training(run: _Run, agg: float, cap: float) -> _Targets:
    """Initial partition, centres fitted to it, the partition carried into the embedding, the self-training rate."""
    config, model = run.config, run.model
    z = run.global_embedding(agg, cap)
    run.reset_bank(z)
    centres, labels = _initial_partition(run, z)
    mean, std = latent_statistics(z)
    model.init_centres(centres)
    if config.centre_fit_steps:
        fit = _fit_cells(z.shape[0], config.random_state)
        _fit_centres(model, z[fit], labels[fit], config.centre_fit_steps, mean=mean, std=std)
    run.world.broadcast_parameters(model)
    run.optimiser.add_param_group({"params": [model.centres]})
    targets = _Targets(
        reference_labels=labels,
        proportions=torch.bincount(labels, minlength=config.n_clusters).to(z) / z.shape[0],
    )
    for group in run.optimiser.param_groups:
        group["lr"] = step_learning_rate(config.lr, run.batches.plan.steps_per_epoch)
    _carry_partition(run, labels, agg, cap)
    return targets


def _carry_partition(run: _Run, labels: torch.Tensor, agg: float, cap: float) -> None:
    """Joint encoder + centre steps towards ``labels``, with the pre-training losses on.

    The embedding keeps what it learned while the partition is carried into it, so the start of
    self-training is the partition. ``carry_steps`` counts full-batch steps: in mini-batches
    every batch takes that many steps, at the self-training rate (one full-batch step's worth
    per epoch). Fifty steps shared out over 17 batches of 512 on CITE CBMC reached each cell
    about three times, and the start of self-training lost 0.13 ARI against the partition
    ("What we tried" #63).
    """
    config, model, plan = run.config, run.model, run.batches.plan
    after_training = config.pretrain_epochs + config.epochs  # batch orders of their own
    for epoch in range(config.carry_steps):
        for graph_batch in plan.epoch_order(after_training + epoch, config.random_state):
            batch = run.training_batch(graph_batch)
            run.optimiser.zero_grad(set_to_none=True)
            z_batch = _encode(run, batch, agg, cap)
            loss = _representation_losses(run, z_batch, batch, config.weight_smoothness)[0]
            q = _soft_assign(model, z_batch, batch)
            loss = loss + torch.nn.functional.nll_loss(torch.log(q.clamp_min(1e-12)), labels[batch.seeds])
            run.step(loss, config.pretrain_epochs, batch, z_batch)


def _refresh(run: _Run, targets: _Targets, agg: float, cap: float, t: float) -> float:
    """New targets from a global pass over every cell; returns the share of labels changed."""
    config = run.config
    z = run.global_embedding(agg, cap)
    run.reset_bank(z)
    with torch.no_grad():
        q = run.model.soft_assign(z, mean=z.mean(0), std=z.std(0, unbiased=False))
    labels = q.argmax(1)
    change = (labels != targets.reference_labels).float().mean().item()
    if targets.p is not None:
        hard = targets.p.argmax(1) if config.proportions_from_targets else targets.reference_labels
        counts = torch.bincount(hard, minlength=config.n_clusters).to(q) / q.shape[0]
        momentum = config.proportion_momentum
        targets.proportions = (1 - momentum) * targets.proportions + momentum * counts
    targets.p, targets.column_potential = _targets(q, targets.proportions, t, config, targets.column_potential)
    share = schedules.curriculum_share(t, config.curriculum_start) if config.curriculum else 1.0
    targets.mask = _curriculum_mask(targets.p, share)
    targets.reference_labels = labels
    return change


def _stage_setup(config: TrainingConfig, stage_indices) -> tuple[dict[int, int], dict | None]:
    """Stage snapshot epochs (epoch -> snapshot) and the empty snapshot arrays."""
    stage_epochs = {
        config.pretrain_epochs + round(p * max(config.epochs - 1, 0)): i for i, p in enumerate(config.stage_progress)
    }
    if not stage_epochs or stage_indices is None:
        return {}, None
    return stage_epochs, {
        "progress": np.asarray(config.stage_progress, dtype=float),
        "indices": np.asarray(stage_indices, dtype=np.int64),
        "latent": np.zeros((len(config.stage_progress), len(stage_indices), config.latent), np.float32),
        "labels": np.zeros((len(config.stage_progress), len(stage_indices)), np.int64),
    }


def _self_training_assign(run: _Run, z: torch.Tensor, batch: DeviceBatch) -> torch.Tensor:
    """The soft assignment the KL term trains: a mini-batch's standardisation backpropagates as a full batch's.

    With the bank's statistics differentiable in the batch's rows alone (as the carry uses
    them), a mini-batch's KL term kept worm neuron's labels no better than no KL term at all
    ("What we tried" #64).
    """
    if batch.full:
        return run.model.soft_assign(z)
    # seeds are disjoint, so a batch's first seed names it
    zs = run.gradient_bank.standardise(z, batch.latent_mean, batch.latent_std + 1e-6, int(batch.seed_ids[0]))
    return run.model.assign_standardised(zs)


def _self_training_loss(run: _Run, z, batch, targets: _Targets, t: float, record: _EpochRecord) -> torch.Tensor:
    """The scheduled KL term of one batch; its assignments and embeddings go into ``record``."""
    config = run.config
    q = _self_training_assign(run, z, batch)
    record.add_assignments(batch.seeds, z.detach(), q.detach(), config.confidence_threshold)
    loss_kl = losses.kl_divergence(targets.p[batch.seeds], q, targets.mask[batch.seeds])
    record.add_losses({"loss_kl": loss_kl.item()})
    return schedules.gamma(t, config.schedule) * config.weight_kl * loss_kl


def _train_epoch(
    run: _Run, epoch: int, targets: _Targets | None, agg: float, cap: float, *, keep_latent: bool
) -> _EpochRecord:
    """One pass over every cell, in this epoch's batches."""
    config = run.config
    phase = int(epoch >= config.pretrain_epochs)
    t = (epoch - config.pretrain_epochs) / max(config.epochs - 1, 1)
    weight_smooth = config.weight_smoothness if phase == 0 else config.weight_smoothness_self
    record = _EpochRecord(run.batches.plan.n_cells, config.n_clusters, run.cells.device, keep_latent=keep_latent)
    run.model.train()
    for plan_batch in run.batches.plan.epoch_order(epoch, config.random_state):
        batch = run.training_batch(plan_batch)
        run.optimiser.zero_grad(set_to_none=True)
        z = _encode(run, batch, agg, cap)
        loss, recon, decor, smooth = _representation_losses(run, z, batch, weight_smooth)
        if phase:
            loss = loss + _self_training_loss(run, z, batch, targets, t, record)
        run.step(loss, epoch, batch, z)
        record.add_losses(
            {"loss_total": loss.item(), "loss_recon": recon.item(), "loss_decorrelation": decor.item(),
             "loss_smoothness": smooth.item()}
        )  # fmt: skip
    return record


def _write_epoch(history, epoch: int, record: _EpochRecord, run: _Run, targets, label_change) -> None:
    """The epoch's means over its steps, and its per-cell results over every cell."""
    config, world = run.config, run.world
    for name, value in record.sums.items():
        history[name][epoch] = value / run.batches.plan.steps_per_epoch
    if record.labels is None:
        return
    labels, n, k = world.sum_(record.labels), record.n_cells, record.k
    entropy = world.sum_(record.entropy).sum().item() / n
    t = (epoch - config.pretrain_epochs) / max(config.epochs - 1, 1)
    history["gamma"][epoch] = schedules.gamma(t, config.schedule)
    history["curriculum_share"][epoch] = targets.mask.float().mean().item()
    history["assignment_entropy"][epoch] = entropy / math.log(k) if k > 1 else 0.0
    history["confident_share"][epoch] = world.sum_(record.confident).sum().item() / n
    if label_change is None:
        label_change = (labels != targets.reference_labels).float().mean().item()
    history["label_change"][epoch] = label_change
    history["cluster_sizes"][epoch] = torch.bincount(labels, minlength=k).cpu().numpy()
    record.labels = labels


def _snapshot(stages: dict, index: int, record: _EpochRecord, world: World) -> None:
    """Stage ``index`` from the epoch's per-cell embeddings and labels."""
    cells = torch.as_tensor(stages["indices"], device=record.labels.device)
    stages["latent"][index] = world.sum_(record.latent[cells].contiguous()).cpu().numpy()
    stages["labels"][index] = record.labels[cells].cpu().numpy()


def train(
    features,
    edge_index: np.ndarray,
    edge_weight: np.ndarray,
    config: TrainingConfig,
    *,
    device: str | torch.device = "cpu",
    progress_bar: bool = True,
    stage_indices: np.ndarray | None = None,
    world: World | None = None,
) -> TrainingResult:
    """Train DAGCL on a cell graph and return embedding, soft assignments and history.

    Parameters
    ----------
    features
        ``(n, f)`` input features: a scipy sparse matrix (genes; it is never densified) or a
        dense float array (a representation).
    edge_index
        ``(2, E)`` int array, row 0 the source and row 1 the target cell of each edge;
        every cell must have at least one incoming edge.
    edge_weight
        ``(E,)`` positive edge weights.
    config
        Resolved settings; ``config.batch_size`` seed cells per step (``None``: full-batch).
    device
        Torch device to train on.
    progress_bar
        Show a tqdm bar over epochs.
    stage_indices
        Cells whose embedding and labels are snapshotted at ``config.stage_progress``.
    world
        The processes training together (:meth:`World.current` when None); each trains on its
        own shard of the cells, and every process returns the same result.
    """
    device = torch.device(device)
    world = World.current() if world is None else world
    total_epochs = config.pretrain_epochs + config.epochs
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(config.random_state)
        cells = CellFeatures(features, device)
        plan = BatchPlan(
            edge_index,
            edge_weight,
            cells.shape[0],
            batch_size=config.batch_size,
            rank=world.rank,
            world_size=world.size,
        )
        model = DAGCLModule(
            cells.shape[1], hidden=config.hidden, attention_channels=config.attention_channels, latent=config.latent,
            learn_temperature=config.dynamic_attention, alpha=config.student_t_dof,
        ).to(device)  # fmt: skip
        world.broadcast_parameters(model)
        run = _Run(
            model, torch.optim.Adam(model.parameters(), lr=config.lr), cells, DeviceBatches(plan, cells), world, config,
            torch.Generator().manual_seed(config.random_state),
        )  # fmt: skip
        history = {name: np.full(total_epochs, np.nan) for name in HISTORY_SCALARS}
        history["cluster_sizes"] = np.full((total_epochs, config.n_clusters), np.nan)
        stage_epochs, stages = _stage_setup(config, stage_indices)
        refresh_every = max(1, config.update_interval)
        targets = initial_labels = start_labels = None
        timings = {name: np.zeros(total_epochs) for name in ("epoch_seconds", "one_off_seconds")}
        if not plan.full_batch:
            run.reset_bank(run.global_embedding(*_aggregation_capacity(config, 0.0)))
            if config.context_history:
                run.history = ContextHistory(plan, config.hidden, device)
                run.history.fill(model, cells)
        bar = tqdm(range(total_epochs), desc="DAGCL", disable=not progress_bar, unit="epoch")
        for epoch in bar:
            phase = int(epoch >= config.pretrain_epochs)
            agg, cap = _aggregation_capacity(config, _training_progress(epoch, config))
            label_change = None
            started = time.perf_counter()
            if epoch == config.pretrain_epochs:
                targets = _start_self_training(run, agg, cap)
                initial_labels = targets.reference_labels.cpu().numpy()
            if phase and (epoch - config.pretrain_epochs) % refresh_every == 0:
                t = (epoch - config.pretrain_epochs) / max(config.epochs - 1, 1)
                label_change = _refresh(run, targets, agg, cap, t)
            timings["one_off_seconds"][epoch] = time.perf_counter() - started
            started = time.perf_counter()
            record = _train_epoch(run, epoch, targets, agg, cap, keep_latent=epoch in stage_epochs)
            timings["epoch_seconds"][epoch] = time.perf_counter() - started
            if epoch == config.pretrain_epochs:
                started = time.perf_counter()
                start_labels = _final_assignment(run, agg, cap)[1].argmax(1).cpu().numpy()
                timings["one_off_seconds"][epoch] += time.perf_counter() - started
            history["epoch"][epoch], history["phase"][epoch] = epoch, phase
            history["capacity"][epoch], history["aggregation"][epoch] = cap, agg
            _write_epoch(history, epoch, record, run, targets, label_change)
            if stages is not None and epoch in stage_epochs:
                _snapshot(stages, stage_epochs[epoch], record, world)
            postfix = {"phase": "self-train" if phase else "pretrain", "loss": f"{history['loss_total'][epoch]:.3g}"}
            if phase:
                postfix["kl"] = f"{history['loss_kl'][epoch]:.3g}"
            bar.set_postfix(postfix, refresh=False)
        run.timings = timings
        return _result(
            run,
            history,
            stages,
            (initial_labels, start_labels),
            *_aggregation_capacity(config, _training_progress(total_epochs - 1, config)),
        )


def _final_assignment(run: _Run, agg: float, cap: float):
    """Standardised embedding, soft assignment and the latent mean and std standardised with, of every cell."""
    z = run.global_embedding(agg, cap)
    latent_mean, latent_std = latent_statistics(z)
    with torch.no_grad():
        zs = run.model.cluster_space(z, mean=latent_mean, std=latent_std)
        return zs, run.model.assign_standardised(zs), latent_mean, latent_std


def _standardise_stages(stages: dict) -> None:
    """Each snapshot's embedding standardised per dimension over its cells, as the final one is."""
    latent = stages["latent"]
    mean, std = latent.mean(1, keepdims=True), latent.std(1, keepdims=True)
    stages["latent"] = ((latent - mean) / (std + 1e-6)).astype(np.float32)


def _result(run: _Run, history, stages, partitions, agg: float, cap: float) -> TrainingResult:
    """The final inference pass over every cell, and everything the run produced.

    ``partitions``: the initial partition and the labels after the first self-training epoch.
    """
    # the embedding as the soft assignment reads it, standardised per dimension ("What we tried" #66)
    embedding, q, latent_mean, latent_std = _final_assignment(run, agg, cap)
    if stages is not None:
        _standardise_stages(stages)
        # the snapshot at the end of self-training is the final result itself
        cells = torch.as_tensor(stages["indices"], device=embedding.device)
        for s, progress in enumerate(stages["progress"]):
            if progress >= 1.0:
                stages["latent"][s] = embedding[cells].cpu().numpy()
                stages["labels"][s] = q.argmax(1)[cells].cpu().numpy()
    return TrainingResult(
        embedding=embedding.cpu().numpy(),
        proba=q.cpu().numpy(),
        labels=q.argmax(1).cpu().numpy(),
        history=history,
        stages=stages,
        initial_labels=partitions[0],
        start_labels=partitions[1],
        state_dict=state_dict_arrays(run.model),
        centres=run.model.centres.detach().cpu().numpy().copy(),
        latent_mean=latent_mean.cpu().numpy(),
        latent_std=latent_std.cpu().numpy(),
        aggregation=float(agg),
        capacity=float(cap),
        steps_per_epoch=run.batches.plan.steps_per_epoch,
        batch_size=max(batch.n_seeds for batch in run.batches.plan.batches),
        world_size=run.world.size,
        timings=run.timings,
    )
