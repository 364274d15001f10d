"""Mini-batch training: graph-aware batches whose seeds are encoded exactly as in a full-graph pass."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import dagcl_scverse as dagcl
from dagcl_scverse.metrics import adjusted_rand_index
from dagcl_scverse.model import partition_refinement, trainer
from dagcl_scverse.model.batches import BatchPlan, DeviceBatches, grow_balls, incoming_matrix
from dagcl_scverse.model.config import TrainingConfig
from dagcl_scverse.model.context_history import ContextHistory
from dagcl_scverse.model.features import CellFeatures
from dagcl_scverse.model.latent_bank import LatentBank, statistics
from dagcl_scverse.model.module import DAGCLModule
from dagcl_scverse.model.partition_refinement import refine_groups
from dagcl_scverse.tl._inputs import get_features, get_graph, graph_to_edges
from tests.conftest import SHORT


def _edges(adata):
    return graph_to_edges(get_graph(adata, neighbors_key=None, obsp=None))


@pytest.mark.parametrize("n_parts", [1, 3, 7])
def test_balls_split_the_cells_into_disjoint_groups_of_near_equal_size(pancreas, n_parts):
    edge_index, edge_weight = _edges(pancreas)
    incoming = incoming_matrix(edge_index, edge_weight, pancreas.n_obs)
    symmetric = ((incoming + incoming.T) > 0).astype(np.int8).tocsr()
    cells = np.arange(0, pancreas.n_obs, 2)  # a subset, as a process's shard is
    groups = grow_balls(symmetric, cells, n_parts)
    assert len(groups) == n_parts
    np.testing.assert_array_equal(np.sort(np.concatenate(groups)), cells)
    assert max(map(len, groups)) - min(map(len, groups)) <= 1


def _cut_edges(symmetric, groups):
    group = np.empty(symmetric.shape[0], dtype=np.int64)
    for index, cells in enumerate(groups):
        group[cells] = index
    rows, cols = symmetric.nonzero()
    return int((group[rows] != group[cols]).sum())


def test_refinement_cuts_fewer_edges_within_capacity_and_keeps_a_partition(pancreas):
    edge_index, edge_weight = _edges(pancreas)
    incoming = incoming_matrix(edge_index, edge_weight, pancreas.n_obs)
    symmetric = ((incoming + incoming.T) > 0).astype(np.int8).tocsr()
    balls = grow_balls(symmetric, np.arange(pancreas.n_obs), 5)
    refined = refine_groups(symmetric, balls, capacity=180)
    np.testing.assert_array_equal(np.sort(np.concatenate(refined)), np.arange(pancreas.n_obs))
    assert all(0 < len(cells) <= 180 for cells in refined)
    assert _cut_edges(symmetric, refined) < 0.9 * _cut_edges(symmetric, balls)


def test_a_cell_moves_to_the_group_of_its_neighbours_only_where_there_is_room():
    # two triangles 0-1-2 and 3-4-5, cell 2 put in the second group
    edges = [(0, 1), (0, 2), (1, 2), (3, 4), (3, 5), (4, 5)]
    rows, cols = np.array(edges).T
    graph = sp.csr_matrix((np.ones(12), (np.r_[rows, cols], np.r_[cols, rows])), shape=(6, 6))
    groups = [np.array([0, 1]), np.array([2, 3, 4, 5])]
    moved = refine_groups(graph, groups, capacity=4)
    np.testing.assert_array_equal(moved[0], [0, 1, 2])
    stuck = refine_groups(graph, groups, capacity=2)
    np.testing.assert_array_equal(stuck[0], [0, 1])


def test_refined_batches_bring_fewer_context_cells(pancreas, monkeypatch):
    edge_index, edge_weight = _edges(pancreas)

    def context_per_seed():
        plan = BatchPlan(edge_index, edge_weight, pancreas.n_obs, batch_size=128)
        return sum(batch.nodes.size - batch.n_seeds for batch in plan.batches) / pancreas.n_obs

    refined = context_per_seed()
    monkeypatch.setattr(partition_refinement, "REFINE_ROUNDS", 0)
    assert refined < 0.9 * context_per_seed()


def test_batches_keep_most_edges_inside_and_beat_random_groups(pancreas):
    edge_index, edge_weight = _edges(pancreas)
    plan = BatchPlan(edge_index, edge_weight, pancreas.n_obs, batch_size=206)
    inside = np.mean([batch.inside_share() for batch in plan.batches])
    rng = np.random.default_rng(0)
    position = rng.permutation(pancreas.n_obs) // 206
    random_inside = np.mean(position[edge_index[0]] == position[edge_index[1]])
    assert inside > 2 * random_inside


def test_steps_per_epoch_are_ceil_n_over_batch_size_and_cover_every_cell_once(pancreas):
    edge_index, edge_weight = _edges(pancreas)
    for batch_size in (100, 256, 821):
        plan = BatchPlan(edge_index, edge_weight, pancreas.n_obs, batch_size=batch_size)
        assert plan.steps_per_epoch == math.ceil(pancreas.n_obs / batch_size)
        seeds = np.concatenate([batch.seeds for batch in plan.epoch_order(3, seed=0)])
        np.testing.assert_array_equal(np.sort(seeds), np.arange(pancreas.n_obs))
        assert max(batch.n_seeds for batch in plan.batches) <= batch_size
    assert BatchPlan(edge_index, edge_weight, pancreas.n_obs, batch_size=None).full_batch


@pytest.mark.parametrize("world_size", [2, 3])
def test_shards_of_the_processes_are_disjoint_cover_every_cell_and_step_together(pancreas, world_size):
    edge_index, edge_weight = _edges(pancreas)
    plans = [
        BatchPlan(edge_index, edge_weight, pancreas.n_obs, batch_size=batch_size, rank=rank, world_size=world_size)
        for batch_size in (None, 128)
        for rank in range(world_size)
    ]
    for plan in plans:
        shards = plan.shards
        assert len(shards) == world_size
        np.testing.assert_array_equal(np.sort(np.concatenate(shards)), np.arange(pancreas.n_obs))
    for batch_size_plans in (plans[:world_size], plans[world_size:]):
        assert len({plan.steps_per_epoch for plan in batch_size_plans}) == 1
        for rank, plan in enumerate(batch_size_plans):
            np.testing.assert_array_equal(np.sort(np.concatenate([b.seeds for b in plan.batches])), plan.shards[rank])


def test_a_batch_encodes_its_seeds_exactly_as_the_full_graph_does(pancreas):
    features = get_features(pancreas, layer=None, use_rep=None)
    edge_index, edge_weight = _edges(pancreas)
    torch.manual_seed(0)
    model = DAGCLModule(features.shape[1], hidden=32, attention_channels=16, latent=8)
    cells = CellFeatures(features, "cpu")
    with torch.no_grad():
        full = model.encode(
            cells.encoder_input(), torch.as_tensor(edge_index), torch.as_tensor(edge_weight), aggregation=0.7,
            capacity=0.8,
        )  # fmt: skip
        plan = BatchPlan(edge_index, edge_weight, pancreas.n_obs, batch_size=150)
        for batch in plan.batches:
            z = model.encode(
                cells.encoder_input(batch.nodes), torch.as_tensor(batch.edge_index),
                torch.as_tensor(batch.edge_weight), aggregation=0.7, capacity=0.8,
            )[: batch.n_seeds]  # fmt: skip
            torch.testing.assert_close(z, full[batch.seeds], rtol=1e-5, atol=1e-5)


def test_cluster_records_batches_and_mini_batch_agrees_with_full_batch(pancreas):
    full = dagcl.tl.cluster(pancreas, n_clusters=8, copy=True, **SHORT)
    mini = dagcl.tl.cluster(pancreas, n_clusters=8, copy=True, batch_size=300, **SHORT)
    again = dagcl.tl.cluster(pancreas, n_clusters=8, copy=True, batch_size=300, **SHORT)
    params = mini.uns["dagcl"]["params"]
    assert (params["steps_per_epoch"], params["world_size"]) == (3, 1)
    assert 274 <= params["batch_size"] <= 300  # the largest batch: refined borders may grow one
    assert full.uns["dagcl"]["params"]["steps_per_epoch"] == 1
    assert full.uns["dagcl"]["params"]["batch_size"] == pancreas.n_obs
    np.testing.assert_array_equal(mini.obs["dagcl"], again.obs["dagcl"])  # reproducible
    assert adjusted_rand_index(full.obs["dagcl"], mini.obs["dagcl"]) > 0.8
    history = mini.uns["dagcl"]["history"]
    assert np.isfinite(history["loss_total"]).all()
    np.testing.assert_array_equal(np.nansum(history["cluster_sizes"][-1]), pancreas.n_obs)


def test_gene_features_stay_sparse_on_the_way_to_the_model(pancreas):
    pancreas.X = pancreas.X.toarray()  # even a dense X is read as CSR
    features = get_features(pancreas, layer=None, use_rep=None)
    assert sp.isspmatrix_csr(features) and features.dtype == np.float32
    assert isinstance(get_features(pancreas, layer=None, use_rep="X_pca"), np.ndarray)


def test_dense_x_is_converted_in_row_chunks_to_the_same_csr(pancreas, monkeypatch):
    from dagcl_scverse.tl import _inputs

    pancreas.var["highly_variable"] = np.arange(pancreas.n_vars) % 3 > 0
    sparse = get_features(pancreas, layer=None, use_rep=None)
    assert sparse.shape[1] == int(pancreas.var["highly_variable"].sum()) < pancreas.n_vars
    pancreas.X = pancreas.X.toarray()
    monkeypatch.setattr(_inputs, "DENSE_CHUNK_CELLS", 100)  # 9 chunks, the last one short
    dense = get_features(pancreas, layer=None, use_rep=None)
    assert sp.isspmatrix_csr(dense) and dense.has_canonical_format
    assert (dense != sparse).nnz == 0 and dense.nnz == sparse.nnz


def test_backed_x_gets_an_error_that_names_the_fix(pancreas, tmp_path):
    import anndata as ad

    pancreas.X = pancreas.X.toarray()
    pancreas.write_h5ad(tmp_path / "p.h5ad")
    backed = ad.read_h5ad(tmp_path / "p.h5ad", backed="r")
    with pytest.raises(TypeError, match=r"to_memory\(\)"):
        get_features(backed, layer=None, use_rep=None)


def test_bank_statistics_are_those_of_every_cell_and_differentiable_in_the_batch_rows():
    generator = torch.Generator().manual_seed(0)
    banked = torch.randn(50, 4, generator=generator, dtype=torch.float64) * 3 + 1
    seeds = torch.arange(10, 22)
    batch_rows = torch.randn(12, 4, generator=generator, dtype=torch.float64).requires_grad_()
    mean, std = statistics(*LatentBank(banked).moments(seeds, batch_rows), torch.float64)
    # the same statistics computed directly on every cell, the batch's rows substituted
    every_cell = torch.cat([banked[:10], batch_rows, banked[22:]])
    np.testing.assert_allclose(mean.detach(), every_cell.mean(0).detach(), atol=1e-10)
    np.testing.assert_allclose(std.detach(), every_cell.std(0, unbiased=False).detach(), atol=1e-10)
    # and the same gradients reach the batch's rows, as in a full batch
    weights = torch.randn(2, 4, generator=generator, dtype=torch.float64)
    (got,) = torch.autograd.grad((weights[0] * mean + weights[1] * std).sum(), batch_rows)
    every_cell = torch.cat([banked[:10], batch_rows, banked[22:]])
    loss = (weights[0] * every_cell.mean(0) + weights[1] * every_cell.std(0, unbiased=False)).sum()
    (want,) = torch.autograd.grad(loss, batch_rows)
    assert got.abs().max() > 0
    np.testing.assert_allclose(got, want, atol=1e-10)


@pytest.mark.parametrize("batch_size", [None, 300])
def test_a_self_training_epoch_of_any_batch_size_shares_one_learning_rate_and_refreshes_every_update_interval(
    pancreas, batch_size, monkeypatch
):
    refreshes, pretraining, real_refresh, real_start = [], [], trainer._refresh, trainer._start_self_training

    def counting_refresh(run, *args, **kwargs):
        refreshes.append(run.optimiser.param_groups[0]["lr"])
        return real_refresh(run, *args, **kwargs)

    def recording_start(run, *args, **kwargs):
        pretraining.append(run.optimiser.param_groups[0]["lr"])
        return real_start(run, *args, **kwargs)

    monkeypatch.setattr(trainer, "_refresh", counting_refresh)
    monkeypatch.setattr(trainer, "_start_self_training", recording_start)
    edge_index, edge_weight = _edges(pancreas)
    config = TrainingConfig(n_clusters=5, pretrain_epochs=3, epochs=12, update_interval=5, batch_size=batch_size)
    features = get_features(pancreas, layer=None, use_rep=None)
    result = trainer.train(features, edge_index, edge_weight, config, progress_bar=False)
    assert result.steps_per_epoch == (1 if batch_size is None else 3)
    assert len(refreshes) == 3  # self-training epochs 0, 5 and 10
    np.testing.assert_allclose(refreshes, config.lr / result.steps_per_epoch)
    assert pretraining == [config.lr]  # pre-training and the carry keep the full rate


@pytest.mark.parametrize("batch_size", [None, 300])
def test_the_carry_takes_carry_steps_on_every_batch_at_the_self_training_rate(pancreas, batch_size, monkeypatch):
    carried, real_carry = [], trainer._carry_partition

    def recording_carry(run, *args):
        before = run.steps_taken
        real_carry(run, *args)
        carried.append((run.steps_taken - before, run.optimiser.param_groups[0]["lr"]))

    monkeypatch.setattr(trainer, "_carry_partition", recording_carry)
    edge_index, edge_weight = _edges(pancreas)
    config = TrainingConfig(n_clusters=5, pretrain_epochs=2, epochs=1, carry_steps=4, batch_size=batch_size)
    features = get_features(pancreas, layer=None, use_rep=None)
    result = trainer.train(features, edge_index, edge_weight, config, progress_bar=False)
    assert carried == [(4 * result.steps_per_epoch, config.lr / result.steps_per_epoch)]


def test_kept_context_gives_the_full_graph_embedding_until_the_weights_move(pancreas):
    features = get_features(pancreas, layer=None, use_rep=None)
    edge_index, edge_weight = _edges(pancreas)
    torch.manual_seed(0)
    model = DAGCLModule(features.shape[1], hidden=32, attention_channels=16, latent=8)
    cells = CellFeatures(features, "cpu")
    plan = BatchPlan(edge_index, edge_weight, pancreas.n_obs, batch_size=150)
    batches = DeviceBatches(plan, cells)
    history = ContextHistory(plan, 32, torch.device("cpu"))
    history.fill(model, cells)
    assert history.cells.size == len(np.unique(np.concatenate([b.nodes[b.n_seeds :] for b in plan.batches])))
    with torch.no_grad():
        full = model.encode(
            cells.encoder_input(), torch.as_tensor(edge_index), torch.as_tensor(edge_weight), aggregation=0.7,
            capacity=0.8,
        )  # fmt: skip
        for graph_batch in plan.batches:
            batch = batches.get(graph_batch, encoded_only=True)
            assert batch.features.shape[0] == graph_batch.n_seeds  # one process: no context is encoded
            h = history.first_layer(model, batch)
            z = model.encode_hidden(h, batch.graph.edge_index, batch.graph.edge_weight, aggregation=0.7, capacity=0.8)
            torch.testing.assert_close(z[: batch.n_seeds], full[batch.seed_ids], rtol=1e-5, atol=1e-5)
        # a step stores its seeds' first layer for the batches they are context of
        history.table.zero_()
        for graph_batch in plan.batches:
            history.first_layer(model, batches.get(graph_batch, encoded_only=True))
        torch.testing.assert_close(history.table, model.input_layer(cells.encoder_input(history.cells)))


def test_context_of_another_process_is_encoded_from_its_features(pancreas):
    edge_index, edge_weight = _edges(pancreas)
    plan = BatchPlan(edge_index, edge_weight, pancreas.n_obs, batch_size=150, rank=0, world_size=2)
    own = np.zeros(pancreas.n_obs, dtype=bool)
    own[plan.shards[0]] = True
    elsewhere = 0
    for batch in plan.batches:
        context = batch.nodes[batch.n_seeds :]
        encoded = batch.n_encoded - batch.n_seeds
        assert not own[context[:encoded]].any() and own[context[encoded:]].all()
        elsewhere += encoded
    assert elsewhere > 0


def test_mini_batches_with_and_without_kept_context_agree(pancreas):
    features = get_features(pancreas, layer=None, use_rep=None)
    edge_index, edge_weight = _edges(pancreas)
    labels = {}
    for kept in (True, False):
        config = TrainingConfig(
            n_clusters=8, pretrain_epochs=15, epochs=15, batch_size=200, context_history=kept, carry_steps=10,
            partition_restarts=2, centre_fit_steps=50,
        )  # fmt: skip
        labels[kept] = trainer.train(features, edge_index, edge_weight, config, progress_bar=False).labels
    assert adjusted_rand_index(labels[True], labels[False]) > 0.8
