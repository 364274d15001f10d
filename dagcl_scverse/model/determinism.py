"""Deterministic CUDA kernels for one training run, the previous mode restored after."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def deterministic_algorithms(device: torch.device, enabled: bool) -> Iterator[None]:
    """On CUDA, make torch pick deterministic kernels while the block runs; restore the previous mode after.

    CPU training is deterministic already, so nothing changes there. On CUDA, PyG's sum
    aggregation and softmax go through ``scatter_add_`` / ``scatter_reduce_`` and
    ``index_select``, which torch replaces by deterministic kernels in this mode. ``warn_only``
    keeps a long run alive if some other operation has no deterministic kernel: torch then
    warns and names it. cuBLAS needs ``CUBLAS_WORKSPACE_CONFIG`` set for reproducible matmuls.
    """
    if not enabled or device.type != "cuda":
        yield
        return
    previous_mode = torch.are_deterministic_algorithms_enabled()
    previous_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    previous_cublas = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    if previous_cublas is None:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous_mode, warn_only=previous_warn_only)
        if previous_cublas is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
