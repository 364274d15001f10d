"""The DAGCL paper's ablation (its Fig. 4a): switch each component off in turn.

Full model, then without dynamic attention, without the KL schedule (``schedule="constant"``),
without the curriculum, and without Sinkhorn balancing; true k, the same seeds, on every data
set. Mean ± sd of ARI and NMI go into docs/benchmarks.md.

Usage: ``python benchmarks/ablation.py [--seeds 0 1 2 3 4] [--jobs 2] [extra.h5 ...]``
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import _common as c

import dagcl_scverse as dagcl

VARIANTS = {
    "full model": {},
    "no dynamic attention": {"dynamic_attention": False},
    "no KL schedule (constant)": {"schedule": "constant"},
    "no curriculum": {"curriculum": False},
    "no balancing": {"balance": False},
}


def run_variant(file, variant: str, seed: int) -> dict[str, float]:
    """Scores of DAGCL with one ablation switch on the preprocessed data set in ``file``."""
    adata = c.read_preprocessed(file)
    truth = adata.obs["cell_type"].to_numpy()
    k = len(np.unique(truth))
    dagcl.tl.cluster(adata, k, random_state=seed, progress_bar=False, stages=0, **VARIANTS[variant])
    return c.score(truth, adata.obs["dagcl"])


def main() -> None:
    """Run the ablation grid and write its table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_data_arguments(parser)
    c.add_jobs_argument(parser)
    parser.add_argument("--seeds", nargs="+", type=int, default=list(c.SEEDS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        files = c.preprocess_to_files(c.dataset_paths(args), Path(folder))
        tasks = [(file, variant, seed) for file in files.values() for variant in VARIANTS for seed in args.seeds]
        scores = iter(c.run_tasks(run_variant, tasks, args.jobs))
    results = {name: {v: [next(scores) for _ in args.seeds] for v in VARIANTS} for name in files}
    for name, res in results.items():
        for variant, rs in res.items():
            print(f"{name} {variant}: ARI {c.mean_sd([r['ari'] for r in rs])}", flush=True)
    c.RESULTS.mkdir(parents=True, exist_ok=True)
    (c.RESULTS / "ablation.json").write_text(json.dumps(results, indent=1))
    names = list(results)
    rows = [
        [variant]
        + [
            c.mean_sd([r["ari"] for r in results[n][variant]])
            + " / "
            + c.mean_sd([r["nmi"] for r in results[n][variant]])
            for n in names
        ]
        for variant in VARIANTS
    ]
    table = c.markdown_table(["variant (ARI / NMI)"] + names, rows)
    c.write_section(
        "ablation",
        f"Seeds {args.seeds}, true k, defaults otherwise.\n"
        f"Command: `{c.thread_setting()}python benchmarks/ablation.py --seeds {' '.join(map(str, args.seeds))} --jobs {args.jobs}`\n\n{table}",
    )
    print(table)


if __name__ == "__main__":
    main()
