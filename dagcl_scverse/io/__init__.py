"""Reading the deep-clustering literature's data files."""

from ._read_h5 import read_h5

__all__ = ["read_h5"]
