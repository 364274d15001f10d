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
    hidden: int = 256
    attention_channels: int = 128
    latent: int = 32
    #: self-training epochs between target refreshes
    update_interval: int = 5
    #: cells whose reconstruction is scored per epoch (a seeded random subset)
    recon_cells: int = 4096
    weight_decorrelation: float = 1.0
    weight_smoothness: float = 0.1
    weight_kl: float = 1.0
    #: share of uniform mass mixed into the estimated cluster proportions
    proportion_floor: float = 0.1
    #: weight of the newest hard-label counts when smoothing proportions over refreshes
    proportion_momentum: float = 0.5
    #: a cell counts as confident when its largest assignment probability reaches this
    confidence_threshold: float = 0.8
    #: self-training progress points at which to snapshot embedding and labels
    stage_progress: tuple[float, ...] = field(default_factory=tuple)
