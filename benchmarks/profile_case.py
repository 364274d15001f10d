"""Profile one ``tl.cluster`` call on a generalisation case: where its time goes.

Builds the case (``generalisation.py``'s names, e.g. ``cite/scaled``), runs ``tl.cluster`` with
true k and ``--epochs`` pre-training and self-training epochs under cProfile, one torch thread,
and prints the wall time and the functions with the most time of their own. Labels are not used.

Usage: ``python benchmarks/profile_case.py cite/scaled --epochs 20``
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import generalisation as g

import dagcl_scverse as dagcl


def main() -> None:
    """Print the wall time and the top of the profile of one call."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("case")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    adata, _ = g.build(g.cases_by_name()[args.case])
    k = adata.obs["cell_type"].nunique()
    profile = cProfile.Profile()
    start = time.perf_counter()
    profile.enable()
    dagcl.tl.cluster(adata, n_clusters=k, pretrain_epochs=args.epochs, epochs=args.epochs, progress_bar=False)
    profile.disable()
    print(
        f"{args.case}: tl.cluster {time.perf_counter() - start:.1f} s under cProfile ({args.epochs} + {args.epochs} epochs)"
    )
    pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
