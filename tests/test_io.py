"""`dagcl.io.read_h5` on small h5 files in the literature's layouts, written by the tests."""

import h5py
import numpy as np
import pytest
import scipy.sparse as sp

import dagcl_scverse as dagcl


def write_h5(path, **datasets):
    with h5py.File(path, "w") as handle:
        for name, value in datasets.items():
            handle.create_dataset(name, data=value)
    return path


@pytest.fixture
def counts():
    rng = np.random.default_rng(0)
    return rng.poisson(0.7, size=(12, 7)).astype(np.int32)


@pytest.fixture
def codes():
    return np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 1])


def dense(matrix):
    return matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)


@pytest.mark.parametrize("dtype", [np.int32, np.float32, np.float64])
def test_cells_by_genes(tmp_path, counts, codes, dtype):
    path = write_h5(tmp_path / "d.h5", X=counts.astype(dtype), Y=codes)
    adata = dagcl.io.read_h5(path)
    assert adata.shape == (12, 7)
    assert adata.X.dtype == dtype
    np.testing.assert_array_equal(dense(adata.X), counts)
    np.testing.assert_array_equal(dense(adata.layers["counts"]), counts)
    assert adata.layers["counts"] is not adata.X
    assert list(adata.obs_names[:2]) == ["cell_0", "cell_1"]
    assert list(adata.var_names[:2]) == ["gene_0", "gene_1"]
    assert adata.obs["cell_type"].dtype == "category"
    assert list(adata.obs["cell_type"].cat.categories) == ["0", "1", "2"]
    np.testing.assert_array_equal(adata.obs["cell_type"].astype(int), codes)
    assert "protein" not in adata.obsm


def test_genes_by_cells_is_transposed(tmp_path, counts, codes):
    path = write_h5(tmp_path / "d.h5", X=counts.T.copy(), Y=codes)
    adata = dagcl.io.read_h5(path)
    assert adata.shape == (12, 7)
    np.testing.assert_array_equal(dense(adata.X), counts)


def test_one_based_float_codes_keep_their_values(tmp_path, counts):
    labels = np.array([1, 2, 3, 10, 1, 2, 3, 10, 1, 2, 3, 10], dtype=np.float64)
    adata = dagcl.io.read_h5(write_h5(tmp_path / "d.h5", X=counts, Y=labels))
    assert list(adata.obs["cell_type"].cat.categories) == ["1", "2", "3", "10"]  # numeric order
    assert adata.obs["cell_type"].iloc[3] == "10"


def test_column_vector_and_string_labels(tmp_path, counts, codes):
    adata = dagcl.io.read_h5(write_h5(tmp_path / "a.h5", X=counts, Y=codes.reshape(-1, 1)))
    assert adata.obs["cell_type"].iloc[2] == "2"
    names = np.array([b"alpha", b"beta", b"gamma"])[codes]
    adata = dagcl.io.read_h5(write_h5(tmp_path / "b.h5", X=counts, Y=names))
    assert list(adata.obs["cell_type"].cat.categories) == ["alpha", "beta", "gamma"]


def test_proteins_go_to_obsm(tmp_path, counts, codes):
    proteins = np.arange(12 * 3, dtype=np.float64).reshape(12, 3)
    adata = dagcl.io.read_h5(write_h5(tmp_path / "a.h5", X=counts, Y=codes, ADT_X=proteins))
    np.testing.assert_array_equal(adata.obsm["protein"], proteins)
    # stored proteins x cells, like a genes x cells X
    adata = dagcl.io.read_h5(write_h5(tmp_path / "b.h5", X=counts.T.copy(), Y=codes, ADT_X=proteins.T.copy()))
    np.testing.assert_array_equal(adata.obsm["protein"], proteins)


def test_without_labels_reads_cells_by_genes(tmp_path, counts):
    adata = dagcl.io.read_h5(write_h5(tmp_path / "d.h5", X=counts))
    assert adata.shape == (12, 7)
    assert "cell_type" not in adata.obs


def test_chunked_compressed_x_reads_in_blocks(tmp_path, counts, codes, monkeypatch):
    from dagcl_scverse.io import _read_h5

    monkeypatch.setattr(_read_h5, "_BLOCK_ELEMENTS", 10)  # force several blocks
    path = tmp_path / "d.h5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("X", data=counts, chunks=(5, 7), compression="gzip")
        handle.create_dataset("Y", data=codes)
    np.testing.assert_array_equal(dense(dagcl.io.read_h5(path).X), counts)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="No such file"):
        dagcl.io.read_h5(tmp_path / "absent.h5")


def test_not_hdf5(tmp_path):
    path = tmp_path / "d.h5"
    path.write_text("cell,gene\n")
    with pytest.raises(ValueError, match="not an HDF5 file"):
        dagcl.io.read_h5(path)


def test_unknown_layout_names_what_was_found(tmp_path, counts):
    path = tmp_path / "d.h5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("counts", data=counts)
        handle.create_group("meta")
    with pytest.raises(ValueError, match=r"Unknown h5 layout.*counts \(12, 7\) int32, meta \(group\)") as info:
        dagcl.io.read_h5(path)
    assert "\n" not in str(info.value)


def test_h5ad_is_pointed_to_read_h5ad(tmp_path, counts):
    import anndata as ad

    path = tmp_path / "d.h5ad"
    ad.AnnData(counts.astype(np.float32)).write_h5ad(path)
    with pytest.raises(ValueError, match="read_h5ad"):
        dagcl.io.read_h5(path)


def test_shape_mismatch(tmp_path, counts):
    path = write_h5(tmp_path / "d.h5", X=counts, Y=np.zeros(5))
    with pytest.raises(ValueError, match=r"shape \(12, 7\).*5 labels"):
        dagcl.io.read_h5(path)


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (np.r_[np.zeros(11), 0.5], "integer label codes"),
        (np.r_[np.zeros(11), np.nan], "integer label codes"),
        (np.zeros((12, 2)), "one label per cell"),
    ],
)
def test_bad_labels(tmp_path, counts, labels, message):
    with pytest.raises(ValueError, match=message):
        dagcl.io.read_h5(write_h5(tmp_path / "d.h5", X=counts, Y=labels))


def test_bad_counts(tmp_path, codes):
    values = np.ones((12, 7))
    values[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        dagcl.io.read_h5(write_h5(tmp_path / "a.h5", X=values, Y=codes))
    with pytest.raises(ValueError, match="must hold numbers"):
        dagcl.io.read_h5(write_h5(tmp_path / "b.h5", X=np.full((12, 7), b"x"), Y=codes))


def test_protein_shape_mismatch(tmp_path, counts, codes):
    with pytest.raises(ValueError, match="ADT_X"):
        dagcl.io.read_h5(write_h5(tmp_path / "d.h5", X=counts, Y=codes, ADT_X=np.ones((4, 3))))
