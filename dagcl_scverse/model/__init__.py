"""DAGCL model: torch and PyTorch Geometric only, no AnnData."""

from .config import TrainingConfig
from .layers import DynamicGraphAttention
from .module import DAGCLModule
from .trainer import TrainingDivergedError, TrainingResult, train

__all__ = ["DAGCLModule", "DynamicGraphAttention", "TrainingConfig", "TrainingDivergedError", "TrainingResult", "train"]
