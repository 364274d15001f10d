"""Seconds per epoch of a few short runs with a given batch size, on the synthetic data of ``scaling_large.py``.

Reads the graph that ``scaling_large.py --build-graph N --graph-dir DIR`` saved, runs
``tl.cluster`` with ``batch_size`` (``auto``: the default) for 5 + 3 epochs in this process and
prints the median seconds per epoch, the epochs' times and the one-off seconds as JSON. Run
each batch size in a fresh process, one at a time. "What we tried" #60.

Usage: ``python benchmarks/batch_size_probe.py 300000 auto --graph-dir DIR``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))


def main() -> None:
    """Time one short run and print its JSON line."""
    from synthetic_large import N_TYPES, synthetic_anndata

    import dagcl_scverse as dagcl

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n_cells", type=int)
    parser.add_argument("batch_size", help="seed cells per step, or 'auto'")
    parser.add_argument("--graph-dir", type=Path, required=True)
    args = parser.parse_args()
    batch_size = None if args.batch_size == "auto" else int(args.batch_size)
    adata = synthetic_anndata(args.n_cells, args.graph_dir / f"graph_{args.n_cells}.npz")
    t0 = time.perf_counter()
    dagcl.tl.cluster(
        adata, N_TYPES, obsp="connectivities", batch_size=batch_size, pretrain_epochs=5, epochs=3, progress_bar=False
    )
    timings, params = adata.uns["dagcl"]["timings"], adata.uns["dagcl"]["params"]
    row = {
        "n_cells": args.n_cells,
        "batch_size": batch_size,
        "steps_per_epoch": int(params["steps_per_epoch"]),
        "epoch_s": [round(float(x), 2) for x in timings["epoch_seconds"]],
        "median_epoch_s": float(np.median(timings["epoch_seconds"])),
        "one_off_s": float(timings["one_off_seconds"].sum()),
        "total_s": time.perf_counter() - t0,
    }
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
