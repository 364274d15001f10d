"""Build the shipped mouse pancreas dataset from the literature's h5 file.

Usage: ``python scripts/make_mouse_pancreas.py ../shared/data/Maayan_Mouse_Pancreas_cell_1.h5``

Keeps the 5,000 genes with the highest variance of log-normalised expression (so that
highly-variable-gene selection downstream still has a choice) and stores the raw counts
sparse, compressed.
"""

import sys
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

N_GENES = 5000
OUT = Path(__file__).parents[1] / "dagcl_scverse" / "datasets" / "data" / "mouse_pancreas.h5ad"


def main(path: str) -> None:
    """Write the shipped mouse pancreas h5ad from the literature's h5 file at ``path``."""
    with h5py.File(path, "r") as f:
        counts = np.asarray(f["X"][()], dtype=np.float32)
        labels = np.asarray(f["Y"][()]).astype(int)
    size = counts.sum(1, keepdims=True)
    lognorm = np.log1p(counts / np.maximum(size, 1) * 1e4)
    keep = np.sort(np.argsort(-lognorm.var(0), kind="stable")[:N_GENES])
    X = sp.csr_matrix(counts[:, keep])
    adata = ad.AnnData(
        X=X,
        obs=pd.DataFrame(
            {"cell_type": pd.Categorical(labels.astype(str), categories=[str(c) for c in np.unique(labels)])},
            index=[f"cell_{i}" for i in range(X.shape[0])],
        ),
        var=pd.DataFrame(index=[f"gene_{i}" for i in keep]),
    )
    adata.uns["source"] = "Baron et al. 2016 (inDrop), mouse donor 1, via the scCDCG dataset folder"
    OUT.parent.mkdir(parents=True, exist_ok=True)
    adata.write_h5ad(OUT, compression="gzip")
    print(OUT, adata.shape, OUT.stat().st_size)


if __name__ == "__main__":
    main(sys.argv[1])
