"""scVI, the deep model scanpy users pick, next to DAGCL on the same data in the same process.

For each data set (default: mouse pancreas 1 and worm neuron): the standard pipeline, then
scVI (scvi-tools, default model and default epochs, CPU) on the HVG counts, scored by Leiden
(resolution 1) and KMeans (true k) on its latent space; then DAGCL with defaults and the
true k on the same AnnData. One seed: scVI is slow on a CPU. The time ratio is scVI's
training time over DAGCL's ``tl.cluster`` time. Table into docs/benchmarks.md, bar chart into
docs/_static/scvi_peer.png.

Needs the optional ``bench`` dependencies (``pip install -e ".[bench]"``, scvi-tools 1.4.2).

Usage: ``python benchmarks/scvi_peer.py [--seed 0] [--no-shared] [extra.h5 ...]``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import scanpy as sc
import torch

sys.path.insert(0, str(Path(__file__).parent))
import _common as c

import dagcl_scverse as dagcl

DEFAULT_DATA = ("Maayan_Mouse_Pancreas_cell_1.h5", "Junyue_worm_neuron_cell.h5")
METHODS = ("scVI + Leiden (res. 1)", "scVI + KMeans (true k)", "DAGCL (true k)")


def run_scvi(adata, seed: int):
    """Train scVI on ``layers['counts']``: its latent space, training seconds and epochs."""
    import scvi

    scvi.settings.seed = seed
    scvi.model.SCVI.setup_anndata(adata, layer="counts")
    model = scvi.model.SCVI(adata)
    _, seconds = c.timed(model.train, accelerator="cpu", enable_progress_bar=False)
    epochs = len(model.history["elbo_train"])
    return model.get_latent_representation(), seconds, epochs


def run_dataset(path: Path, seed: int) -> dict:
    """DAGCL vs scVI + Leiden on one data set."""
    adata = c.preprocess(c.load(path))
    truth = adata.obs["cell_type"].to_numpy()
    k = len(np.unique(truth))

    latent, scvi_seconds, scvi_epochs = run_scvi(adata, seed)
    adata.obsm["X_scVI"] = latent
    sc.pp.neighbors(adata, use_rep="X_scVI", key_added="scvi")
    leiden = c.leiden(adata, 1.0, seed, graph_key="scvi_connectivities")
    kmeans = c.kmeans_pca(adata, k, seed, n_pcs=latent.shape[1], rep="X_scVI")

    _, dagcl_seconds = c.timed(dagcl.tl.cluster, adata, k, random_state=seed, progress_bar=False)
    labels = {METHODS[0]: leiden, METHODS[1]: kmeans, METHODS[2]: adata.obs["dagcl"].to_numpy()}
    scores = {m: c.score(truth, labels[m]) for m in METHODS}
    out = {
        "n_cells": adata.n_obs,
        "k": k,
        "scores": scores,
        "scvi_seconds": scvi_seconds,
        "scvi_epochs": scvi_epochs,
        "dagcl_seconds": dagcl_seconds,
    }
    print(path.name, json.dumps(out), flush=True)
    return out


def main() -> None:
    """Run every data set and write the scVI comparison."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_data_arguments(parser)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    paths = ([] if args.no_shared else [c.DATA_DIR / n for n in DEFAULT_DATA]) + [Path(p) for p in args.extra]
    results = {c.pretty_name(p): run_dataset(p, args.seed) for p in paths}
    c.RESULTS.mkdir(parents=True, exist_ok=True)
    (c.RESULTS / "scvi_peer.json").write_text(json.dumps(results, indent=1))

    rows = []
    for name, r in results.items():
        for m in METHODS:
            scvi_row = m.startswith("scVI")
            rows.append(
                [
                    name if m == METHODS[0] else "",
                    m,
                    f"{r['scores'][m]['ari']:.3f}",
                    f"{r['scores'][m]['nmi']:.3f}",
                    f"{r['scvi_seconds']:.0f} ({r['scvi_epochs']} epochs)" if scvi_row else f"{r['dagcl_seconds']:.0f}",
                ]
            )
        rows.append(
            [
                "",
                "*scVI training time / DAGCL time (target ≥ 10)*",
                "",
                "",
                f"*{r['scvi_seconds'] / r['dagcl_seconds']:.1f}*",
            ]
        )
    table = c.markdown_table(["data set", "method", "ARI", "NMI", "training time (s)"], rows)
    extra = " " + " ".join(args.extra) if args.extra else ""
    c.write_section(
        "scvi",
        f"scvi-tools 1.4.2, default `SCVI` model and epochs on the HVG counts, CPU; seed {args.seed}; "
        f"DAGCL with defaults in the same process; torch threads: {torch.get_num_threads()}.\n"
        f"Command: `{c.thread_setting()}python benchmarks/scvi_peer.py --seed {args.seed}{' --no-shared' if args.no_shared else ''}{extra}`\n\n"
        f"{table}\n\n![scVI vs DAGCL](_static/scvi_peer.png)",
    )

    fig, axes = plt.subplots(1, 2, figsize=(8, 3), layout="constrained")
    width = 0.8 / len(METHODS)
    colours = ["#E69F00", "#CC79A7", "#0072B2"]
    x = np.arange(len(results))
    for i, m in enumerate(METHODS):
        axes[0].bar(x + i * width, [r["scores"][m]["ari"] for r in results.values()], width, label=m, color=colours[i])
    axes[0].set_xticks(x + width, list(results))
    axes[0].set_ylabel("ARI (one seed)")
    axes[0].legend(frameon=False, fontsize=7)
    axes[1].bar(x - 0.2, [r["scvi_seconds"] for r in results.values()], 0.4, label="scVI training", color="#E69F00")
    axes[1].bar(x + 0.2, [r["dagcl_seconds"] for r in results.values()], 0.4, label="DAGCL tl.cluster", color="#0072B2")
    axes[1].set_xticks(x, list(results))
    axes[1].set_ylabel("seconds")
    axes[1].legend(frameon=False, fontsize=7)
    fig.savefig(c.STATIC / "scvi_peer.png", dpi=150)
    print(table)


if __name__ == "__main__":
    main()
