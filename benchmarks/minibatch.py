"""Mini-batch against full-batch training on the shared data sets (the scale issue's accuracy check).

For each shared data set through the standard pipeline: ``tl.cluster`` full-batch (the
default there) and with a forced ``batch_size`` (default 512, so 2-17 steps per epoch), true
k, seeds 0-2, otherwise defaults. Reports the ARI against the labels of both, their difference,
and the agreement between them, with times, into docs/benchmarks.md.

Usage: ``python benchmarks/minibatch.py [--batch-size 512] [--seeds 0 1 2]``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import _common as c

import dagcl_scverse as dagcl
from dagcl_scverse.metrics import adjusted_rand_index


def run(adata, k: int, seed: int, batch_size: int | None) -> tuple[np.ndarray, float, int]:
    """Labels, seconds and steps per epoch of one ``tl.cluster`` run."""
    result, seconds = c.timed(
        dagcl.tl.cluster, adata, k, batch_size=batch_size, random_state=seed, copy=True, progress_bar=False
    )
    return result.obs["dagcl"].to_numpy(), seconds, int(result.uns["dagcl"]["params"]["steps_per_epoch"])


def main() -> None:
    """Score full-batch and mini-batch runs and write the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    c.add_data_arguments(parser)
    args = parser.parse_args()
    rows = []
    for path in c.dataset_paths(args):
        adata = c.preprocess(c.load(path))
        truth = adata.obs["cell_type"].to_numpy()
        k = len(np.unique(truth))
        for seed in args.seeds:
            full, t_full, _ = run(adata, k, seed, None)
            mini, t_mini, steps = run(adata, k, seed, args.batch_size)
            rows.append(
                {
                    "data": c.pretty_name(path), "seed": seed, "steps": steps,
                    "ari_full": c.score(truth, full)["ari"], "ari_mini": c.score(truth, mini)["ari"],
                    "agreement": adjusted_rand_index(full, mini), "s_full": t_full, "s_mini": t_mini,
                }
            )  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
    c.RESULTS.mkdir(parents=True, exist_ok=True)
    (c.RESULTS / "minibatch.json").write_text(json.dumps(rows, indent=1))
    table = []
    for name in dict.fromkeys(r["data"] for r in rows):
        mine = [r for r in rows if r["data"] == name]
        diff = [r["ari_mini"] - r["ari_full"] for r in mine]
        table.append(
            [
                name, mine[0]["steps"], c.mean_sd([r["ari_full"] for r in mine]),
                c.mean_sd([r["ari_mini"] for r in mine]), f"{np.mean(diff):+.3f}", c.mean_sd([r["agreement"] for r in mine]),
                f"{np.median([r['s_full'] for r in mine]):.0f} / {np.median([r['s_mini'] for r in mine]):.0f}",
            ]
        )  # fmt: skip
    header = ["data set", "steps / epoch", "ARI full-batch", f"ARI batch_size={args.batch_size}", "difference",
              "ARI between them", "time full / mini (s, median)"]  # fmt: skip
    c.write_section(
        "minibatch",
        f"True k, seeds {', '.join(map(str, args.seeds))}, defaults otherwise, CPU.\n"
        f"Command: `{c.thread_setting()}python benchmarks/minibatch.py --batch-size {args.batch_size} "
        f"--seeds {' '.join(map(str, args.seeds))}`\n\n" + c.markdown_table(header, table),
    )


if __name__ == "__main__":
    main()
