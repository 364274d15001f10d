"""Property-based tests: on any small AnnData, `tl.cluster` gives a valid result or one of the clear errors.

Graphs are drawn directly (a random sparse symmetric connectivity matrix registered the way
`sc.pp.neighbors` does) so each example takes a fraction of a second.
"""

import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from anndata import AnnData
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import dagcl_scverse as dagcl
from dagcl_scverse.model.schedules import SCHEDULES

with warnings.catch_warnings():  # anndata's helpers use a `gpu` mark this project does not register
    warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
    from anndata.tests.helpers import assert_equal

#: the errors valid-looking random input may legitimately meet, each from an explicit check
EXPECTED_ERRORS = {
    "all-zero features": re.compile(r"are all zeros"),
    "Leiden finds one cluster": re.compile(r"Leiden found \d+ cluster.*pass `n_clusters`"),
    "no edges to estimate k from": re.compile(r"no edges between cells.*pass `n_clusters`"),
}

PROPERTY_SETTINGS = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """The examples are tiny: extra intra-op threads only add synchronisation (and stall on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _features(draw, rng: np.random.Generator, n: int) -> np.ndarray:
    n_genes = draw(st.integers(1, 20), label="n_genes")
    kind = draw(st.sampled_from(["counts", "log-normalised", "standardised", "duplicated-cells"]), label="values")
    rates = rng.gamma(0.5, 4.0, size=(1, n_genes))
    counts = rng.poisson(rates, size=(n, n_genes))
    if kind == "duplicated-cells":
        prototypes = counts[: draw(st.integers(1, 3), label="distinct cells")]
        counts = prototypes[rng.integers(0, len(prototypes), n)]
    dtype = draw(st.sampled_from([np.float32, np.float64, np.int32, np.int64]), label="dtype")
    if np.issubdtype(dtype, np.integer):
        return counts.astype(dtype)
    if kind == "standardised":
        return rng.normal(size=(n, n_genes)).astype(dtype)
    return np.log1p(counts).astype(dtype)


def _graph(draw, rng: np.random.Generator, n: int) -> sp.csr_matrix:
    kind = draw(st.sampled_from(["random", "disconnected", "no edges", "complete"]), label="graph")
    if kind == "no edges":
        return sp.csr_matrix((n, n), dtype=np.float32)
    if kind == "complete":
        return sp.csr_matrix(np.ones((n, n), dtype=np.float32) - np.eye(n, dtype=np.float32))
    density = draw(st.floats(0.05, 0.6), label="density")
    weights = sp.random(n, n, density=density, random_state=rng, data_rvs=lambda size: rng.uniform(0.01, 1.0, size))
    if kind == "disconnected":
        half = n // 2
        blocks = np.zeros((n, n), dtype=bool)
        blocks[:half, :half] = blocks[half:, half:] = True
        weights = weights.multiply(sp.csr_matrix(blocks))
    graph = sp.csr_matrix(weights.maximum(weights.T), dtype=np.float32)
    if draw(st.booleans(), label="self loops"):
        graph = graph + sp.identity(n, dtype=np.float32, format="csr")
    return graph.tocsr()


@st.composite
def small_runs(draw):
    """A small AnnData with features and a graph, and valid `tl.cluster` keyword arguments."""
    n = draw(st.integers(2, 60), label="n_cells")
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="data seed"))
    features = _features(draw, rng, n)
    if draw(st.booleans(), label="sparse"):
        features = sp.csr_matrix(features)
    adata = AnnData(features)
    kwargs = {}

    graph = _graph(draw, rng, n)
    where = draw(st.sampled_from(["neighbors", "neighbors_key", "obsp"]), label="graph location")
    if where == "obsp":
        adata.obsp["my_graph"] = graph
        kwargs["obsp"] = "my_graph"
    else:
        key = "neighbors" if where == "neighbors" else "my_neighbors"
        conn_key = "connectivities" if where == "neighbors" else "my_neighbors_connectivities"
        adata.obsp[conn_key] = graph
        adata.uns[key] = {"connectivities_key": conn_key, "params": {"method": "hypothesis"}}
        if where == "neighbors_key":
            kwargs["neighbors_key"] = key

    if draw(st.booleans(), label="use_rep"):
        adata.obsm["X_rep"] = rng.normal(size=(n, draw(st.integers(1, 5), label="rep dims")))
        kwargs["use_rep"] = "X_rep"

    kwargs.update(
        n_clusters=draw(st.none() | st.integers(2, n), label="n_clusters"),
        pretrain_epochs=draw(st.integers(1, 3), label="pretrain_epochs"),
        epochs=draw(st.integers(1, 5), label="epochs"),
        lr=draw(st.sampled_from([1e-4, 1e-3, 1e-2]), label="lr"),
        schedule=draw(st.sampled_from(SCHEDULES), label="schedule"),
        dynamic_attention=draw(st.booleans(), label="dynamic_attention"),
        curriculum=draw(st.booleans(), label="curriculum"),
        balance=draw(st.booleans(), label="balance"),
        stages=draw(st.integers(0, 4), label="stages"),
        random_state=draw(st.integers(0, 2**32 - 1), label="random_state"),
    )
    return adata, kwargs


def assert_valid_result(adata: AnnData, kwargs: dict) -> None:
    n = adata.n_obs
    params = adata.uns["dagcl"]["params"]
    k = params["n_clusters"]
    assert 2 <= k <= n
    if kwargs["n_clusters"] is not None:
        assert k == kwargs["n_clusters"]

    labels = adata.obs["dagcl"]
    assert labels.dtype == "category" and labels.notna().all()
    codes = labels.astype(int).to_numpy()
    assert ((codes >= 0) & (codes < k)).all()

    proba = adata.obsm["dagcl_proba"]
    assert proba.shape == (n, k)
    assert np.isfinite(proba).all() and (proba >= 0).all()
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-5)
    # each cell's label is (one of) its most probable cluster(s)
    np.testing.assert_array_equal(proba[np.arange(n), codes], proba.max(1))

    embedding = adata.obsm["X_dagcl"]
    assert embedding.shape[0] == n and np.isfinite(embedding).all()

    n_epochs = kwargs["pretrain_epochs"] + kwargs["epochs"]
    history = adata.uns["dagcl"]["history"]
    assert all(len(values) == n_epochs for values in history.values())
    assert params["stages"] == min(kwargs["stages"], kwargs["epochs"])
    if params["stages"]:
        assert adata.uns["dagcl"]["stages"]["labels"].max() < k


@PROPERTY_SETTINGS
@given(run=small_runs())
def test_cluster_gives_a_valid_result_or_a_clear_error(run):
    adata, kwargs = run
    before = adata.copy()
    try:
        with warnings.catch_warnings():
            # isolated cells and raw counts are expected here; they only warn
            warnings.simplefilter("ignore", UserWarning)
            dagcl.tl.cluster(adata, progress_bar=False, accelerator="cpu", **kwargs)
    except ValueError as err:
        reasons = [reason for reason, pattern in EXPECTED_ERRORS.items() if pattern.search(str(err))]
        assert reasons, err
        event(f"clear error: {reasons[0]}")
        assert_equal(adata, before)
        return
    event("valid result")
    assert_valid_result(adata, kwargs)
