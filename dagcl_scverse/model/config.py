"""Resolved settings of one DAGCL training run."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TrainingConfig:
    """Everything the trainer needs besides the data. Defaults are DAGCL's global defaults."""

    n_clusters: int
    pretrain_epochs: int
    epochs: int
    lr: float = 1e-3
    schedule: str = "convex"
    dynamic_attention: bool = True
    curriculum: bool = True
    balance: bool = True
    random_state: int = 0
    hidden: int = 128
    attention_channels: int = 64
    latent: int = 32
    #: degrees of freedom of the Student-t kernel of the soft assignment
    student_t_dof: float = 10.0
    #: self-training epochs between target refreshes
    update_interval: int = 5
    #: cells whose reconstruction is scored per epoch (a seeded random subset)
    recon_cells: int = 256
    weight_decorrelation: float = 1.0
    weight_smoothness: float = 0.0
    #: weight of the graph-smoothness loss during self-training
    weight_smoothness_self: float = 0.0
    weight_kl: float = 1.0
    #: no cluster's target proportion falls below proportion_floor / n_clusters
    proportion_floor: float = 0.0
    #: weight of the newest hard-label counts when smoothing proportions over refreshes
    proportion_momentum: float = 0.5
    #: a cell counts as confident when its largest assignment probability reaches this
    confidence_threshold: float = 0.8
    capacity_start: float = 0.25
    capacity_warmup: float = 0.3
    aggregation_start: float = 0.05
    aggregation_end: float = 0.2
    curriculum_start: float = 0.5
    sharpen_end: float = 2.0
    #: initial partition: "average_linkage" (cosine, over micro-clusters) or "kmeans"
    centre_init: str = "average_linkage"
    #: space of the initial partition: "input_pca_scaled" (principal components of the standardised,
    #: clipped features), "input_pca" (of the features as they are) or "embedding"
    init_space: str = "input_pca_scaled"
    #: steps fitting the centres (embedding fixed) to the initial partition before self-training
    centre_fit_steps: int = 200
    #: initial partitions drawn (different micro-cluster seeds); the most modular on the graph is kept
    partition_restarts: int = 10
    #: clusters of the initial partition that are not communities of the cell graph give their
    #: place to deeper cuts of the linkage tree (``model/noise_clusters.py``)
    absorb_noise_clusters: bool = False
    #: joint steps (encoder and centres) that carry the initial partition into the embedding
    carry_steps: int = 50
    #: seed cells per optimisation step; None trains full-batch (every cell in one step)
    batch_size: int | None = None
    #: mini-batches read their context cells' first layer from those cells' own batch's latest
    #: step (else every step encodes its context from the features)
    context_history: bool = True
    #: proportions are estimated from the hard labels of the targets p (else of q)
    proportions_from_targets: bool = False
    #: self-training progress points at which to snapshot embedding and labels
    stage_progress: tuple[float, ...] = field(default_factory=tuple)
