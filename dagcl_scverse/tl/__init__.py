"""Tools: clustering with DAGCL."""

from ._cluster import cluster
from ._evaluate import evaluate

__all__ = ["cluster", "evaluate"]
