"""DAGCL training: pre-train -> initialise centres -> self-train with scheduled, balanced KL."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from . import losses, schedules
from .centre_init import SCALE_MAX_VALUE, principal_components
from .config import TrainingConfig
from .inference import infer, latent_statistics, state_dict_arrays
from .kmeans import kmeans
from .module import DAGCLModule
from .restarts import most_modular_partition
from .sinkhorn import sinkhorn_balance
from .smoothness_graph import SmoothnessGraph
from .sparse_input import SparseFeatures

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


#: Adam step size when fitting the centres to the initial partition
CENTRE_FIT_LR = 0.05
#: at most this share of non-zero features: the input layer reads them as a sparse CSR matrix (CPU)
SPARSE_INPUT_MAX_DENSITY = 0.2


def _encoder_input(x: torch.Tensor) -> torch.Tensor | SparseFeatures:
    """``x`` as :class:`SparseFeatures` when it is sparse enough that the input layer runs faster that way."""
    if x.device.type != "cpu" or x.numel() == 0:
        return x
    density = torch.count_nonzero(x).item() / x.numel()
    return SparseFeatures.from_dense(x) if density <= SPARSE_INPUT_MAX_DENSITY else x


class TrainingDivergedError(FloatingPointError):
    """A loss became NaN or infinite during training."""


@dataclass
class TrainingResult:
    """What a run produces, as numpy arrays on the CPU."""

    embedding: np.ndarray
    proba: np.ndarray
    labels: np.ndarray
    history: dict[str, np.ndarray]
    stages: dict[str, np.ndarray] | None
    #: the initial partition the centres were fitted to (cluster j of it initialised centre j)
    initial_labels: np.ndarray | None = None
    #: the trained module's parameters as numpy arrays, without the centres (see ``inference.state_dict_arrays``)
    state_dict: dict[str, np.ndarray] | None = None
    #: ``(k, latent)`` cluster centres, in the numbering of ``labels``
    centres: np.ndarray | None = None
    #: per-dimension mean and standard deviation of the final embedding, that the assignment standardised with
    latent_mean: np.ndarray | None = None
    latent_std: np.ndarray | None = None
    #: aggregation strength and channel capacity of the final inference pass
    aggregation: float | None = None
    capacity: float | None = None


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
    """Targets p and, when balancing, Sinkhorn's column potential to warm-start the next refresh."""
    sharpen = schedules.sharpening(t, end=config.sharpen_end)
    if config.balance:
        marginals = _marginals(proportions, config)
        p, column_potential = sinkhorn_balance(
            torch.log(q.clamp_min(1e-12)),
            marginals,
            sharpen=sharpen,
            column_potential=column_potential,
            return_potential=True,
        )
    else:
        p = q.pow(sharpen)
    return p / p.sum(1, keepdim=True), column_potential


def _fit_centres(model: DAGCLModule, z: torch.Tensor, labels: torch.Tensor, steps: int) -> None:
    """Move the centres (embedding fixed) so that the soft assignment reproduces ``labels``.

    Centres without cells in ``labels`` (fill-ins on tiny data) keep their place: the fit would
    push them away from every cell.
    """
    z = z.detach()
    start = model.centres.detach().clone()
    has_cells = torch.bincount(labels, minlength=start.shape[0]) > 0
    optimiser = torch.optim.Adam([model.centres], lr=CENTRE_FIT_LR)
    for _ in range(steps):
        optimiser.zero_grad(set_to_none=True)
        q = model.soft_assign(z)
        torch.nn.functional.nll_loss(torch.log(q.clamp_min(1e-12)), labels).backward()
        optimiser.step()
    with torch.no_grad():
        model.centres[~has_cells] = start[~has_cells]
    model.centres.grad = None


def _representation_losses(model, z, x, config, smoothness_graph, generator, weight_smoothness):
    """Total and parts of the representation losses: reconstruction of a seeded subset, decorrelation, smoothness."""
    recon_idx = torch.randperm(x.shape[0], generator=generator)[: config.recon_cells].to(z.device)
    recon = losses.reconstruction(
        model.decode(torch.index_select(z, 0, recon_idx)), torch.index_select(x, 0, recon_idx)
    )
    decor = losses.decorrelation(z)
    smooth = losses.graph_smoothness(z, smoothness_graph)
    total = recon + config.weight_decorrelation * decor + weight_smoothness * smooth
    return total, recon, decor, smooth


def _carry_partition(model, optimiser, encode, x, labels, config, smoothness_graph, generator) -> None:
    """Train encoder and centres so that the soft assignment reproduces ``labels``.

    The representation losses of pre-training stay on, so the embedding keeps what it learned
    while the partition is carried into it: the start of self-training is the initial partition.
    """
    for _ in range(config.carry_steps):
        optimiser.zero_grad(set_to_none=True)
        z = encode()
        loss = _representation_losses(model, z, x, config, smoothness_graph, generator, config.weight_smoothness)[0]
        q = model.soft_assign(z)
        loss = loss + torch.nn.functional.nll_loss(torch.log(q.clamp_min(1e-12)), labels)
        loss.backward()
        optimiser.step()


def _partition_space(init_space: str, x: torch.Tensor, zc: torch.Tensor) -> torch.Tensor:
    """The cells' coordinates for the initial partition, as ``config.init_space`` names them."""
    if init_space == "embedding":
        return zc
    if init_space == "input_pca_scaled":
        return principal_components(x, scale_max=SCALE_MAX_VALUE)
    if init_space == "input_pca":
        return principal_components(x)
    raise ValueError(f"Unknown init_space {init_space!r}; choose 'input_pca_scaled', 'input_pca' or 'embedding'.")


def _curriculum_mask(p: torch.Tensor, share: float) -> torch.Tensor:
    n = p.shape[0]
    n_keep = max(1, math.ceil(share * n))
    order = torch.argsort(-p.max(1).values, stable=True)
    mask = torch.zeros(n, dtype=torch.bool, device=p.device)
    mask[order[:n_keep]] = True
    return mask


def _entropy(q: torch.Tensor) -> float:
    k = q.shape[1]
    h = -(q * torch.log(q.clamp_min(1e-12))).sum(1).mean().item()
    return h / math.log(k) if k > 1 else 0.0


def train(
    features: np.ndarray,
    edge_index: np.ndarray,
    edge_weight: np.ndarray,
    config: TrainingConfig,
    *,
    device: str | torch.device = "cpu",
    progress_bar: bool = True,
    stage_indices: np.ndarray | None = None,
) -> TrainingResult:
    """Train DAGCL on a cell graph and return embedding, soft assignments and history.

    Parameters
    ----------
    features
        ``(n, f)`` dense float array of input features.
    edge_index
        ``(2, E)`` int array, row 0 the source and row 1 the target cell of each edge;
        every cell must have at least one incoming edge.
    edge_weight
        ``(E,)`` positive edge weights.
    config
        Resolved settings.
    device
        Torch device to train on.
    progress_bar
        Show a tqdm bar over epochs.
    stage_indices
        Cells whose embedding and labels are snapshotted at ``config.stage_progress``.
    """
    device = torch.device(device)
    k = config.n_clusters
    n = features.shape[0]
    total_epochs = config.pretrain_epochs + config.epochs
    fork_devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(config.random_state)
        generator = torch.Generator().manual_seed(config.random_state)
        x = torch.as_tensor(features, dtype=torch.float32, device=device)
        ei = torch.as_tensor(edge_index, dtype=torch.long, device=device)
        ew = torch.as_tensor(edge_weight, dtype=torch.float32, device=device)
        x_in = _encoder_input(x)
        smoothness_graph = SmoothnessGraph.from_edges(ei, ew, n)
        model = DAGCLModule(
            x.shape[1],
            hidden=config.hidden,
            attention_channels=config.attention_channels,
            latent=config.latent,
            learn_temperature=config.dynamic_attention,
            alpha=config.student_t_dof,
        ).to(device)
        optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)

        history = {name: np.full(total_epochs, np.nan) for name in HISTORY_SCALARS}
        history["cluster_sizes"] = np.full((total_epochs, k), np.nan)
        stage_epochs = {
            config.pretrain_epochs + round(p * max(config.epochs - 1, 0)): i
            for i, p in enumerate(config.stage_progress)
        }
        stages = None
        if stage_epochs and stage_indices is not None:
            stages = {
                "progress": np.asarray(config.stage_progress, dtype=float),
                "indices": np.asarray(stage_indices, dtype=np.int64),
                "latent": np.zeros((len(config.stage_progress), len(stage_indices), config.latent), np.float32),
                "labels": np.zeros((len(config.stage_progress), len(stage_indices)), np.int64),
            }
        stage_idx = torch.as_tensor(stage_indices if stages else [], dtype=torch.long, device=device)

        p = mask = reference_labels = initial_labels = proportions = column_potential = None
        bar = tqdm(range(total_epochs), desc="DAGCL", disable=not progress_bar, unit="epoch")
        for epoch in bar:
            phase = int(epoch >= config.pretrain_epochs)
            agg, cap = _aggregation_capacity(config, _training_progress(epoch, config))

            if epoch == config.pretrain_epochs:
                with torch.no_grad():
                    z = model.encode(x_in, ei, ew, aggregation=agg, capacity=cap)
                zc = model.cluster_space(z)
                if config.centre_init == "kmeans":
                    centres, reference_labels = kmeans(zc, k, seed=config.random_state)
                else:
                    centres, reference_labels, _ = most_modular_partition(
                        zc, k, space=_partition_space(config.init_space, x, zc), edge_index=ei, edge_weight=ew,
                        restarts=config.partition_restarts, seed=config.random_state,
                    )  # fmt: skip
                initial_labels = reference_labels.cpu().numpy()
                model.init_centres(centres)
                if config.centre_fit_steps:
                    _fit_centres(model, z, reference_labels, config.centre_fit_steps)
                optimiser.add_param_group({"params": [model.centres]})
                if config.carry_steps:
                    encode = functools.partial(model.encode, x_in, ei, ew, aggregation=agg, capacity=cap)
                    _carry_partition(model, optimiser, encode, x, reference_labels, config, smoothness_graph, generator)
                proportions = torch.bincount(reference_labels, minlength=k).to(z) / n

            model.train()
            optimiser.zero_grad(set_to_none=True)
            z = model.encode(x_in, ei, ew, aggregation=agg, capacity=cap)
            weight_smooth = config.weight_smoothness if phase == 0 else config.weight_smoothness_self
            loss, loss_recon, loss_decor, loss_smooth = _representation_losses(
                model, z, x, config, smoothness_graph, generator, weight_smooth
            )
            record = {
                "capacity": cap,
                "aggregation": agg,
            }

            if phase == 1:
                t = (epoch - config.pretrain_epochs) / max(config.epochs - 1, 1)
                q = model.soft_assign(z)
                q_detached = q.detach()
                labels = q_detached.argmax(1)
                if (epoch - config.pretrain_epochs) % config.update_interval == 0:
                    record["label_change"] = (labels != reference_labels).float().mean().item()
                    if p is not None:
                        hard = p.argmax(1) if config.proportions_from_targets else reference_labels
                        counts = torch.bincount(hard, minlength=k).to(q) / n
                        proportions = (
                            1 - config.proportion_momentum
                        ) * proportions + config.proportion_momentum * counts
                    p, column_potential = _targets(q_detached, proportions, t, config, column_potential)
                    share = schedules.curriculum_share(t, config.curriculum_start) if config.curriculum else 1.0
                    mask = _curriculum_mask(p, share)
                    reference_labels = labels
                else:
                    record["label_change"] = (labels != reference_labels).float().mean().item()
                gamma = schedules.gamma(t, config.schedule)
                loss_kl = losses.kl_divergence(p, q, mask)
                loss = loss + gamma * config.weight_kl * loss_kl
                record.update(
                    gamma=gamma,
                    loss_kl=loss_kl.item(),
                    curriculum_share=mask.float().mean().item(),
                    assignment_entropy=_entropy(q_detached),
                    confident_share=(q_detached.max(1).values >= config.confidence_threshold).float().mean().item(),
                )
                history["cluster_sizes"][epoch] = torch.bincount(labels, minlength=k).cpu().numpy()
                if stages is not None and epoch in stage_epochs:
                    s = stage_epochs[epoch]
                    stages["latent"][s] = z.detach()[stage_idx].cpu().numpy()
                    stages["labels"][s] = labels[stage_idx].cpu().numpy()

            if not torch.isfinite(loss):
                raise TrainingDivergedError(
                    f"The DAGCL loss became {loss.item()} at epoch {epoch}. Try a lower `lr` "
                    "(e.g. lr=1e-4) and check that the features are log-normalised and finite."
                )
            loss.backward()
            optimiser.step()

            record.update(
                epoch=epoch,
                phase=phase,
                loss_total=loss.item(),
                loss_recon=loss_recon.item(),
                loss_decorrelation=loss_decor.item(),
                loss_smoothness=loss_smooth.item(),
            )
            for name, value in record.items():
                history[name][epoch] = value
            postfix = {"phase": "self-train" if phase else "pretrain", "loss": f"{record['loss_total']:.3g}"}
            if phase:
                postfix["kl"] = f"{record['loss_kl']:.3g}"
            bar.set_postfix(postfix, refresh=False)

        agg, cap = _aggregation_capacity(config, _training_progress(total_epochs - 1, config))
        z, q = infer(model, x_in, ei, ew, aggregation=agg, capacity=cap)
        latent_mean, latent_std = latent_statistics(z)
        if stages is not None:
            # the snapshot at the end of self-training is the final result itself
            for s, p_stage in enumerate(config.stage_progress):
                if p_stage >= 1.0:
                    stages["latent"][s] = z[stage_idx].cpu().numpy()
                    stages["labels"][s] = q.argmax(1)[stage_idx].cpu().numpy()
    return TrainingResult(
        embedding=z.cpu().numpy(),
        proba=q.cpu().numpy(),
        labels=q.argmax(1).cpu().numpy(),
        history=history,
        stages=stages,
        initial_labels=initial_labels,
        state_dict=state_dict_arrays(model),
        centres=model.centres.detach().cpu().numpy().copy(),
        latent_mean=latent_mean.cpu().numpy(),
        latent_std=latent_std.cpu().numpy(),
        aggregation=float(agg),
        capacity=float(cap),
    )
