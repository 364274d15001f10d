"""Scaling to a million cells: sparse log-normalised synthetic data, mini-batches, several processes.

Every run is a fresh process. For each size one process builds the kNN graph from the features
alone (``synthetic_large.knn_graph``) and is timed on its own; the next reads the graph and runs
``tl.cluster`` with its defaults on ``X`` with only ``obsp["connectivities"]`` (no HVG column,
no ``X_pca``), and reports its time, peak resident memory (``VmHWM``, counted from when the
data are in memory: the simulation's temporaries are left out), the median seconds per
epoch (one pass over every cell) and the one-off seconds beside them, the ARI against the
synthetic types and the share of each batch's edges that stay inside it.

- default: the sizes with defaults; table ``scaling_large`` with the growth exponent of the
  time per epoch. ``--profile`` runs the largest size once more, under cProfile, and lists
  where its time goes (the table's timings stay unprofiled).
- ``--batch-modes N ...``: full-batch (``batch_size=N``) against mini-batches of
  ``--mini-batch-size`` at each N; table ``batch_modes``.
- ``--nproc-compare N``: one process against two (gloo, one torch thread each); table ``nproc``.

Usage: ``python benchmarks/scaling_large.py --sizes 10000 30000 100000 300000 1000000 --profile``
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

#: package functions whose cumulative time the profile table lists, in the order of a run
PROFILED = (
    ("_cluster.py", "cluster"),
    ("_inputs.py", "get_features"),
    ("_inputs.py", "graph_to_edges"),
    ("batches.py", "__init__"),
    ("trainer.py", "_train_epoch"),
    ("sparse_input.py", "forward"),
    ("sparse_input.py", "backward"),
    ("features.py", "encoder_input"),
    ("trainer.py", "_start_self_training"),
    ("chunked_pca.py", "principal_components"),
    ("trainer.py", "_refresh"),
    ("trainer.py", "_global_embedding"),
    ("trainer.py", "_targets"),
    ("trainer.py", "_result"),
    ("_results.py", "write_results"),
)


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB (Linux ``VmHWM``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak_rss() -> None:
    """Start the peak (``VmHWM``) again from the current resident memory: what the simulation's temporaries held is not counted."""
    Path("/proc/self/clear_refs").write_text("5")


def build_graph(n_cells: int, path: Path) -> dict:
    """Build and save the kNN graph of ``n_cells`` synthetic cells; its seconds."""
    import scipy.sparse as sp
    from synthetic_large import knn_graph, sparse_expression

    features, _ = sparse_expression(n_cells)
    t0 = time.perf_counter()
    sp.save_npz(path, knn_graph(features))
    return {"n_cells": n_cells, "graph_s": time.perf_counter() - t0, "graph_peak_rss_mb": peak_rss_mb()}


def worst_type_and_cluster(types: np.ndarray, predicted: np.ndarray) -> dict:
    """The lowest share of a type's cells in its largest cluster, and the lowest purity of a cluster."""
    table = np.zeros((types.max() + 1, predicted.max() + 1))
    np.add.at(table, (types, predicted), 1)
    table = table[:, table.sum(0) > 0]
    return {
        "worst_type_kept": float((table.max(1) / table.sum(1)).min()),
        "worst_cluster_purity": float((table.max(0) / table.sum(0)).min()),
    }


def _profile_rows(profile: cProfile.Profile) -> list[dict]:
    stats = pstats.Stats(profile).stats
    rows = []
    for file_end, name in PROFILED:
        seconds = sum(v[3] for (file, _, func), v in stats.items() if file.endswith(file_end) and func == name)
        if seconds:
            rows.append({"function": f"{file_end[:-3]}.{name}", "seconds": seconds})
    return rows


def cluster_run(n_cells: int, path: Path, batch_size: int | None, nproc: int, profile: bool, labels: Path | None):
    """``tl.cluster`` with defaults (and ``batch_size``, ``nproc``) on the synthetic data; its results."""
    from synthetic_large import N_TYPES, synthetic_anndata

    import dagcl_scverse as dagcl
    from dagcl_scverse.metrics import adjusted_rand_index
    from dagcl_scverse.model.batches import BatchPlan
    from dagcl_scverse.tl._inputs import graph_to_edges

    adata = synthetic_anndata(n_cells, path)
    types = adata.obs["cell_type"].astype(str).astype(np.int64).to_numpy()
    reset_peak_rss()
    profiler = cProfile.Profile() if profile else None
    t0 = time.perf_counter()
    if profiler:
        profiler.enable()
    dagcl.tl.cluster(adata, N_TYPES, obsp="connectivities", batch_size=batch_size, nproc=nproc, progress_bar=False)
    if profiler:
        profiler.disable()
    total = time.perf_counter() - t0
    peak = peak_rss_mb()
    timings, params = adata.uns["dagcl"]["timings"], adata.uns["dagcl"]["params"]
    predicted = adata.obs["dagcl"].to_numpy().astype(np.int64)
    if labels is not None:
        np.save(labels, predicted.astype(np.int64))
    plan = BatchPlan(*graph_to_edges(adata.obsp["connectivities"]), n_cells, batch_size=params["batch_size"] or None)
    inside = [batch.inside_share() for batch in plan.batches]
    return {
        "n_cells": n_cells,
        "cluster_s": total,
        "s_per_epoch": float(np.median(timings["epoch_seconds"])),
        "one_off_s": float(timings["one_off_seconds"].sum()),
        "epochs": int(params["pretrain_epochs"] + params["epochs"]),
        "batch_size": int(params["batch_size"] or n_cells),
        "steps_per_epoch": int(params["steps_per_epoch"]),
        "world_size": int(params["world_size"]),
        "peak_rss_mb": peak,
        "ari": adjusted_rand_index(types, predicted),
        **worst_type_and_cluster(types, predicted),
        "n_edges": int(adata.obsp["connectivities"].nnz),
        "inside_share_median": float(np.median(inside)),
        "inside_share_min": float(np.min(inside)),
        "context_per_seed": float(sum(b.nodes.size - b.n_seeds for b in plan.batches) / n_cells),
        "profile": _profile_rows(profiler) if profiler else [],
    }


def _child(argv: list[str]) -> dict:
    """Run one child process of this script and return the JSON it printed last."""
    out = subprocess.run([sys.executable, __file__, *argv], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measured(n: int, graph_dir: Path, *, batch_size: int | None = None, nproc: int = 1, profile=False, labels=None):
    """The graph (built once per size, timed apart) and one clustering run of ``n`` cells, each in a new process."""
    path = graph_dir / f"graph_{n}.npz"
    graph = {}
    if not path.exists():
        graph = _child(["--build-graph", str(n), "--graph-dir", str(graph_dir)])
    argv = ["--cluster", str(n), "--graph-dir", str(graph_dir), "--nproc", str(nproc)]
    argv += ["--batch-size", str(batch_size)] if batch_size else []
    argv += ["--profile"] if profile else []
    argv += ["--labels", str(labels)] if labels else []
    row = _child(argv)
    row.update(graph)
    print(json.dumps({k: v for k, v in row.items() if k != "profile"}), flush=True)
    return row


def main(argv: list[str] | None = None) -> None:
    """Run the requested measurements, each in its own process, and write their tables."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="*", type=int, default=[10_000, 30_000, 100_000, 300_000, 1_000_000])
    parser.add_argument("--profile", action="store_true", help="profile the largest size")
    parser.add_argument("--batch-modes", nargs="*", type=int, default=[], help="sizes for full vs mini-batch")
    parser.add_argument("--mini-batch-size", type=int, default=8_192)
    parser.add_argument("--nproc-compare", type=int, help="size for one process against two")
    parser.add_argument("--graph-dir", type=Path, help="where graphs are kept (default: a temporary folder)")
    parser.add_argument("--build-graph", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cluster", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--nproc", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--labels", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.build_graph:
        print(json.dumps(build_graph(args.build_graph, args.graph_dir / f"graph_{args.build_graph}.npz")))
        return
    if args.cluster:
        path = args.graph_dir / f"graph_{args.cluster}.npz"
        print(json.dumps(cluster_run(args.cluster, path, args.batch_size, args.nproc, args.profile, args.labels)))
        return
    import scaling_large_tables as tables

    with tempfile.TemporaryDirectory() as tmp:
        graph_dir = args.graph_dir or Path(tmp)
        graph_dir.mkdir(parents=True, exist_ok=True)
        command = " ".join(["python benchmarks/scaling_large.py", *sys.argv[1:]])
        command = (
            f"DAGCL_BENCH_THREADS={os.environ['DAGCL_BENCH_THREADS']} {command}"
            if "DAGCL_BENCH_THREADS" in os.environ
            else command
        )
        if args.sizes:
            rows = [measured(n, graph_dir) for n in args.sizes]
            # the largest size is profiled in a run of its own, so that cProfile's overhead never
            # reaches the table's timings or the growth exponent
            profiled = measured(max(args.sizes), graph_dir, profile=True) if args.profile else None
            tables.write_scaling(rows, command, profiled)
        if args.batch_modes:
            rows = [
                (measured(n, graph_dir, batch_size=n), measured(n, graph_dir, batch_size=args.mini_batch_size))
                for n in args.batch_modes
            ]
            tables.write_batch_modes(rows, command)
        if args.nproc_compare:
            n = args.nproc_compare
            one = measured(n, graph_dir, labels=graph_dir / "labels_1.npy")
            two = measured(n, graph_dir, nproc=2, labels=graph_dir / "labels_2.npy")
            tables.write_nproc(
                one, two, np.load(graph_dir / "labels_1.npy"), np.load(graph_dir / "labels_2.npy"), command
            )


if __name__ == "__main__":
    main()
