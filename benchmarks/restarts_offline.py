"""The initial partition alone with 1, 5 and 10 restarts chosen by graph modularity (no training).

For run seeds 0-4 on the standard pipeline of each shared data set named: the mean and spread of
the initial partition's ARI when the most modular of R restarts is kept. Labels only score.

Usage: ``python benchmarks/restarts_offline.py pancreas worm``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
import _common as c
from generalisation import FOLDS

from dagcl_scverse.model.centre_init import SCALE_MAX_VALUE
from dagcl_scverse.model.chunked_pca import principal_components
from dagcl_scverse.model.restarts import most_modular_partition
from dagcl_scverse.tl._inputs import get_features, get_graph, graph_to_edges


def main() -> None:
    """Print the initial partition's ARI per number of restarts."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folds", nargs="+", choices=list(FOLDS))
    args = parser.parse_args()
    for fold in args.folds:
        adata = c.preprocess(c.load(c.DATA_DIR / FOLDS[fold]))
        truth = adata.obs["cell_type"].to_numpy()
        k = len(np.unique(truth))
        x = get_features(adata, layer=None, use_rep=None)
        edge_index, edge_weight = (
            torch.as_tensor(a) for a in graph_to_edges(get_graph(adata, neighbors_key=None, obsp=None))
        )
        for restarts in (1, 5, 10):
            aris = []
            for seed in range(5):
                torch.manual_seed(seed)
                space = torch.as_tensor(principal_components(x, scale_max=SCALE_MAX_VALUE, seed=seed))
                _, labels, _ = most_modular_partition(
                    space, k, space=space, edge_index=edge_index, edge_weight=edge_weight, restarts=restarts, seed=seed
                )
                aris.append(c.score(truth, labels.numpy())["ari"])
            print(f"{fold} restarts {restarts}: ARI {np.mean(aris):.3f} ± {np.std(aris):.3f} {np.round(aris, 3)}")


if __name__ == "__main__":
    main()
