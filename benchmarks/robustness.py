"""Robustness to dropout: zero out a share of the non-zero counts before preprocessing.

For each level (default 0 %, 20 %, 40 %) and seed, a seeded random share of the non-zero raw
counts is set to zero, the standard pipeline runs, and DAGCL (true k), Leiden (resolution 1)
and KMeans (true k, 30 PCs) are scored. Table into docs/benchmarks.md, line plot into
docs/_static/robustness.png.

Usage: ``python benchmarks/robustness.py [--levels 0 0.2 0.4] [--seeds 0 1 2] [--jobs 2] [extra.h5 ...]``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).parent))
import _common as c

import dagcl_scverse as dagcl

METHODS = ("DAGCL", "Leiden (res. 1)", "KMeans (true k, 30 PCs)")


def drop_out(adata, share: float, seed: int):
    """A copy of ``adata`` with ``share`` of its non-zero counts set to zero."""
    out = adata.copy()
    X = sp.csr_matrix(out.X, copy=True)
    rng = np.random.default_rng(seed)
    X.data[rng.random(X.data.size) < share] = 0
    X.eliminate_zeros()
    out.X = X
    out.layers["counts"] = X.copy()
    return out


def run_level(path: Path, level: float, seed: int) -> dict[str, float]:
    """Scores of DAGCL and the baselines after extra dropout at ``level``."""
    raw = c.load(path)
    k = raw.obs["cell_type"].nunique()
    adata = c.preprocess(drop_out(raw, level, seed))
    truth = adata.obs["cell_type"].to_numpy()
    dagcl.tl.cluster(adata, k, random_state=seed, progress_bar=False, stages=0)
    labels = {
        "DAGCL": adata.obs["dagcl"].to_numpy(),
        "Leiden (res. 1)": c.leiden(adata, 1.0, seed),
        "KMeans (true k, 30 PCs)": c.kmeans_pca(adata, k, seed),
    }
    return {m: c.score(truth, labels[m])["ari"] for m in METHODS}


def main() -> None:
    """Run every data set and dropout level and write the robustness table and figure."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_data_arguments(parser)
    c.add_jobs_argument(parser)
    parser.add_argument("--levels", nargs="+", type=float, default=[0.0, 0.2, 0.4])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    args = parser.parse_args()
    paths = c.dataset_paths(args)
    tasks = [(path, level, seed) for path in paths for level in args.levels for seed in args.seeds]
    aris = iter(c.run_tasks(run_level, tasks, args.jobs))
    results = {}
    for path in paths:
        name = c.pretty_name(path)
        results[name] = {m: {str(lv): [] for lv in args.levels} for m in METHODS}
        for level in args.levels:
            for _ in args.seeds:
                run = next(aris)
                for m in METHODS:
                    results[name][m][str(level)].append(run[m])
            print(name, level, {m: np.mean(results[name][m][str(level)]) for m in METHODS}, flush=True)
    c.RESULTS.mkdir(parents=True, exist_ok=True)
    (c.RESULTS / "robustness.json").write_text(json.dumps(results, indent=1))

    rows = []
    for name, res in results.items():
        for m in METHODS:
            rows.append([name if m == METHODS[0] else "", m] + [c.mean_sd(res[m][str(lv)]) for lv in args.levels])
    table = c.markdown_table(["data set", "method"] + [f"ARI, {lv:.0%} dropped" for lv in args.levels], rows)
    c.write_section(
        "robustness",
        f"Seeds {args.seeds} (each seed drops a different random share and seeds the methods).\n"
        f"Command: `{c.thread_setting()}python benchmarks/robustness.py --levels {' '.join(map(str, args.levels))} "
        f"--seeds {' '.join(map(str, args.seeds))} --jobs {args.jobs}`\n\n{table}\n\n![ARI under dropout](_static/robustness.png)",
    )
    fig, axes = plt.subplots(1, len(results), figsize=(3.2 * len(results), 3), layout="constrained", squeeze=False)
    colours = ["#0072B2", "#E69F00", "#CC79A7"]
    for ax, (name, res) in zip(axes[0], results.items(), strict=False):
        for colour, m in zip(colours, METHODS, strict=False):
            means = [np.mean(res[m][str(lv)]) for lv in args.levels]
            sds = [np.std(res[m][str(lv)]) for lv in args.levels]
            ax.errorbar([100 * lv for lv in args.levels], means, yerr=sds, marker="o", label=m, color=colour, capsize=3)
        ax.set_title(name)
        ax.set_xlabel("non-zero counts dropped (%)")
        ax.set_ylabel("ARI")
    axes[0][0].legend(frameon=False, fontsize=8)
    fig.savefig(c.STATIC / "robustness.png", dpi=150)
    print(table)


if __name__ == "__main__":
    main()
