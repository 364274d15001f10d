"""The encoder reads sparse features as CSR matrices: same result as dense, chosen by density."""

import torch

from dagcl_scverse.model.module import DAGCLModule
from dagcl_scverse.model.sparse_input import SparseFeatures, sparse_linear
from dagcl_scverse.model.trainer import SPARSE_INPUT_MAX_DENSITY, _encoder_input


def _sparse_features(n=40, f=30, density=0.1, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(n, f, generator=generator)
    return x * (torch.rand(n, f, generator=generator) < density)


def _ring(n):
    src = torch.arange(n)
    return torch.stack([torch.cat([src, (src + 1) % n]), torch.cat([(src + 1) % n, src])])


def test_encoder_input_is_csr_only_for_sparse_features():
    sparse = _sparse_features(density=SPARSE_INPUT_MAX_DENSITY / 2)
    dense = _sparse_features(density=0.9)
    assert isinstance(_encoder_input(sparse), SparseFeatures)
    assert _encoder_input(dense) is dense
    assert torch.equal(_encoder_input(sparse).matrix.to_dense(), sparse)
    assert torch.equal(_encoder_input(sparse).transpose.to_dense(), sparse.T)


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


def test_sparse_linear_passes_gradcheck():
    x = _sparse_features(n=12, f=7, density=0.3).double()
    features = SparseFeatures.from_dense(x)
    weight = torch.randn(5, 7, dtype=torch.double, requires_grad=True)
    bias = torch.randn(5, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda w, b: sparse_linear(features, w, b), (weight, bias))
    torch.testing.assert_close(sparse_linear(features, weight, bias), x @ weight.T + bias)
