from __future__ import annotations

from importlib.resources import files

import anndata as ad
from anndata import AnnData


def mouse_pancreas() -> AnnData:
    """Mouse pancreas, first donor (Baron et al. 2016, inDrop): 822 cells, 13 annotated types.

    Raw UMI counts of the 5,000 most variable of the source's 14,878 genes (the genes are
    unnamed in the source: ``gene_<index>``), in ``X`` and ``layers["counts"]``; the
    annotation (integer codes, as strings) in ``obs["cell_type"]``.

    Returns
    -------
    A new AnnData with sparse counts.

    Examples
    --------
    >>> import dagcl_scverse as dagcl
    >>> adata = dagcl.datasets.mouse_pancreas()
    >>> adata
    AnnData object with n_obs × n_vars = 822 × 5000 ...
    """
    path = files("dagcl_scverse.datasets") / "data" / "mouse_pancreas.h5ad"
    with path.open("rb") as handle:
        adata = ad.read_h5ad(handle)
    adata.layers["counts"] = adata.X.copy()
    return adata
