"""`dagcl.tl.marker_table`: marker genes of the clusters, as one long table."""

from __future__ import annotations

from numbers import Integral

import numpy as np
import pandas as pd
import scanpy as sc
from anndata import AnnData
from scanpy import logging as logg

#: above this many cells the default test is the t-test: the Wilcoxon test ranks every gene over all cells
WILCOXON_MAX_CELLS = 100_000
METHODS = ("wilcoxon", "t-test", "t-test_overestim_var")
#: genes per cluster kept in ``uns[key_added]`` at least (scanpy's default), whatever ``n_genes`` the table has
STORED_GENES = 100
COLUMNS = ("cluster", "rank", "gene", "score", "logfoldchange", "pvals_adj")


def _default_method(n_cells: int) -> str:
    return "wilcoxon" if n_cells <= WILCOXON_MAX_CELLS else "t-test"


def _as_categorical(labels: pd.Series) -> pd.Series:
    """Cluster labels as a categorical with string categories, as ``sc.tl.rank_genes_groups`` needs them."""
    if not isinstance(labels.dtype, pd.CategoricalDtype):
        labels = labels.astype("category")
    return labels.cat.rename_categories([str(c) for c in labels.cat.categories])


def _stand_in(adata: AnnData, labels: pd.Series, key: str, use_raw: bool) -> AnnData:
    """An AnnData sharing the expression matrix of ``adata`` (or its ``.raw``), with only the labels in ``obs``.

    ``sc.tl.rank_genes_groups`` writes into the AnnData it is given before it has finished (and
    turns string columns of ``obs`` into categoricals); run on this stand-in, a failure leaves
    ``adata`` untouched, and no expression matrix is copied.
    """
    source = adata.raw if use_raw else adata
    obs = pd.DataFrame({key: labels.array}, index=adata.obs_names.copy())
    stand_in = AnnData(X=source.X, obs=obs, var=pd.DataFrame(index=source.var_names.copy()))
    if "log1p" in adata.uns:  # its base sets the log fold changes' scale
        stand_in.uns["log1p"] = dict(adata.uns["log1p"])
    return stand_in


def _testable_groups(labels: pd.Series, key: str) -> list[str]:
    """Clusters with at least two cells, in category order; the others are left out with a warning."""
    counts = labels.value_counts(sort=False).reindex(labels.cat.categories, fill_value=0)
    groups = [group for group, n in counts.items() if n >= 2]
    single = [group for group, n in counts.items() if n == 1]
    if single:
        logg.warning(f"no marker genes for cluster(s) {', '.join(single)} of obs[{key!r}]: a single cell each")
    n_found = int((counts > 0).sum())
    if not groups or n_found < 2:
        raise ValueError(
            f"Marker genes need at least two clusters in adata.obs[{key!r}], one of them with two or more cells; "
            f"found {n_found} non-empty cluster(s)."
        )
    return groups


def _long_table(entry: dict, n_genes: int) -> pd.DataFrame:
    names = entry["names"]
    n = min(n_genes, len(names))
    frames = [
        pd.DataFrame(
            {
                "cluster": group,
                "rank": np.arange(1, n + 1),
                "gene": np.asarray(names[group][:n]).astype(str),
                "score": np.asarray(entry["scores"][group][:n], dtype=np.float64),
                "logfoldchange": np.asarray(entry["logfoldchanges"][group][:n], dtype=np.float64),
                "pvals_adj": np.asarray(entry["pvals_adj"][group][:n], dtype=np.float64),
            }
        )
        for group in names.dtype.names
    ]
    return pd.concat(frames, ignore_index=True)[list(COLUMNS)]


def marker_table(
    adata: AnnData,
    key: str = "dagcl",
    n_genes: int = 10,
    *,
    method: str | None = None,
    use_raw: bool | None = None,
    key_added: str = "rank_genes_groups",
) -> pd.DataFrame:
    """Rank marker genes of each cluster against all other cells and return the top ones as one table.

    Runs ``sc.tl.rank_genes_groups(adata, key, method=method)`` and stores its result, as
    scanpy does, in ``adata.uns[key_added]`` (the top ``max(n_genes, 100)`` genes per cluster),
    so that ``sc.get.rank_genes_groups_df`` and ``sc.pl.rank_genes_groups_dotplot`` work
    afterwards. Nothing else in ``adata`` changes, and nothing at all when the call fails: the
    test runs on a stand-in that shares the expression matrix, and its result is written at
    the end.

    Clusters with a single cell are left out (with a warning): no test can rank their genes.

    Parameters
    ----------
    adata
        Annotated data matrix with cluster labels in ``adata.obs[key]``, and log-normalised
        expression in ``adata.raw`` (preferred: all genes) or ``adata.X``.
    key
        The column of ``adata.obs`` with the clusters, e.g. the ``key_added`` of
        ``dagcl.tl.cluster``.
    n_genes
        Genes per cluster in the returned table.
    method
        ``"wilcoxon"``, ``"t-test"`` or ``"t-test_overestim_var"``; ``None`` picks the Wilcoxon
        rank-sum test, or the t-test above 100,000 cells (where the Wilcoxon test gets slow).
    use_raw
        Test the genes in ``adata.raw``; ``None`` does so when ``adata.raw`` is set.
    key_added
        Where in ``adata.uns`` scanpy's result is stored (an existing entry is replaced).

    Returns
    -------
    A long table, one row per cluster and rank, clusters in category order, with the columns
    ``cluster`` (str), ``rank`` (1 = best), ``gene``, ``score`` (the test statistic),
    ``logfoldchange`` (log2 fold change, cluster vs. rest) and ``pvals_adj``
    (Benjamini-Hochberg).

    Examples
    --------
    >>> dagcl.tl.cluster(adata)
    >>> markers = dagcl.tl.marker_table(adata)
    >>> markers.groupby("cluster", sort=False).head(3)
    >>> sc.pl.rank_genes_groups_dotplot(adata, n_genes=3)
    """
    if not isinstance(adata, AnnData):
        raise TypeError(f"`adata` must be an AnnData, got {type(adata).__name__}.")
    if not isinstance(key, str):
        raise TypeError(f"`key` must be a string, got {type(key).__name__}.")
    if key not in adata.obs:
        raise KeyError(
            f"No clusters under adata.obs[{key!r}]: run `dagcl.tl.cluster` first, or pass the `key_added` "
            "you gave it as `key`."
        )
    if isinstance(n_genes, bool) or not isinstance(n_genes, Integral) or n_genes < 1:
        raise ValueError(f"`n_genes` must be a positive integer, got {n_genes!r}.")
    if method is None:
        method = _default_method(adata.n_obs)
    elif method not in METHODS:
        raise ValueError(f"Unknown method {method!r}; choose one of {', '.join(METHODS)}, or None.")
    if not isinstance(key_added, str) or not key_added:
        raise ValueError(f"`key_added` must be a non-empty string, got {key_added!r}.")
    if use_raw is None:
        use_raw = adata.raw is not None
    elif use_raw and adata.raw is None:
        raise ValueError(
            "`use_raw=True`, but adata.raw is not set: keep the log-normalised expression of all genes with "
            "`adata.raw = adata` before `sc.pp.highly_variable_genes(..., subset=True)`, or pass `use_raw=False`."
        )
    labels = _as_categorical(adata.obs[key])
    groups = _testable_groups(labels, key)

    start = logg.info(f"ranking marker genes of obs[{key!r}] ({method}, {'adata.raw' if use_raw else 'adata.X'})")
    stand_in = _stand_in(adata, labels, key, use_raw)
    n_stored = max(int(n_genes), STORED_GENES)
    sc.tl.rank_genes_groups(
        stand_in, key, groups=groups, reference="rest", method=method, use_raw=False, n_genes=n_stored
    )
    entry = stand_in.uns["rank_genes_groups"]
    entry["params"]["use_raw"] = bool(use_raw)  # what was tested, seen from `adata`
    table = _long_table(entry, int(n_genes))

    adata.uns[key_added] = entry
    logg.info("    finished", time=start, deep=f"added\n    {key_added!r}, scanpy's marker gene ranking (adata.uns)")
    return table
