"""Plots: they render real runs, show what they claim, and never touch the AnnData."""

import anndata as ad
import matplotlib.pyplot as plt
import numpy as np
import pytest
import scanpy as sc
from conftest import SHORT
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure

import dagcl_scverse as dagcl
from dagcl_scverse.model.schedules import SCHEDULES

RUN_FIRST = "run `dagcl.tl.cluster` first"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def labelled_lines(ax):
    """The data lines of an axes (markers such as the phase boundary carry no label)."""
    return {line.get_label(): line for line in ax.lines if not line.get_label().startswith("_")}


def scatters(ax):
    return [c for c in ax.collections if isinstance(c, PathCollection)]


def data_axes(fig):
    """Axes that show data: labelled lines, stacked areas or scatters with points."""
    return [ax for ax in fig.axes if labelled_lines(ax) or any(len(c.get_paths()) for c in ax.collections)]


def snapshot(adata):
    """Everything a plot could add to or remove from an AnnData."""
    run = adata.uns.get("dagcl", {})
    return (
        sorted(adata.uns),
        sorted(run),
        sorted(run.get("history", {})),
        sorted(run.get("stages", {})),
        sorted(adata.obsm),
        sorted(adata.obsp),
        list(adata.obs.columns),
        adata.shape,
    )


def test_curriculum_panels_show_the_history(pancreas_trained):
    history = pancreas_trained.uns["dagcl"]["history"]
    before = snapshot(pancreas_trained)
    fig = dagcl.pl.curriculum(pancreas_trained, show=False)
    assert isinstance(fig, Figure)
    assert snapshot(pancreas_trained) == before
    axes = data_axes(fig)
    assert len(axes) == 5
    losses, schedules, assignment, change, sizes = axes
    assert losses.get_yscale() == "log"
    assert len(labelled_lines(losses)) == 5
    gamma = next(line for label, line in labelled_lines(schedules).items() if label.startswith("KL weight"))
    np.testing.assert_allclose(gamma.get_ydata(), history["gamma"], equal_nan=True)
    assert len(labelled_lines(assignment)) == 2 and len(labelled_lines(change)) == 1
    assert len(sizes.collections) == history["cluster_sizes"].shape[1]
    # one shared epoch axis
    assert {ax.get_xlim() for ax in axes} == {axes[-1].get_xlim()}
    assert axes[-1].get_xlabel() == "epoch"


def test_curriculum_survives_non_positive_losses(pancreas_trained):
    history = pancreas_trained.uns["dagcl"]["history"]
    history["loss_decorrelation"][:3] = [0.0, -1.0, np.nan]
    fig = dagcl.pl.curriculum(pancreas_trained, show=False)
    decorrelation = labelled_lines(data_axes(fig)[0])["decorrelation"]
    assert np.isnan(decorrelation.get_ydata()[:3]).all()
    assert np.isfinite(decorrelation.get_ydata()[3:]).all()


def test_curriculum_after_h5ad_round_trip(pancreas_trained, tmp_path):
    pancreas_trained.write_h5ad(tmp_path / "run.h5ad")
    fig = dagcl.pl.curriculum(ad.read_h5ad(tmp_path / "run.h5ad"), show=False)
    assert len(data_axes(fig)) == 5


def test_stages_umap_colours_cells_by_labels_of_the_moment(pancreas_trained):
    stages = pancreas_trained.uns["dagcl"]["stages"]
    before = snapshot(pancreas_trained)
    fig = dagcl.pl.stages(pancreas_trained, show=False)
    assert isinstance(fig, Figure)
    assert snapshot(pancreas_trained) == before
    axes = data_axes(fig)
    assert len(axes) == len(stages["progress"]) == 3
    for ax, labels, name in zip(axes, stages["labels"], ("early", "middle", "late"), strict=True):
        (points,) = scatters(ax)
        assert len(points.get_offsets()) == len(stages["indices"])
        assert len(np.unique(points.get_facecolors(), axis=0)) == len(np.unique(labels))
        assert ax.get_title().startswith(name) and ax.get_xlabel() == "UMAP1"


def test_stages_pca_and_other_key(pancreas):
    dagcl.tl.cluster(pancreas, 5, key_added="other", stages=2, **SHORT)
    before = snapshot(pancreas)
    fig = dagcl.pl.stages(pancreas, "other", basis="pca", show=False)
    assert snapshot(pancreas) == before
    axes = data_axes(fig)
    assert len(axes) == 2 and axes[0].get_xlabel() == "PC1"
    fig = dagcl.pl.curriculum(pancreas, key="other", show=False)
    assert len(fig.axes[4].collections) == 5  # one band per cluster
    with pytest.raises(KeyError, match=RUN_FIRST):
        dagcl.pl.curriculum(pancreas)


@pytest.mark.parametrize("plot", [dagcl.pl.curriculum, dagcl.pl.stages])
def test_plots_need_a_run(plot, pancreas):
    before = snapshot(pancreas)
    with pytest.raises(KeyError, match=RUN_FIRST):
        plot(pancreas, show=False)
    with pytest.raises(KeyError, match=RUN_FIRST):
        plot(pancreas, key="missing", show=False)
    assert snapshot(pancreas) == before
    with pytest.raises(TypeError, match="AnnData"):
        plot(pancreas.X, show=False)


def test_stages_without_snapshots_says_how_to_get_them(pancreas_trained):
    del pancreas_trained.uns["dagcl"]["stages"]
    with pytest.raises(KeyError, match="stages"):
        dagcl.pl.stages(pancreas_trained, show=False)


def test_stages_rejects_unknown_basis(pancreas_trained):
    with pytest.raises(ValueError, match="umap, pca"):
        dagcl.pl.stages(pancreas_trained, basis="tsne", show=False)


def test_schedules_draws_every_schedule():
    fig = dagcl.pl.schedules(show=False)
    (ax,) = fig.axes
    lines = labelled_lines(ax)
    assert len(lines) == len(SCHEDULES)
    convex = lines["convex (default)"]
    np.testing.assert_allclose(convex.get_ydata(), np.asarray(convex.get_xdata()) ** 2)
    assert ax.get_xlabel() and ax.get_ylabel()


def test_schedules_draws_into_given_axes():
    fig, (left, right) = plt.subplots(1, 2)
    assert dagcl.pl.schedules(ax=right, show=False) is fig
    assert not left.lines and len(labelled_lines(right)) == len(SCHEDULES)
    with pytest.raises(TypeError, match="Axes"):
        dagcl.pl.schedules(ax=fig, show=False)


@pytest.fixture
def autoshow():
    """Set ``sc.settings.autoshow`` for one test (a class property: monkeypatch cannot undo it)."""
    original = sc.settings.autoshow
    yield lambda value: setattr(sc.settings, "autoshow", value)
    sc.settings.autoshow = original


def test_show_follows_scanpy(monkeypatch, autoshow):
    shown = []
    monkeypatch.setattr(plt, "show", lambda *a, **k: shown.append(True))
    autoshow(False)
    assert isinstance(dagcl.pl.schedules(), Figure) and not shown
    autoshow(True)
    assert dagcl.pl.schedules() is None and shown == [True]
    assert isinstance(dagcl.pl.schedules(show=False), Figure) and shown == [True]
