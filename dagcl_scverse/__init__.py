"""DAGCL for scverse: curriculum graph-attention deep clustering of single cells."""

import importlib

__version__ = "0.1.0"

__all__ = ["datasets", "io", "pl", "tl", "__version__"]

#: imported on first use, so that ``dagcl_scverse.model`` needs only torch and PyG (no scanpy, no anndata)
_SUBMODULES = ("datasets", "io", "pl", "tl")


def __getattr__(name: str):
    if name in _SUBMODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_SUBMODULES))
