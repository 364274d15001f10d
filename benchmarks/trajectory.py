"""ARI along self-training: the initial partition, 11 snapshots from start to end, the final labels.

Runs ``tl.cluster`` (true k, default epochs, seed 0) with ``TrainingConfig`` fields overridden
as given, on the standard pipeline of each shared data set named. Used for the "What we tried"
rows that follow a setting through self-training; labels only score.

Usage: ``python benchmarks/trajectory.py '<overrides as JSON>' pancreas worm``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import _common as c
from generalisation import FOLDS

import dagcl_scverse as dagcl
import dagcl_scverse.tl._settings as settings
from dagcl_scverse.model.config import TrainingConfig


def main() -> None:
    """Print one trajectory per data set."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", type=json.loads, help="TrainingConfig fields as JSON, e.g. '{\"latent\": 32}'")
    parser.add_argument("folds", nargs="+", choices=list(FOLDS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    settings.TrainingConfig = lambda **kwargs: TrainingConfig(**{**kwargs, **args.overrides})
    for fold in args.folds:
        adata = c.preprocess(c.load(c.DATA_DIR / FOLDS[fold]))
        truth = adata.obs["cell_type"].to_numpy()
        k = len(np.unique(truth))
        dagcl.tl.cluster(adata, k, random_state=args.seed, progress_bar=False, stages=11)
        uns = adata.uns["dagcl"]
        stage_truth = truth[uns["stages"]["indices"]]
        trajectory = [round(c.score(stage_truth, labels)["ari"], 3) for labels in uns["stages"]["labels"]]
        initial = c.score(truth, uns["initial_labels"])["ari"]
        final = c.score(truth, adata.obs["dagcl"])["ari"]
        print(f"{fold}: initial {initial:.3f}, trajectory {trajectory}, final {final:.3f}", flush=True)


if __name__ == "__main__":
    main()
