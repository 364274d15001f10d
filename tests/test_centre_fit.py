"""Fitting the centres to the initial partition, the embedding held fixed."""

import torch

from dagcl_scverse.model.module import DAGCLModule
from dagcl_scverse.model.trainer import _fit_centres


def test_fitted_centres_reproduce_a_partition_the_group_means_do_not():
    # one wide population next to a tight one: nearest-mean assignment gives the wide one's
    # tail to the tight group; the fitted Student-t centres move the boundary back
    generator = torch.Generator().manual_seed(0)
    wide = torch.randn(400, 2, generator=generator) * torch.tensor([3.0, 0.3])
    tight = torch.randn(40, 2, generator=generator) * 0.3 + torch.tensor([6.0, 0.0])
    z = torch.cat([wide, tight])
    labels = torch.cat([torch.zeros(400, dtype=torch.long), torch.ones(40, dtype=torch.long)])
    model = DAGCLModule(3, hidden=4, attention_channels=4, latent=2)
    zc = model.cluster_space(z)
    means = torch.stack([zc[labels == 0].mean(0), zc[labels == 1].mean(0)])
    model.init_centres(means)
    before = (model.soft_assign(z).argmax(1) == labels).float().mean().item()

    _fit_centres(model, z, labels, steps=200)

    after = (model.soft_assign(z).argmax(1) == labels).float().mean().item()
    assert before < 0.97
    assert after > before + 0.02
    assert model.centres.shape == (2, 2)
    assert all(p.grad is None for p in model.parameters())


def test_a_centre_without_cells_stays_where_it_was():
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(100, 2, generator=generator)
    labels = (z[:, 0] > 0).long()  # clusters 0 and 1; cluster 2 has no cell
    model = DAGCLModule(3, hidden=4, attention_channels=4, latent=2)
    start = torch.tensor([[-1.0, 0.0], [1.0, 0.0], [0.0, 3.0]])
    model.init_centres(start)
    _fit_centres(model, z.requires_grad_(), labels, steps=50)
    assert torch.equal(model.centres[2].detach(), start[2])
    assert not torch.equal(model.centres[:2].detach(), start[:2])
