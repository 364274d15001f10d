"""The encoder reads sparse features as a CSR matrix: same result as dense, chosen by density."""

import torch

from dagcl_scverse.model.module import DAGCLModule
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
    assert _encoder_input(sparse).layout == torch.sparse_csr
    assert _encoder_input(dense).layout == torch.strided
    assert torch.equal(_encoder_input(sparse).to_dense(), sparse)


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
        grads.append(model.input[0].weight.grad.clone())
    assert _encoder_input(x).layout == torch.sparse_csr
    torch.testing.assert_close(outputs[0], outputs[1])
    torch.testing.assert_close(grads[0], grads[1])
    assert grads[0].abs().sum() > 0
