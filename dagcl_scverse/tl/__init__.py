"""Tools: clustering with DAGCL, scoring the clusters and finding their marker genes."""

from ._cluster import cluster
from ._evaluate import evaluate
from ._markers import marker_table

__all__ = ["cluster", "evaluate", "marker_table"]
