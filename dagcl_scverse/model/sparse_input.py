"""Sparse features for the encoder's input layer: a CSR matrix and its transpose, built once.

Log-normalised expression of highly variable genes is mostly zeros (1-7 % non-zero in the
benchmark data), so the input layer ``x @ W.T + b`` is cheaper as a sparse-dense product. Its
weight gradient needs ``x.T @ grad``; torch's own backward converts ``x.T`` to CSR at every
step, which cost more than the product itself, so the transpose is kept here instead.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@contextmanager
def csr_beta_warning_silenced() -> Iterator[None]:
    """Silence torch's "Sparse CSR tensor support is in beta" warning while building CSR tensors."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Sparse CSR tensor support is in beta.*")
        yield


def _csr(x: Tensor) -> Tensor:
    with csr_beta_warning_silenced():
        return x.to_sparse_csr()


def _scipy_csr(matrix, device) -> Tensor:
    with csr_beta_warning_silenced():
        return torch.sparse_csr_tensor(
            torch.from_numpy(matrix.indptr.astype(np.int64)),
            torch.from_numpy(matrix.indices.astype(np.int64)),
            torch.from_numpy(matrix.data.astype(np.float32, copy=False)),
            matrix.shape,
            check_invariants=False,
        ).to(device)


@dataclass(frozen=True)
class SparseFeatures:
    """Features ``(n, f)`` as CSR, with the ``(f, n)`` transpose as CSR."""

    matrix: Tensor
    transpose: Tensor

    @classmethod
    def from_dense(cls, x: Tensor) -> SparseFeatures:
        """The non-zero entries of the dense ``(n, f)`` matrix ``x``."""
        matrix = _csr(x)
        # from the sparse matrix, not from x.T: no second dense copy
        return cls(matrix=matrix, transpose=_csr(matrix.t()))

    @classmethod
    def from_scipy(cls, matrix, device: torch.device | str = "cpu") -> SparseFeatures:
        """A scipy sparse ``(n, f)`` matrix as float32 CSR on ``device``, never densified."""
        matrix = matrix.tocsr()
        return cls(matrix=_scipy_csr(matrix, device), transpose=_scipy_csr(matrix.T.tocsr(), device))

    @property
    def shape(self) -> torch.Size:
        """``(n, f)``."""
        return self.matrix.shape


class _SparseLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weight: Tensor, bias: Tensor, features: SparseFeatures) -> Tensor:
        ctx.features = features
        return torch.addmm(bias, features.matrix, weight.T)

    @staticmethod
    def backward(ctx, grad: Tensor):
        grad_weight = (ctx.features.transpose @ grad).T if ctx.needs_input_grad[0] else None
        grad_bias = grad.sum(0) if ctx.needs_input_grad[1] else None
        return grad_weight, grad_bias, None


def sparse_linear(features: SparseFeatures, weight: Tensor, bias: Tensor) -> Tensor:
    """``features @ weight.T + bias`` with gradients for ``weight`` and ``bias``.

    Shapes: features ``(n, f)``, weight ``(h, f)``, bias ``(h,)`` -> ``(n, h)``.
    """
    return _SparseLinear.apply(weight, bias, features)
