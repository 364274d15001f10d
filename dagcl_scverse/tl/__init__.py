"""Tools: clustering with DAGCL."""

from ._cluster import cluster

__all__ = ["cluster"]
