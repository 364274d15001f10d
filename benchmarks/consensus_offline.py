"""Offline: the initial partition as a consensus of its restarts instead of the most modular one.

For each generalisation case named (default: the standard, rare-type, scaled, 5,000-HVG and
simulated cases) and run seeds 0-4, on the standardised, clipped principal components the
trainer partitions: the default (the most modular of 5 restarts of cosine average linkage), the
most modular of 10, and the consensus of the same 5 / of 10 restarts. The consensus groups cells with the same labels in
every restart (one group per distinct label tuple) and merges the groups by average linkage on
their co-association (the share of restarts that put two cells together), which is the cosine
average linkage of the groups' concatenated one-hot label vectors: no cells x cells matrix. No
training; labels only score.

Usage: ``python benchmarks/consensus_offline.py [--seeds 0 1 2 3 4] [pancreas/standard worm/rare ...]``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
import _common as c
import generalisation as g

from dagcl_scverse.model.centre_init import SCALE_MAX_VALUE, average_linkage_groups, initial_centres
from dagcl_scverse.model.chunked_pca import principal_components
from dagcl_scverse.model.restarts import modularity, restart_seeds
from dagcl_scverse.tl._inputs import get_features, get_graph, graph_to_edges

KINDS = ("modular5", "modular10", "consensus5", "consensus10")
OUT = Path(__file__).parent / "results" / "consensus_offline.json"


def consensus(partitions: list[np.ndarray], k: int) -> tuple[np.ndarray, int]:
    """Labels of the co-association average linkage of ``partitions`` into ``k`` groups, and the number of label tuples."""
    stacked = np.stack(partitions, axis=1)
    tuples, group = np.unique(stacked, axis=0, return_inverse=True)
    group = group.ravel()
    n_restarts = stacked.shape[1]
    width = int(stacked.max()) + 1
    # each tuple as R one-hot blocks, scaled to unit length: dot products are shares of agreeing restarts
    onehot = np.zeros((tuples.shape[0], n_restarts * width))
    onehot[np.arange(tuples.shape[0])[:, None], np.arange(n_restarts) * width + tuples] = 1 / np.sqrt(n_restarts)
    sizes = np.bincount(group)
    merged = average_linkage_groups(torch.as_tensor(onehot), torch.as_tensor(sizes), k).numpy()
    return merged[group], tuples.shape[0]


def case_row(case: g.Case, seeds: list[int]) -> dict:
    """ARI per seed of each way of combining the restarts (``KINDS``); label tuples of the 10 restarts per seed."""
    adata, _ = g.build(case)
    truth = adata.obs["cell_type"].astype(str).to_numpy()
    k = len(np.unique(truth))
    x = get_features(adata, layer=None, use_rep=None)
    edges, weights = graph_to_edges(get_graph(adata, neighbors_key=None, obsp=None))
    edges, weights = torch.as_tensor(edges), torch.as_tensor(weights, dtype=torch.float32)
    row = {"fold": case.fold, **{kind: [] for kind in KINDS}, "tuples10": []}
    for seed in seeds:
        space = torch.as_tensor(principal_components(x, scale_max=SCALE_MAX_VALUE, seed=seed))
        labels = [initial_centres(space, k, space=space, seed=s)[1] for s in restart_seeds(seed, 10)]
        scores = [modularity(lab, edges, weights) for lab in labels]
        row["modular5"].append(c.score(truth, labels[int(np.argmax(scores[:5]))].numpy())["ari"])
        row["modular10"].append(c.score(truth, labels[int(np.argmax(scores))].numpy())["ari"])
        five, _ = consensus([lab.numpy() for lab in labels[:5]], k)
        ten, n_tuples = consensus([lab.numpy() for lab in labels], k)
        row["consensus5"].append(c.score(truth, five)["ari"])
        row["consensus10"].append(c.score(truth, ten)["ari"])
        row["tuples10"].append(n_tuples)
    return row


def main() -> None:
    """Print and save each case's mean ARI and spread per way of combining the restarts."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cases", nargs="*")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    torch.set_num_threads(1)
    cases = g.cases_by_name()
    kept = ("standard", "rare", "scaled", "hvg5000")
    names = args.cases or [n for n in cases if n.split("/")[1] in kept or "/sim-" in n]
    results = json.loads(OUT.read_text()) if OUT.exists() else {}
    for name in names:
        results[name] = row = case_row(cases[name], args.seeds)
        OUT.write_text(json.dumps(results, indent=1))
        summary = " ".join(f"{kind} {np.mean(row[kind]):.3f} ± {np.std(row[kind]):.3f}" for kind in KINDS)
        print(f"{name:45s} {summary} tuples {int(np.median(row['tuples10']))}", flush=True)


if __name__ == "__main__":
    main()
