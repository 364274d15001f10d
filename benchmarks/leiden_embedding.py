"""Why Leiden splits ``X_dagcl`` more than ``X_pca``: the shape of the clusters in each space.

For each generalisation case named and one seed: DAGCL with defaults (true k), then Leiden
(resolution 1) on 15-neighbour graphs of ``X_pca`` and of ``X_dagcl``, with its ARI and number
of communities, and the median over DAGCL's clusters (30 cells or more) of the participation
ratio of the within-cluster covariance, ``(sum of eigenvalues)^2 / sum of squared eigenvalues``:
about the number of directions a cluster's cells spread along. A kNN graph of a cluster that
spreads along few directions is mesh-like, and modularity then rewards cutting it into pieces.
With ``--stages``, Leiden on ``X_dagcl`` is also measured at two earlier points of the same
training: the pre-trained embedding before the initial partition is carried into it
(``carry_steps=0, epochs=1``) and the start of self-training (``epochs=1``), to tell what the
carry and self-training do to the embedding from what pre-training leaves. Labels only score.

Usage: ``python benchmarks/leiden_embedding.py pancreas/standard worm/standard --seed 0 [--stages]``
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

import dagcl_scverse as dagcl

MIN_CLUSTER_CELLS = 30


def participation_ratio(points: np.ndarray) -> float:
    """``(sum of eigenvalues)^2 / sum of squared eigenvalues`` of the covariance of ``points``."""
    eigenvalues = np.linalg.eigvalsh(np.cov(points.T))
    return float(eigenvalues.sum() ** 2 / (eigenvalues**2).sum())


def within_cluster_ratio(points: np.ndarray, labels: np.ndarray) -> float:
    """Median participation ratio over the clusters of at least ``MIN_CLUSTER_CELLS`` cells."""
    large = [label for label in np.unique(labels) if (labels == label).sum() >= MIN_CLUSTER_CELLS]
    return float(np.median([participation_ratio(points[labels == label]) for label in large]))


#: the earlier points of training that ``--stages`` measures, as ``(name, config overrides, epochs)``
STAGES = (("pre-trained, before the carry", {"carry_steps": 0}, 1), ("start of self-training", {}, 1))


def leiden_at_stages(adata, truth: np.ndarray, seed: int) -> None:
    """Print Leiden's ARI and communities on ``X_dagcl`` at each of ``STAGES`` (on a copy of ``adata``)."""
    for stage, overrides, epochs in STAGES:
        run = adata.copy()
        with g.config_overrides(overrides):
            dagcl.tl.cluster(
                run, n_clusters=len(np.unique(truth)), random_state=seed, epochs=epochs, progress_bar=False, stages=0
            )
        communities = g.leiden_on(run, "X_dagcl", seed)
        print(
            f"  Leiden on X_dagcl, {stage}: ARI {c.score(truth, communities)['ari']:.3f}, "
            f"{len(np.unique(communities))} communities",
            flush=True,
        )


def main() -> None:
    """Print, per case and space, Leiden's ARI and communities and the within-cluster ratio (and, with ``--stages``, earlier)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cases", nargs="+")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stages", action="store_true", help="also Leiden on X_dagcl before the carry and at epochs=1")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cases = g.cases_by_name()
    for name in args.cases:
        adata, _ = g.build(cases[name])
        truth = adata.obs["cell_type"].astype(str).to_numpy()
        dagcl.tl.cluster(adata, n_clusters=len(np.unique(truth)), random_state=args.seed, progress_bar=False)
        labels = adata.obs["dagcl"].to_numpy()
        print(f"{name}: DAGCL ARI {c.score(truth, labels)['ari']:.3f}, k {len(np.unique(truth))}")
        for rep in ("X_pca", "X_dagcl"):
            communities = g.leiden_on(adata, rep, args.seed)
            ratio = within_cluster_ratio(adata.obsm[rep], labels)
            print(
                f"  Leiden on {rep}: ARI {c.score(truth, communities)['ari']:.3f}, "
                f"{len(np.unique(communities))} communities; within-cluster participation ratio {ratio:.1f} "
                f"of {adata.obsm[rep].shape[1]} dimensions",
                flush=True,
            )
        if args.stages:
            leiden_at_stages(adata, truth, args.seed)


if __name__ == "__main__":
    main()
