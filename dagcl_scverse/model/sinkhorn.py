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
    # in scaled form, plan = a * kernel * b with each kernel row's largest entry 1: the
    # iterations are then matrix-vector products, several times faster than log-sum-exps over
    # the cells (float64 keeps the scalings of rarely chosen clusters finite)
    log_kernel = sharpen * log_q.double()
    kernel = torch.exp(log_kernel - log_kernel.max(1, keepdim=True).values)
    cols = column_marginals.to(kernel) * n
    g = torch.zeros_like(cols) if column_potential is None else column_potential.to(kernel)
    b = torch.exp(g - g.max())
    a = 1.0 / (kernel @ b)
    for _ in range(max_iter):
        b = cols / (kernel.T @ a)
        row_sums = a * (kernel @ b)
        if (row_sums - 1.0).abs().max() < tol:
            break
        a = a / row_sums
    plan = (a[:, None] * kernel * b[None, :]).to(log_q.dtype)
    return (plan, torch.log(b).to(log_q.dtype)) if return_potential else plan
