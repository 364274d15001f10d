"""Quick check of a DAGCL setting: the trainer on one data set, true k, a few seeds.

Used to choose the global defaults (docs/benchmarks.md, "What we tried"). Labels only score.
Runs the standard pipeline once per data set (cached under /tmp/dagcl-tune) and calls the
trainer directly, so any field of :class:`~dagcl_scverse.model.config.TrainingConfig` can be
overridden. ``init``/``mid`` are the ARI of the labels at the start and the middle of
self-training.

Usage: ``python benchmarks/tune.py Maayan_Mouse_Pancreas_cell_1 '{"student_t_dof": 5}' 0,1,2``
"""

import json
import os
import sys
import time
from pathlib import Path

import anndata as ad
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
import _common as c

from dagcl_scverse.model.config import TrainingConfig
from dagcl_scverse.model.size_defaults import default_epochs
from dagcl_scverse.model.trainer import train
from dagcl_scverse.tl._inputs import get_features, get_graph, graph_to_edges

CACHE = Path("/tmp/dagcl-tune")


def main() -> None:
    """Run one tuning grid and print its scores."""
    name = sys.argv[1]
    overrides = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    seeds = [int(s) for s in sys.argv[3].split(",")] if len(sys.argv) > 3 else [0, 1, 2]
    torch.set_num_threads(int(os.environ.get("DAGCL_TUNE_THREADS", "1")))
    CACHE.mkdir(exist_ok=True)
    cache = CACHE / f"{name}.h5ad"
    if cache.exists():
        adata = ad.read_h5ad(cache)
    else:
        adata = c.preprocess(c.load(c.DATA_DIR / f"{name}.h5"))
        adata.write_h5ad(cache)
    truth = adata.obs["cell_type"].to_numpy()
    k = len(np.unique(truth))
    use_rep = overrides.pop("use_rep", None)
    features = get_features(adata, layer=None, use_rep=use_rep)
    edge_index, edge_weight = graph_to_edges(get_graph(adata, neighbors_key=None, obsp=None))
    pre, post = default_epochs(adata.n_obs)
    rows = []
    for seed in seeds:
        config = TrainingConfig(
            **{
                "n_clusters": k,
                "pretrain_epochs": pre,
                "epochs": post,
                "random_state": seed,
                "stage_progress": (0.0, 0.5),
                **overrides,
            }
        )
        start = time.perf_counter()
        result = train(
            features, edge_index, edge_weight, config, progress_bar=False, stage_indices=np.arange(adata.n_obs)
        )
        rows.append(
            (
                c.score(truth, result.labels)["ari"],
                c.score(truth, result.labels)["nmi"],
                time.perf_counter() - start,
                c.score(truth, result.stages["labels"][0])["ari"],
                c.score(truth, result.stages["labels"][1])["ari"],
            )
        )
    r = np.array(rows)
    print(
        f"{name} {json.dumps(overrides)} {use_rep or ''} ARI {r[:, 0].mean():.3f}±{r[:, 0].std():.3f} "
        f"NMI {r[:, 1].mean():.3f} t {r[:, 2].mean():.0f}s init {r[:, 3].mean():.3f} mid {r[:, 4].mean():.3f} "
        f"{np.round(r[:, 0], 3).tolist()}",
        flush=True,
    )


if __name__ == "__main__":
    main()
