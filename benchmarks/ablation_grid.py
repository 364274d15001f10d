"""The ablation over the generalisation benchmark's ``--quick`` cases: each switch's effect with its spread.

The switches of ``ablation.py`` (full model, then without dynamic attention, the KL schedule,
the curriculum or Sinkhorn balancing), each on every ``--quick`` case of ``generalisation.py``
(per fold the standard pipeline, 10 neighbours, a rare type and the fold's first simulated
set) with the same seeds, true k. Per variant: the mean final ARI over the cases, its change
against the full model (mean, smallest and largest per case, and per fold), the cases it moves
by more than 0.01, the mean seed spread, and self-training's gain (final - start). Labels only
score. Results into benchmarks/results/ablation_grid.json, the table into docs/benchmarks.md
(section ``ablation_grid``).

Usage: ``python benchmarks/ablation_grid.py [--seeds 0 1 2] [--jobs 2]``
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
import generalisation as g
from ablation import VARIANTS

import dagcl_scverse as dagcl

FULL = "full model"
#: a case counts as moved when its mean final ARI changes by more than this
MOVED = 0.01


def run_variant(file: Path, case: str, variant: str, seed: int) -> dict:
    """Start-of-self-training and final ARI of one switch on one preprocessed case."""
    adata = c.read_preprocessed(file)
    truth = adata.obs["cell_type"].astype(str).to_numpy()
    k = len(np.unique(truth))
    dagcl.tl.cluster(adata, k, random_state=seed, progress_bar=False, stages=0, **VARIANTS[variant])
    start = c.score(truth, adata.uns["dagcl"]["start_labels"])["ari"]
    return {"start": start, "final": c.score(truth, adata.obs["dagcl"].to_numpy())["ari"]}


def describe(task, out: dict) -> str:
    """The progress line of one run (the log then holds every score)."""
    _, case, variant, seed = task
    return f"{case}, {variant}, seed {seed}: start {out['start']:.4f}, final {out['final']:.4f}"


def variant_summary(runs: dict, variant: str, folds: dict[str, str]) -> dict:
    """Means over seeds per case, and the changes against the full model, of one variant."""
    final = {case: np.mean([r["final"] for r in by_seed]) for case, by_seed in runs[variant].items()}
    full = {case: np.mean([r["final"] for r in by_seed]) for case, by_seed in runs[FULL].items()}
    change = {case: float(final[case] - full[case]) for case in final}
    return {
        "mean_final": float(np.mean(list(final.values()))),
        "change": change,
        "fold_change": {
            fold: float(np.mean([d for case, d in change.items() if folds[case] == fold]))
            for fold in dict.fromkeys(folds.values())
        },
        "moved_up": int(sum(d > MOVED for d in change.values())),
        "moved_down": int(sum(d < -MOVED for d in change.values())),
        "mean_spread": float(np.mean([np.std([r["final"] for r in by_seed]) for by_seed in runs[variant].values()])),
        "gain": float(np.mean([r["final"] - r["start"] for by_seed in runs[variant].values() for r in by_seed])),
    }


def table(summaries: dict, n_cases: int) -> str:
    """One row per variant."""
    folds = list(next(iter(summaries.values()))["fold_change"])
    rows = []
    for variant, s in summaries.items():
        changes = list(s["change"].values())
        rows.append(
            [
                variant,
                f"{s['mean_final']:.3f}",
                f"{np.mean(changes):+.4f} ± {np.std(changes):.4f}",
                f"{min(changes):+.3f} / {max(changes):+.3f}",
            ]
            + [f"{s['fold_change'][fold]:+.4f}" for fold in folds]
            + [f"{s['moved_up']} / {s['moved_down']}", f"{s['mean_spread']:.3f}", f"{s['gain']:+.4f}"]
        )
    return c.markdown_table(
        [
            f"variant ({n_cases} cases)",
            "mean final ARI",
            "change vs full model (mean ± sd over cases)",
            "smallest / largest case change",
        ]
        + [f"change, {fold}" for fold in folds]
        + [f"cases up / down by > {MOVED}", "mean seed spread", "final - start"],
        rows,
    )


def main() -> None:
    """Build the ``--quick`` cases, run every (case, variant, seed) and write the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_jobs_argument(parser)
    parser.add_argument("--seeds", nargs="+", type=int, default=list(g.QUICK_SEEDS))
    args = parser.parse_args()
    cases = g.quick_cases()
    folds = {case.name: case.fold for case in cases}
    with tempfile.TemporaryDirectory() as folder:
        files, _ = g.build_files(cases, Path(folder))
        tasks = [(files[case], case, v, seed) for case in folds for v in VARIANTS for seed in args.seeds]
        outputs = c.run_tasks(run_variant, tasks, args.jobs, describe=describe)
    runs = {v: {case: [] for case in folds} for v in VARIANTS}
    for (_, case, variant, _), out in zip(tasks, outputs, strict=True):
        runs[variant][case].append(out)
    summaries = {v: variant_summary(runs, v, folds) for v in VARIANTS}
    c.RESULTS.mkdir(parents=True, exist_ok=True)
    (c.RESULTS / "ablation_grid.json").write_text(json.dumps({"runs": runs, "summaries": summaries}, indent=1))
    text = (
        f"Seeds {args.seeds}, true k, the `--quick` cases of the generalisation benchmark, defaults otherwise.\n"
        f"Command: `{c.thread_setting()}python benchmarks/ablation_grid.py --seeds "
        f"{' '.join(map(str, args.seeds))} --jobs {args.jobs}`\n\n{table(summaries, len(folds))}"
    )
    c.write_section("ablation_grid", text)
    print(text)


if __name__ == "__main__":
    main()
