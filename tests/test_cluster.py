"""The AnnData contract of `dagcl.tl.cluster` and the history it records."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
from conftest import SHORT

import dagcl_scverse as dagcl
from dagcl_scverse.metrics import adjusted_rand_index

HISTORY_FIELDS = {
    "epoch",
    "phase",
    "loss_total",
    "loss_recon",
    "loss_decorrelation",
    "loss_smoothness",
    "loss_kl",
    "gamma",
    "capacity",
    "aggregation",
    "curriculum_share",
    "label_change",
    "assignment_entropy",
    "confident_share",
    "cluster_sizes",
}


def test_writes_exactly_the_documented_keys(pancreas):
    before = {a: set(getattr(pancreas, a).keys()) for a in ("obsm", "uns", "obsp", "layers", "varm")}
    obs_before = set(pancreas.obs.columns)
    assert dagcl.tl.cluster(pancreas, n_clusters=6, **SHORT) is None
    assert set(pancreas.obs.columns) - obs_before == {"dagcl", "dagcl_confidence"}
    assert set(pancreas.obsm.keys()) - before["obsm"] == {"X_dagcl", "dagcl_proba"}
    assert set(pancreas.uns.keys()) - before["uns"] == {"dagcl"}
    for attr in ("obsp", "layers", "varm"):
        assert set(getattr(pancreas, attr).keys()) == before[attr]

    labels = pancreas.obs["dagcl"]
    assert isinstance(labels.dtype, pd.CategoricalDtype)
    assert list(labels.cat.categories) == [str(i) for i in range(len(labels.cat.categories))]
    sizes = labels.value_counts(sort=False).to_numpy()
    assert np.all(np.diff(sizes) <= 0), "cluster 0 is the largest, as in Leiden"
    proba = pancreas.obsm["dagcl_proba"]
    assert proba.shape == (pancreas.n_obs, 6)
    np.testing.assert_allclose(proba.sum(1), 1, atol=1e-5)
    np.testing.assert_array_equal(proba.argmax(1), labels.astype(int).to_numpy())
    confidence = pancreas.obs["dagcl_confidence"]
    assert confidence.dtype.kind == "f"
    np.testing.assert_array_equal(confidence.to_numpy(), proba.max(1))
    assert pancreas.obsm["X_dagcl"].shape[0] == pancreas.n_obs
    assert np.isfinite(pancreas.obsm["X_dagcl"]).all()

    uns = pancreas.uns["dagcl"]
    assert set(uns) == {"params", "history", "stages", "initial_labels", "start_labels", "model", "timings"}
    initial = uns["initial_labels"]
    assert initial.shape == (pancreas.n_obs,) and initial.dtype.kind == "i"
    assert 0 <= initial.min() and initial.max() < 6
    params = uns["params"]
    assert params["n_clusters"] == 6 and params["n_clusters_estimated"] is False
    assert (params["pretrain_epochs"], params["epochs"]) == (20, 30)
    assert params["schedule"] == "convex" and params["device"] == "cpu"
    assert set(params["versions"]) == {"dagcl_scverse", "torch", "torch_geometric", "scanpy", "anndata"}
    assert not any(v is None for v in params.values())
    assert "layer" not in params and "use_rep" not in params
    assert params["init_space"] == "input_pca_scaled"  # expression values are standardised
    assert params["carry_steps"] == 50  # full-batch size


def test_copy_returns_new_object_and_leaves_input_alone(pancreas):
    obsm_before = set(pancreas.obsm.keys())
    result = dagcl.tl.cluster(pancreas, n_clusters=4, copy=True, key_added="dc", **SHORT)
    assert isinstance(result, ad.AnnData) and result is not pancreas
    assert "dc" in result.obs and "X_dc" in result.obsm and "dc_proba" in result.obsm and "dc" in result.uns
    assert "dc" not in pancreas.obs and set(pancreas.obsm.keys()) == obsm_before


def test_history_follows_the_design(pancreas_trained):
    hist = pancreas_trained.uns["dagcl"]["history"]
    assert set(hist) == HISTORY_FIELDS
    n = len(hist["epoch"])
    assert n == 50 and all(len(v) == n for v in hist.values())
    pre, post = hist["phase"] == 0, hist["phase"] == 1
    assert pre.sum() == 20 and post.sum() == 30
    for name in ("loss_kl", "gamma", "curriculum_share", "label_change", "assignment_entropy", "confident_share"):
        assert np.isnan(hist[name][pre]).all(), name
        assert np.isfinite(hist[name][post]).all(), name
    assert np.isnan(hist["cluster_sizes"][pre]).all()
    np.testing.assert_array_equal(hist["cluster_sizes"][post].sum(1), pancreas_trained.n_obs)
    gamma = hist["gamma"][post]
    assert gamma[0] == 0 and gamma[-1] == pytest.approx(1) and np.all(np.diff(gamma) >= 0)
    cap = hist["capacity"]
    assert cap[0] == pytest.approx(0.25) and cap[-1] == 1 and np.all(np.diff(cap) >= 0)
    agg = hist["aggregation"]
    assert agg[-1] > agg[0] and np.all(np.diff(agg) >= 0)
    share = hist["curriculum_share"][post]
    assert share[0] < 1 and share[-1] == 1
    entropy = hist["assignment_entropy"][post]
    assert np.all((0 < entropy) & (entropy < 1))
    assert np.all((0 <= hist["label_change"][post]) & (hist["label_change"][post] <= 1))
    assert len(np.unique(hist["loss_recon"])) > 10
    assert hist["loss_recon"][19] < hist["loss_recon"][0]


def test_switches_turn_components_off(pancreas):
    dagcl.tl.cluster(
        pancreas, 5, dynamic_attention=False, curriculum=False, schedule="constant", balance=False, **SHORT
    )
    hist = pancreas.uns["dagcl"]["history"]
    post = hist["phase"] == 1
    assert np.all(hist["capacity"] == 1)
    assert len(np.unique(hist["aggregation"])) == 1
    assert np.all(hist["gamma"][post] == 1)
    assert np.all(hist["curriculum_share"][post] == 1)
    params = pancreas.uns["dagcl"]["params"]
    assert params["balance"] is False and params["dynamic_attention"] is False


def test_h5ad_round_trip(pancreas_trained, tmp_path):
    path = tmp_path / "run.h5ad"
    pancreas_trained.write_h5ad(path)
    back = ad.read_h5ad(path)
    pd.testing.assert_series_equal(back.obs["dagcl"], pancreas_trained.obs["dagcl"])
    np.testing.assert_array_equal(back.obsm["X_dagcl"], pancreas_trained.obsm["X_dagcl"])
    hist, hist_back = pancreas_trained.uns["dagcl"]["history"], back.uns["dagcl"]["history"]
    for name in hist:
        np.testing.assert_array_equal(hist_back[name], hist[name])
    stages, stages_back = pancreas_trained.uns["dagcl"]["stages"], back.uns["dagcl"]["stages"]
    for name in ("progress", "indices", "latent", "labels"):
        np.testing.assert_array_equal(stages_back[name], stages[name])
    assert back.uns["dagcl"]["params"]["versions"] == pancreas_trained.uns["dagcl"]["params"]["versions"]


def test_stages_snapshots(pancreas_trained):
    stages = pancreas_trained.uns["dagcl"]["stages"]
    np.testing.assert_allclose(stages["progress"], [0, 0.5, 1])
    n_cells = len(stages["indices"])
    assert stages["latent"].shape[:2] == (3, n_cells) and stages["labels"].shape == (3, n_cells)
    assert not np.array_equal(stages["latent"][0], stages["latent"][2])
    np.testing.assert_array_equal(
        stages["labels"][2], pancreas_trained.obs["dagcl"].astype(int).to_numpy()[stages["indices"]]
    )


def test_estimated_n_clusters_recorded(pancreas):
    dagcl.tl.cluster(pancreas, use_rep="X_pca", stages=0, **SHORT)
    params = pancreas.uns["dagcl"]["params"]
    expected = sc.tl.leiden(pancreas, flavor="igraph", n_iterations=2, directed=False, copy=True)
    assert params["n_clusters_estimated"] is True
    assert params["n_clusters"] == expected.obs["leiden"].nunique()
    assert params["use_rep"] == "X_pca" and "stages" not in pancreas.uns["dagcl"]
    assert params["init_space"] == "input_pca"  # a chosen representation is not standardised again


def test_same_seed_same_labels(pancreas):
    a = dagcl.tl.cluster(pancreas, 5, random_state=3, copy=True, **SHORT)
    b = dagcl.tl.cluster(pancreas, 5, random_state=3, copy=True, **SHORT)
    np.testing.assert_array_equal(a.obs["dagcl"], b.obs["dagcl"])
    np.testing.assert_array_equal(a.obsm["X_dagcl"], b.obsm["X_dagcl"])


def test_large_graph_above_pynndescent_threshold():
    """scanpy 1.11.5 + pynndescent 0.7 crash in sc.pp.neighbors above ~4,100 cells."""
    rng = np.random.default_rng(0)
    n, groups = 4500, 3
    centres = rng.normal(0, 6, size=(groups, 20))
    truth = rng.integers(groups, size=n)
    adata = ad.AnnData(rng.normal(size=(n, 20)).astype(np.float32) + centres[truth].astype(np.float32))
    sc.pp.neighbors(adata, n_neighbors=10, use_rep="X")
    dagcl.tl.cluster(adata, groups, pretrain_epochs=10, epochs=10, progress_bar=False)
    from sklearn.metrics import adjusted_rand_score

    assert adata.obs["dagcl"].nunique() == groups
    assert adjusted_rand_score(truth, adata.obs["dagcl"]) > 0.9


@pytest.mark.parametrize("batch_size", [None, 128])
def test_self_training_epochs_never_change_pre_training(pancreas, batch_size):
    runs, labels, proba = {}, {}, {}
    for epochs in (1, 6):
        adata = pancreas.copy()
        dagcl.tl.cluster(
            adata, n_clusters=5, pretrain_epochs=8, epochs=epochs, stages=0, batch_size=batch_size, progress_bar=False
        )
        runs[epochs], labels[epochs] = adata.uns["dagcl"], adata.obs["dagcl"].to_numpy()
        proba[epochs] = adata.obsm["dagcl_proba"]
    short, long = runs[1], runs[6]
    # the same partition; its names follow each run's final labels, ordered by size
    assert adjusted_rand_index(short["initial_labels"], long["initial_labels"]) == 1.0
    # the long run records where the short one ends, and trains on from there
    assert adjusted_rand_index(labels[1], long["start_labels"]) == 1.0
    assert adjusted_rand_index(labels[1], short["start_labels"]) == 1.0
    # ... and the five more epochs did train (the labels may stay where they were)
    assert np.abs(proba[6] - proba[1]).max() > 1e-3
    pre = short["history"]["phase"] == 0
    for name in ("loss_total", "capacity", "aggregation"):
        np.testing.assert_allclose(short["history"][name][pre], long["history"][name][: pre.sum()], rtol=1e-6)
