"""Reproducibility: same seed, same result on CPU; what ran is recorded; `deterministic=True` on CUDA."""

import os
from importlib import metadata

import numpy as np
import pytest
import torch

import dagcl_scverse as dagcl
from dagcl_scverse.model.determinism import deterministic_algorithms

#: short CPU runs on the 50 principal components (fast); one test also covers gene features
RUN = {
    "pretrain_epochs": 3,
    "epochs": 5,
    "stages": 2,
    "use_rep": "X_pca",
    "progress_bar": False,
    "accelerator": "cpu",
    "copy": True,
}


def assert_same_run(first, second, key="dagcl"):
    np.testing.assert_array_equal(first.obs[key].to_numpy(), second.obs[key].to_numpy())
    np.testing.assert_array_equal(first.obsm[f"X_{key}"], second.obsm[f"X_{key}"])
    np.testing.assert_array_equal(first.obsm[f"{key}_proba"], second.obsm[f"{key}_proba"])
    for name, values in first.uns[key]["history"].items():
        np.testing.assert_array_equal(values, second.uns[key]["history"][name], err_msg=name)
    for name, values in first.uns[key]["stages"].items():
        np.testing.assert_array_equal(values, second.uns[key]["stages"][name], err_msg=name)


@pytest.mark.parametrize(
    ("n_clusters", "use_rep"), [(6, "X_pca"), (None, "X_pca"), (6, None)], ids=["k=6", "k=None", "genes"]
)
def test_same_seed_twice_in_one_process_gives_identical_results(pancreas, n_clusters, use_rep):
    run = {**RUN, "n_clusters": n_clusters, "use_rep": use_rep}
    first = dagcl.tl.cluster(pancreas, random_state=3, **run)
    dagcl.tl.cluster(pancreas, random_state=4, **run)  # a run in between must not matter
    second = dagcl.tl.cluster(pancreas, random_state=3, **run)
    assert_same_run(first, second)
    assert first.uns["dagcl"]["params"]["n_clusters_estimated"] is (n_clusters is None)


def test_different_seed_gives_a_different_embedding(pancreas):
    first = dagcl.tl.cluster(pancreas, n_clusters=6, random_state=0, **RUN)
    second = dagcl.tl.cluster(pancreas, n_clusters=6, random_state=1, **RUN)
    assert not np.allclose(first.obsm["X_dagcl"], second.obsm["X_dagcl"])


def test_global_torch_random_state_is_left_alone(pancreas):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    dagcl.tl.cluster(pancreas, n_clusters=6, **RUN)
    torch.testing.assert_close(torch.rand(3), expected)


def test_params_record_versions_device_and_seed(pancreas_trained):
    params = pancreas_trained.uns["dagcl"]["params"]
    assert params["versions"] == {
        "dagcl_scverse": dagcl.__version__,
        "torch": metadata.version("torch"),
        "torch_geometric": metadata.version("torch-geometric"),
        "scanpy": metadata.version("scanpy"),
        "anndata": metadata.version("anndata"),
    }
    assert params["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    assert params["random_state"] == 0
    assert params["deterministic"] is False


def test_deterministic_on_cpu_is_recorded_and_changes_nothing(pancreas):
    mode_before = torch.are_deterministic_algorithms_enabled()
    strict = dagcl.tl.cluster(pancreas, n_clusters=6, deterministic=True, **RUN)
    plain = dagcl.tl.cluster(pancreas, n_clusters=6, deterministic=False, **RUN)
    assert strict.uns["dagcl"]["params"]["deterministic"] is True
    assert_same_run(strict, plain)
    assert torch.are_deterministic_algorithms_enabled() is mode_before


def _torch_mode():
    return torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()


@pytest.fixture
def restore_torch_mode():
    mode = _torch_mode()
    yield
    torch.use_deterministic_algorithms(mode[0], warn_only=mode[1])


def test_deterministic_mode_on_cuda_is_on_during_training_only(pancreas, monkeypatch, restore_torch_mode):
    seen = {}

    class Stop(Exception):
        pass

    def spy_train(*args, **kwargs):
        seen["mode"] = _torch_mode()
        seen["cublas"] = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
        raise Stop  # a GPU run cannot happen here; what matters is the setting while training

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    monkeypatch.setattr("dagcl_scverse.tl._cluster.resolve_device", lambda accelerator: torch.device("cuda"))
    monkeypatch.setattr("dagcl_scverse.tl._cluster.train", spy_train)
    before = _torch_mode()
    with pytest.raises(Stop):
        dagcl.tl.cluster(pancreas, n_clusters=6, deterministic=True, **RUN)
    assert seen == {"mode": (True, True), "cublas": ":4096:8"}
    assert _torch_mode() == before
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ


def test_deterministic_context_restores_a_user_setting_after_an_interrupt(monkeypatch, restore_torch_mode):
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")
    torch.use_deterministic_algorithms(False)
    with pytest.raises(KeyboardInterrupt):
        with deterministic_algorithms(torch.device("cuda"), True):
            assert _torch_mode() == (True, True)
            raise KeyboardInterrupt
    assert _torch_mode() == (False, False)
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"


@pytest.mark.parametrize(("device", "enabled"), [("cpu", True), ("cuda", False)])
def test_deterministic_context_is_a_no_op_unless_asked_on_cuda(device, enabled, restore_torch_mode):
    torch.use_deterministic_algorithms(False)
    with deterministic_algorithms(torch.device(device), enabled):
        assert _torch_mode() == (False, False)
