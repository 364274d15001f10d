"""The cells' input features on the host, and the rows of them that one training step reads.

Gene features stay a scipy CSR matrix from the AnnData to the input layer: a step copies only
its own cells' rows to the device, as sparse CSR, and only the few cells whose reconstruction is
scored are ever dense. A representation (``use_rep``, e.g. principal components) is a small
dense table and is kept dense.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from .sparse_input import SparseFeatures


class CellFeatures:
    """Input features ``(n, f)``: scipy sparse (read as CSR) or a dense array.

    Parameters
    ----------
    matrix
        The features of every cell.
    device
        Where the rows a step reads are placed.
    """

    def __init__(self, matrix, device: torch.device | str) -> None:
        self.sparse = sp.issparse(matrix)
        self.matrix = matrix.tocsr() if self.sparse else np.asarray(matrix, dtype=np.float32)
        self.device = torch.device(device)
        self._all: Tensor | SparseFeatures | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """``(n, f)``."""
        return self.matrix.shape

    def encoder_input(self, rows: np.ndarray | None = None) -> Tensor | SparseFeatures:
        """The features of ``rows`` (all cells when None, built once) as the input layer reads them."""
        if rows is None:
            if self._all is None:
                self._all = self._to_device(self.matrix)
            return self._all
        return self._to_device(self.matrix[rows])

    def dense_rows(self, rows: np.ndarray) -> Tensor:
        """The features of ``rows`` as a dense float32 tensor (for the reconstruction target)."""
        block = self.matrix[rows]
        # ok-dense: the few cells whose reconstruction is scored in one step
        block = block.toarray() if self.sparse else block
        return torch.as_tensor(np.asarray(block, dtype=np.float32), device=self.device)

    def _to_device(self, block) -> Tensor | SparseFeatures:
        if self.sparse:
            return SparseFeatures.from_scipy(block, self.device)
        return torch.as_tensor(block, dtype=torch.float32, device=self.device)
