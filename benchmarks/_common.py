"""Shared pieces of the benchmark scripts: data, the standard pipeline, baselines, tables.

Run the scripts from the repository root, e.g. ``python benchmarks/accuracy.py``. They read
the labelled data sets from ``../shared/data`` (or files given on the command line) and use the
labels only to score.
"""

from __future__ import annotations

import functools
import os
import re
import time
from pathlib import Path

import anndata as ad
import numpy as np
import scanpy as sc
import torch
from sklearn.cluster import KMeans

import dagcl_scverse as dagcl
from dagcl_scverse.cli import standard_pipeline
from dagcl_scverse.metrics import accuracy, adjusted_rand_index, normalized_mutual_info

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT.parent / "shared" / "data"
DOC = ROOT / "docs" / "benchmarks.md"
STATIC = ROOT / "docs" / "_static"
RESULTS = ROOT / "benchmarks" / "results"
SEEDS = (0, 1, 2, 3, 4)

# Two benchmarks sharing the 2-core machine run one torch thread each. With OMP_NUM_THREADS=1
# alone a second native thread per process stayed busy and both ran several times slower;
# an explicit torch.set_num_threads(1) removed it. The setting does not last: see pin_threads().
if os.environ.get("DAGCL_BENCH_THREADS"):
    torch.set_num_threads(int(os.environ["DAGCL_BENCH_THREADS"]))

DATASETS = {
    "Maayan_Mouse_Pancreas_cell_1.h5": "Mouse pancreas 1",
    "Junyue_worm_neuron_cell.h5": "Worm neuron",
    "Grace_CITE_CBMC_counts_top2000.h5": "CITE CBMC",
}


def add_data_arguments(parser) -> None:
    parser.add_argument("extra", nargs="*", help="more labelled h5/h5ad files")
    parser.add_argument("--no-shared", action="store_true", help=f"skip the data sets in {DATA_DIR}")


def dataset_paths(args) -> list[Path]:
    shared = [] if args.no_shared else [DATA_DIR / name for name in DATASETS]
    return shared + [Path(p) for p in args.extra]


def pretty_name(path: Path) -> str:
    return DATASETS.get(path.name, path.stem)


def load(path: Path) -> ad.AnnData:
    """Raw counts with ``obs["cell_type"]``, from a literature h5 or an h5ad."""
    if path.suffix == ".h5ad":
        return ad.read_h5ad(path)
    return dagcl.io.read_h5(path)


def preprocess(adata: ad.AnnData) -> ad.AnnData:
    """DESIGN.md's standard pipeline (in place), returned for chaining; torch's threads pinned again after it."""
    standard_pipeline(adata)
    pin_threads(bench_threads())
    return adata


def preprocess_to_files(paths: list[Path], folder: Path) -> dict[str, Path]:
    """Each data set through the standard pipeline once, saved as h5ad for worker processes."""
    files = {}
    for i, path in enumerate(paths):
        files[pretty_name(path)] = folder / f"{i}.h5ad"
        preprocess(load(path)).write_h5ad(files[pretty_name(path)])
    return files


@functools.lru_cache(maxsize=1)
def read_preprocessed(file: Path) -> ad.AnnData:
    return ad.read_h5ad(file)


def score(truth, labels) -> dict[str, float]:
    return {
        "ari": adjusted_rand_index(truth, labels),
        "nmi": normalized_mutual_info(truth, labels),
        "acc": accuracy(truth, labels),
    }


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def leiden(adata: ad.AnnData, resolution: float, seed: int, graph_key: str | None = None) -> np.ndarray:
    kwargs = {"obsp": graph_key} if graph_key else {}
    out = sc.tl.leiden(
        adata,
        resolution=resolution,
        flavor="igraph",
        n_iterations=2,
        directed=False,
        random_state=seed,
        copy=True,
        **kwargs,
    )
    return out.obs["leiden"].to_numpy()


def leiden_to_k(adata: ad.AnnData, k: int, seed: int, steps: int = 20) -> np.ndarray:
    """Leiden with the resolution bisected until it gives ``k`` clusters (or the closest seen)."""
    lo, hi = 0.01, 5.0
    best = None
    for _ in range(steps):
        mid = np.sqrt(lo * hi)
        labels = leiden(adata, mid, seed)
        n = len(np.unique(labels))
        if best is None or abs(n - k) < abs(best[0] - k):
            best = (n, labels)
        if n == k:
            break
        if n < k:
            lo = mid
        else:
            hi = mid
    return best[1]


def kmeans_pca(adata: ad.AnnData, k: int, seed: int, n_pcs: int = 30, rep: str = "X_pca") -> np.ndarray:
    return KMeans(k, random_state=seed, n_init=10).fit_predict(adata.obsm[rep][:, :n_pcs])


def bench_threads(jobs: int = 1) -> int | None:
    """The torch threads a benchmark task runs with: one per worker, else ``DAGCL_BENCH_THREADS`` (or unset)."""
    if jobs > 1:
        return 1
    return int(os.environ["DAGCL_BENCH_THREADS"]) if os.environ.get("DAGCL_BENCH_THREADS") else None


def pin_threads(threads: int | None) -> None:
    """Set torch's thread count again (nothing when ``None``).

    ``sc.pp.neighbors`` (numba, through the OpenMP runtime it shares with torch) sets torch's
    thread count to the number of cores: measured, ``torch.get_num_threads()`` went from 1 to 2
    after one call. Two one-thread workers then ran two threads each, and a generalisation run
    took 830 s instead of about 150 s. So the count is set again before every task.
    """
    if threads is not None:
        torch.set_num_threads(threads)


def _pinned(fn, threads: int | None, *task):
    pin_threads(threads)
    return fn(*task)


def run_tasks(fn, tasks: list, jobs: int = 1, describe=None) -> list:
    """``[fn(*task) for task in tasks]``, in ``jobs`` worker processes of one torch thread each.

    Each task starts with the thread count of :func:`bench_threads`. One progress line per
    finished task; ``describe(task, output)``, when given, adds a summary to it.
    """
    import contextlib
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    pinned = functools.partial(_pinned, fn, bench_threads(jobs))
    with contextlib.ExitStack() as stack:
        if jobs <= 1:
            outputs = (pinned(*task) for task in tasks)
        else:
            context = multiprocessing.get_context("spawn")  # forking a process that ran torch can hang
            pool = stack.enter_context(ProcessPoolExecutor(jobs, mp_context=context))
            outputs = pool.map(pinned, *zip(*tasks, strict=False))
        results = []
        for task, output in zip(tasks, outputs, strict=True):
            results.append(output)
            line = f"{len(results)}/{len(tasks)} runs done"
            print(f"{line}: {describe(task, output)}" if describe else line, flush=True)
    return results


def thread_setting() -> str:
    """How torch's threads were set, for the tables' headers and commands."""
    return f"DAGCL_BENCH_THREADS={os.environ['DAGCL_BENCH_THREADS']} " if os.environ.get("DAGCL_BENCH_THREADS") else ""


def add_jobs_argument(parser) -> None:
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (one torch thread each)")


def mean_sd(values) -> str:
    values = np.asarray(values, dtype=float)
    # non-breaking spaces: a table cell wraps between numbers, not inside "0.83 ± 0.03"
    return f"{values.mean():.3f}\u00a0±\u00a0{values.std(ddof=1) if len(values) > 1 else 0:.3f}"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_section(name: str, text: str) -> None:
    """Replace the block between ``<!-- name:start -->`` and ``<!-- name:end -->`` in docs/benchmarks.md."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    doc = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    block = f"{start}\n{text.strip()}\n{end}"
    if start in doc:
        doc = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, doc, flags=re.S)
    else:
        doc = doc.rstrip() + "\n\n" + block + "\n"
    DOC.write_text(doc)
