"""Tools: clustering with DAGCL, mapping new cells onto it, scoring the clusters and finding their marker genes."""

from ._cluster import cluster
from ._evaluate import evaluate
from ._ingest import ingest
from ._markers import marker_table

__all__ = ["cluster", "evaluate", "ingest", "marker_table"]
