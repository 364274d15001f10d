"""Offline: can any label-free, cell-level step improve on DAGCL's initial partition?

Self-training can only beat its start if the embedding (or the input, or the graph) holds
something about the cells that the initial partition lacks. This probe asks that directly. For
each case and seed, ``tl.cluster`` runs twice with true k: with the defaults (the partition
carried into the embedding, as self-training sees it) and with ``carry_steps=0, epochs=1``
(the pre-trained embedding before the carry). From the initial partition it then applies, in
each space, simple label-free refinements:

- ``lloyd1`` / ``lloyd10``: 1 / 10 Lloyd steps (each cell to its nearest cluster mean);
- ``vote1`` / ``vote3``: 1 / 3 rounds of majority vote over the cell's 15 nearest neighbours
  and itself;
- ``pca_lloyd1`` / ``pca_cosine1``: one Lloyd step on 30 plain PCs (Euclidean / unit-length);
- ``pca_vote1``: one vote round over 15 neighbours in the PCs;
- ``graph_vote1``: one vote round over the case's kNN graph (``obsp["connectivities"]``
  weights, the cell itself weight 1);

and reports each one's ARI minus the initial partition's, mean over seeds, and the share of
cells whose label ``vote1`` leaves unchanged (how far the space already agrees with the
partition). Labels only score. Results into benchmarks/results/refinement_offline.json.

Usage: ``python benchmarks/refinement_offline.py [--cases pancreas/standard worm/rare]
[--seeds 0 1] [--jobs 2]`` (default: the ``--quick`` cases of ``generalisation.py`` and
``nn10`` left out, seeds 0 and 1).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.neighbors import NearestNeighbors

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c
import generalisation as g

import dagcl_scverse as dagcl

PRE_CARRY = {"carry_steps": 0, "epochs": 1}
NEIGHBOURS = 15


def lloyd(x: np.ndarray, labels: np.ndarray, steps: int) -> np.ndarray:
    """``steps`` Lloyd steps from ``labels``: each cell to its nearest cluster mean (empty clusters stay empty)."""
    for _ in range(steps):
        present = np.unique(labels)
        centres = np.stack([x[labels == j].mean(0) for j in present])
        # cells x clusters
        distance = (centres**2).sum(1) - 2 * x @ centres.T  # ok-dense
        labels = present[distance.argmin(1)]
    return labels


def vote(graph: sp.csr_matrix, labels: np.ndarray, k: int, rounds: int) -> np.ndarray:
    """``rounds`` rounds of weighted majority vote over ``graph``'s neighbours and the cell itself."""
    for _ in range(rounds):
        one_hot = sp.csr_matrix((np.ones(len(labels)), (np.arange(len(labels)), labels)), shape=(len(labels), k))
        labels = np.asarray((graph @ one_hot + one_hot).todense()).argmax(1)  # ok-dense: cells x clusters
    return labels


def knn_graph(x: np.ndarray) -> sp.csr_matrix:
    """Unweighted ``NEIGHBOURS``-nearest-neighbour graph of the rows of ``x`` (self excluded)."""
    neighbours = NearestNeighbors(n_neighbors=NEIGHBOURS + 1).fit(x).kneighbors(x, return_distance=False)[:, 1:]
    rows = np.repeat(np.arange(len(x)), NEIGHBOURS)
    return sp.csr_matrix((np.ones(rows.size), (rows, neighbours.ravel())), shape=(len(x), len(x)))


def refinements(embedding: np.ndarray, adata, initial: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Every refinement of ``initial`` in the embedding, the PCs and the graph."""
    pcs = adata.obsm["X_pca"][:, :30]
    embedding_graph = knn_graph(embedding)
    return {
        "lloyd1": lloyd(embedding, initial, 1),
        "lloyd10": lloyd(embedding, initial, 10),
        "vote1": vote(embedding_graph, initial, k, 1),
        "vote3": vote(embedding_graph, initial, k, 3),
        "pca_lloyd1": lloyd(pcs, initial, 1),
        "pca_cosine1": lloyd(pcs / np.linalg.norm(pcs, axis=1, keepdims=True), initial, 1),
        "pca_vote1": vote(knn_graph(pcs), initial, k, 1),
        "graph_vote1": vote(adata.obsp["connectivities"].tocsr(), initial, k, 1),
    }


def run_case(file: Path, name: str, seed: int) -> dict:
    """ARI changes of every refinement, after and before the carry, for one case and seed."""
    adata = c.read_preprocessed(file)
    truth = adata.obs["cell_type"].astype(str).to_numpy()
    k = len(np.unique(truth))
    out = {"seed": seed}
    for embedding_name, overrides in (("carried", {}), ("pre_carry", PRE_CARRY)):
        a = adata.copy()
        with g.config_overrides(overrides):
            dagcl.tl.cluster(a, n_clusters=k, random_state=seed, progress_bar=False, stages=0)
        initial = np.asarray(a.uns["dagcl"]["initial_labels"]).astype(int)
        base = c.score(truth, initial)["ari"]
        changes = {key: c.score(truth, labels)["ari"] - base for key, labels in
                   refinements(a.obsm["X_dagcl"], a, initial, k).items()}  # fmt: skip
        changes["start"] = c.score(truth, np.asarray(a.uns["dagcl"]["start_labels"]))["ari"] - base
        changes["vote1_unchanged"] = float(np.mean(vote(knn_graph(a.obsm["X_dagcl"]), initial, k, 1) == initial))
        out[embedding_name] = {"initial_ari": base, "change": changes}
    return out


def table(results: dict) -> str:
    """One markdown table per embedding: the mean ARI change of each refinement per case."""
    lines = []
    for embedding_name in ("carried", "pre_carry"):
        keys = list(next(iter(results.values()))[0][embedding_name]["change"])
        rows = {
            name: (
                np.mean([run[embedding_name]["initial_ari"] for run in runs]),
                {key: np.mean([run[embedding_name]["change"][key] for run in runs]) for key in keys},
            )
            for name, runs in results.items()
        }
        lines += [f"\n{embedding_name}\n", g.change_table(rows)]
    return "\n".join(lines)


def main() -> None:
    """Run every (case, seed), write the results and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_jobs_argument(parser)
    parser.add_argument("--cases", nargs="+", help="case names (default: the quick cases without nn10)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    args = parser.parse_args()
    by_name = g.cases_by_name()
    cases = [by_name[name] for name in args.cases] if args.cases else [
        case for case in g.quick_cases() if case.variant != "nn10"]  # fmt: skip
    results = g.runs_by_case(run_case, cases, args.seeds, args.jobs)
    (c.RESULTS / "refinement_offline.json").write_text(json.dumps(results, indent=1))
    print(table(results))


if __name__ == "__main__":
    main()
