"""Offline: the initial partition chosen by modularity from a pool of linkage and k-means partitions.

For each generalisation case named (default: every standard, rare-type and simulated case) and
run seeds 0-2, on the standardised, clipped principal components the trainer partitions: five
restarts each of the default cosine average linkage, of Euclidean k-means and of spherical
k-means (k-means of the unit-length centred rows), and the ARI of the most modular partition of
each kind and of the whole pool (modularity on the case's cell graph). No training; labels
only score. "What we tried" #59.

Usage: ``python benchmarks/partition_pool_offline.py [pancreas/standard worm/rare ...]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
import _common as c
import generalisation as g

from dagcl_scverse.model.centre_init import SCALE_MAX_VALUE, initial_centres
from dagcl_scverse.model.chunked_pca import principal_components
from dagcl_scverse.model.kmeans import kmeans
from dagcl_scverse.model.restarts import modularity, restart_seeds
from dagcl_scverse.tl._inputs import get_features, get_graph, graph_to_edges

KINDS = ("linkage", "kmeans", "spherical")
RESTARTS = 5


def pool(space: torch.Tensor, k: int, seed: int) -> list[tuple[str, torch.Tensor]]:
    """``RESTARTS`` partitions of each kind, seeded as the trainer seeds its restarts."""
    centred = space - space.mean(0)
    unit = centred / centred.norm(dim=1, keepdim=True).clamp_min(1e-12)
    partitions = []
    for restart_seed in restart_seeds(seed, RESTARTS):
        partitions.append(("linkage", initial_centres(space, k, space=space, seed=restart_seed)[1]))
        partitions.append(("kmeans", kmeans(space, k, seed=restart_seed, n_init=1)[1]))
        partitions.append(("spherical", kmeans(unit, k, seed=restart_seed, n_init=1)[1]))
    return partitions


def case_row(case: g.Case, seeds: range) -> dict[str, list[float]]:
    """ARI of the most modular partition of each kind, and of the pool, per seed."""
    adata, _ = g.build(case)
    truth = adata.obs["cell_type"].astype(str).to_numpy()
    k = len(np.unique(truth))
    x = get_features(adata, layer=None, use_rep=None)
    edges, weights = graph_to_edges(get_graph(adata, neighbors_key=None, obsp=None))
    edges, weights = torch.as_tensor(edges), torch.as_tensor(weights, dtype=torch.float32)
    row = {kind: [] for kind in (*KINDS, "pool")}
    for seed in seeds:
        space = torch.as_tensor(principal_components(x, scale_max=SCALE_MAX_VALUE, seed=seed))
        scored = [(kind, labels, modularity(labels, edges, weights)) for kind, labels in pool(space, k, seed)]
        for kind in (*KINDS, "pool"):
            best = max((s for s in scored if kind in ("pool", s[0])), key=lambda s: s[2])
            row[kind].append(c.score(truth, best[1].numpy())["ari"])
    return row


def main() -> None:
    """Print each case's mean ARI per kind of partition and for the pooled choice."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cases", nargs="*")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cases = g.cases_by_name()
    names = args.cases or [n for n in cases if n.split("/")[1] in ("standard", "rare") or "/sim-" in n]
    for name in names:
        row = case_row(cases[name], range(3))
        print(f"{name:45s} " + " ".join(f"{kind} {np.mean(v):.3f}" for kind, v in row.items()), flush=True)


if __name__ == "__main__":
    main()
