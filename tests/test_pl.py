"""Plots: they render real runs, show what they claim, and never touch the AnnData."""

import anndata as ad
import matplotlib.colors
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
from conftest import SHORT
from matplotlib.collections import PathCollection, PolyCollection
from matplotlib.figure import Figure

import dagcl_scverse as dagcl
from dagcl_scverse.model.schedules import SCHEDULES
from dagcl_scverse.pl._utils import cluster_colors

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


@pytest.mark.parametrize("plot", [dagcl.pl.curriculum, dagcl.pl.stages, dagcl.pl.confidence])
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


#: confidences per cluster of a hand-made run: 3 of 10, none of 4, all 5 and none of 3 cells below 0.5;
#: cluster "3" holds one repeated value (no density to draw)
CONFIDENCES = {
    "0": [0.35, 0.4, 0.45, 0.55, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0],
    "1": [0.5, 0.6, 0.75, 0.99],
    "2": [0.26, 0.3, 0.38, 0.42, 0.49],
    "3": [0.9, 0.9, 0.9],
}


def hand_made_run(key="dagcl"):
    """An AnnData holding only what `dagcl.tl.cluster` writes for the confidence plot, built by hand."""
    k = len(CONFIDENCES)
    labels, rows = [], []
    for column, (cluster, values) in enumerate(CONFIDENCES.items()):
        for value in values:
            row = np.full(k, (1 - value) / (k - 1))
            row[column] = value
            labels.append(cluster)
            rows.append(row)
    # cells of the clusters interleaved, so that nothing depends on the order of obs
    order = np.random.default_rng(0).permutation(len(labels))
    obs = pd.DataFrame(
        {key: pd.Categorical(np.asarray(labels)[order], categories=list(CONFIDENCES))},
        index=[f"cell{i}" for i in range(len(labels))],
    )
    return ad.AnnData(obs=obs, obsm={f"{key}_proba": np.asarray(rows)[order]})


def share_texts(ax):
    """The texts above the clusters, left to right."""
    return [text.get_text() for text in sorted(ax.texts, key=lambda text: text.get_position()[0])]


def test_confidence_writes_the_share_below_the_threshold_per_cluster():
    adata = hand_made_run()
    before = snapshot(adata)
    fig = dagcl.pl.confidence(adata, show=False)
    assert isinstance(fig, Figure)
    assert snapshot(adata) == before
    (ax,) = fig.axes
    assert share_texts(ax) == ["30 %", "0 %", "100 %", "0 %"]
    assert [tick.get_text() for tick in ax.get_xticklabels()] == list(CONFIDENCES)
    dashed = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert len(dashed) == 1 and set(dashed[0].get_ydata()) == {0.5}
    # violins in the clusters' colours; the single repeated value as points
    colors = cluster_colors(adata, "dagcl", len(CONFIDENCES))
    violins = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert [tuple(v.get_facecolor()[0][:3]) for v in violins] == [matplotlib.colors.to_rgb(c) for c in colors[:3]]
    (points,) = scatters(ax)
    np.testing.assert_allclose(points.get_offsets(), [[3, 0.9]] * 3)

    fig = dagcl.pl.confidence(adata, threshold=0.9, show=False)
    assert share_texts(fig.axes[0]) == ["70 %", "75 %", "100 %", "0 %"]
    assert {0.9} == set(next(line for line in fig.axes[0].lines if line.get_linestyle() == "--").get_ydata())


def test_confidence_of_a_real_run_matches_obs(pancreas_trained):
    fig = dagcl.pl.confidence(pancreas_trained, threshold=0.7, show=False)
    below = (pancreas_trained.obs["dagcl_confidence"] < 0.7).groupby(pancreas_trained.obs["dagcl"], observed=True)
    expected = [f"{100 * share:.0f} %" if not 0 < share < 0.005 else "<1 %" for share in below.mean()]
    assert share_texts(fig.axes[0]) == expected


def test_confidence_draws_into_given_axes_and_other_key():
    adata = hand_made_run(key="other")
    fig, (left, right) = plt.subplots(1, 2)
    assert dagcl.pl.confidence(adata, "other", ax=right, show=False) is fig
    assert not left.texts and not left.collections and len(right.texts) == len(CONFIDENCES)
    with pytest.raises(TypeError, match="Axes"):
        dagcl.pl.confidence(adata, "other", ax=fig, show=False)


def test_confidence_needs_labels_and_soft_assignments():
    adata = hand_made_run()
    del adata.obsm["dagcl_proba"]
    with pytest.raises(KeyError, match=r"obsm\['dagcl_proba'\] missing; run `dagcl.tl.cluster` first"):
        dagcl.pl.confidence(adata, show=False)
    adata = hand_made_run()
    del adata.obs["dagcl"]
    with pytest.raises(KeyError, match=r"obs\['dagcl'\] missing; run `dagcl.tl.cluster` first"):
        dagcl.pl.confidence(adata, show=False)
    with pytest.raises(KeyError, match=RUN_FIRST):
        dagcl.pl.confidence(hand_made_run(), key="dc", show=False)
    for threshold in (-0.1, 1.5, "0.5", True):
        with pytest.raises(ValueError, match="between 0 and 1"):
            dagcl.pl.confidence(hand_made_run(), threshold=threshold, show=False)


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
