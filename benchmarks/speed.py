"""Wall time of ``tl.cluster`` with defaults on one data set, in a warm process.

The standard pipeline runs first (so numba and torch are warmed up, and a two-epoch warm-up
run goes before the timed ones), then ``tl.cluster(adata, k)`` with defaults is timed
``--repeats`` times with different seeds. The median goes into docs/benchmarks.md.
Target: under 90 s on the 8,617-cell CITE data on the 2-core development machine.

Usage: ``python benchmarks/speed.py [--repeats 3] [data.h5]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
import _common as c

import dagcl_scverse as dagcl

DEFAULT = c.DATA_DIR / "Grace_CITE_CBMC_counts_top2000.h5"


def main() -> None:
    """Time ``tl.cluster`` in a warm process and write the speed table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", nargs="?", default=str(DEFAULT))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    path = Path(args.data)
    adata = c.preprocess(c.load(path))
    k = adata.obs["cell_type"].nunique()
    dagcl.tl.cluster(adata, k, epochs=2, pretrain_epochs=2, progress_bar=False, stages=0)
    seconds = []
    for seed in range(args.repeats):
        _, t = c.timed(dagcl.tl.cluster, adata, k, random_state=seed, progress_bar=False)
        seconds.append(t)
        print(f"seed {seed}: {t:.1f} s", flush=True)
    params = adata.uns["dagcl"]["params"]
    table = c.markdown_table(
        ["data set", "cells", "epochs (pre-training + self-training)", "torch threads", "runs (s)", "median (s)"],
        [
            [
                c.pretty_name(path),
                f"{adata.n_obs:,}",
                f"{params['pretrain_epochs']} + {params['epochs']}",
                torch.get_num_threads(),
                ", ".join(f"{s:.1f}" for s in seconds),
                f"{np.median(seconds):.1f}",
            ]
        ],
    )
    command = "python benchmarks/speed.py" + ("" if path == DEFAULT else f" {args.data}")
    c.write_section(
        "speed",
        f"`tl.cluster` with defaults and the true k, warm process, CPU.\nCommand: `{command} --repeats {args.repeats}`\n\n{table}",
    )
    print(table)


if __name__ == "__main__":
    main()
