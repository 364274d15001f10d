"""Clustering metrics on hand-made cases with known values, and `dagcl.tl.evaluate`."""

import math

import numpy as np
import pandas as pd
import pytest

import dagcl_scverse as dagcl
from dagcl_scverse.metrics import accuracy, adjusted_rand_index, contingency, normalized_mutual_info

TRUTH = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])


def test_perfect_clustering_scores_one():
    for pred in (TRUTH, np.array(list("aaabbbccc"))):
        assert accuracy(TRUTH, pred) == 1.0
        assert normalized_mutual_info(TRUTH, pred) == pytest.approx(1.0)
        assert adjusted_rand_index(TRUTH, pred) == pytest.approx(1.0)


def test_permuted_cluster_names_do_not_matter():
    pred = np.array([2, 2, 2, 0, 0, 0, 1, 1, 1])
    assert accuracy(TRUTH, pred) == 1.0
    assert adjusted_rand_index(TRUTH, pred) == pytest.approx(1.0)
    assert normalized_mutual_info(TRUTH, pred) == pytest.approx(1.0)


def test_one_misplaced_cell():
    pred = np.array([0, 0, 1, 1, 1, 1, 2, 2, 2])
    assert accuracy(TRUTH, pred) == pytest.approx(8 / 9)
    # pairs: 9 same-type; same-cluster C(2,2) + C(4,2) + C(3,2) = 10; both 1 + 3 + 3 = 7; all 36
    expected_index = 9 * 10 / 36
    assert adjusted_rand_index(TRUTH, pred) == pytest.approx((7 - expected_index) / (9.5 - expected_index))


def test_merged_clusters():
    # types 0 and 1 merged into one cluster: 3 of 9 cells cannot be matched
    pred = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1])
    assert accuracy(TRUTH, pred) == pytest.approx(6 / 9)
    # MI = H(pred) = H(1/3, 2/3); H(truth) = log 3
    h_pred = -(1 / 3 * math.log(1 / 3) + 2 / 3 * math.log(2 / 3))
    assert normalized_mutual_info(TRUTH, pred) == pytest.approx(h_pred / ((h_pred + math.log(3)) / 2))
    # pairs: 9 same-type pairs, all in one cluster; same-cluster pairs C(6,2) + C(3,2) = 18; all 36
    expected_index = 9 * 18 / 36
    assert adjusted_rand_index(TRUTH, pred) == pytest.approx((9 - expected_index) / ((9 + 18) / 2 - expected_index))


def test_more_clusters_than_types():
    # type 2 split in two: the extra cluster's single cell is unmatched
    pred = np.array([0, 0, 0, 1, 1, 1, 2, 2, 3])
    assert accuracy(TRUTH, pred) == pytest.approx(8 / 9)
    assert 0 < adjusted_rand_index(TRUTH, pred) < 1
    # every cluster is pure, so MI = H(truth): NMI = 2 H(truth) / (H(truth) + H(pred))
    h_truth = math.log(3)
    h_pred = -(2 * (1 / 3) * math.log(1 / 3) + 2 / 9 * math.log(2 / 9) + 1 / 9 * math.log(1 / 9))
    assert normalized_mutual_info(TRUTH, pred) == pytest.approx(2 * h_truth / (h_truth + h_pred))


def test_every_cell_its_own_cluster():
    pred = np.arange(9)
    assert accuracy(TRUTH, pred) == pytest.approx(3 / 9)
    assert adjusted_rand_index(TRUTH, pred) == pytest.approx(0.0)


def test_single_cluster_carries_no_information():
    pred = np.zeros(9, dtype=int)
    assert accuracy(TRUTH, pred) == pytest.approx(3 / 9)
    assert normalized_mutual_info(TRUTH, pred) == 0.0
    assert adjusted_rand_index(TRUTH, pred) == pytest.approx(0.0)
    assert normalized_mutual_info(pred, pred) == 1.0
    assert adjusted_rand_index(pred, pred) == 1.0


def test_wraps_scikit_learn_for_any_label_type():
    import sklearn.metrics as sk

    rng = np.random.default_rng(0)
    for _ in range(10):
        n = int(rng.integers(20, 400))
        truth = rng.integers(0, rng.integers(2, 9), n)
        pred = np.where(rng.random(n) < 0.6, truth, rng.integers(0, rng.integers(2, 12), n))
        # string types and a categorical of clusters score as scikit-learn scores the integer codes
        named_truth, named_pred = np.char.add("type", truth.astype(str)), pd.Categorical(pred)
        assert adjusted_rand_index(named_truth, named_pred) == pytest.approx(
            sk.adjusted_rand_score(truth, pred), abs=1e-12
        )
        assert normalized_mutual_info(named_truth, named_pred) == pytest.approx(
            sk.normalized_mutual_info_score(truth, pred, average_method="arithmetic"), abs=1e-12
        )


def test_contingency_is_sparse_types_by_clusters():
    table = contingency(TRUTH, np.array([0, 0, 0, 1, 1, 1, 2, 2, 3]))
    assert table.shape == (3, 4)
    assert hasattr(table, "nnz")  # scipy sparse
    np.testing.assert_array_equal(table.toarray(), [[3, 0, 0, 0], [0, 3, 0, 0], [0, 0, 2, 1]])


@pytest.mark.parametrize("metric", [accuracy, adjusted_rand_index, normalized_mutual_info])
def test_input_errors(metric):
    with pytest.raises(ValueError, match="must match"):
        metric(TRUTH, TRUTH[:-1])
    with pytest.raises(ValueError, match="missing"):
        metric(np.array([0, 1, None], dtype=object), np.array([0, 1, 1]))
    with pytest.raises(ValueError, match="zero cells"):
        metric([], [])


def test_evaluate_returns_design_keys(pancreas_trained):
    adata = pancreas_trained
    before = adata.obs.copy()
    scores = dagcl.tl.evaluate(adata, key="dagcl", truth="cell_type")
    assert set(scores) == {"acc", "nmi", "ari", "n_clusters", "n_types"}
    assert scores["n_types"] == 13
    assert scores["n_clusters"] == adata.obs["dagcl"].nunique()
    assert scores["acc"] == accuracy(adata.obs["cell_type"], adata.obs["dagcl"])
    for name in ("acc", "nmi", "ari"):
        assert 0 < scores[name] <= 1
    pd.testing.assert_frame_equal(adata.obs, before)


def test_evaluate_scores_the_truth_against_itself_as_perfect(pancreas):
    pancreas.obs["copy"] = pancreas.obs["cell_type"].cat.rename_categories(lambda c: f"type {c}")
    scores = dagcl.tl.evaluate(pancreas, key="copy")
    assert scores == {"acc": 1.0, "nmi": pytest.approx(1.0), "ari": pytest.approx(1.0), "n_clusters": 13, "n_types": 13}


def test_evaluate_leaves_out_cells_without_a_type(pancreas):
    adata = pancreas[:50].copy()
    adata.obs["part"] = adata.obs["cell_type"].astype(str)
    adata.obs.loc[adata.obs_names[:5], "cell_type"] = np.nan
    adata.obs.loc[adata.obs_names[:5], "part"] = "wrong"
    assert dagcl.tl.evaluate(adata, key="part")["acc"] == 1.0


def test_evaluate_missing_columns(pancreas):
    with pytest.raises(KeyError, match=r"key='dagcl'.*dagcl.tl.cluster"):
        dagcl.tl.evaluate(pancreas)
    pancreas.obs["dagcl"] = pancreas.obs["cell_type"]
    with pytest.raises(KeyError, match=r"truth='label'.*found: 'cell_type', 'dagcl'"):
        dagcl.tl.evaluate(pancreas, truth="label")
    pancreas.obs["label"] = np.nan
    with pytest.raises(ValueError, match="no known cell type"):
        dagcl.tl.evaluate(pancreas, truth="label")


def test_docstring_examples_hold():
    import doctest

    import dagcl_scverse.metrics

    result = doctest.testmod(dagcl_scverse.metrics)
    assert result.attempted >= 4 and result.failed == 0
