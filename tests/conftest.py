"""Shared fixtures: the shipped dataset through the standard pipeline, and short DAGCL runs."""

import matplotlib
import pytest
import scanpy as sc
import torch

import dagcl_scverse as dagcl

matplotlib.use("Agg")
# The models under test are small: one thread is as fast, and on a shared machine two threads
# that oversubscribe the cores run an order of magnitude slower.
torch.set_num_threads(1)

#: epochs for runs whose outcome, not accuracy, is under test
SHORT = {"pretrain_epochs": 20, "epochs": 30, "progress_bar": False}


def standard_pipeline(adata):
    """DESIGN.md's standard preprocessing, in place."""
    sc.pp.filter_genes(adata, min_counts=1)
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    sc.pp.highly_variable_genes(adata, n_top_genes=2000, subset=True)
    sc.pp.pca(adata, n_comps=50)
    sc.pp.neighbors(adata, n_neighbors=15)
    return adata


@pytest.fixture(scope="session")
def _pancreas_pp():
    return standard_pipeline(dagcl.datasets.mouse_pancreas())


@pytest.fixture
def pancreas(_pancreas_pp):
    """A fresh copy of the preprocessed shipped dataset (822 cells, graph, PCA)."""
    return _pancreas_pp.copy()


@pytest.fixture(scope="session")
def _pancreas_trained(_pancreas_pp):
    return dagcl.tl.cluster(_pancreas_pp, n_clusters=13, copy=True, **SHORT)


@pytest.fixture
def pancreas_trained(_pancreas_trained):
    """A copy of the preprocessed shipped dataset after a short DAGCL run (key 'dagcl')."""
    return _pancreas_trained.copy()
