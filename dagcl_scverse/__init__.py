"""DAGCL for scverse: curriculum graph-attention deep clustering of single cells."""

__version__ = "0.1.0"

from . import datasets, io, pl, tl

__all__ = ["datasets", "io", "pl", "tl", "__version__"]
