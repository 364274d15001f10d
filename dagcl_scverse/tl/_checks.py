"""Argument checks of `dagcl.tl.cluster`: every one runs before anything is read or trained."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from anndata import AnnData

from dagcl_scverse.model.schedules import SCHEDULES

#: Leiden's igraph seeding (numpy RandomState) takes 32-bit seeds
MAX_RANDOM_STATE = 2**32 - 1


def check_positive_int(name: str, value, *, minimum: int = 1, maximum: int | None = None) -> None:
    """Raise a ``TypeError`` unless ``value`` is an integer, a ``ValueError`` unless it is in range."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, Integral):
        raise TypeError(f"`{name}` must be an integer, got {type(value).__name__}.")
    if value < minimum:
        raise ValueError(f"`{name}` must be at least {minimum}, got {value}.")
    if maximum is not None and value > maximum:
        raise ValueError(f"`{name}` must be at most {maximum}, got {value}.")


def check_bool(name: str, value) -> None:
    """Raise a ``TypeError`` unless ``value`` is True or False."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"`{name}` must be True or False, got {value!r}.")


def check_cluster_arguments(
    adata: AnnData,
    n_clusters: int | None,
    *,
    key_added: str,
    schedule: str,
    epochs: int | None,
    pretrain_epochs: int | None,
    lr: float,
    stages: int,
    random_state: int,
    switches: dict[str, bool],
    batch_size: int | None = None,
    nproc: int = 1,
) -> None:
    """Check the arguments of :func:`dagcl_scverse.tl.cluster` that do not need the data's contents.

    ``switches`` maps the names of the boolean arguments to their values.
    """
    if not isinstance(adata, AnnData):
        raise TypeError(f"`adata` must be an AnnData, got {type(adata).__name__}.")
    if adata.n_obs < 2:
        raise ValueError(
            f"DAGCL needs at least 2 cells, got {adata.n_obs}; check the filtering or subsetting "
            "that produced this AnnData."
        )
    if not isinstance(key_added, str):
        raise TypeError(f"`key_added` must be a string, got {type(key_added).__name__}.")
    if not key_added:
        raise ValueError("`key_added` must not be empty; it names the results, e.g. 'dagcl'.")
    if not isinstance(schedule, str) or schedule not in SCHEDULES:
        raise ValueError(f"Unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}.")
    for name, value in (("epochs", epochs), ("pretrain_epochs", pretrain_epochs)):
        if value is not None:
            check_positive_int(name, value)
    if isinstance(lr, bool | np.bool_) or not isinstance(lr, Real):
        raise TypeError(f"`lr` must be a number, got {type(lr).__name__}.")
    if not np.isfinite(lr) or lr <= 0:
        raise ValueError(f"`lr` must be a positive number, got {lr!r}.")
    check_positive_int("stages", stages, minimum=0)
    if batch_size is not None:
        check_positive_int("batch_size", batch_size)
    check_positive_int("nproc", nproc)
    if nproc > adata.n_obs:
        raise ValueError(f"`nproc={nproc}` exceeds the number of cells ({adata.n_obs}); each process needs cells.")
    check_positive_int("random_state", random_state, minimum=0, maximum=MAX_RANDOM_STATE)
    for name, value in switches.items():
        check_bool(name, value)
    if n_clusters is not None:
        check_positive_int("n_clusters", n_clusters, minimum=2)
        if n_clusters > adata.n_obs:
            raise ValueError(
                f"`n_clusters={n_clusters}` exceeds the number of cells ({adata.n_obs}); pass at most {adata.n_obs}."
            )
