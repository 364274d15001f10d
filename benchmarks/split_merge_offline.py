"""Offline: can a label-free, type-level move improve on DAGCL's initial partition?

"What we tried" #67 found that what the initial partition gets wrong is mostly whole types
split or merged, which cell-level steps cannot change. This probe tries the moves that can, with
the number of clusters kept: merge two clusters and split a third in two, and accept the move
when a label-free criterion says the partition got better. For each case and seed
``tl.cluster`` runs once with true k; from its initial partition the probe applies, greedily
(the best move at a time, at most k moves):

- ``gauss_pcs`` / ``gauss_z``: one diagonal Gaussian per cluster (variances floored at 5 % of
  the pooled ones), the classification log-likelihood with the mixing term (a split/merge EM
  at fixed k), in the standardised, clipped PCs the partition was drawn on / in ``X_dagcl``;
  the split of a cluster is its 2-means bisection;
- ``conductance``: on the case's kNN graph, the boundary a split introduces (2-means bisection
  in the PCs) must be weaker than the boundary the merge removes, both measured as conductance
  ``cut(A, B) / min(vol(A), vol(B))`` inside ``A u B``;
- ``absorbed``: clusters of the initial cut that are not weak graph communities (less of their
  edge weight inside than outside, Radicchi et al. 2004) free their places: the linkage tree is
  cut deeper, by at most as many clusters as were freed, until exactly k clusters are
  communities, and the others join the community they share most edges with (the plain cut
  where no such depth exists); most modular of the same restarts as the default. This changes
  the initial partition, not self-training.

It reports each one's ARI minus the initial partition's, mean over seeds, and the moves made.
Labels only score. Results into benchmarks/results/split_merge_offline.json.

Usage: ``python benchmarks/split_merge_offline.py [--cases pancreas/standard worm/rare]
[--seeds 0 1 2] [--jobs 2]`` (default: the ``--quick`` cases of ``generalisation.py``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.cluster import KMeans

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c
import generalisation as g

import dagcl_scverse as dagcl
from dagcl_scverse.model import TrainingConfig
from dagcl_scverse.model.centre_init import MICRO_CLUSTERS, _micro_clusters, average_linkage_groups
from dagcl_scverse.model.chunked_pca import principal_components
from dagcl_scverse.model.restarts import MAX_RESTART_CELLS, modularity, restart_seeds
from dagcl_scverse.tl._inputs import get_features

VARIANCE_FLOOR = 0.05
MIN_SPLIT_CELLS = 6


def bisection(x: np.ndarray, seed: int) -> np.ndarray | None:
    """2-means halves (0 / 1) of the rows of ``x``, or None when there are too few or one half is empty."""
    if len(x) < MIN_SPLIT_CELLS:
        return None
    halves = KMeans(2, n_init=3, random_state=seed).fit(x).labels_
    return None if halves.min() == halves.max() else halves


def gaussian_cost(x: np.ndarray, pooled: np.ndarray, n_total: int) -> float:
    """Minus the classification log-likelihood of ``x`` as one diagonal Gaussian component (constants dropped)."""
    n = len(x)
    return 0.5 * n * np.log(x.var(0) + VARIANCE_FLOOR * pooled).sum() - n * np.log(n / n_total)


def conductance(graph: sp.csr_matrix, a: np.ndarray, b: np.ndarray) -> float:
    """``cut(A, B) / min(vol(A), vol(B))`` inside ``A u B`` (``a``, ``b``: cell indices)."""
    cut = graph[a][:, b].sum()
    vol_a, vol_b = cut + graph[a][:, a].sum(), cut + graph[b][:, b].sum()
    return float(cut / max(min(vol_a, vol_b), 1e-12))


def move_scores(kind: str, x: np.ndarray, graph: sp.csr_matrix, labels: np.ndarray, seed: int):
    """Per cluster ``(split gain, halves)`` and per pair ``merge loss``, on one scale (higher gain, lower loss: better)."""
    k, n = labels.max() + 1, len(labels)
    cells = [np.flatnonzero(labels == j) for j in range(k)]
    pooled = x.var(0)
    splits, merges = [], {}
    for members in cells:
        halves = bisection(x[members], seed)
        if halves is None:
            splits.append((-np.inf, None))
        elif kind == "gauss":
            parts = [gaussian_cost(x[members[halves == h]], pooled, n) for h in (0, 1)]
            splits.append((gaussian_cost(x[members], pooled, n) - sum(parts), halves))
        else:
            splits.append((-conductance(graph, members[halves == 0], members[halves == 1]), halves))
    for a in range(k):
        for b in range(a + 1, k):
            if kind == "gauss":
                union = np.concatenate([cells[a], cells[b]])
                together = gaussian_cost(x[union], pooled, n)
                merges[a, b] = together - gaussian_cost(x[cells[a]], pooled, n) - gaussian_cost(x[cells[b]], pooled, n)
            else:
                merges[a, b] = -conductance(graph, cells[a], cells[b])
    return splits, merges


def split_merge(kind: str, x: np.ndarray, graph: sp.csr_matrix, labels: np.ndarray, seed: int):
    """Greedy k-preserving moves (merge a pair, split a third) while one improves the criterion."""
    labels = labels.copy()
    moves = 0
    for _ in range(labels.max() + 1):
        splits, merges = move_scores(kind, x, graph, labels, seed)
        candidates = [
            (splits[s][0] - loss, a, b, s) for (a, b), loss in merges.items() for s in range(len(splits))
            if s not in (a, b) and splits[s][0] - loss > 0
        ]  # fmt: skip
        if not candidates:
            break
        _, a, b, s = max(candidates)
        labels[labels == b] = a
        members = np.flatnonzero(labels == s)
        labels[members[splits[s][1] == 1]] = b
        moves += 1
    return labels, moves


def _linkage_inputs(space: torch.Tensor, k: int, seed: int):
    """Micro-cluster labels, mean unit vectors and sizes, as the initial partition builds them."""
    u = space - space.mean(0)
    u = u / u.norm(dim=1, keepdim=True).clamp_min(1e-12)
    micro = _micro_clusters(u, min(len(u), max(MICRO_CLUSTERS, 2 * k)), seed)
    _, micro = torch.unique(micro, return_inverse=True)
    sizes = torch.bincount(micro)
    means = torch.zeros(len(sizes), u.shape[1], dtype=u.dtype).index_add_(0, micro, u) / sizes[:, None]
    return micro, means, sizes


def _communities(labels: np.ndarray, graph: sp.csr_matrix, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Cluster x cluster edge weights and which clusters are weak communities (more weight inside than out)."""
    n = len(labels)
    one_hot = sp.csr_matrix((np.ones(n), (np.arange(n), labels)), shape=(n, n_groups))
    between = (one_hot.T @ graph @ one_hot).toarray()  # ok-dense: clusters x clusters
    return between, np.diag(between) > 0.5 * between.sum(1)


def absorbed_partition(space: torch.Tensor, graph: sp.csr_matrix, k: int, seed: int) -> np.ndarray:
    """The linkage cut where exactly ``k`` clusters are weak communities, the rest absorbed (plain cut if none)."""
    micro, means, sizes = _linkage_inputs(space, k, seed)
    plain = average_linkage_groups(means, sizes, k)[micro].numpy()
    freed = int((~_communities(plain, graph, k)[1]).sum())
    for cut in range(k + 1, min(k + freed, len(sizes)) + 1):
        labels = average_linkage_groups(means, sizes, cut)[micro].numpy()
        between, community = _communities(labels, graph, cut)
        if community.sum() > k:
            break
        if community.sum() == k:
            kept = np.flatnonzero(community)
            home = {j: kept[np.argmax(between[j, kept])] for j in np.flatnonzero(~community)}
            return np.unique(np.array([home.get(j, j) for j in labels]), return_inverse=True)[1]
    return plain


def most_modular_absorbed(space: np.ndarray, graph: sp.csr_matrix, k: int, seed: int) -> np.ndarray:
    """``absorbed_partition`` over the default's restarts, the most modular kept."""
    coo = graph.tocoo()
    edges = torch.as_tensor(np.vstack([coo.row, coo.col]), dtype=torch.long)
    weights = torch.as_tensor(coo.data, dtype=torch.float32)
    restarts = (
        TrainingConfig.__dataclass_fields__["partition_restarts"].default if len(space) <= MAX_RESTART_CELLS else 1
    )
    partitions = [absorbed_partition(torch.as_tensor(space), graph, k, s) for s in restart_seeds(seed, restarts)]
    return max(partitions, key=lambda labels: modularity(torch.as_tensor(labels), edges, weights))


def run_case(file: Path, name: str, seed: int) -> dict:
    """ARI changes of every move against the initial partition, for one case and seed."""
    adata = c.read_preprocessed(file)
    truth = adata.obs["cell_type"].astype(str).to_numpy()
    k = len(np.unique(truth))
    dagcl.tl.cluster(adata, n_clusters=k, random_state=seed, progress_bar=False, stages=0)
    initial = np.asarray(adata.uns["dagcl"]["initial_labels"]).astype(int)
    features = get_features(adata, layer=None, use_rep=None)
    pcs = principal_components(features, scale_max=10.0, seed=seed)
    graph = adata.obsp["connectivities"].tocsr()
    graph = ((graph + graph.T) / 2).tocsr()
    base = c.score(truth, initial)["ari"]
    out = {"seed": seed, "initial_ari": base, "change": {}, "moves": {}}
    for key, kind, x in (("gauss_pcs", "gauss", pcs), ("gauss_z", "gauss", adata.obsm["X_dagcl"]),
                         ("conductance", "conductance", pcs)):  # fmt: skip
        labels, moves = split_merge(kind, np.asarray(x, dtype=np.float64), graph, initial, seed)
        out["change"][key] = c.score(truth, labels)["ari"] - base
        out["moves"][key] = moves
    out["change"]["absorbed"] = c.score(truth, most_modular_absorbed(pcs, graph, k, seed))["ari"] - base
    return out


def table(results: dict) -> str:
    """Mean ARI change of each move per case (mean moves made in brackets)."""
    keys = list(next(iter(results.values()))[0]["change"])
    rows, notes = {}, {}
    for name, runs in results.items():
        changes = {key: np.mean([run["change"][key] for run in runs]) for key in keys}
        rows[name] = (np.mean([run["initial_ari"] for run in runs]), changes)
        for key in keys:
            moves = [run["moves"][key] for run in runs if key in run["moves"]]
            if moves:
                notes[name, key] = f" ({np.mean(moves):.1f})"
    return g.change_table(rows, notes)


def main() -> None:
    """Run every (case, seed), write the results and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_jobs_argument(parser)
    parser.add_argument("--cases", nargs="+", help="case names (default: the quick cases)")
    parser.add_argument("--seeds", nargs="+", type=int, default=list(g.QUICK_SEEDS))
    args = parser.parse_args()
    by_name = g.cases_by_name()
    cases = [by_name[name] for name in args.cases] if args.cases else g.quick_cases()
    results = g.runs_by_case(run_case, cases, args.seeds, args.jobs)
    (c.RESULTS / "split_merge_offline.json").write_text(json.dumps(results, indent=1))
    print(table(results))


if __name__ == "__main__":
    main()
