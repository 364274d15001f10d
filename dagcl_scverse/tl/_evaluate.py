"""`dagcl.tl.evaluate`: score a clustering in ``adata.obs`` against known cell types."""

from __future__ import annotations

from anndata import AnnData
from scanpy import logging as logg

from dagcl_scverse.metrics import accuracy, adjusted_rand_index, normalized_mutual_info


def _obs_column(adata: AnnData, name: str, argument: str, hint: str):
    if not isinstance(name, str):
        raise TypeError(f"`{argument}` must be the name of an `adata.obs` column, got {type(name).__name__}.")
    if name not in adata.obs.columns:
        columns = list(adata.obs.columns)
        shown = ", ".join(map(repr, columns[:20])) + (", ..." if len(columns) > 20 else "")
        raise KeyError(f"`{argument}={name!r}` is not a column of `adata.obs`{hint} (found: {shown or 'none'}).")
    return adata.obs[name]


def evaluate(adata: AnnData, key: str = "dagcl", truth: str = "cell_type") -> dict[str, float | int]:
    """Score a clustering against known cell types: accuracy, NMI and ARI.

    Labels are used here only; no clustering in this package ever sees them. Cells whose true
    type is missing are left out of the scores (with a warning). ``adata`` is not modified.

    Parameters
    ----------
    adata
        Annotated data matrix.
    key
        Column of ``adata.obs`` holding the clustering, e.g. ``"dagcl"`` or ``"leiden"``.
    truth
        Column of ``adata.obs`` holding the known cell types.

    Returns
    -------
    A dict with

    ``acc``
        Clustering accuracy under the best one-to-one matching of clusters to types (Hungarian
        algorithm; with unequal numbers, cells of unmatched clusters count as errors).
    ``nmi``
        Normalised mutual information (arithmetic-mean normalisation).
    ``ari``
        Adjusted Rand index.
    ``n_clusters``
        Number of distinct clusters among the scored cells.
    ``n_types``
        Number of distinct true types among the scored cells.

    See Also
    --------
    dagcl_scverse.metrics : the same scores on plain label arrays.

    Examples
    --------
    >>> dagcl.tl.cluster(adata, n_clusters=13)
    >>> dagcl.tl.evaluate(adata, key="dagcl", truth="cell_type")
    {'acc': 0.83, 'nmi': 0.81, 'ari': 0.76, 'n_clusters': 13, 'n_types': 13}
    """
    if not isinstance(adata, AnnData):
        raise TypeError(f"`adata` must be an AnnData, got {type(adata).__name__}.")
    clusters = _obs_column(adata, key, "key", "; run `dagcl.tl.cluster(adata)` first")
    types = _obs_column(adata, truth, "truth", "")
    known = types.notna().to_numpy()
    if not known.any():
        raise ValueError(f"`adata.obs[{truth!r}]` holds no known cell type; nothing to score against.")
    if not known.all():
        logg.warning(f"{(~known).sum()} cell(s) without a value in `obs[{truth!r}]` are left out of the scores")
    clusters, types = clusters[known], types[known]
    if clusters.isna().any():
        raise ValueError(f"`adata.obs[{key!r}]` has {clusters.isna().sum()} cell(s) without a cluster.")
    return {
        "acc": accuracy(types, clusters),
        "nmi": normalized_mutual_info(types, clusters),
        "ari": adjusted_rand_index(types, clusters),
        "n_clusters": int(clusters.nunique()),
        "n_types": int(types.nunique()),
    }
