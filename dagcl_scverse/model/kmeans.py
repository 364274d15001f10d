"""Seeded k-means (k-means++ seeding, Lloyd iterations) in torch, for centre initialisation."""

from __future__ import annotations

import torch
from torch import Tensor


def _kmeans_plus_plus(z: Tensor, k: int, generator: torch.Generator) -> Tensor:
    n = z.shape[0]
    first = torch.randint(n, (1,), generator=generator).item()
    centres = [z[first]]
    d2 = (z - z[first]).pow(2).sum(1)
    for _ in range(1, k):
        probs = d2 / d2.sum() if d2.sum() > 0 else torch.full_like(d2, 1.0 / n)
        idx = torch.multinomial(probs.cpu(), 1, generator=generator).item()
        centres.append(z[idx])
        d2 = torch.minimum(d2, (z - z[idx]).pow(2).sum(1))
    return torch.stack(centres)


def kmeans(
    z: Tensor, k: int, *, seed: int = 0, n_init: int = 5, max_iter: int = 100, tol: float = 1e-6
) -> tuple[Tensor, Tensor]:
    """Cluster rows of ``z`` into ``k`` groups; the best of ``n_init`` runs by inertia.

    Returns
    -------
    centres ``(k, d)`` and labels ``(n,)``.
    """
    generator = torch.Generator().manual_seed(seed)
    best = (float("inf"), None, None)
    for _ in range(n_init):
        centres = _kmeans_plus_plus(z, k, generator)
        for _ in range(max_iter):
            labels = torch.cdist(z, centres).argmin(1)  # ok-dense: cells x centres
            sums = torch.zeros_like(centres).index_add_(0, labels, z)
            counts = torch.bincount(labels, minlength=k).unsqueeze(1).to(z)
            new = torch.where(counts > 0, sums / counts.clamp_min(1), centres)
            shift = (new - centres).pow(2).sum()
            centres = new
            if shift < tol:
                break
        labels = torch.cdist(z, centres).argmin(1)  # ok-dense: cells x centres
        inertia = (z - centres[labels]).pow(2).sum().item()
        if inertia < best[0]:
            best = (inertia, centres, labels)
    return best[1], best[2]
