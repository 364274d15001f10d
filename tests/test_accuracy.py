"""A real accuracy floor: DAGCL with defaults beats KMeans on PCA on the shipped data."""

import numpy as np
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
