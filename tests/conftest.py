"""Shared fixtures: the shipped dataset through the standard pipeline, and short DAGCL runs."""

import matplotlib
import pytest
import torch

import dagcl_scverse as dagcl
from dagcl_scverse.cli import standard_pipeline

matplotlib.use("Agg")
# The models under test are small: one thread is as fast, and on a shared machine two threads
# that oversubscribe the cores run an order of magnitude slower.
torch.set_num_threads(1)

#: epochs for runs whose outcome, not accuracy, is under test
SHORT = {"pretrain_epochs": 20, "epochs": 30, "progress_bar": False}


@pytest.fixture(scope="session")
def _pancreas_pp():
    adata = dagcl.datasets.mouse_pancreas()
    standard_pipeline(adata)
    return adata


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
