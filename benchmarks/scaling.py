"""How DAGCL's time and memory grow with the number of cells.

Synthetic negative-binomial counts with known groups (group-specific gene programmes, cell
size factors, over-dispersion) at each size; the standard pipeline; then ``tl.cluster`` with
fixed epochs. Each size runs in its own process so that its peak resident set size (VmHWM)
is its own. Seconds per epoch, total training time and peak memory go into a table in
docs/benchmarks.md and a log-log plot; the growth exponent of time per epoch is fitted
between the two largest sizes and over all sizes from 10k on.

Usage: ``python benchmarks/scaling.py [--sizes 2000 10000 50000 100000] [--epochs 10]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

N_GENES = 3000
N_GROUPS = 10


def synthetic_counts(n_cells: int, seed: int = 0):
    """Sparse NB counts: ``N_GROUPS`` groups, each up-regulating its own set of genes."""
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    base = rng.lognormal(mean=-1.5, sigma=1.2, size=N_GENES)
    programmes = np.ones((N_GROUPS, N_GENES))
    for g in range(N_GROUPS):
        genes = rng.choice(N_GENES, 150, replace=False)
        programmes[g, genes] = rng.lognormal(1.0, 0.5, size=150)
    groups = rng.integers(N_GROUPS, size=n_cells)
    size = rng.lognormal(0, 0.4, size=n_cells)
    dispersion = 0.5
    blocks = []
    for start in range(0, n_cells, 10_000):
        stop = min(start + 10_000, n_cells)
        mu = size[start:stop, None] * base[None, :] * programmes[groups[start:stop]]
        lam = rng.gamma(1 / dispersion, mu * dispersion)
        blocks.append(sp.csr_matrix(rng.poisson(lam).astype(np.float32)))
    adata = ad.AnnData(sp.vstack(blocks).tocsr())
    adata.obs["cell_type"] = pd.Categorical(groups.astype(str))
    return adata


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB (Linux ``VmHWM``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(n_cells: int, epochs: int) -> None:
    """One measured run in a fresh process; prints its results as JSON."""
    import _common as c

    import dagcl_scverse as dagcl

    adata = synthetic_counts(n_cells)
    t0 = time.perf_counter()
    c.preprocess(adata)
    t_pre = time.perf_counter() - t0
    t0 = time.perf_counter()
    dagcl.tl.cluster(adata, N_GROUPS, epochs=epochs, pretrain_epochs=epochs, progress_bar=False, stages=0)
    t_train = time.perf_counter() - t0
    ari = c.score(adata.obs["cell_type"].to_numpy(), adata.obs["dagcl"])["ari"]
    print(
        json.dumps(
            {
                "n_cells": n_cells,
                "epochs": 2 * epochs,
                "preprocess_s": t_pre,
                "cluster_s": t_train,
                "s_per_epoch": t_train / (2 * epochs),
                "peak_rss_mb": peak_rss_mb(),
                "ari": ari,
                "n_edges": int(adata.obsp["connectivities"].nnz),
            }
        )
    )


def large_child(n_cells: int, batch_size: int | None, graph_dir: Path) -> None:
    """One run on sparse log-normalised synthetic data with only ``obsp["connectivities"]``; prints JSON.

    The kNN graph is built (and timed) in an earlier process and read from ``graph_dir``, so
    that this process's peak memory is that of the data and of ``tl.cluster``.
    """
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp
    from synthetic_large import N_TYPES, knn_graph, sparse_expression

    import dagcl_scverse as dagcl
    from dagcl_scverse.metrics import adjusted_rand_index
    from dagcl_scverse.model.batches import BatchPlan
    from dagcl_scverse.tl._inputs import graph_to_edges

    path = graph_dir / f"graph_{n_cells}.npz"
    features, types = sparse_expression(n_cells)
    if not path.exists():
        t0 = time.perf_counter()
        sp.save_npz(path, knn_graph(features))
        print(json.dumps({"n_cells": n_cells, "graph_s": time.perf_counter() - t0}))
        return
    adata = ad.AnnData(features, obs=pd.DataFrame({"cell_type": pd.Categorical(types.astype(str))}))
    adata.obsp["connectivities"] = sp.load_npz(path).tocsr()
    t0 = time.perf_counter()
    dagcl.tl.cluster(adata, N_TYPES, obsp="connectivities", batch_size=batch_size, progress_bar=False)
    total = time.perf_counter() - t0
    peak = peak_rss_mb()
    timings, params = adata.uns["dagcl"]["timings"], adata.uns["dagcl"]["params"]
    edge_index, edge_weight = graph_to_edges(adata.obsp["connectivities"])
    plan = BatchPlan(edge_index, edge_weight, n_cells, batch_size=params["batch_size"])
    inside = [batch.inside_share() for batch in plan.batches]
    print(
        json.dumps(
            {
                "n_cells": n_cells,
                "cluster_s": total,
                "s_per_epoch": float(np.median(timings["epoch_seconds"])),
                "one_off_s": float(timings["one_off_seconds"].sum()),
                "epochs": int(params["pretrain_epochs"] + params["epochs"]),
                "batch_size": int(params["batch_size"]),
                "steps_per_epoch": int(params["steps_per_epoch"]),
                "peak_rss_mb": peak,
                "ari": adjusted_rand_index(types, adata.obs["dagcl"].to_numpy()),
                "n_edges": int(adata.obsp["connectivities"].nnz),
                "inside_share_median": float(np.median(inside)),
                "inside_share_min": float(np.min(inside)),
            }
        )
    )


def scaling_figure(rows: list[dict], path: Path) -> None:
    """Seconds per epoch (with a linear reference) and peak memory against cells, log-log, saved to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = np.array([r["n_cells"] for r in rows], dtype=float)
    spe = np.array([r["s_per_epoch"] for r in rows])
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), layout="constrained")
    axes[0].loglog(n, spe, "o-", color="#0072B2", label="measured")
    axes[0].loglog(n, spe[0] * n / n[0], ":", color="grey", label="linear")
    axes[0].set_xlabel("cells")
    axes[0].set_ylabel("seconds per epoch")
    axes[0].legend(frameon=False)
    axes[1].loglog(n, [r["peak_rss_mb"] / 1024 for r in rows], "o-", color="#D55E00")
    axes[1].set_xlabel("cells")
    axes[1].set_ylabel("peak RSS (GiB)")
    fig.savefig(path, dpi=150)


def main() -> None:
    """Run every size in its own process and write the scaling table and figure."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=int, default=[2000, 10_000, 50_000, 100_000])
    parser.add_argument("--epochs", type=int, default=10, help="pre-training and self-training epochs each")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.epochs)
        return

    import _common as c

    rows = []
    for n in args.sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(n), "--epochs", str(args.epochs)],
            check=True,
            capture_output=True,
            text=True,
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    c.RESULTS.mkdir(parents=True, exist_ok=True)
    (c.RESULTS / "scaling.json").write_text(json.dumps(rows, indent=1))

    n = np.array([r["n_cells"] for r in rows], dtype=float)
    spe = np.array([r["s_per_epoch"] for r in rows])
    big = n >= 10_000
    exponent_all = np.polyfit(np.log(n[big]), np.log(spe[big]), 1)[0] if big.sum() >= 2 else float("nan")
    exponent_top = np.log(spe[-1] / spe[-2]) / np.log(n[-1] / n[-2]) if len(n) >= 2 else float("nan")
    table = c.markdown_table(
        ["cells", "edges", "s / epoch", "tl.cluster (s)", "preprocessing (s)", "peak RSS (GiB)", "ARI"],
        [
            [
                f"{r['n_cells']:,}",
                f"{r['n_edges']:,}",
                f"{r['s_per_epoch']:.3f}",
                f"{r['cluster_s']:.1f}",
                f"{r['preprocess_s']:.1f}",
                f"{r['peak_rss_mb'] / 1024:.2f}",
                f"{r['ari']:.3f}",
            ]
            for r in rows
        ],
    )
    c.write_section(
        "scaling",
        f"Synthetic NB counts, {N_GENES} genes, {N_GROUPS} groups, standard pipeline, "
        f"{args.epochs} + {args.epochs} epochs, CPU (2 cores, "
        f"torch threads: {os.environ.get('DAGCL_BENCH_THREADS', 'default')}), one process per size.\n"
        f"Command: `{c.thread_setting()}python benchmarks/scaling.py --sizes {' '.join(map(str, args.sizes))} --epochs {args.epochs}`\n\n"
        f"{table}\n\nGrowth exponent of time per epoch: {exponent_all:.2f} (fit over sizes ≥ 10k), "
        f"{exponent_top:.2f} (between the two largest sizes).\n\n![scaling](_static/scaling.png)",
    )
    scaling_figure(rows, c.STATIC / "scaling.png")
    print(table)


if __name__ == "__main__":
    main()
