"""The encoder reads gene features as CSR matrices, whatever their density: same result as dense."""

import numpy as np
import scipy.sparse as sp
import torch

from dagcl_scverse.model import sparse_input
from dagcl_scverse.model.features import CellFeatures
from dagcl_scverse.model.module import DAGCLModule
from dagcl_scverse.model.sparse_input import SparseFeatures, sparse_linear


def _encoder_input(x: torch.Tensor) -> SparseFeatures:
    return SparseFeatures.from_scipy(sp.csr_matrix(x.numpy()))


def _sparse_features(n=40, f=30, density=0.1, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(n, f, generator=generator)
    return x * (torch.rand(n, f, generator=generator) < density)


def _ring(n):
    src = torch.arange(n)
    return torch.stack([torch.cat([src, (src + 1) % n]), torch.cat([(src + 1) % n, src])])


def test_gene_features_reach_the_encoder_as_csr_whatever_their_density():
    for density in (0.05, 0.9):
        x = _sparse_features(density=density)
        cells = CellFeatures(sp.csr_matrix(x.numpy()), "cpu")
        features = cells.encoder_input()
        assert isinstance(features, SparseFeatures)
        assert torch.equal(features.matrix.to_dense(), x)
        assert torch.equal(features.transpose_times(torch.eye(x.shape[0])), x.T)
        rows = np.array([3, 0, 7])
        assert torch.equal(cells.encoder_input(rows).matrix.to_dense(), x[rows])
        assert torch.equal(cells.dense_rows(rows), x[rows])
    representation = np.random.default_rng(0).standard_normal((10, 4)).astype(np.float32)
    assert torch.is_tensor(CellFeatures(representation, "cpu").encoder_input())


def test_sparse_and_dense_input_give_the_same_embedding_and_gradients():
    x = _sparse_features()
    edge_index = _ring(x.shape[0])
    torch.manual_seed(0)
    model = DAGCLModule(x.shape[1], hidden=16, attention_channels=8, latent=4)
    outputs, grads = [], []
    for features in (x, _encoder_input(x)):
        model.zero_grad()
        z = model.encode(features, edge_index, None, aggregation=0.5, capacity=1.0)
        z.pow(2).sum().backward()
        outputs.append(z.detach())
        grads.append((model.input[0].weight.grad.clone(), model.input[0].bias.grad.clone()))
    assert isinstance(_encoder_input(x), SparseFeatures)
    torch.testing.assert_close(outputs[0], outputs[1])
    torch.testing.assert_close(grads[0], grads[1])
    assert grads[0][0].abs().sum() > 0


def test_sparse_input_gradients_are_reproducible_with_two_threads():
    x = _encoder_input(_sparse_features(n=300, f=200, density=0.05))
    edge_index = _ring(300)
    torch.manual_seed(0)
    model = DAGCLModule(200, hidden=64, attention_channels=16, latent=4)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        grads = []
        for _ in range(3):
            model.zero_grad()
            model.encode(x, edge_index, None, aggregation=0.5, capacity=1.0).pow(2).sum().backward()
            grads.append(model.input[0].weight.grad.clone())
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(grads[0], grads[1]) and torch.equal(grads[0], grads[2])


def test_the_cpu_weight_gradient_split_over_threads_equals_the_plain_product():
    x = _sparse_features(n=3000, f=50, density=0.05)
    grad = torch.randn(3000, 8, generator=torch.Generator().manual_seed(0))
    features = SparseFeatures.from_scipy(sp.csr_matrix(x.numpy()))
    assert features.host is not None and features.transpose is None
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        split = features.transpose_times(grad)
    finally:
        torch.set_num_threads(threads)
    torch.testing.assert_close(split, x.T @ grad)


def test_sparse_linear_passes_gradcheck():
    x = _sparse_features(n=12, f=7, density=0.3).double()
    features = SparseFeatures.from_dense(x)
    weight = torch.randn(5, 7, dtype=torch.double, requires_grad=True)
    bias = torch.randn(5, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda w, b: sparse_linear(features, w, b), (weight, bias))
    torch.testing.assert_close(sparse_linear(features, weight, bias), x @ weight.T + bias)


def test_mostly_nonzero_features_multiply_in_dense_row_blocks_with_the_same_result(monkeypatch):
    # scaled data (every gene centred) are nearly all non-zero: the CPU products run on dense row
    # blocks, here forced to several blocks of 7 rows
    monkeypatch.setattr(sparse_input, "DENSE_BLOCK_ENTRIES", 7 * 30)
    for density, blocks in ((0.9, True), (0.1, False)):
        x = _sparse_features(n=40, f=30, density=density)
        features = _encoder_input(x)
        assert features.dense_blocks is blocks
        weight = torch.randn(6, 30, requires_grad=True)
        bias = torch.randn(6, requires_grad=True)
        out = sparse_linear(features, weight, bias)
        torch.testing.assert_close(out, x @ weight.T + bias)
        out.pow(2).sum().backward()
        expected = torch.autograd.grad((x @ weight.T + bias).pow(2).sum(), weight)[0]
        torch.testing.assert_close(weight.grad, expected)
