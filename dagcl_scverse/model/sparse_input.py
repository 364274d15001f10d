"""Sparse features for the encoder's input layer: a CSR matrix, and what its weight gradient needs.

Log-normalised expression of highly variable genes is mostly zeros (1-8 % non-zero in the
benchmark data), so the input layer ``x @ W.T + b`` is cheaper as a sparse-dense product. Its
weight gradient needs ``x.T @ grad``. Torch's own backward converts ``x.T`` to CSR at every
step; on CUDA the transpose is therefore built once with the features. On the CPU even a stored
transpose is slow (each of its entries reads a random row of ``grad``), so there the product
runs in scipy over the cells' own rows, which scatter into the small ``(f, h)`` result instead,
split over torch's threads (scipy releases the GIL): 3-6 times faster at 34,000 cells.
Mostly non-zero features (``sc.pp.scale`` centres every gene) are still stored as CSR, but on the
CPU both products run on dense blocks of rows, one block at a time: on scaled CITE CBMC they took
11 s in a profiled run where the sparse products had taken 61 s ("What we tried" #61).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

#: on the CPU, CSR features with at least this share of non-zero entries are multiplied in dense row blocks
DENSE_BLOCK_SHARE = 0.25
#: entries in one dense block of rows (16 MB of float32)
DENSE_BLOCK_ENTRIES = 4_000_000


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
    # scipy's own index arrays, without a copy, in one dtype (crow and col must agree)
    dtype = np.result_type(matrix.indptr, matrix.indices)
    with csr_beta_warning_silenced():
        return torch.sparse_csr_tensor(
            torch.from_numpy(matrix.indptr.astype(dtype, copy=False)),
            torch.from_numpy(matrix.indices.astype(dtype, copy=False)),
            torch.from_numpy(matrix.data.astype(np.float32, copy=False)),
            matrix.shape,
            check_invariants=False,
        ).to(device)


@dataclass(frozen=True)
class SparseFeatures:
    """Features ``(n, f)`` as torch CSR, with either the scipy matrix (CPU) or the ``(f, n)`` transpose as CSR."""

    matrix: Tensor
    transpose: Tensor | None = None
    host: sp.csr_matrix | None = None
    #: the CPU products run on dense blocks of ``host``'s rows (see ``DENSE_BLOCK_SHARE``)
    dense_blocks: bool = False

    @classmethod
    def from_dense(cls, x: Tensor) -> SparseFeatures:
        """The non-zero entries of the dense ``(n, f)`` matrix ``x``."""
        matrix = _csr(x)
        # from the sparse matrix, not from x.T: no second dense copy
        return cls(matrix=matrix, transpose=_csr(matrix.t()))

    @classmethod
    def from_scipy(cls, matrix, device: torch.device | str = "cpu") -> SparseFeatures:
        """A scipy sparse ``(n, f)`` matrix as float32 CSR on ``device``, never densified."""
        matrix = sp.csr_matrix(matrix, dtype=np.float32)
        if torch.device(device).type == "cpu":
            share = matrix.nnz / max(matrix.shape[0] * matrix.shape[1], 1)
            return cls(matrix=_scipy_csr(matrix, device), host=matrix, dense_blocks=share >= DENSE_BLOCK_SHARE)
        return cls(matrix=_scipy_csr(matrix, device), transpose=_scipy_csr(matrix.T.tocsr(), device))

    @property
    def shape(self) -> torch.Size:
        """``(n, f)``."""
        return self.matrix.shape

    def linear(self, weight: Tensor, bias: Tensor) -> Tensor:
        """``x @ weight.T + bias``, ``(n, h)`` for ``weight`` ``(h, f)``."""
        if not self.dense_blocks:
            return torch.addmm(bias, self.matrix, weight.T)
        out = torch.empty(self.shape[0], weight.shape[0], dtype=weight.dtype)
        for lo, hi, block in _dense_row_blocks(self.host):
            torch.addmm(bias, block, weight.T, out=out[lo:hi])
        return out

    def transpose_times(self, grad: Tensor) -> Tensor:
        """``x.T @ grad``, ``(f, h)`` for ``grad`` ``(n, h)``."""
        if self.dense_blocks:
            product = torch.zeros(self.shape[1], grad.shape[1], dtype=grad.dtype)
            for lo, hi, block in _dense_row_blocks(self.host):
                product += block.T @ grad[lo:hi]
            return product
        if self.host is None:
            return self.transpose @ grad
        return torch.from_numpy(_host_transpose_times(self.host, grad.detach().numpy()))


def _host_transpose_times(matrix: sp.csr_matrix, grad: np.ndarray) -> np.ndarray:
    """``matrix.T @ grad`` in scipy, its rows split into one part per torch thread, summed in order."""
    n = matrix.shape[0]
    parts = min(torch.get_num_threads(), max(1, n // 1_000))
    bounds = np.linspace(0, n, parts + 1).astype(int)
    if parts == 1:
        return np.asarray(matrix.T @ grad, dtype=np.float32)
    pieces = [(_row_range(matrix, lo, hi), grad[lo:hi]) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
    with ThreadPoolExecutor(parts) as pool:
        products = list(pool.map(lambda piece: piece[0].T @ piece[1], pieces))
    return np.asarray(sum(products), dtype=np.float32)


def _row_range(matrix: sp.csr_matrix, lo: int, hi: int) -> sp.csr_matrix:
    """Rows ``lo:hi`` of ``matrix`` as views of its arrays (scipy's slicing copies them)."""
    start, stop = matrix.indptr[lo], matrix.indptr[hi]
    indptr = matrix.indptr[lo : hi + 1] - start
    shape = (hi - lo, matrix.shape[1])
    return sp.csr_matrix((matrix.data[start:stop], matrix.indices[start:stop], indptr), shape=shape, copy=False)


def _dense_row_blocks(matrix: sp.csr_matrix) -> Iterator[tuple[int, int, Tensor]]:
    """``(lo, hi, rows lo:hi as a dense float32 tensor)``, blocks of at most ``DENSE_BLOCK_ENTRIES`` entries."""
    n, f = matrix.shape
    rows = max(1, DENSE_BLOCK_ENTRIES // max(f, 1))
    for lo in range(0, n, rows):
        hi = min(lo + rows, n)
        # ok-dense: one block of rows at a time, freed before the next
        yield lo, hi, torch.from_numpy(_row_range(matrix, lo, hi).toarray())


class _SparseLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weight: Tensor, bias: Tensor, features: SparseFeatures) -> Tensor:
        ctx.features = features
        return features.linear(weight, bias)

    @staticmethod
    def backward(ctx, grad: Tensor):
        grad_weight = ctx.features.transpose_times(grad).T.to(grad.dtype) if ctx.needs_input_grad[0] else None
        grad_bias = grad.sum(0) if ctx.needs_input_grad[1] else None
        return grad_weight, grad_bias, None


def sparse_linear(features: SparseFeatures, weight: Tensor, bias: Tensor) -> Tensor:
    """``features @ weight.T + bias`` with gradients for ``weight`` and ``bias``.

    Shapes: features ``(n, f)``, weight ``(h, f)``, bias ``(h,)`` -> ``(n, h)``.
    """
    return _SparseLinear.apply(weight, bias, features)
