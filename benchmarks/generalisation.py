"""Generalisation: DAGCL on pipeline variants, changed compositions and simulated data sets.

Every case is built from one of the three shared data sets (its *fold*, for choosing defaults
leave-one-data-set-out later) and preprocessed once:

- pipeline variants, each one step changed from the standard pipeline: 1,000 / 5,000 HVGs
  (5,000 only where the set has more genes), 10 / 30 neighbours, ``sc.pp.scale(max_value=10)``
  before the PCA (DAGCL reads the scaled data), ``flavor="seurat_v3"`` HVGs on the counts, and
  log-normalised input with no HVG step and no ``layers["counts"]``;
- composition variants on the raw counts, then the standard pipeline: half of the cells; one
  type made rare (the second-largest type, 5 % of its cells kept, at least ``RARE_MIN_CELLS``);
  the two types with the closest mean principal components merged in the truth (DAGCL gets the
  smaller k). The cells kept are drawn with the case's own seed (CRC-32 of its name), the same
  for every run seed;
- simulated sets (``SIMULATIONS``): negative-binomial counts from ``simulate.py``, whose type
  profiles, library sizes and dispersions come from the fold's own types.

For every case and seed: ARI / NMI of DAGCL's initial partition, of the start of self-training
(the labels ``epochs=1`` returns, recorded by the same call as ``uns["dagcl"]["start_labels"]``)
and of its final labels (true k), of the ``n_clusters=None`` path, of Leiden
(resolution 1, on the case's graph) and KMeans (true k, 30 PCs), and of Leiden on 15-neighbour
graphs built on ``X_pca`` and on ``X_dagcl``. Labels only score and build the composition
variants' truth. Results into benchmarks/results/generalisation.json, tables into
docs/benchmarks.md (section ``generalisation``).

``--quick``: 3 seeds, per fold the standard pipeline, 10 neighbours, the rare type and the fold's
first simulated set (results into generalisation_quick.json). ``--build-only`` builds every
selected case and prints its size; ``--list`` prints the case names. The ``seurat_v3`` variant
falls back to a wider loess span where scanpy's 0.3 gives a singular fit (worm).

Usage: ``python benchmarks/generalisation.py [--quick] [--cases worm/ sim-] [--seeds 0 1] [--jobs 2]
[--list | --build-only] [--no-doc] [--out FILE] [--resume]``. Every finished run is appended
to a checkpoint beside the results file (its suffix replaced by ``.partial.jsonl``, removed once
the results are written); ``--resume`` keeps the runs of a stopped invocation with the same
``--out``. ``--compare BASELINE.json CANDIDATE.json`` applies the leave-one-data-set-out rule
for a new default to two results files (on the final ARI, or the mean ARI that ``--metric``
names, e.g. ``leiden_dagcl``); ``--overrides '{"latent": 32}'`` changes fields of the training
config in every ``tl.cluster`` call, to measure a candidate default without editing the
package; ``--doc-from RESULTS.json`` writes the docs section from a results file (means and
counts computed again from its runs).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import os
import shlex
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scanpy as sc

sys.path.insert(0, str(Path(__file__).parent))
import _common as c
from simulate import DEPTH, DISPERSION_RANGE, EFFECT, IMBALANCE, MIN_TYPE_CELLS, simulate

import dagcl_scverse as dagcl
import dagcl_scverse.tl._cluster as cluster_module
from dagcl_scverse.cli import log_normalise

#: the folds: a short name for each shared data set
FOLDS = {
    "pancreas": "Maayan_Mouse_Pancreas_cell_1.h5",
    "worm": "Junyue_worm_neuron_cell.h5",
    "cite": "Grace_CITE_CBMC_counts_top2000.h5",
}
#: pipeline variants: the arguments of ``variant_pipeline`` that differ from the standard pipeline
PIPELINES = {
    "hvg1000": {"n_top_genes": 1000},
    "hvg5000": {"n_top_genes": 5000},
    "nn10": {"n_neighbors": 10},
    "nn30": {"n_neighbors": 30},
    "scaled": {"scale": True},
    "seurat_v3": {"hvg_flavor": "seurat_v3"},
    "lognorm": {"n_top_genes": None, "keep_counts": False},
}
COMPOSITIONS = ("half", "rare", "merged")
RARE_SHARE = 0.05
RARE_MIN_CELLS = 10
#: types smaller than this are not candidates for merging (their mean would be mostly noise)
MERGE_MIN_CELLS = 20
#: a Leiden estimate of k counts as close when within this share of the true k
K_TOLERANCE = 0.3
QUICK_SEEDS = (0, 1, 2)
#: loess spans tried in turn for ``flavor="seurat_v3"`` (scanpy's default first)
SEURAT_V3_SPANS = (0.3, 0.5)


@dataclass(frozen=True)
class Simulation:
    """One simulated data set of the grid: ``simulate.simulate``'s arguments and its fold."""

    fold: str
    n_types: int
    n_cells: int
    imbalance: str
    effect: str
    depth: str
    seed: int

    @property
    def variant(self) -> str:
        """Short name, e.g. ``sim-5types-imbalanced-weak-deep``."""
        return f"sim-{self.n_types}types-{self.imbalance}-{self.effect}-{self.depth}"


#: the simulated family: 3 per fold, types from 3 up to the fold's types with at least 10 cells
#: (pancreas 7, worm 10, cite 15); the 8 combinations of balance x effect x depth all occur, and
#: each fold sees both levels of each
SIMULATIONS = (
    Simulation("pancreas", 3, 1500, "balanced", "strong", "deep", seed=11),
    Simulation("pancreas", 5, 2000, "imbalanced", "weak", "deep", seed=12),
    Simulation("pancreas", 7, 3000, "balanced", "weak", "shallow", seed=13),
    Simulation("worm", 3, 2000, "imbalanced", "strong", "shallow", seed=21),
    Simulation("worm", 6, 2000, "balanced", "weak", "deep", seed=22),
    Simulation("worm", 10, 3000, "balanced", "strong", "deep", seed=23),
    Simulation("cite", 3, 1500, "balanced", "strong", "shallow", seed=31),
    Simulation("cite", 8, 2000, "imbalanced", "strong", "deep", seed=32),
    Simulation("cite", 15, 3000, "imbalanced", "weak", "shallow", seed=33),
)


#: the simulator's named levels, recorded with the results
SIMULATOR = {
    "effect": EFFECT,
    "depth": DEPTH,
    "smallest_share": {key: value for key, value in IMBALANCE.items() if value is not None},
    "dispersion_range": list(DISPERSION_RANGE),
    "min_type_cells": MIN_TYPE_CELLS,
}


@dataclass(frozen=True)
class Case:
    """One benchmark case: a fold, a kind (standard, pipeline, composition, simulated) and a variant."""

    fold: str
    kind: str
    variant: str
    simulation: Simulation | None = None

    @property
    def name(self) -> str:
        """``fold/variant``, e.g. ``worm/hvg1000``."""
        return f"{self.fold}/{self.variant}"

    @property
    def seed(self) -> int:
        """The case's own seed (subsamples), fixed for every run seed."""
        return zlib.crc32(self.name.encode())


@functools.cache
def raw_data(fold: str):
    """The fold's raw counts (read once per process; copy before changing)."""
    return c.load(c.DATA_DIR / FOLDS[fold])


def all_cases() -> list[Case]:
    """Every case of the full grid, fold by fold."""
    cases = []
    for fold in FOLDS:
        cases.append(Case(fold, "standard", "standard"))
        for variant, kwargs in PIPELINES.items():
            if (kwargs.get("n_top_genes") or 0) >= raw_data(fold).n_vars:
                continue  # not enough genes to choose from (CITE has 2,000)
            cases.append(Case(fold, "pipeline", variant))
        cases += [Case(fold, "composition", variant) for variant in COMPOSITIONS]
        cases += [Case(fold, "simulated", s.variant, s) for s in SIMULATIONS if s.fold == fold]
    return cases


def cases_by_name() -> dict[str, Case]:
    """Every case of the full grid by its name (``"cite/scaled"``, ...)."""
    return {case.name: case for case in all_cases()}


def quick_cases() -> list[Case]:
    """Per fold: the standard pipeline, 10 neighbours, a rare type and the fold's first simulated set."""
    first_sim = {}
    for s in SIMULATIONS:
        first_sim.setdefault(s.fold, s.variant)
    keep = {"standard", "nn10", "rare"}
    return [case for case in all_cases() if case.variant in keep or case.variant == first_sim[case.fold]]


def variant_pipeline(
    adata,
    *,
    n_top_genes: int | None = 2000,
    n_neighbors: int = 15,
    scale: bool = False,
    hvg_flavor: str = "seurat",
    keep_counts: bool = True,
    notes: dict | None = None,
):
    """The standard pipeline's steps with the given changes, in place on raw counts in ``X``.

    Parameters
    ----------
    adata
        Raw counts in ``X``.
    n_top_genes
        Highly variable genes kept; ``None`` skips the HVG step (all genes kept).
    n_neighbors
        Neighbours of the kNN graph.
    scale
        ``sc.pp.scale(max_value=10)`` after the HVG step, before the PCA.
    hvg_flavor
        ``"seurat"`` (scanpy's default, on the log data) or ``"seurat_v3"`` (on
        ``layers["counts"]``).
    keep_counts
        Keep ``layers["counts"]``; ``False`` removes it at the end (log-normalised input only).
    notes
        Filled with ``"hvg_span"``, the loess span that ``"seurat_v3"`` used: scanpy's 0.3, or
        the first of ``SEURAT_V3_SPANS`` whose loess fit is not singular (worm's fit at 0.3 fails
        with "reciprocal condition number", scanpy issue #1825; a wider span is the usual fix).

    Returns
    -------
    ``adata``, for chaining.
    """
    log_normalise(adata)
    if n_top_genes is not None:
        if hvg_flavor == "seurat_v3":
            for span in SEURAT_V3_SPANS:
                try:
                    # a failed loess fit raises before anything is written into adata
                    sc.pp.highly_variable_genes(
                        adata, n_top_genes=n_top_genes, flavor="seurat_v3", layer="counts", span=span, subset=True
                    )
                    break
                except ValueError as error:
                    if span == SEURAT_V3_SPANS[-1] or "condition number" not in str(error):
                        raise
            if notes is not None:
                notes["hvg_span"] = span
        else:
            sc.pp.highly_variable_genes(adata, n_top_genes=n_top_genes, flavor=hvg_flavor, subset=True)
    if scale:
        sc.pp.scale(adata, max_value=10)
    sc.pp.pca(adata, n_comps=min(50, adata.n_obs - 1, adata.n_vars - 1))
    sc.pp.neighbors(adata, n_neighbors=n_neighbors)
    if not keep_counts:
        del adata.layers["counts"]
    return adata


def type_sizes(adata) -> list[tuple[str, int]]:
    """``(type, cells)`` pairs, largest first, ties by name."""
    counts = adata.obs["cell_type"].astype(str).value_counts()
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def half_cells(raw, seed: int):
    """A seeded half of the cells; returns the subset and what was done."""
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(raw.n_obs, raw.n_obs // 2, replace=False))
    return raw[keep].copy(), {"kept_cells": int(len(keep)), "of": int(raw.n_obs)}


def rare_type(raw, seed: int):
    """The second-largest type cut to a seeded 5 % of its cells (at least ``RARE_MIN_CELLS``).

    Not the largest: the dominant population stays, so the case asks whether a formerly common
    type is still found when rare; the second-largest is big enough that 5 % is still a group.
    """
    name, size = type_sizes(raw)[1]
    cells = np.flatnonzero(raw.obs["cell_type"].astype(str).to_numpy() == name)
    n_keep = min(size, max(RARE_MIN_CELLS, round(RARE_SHARE * size)))
    rng = np.random.default_rng(seed)
    keep = np.ones(raw.n_obs, dtype=bool)
    keep[cells] = False
    keep[rng.choice(cells, n_keep, replace=False)] = True
    return raw[keep].copy(), {"rare_type": name, "kept_cells": int(n_keep), "of": int(size)}


def merge_closest(raw):
    """Merge, in the truth only, the two types with the closest mean principal components.

    Centroids are taken on the standard pipeline's ``X_pca`` (all components), over the types
    with at least ``MERGE_MIN_CELLS`` cells; the pair at the smallest Euclidean distance is
    merged (ties: first in name order).
    """
    standard = c.preprocess(raw.copy())
    types = standard.obs["cell_type"].astype(str).to_numpy()
    names = sorted(name for name, size in type_sizes(raw) if size >= MERGE_MIN_CELLS)
    centroids = np.stack([standard.obsm["X_pca"][types == name].mean(axis=0) for name in names])
    distance = np.linalg.norm(centroids[:, None] - centroids[None], axis=-1)
    distance[np.tril_indices(len(names))] = np.inf
    i, j = np.unravel_index(np.argmin(distance), distance.shape)
    out = raw.copy()
    merged = f"{names[i]}+{names[j]}"
    labels = out.obs["cell_type"].astype(str).replace({names[i]: merged, names[j]: merged})
    out.obs["cell_type"] = labels.astype("category")
    return out, {"merged_types": [names[i], names[j]], "distance": float(distance[i, j])}


def build(case: Case):
    """The preprocessed AnnData of ``case`` (truth in ``obs["cell_type"]``) and what was done."""
    raw = raw_data(case.fold).copy()
    info = {}
    if case.kind == "simulated":
        s = case.simulation
        raw = simulate(raw, s.n_types, s.n_cells, s.imbalance, s.effect, s.depth, s.seed)
        info = {"simulation": {k: getattr(s, k) for k in ("n_types", "n_cells", "imbalance", "effect", "depth")}}
        info["simulation"]["seed"] = s.seed
        info["simulation"]["types"] = [str(t) for t in raw.uns.pop("simulation")["types"]]
    elif case.variant == "half":
        raw, info = half_cells(raw, case.seed)
    elif case.variant == "rare":
        raw, info = rare_type(raw, case.seed)
    elif case.variant == "merged":
        raw, info = merge_closest(raw)
    raw.obsm.pop("protein", None)
    n_genes_raw = raw.n_vars
    if case.kind == "pipeline":
        adata = variant_pipeline(raw, **PIPELINES[case.variant], notes=info)
    else:
        adata = c.preprocess(raw)
    info.update({"n_cells": int(adata.n_obs), "n_genes_raw": int(n_genes_raw), "n_features": int(adata.n_vars)})
    info["k"] = int(adata.obs["cell_type"].nunique())
    return adata, info


def _scores(truth, labels) -> dict[str, float]:
    if labels is None:
        return {"ari": float("nan"), "nmi": float("nan"), "acc": float("nan")}
    return {key: float(value) for key, value in c.score(truth, labels).items()}


def leiden_on(adata, rep: str, seed: int) -> np.ndarray:
    """Leiden (resolution 1) on a 15-neighbour graph of ``obsm[rep]``, in its own keys."""
    sc.pp.neighbors(adata, n_neighbors=15, use_rep=rep, key_added=f"on_{rep}")
    return c.leiden(adata, 1.0, seed, graph_key=f"on_{rep}_connectivities")


#: environment variable through which ``--overrides`` reaches the worker processes
OVERRIDES_ENV = "DAGCL_BENCH_OVERRIDES"


@contextlib.contextmanager
def config_overrides(overrides: dict | None = None):
    """Apply training-config fields to every ``tl.cluster`` call inside (default: ``--overrides``)."""
    if overrides is None:
        overrides = json.loads(os.environ.get(OVERRIDES_ENV) or "{}")
    original = cluster_module.train
    if not overrides:
        yield
        return

    def train(features, edge_index, edge_weight, config, **kwargs):
        return original(features, edge_index, edge_weight, dataclasses.replace(config, **overrides), **kwargs)

    cluster_module.train = train
    try:
        yield
    finally:
        cluster_module.train = original


def run_case(file: Path, name: str, seed: int) -> dict:
    """Every score of one case (preprocessed in ``file``) for one seed."""
    with config_overrides():
        return _run_case(file, name, seed)


def _run_case(file: Path, name: str, seed: int) -> dict:
    adata = c.read_preprocessed(file).copy()
    truth = adata.obs["cell_type"].astype(str).to_numpy()
    k = len(np.unique(truth))
    kwargs = {"random_state": seed, "progress_bar": False, "stages": 0}
    out = {"seed": seed, "time": {}}
    t0 = time.perf_counter()
    dagcl.tl.cluster(adata, n_clusters=k, **kwargs)
    out["time"]["final"] = time.perf_counter() - t0
    uns = adata.uns["dagcl"]
    out["initial"] = _scores(truth, uns.get("initial_labels"))
    # the labels tl.cluster(epochs=1) returns, recorded by the same run (tests/test_cluster.py)
    out["start"] = _scores(truth, uns["start_labels"])
    out["final"] = _scores(truth, adata.obs["dagcl"].to_numpy())
    t = time.perf_counter()
    try:
        dagcl.tl.cluster(adata, n_clusters=None, key_added="dagcl_auto", **kwargs)
        out["auto"] = {**_scores(truth, adata.obs["dagcl_auto"].to_numpy())}
        out["auto"]["k"] = int(adata.uns["dagcl_auto"]["params"]["n_clusters"])
    except ValueError:  # Leiden found a single cluster: no estimate
        out["auto"] = {**_scores(truth, None), "k": 1}
    out["time"]["auto"] = time.perf_counter() - t
    out["auto"]["within_tolerance"] = bool(abs(out["auto"]["k"] - k) <= K_TOLERANCE * k)
    for key, labels in (
        ("leiden", c.leiden(adata, 1.0, seed)),
        ("kmeans", c.kmeans_pca(adata, k, seed)),
        ("leiden_pca", leiden_on(adata, "X_pca", seed)),
        ("leiden_dagcl", leiden_on(adata, "X_dagcl", seed)),
    ):
        out[key] = {**_scores(truth, labels), "k": int(len(np.unique(labels)))}
    out["time"]["total"] = time.perf_counter() - t0
    return out


def describe(task, run: dict) -> str:
    """The progress line of one run."""
    _, name, seed = task
    parts = [f"{key} {run[key]['ari']:.3f}" for key in ("initial", "start", "final", "auto", "leiden", "kmeans")]
    return (
        f"{name} seed {seed}: ARI "
        + ", ".join(parts)
        + f" (k estimated {run['auto']['k']}), {run['time']['total']:.0f} s"
    )


def checkpointed(checkpoint: Path, task, run: dict) -> str:
    """Append the finished run to ``checkpoint`` (one JSON line) and return its progress line."""
    _, name, seed = task
    with checkpoint.open("a") as file:
        file.write(json.dumps({"case": name, "seed": seed, "run": run}) + "\n")
    return describe(task, run)


def finished_runs(checkpoint: Path) -> dict[tuple[str, int], dict]:
    """The runs a stopped invocation appended to ``checkpoint``, by (case, seed)."""
    if not checkpoint.exists():
        return {}
    lines = [json.loads(line) for line in checkpoint.read_text().splitlines() if line.strip()]
    return {(line["case"], line["seed"]): line["run"] for line in lines}


def case_means(case: dict) -> dict:
    """Means over seeds of every ARI, the final ARI's spread and the estimate of k."""
    runs = case["runs"]
    keys = ("initial", "start", "final", "auto", "leiden", "kmeans", "leiden_pca", "leiden_dagcl")
    means = {key: float(np.mean([r[key]["ari"] for r in runs])) for key in keys}
    means["nmi"] = {key: float(np.mean([r[key]["nmi"] for r in runs])) for key in keys}
    means["best_baseline"] = max(means["leiden"], means["kmeans"])
    # the accuracy target: best baseline + 0.05, capped at 0.98 on simulated sets
    means["target"] = means["best_baseline"] + 0.05
    if case["kind"] == "simulated":
        means["target"] = min(means["target"], 0.98)
    means["final_spread"] = float(np.std([r["final"]["ari"] for r in runs]))
    means["k_estimated_median"] = float(np.median([r["auto"]["k"] for r in runs]))
    means["k_within_tolerance"] = bool(abs(means["k_estimated_median"] - case["k"]) <= K_TOLERANCE * case["k"])
    return means


#: the summary's counts: (label, which cases are counted, condition on a case's means)
CRITERIA = (
    ("final < best baseline", lambda case: True, lambda m: m["final"] < m["best_baseline"]),
    (
        "final < target (best baseline + 0.05; simulated: at most 0.98)",
        lambda case: True,
        lambda m: m["final"] < m["target"],
    ),
    ("final < start (self-training lowers ARI)", lambda case: True, lambda m: m["final"] < m["start"]),
    (
        "start < initial - 0.01",
        lambda case: np.isfinite(case["means"]["initial"]),
        lambda m: m["start"] < m["initial"] - 0.01,
    ),
    ("Leiden on X_dagcl < Leiden on X_pca", lambda case: True, lambda m: m["leiden_dagcl"] < m["leiden_pca"]),
    (
        "final seed spread > 0.03 (real cases)",
        lambda case: case["kind"] != "simulated",
        lambda m: m["final_spread"] > 0.03,
    ),
    (
        "n_clusters=None > 0.05 below true k (estimate within 30 %)",
        lambda case: case["means"]["k_within_tolerance"],
        lambda m: m["auto"] < m["final"] - 0.05,
    ),
)


def summary(cases: dict) -> dict:
    """Each criterion's count over all cases, per fold and over the simulated cases."""
    groups = {"all": list(cases.values())}
    for fold in FOLDS:
        groups[fold] = [case for case in cases.values() if case["fold"] == fold]
    groups["simulated"] = [case for case in cases.values() if case["kind"] == "simulated"]
    out = {}
    for label, counted, condition in CRITERIA:
        out[label] = {}
        for group, members in groups.items():
            eligible = [case for case in members if counted(case)]
            out[label][group] = [sum(bool(condition(case["means"])) for case in eligible), len(eligible)]
    out["mean(final - start)"] = {
        group: float(np.mean([case["means"]["final"] - case["means"]["start"] for case in members]))
        if members
        else float("nan")
        for group, members in groups.items()
    }
    return out


def _fmt(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:.3f}"


def section(results: dict) -> str:
    """The docs/benchmarks.md section: per-case table, summary counts, construction notes."""
    rows = []
    for name, case in results["cases"].items():
        m = case["means"]
        rows.append(
            [
                name,
                case["fold"],
                case["n_cells"],
                case["k"],
                _fmt(m["initial"]),
                _fmt(m["start"]),
                _fmt(m["final"]),
                f"{_fmt(m['auto'])} ({m['k_estimated_median']:.0f})",
                _fmt(m["leiden"]),
                _fmt(m["kmeans"]),
                f"{_fmt(m['leiden_pca'])} / {_fmt(m['leiden_dagcl'])}",
                _fmt(m["final_spread"]),
            ]
        )
    header = [
        "case",
        "fold",
        "cells",
        "true k",
        "initial",
        "start",
        "final",
        "k=None (k̂)",
        "Leiden",
        "KMeans",
        "Leiden X_pca / X_dagcl",
        "final spread",
    ]
    table = c.markdown_table(header, rows)
    groups = list(next(iter(results["summary"].values())))
    summary_rows = []
    for label, counts in results["summary"].items():
        if label == "mean(final - start)":
            summary_rows.append([label] + [f"{counts[g]:+.3f}" if np.isfinite(counts[g]) else "n/a" for g in groups])
        else:
            summary_rows.append([label] + [f"{counts[g][0]} / {counts[g][1]}" for g in groups])
    summary_table = c.markdown_table(["count (cases)"] + groups, summary_rows)
    notes = []
    for name, case in results["cases"].items():
        info = case["construction"]
        if "rare_type" in info:
            notes.append(f"{name}: type {info['rare_type']} cut to {info['kept_cells']} of {info['of']} cells")
        elif "merged_types" in info:
            notes.append(f"{name}: types {' and '.join(info['merged_types'])} merged")
    return (
        f"Seeds {results['seeds']}; {len(results['cases'])} cases; wall time {results['wall_s'] / 60:.0f} min.\n"
        f"Command: `{results['command']}`\n\n"
        "Mean ARI over seeds. *initial*: the partition DAGCL's centres start from; *start*: `epochs=1`; "
        "*final*: default epochs (all three with the true k); *k=None*: `n_clusters=None` (median "
        "estimated k); Leiden (resolution 1) on the case's graph and KMeans (true k, 30 PCs) in the "
        "same runs; Leiden X_pca / X_dagcl: Leiden on 15-neighbour graphs of the PCs and of DAGCL's "
        "embedding; *final spread*: standard deviation of the final ARI over seeds. Simulated sets "
        "(`benchmarks/simulate.py`, fitted to the fold's types with at least "
        f"{MIN_TYPE_CELLS} cells): effect weak / strong = {EFFECT['weak']} / {EFFECT['strong']} x the "
        f"reference's log fold changes, depth shallow / deep = {DEPTH['shallow']} / {DEPTH['deep']} x its "
        f"library sizes, imbalanced = geometric type sizes with the smallest at {IMBALANCE['imbalanced']:.0%}.\n\n"
        f"{table}\n\n"
        "Counts of cases (cases counted / cases eligible), over all cases, per fold and over the "
        "simulated sets. Best baseline: the higher of Leiden's and KMeans' mean ARI. The "
        "`n_clusters=None` row counts only cases whose median estimated k is within 30 % of the true k; "
        "the spread row only real (not simulated) cases.\n\n"
        f"{summary_table}\n\n" + (f"Composition cases: {'; '.join(notes)}." if notes else "")
    )


def leave_one_out(candidate: dict, baseline: dict, metric: str = "final") -> tuple[str, bool]:
    """The leave-one-data-set-out rule for a candidate default against the baseline, as text and verdict.

    Each fold is held out in turn. The candidate is chosen on the other two folds when the mean
    ARI change over their cases is positive; the held-out fold then scores it (its cases' mean
    change), otherwise the baseline stays there (change 0). The change is kept only if the
    held-out mean rises in at least 2 of the 3 folds and on average over folds, and no held-out
    case where it was chosen drops by more than 0.02.
    """
    shared = [name for name in candidate["cases"] if name in baseline["cases"]]
    change = {
        name: candidate["cases"][name]["means"][metric] - baseline["cases"][name]["means"][metric] for name in shared
    }
    fold_of = {name: candidate["cases"][name]["fold"] for name in shared}
    rows, held_out, drops = [], [], []
    for fold in FOLDS:
        names = [name for name in shared if fold_of[name] == fold]
        others = [name for name in shared if fold_of[name] != fold]
        if not names or not others:
            continue
        trained = float(np.mean([change[name] for name in others]))
        chosen = trained > 0
        held_out.append(float(np.mean([change[name] for name in names])) if chosen else 0.0)
        worst = min(names, key=change.get)
        if chosen:
            drops.append(change[worst])
        rows.append(
            [fold, len(names), f"{trained:+.4f}", "yes" if chosen else "no", f"{held_out[-1]:+.4f}",
             f"{worst} {change[worst]:+.3f}" if chosen else "n/a"]
        )  # fmt: skip
    per_case = [
        [name, fold_of[name], _fmt(baseline["cases"][name]["means"][metric]),
         _fmt(candidate["cases"][name]["means"][metric]), f"{change[name]:+.3f}"]
        for name in shared
    ]  # fmt: skip
    mean_held_out = float(np.mean(held_out)) if held_out else float("nan")
    keep = sum(m > 0 for m in held_out) >= 2 and mean_held_out > 0 and all(d >= -0.02 for d in drops)
    header = ["held-out fold", "cases", "change on the other folds", "chosen", "held-out change", "largest drop"]
    text = (
        f"{c.markdown_table(['case', 'fold', 'baseline', 'candidate', 'change'], per_case)}\n\n"
        f"{c.markdown_table(header, rows)}\n\n"
        f"Mean held-out change {mean_held_out:+.4f}: {'keep' if keep else 'reject'} "
        "(chosen on the other two folds, rises in at least 2 of 3 held-out folds and on average, "
        "no held-out case below -0.02)."
    )
    return text, keep


def rescored(results: dict) -> dict:
    """``results`` with every case's means and the summary computed again from its runs (current criteria)."""
    for case in results["cases"].values():
        case["means"] = case_means(case)
    results["summary"] = summary(results["cases"])
    return results


def build_files(cases: list[Case], folder: Path, check: bool = False) -> tuple[dict, dict]:
    """Build and preprocess every case once into ``folder``; one line per case.

    Returns the h5ad file and the construction details of each case, by name. With ``check``,
    also confirm that ``variant_pipeline()`` with nothing changed is the standard pipeline.
    """
    start = time.perf_counter()
    files, infos = {}, {}
    for i, case in enumerate(cases):
        adata, info = build(case)
        files[case.name], infos[case.name] = folder / f"{i}.h5ad", info
        adata.write_h5ad(files[case.name])
        sizes = ("n_cells", "n_genes_raw", "n_features", "k", "simulation")
        extra = {key: value for key, value in info.items() if key not in sizes}
        print(
            f"built {case.name}: {info['n_cells']} cells, {info['n_genes_raw']} genes -> {info['n_features']} "
            f"features, k={info['k']}{f' {extra}' if extra else ''} ({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
        if check and case.kind == "standard":
            same = variant_pipeline(raw_data(case.fold).copy())
            agree = np.array_equal(same.var_names, adata.var_names) and np.allclose(
                same.obsm["X_pca"], adata.obsm["X_pca"]
            )
            print(f"  variant_pipeline() reproduces the standard pipeline: {agree}", flush=True)
    return files, infos


def runs_by_case(run_case, cases: list[Case], seeds, jobs: int) -> dict[str, list]:
    """``run_case(file, name, seed)`` for every case and seed in ``jobs`` workers, the outputs grouped by case name."""
    with tempfile.TemporaryDirectory() as folder:
        files, _ = build_files(cases, Path(folder))
        tasks = [(files[case.name], case.name, seed) for case in cases for seed in seeds]
        runs = c.run_tasks(run_case, tasks, jobs)
    results = {}
    for task, run in zip(tasks, runs, strict=True):
        results.setdefault(task[1], []).append(run)
    return results


def change_table(rows: dict[str, tuple[float, dict[str, float]]], notes: dict | None = None) -> str:
    """A markdown table of ARI changes: per case its initial ARI and each change, then the mean change.

    ``rows`` maps a case to ``(initial ARI, {column: change})``; ``notes`` maps ``(case, column)``
    to text written after that change (the offline probes' tables).
    """
    notes = notes or {}
    keys = list(next(iter(rows.values()))[1])
    lines = ["| case | initial | " + " | ".join(keys) + " |", "|---|" + "---|" * (len(keys) + 1)]
    for name, (initial, changes) in rows.items():
        cells = [f"{changes[key]:+.3f}{notes.get((name, key), '')}" for key in keys]
        lines.append(f"| {name} | {initial:.3f} | " + " | ".join(cells) + " |")
    means = [np.mean([changes[key] for _, changes in rows.values()]) for key in keys]
    lines.append("| mean | | " + " | ".join(f"{mean:+.3f}" for mean in means) + " |")
    return "\n".join(lines)


def main() -> None:
    """Build the cases, run every (case, seed) and write the results."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_jobs_argument(parser)
    parser.add_argument("--quick", action="store_true", help="3 seeds; per fold standard, nn10, rare, one simulated")
    parser.add_argument("--cases", nargs="+", help="run only cases whose name contains one of these")
    parser.add_argument(
        "--seeds", nargs="+", type=int, help=f"default {list(c.SEEDS)} ({list(QUICK_SEEDS)} in --quick)"
    )
    parser.add_argument("--list", action="store_true", help="print the selected cases and stop")
    parser.add_argument("--build-only", action="store_true", help="build and preprocess each case, print its size")
    parser.add_argument("--no-doc", action="store_true", help="do not write the docs/benchmarks.md section")
    parser.add_argument(
        "--resume", action="store_true", help="keep the runs a stopped invocation with the same --out checkpointed"
    )
    parser.add_argument(
        "--compare", nargs=2, type=Path, metavar=("BASELINE", "CANDIDATE"),
        help="apply the leave-one-data-set-out rule to two results files and stop",
    )  # fmt: skip
    parser.add_argument("--metric", default="final", help="the mean ARI --compare reads (default: final)")
    parser.add_argument("--overrides", help="training-config fields as JSON, applied to every tl.cluster call")
    parser.add_argument(
        "--out", type=Path, help="results JSON (default benchmarks/results/generalisation[_quick].json)"
    )
    parser.add_argument(
        "--doc-from", type=Path, metavar="RESULTS", help="write the docs section from a results file and stop"
    )
    args = parser.parse_args()
    if args.compare:
        baseline, candidate = (json.loads(path.read_text()) for path in args.compare)
        print(leave_one_out(candidate, baseline, args.metric)[0])
        return
    if args.overrides:
        os.environ[OVERRIDES_ENV] = json.dumps(json.loads(args.overrides))
    if args.doc_from:
        results = rescored(json.loads(args.doc_from.read_text()))
        c.write_section("generalisation", section(results))
        print(section(results))
        return
    seeds = args.seeds or list(QUICK_SEEDS if args.quick else c.SEEDS)
    cases = quick_cases() if args.quick else all_cases()
    if args.cases:
        cases = [case for case in cases if any(pattern in case.name for pattern in args.cases)]
    if not cases:
        parser.error("no case matches --cases")
    if args.list:
        for case in cases:
            print(f"{case.name:45s} {case.kind}")
        return
    out = args.out or c.RESULTS / ("generalisation_quick.json" if args.quick else "generalisation.json")
    command = f"{c.thread_setting()}python benchmarks/generalisation.py {shlex.join(sys.argv[1:])}".strip()
    start = time.perf_counter()
    checkpoint = out.with_suffix(".partial.jsonl")
    done = finished_runs(checkpoint) if args.resume else {}
    with tempfile.TemporaryDirectory() as folder:
        files, infos = build_files(cases, Path(folder), check=args.build_only)
        if args.build_only:
            return
        tasks = [(files[case.name], case.name, seed) for case in cases for seed in seeds]
        tasks = [task for task in tasks if task[1:] not in done]
        # longest first (cost grows with cells and, more slowly, with features), so that the workers finish together
        cost = {name: info["n_cells"] * max(1.0, info["n_features"] / 2000) ** 0.5 for name, info in infos.items()}
        tasks.sort(key=lambda task: -cost[task[1]])
        if not args.resume:
            checkpoint.unlink(missing_ok=True)
        runs = c.run_tasks(run_case, tasks, args.jobs, describe=functools.partial(checkpointed, checkpoint))
    by_task = {**done, **{task[1:]: run for task, run in zip(tasks, runs, strict=True)}}
    results = {"command": command, "seeds": seeds, "quick": args.quick, "jobs": args.jobs, "simulator": SIMULATOR}
    results["overrides"] = json.loads(args.overrides or "{}")
    results["cases"] = {}
    for case in cases:
        info = infos[case.name]
        entry = {"fold": case.fold, "kind": case.kind, "variant": case.variant}
        entry.update({key: info[key] for key in ("n_cells", "n_genes_raw", "n_features", "k")})
        entry["construction"] = {key: value for key, value in info.items() if key not in entry}
        entry["runs"] = [by_task[case.name, seed] for seed in seeds]
        results["cases"][case.name] = entry
    results = rescored(results)
    # with --resume, the wall time of this invocation only
    results["wall_s"], results["resumed_runs"] = time.perf_counter() - start, len(done)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    checkpoint.unlink(missing_ok=True)
    text = section(results)
    if not args.no_doc:
        c.write_section("generalisation", text)
    print(text)


if __name__ == "__main__":
    main()
