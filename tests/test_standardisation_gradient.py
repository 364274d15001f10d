"""The mini-batch standardisation's backward pass against a full batch's."""

import torch

from dagcl_scverse.model.standardisation_gradient import GradientBank


def _loss_per_cell(zs: torch.Tensor) -> torch.Tensor:
    weights = torch.linspace(0.5, 2.0, zs.shape[1], dtype=zs.dtype)
    return (zs.pow(2) * weights).sum(1) + torch.sin(zs).sum(1)


def _full_batch_gradient(z: torch.Tensor) -> torch.Tensor:
    z = z.clone().requires_grad_(True)
    zs = (z - z.mean(0)) / z.std(0, unbiased=False)
    _loss_per_cell(zs).mean().backward()
    return z.grad


def _batch_gradients(z: torch.Tensor, batches: list[torch.Tensor], bank: GradientBank) -> torch.Tensor:
    """Each batch's gradient of the mean loss over its own cells, scaled to the full batch's units."""
    mean, std = z.mean(0), z.std(0, unbiased=False)
    grad = torch.zeros_like(z)
    for key, rows in enumerate(batches):
        z_batch = z[rows].clone().requires_grad_(True)
        _loss_per_cell(bank.standardise(z_batch, mean, std, key)).mean().backward()
        grad[rows] = z_batch.grad * rows.numel() / z.shape[0]
    return grad


def test_once_every_batch_is_banked_a_batch_gets_the_full_batch_gradient_of_its_cells():
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(300, 6, generator=generator, dtype=torch.float64) * 3 + 1
    # batches of different sizes, each of nearby cells (sorted along the first dimension)
    order = torch.argsort(z[:, 0])
    batches = [order[:40], order[40:150], order[150:300]]
    bank = GradientBank()
    first_pass = _batch_gradients(z, batches, bank)
    second_pass = _batch_gradients(z, batches, bank)
    full = _full_batch_gradient(z)
    torch.testing.assert_close(second_pass, full, rtol=1e-9, atol=1e-12)
    # in the first pass the first batch only knew itself: a neighbourhood's sums, not every cell's
    assert not torch.allclose(first_pass[batches[0]], full[batches[0]], atol=1e-6)


def test_the_forward_pass_is_the_plain_standardisation():
    z = torch.randn(20, 3, dtype=torch.float64)
    mean, std = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64), torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    torch.testing.assert_close(GradientBank().standardise(z, mean, std, 0), (z - mean) / std)
