"""A negative-binomial simulator of labelled count data, fitted to a real labelled data set.

``simulate(reference, n_types, n_cells, imbalance, effect, depth, seed)`` draws raw counts
whose cell types are types of the reference: each simulated type takes one reference type's
mean expression profile and library-size distribution, and every gene keeps the reference's
over-dispersion. Four knobs move the difficulty:

- ``n_types``: how many of the reference's types are drawn (seeded);
- ``imbalance``: ``"balanced"`` (equal sizes), ``"imbalanced"`` (geometric proportions with the
  smallest type at 3 % of the cells) or the smallest type's share as a number;
- ``effect``: a factor on every type's deviation from the types' mean profile in log space,
  ``"weak"`` (0.7: a fold change f becomes f**0.7) or ``"strong"`` (1.0: as in the
  reference), or a number;
- ``depth``: a factor on the library sizes, ``"shallow"`` (0.5) or ``"deep"`` (1.0: as in the
  reference), or a number.

What is fitted (:func:`fit_reference`), on the reference types with at least
``MIN_TYPE_CELLS`` cells (a profile is then a mean over at least that many cells):

- profiles: ``p[t, g] = sum of counts of gene g in type t / sum of library sizes in type t``
  (the type's mean of normalised counts, each cell weighted by its library size);
- library sizes: a log-normal per type (mean of the log totals of its cells) with one standard
  deviation pooled within types;
- dispersions: gene-wise ``phi`` of ``Var = mu + phi * mu**2`` by the method of moments on the
  raw counts around ``mu[c, g] = library size of c * p[type of c, g]``, pooled over types and
  clipped to ``DISPERSION_RANGE``.

The labels of the reference are used only to fit these per-type quantities; the simulated
``obs["cell_type"]`` is the simulator's own truth. Usable from any benchmark, e.g.
``from simulate import simulate`` after putting ``benchmarks/`` on ``sys.path``.
"""

from __future__ import annotations

from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

#: reference types with fewer cells are not used: their profile would be mostly sampling noise
MIN_TYPE_CELLS = 10
#: bounds of the gene-wise NB dispersion ``phi`` (``Var = mu + phi * mu**2``)
DISPERSION_RANGE = (0.01, 4.0)
#: the named levels of the three continuous knobs
IMBALANCE = {"balanced": None, "imbalanced": 0.03}
EFFECT = {"weak": 0.7, "strong": 1.0}
DEPTH = {"shallow": 0.5, "deep": 1.0}
#: cells drawn at once (bounds the dense block in memory)
_BLOCK_CELLS = 256


@dataclass
class Reference:
    """What :func:`simulate` takes from a labelled count matrix.

    Attributes
    ----------
    type_names
        The usable reference types, ``(T,)``.
    profiles
        Mean expression proportions per type, ``(T, G)``, rows sum to 1.
    floors
        Per type, the proportion of half a count in the type's pooled counts, ``(T,)``: genes
        not seen in a type get this proportion before the effect scaling, instead of zero.
    log_library_mean
        Mean of the log library sizes per type, ``(T,)``.
    log_library_sd
        Standard deviation of the log library sizes, pooled within types.
    dispersion
        Gene-wise NB dispersion ``phi``, ``(G,)``.
    var_names
        The genes kept (those with counts in the usable types), ``(G,)``.
    """

    type_names: np.ndarray
    profiles: np.ndarray
    floors: np.ndarray
    log_library_mean: np.ndarray
    log_library_sd: float
    dispersion: np.ndarray
    var_names: np.ndarray


def fit_reference(adata: ad.AnnData, min_cells: int = MIN_TYPE_CELLS) -> Reference:
    """Fit per-type profiles and library sizes and gene-wise dispersions to raw counts.

    Parameters
    ----------
    adata
        Raw counts in ``X`` (cells x genes) and the cell types in ``obs["cell_type"]``.
    min_cells
        Types with fewer cells are left out.

    Returns
    -------
    The fitted :class:`Reference`.
    """
    types = adata.obs["cell_type"].astype(str).to_numpy()
    names, codes, sizes = np.unique(types, return_inverse=True, return_counts=True)
    usable = np.flatnonzero(sizes >= min_cells)
    if len(usable) < 2:
        raise ValueError(f"the reference has {len(usable)} type(s) with at least {min_cells} cells; need 2")
    keep_cells = np.isin(codes, usable)
    X = sp.csr_matrix(adata.X[keep_cells], dtype=np.float64)
    codes = np.searchsorted(usable, codes[keep_cells])
    names = names[usable]
    n_types = len(names)
    library = np.asarray(X.sum(axis=1)).ravel()
    if (library <= 0).any():
        X, codes, library = X[library > 0], codes[library > 0], library[library > 0]
    # one-hot (types x cells): per-type sums as sparse products
    onehot = sp.csr_matrix((np.ones(len(codes)), (codes, np.arange(len(codes)))), shape=(n_types, len(codes)))
    sum_x = np.asarray((onehot @ X).todense())
    genes = sum_x.sum(axis=0) > 0
    X, sum_x = X[:, genes], sum_x[:, genes]
    sum_l = onehot @ library
    sum_l2 = onehot @ library**2
    sum_x2 = np.asarray((onehot @ X.multiply(X)).todense())
    sum_xl = np.asarray((onehot @ sp.diags(library) @ X).todense())
    profiles = sum_x / sum_l[:, None]
    # method of moments around mu = library * profile: sum((x - mu)^2 - mu) = phi * sum(mu^2)
    excess = sum_x2 - 2 * profiles * sum_xl + profiles**2 * sum_l2[:, None] - profiles * sum_l[:, None]
    mu2 = profiles**2 * sum_l2[:, None]
    dispersion = np.clip(excess.sum(axis=0) / mu2.sum(axis=0), *DISPERSION_RANGE)
    log_l = np.log(library)
    log_mean = (onehot @ log_l) / np.bincount(codes, minlength=n_types)
    log_sd = float(np.sqrt(np.mean((log_l - log_mean[codes]) ** 2)))
    return Reference(
        type_names=names,
        profiles=profiles,
        floors=0.5 / sum_l,
        log_library_mean=log_mean,
        log_library_sd=log_sd,
        dispersion=dispersion,
        var_names=np.asarray(adata.var_names)[genes],
    )


def type_sizes(n_cells: int, n_types: int, smallest_share: float | None) -> np.ndarray:
    """Cells per type: equal, or geometric proportions whose smallest is ``smallest_share``.

    Parameters
    ----------
    n_cells
        Total number of cells.
    n_types
        Number of types.
    smallest_share
        Share of the smallest type; ``None`` or at least ``1 / n_types`` gives equal sizes.

    Returns
    -------
    Integer sizes summing to ``n_cells``, largest first.
    """
    if smallest_share is None or smallest_share >= 1 / n_types:
        shares = np.full(n_types, 1 / n_types)
    else:
        # bisect the ratio r of shares proportional to r**i so that the last share is smallest_share
        lo, hi = 0.0, 1.0
        for _ in range(100):
            r = (lo + hi) / 2
            powers = r ** np.arange(n_types)
            if powers[-1] / powers.sum() < smallest_share:
                lo = r
            else:
                hi = r
        shares = powers / powers.sum()
    raw = shares * n_cells
    sizes = np.floor(raw).astype(int)
    sizes[np.argsort(-(raw - sizes), kind="stable")[: n_cells - sizes.sum()]] += 1
    return sizes


def _level(value, levels: dict, knob: str):
    if isinstance(value, str):
        if value not in levels:
            raise ValueError(f"unknown {knob} {value!r}; choose one of {', '.join(levels)} or pass a number")
        return levels[value]
    return value


def simulate(
    reference_adata: ad.AnnData,
    n_types: int,
    n_cells: int,
    imbalance: str | float = "balanced",
    effect: str | float = "strong",
    depth: str | float = "deep",
    seed: int = 0,
) -> ad.AnnData:
    """Negative-binomial counts of ``n_types`` cell types drawn from a labelled reference.

    Parameters
    ----------
    reference_adata
        Raw counts in ``X`` and ``obs["cell_type"]``; fitted with :func:`fit_reference`.
    n_types
        Number of types, drawn without replacement (seeded) from the reference's usable types.
    n_cells
        Number of cells.
    imbalance
        ``"balanced"``, ``"imbalanced"`` (smallest type 3 % of the cells, geometric proportions)
        or the smallest type's share.
    effect
        Factor on each type's log-space deviation from the drawn types' mean log profile:
        ``"weak"`` (0.7), ``"strong"`` (1.0) or a number.
    depth
        Factor on the library sizes: ``"shallow"`` (0.5), ``"deep"`` (1.0) or a number.
    seed
        Seed of every random draw (types, sizes, library sizes, counts).

    Returns
    -------
    AnnData with sparse (CSR, float32) raw counts in ``X``, the types in ``obs["cell_type"]``
    (the reference's type names), the reference's gene names, and the settings in
    ``uns["simulation"]``. Cells are in random order.
    """
    smallest = _level(imbalance, IMBALANCE, "imbalance")
    factor = float(_level(effect, EFFECT, "effect"))
    scale = float(_level(depth, DEPTH, "depth"))
    if scale <= 0:
        raise ValueError(f"depth must be positive, got {scale}")
    ref = fit_reference(reference_adata)
    if not 2 <= n_types <= len(ref.type_names):
        raise ValueError(
            f"n_types must be between 2 and the reference's {len(ref.type_names)} types with at least "
            f"{MIN_TYPE_CELLS} cells, got {n_types}"
        )
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(ref.type_names), n_types, replace=False)
    log_profiles = np.log(np.maximum(ref.profiles[chosen], ref.floors[chosen, None]))
    centre = log_profiles.mean(axis=0)
    profiles = np.exp(centre + factor * (log_profiles - centre))
    profiles /= profiles.sum(axis=1, keepdims=True)
    # sizes are largest first; the drawn types come in random order, so which type is rare is seeded too
    codes = rng.permutation(np.repeat(np.arange(n_types), type_sizes(n_cells, n_types, smallest)))
    library = np.exp(rng.normal(ref.log_library_mean[chosen][codes] + np.log(scale), ref.log_library_sd))
    shape = 1 / ref.dispersion
    blocks = []
    for start in range(0, n_cells, _BLOCK_CELLS):
        block = slice(start, min(start + _BLOCK_CELLS, n_cells))
        mu = library[block, None] * profiles[codes[block]]
        counts = rng.poisson(rng.gamma(shape, mu / shape))
        blocks.append(sp.csr_matrix(counts.astype(np.float32)))
    names = ref.type_names[chosen]
    out = ad.AnnData(
        sp.vstack(blocks, format="csr"),
        obs=pd.DataFrame(index=[f"cell{i}" for i in range(n_cells)]),
        var=pd.DataFrame(index=ref.var_names.astype(str)),
    )
    out.obs["cell_type"] = pd.Categorical(names[codes], categories=sorted(names))
    out.uns["simulation"] = {
        "n_types": int(n_types),
        "n_cells": int(n_cells),
        "smallest_share": float("nan") if smallest is None else float(smallest),
        "effect": factor,
        "depth": scale,
        "seed": int(seed),
        "types": names.astype(str),
    }
    return out
