"""DAGCL with defaults and the true k vs what a scanpy user picks today.

For every data set: the standard pipeline once, then over the same seeds DAGCL (defaults,
true k), Leiden (resolution 1), Leiden bisected to the true k, and KMeans(true k) on 30 PCs.
Mean ± sd of ARI, NMI, ACC and the median wall time of each method go into
docs/benchmarks.md; a bar chart into docs/_static/accuracy.png.

Usage: ``python benchmarks/accuracy.py [--seeds 0 1 2 3 4] [extra.h5 | extra.h5ad ...]``
"""

from __future__ import annotations

import argparse
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
import _common as c

import dagcl_scverse as dagcl

METHODS = ("DAGCL", "Leiden (res. 1)", "Leiden (true k)", "KMeans (true k, 30 PCs)")


def run_dataset(path, seeds):
    """DAGCL and the scanpy baselines on one data set over ``seeds``."""
    adata = c.preprocess(c.load(path))
    truth = adata.obs["cell_type"].to_numpy()
    k = len(np.unique(truth))
    results = {m: [] for m in METHODS}
    for seed in seeds:
        _, t = c.timed(dagcl.tl.cluster, adata, n_clusters=k, random_state=seed, progress_bar=False)
        results["DAGCL"].append({**c.score(truth, adata.obs["dagcl"]), "time": t, "k": k})
        for name, fn in (
            ("Leiden (res. 1)", lambda seed=seed: c.leiden(adata, 1.0, seed)),
            ("Leiden (true k)", lambda seed=seed: c.leiden_to_k(adata, k, seed)),
            ("KMeans (true k, 30 PCs)", lambda seed=seed: c.kmeans_pca(adata, k, seed)),
        ):
            labels, t = c.timed(fn)
            results[name].append({**c.score(truth, labels), "time": t, "k": len(np.unique(labels))})
        print(f"{path.name} seed {seed}: " + ", ".join(f"{m} {results[m][-1]['ari']:.3f}" for m in METHODS), flush=True)
    return {"n_cells": adata.n_obs, "k": k, "results": results}


def main() -> None:
    """Run every data set and write the accuracy table and figure."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_data_arguments(parser)
    parser.add_argument("--seeds", nargs="+", type=int, default=list(c.SEEDS))
    args = parser.parse_args()
    all_results = {}
    for path in c.dataset_paths(args):
        all_results[c.pretty_name(path)] = run_dataset(path, args.seeds)
    c.RESULTS.mkdir(parents=True, exist_ok=True)
    (c.RESULTS / "accuracy.json").write_text(json.dumps(all_results, indent=1))

    rows = []
    for name, data in all_results.items():
        best_baseline = max(np.mean([r["ari"] for r in data["results"][m]]) for m in METHODS[1:])
        for m in METHODS:
            rs = data["results"][m]
            rows.append(
                [
                    name if m == METHODS[0] else "",
                    m,
                    c.mean_sd([r["ari"] for r in rs]),
                    c.mean_sd([r["nmi"] for r in rs]),
                    c.mean_sd([r["acc"] for r in rs]),
                    f"{np.median([r['k'] for r in rs]):.0f}",
                    f"{np.median([r['time'] for r in rs]):.1f}",
                ]
            )
        dagcl_ari = np.mean([r["ari"] for r in data["results"]["DAGCL"]])
        rows.append(
            ["", "*DAGCL - best baseline (target ≥ +0.05)*", f"*{dagcl_ari - best_baseline:+.3f}*", "", "", "", ""]
        )
    table = c.markdown_table(["data set", "method", "ARI", "NMI", "ACC", "clusters", "time (s, median)"], rows)
    text = (
        f"Seeds {args.seeds}, standard pipeline, true k for DAGCL, Leiden (true k) and KMeans; "
        f"torch threads: {torch.get_num_threads()}.\n"
        f"Command: `{c.thread_setting()}python benchmarks/accuracy.py --seeds {' '.join(map(str, args.seeds))}`\n\n{table}\n\n"
        "![ARI by method](_static/accuracy.png)"
    )
    c.write_section("accuracy", text)

    fig, ax = plt.subplots(figsize=(8, 3.5), layout="constrained")
    width = 0.8 / len(METHODS)
    colours = ["#0072B2", "#E69F00", "#009E73", "#CC79A7"]
    for i, m in enumerate(METHODS):
        means = [np.mean([r["ari"] for r in d["results"][m]]) for d in all_results.values()]
        sds = [np.std([r["ari"] for r in d["results"][m]], ddof=1) for d in all_results.values()]
        ax.bar(np.arange(len(all_results)) + i * width, means, width, yerr=sds, label=m, color=colours[i], capsize=3)
    ax.set_xticks(np.arange(len(all_results)) + width * (len(METHODS) - 1) / 2, list(all_results))
    ax.set_ylabel("ARI (mean ± sd over seeds)")
    ax.legend(frameon=False, fontsize=8, ncols=2)
    c.STATIC.mkdir(parents=True, exist_ok=True)
    fig.savefig(c.STATIC / "accuracy.png", dpi=150)
    print(table)


if __name__ == "__main__":
    main()
