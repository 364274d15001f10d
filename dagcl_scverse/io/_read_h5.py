"""`dagcl.io.read_h5`: the h5 layout of the deep-clustering literature, as AnnData."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData
from scanpy import logging as logg

#: elements of a dense block read at once, so a large ``X`` never exists twice in dense form
_BLOCK_ELEMENTS = 20_000_000


def _describe(handle: h5py.File) -> str:
    """One-line summary of a file's top level, e.g. ``X (822, 100) int32, obs (group)``."""
    parts = []
    for name, item in handle.items():
        if isinstance(item, h5py.Dataset):
            parts.append(f"{name} {item.shape} {item.dtype}")
        else:
            parts.append(f"{name} (group)")
    return ", ".join(parts) if parts else "nothing"


def _check_layout(handle: h5py.File, path: str) -> None:
    if handle.attrs.get("encoding-type") == "anndata":
        raise ValueError(f"'{path}' is an AnnData file (h5ad); read it with `anndata.read_h5ad`.")
    if "matrix" in handle and isinstance(handle["matrix"], h5py.Group) and "barcodes" in handle["matrix"]:
        raise ValueError(f"'{path}' is a 10x Genomics h5 file; read it with `sc.read_10x_h5`.")
    found = _describe(handle)
    x = handle.get("X")
    if not isinstance(x, h5py.Dataset) or x.ndim != 2:
        raise ValueError(
            f"Unknown h5 layout in '{path}': expected a 2-D dataset 'X' (cells x genes) and labels 'Y', found: {found}."
        )
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise ValueError(f"'X' in '{path}' must hold numbers, found dtype {x.dtype}.")
    if "Y" in handle and not isinstance(handle["Y"], h5py.Dataset):
        raise ValueError(f"Unknown h5 layout in '{path}': 'Y' must be a dataset of labels, found: {found}.")


def _read_labels(dataset: h5py.Dataset, path: str) -> pd.Categorical:
    """Labels as a categorical of strings; integer codes keep their value (``1`` -> ``"1"``)."""
    values = dataset[()]
    values = np.asarray(values)
    if values.ndim == 2 and 1 in values.shape:
        values = values.ravel()
    if values.ndim != 1:
        raise ValueError(f"'Y' in '{path}' must be one label per cell, found shape {dataset.shape}.")
    if values.dtype.kind in "SOU":
        names = np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values], dtype=object)
        return pd.Categorical(names, categories=sorted(set(names)))
    if values.dtype.kind not in "biuf":
        raise ValueError(f"'Y' in '{path}' must hold integer codes or strings, found dtype {values.dtype}.")
    if not np.isfinite(values).all() or not np.array_equal(values, np.round(values)):
        raise ValueError(f"'Y' in '{path}' must hold integer label codes, found non-integer or missing values.")
    codes = values.astype(np.int64)
    categories = [str(c) for c in np.unique(codes)]
    return pd.Categorical(codes.astype(str), categories=categories)


def _read_counts(dataset: h5py.Dataset, path: str) -> sp.csr_matrix:
    """The stored matrix as CSR in its stored orientation and dtype, read in row blocks."""
    n_rows, n_cols = dataset.shape
    rows_per_block = max(1, _BLOCK_ELEMENTS // max(n_cols, 1))
    if dataset.chunks is not None:
        # A compressed chunk is decompressed whole on every read touching it: align to chunks.
        chunk_rows = dataset.chunks[0]
        rows_per_block = max(chunk_rows, rows_per_block // chunk_rows * chunk_rows)
    blocks = []
    for start in range(0, n_rows, rows_per_block):
        block = dataset[start : start + rows_per_block]
        if block.dtype.kind == "f" and not np.isfinite(block).all():
            raise ValueError(f"'X' in '{path}' contains NaN or infinite values.")
        blocks.append(sp.csr_matrix(block))
    if not blocks:
        return sp.csr_matrix((n_rows, n_cols), dtype=dataset.dtype)
    return sp.vstack(blocks, format="csr")


def _read_proteins(dataset: h5py.Dataset, n_cells: int, path: str) -> np.ndarray:
    values = np.asarray(dataset[()])
    if values.ndim != 2 or values.dtype.kind not in "biuf":
        raise ValueError(f"'ADT_X' in '{path}' must be a numeric 2-D matrix, found {dataset.shape} {dataset.dtype}.")
    if values.shape[0] == n_cells:
        return values
    if values.shape[1] == n_cells:
        return np.ascontiguousarray(values.T)
    raise ValueError(f"'ADT_X' in '{path}' has shape {values.shape}, but there are {n_cells} cells.")


def read_h5(path: str | os.PathLike) -> AnnData:
    """Read a data set in the h5 layout of the deep-clustering literature.

    scDeepCluster, scziDesk, scCDCG and DAGCL distribute their benchmark data as h5 files
    holding a dense count matrix ``X``, integer cell-type codes ``Y`` and, for CITE-seq data,
    surface-protein counts ``ADT_X``.

    Parameters
    ----------
    path
        The h5 file. ``X`` is cells x genes (int or float counts); a genes x cells ``X`` is
        recognised from the number of labels in ``Y`` and transposed. ``Y`` (optional) holds one
        label per cell, integer codes (0- or 1-based, possibly stored as floats) or strings.
        ``ADT_X`` (optional) is cells x proteins. Other entries are ignored.

    Returns
    -------
    A new AnnData with cells named ``cell_<i>`` and genes ``gene_<j>`` (the files carry no names):

    ``X`` and ``layers["counts"]``
        The counts as a sparse CSR matrix, in the dtype stored in the file.
    ``obs["cell_type"]``
        The labels as a categorical; integer codes keep their value as strings (``3`` -> ``"3"``),
        ordered numerically. Absent when the file has no ``Y``.
    ``obsm["protein"]``
        The ``ADT_X`` matrix, when present.

    Examples
    --------
    >>> import dagcl_scverse as dagcl
    >>> adata = dagcl.io.read_h5("Maayan_Mouse_Pancreas_cell_1.h5")
    >>> adata
    AnnData object with n_obs × n_vars = 822 × 14878
        obs: 'cell_type'
        layers: 'counts'
    """
    path_str = os.fspath(path)
    file = Path(path_str)
    if not file.exists():
        raise FileNotFoundError(f"No such file: '{path_str}'.")
    if not file.is_file():
        raise ValueError(f"'{path_str}' is not a file.")
    if not h5py.is_hdf5(path_str):
        raise ValueError(f"'{path_str}' is not an HDF5 file.")

    with h5py.File(path_str, "r") as handle:
        _check_layout(handle, path_str)
        x_dataset = handle["X"]
        labels = _read_labels(handle["Y"], path_str) if "Y" in handle else None
        n_rows, n_cols = x_dataset.shape
        transpose = False
        if labels is not None and n_rows != len(labels):
            if n_cols != len(labels):
                raise ValueError(
                    f"'X' in '{path_str}' has shape {x_dataset.shape}, but 'Y' has {len(labels)} labels: "
                    "neither dimension of X matches the number of cells."
                )
            transpose = True
        counts = _read_counts(x_dataset, path_str)
        if transpose:
            logg.info(f"    'X' is stored genes x cells {x_dataset.shape}; transposed to cells x genes")
            counts = counts.T.tocsr()
        n_cells = counts.shape[0]
        proteins = _read_proteins(handle["ADT_X"], n_cells, path_str) if "ADT_X" in handle else None

    obs = pd.DataFrame(index=pd.Index([f"cell_{i}" for i in range(n_cells)]))
    if labels is not None:
        obs["cell_type"] = labels
    var = pd.DataFrame(index=pd.Index([f"gene_{j}" for j in range(counts.shape[1])]))
    adata = AnnData(X=counts, obs=obs, var=var)
    adata.layers["counts"] = counts.copy()
    if proteins is not None:
        adata.obsm["protein"] = proteins
    return adata
