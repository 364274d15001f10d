"""A real accuracy floor on the shipped data, and what self-training does on a seeded simulated set."""

import sys
from pathlib import Path

import numpy as np
import pytest
import scanpy as sc
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

import dagcl_scverse as dagcl

SEEDS = (0, 1)


def test_default_dagcl_beats_kmeans_on_pca(pancreas):
    truth = pancreas.obs["cell_type"].to_numpy()
    dagcl_ari, kmeans_ari = [], []
    for seed in SEEDS:
        dagcl.tl.cluster(pancreas, n_clusters=13, random_state=seed, progress_bar=False)
        dagcl_ari.append(adjusted_rand_score(truth, pancreas.obs["dagcl"]))
        km = KMeans(13, random_state=seed, n_init=10).fit_predict(pancreas.obsm["X_pca"][:, :30])
        kmeans_ari.append(adjusted_rand_score(truth, km))
    print(f"mean ARI: DAGCL {np.mean(dagcl_ari):.3f}, KMeans {np.mean(kmeans_ari):.3f}")
    assert np.mean(dagcl_ari) > np.mean(kmeans_ari)


def _simulated_run():
    """A seeded simulated set (5 types fitted to the shipped pancreas, weak effects, shallow) clustered with defaults."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from simulate import simulate

    adata = simulate(dagcl.datasets.mouse_pancreas(), 5, 800, "balanced", 0.4, "shallow", seed=0)
    adata.uns.pop("simulation")
    sc.pp.filter_genes(adata, min_counts=1)
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    sc.pp.highly_variable_genes(adata, n_top_genes=2000, subset=True)
    sc.pp.pca(adata, n_comps=50)
    sc.pp.neighbors(adata)
    dagcl.tl.cluster(adata, n_clusters=5, random_state=0, progress_bar=False)
    truth = adata.obs["cell_type"].astype(str)
    start = adjusted_rand_score(truth, adata.uns["dagcl"]["start_labels"])
    return start, adjusted_rand_score(truth, adata.obs["dagcl"])


@pytest.fixture(scope="module")
def simulated_scores():
    return _simulated_run()


def test_simulated_set_is_neither_trivial_nor_hopeless_and_self_training_keeps_its_start(simulated_scores):
    start, final = simulated_scores
    print(f"simulated set: start of self-training ARI {start:.3f}, final {final:.3f}")
    assert 0.5 <= start <= 0.9
    assert final >= start - 0.01


@pytest.mark.xfail(
    strict=True,
    reason="issue 13's target is not met: self-training keeps its start but does not improve it "
    '("What we tried" #67 in docs/benchmarks.md)',
)
def test_self_training_improves_on_its_start(simulated_scores):
    start, final = simulated_scores
    assert final >= start + 0.02
