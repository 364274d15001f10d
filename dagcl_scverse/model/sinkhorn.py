"""Entropy-regularised optimal-transport balancing of soft assignments (log domain)."""

from __future__ import annotations

import torch


def sinkhorn_balance(
    log_q: torch.Tensor,
    column_marginals: torch.Tensor,
    *,
    sharpen: float = 1.0,
    tol: float = 1e-4,
    max_iter: int = 500,
) -> torch.Tensor:
    """Project soft assignments onto given marginals with Sinkhorn iterations.

    Solves for the plan ``P = diag(u) q^sharpen diag(v)`` whose rows sum to 1 (one unit of
    mass per cell) and whose columns sum to ``n * column_marginals``. Iterations run in the
    log domain and stop once every row sum is within ``tol`` of 1.

    Parameters
    ----------
    log_q
        ``(n, k)`` log soft assignments.
    column_marginals
        ``(k,)`` target cluster proportions (positive, summing to 1).
    sharpen
        Exponent on ``q``; larger values give a lower-entropy (sharper) plan.
    tol
        Largest allowed absolute deviation of a row sum from 1.
    max_iter
        Upper bound on the number of iterations.

    Returns
    -------
    ``(n, k)`` transport plan; rows sum to 1 within ``tol`` and columns to ``n * column_marginals``.
    """
    n = log_q.shape[0]
    log_kernel = sharpen * log_q
    log_cols = torch.log(column_marginals.to(log_q) * n)
    g = torch.zeros_like(log_cols)
    for _ in range(max_iter):
        f = -torch.logsumexp(log_kernel + g, dim=1, keepdim=True)
        g = log_cols - torch.logsumexp(log_kernel + f, dim=0)
        row_sums = torch.logsumexp(log_kernel + f + g, dim=1).exp()
        if (row_sums - 1).abs().max() < tol:
            break
    return torch.exp(log_kernel + f + g)
