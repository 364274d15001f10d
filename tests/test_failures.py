"""Failures during training: a clear error (or the user's interrupt, unchanged), and the AnnData untouched."""

import warnings

import pytest
import torch
from anndata import AnnData

import dagcl_scverse as dagcl
from dagcl_scverse.model.trainer import TrainingDivergedError
from dagcl_scverse.tl._cluster import OUT_OF_MEMORY_ERROR

with warnings.catch_warnings():  # anndata's helpers use a `gpu` mark this project does not register
    warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
    from anndata.tests.helpers import assert_equal

#: short, but long enough that a failure at step 3 happens mid-training
RUN = {"n_clusters": 5, "pretrain_epochs": 4, "epochs": 6, "stages": 2, "progress_bar": False}


def assert_untouched(adata: AnnData, before: AnnData) -> None:
    """Same keys and values in every slot as the snapshot taken before the call."""
    for slot in ("obs", "obsm", "uns", "obsp", "layers", "var", "varm"):
        assert list(getattr(adata, slot).keys()) == list(getattr(before, slot).keys()), slot
    assert_equal(adata, before)


def fail_at_backward(monkeypatch, call: int, error: BaseException) -> dict:
    """Let training run normally until its ``call``-th backward pass, which raises ``error``."""
    original = torch.Tensor.backward
    calls = {"n": 0}

    def backward(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == call:
            raise error
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "backward", backward)
    return calls


def test_loss_overflow_stops_with_advice(pancreas):
    pancreas.obsm["X_huge"] = pancreas.obsm["X_pca"] * 1e30
    before = pancreas.copy()
    with pytest.raises(TrainingDivergedError, match=r"lower `lr`.*log-normalised") as info:
        dagcl.tl.cluster(pancreas, use_rep="X_huge", **RUN)
    assert isinstance(info.value, FloatingPointError)
    assert_untouched(pancreas, before)


def test_loss_turning_nan_mid_training_stops_with_advice(pancreas_trained, monkeypatch):
    # The KL term only exists in self-training, so pre-training has run by the time it breaks.
    monkeypatch.setattr("dagcl_scverse.model.losses.kl_divergence", lambda p, q, mask=None: torch.tensor(float("nan")))
    before = pancreas_trained.copy()
    with pytest.raises(TrainingDivergedError, match=rf"nan at epoch {RUN['pretrain_epochs']}\. Try a lower `lr`"):
        dagcl.tl.cluster(pancreas_trained, **RUN)
    # the previous run's results are still there, unchanged
    assert_untouched(pancreas_trained, before)


def test_keyboard_interrupt_propagates_unchanged(pancreas_trained, monkeypatch):
    interrupt = KeyboardInterrupt()
    calls = fail_at_backward(monkeypatch, 3, interrupt)
    before = pancreas_trained.copy()
    with pytest.raises(KeyboardInterrupt) as info:
        dagcl.tl.cluster(pancreas_trained, **RUN)
    assert info.value is interrupt
    assert calls["n"] == 3
    assert_untouched(pancreas_trained, before)


def test_out_of_memory_is_reraised_with_advice(pancreas, monkeypatch):
    original = OUT_OF_MEMORY_ERROR("DefaultCPUAllocator: not enough memory: you tried to allocate 80 GB.")
    fail_at_backward(monkeypatch, 3, original)
    before = pancreas.copy()
    with pytest.raises(OUT_OF_MEMORY_ERROR) as info:
        dagcl.tl.cluster(pancreas, **RUN)
    message = str(info.value)
    assert "CPU memory" in message and "822 cells x 2000 features" in message
    assert "n_top_genes" in message and "use_rep='X_pca'" in message
    assert "accelerator='cpu'" not in message  # already on the CPU
    assert info.value.__cause__ is original
    assert_untouched(pancreas, before)


def test_cuda_out_of_memory_suggests_the_cpu(pancreas, monkeypatch):
    original = OUT_OF_MEMORY_ERROR("CUDA out of memory. Tried to allocate 20.00 GiB.")

    def train_out_of_memory(*args, **kwargs):
        raise original

    monkeypatch.setattr("dagcl_scverse.tl._cluster.resolve_device", lambda accelerator: torch.device("cuda"))
    monkeypatch.setattr("dagcl_scverse.tl._cluster.train", train_out_of_memory)
    before = pancreas.copy()
    with pytest.raises(OUT_OF_MEMORY_ERROR, match=r"CUDA memory.*use_rep='X_pca'.*accelerator='cpu'") as info:
        dagcl.tl.cluster(pancreas, **RUN)
    assert info.value.__cause__ is original
    assert_untouched(pancreas, before)


def test_unexpected_error_propagates_unchanged(pancreas, monkeypatch):
    error = RuntimeError("something unforeseen")
    fail_at_backward(monkeypatch, 3, error)
    before = pancreas.copy()
    with pytest.raises(RuntimeError) as info:
        dagcl.tl.cluster(pancreas, **RUN)
    assert info.value is error
    assert_untouched(pancreas, before)


def test_failure_on_a_view_leaves_view_and_parent_untouched(pancreas, monkeypatch):
    fail_at_backward(monkeypatch, 3, KeyboardInterrupt())
    before = pancreas.copy()
    view = pancreas[: pancreas.n_obs // 2]
    with pytest.raises(KeyboardInterrupt):
        dagcl.tl.cluster(view, **RUN)
    assert view.is_view
    assert_untouched(pancreas, before)


def test_failure_with_copy_leaves_adata_untouched(pancreas, monkeypatch):
    fail_at_backward(monkeypatch, 3, KeyboardInterrupt())
    before = pancreas.copy()
    with pytest.raises(KeyboardInterrupt):
        dagcl.tl.cluster(pancreas, copy=True, **RUN)
    assert_untouched(pancreas, before)
