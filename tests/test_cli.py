"""The `dagcl` command on a tiny data set (the console script through subprocess, other paths in-process)."""

import re
import subprocess
import sys
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest

import dagcl_scverse as dagcl
from dagcl_scverse.cli import main

METRICS = re.compile(r"^ACC (\d\.\d{3})  NMI (\d\.\d{3})  ARI (\d\.\d{3})  \((\d+) clusters, (\d+) types\)$", re.M)


def dagcl_command(*args):
    """Run the installed console script (or the module when it is not on this interpreter's path)."""
    script = Path(sys.executable).parent / "dagcl"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "dagcl_scverse.cli"]
    return subprocess.run([*command, *map(str, args)], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def tiny_h5(tmp_path_factory):
    """~150 cells of the four largest shipped types, stored like the literature: dense int
    counts, 1-based label codes as floats."""
    adata = dagcl.datasets.mouse_pancreas()
    types = adata.obs["cell_type"].value_counts().index[:4]
    rng = np.random.default_rng(0)
    keep = np.concatenate([rng.choice(np.flatnonzero(adata.obs["cell_type"] == t), 38, replace=False) for t in types])
    counts = adata.layers["counts"][np.sort(keep)].toarray().astype(np.int32)
    codes = adata.obs["cell_type"].cat.codes.to_numpy()[np.sort(keep)] + 1.0
    path = tmp_path_factory.mktemp("cli") / "tiny.h5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("X", data=counts)
        handle.create_dataset("Y", data=codes)
    return path


@pytest.fixture(scope="module")
def trained(tiny_h5):
    """`dagcl train` on the literature h5, with figures; returns (completed process, out folder)."""
    folder = tiny_h5.parent
    done = dagcl_command(
        "train", "--data", tiny_h5, "--n-clusters", "4", "--epochs", "5", "--seed", "0",
        "--out", folder / "result" / "r.h5ad", "--figures", folder / "figures",
    )  # fmt: skip
    return done, folder


def test_train_on_literature_h5(trained):
    done, folder = trained
    assert done.returncode == 0, done.stderr
    assert "Standard pipeline" in done.stdout
    assert "DAGCL" in done.stderr  # the progress bar
    result = ad.read_h5ad(folder / "result" / "r.h5ad")
    assert result.n_obs == 152
    params = result.uns["dagcl"]["params"]
    assert (params["pretrain_epochs"], params["epochs"], params["n_clusters"]) == (5, 5, 4)
    assert not params["n_clusters_estimated"]
    assert "connectivities" in result.obsp and "counts" in result.layers

    # the printed scores are those of the written labels
    scores = dagcl.tl.evaluate(result, key="dagcl", truth="cell_type")
    printed = METRICS.search(done.stdout)
    assert printed is not None, done.stdout
    acc, nmi, ari, n_clusters, n_types = printed.groups()
    assert float(acc) == pytest.approx(scores["acc"], abs=5e-4)
    assert float(nmi) == pytest.approx(scores["nmi"], abs=5e-4)
    assert float(ari) == pytest.approx(scores["ari"], abs=5e-4)
    assert (int(n_clusters), int(n_types)) == (scores["n_clusters"], 4)

    assert (folder / "figures" / "umap.png").stat().st_size > 0
    assert (folder / "figures" / "curriculum.png").exists() == hasattr(dagcl.pl, "curriculum")


def test_train_writes_marker_genes_next_to_out(trained):
    done, folder = trained
    assert done.returncode == 0, done.stderr
    result = ad.read_h5ad(folder / "result" / "r.h5ad")
    assert result.raw is not None and result.raw.n_vars > result.n_vars  # all genes, kept before the HVG subset
    markers = pd.read_csv(folder / "result" / "r_markers.csv", dtype={"cluster": str})
    assert list(markers.columns) == ["cluster", "rank", "gene", "score", "logfoldchange", "pvals_adj"]
    # a cluster of a single cell cannot be tested (marker_table warns and leaves it out)
    sizes = result.obs["dagcl"].value_counts()
    clusters = [name for name in result.obs["dagcl"].cat.categories if sizes[name] > 1]
    assert list(markers["cluster"].unique()) == clusters
    assert markers["rank"].tolist() == list(range(1, 11)) * len(clusters)
    assert set(markers["gene"]) <= set(result.raw.var_names)
    assert result.uns["rank_genes_groups"]["params"]["groupby"] == "dagcl"
    # the top 3 per cluster, one line each, are those of the table
    printed = re.findall(r"^  cluster (\S+): (.+)$", done.stdout, re.M)
    top = markers[markers["rank"] <= 3].groupby("cluster", sort=False)["gene"].agg(", ".join)
    assert printed == list(top.items())
    assert f"Wrote {folder / 'result' / 'r_markers.csv'}" in done.stdout


def test_train_on_h5ad_with_graph_uses_it(trained, capsys):
    # in-process: the same code path as the console script, without another interpreter start
    _, folder = trained
    status = main(
        ["train", "--data", str(folder / "result" / "r.h5ad"), "--pretrain-epochs", "3", "--epochs", "4",
         "--labels-key", "cell_type", "--out", str(folder / "again.h5ad"), "--no-markers"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert status == 0
    assert "neighbour graph stored in the file" in out
    assert "Marker genes" not in out and not (folder / "again_markers.csv").exists()
    assert METRICS.search(out) is not None
    again = ad.read_h5ad(folder / "again.h5ad")
    assert "rank_genes_groups" not in again.uns  # the input's ranking was of its earlier labels
    params = again.uns["dagcl"]["params"]
    assert (params["pretrain_epochs"], params["epochs"]) == (3, 4)
    assert params["n_clusters_estimated"]  # never taken from the 4 label types


def test_train_in_mini_batches(trained, capsys):
    _, folder = trained
    status = main(
        ["train", "--data", str(folder / "result" / "r.h5ad"), "--pretrain-epochs", "2", "--epochs", "2",
         "--n-clusters", "4", "--batch-size", "64", "--out", str(folder / "batches.h5ad"), "--no-markers"]
    )  # fmt: skip
    capsys.readouterr()
    assert status == 0
    params = ad.read_h5ad(folder / "batches.h5ad").uns["dagcl"]["params"]
    # 152 cells in batches of at most 64 seeds: an epoch is three steps
    assert params["steps_per_epoch"] == 3
    assert params["batch_size"] <= 64


def test_missing_file_is_one_line_exit_2(tmp_path):
    done = dagcl_command("train", "--data", tmp_path / "absent.h5")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"dagcl train: error: no such file: '{tmp_path / 'absent.h5'}'"]
    assert not (tmp_path / "absent_dagcl.h5ad").exists()


# In-process checks of errors raised before training (no subprocess needed).


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--epochs", "0"], "--epochs: expected a positive integer"),
        (["--batch-size", "0"], "--batch-size: expected a positive integer"),
        (["--n-clusters", "1"], "--n-clusters: expected at least 2"),
        (["--lr", "-1"], "--lr: expected a positive number"),
        (["--schedule", "cubic"], "--schedule: invalid choice"),
        (["--device", "tpu"], "--device: invalid choice"),
    ],
)
def test_bad_flag_values(tiny_h5, capsys, flags, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--data", str(tiny_h5), *flags])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1


def user_error(capsys, argv):
    status = main(argv)
    err = capsys.readouterr().err
    assert status == 2
    assert len(err.strip().splitlines()) == 1, err
    return err


def test_unreadable_file(tmp_path, capsys):
    path = tmp_path / "notes.h5"
    path.write_text("not hdf5")
    assert "not an HDF5 file" in user_error(capsys, ["train", "--data", str(path)])


def test_h5ad_without_counts_or_graph(tmp_path, capsys):
    path = tmp_path / "scaled.h5ad"
    ad.AnnData(np.random.default_rng(0).normal(size=(20, 5)).astype(np.float32)).write_h5ad(path)
    assert "no raw counts" in user_error(capsys, ["train", "--data", str(path), "--out", str(tmp_path / "o.h5ad")])
    assert not (tmp_path / "o.h5ad").exists()


def test_missing_labels_key(tiny_h5, tmp_path, capsys):
    argv = ["train", "--data", str(tiny_h5), "--labels-key", "celltype", "--out", str(tmp_path / "o.h5ad")]
    err = user_error(capsys, argv)
    assert "--labels-key 'celltype' is not a column of obs (found: cell_type)" in err


def test_help_states_pipeline_and_protocol(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "normalize_total(target_sum=1e4)" in text and "neighbors(n_neighbors=15)" in text
    assert "passes the true number of cell types explicitly" in text


def test_no_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    assert "choose a command" in capsys.readouterr().err


# `dagcl ingest`, in-process, on a reference written by a short in-process `tl.cluster` run.

INGEST_SUMMARY = re.compile(
    r"^Mapped (\d+) cells onto the (\d+) clusters of .+: (\d+\.\d)% with confidence < 0\.5; against cell_type: ACC ",
    re.M,
)


def test_ingest_raw_counts_h5_onto_reference(pancreas_trained, tmp_path, capsys):
    reference = tmp_path / "ref.h5ad"
    pancreas_trained.write_h5ad(reference)
    # 150 of the reference's own cells as raw counts in the literature's h5 layout: the genes
    # are named gene_<column>, so each shipped gene goes to its own column
    raw = dagcl.datasets.mouse_pancreas()
    cells = np.random.default_rng(1).choice(raw.n_obs, 150, replace=False)
    columns = np.array([int(name.removeprefix("gene_")) for name in raw.var_names])
    counts = np.zeros((cells.size, columns.max() + 1), dtype=np.int32)
    counts[:, columns] = raw.layers["counts"][cells].toarray()
    query = tmp_path / "query.h5"
    with h5py.File(query, "w") as handle:
        handle.create_dataset("X", data=counts)
        handle.create_dataset("Y", data=raw.obs["cell_type"].cat.codes.to_numpy()[cells] + 1.0)
    out = tmp_path / "mapped.h5ad"
    status = main(["ingest", "--ref", str(reference), "--query", str(query), "--out", str(out)])
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert "normalize_total(target_sum=10000), log1p" in printed
    summary = INGEST_SUMMARY.search(printed)
    assert summary is not None, printed
    assert summary.group(1, 2) == ("150", "13")
    mapped = ad.read_h5ad(out)
    assert mapped.obs["dagcl"].cat.categories.equals(pancreas_trained.obs["dagcl"].cat.categories)
    assert float(summary.group(3)) == pytest.approx(100 * np.mean(mapped.obs["dagcl_confidence"] < 0.5), abs=0.05)
    # normalised as the reference was, the reference's own cells keep their labels
    own = pancreas_trained.obs["dagcl"].to_numpy()[cells]
    assert np.mean(mapped.obs["dagcl"].to_numpy() == own) >= 0.98
    assert "counts" in mapped.layers


def test_ingest_reference_without_model(pancreas, tiny_h5, tmp_path, capsys):
    reference = tmp_path / "plain.h5ad"
    pancreas.write_h5ad(reference)
    argv = ["ingest", "--ref", str(reference), "--query", str(tiny_h5), "--out", str(tmp_path / "o.h5ad")]
    assert "dagcl.tl.cluster" in user_error(capsys, argv)
    assert not (tmp_path / "o.h5ad").exists()
