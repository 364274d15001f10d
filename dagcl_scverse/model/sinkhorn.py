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
    column_potential: torch.Tensor | None = None,
    return_potential: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
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
    column_potential
        ``(k,)`` log column scaling to start from, e.g. the one a previous call on similar
        assignments returned; the iterations then start close to the solution.
    return_potential
        Also return the final log column scaling.

    Returns
    -------
    ``(n, k)`` transport plan; rows sum to 1 within ``tol`` and columns to ``n * column_marginals``.
    With ``return_potential``, the tuple ``(plan, column_potential)``.
    """
    n = log_q.shape[0]
    log_kernel = sharpen * log_q
    log_cols = torch.log(column_marginals.to(log_q) * n)
    g = torch.zeros_like(log_cols) if column_potential is None else column_potential.to(log_cols)
    f = -torch.logsumexp(log_kernel + g, dim=1, keepdim=True)
    for _ in range(max_iter):
        g = log_cols - torch.logsumexp(log_kernel + f, dim=0)
        f_next = -torch.logsumexp(log_kernel + g, dim=1, keepdim=True)
        # the rows of the current plan exp(K + f + g) sum to exp(f - f_next)
        if torch.expm1(f - f_next).abs().max() < tol:
            break
        f = f_next
    plan = torch.exp(log_kernel + f + g)
    return (plan, g) if return_potential else plan
