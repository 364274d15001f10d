"""Mapping new cells with ``dagcl.tl.ingest``, and whether low confidence marks the misassigned cells.

For every data set and seed: the raw counts are split at random (the seed's generator) into a
70 % reference and a 30 % query. The reference goes through the standard pipeline on its own
cells (genes, HVGs, PCA and graph of the reference only) and is clustered by
``dagcl.tl.cluster`` (true k, defaults otherwise, ``random_state=seed``); the query's raw counts
get the reference's normalisation (``normalize_total(1e4)``, ``log1p``) and are mapped with
``dagcl.tl.ingest``. All cells also go through the standard pipeline and one
``dagcl.tl.cluster`` run with the same settings.

Reported, mean ± sd over seeds: the ARI of the query's labels against the all-cell run's labels
on the same cells (and the reference's own cells against the all-cell run, for scale); ACC and
ARI against the truth of the query, of the reference cells and of the all-cell run; the wall
time of ``tl.ingest`` against that of ``tl.cluster``. The confidence report: clusters are
matched to types by the Hungarian matching on the cells scored (the matching behind ACC), a
cell counts as correct when its cluster is matched to its type, and the accuracy of the cells
with confidence < 0.5, 0.5-0.8 and >= 0.8 (their share of the cells), with the AUROC of the
confidence for predicting a correct cell, is given for the all-cell run, the reference and the
ingested query, with the accuracy of the 10 % least confident cells against the others (the
bins alone say little when nearly all cells are above 0.8). Labels only score.

Results into benchmarks/results/ingest.json (``ingest_quick.json`` with ``--quick``: one seed),
tables into docs/benchmarks.md (sections ``ingest`` and ``confidence``; ``--no-doc`` skips them).

Usage: ``python benchmarks/ingest.py [--quick] [--seeds 0 1 2] [--no-doc] [--no-shared] [extra.h5 ...]``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import scanpy as sc
import torch
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).parent))
import _common as c

import dagcl_scverse as dagcl

SEEDS = (0, 1, 2)
REFERENCE_SHARE = 0.7
#: confidence bins: [lower, upper) with the last one closed at 1
BINS = ((0.0, 0.5), (0.5, 0.8), (0.8, 1.0))
BIN_NAMES = ("< 0.5", "0.5-0.8", "≥ 0.8")
#: also reported: the accuracy of this share of the least confident cells (the bins can all but empty out)
LOW_SHARE = 0.1
#: the runs the confidence report covers, in table order
RUNS = ("all cells", "reference", "query (ingested)")


def matched_correct(truth, labels) -> np.ndarray:
    """Per cell, whether its cluster is matched to its type by the Hungarian matching behind ACC."""
    table = pd.crosstab(np.asarray(truth), np.asarray(labels))
    rows, cols = linear_sum_assignment(table.to_numpy(), maximize=True)
    match = dict(zip(table.columns[cols], table.index[rows], strict=True))
    mapped = pd.Series(np.asarray(labels)).map(match)
    return (mapped.to_numpy() == np.asarray(truth)) & mapped.notna().to_numpy()


def confidence_report(truth, labels, confidence) -> dict:
    """Share and accuracy of the cells in each confidence bin, and the confidence's AUROC for correctness."""
    correct = matched_correct(truth, labels)
    confidence = np.asarray(confidence, dtype=float)
    bins = []
    for lo, hi in BINS:
        inside = (confidence >= lo) & ((confidence < hi) if hi < 1 else (confidence <= hi))
        n = int(inside.sum())
        bins.append(
            {
                "lo": lo,
                "hi": hi,
                "n": n,
                "n_correct": int(correct[inside].sum()),
                "share": n / len(correct),
                "acc": float(correct[inside].mean()) if n else None,
            }
        )
    auroc = float(roc_auc_score(correct, confidence)) if 0 < correct.sum() < len(correct) else None
    n_low = max(1, round(LOW_SHARE * len(correct)))
    low = np.argsort(confidence, kind="stable")[:n_low]
    rest = np.setdiff1d(np.arange(len(correct)), low)
    return {
        "acc": float(correct.mean()),
        "n_cells": len(correct),
        "bins": bins,
        "auroc": auroc,
        "acc_least_confident": float(correct[low].mean()),
        "acc_rest": float(correct[rest].mean()) if rest.size else None,
        "least_confident_max_confidence": float(confidence[low].max()),
    }


def split(n_cells: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted positions of the reference and query cells: a seeded random 70 / 30 split."""
    order = np.random.default_rng(seed).permutation(n_cells)
    n_ref = round(REFERENCE_SHARE * n_cells)
    return np.sort(order[:n_ref]), np.sort(order[n_ref:])


def run_seed(raw, full, k: int, seed: int) -> dict:
    """One split, reference clustering and ingest; ``full`` (all cells, preprocessed) is clustered here too."""
    truth = raw.obs["cell_type"].to_numpy()
    _, t_full = c.timed(dagcl.tl.cluster, full, n_clusters=k, random_state=seed, progress_bar=False)
    full_labels = full.obs["dagcl"].to_numpy()

    ref_idx, query_idx = split(raw.n_obs, seed)
    ref = c.preprocess(raw[ref_idx].copy())
    _, t_ref = c.timed(dagcl.tl.cluster, ref, n_clusters=k, random_state=seed, progress_bar=False)
    query = raw[query_idx].copy()
    sc.pp.normalize_total(query, target_sum=1e4)
    sc.pp.log1p(query)
    _, t_ingest = c.timed(dagcl.tl.ingest, query, ref)

    ref_labels, query_labels = ref.obs["dagcl"].to_numpy(), query.obs["dagcl"].to_numpy()
    t_ref_truth, t_query_truth = truth[ref_idx], truth[query_idx]
    result = {
        "seed": seed,
        "n_reference": len(ref_idx),
        "n_query": len(query_idx),
        "n_reference_types": len(np.unique(t_ref_truth)),
        "n_query_types": len(np.unique(t_query_truth)),
        "query_vs_all_ari": c.score(full_labels[query_idx], query_labels)["ari"],
        "reference_vs_all_ari": c.score(full_labels[ref_idx], ref_labels)["ari"],
        "query": c.score(t_query_truth, query_labels),
        "reference": c.score(t_ref_truth, ref_labels),
        "all": c.score(truth, full_labels),
        "all_on_query_cells": c.score(t_query_truth, full_labels[query_idx]),
        "time_cluster_all": t_full,
        "time_cluster_reference": t_ref,
        "time_ingest": t_ingest,
        "confidence": {
            "all cells": confidence_report(truth, full_labels, full.obs["dagcl_confidence"]),
            "reference": confidence_report(t_ref_truth, ref_labels, ref.obs["dagcl_confidence"]),
            "query (ingested)": confidence_report(t_query_truth, query_labels, query.obs["dagcl_confidence"]),
        },
    }
    print(
        f"  seed {seed}: query vs all-cell ARI {result['query_vs_all_ari']:.3f}, query ACC/ARI "
        f"{result['query']['acc']:.3f}/{result['query']['ari']:.3f}, reference ACC/ARI "
        f"{result['reference']['acc']:.3f}/{result['reference']['ari']:.3f}; cluster {t_ref:.1f} s (reference), "
        f"{t_full:.1f} s (all), ingest {t_ingest:.2f} s; AUROC all/query "
        f"{result['confidence']['all cells']['auroc']:.3f}/{result['confidence']['query (ingested)']['auroc']:.3f}",
        flush=True,
    )
    return result


def run_dataset(path: Path, seeds) -> dict:
    """The seeds' splits of one data set; the standard pipeline on all cells is run once."""
    raw = c.load(path)
    if "counts" in raw.layers:
        raw.X = raw.layers["counts"].copy()
    k = raw.obs["cell_type"].nunique()
    full = c.preprocess(raw.copy())
    print(f"{c.pretty_name(path)}: {raw.n_obs} cells, {k} types", flush=True)
    runs = [run_seed(raw, full, k, seed) for seed in seeds]
    return {"n_cells": raw.n_obs, "k": k, "runs": runs}


def _values(runs, *keys) -> list[float]:
    out = []
    for run in runs:
        value = run
        for key in keys:
            value = value[key]
        out.append(value)
    return out


def mapping_table(results: dict) -> str:
    """The mapping table: agreement with the all-cell run, scores against the truth, times."""
    rows = []
    for name, data in results.items():
        runs = data["runs"]
        gap = [r["reference"]["acc"] - r["query"]["acc"] for r in runs]
        rows.append(
            [
                f"{name} ({data['n_cells']:,} cells, k={data['k']})",
                c.mean_sd(_values(runs, "query_vs_all_ari")),
                c.mean_sd(_values(runs, "reference_vs_all_ari")),
                c.mean_sd(_values(runs, "query", "acc")) + " / " + c.mean_sd(_values(runs, "query", "ari")),
                c.mean_sd(_values(runs, "reference", "acc")) + " / " + c.mean_sd(_values(runs, "reference", "ari")),
                f"{np.mean(gap):+.3f}",
                c.mean_sd(_values(runs, "all_on_query_cells", "acc"))
                + " / "
                + c.mean_sd(_values(runs, "all_on_query_cells", "ari")),
                f"{np.median(_values(runs, 'time_ingest')):.2f}",
                f"{np.median(_values(runs, 'time_cluster_reference')):.1f}",
                f"{np.median(_values(runs, 'time_cluster_all')):.1f}",
            ]
        )
    header = [
        "data set",
        "ARI query vs all-cell run",
        "ARI reference vs all-cell run",
        "query vs truth: ACC / ARI",
        "reference vs truth: ACC / ARI",
        "ACC gap (reference - query)",
        "all-cell run on the query cells: ACC / ARI",
        "ingest (s, median)",
        "cluster reference (s, median)",
        "cluster all (s, median)",
    ]
    return c.markdown_table(header, rows)


def _bin_cell(reports: list[dict], i: int) -> str:
    """``accuracy (share, cells)`` of bin ``i``, its cells pooled over the seeds (a bin can hold a handful)."""
    n = sum(r["bins"][i]["n"] for r in reports)
    n_correct = sum(r["bins"][i]["n_correct"] for r in reports)
    share = n / sum(r["n_cells"] for r in reports)
    acc = f"{n_correct / n:.3f}" if n else "n/a"
    return f"{acc} ({share:.1%}, {n:,})"


def confidence_table(results: dict) -> str:
    """The confidence table: accuracy per confidence bin and AUROC, per data set and run."""
    rows = []
    for name, data in results.items():
        for run in RUNS:
            reports = [r["confidence"][run] for r in data["runs"]]
            aurocs = [r["auroc"] for r in reports if r["auroc"] is not None]
            rows.append(
                [
                    name if run == RUNS[0] else "",
                    run,
                    c.mean_sd([r["acc"] for r in reports]),
                    *(_bin_cell(reports, i) for i in range(len(BINS))),
                    c.mean_sd([r["acc_least_confident"] for r in reports])
                    + " / "
                    + c.mean_sd([r["acc_rest"] for r in reports]),
                    c.mean_sd(aurocs) if aurocs else "n/a",
                ]
            )
    header = [
        "data set",
        "cells",
        "ACC",
        *(f"ACC, confidence {b} (share, cells)" for b in BIN_NAMES),
        f"ACC, {LOW_SHARE:.0%} least confident / the rest",
        "AUROC",
    ]
    return c.markdown_table(header, rows)


def main() -> None:
    """Run every data set and seed, write the results file and the two tables."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_data_arguments(parser)
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--quick", action="store_true", help="one seed (the first of --seeds), for testing")
    parser.add_argument("--no-doc", action="store_true", help="do not write the tables into docs/benchmarks.md")
    args = parser.parse_args()
    seeds = args.seeds[:1] if args.quick else args.seeds

    results = {c.pretty_name(path): run_dataset(path, seeds) for path in c.dataset_paths(args)}
    c.RESULTS.mkdir(parents=True, exist_ok=True)
    out = c.RESULTS / ("ingest_quick.json" if args.quick else "ingest.json")
    payload = {"seeds": seeds, "torch_threads": torch.get_num_threads(), "datasets": results}
    out.write_text(json.dumps(payload, indent=1))
    print(f"Wrote {out}")

    command = f"{c.thread_setting()}python benchmarks/ingest.py" + (" --quick" if args.quick else "")
    command += f" --seeds {' '.join(map(str, args.seeds))}"
    quick = " (`--quick`: one seed, not the full run)" if args.quick else ""
    mapping, confidence = mapping_table(results), confidence_table(results)
    print(mapping, confidence, sep="\n\n")
    if args.no_doc:
        return
    header = (
        f"Seeds {seeds}{quick}, 70 / 30 split of the cells per seed, standard pipeline on the reference's own "
        f"cells, true k, defaults; torch threads: {torch.get_num_threads()}.\n"
        f"Command: `{command}`"
    )
    c.write_section("ingest", f"{header}\n\n{mapping}")
    pooled = (
        "ACC: mean ± sd over seeds, Hungarian matching on the cells of the row. The confidence bins pool "
        "the cells of all seeds: the accuracy of the bin's cells, their share of the cells and their number."
    )
    c.write_section("confidence", f"{header}\n{pooled}\n\n{confidence}")


if __name__ == "__main__":
    main()
