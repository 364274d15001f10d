"""Bad input to `dagcl.tl.cluster` and `dagcl.pl`: a clear error before any training, and the AnnData untouched."""

import inspect
import re
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from anndata import AnnData, ImplicitModificationWarning

with warnings.catch_warnings():  # anndata's helpers use a `gpu` mark this project does not register
    warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
    from anndata.tests.helpers import assert_equal

import dagcl_scverse as dagcl
from dagcl_scverse.model.schedules import SCHEDULES
from dagcl_scverse.tl._inputs import get_features

#: enough epochs to exercise both phases; these tests are about outcomes, not accuracy
TINY = {"pretrain_epochs": 2, "epochs": 2, "stages": 2, "progress_bar": False}


def assert_untouched(adata: AnnData, before: AnnData) -> None:
    """Same keys and values in every slot as the snapshot taken before the call."""
    for slot in ("obs", "obsm", "uns", "obsp", "layers", "var", "varm"):
        assert list(getattr(adata, slot).keys()) == list(getattr(before, slot).keys()), slot
    assert_equal(adata, before)


@pytest.fixture
def forbid_training(monkeypatch):
    """Invalid input must be rejected before training starts."""

    def no_training(*args, **kwargs):
        raise AssertionError("training started although the input is invalid")

    monkeypatch.setattr("dagcl_scverse.tl._cluster.train", no_training)


def _without_graph(a):
    del a.uns["neighbors"]


def _dangling_neighbors_key(a):
    a.uns["my_graph"] = {"connectivities_key": "my_graph_connectivities"}


def _neighbors_entry_not_a_dict(a):
    a.uns["my_graph"] = "connectivities"


def _graph_with_extra_axis(a):
    a.obsp["stacked"] = np.ones((a.n_obs, a.n_obs, 2), dtype=np.float32)


def _edit_graph(value):
    def edit(a):
        graph = a.obsp["connectivities"].copy()
        graph.data[:5] = value
        a.obsp["connectivities"] = graph

    return edit


def _nan_in_x(a):
    if sp.issparse(a.X):
        a.X.data[0] = np.nan
    else:
        a.X[0, 0] = np.nan


def _inf_in_pca(a):
    a.obsm["X_bad"] = a.obsm["X_pca"].copy()
    a.obsm["X_bad"][0, 0] = np.inf


def _zero_x(a):
    a.X = sp.csr_matrix(a.shape, dtype=np.float32)


def _no_hvg(a):
    a.var["highly_variable"] = False


def _text_rep(a):
    a.obsm["X_text"] = pd.DataFrame({"name": a.obs_names.to_numpy()}, index=a.obs_names)


def _beyond_float32(a):
    a.obsm["X_big"] = a.obsm["X_pca"].astype(np.float64) * 1e300


#: (case id, how to break the AnnData, cluster kwargs, error type, message regex naming problem and fix)
BAD_INPUTS = [
    ("no-graph", _without_graph, {}, KeyError, r"sc\.pp\.neighbors\(adata\)"),
    ("unknown-neighbors-key", None, {"neighbors_key": "nope"}, KeyError, r"neighbors_key='nope'.*key_added='nope'"),
    (
        "dangling-connectivities-key",
        _dangling_neighbors_key,
        {"neighbors_key": "my_graph"},
        KeyError,
        r"my_graph_connectivities.*does not exist.*sc\.pp\.neighbors",
    ),
    (
        "neighbors-entry-not-a-dict",
        _neighbors_entry_not_a_dict,
        {"neighbors_key": "my_graph"},
        TypeError,
        r"uns\['my_graph'\]` is a str.*obsp=",
    ),
    ("unknown-obsp", None, {"obsp": "knn"}, KeyError, r"obsp='knn'.*connectivities"),
    (
        "neighbors-key-and-obsp",
        None,
        {"neighbors_key": "neighbors", "obsp": "connectivities"},
        ValueError,
        r"either `neighbors_key` or `obsp`",
    ),
    ("graph-wrong-shape", _graph_with_extra_axis, {"obsp": "stacked"}, ValueError, r"shape .*822 cells"),
    ("graph-negative", _edit_graph(-0.5), {}, ValueError, r"negative weights"),
    ("graph-nan", _edit_graph(np.nan), {}, ValueError, r"non-finite weights.*sc\.pp\.neighbors"),
    ("graph-inf", _edit_graph(np.inf), {}, ValueError, r"non-finite weights"),
    ("unknown-layer", None, {"layer": "spliced"}, KeyError, r"layer='spliced'.*counts"),
    ("unknown-use-rep", None, {"use_rep": "X_scvi"}, KeyError, r"use_rep='X_scvi'.*sc\.pp\.pca"),
    ("layer-and-use-rep", None, {"layer": "counts", "use_rep": "X_pca"}, ValueError, r"either `layer` or `use_rep`"),
    ("nan-features", _nan_in_x, {}, ValueError, r"adata\.X contain NaN or inf.*1 cells"),
    ("inf-features", _inf_in_pca, {"use_rep": "X_bad"}, ValueError, r"obsm\['X_bad'\] contain NaN or inf"),
    ("zero-features", _zero_x, {}, ValueError, r"all zeros"),
    ("no-hvg", _no_hvg, {}, ValueError, r"selects no gene.*highly_variable_genes"),
    ("text-features", _text_rep, {"use_rep": "X_text"}, TypeError, r"real numbers"),
    ("features-beyond-float32", _beyond_float32, {"use_rep": "X_big"}, ValueError, r"float32 range"),
    ("n-clusters-float", None, {"n_clusters": 5.0}, TypeError, r"`n_clusters` must be an integer"),
    ("n-clusters-str", None, {"n_clusters": "5"}, TypeError, r"`n_clusters` must be an integer"),
    ("n-clusters-bool", None, {"n_clusters": True}, TypeError, r"`n_clusters` must be an integer"),
    ("n-clusters-one", None, {"n_clusters": 1}, ValueError, r"at least 2"),
    ("n-clusters-negative", None, {"n_clusters": -3}, ValueError, r"at least 2"),
    (
        "n-clusters-above-cells",
        None,
        {"n_clusters": 823},
        ValueError,
        r"exceeds the number of cells \(822\).*at most 822",
    ),
    ("epochs-zero", None, {"epochs": 0}, ValueError, r"`epochs` must be at least 1"),
    ("epochs-float", None, {"epochs": 2.5}, TypeError, r"`epochs` must be an integer"),
    ("pretrain-negative", None, {"pretrain_epochs": -1}, ValueError, r"`pretrain_epochs` must be at least 1"),
    ("lr-zero", None, {"lr": 0}, ValueError, r"`lr` must be a positive"),
    ("lr-negative", None, {"lr": -1e-3}, ValueError, r"`lr` must be a positive"),
    ("lr-nan", None, {"lr": float("nan")}, ValueError, r"`lr` must be a positive"),
    ("lr-inf", None, {"lr": float("inf")}, ValueError, r"`lr` must be a positive"),
    ("lr-str", None, {"lr": "1e-3"}, TypeError, r"`lr` must be a number"),
    ("schedule-unknown", None, {"schedule": "cosine"}, ValueError, ", ".join(SCHEDULES)),
    ("accelerator-unknown", None, {"accelerator": "tpu"}, ValueError, r"auto, cpu, cuda, gpu"),
    ("stages-negative", None, {"stages": -1}, ValueError, r"`stages` must be at least 0"),
    ("random-state-negative", None, {"random_state": -1}, ValueError, r"`random_state` must be at least 0"),
    ("random-state-too-large", None, {"random_state": 2**32}, ValueError, r"at most 4294967295"),
    ("random-state-none", None, {"random_state": None}, TypeError, r"`random_state` must be an integer"),
    ("key-added-empty", None, {"key_added": ""}, ValueError, r"`key_added` must not be empty"),
    ("key-added-not-str", None, {"key_added": 3}, TypeError, r"`key_added` must be a string"),
    ("switch-not-bool", None, {"balance": "yes"}, TypeError, r"`balance` must be True or False"),
    ("deterministic-not-bool", None, {"deterministic": 1}, TypeError, r"`deterministic` must be True or False"),
]


@pytest.mark.parametrize(
    ("breaker", "kwargs", "error", "message"),
    [case[1:] for case in BAD_INPUTS],
    ids=[case[0] for case in BAD_INPUTS],
)
def test_bad_input_is_rejected_and_adata_untouched(forbid_training, pancreas, breaker, kwargs, error, message):
    if breaker is not None:
        breaker(pancreas)
    before = pancreas.copy()
    with pytest.raises(error, match=message):
        dagcl.tl.cluster(pancreas, **{"n_clusters": 5, **TINY, **kwargs})
    assert_untouched(pancreas, before)


@pytest.mark.parametrize("accelerator", ["cuda", "gpu"])
def test_cuda_requested_without_a_device(forbid_training, pancreas, monkeypatch, accelerator):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    before = pancreas.copy()
    with pytest.raises(ValueError, match=r"no CUDA device; use accelerator='cpu'"):
        dagcl.tl.cluster(pancreas, n_clusters=5, accelerator=accelerator, **TINY)
    assert_untouched(pancreas, before)


@pytest.mark.parametrize("not_adata", ["pancreas.X", "pancreas.to_df()", "None"])
def test_not_an_anndata(forbid_training, pancreas, not_adata):
    with pytest.raises(TypeError, match=r"`adata` must be an AnnData"):
        dagcl.tl.cluster(eval(not_adata), n_clusters=5, **TINY)


@pytest.mark.parametrize("n_cells", [0, 1])
def test_too_few_cells(forbid_training, pancreas, n_cells):
    small = pancreas[:n_cells].copy()
    before = small.copy()
    with pytest.raises(ValueError, match=rf"at least 2 cells, got {n_cells}"):
        dagcl.tl.cluster(small, **TINY)
    assert_untouched(small, before)


def test_more_clusters_than_cells(forbid_training, pancreas):
    small = pancreas[:5].copy()
    with pytest.raises(ValueError, match=r"`n_clusters=6` exceeds the number of cells \(5\)"):
        dagcl.tl.cluster(small, n_clusters=6, **TINY)


def test_leiden_finding_one_cluster_asks_for_n_clusters(forbid_training, pancreas):
    # On a complete graph, modularity is best with every cell in one community.
    small = pancreas[:40].copy()
    small.obsp["connectivities"] = sp.csr_matrix(np.ones((40, 40), dtype=np.float32))
    before = small.copy()
    with pytest.raises(ValueError, match=r"Leiden found 1 cluster.*pass `n_clusters`"):
        dagcl.tl.cluster(small, n_clusters=None, **TINY)
    assert_untouched(small, before)


def test_failed_call_on_a_view_leaves_view_and_parent_untouched(forbid_training, pancreas):
    parent_before = pancreas.copy()
    view = pancreas[pancreas.obs["cell_type"] != pancreas.obs["cell_type"].iloc[0]]
    with pytest.raises(KeyError, match="use_rep='missing'"):
        dagcl.tl.cluster(view, n_clusters=5, use_rep="missing", **TINY)
    assert view.is_view
    assert_untouched(pancreas, parent_before)


def test_view_becomes_its_own_anndata_and_receives_results(pancreas):
    parent_before = pancreas.copy()
    mask = (pancreas.obs["cell_type"] != pancreas.obs["cell_type"].iloc[0]).to_numpy()
    view = pancreas[mask]
    with pytest.warns(ImplicitModificationWarning):
        assert dagcl.tl.cluster(view, n_clusters=5, **TINY) is None
    assert not view.is_view
    assert view.n_obs == mask.sum()
    assert view.obs["dagcl"].notna().all()
    assert view.obsm["X_dagcl"].shape[0] == view.obsm["dagcl_proba"].shape[0] == mask.sum()
    assert "dagcl" in view.uns
    assert_untouched(pancreas, parent_before)


def test_view_with_copy_returns_new_anndata_and_keeps_the_view(pancreas):
    parent_before = pancreas.copy()
    view = pancreas[:300]
    result = dagcl.tl.cluster(view, n_clusters=4, copy=True, **TINY)
    assert view.is_view
    assert "dagcl" not in view.obs
    assert not result.is_view
    assert result.obs["dagcl"].cat.categories.size <= 4
    assert_untouched(pancreas, parent_before)


def test_isolated_cells_warn_and_are_clustered(pancreas):
    graph = pancreas.obsp["connectivities"].tolil()
    graph[:3, :] = 0
    graph[:, :3] = 0
    pancreas.obsp["connectivities"] = graph.tocsr()
    with pytest.warns(UserWarning, match=r"3 cell\(s\) have no neighbours"):
        dagcl.tl.cluster(pancreas, n_clusters=5, **TINY)
    labels = pancreas.obs["dagcl"].astype(int).to_numpy()
    assert ((labels >= 0) & (labels < 5)).all()
    assert np.isfinite(pancreas.obsm["X_dagcl"][:3]).all()


def test_more_stages_than_epochs_keeps_distinct_snapshots(pancreas):
    dagcl.tl.cluster(pancreas, n_clusters=5, **{**TINY, "epochs": 2, "stages": 5})
    stages = pancreas.uns["dagcl"]["stages"]
    assert pancreas.uns["dagcl"]["params"]["stages"] == 2
    assert len(stages["progress"]) == 2
    # every snapshot was actually taken (an untaken one stays all zeros)
    assert all(np.abs(latent).sum() > 0 for latent in stages["latent"])


def test_raw_counts_warn(pancreas):
    with pytest.warns(UserWarning, match=r"look like raw counts.*sc\.pp\.log1p"):
        get_features(pancreas, layer="counts", use_rep=None)


def test_log_normalised_features_do_not_warn(pancreas, recwarn):
    get_features(pancreas, layer=None, use_rep=None)
    assert not [w for w in recwarn if "raw counts" in str(w.message)]


#: the plots that read a run from an AnnData
PLOTS = sorted(name for name in dagcl.pl.__all__ if "adata" in inspect.signature(getattr(dagcl.pl, name)).parameters)


@pytest.mark.parametrize("plot", PLOTS)
def test_plot_without_a_run_names_the_fix(pancreas, plot):
    before = pancreas.copy()
    with pytest.raises(KeyError, match=re.escape("dagcl.tl.cluster")):
        getattr(dagcl.pl, plot)(pancreas, show=False)
    assert_untouched(pancreas, before)


@pytest.mark.parametrize("plot", PLOTS)
def test_plot_with_unknown_key_names_the_fix(pancreas_trained, plot):
    # the run's uns entry, or for plots of the labels alone (pl.confidence) its obs column
    with pytest.raises(KeyError, match=r"adata\.(uns|obs)\['other'\].*key_added"):
        getattr(dagcl.pl, plot)(pancreas_trained, key="other", show=False)
