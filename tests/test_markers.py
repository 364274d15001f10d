"""`dagcl.tl.marker_table` on scanpy's offline PBMC data, whose `.raw` has gene symbols."""

import numpy as np
import pandas as pd
import pytest
import scanpy as sc
from conftest import SHORT

import dagcl_scverse as dagcl
from dagcl_scverse.tl import _markers

COLUMNS = ["cluster", "rank", "gene", "score", "logfoldchange", "pvals_adj"]


@pytest.fixture(scope="module")
def _pbmc():
    return sc.datasets.pbmc68k_reduced()


@pytest.fixture
def pbmc(_pbmc):
    """scanpy's reduced PBMC 68k: 700 cells, scaled X, log-normalised expression with gene symbols in .raw."""
    return _pbmc.copy()


def state(adata):
    """What a tool could change in an AnnData, for before/after comparisons."""
    return (list(adata.obs.columns), adata.obs.dtypes.tolist(), sorted(adata.uns), sorted(adata.obsm), adata.shape)


def test_marker_table_ranks_known_pbmc_markers(pbmc):
    obs_before = pbmc.obs.copy()
    table = dagcl.tl.marker_table(pbmc, key="louvain")
    assert list(table.columns) == COLUMNS
    clusters = list(pbmc.obs["louvain"].cat.categories)
    assert list(table["cluster"].unique()) == clusters
    assert len(table) == 10 * len(clusters)
    assert table["rank"].tolist() == list(range(1, 11)) * len(clusters)
    assert set(table["gene"]) <= set(pbmc.raw.var_names)
    top = table[table["rank"] <= 3].groupby("cluster", sort=False)["gene"].agg(set)
    assert "CD3D" in top["0"]  # T cells
    assert {"CD79A", "CD79B", "MS4A1"} & top["4"]  # B cells
    assert "NKG7" in top["3"]  # cytotoxic / NK cells

    # the same as scanpy's own call on .raw, which the table leaves in uns for scanpy's plots
    reference = sc.tl.rank_genes_groups(pbmc, "louvain", method="wilcoxon", use_raw=True, copy=True, key_added="ref")
    for cluster in ("0", "4"):
        expected = sc.get.rank_genes_groups_df(reference, group=cluster, key="ref").head(10)
        got = table[table["cluster"] == cluster]
        assert got["gene"].tolist() == expected["names"].tolist()
        np.testing.assert_allclose(got["score"], expected["scores"], rtol=1e-6)
        np.testing.assert_allclose(got["logfoldchange"], expected["logfoldchanges"], rtol=1e-5)
        np.testing.assert_allclose(got["pvals_adj"], expected["pvals_adj"], rtol=1e-6)
    entry = pbmc.uns["rank_genes_groups"]
    assert entry["params"]["groupby"] == "louvain" and entry["params"]["method"] == "wilcoxon"
    assert entry["params"]["use_raw"] is True
    assert len(entry["names"]) == _markers.STORED_GENES
    pd.testing.assert_frame_equal(pbmc.obs, obs_before)


def test_marker_table_after_a_short_dagcl_run(pbmc):
    pbmc.layers["lognorm"] = pbmc.raw.X.copy()
    dagcl.tl.cluster(pbmc, n_clusters=6, layer="lognorm", **SHORT)
    table = dagcl.tl.marker_table(pbmc, n_genes=5)
    sizes = pbmc.obs["dagcl"].value_counts(sort=False)
    tested = [cluster for cluster, n in sizes.items() if n >= 2]
    assert list(table.columns) == COLUMNS
    assert list(table["cluster"].unique()) == tested and len(table) == 5 * len(tested)
    assert set(table["gene"]) <= set(pbmc.raw.var_names)
    assert (table["pvals_adj"].between(0, 1)).all() and np.isfinite(table["score"]).all()
    # scanpy's plots read the stored ranking
    sc.pl.rank_genes_groups_dotplot(pbmc, n_genes=2, show=False)


# pbmc68k_reduced's X is scaled (negative values): scanpy's fold changes of its means are undefined
@pytest.mark.filterwarnings("ignore:invalid value encountered in log2:RuntimeWarning")
def test_marker_table_without_raw_uses_x(pbmc):
    del pbmc.raw
    table = dagcl.tl.marker_table(pbmc, key="louvain", n_genes=3, method="t-test")
    assert pbmc.uns["rank_genes_groups"]["params"]["use_raw"] is False
    assert pbmc.uns["rank_genes_groups"]["params"]["method"] == "t-test"
    assert set(table["gene"]) <= set(pbmc.var_names)
    with pytest.raises(ValueError, match=r"adata.raw = adata"):
        dagcl.tl.marker_table(pbmc, key="louvain", use_raw=True)


def test_t_test_above_the_wilcoxon_limit(pbmc, monkeypatch):
    monkeypatch.setattr(_markers, "WILCOXON_MAX_CELLS", pbmc.n_obs - 1)
    dagcl.tl.marker_table(pbmc, key="louvain", n_genes=2)
    assert pbmc.uns["rank_genes_groups"]["params"]["method"] == "t-test"


def test_single_cell_clusters_are_left_out(pbmc, monkeypatch):
    warnings = []
    monkeypatch.setattr(_markers.logg, "warning", lambda message, **kwargs: warnings.append(message))
    labels = pbmc.obs["louvain"].astype(str).to_numpy().copy()
    labels[0] = "lonely"
    pbmc.obs["groups"] = labels  # a string column: the table works on its categories
    table = dagcl.tl.marker_table(pbmc, key="groups", n_genes=2)
    assert "lonely" not in set(table["cluster"])
    assert any("no marker genes for cluster(s) lonely of obs['groups']" in message for message in warnings)
    assert pbmc.obs["groups"].dtype == object  # obs left as it was


def test_failures_leave_adata_unchanged(pbmc, monkeypatch):
    pbmc.obs["one"] = pd.Categorical(["a"] * pbmc.n_obs)
    before = state(pbmc)
    with pytest.raises(KeyError, match="run `dagcl.tl.cluster` first"):
        dagcl.tl.marker_table(pbmc)
    with pytest.raises(ValueError, match="at least two clusters"):
        dagcl.tl.marker_table(pbmc, key="one")
    with pytest.raises(ValueError, match="Unknown method 'logreg'"):
        dagcl.tl.marker_table(pbmc, key="louvain", method="logreg")
    with pytest.raises(ValueError, match="positive integer"):
        dagcl.tl.marker_table(pbmc, key="louvain", n_genes=0)

    def broken(adata, *args, **kwargs):  # scanpy writes its entry before it has finished
        adata.uns["rank_genes_groups"] = {"params": {}}
        raise MemoryError("out of memory")

    stored = pbmc.uns["rank_genes_groups"]
    monkeypatch.setattr(sc.tl, "rank_genes_groups", broken)
    with pytest.raises(MemoryError):
        dagcl.tl.marker_table(pbmc, key="louvain")
    assert state(pbmc) == before and pbmc.uns["rank_genes_groups"] is stored
