"""Data-parallel training with torch.distributed (gloo, 2 processes on this CPU machine)."""

import os
import time

import numpy as np
import pytest

import dagcl_scverse as dagcl
from dagcl_scverse import cli
from dagcl_scverse.metrics import adjusted_rand_index
from dagcl_scverse.model.world import KILL_RANK_ENV


@pytest.fixture(scope="module")
def pancreas_file(_pancreas_pp, tmp_path_factory):
    """The shipped data with its graph, as an h5ad: the ranks never run `sc.pp.neighbors`."""
    path = tmp_path_factory.mktemp("distributed") / "pancreas.h5ad"
    _pancreas_pp.write_h5ad(path)
    return path


def test_two_gloo_processes_agree_with_one(pancreas):
    single = dagcl.tl.cluster(pancreas, n_clusters=13, copy=True, progress_bar=False)
    parallel = dagcl.tl.cluster(pancreas, n_clusters=13, copy=True, progress_bar=False, nproc=2)
    assert parallel.uns["dagcl"]["params"]["world_size"] == 2
    assert adjusted_rand_index(single.obs["dagcl"], parallel.obs["dagcl"]) >= 0.95
    # the stored model reproduces the labels it was trained to
    proba = parallel.obsm["dagcl_proba"]
    np.testing.assert_array_equal(proba.argmax(1).astype(str), parallel.obs["dagcl"].astype(str))


def test_cli_nproc_2_writes_one_result(pancreas_file, tmp_path, capsys):
    out = tmp_path / "result.h5ad"
    argv = ["train", "--data", str(pancreas_file), "--n-clusters", "13", "--epochs", "20", "--nproc", "2"]
    assert cli.main([*argv, "--out", str(out), "--no-markers"]) == 0
    assert "2 processes" in capsys.readouterr().out
    assert out.exists()


def test_a_failing_rank_stops_the_run_naming_it_and_nothing_is_written(pancreas_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(KILL_RANK_ENV, "1")
    out = tmp_path / "result.h5ad"
    argv = ["train", "--data", str(pancreas_file), "--n-clusters", "13", "--epochs", "20", "--nproc", "2"]
    start = time.monotonic()
    status = cli.main([*argv, "--out", str(out), "--no-markers"])
    assert status != 0
    assert time.monotonic() - start < 120
    assert "rank 1 of 2" in capsys.readouterr().err
    assert not out.exists()


def test_the_same_entry_point_runs_under_torchrun(pancreas_file, tmp_path):
    """`torchrun --standalone --nproc-per-node 2`: rank 0 reads and writes, both ranks train, WORLD_SIZE is read."""
    import subprocess
    import sys

    import anndata as ad

    out = tmp_path / "result.h5ad"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "dagcl_scverse.cli", "train", "--data", str(pancreas_file), "--n-clusters", "13",
        "--epochs", "20", "--no-markers", "--out", str(out),
    ]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("2 processes") == 1  # only rank 0 reports
    assert ad.read_h5ad(out).uns["dagcl"]["params"]["world_size"] == 2
