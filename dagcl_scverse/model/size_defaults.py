"""How training scales with the number of cells by default: when mini-batches start, and how many epochs.

Kept in the model package (torch and numpy only) so that runs without scanpy or anndata, such as
``benchmarks/gpu.py`` on a GPU machine, resolve the same defaults as :func:`dagcl.tl.cluster`.
"""

from __future__ import annotations

#: up to this many cells training is full-batch by default (every generalisation case is below it).
#: Above, batches of at most this many seed cells: their in-neighbours outside the batch are encoded
#: too, about 0.19 context cells per seed at 65,536 seeds on 1M synthetic cells (0.27 before the
#: border refinement, against 0.70 at 20,000 and 1.38 at 8,192; docs/large_data.md), and an epoch's time grows with seeds plus context
FULL_BATCH_MAX_CELLS = 65_536
#: seed cells per step above FULL_BATCH_MAX_CELLS
AUTO_BATCH_SIZE = FULL_BATCH_MAX_CELLS
#: the fewest pre-training and self-training epochs, however many cells
MIN_EPOCHS = 10


def default_epochs(n_cells: int) -> tuple[int, int]:
    """Size-aware ``(pretrain_epochs, epochs)``: 100 + 100 up to ``FULL_BATCH_MAX_CELLS`` cells.

    Above that an epoch is many mini-batch steps, each on as many cells as a small data set
    holds, so the epochs fall in proportion to 1 / cells, down to ``MIN_EPOCHS``.
    """
    if n_cells <= FULL_BATCH_MAX_CELLS:
        return 100, 100
    epochs = max(MIN_EPOCHS, round(100 * FULL_BATCH_MAX_CELLS / n_cells))
    return epochs, epochs


def default_carry_steps(n_cells: int) -> int:
    """Carry steps on every batch: half the default self-training epochs, 50 up to ``FULL_BATCH_MAX_CELLS`` cells.

    Each carry step visits every cell once, as an epoch does. At 50 steps on every one of the
    16 batches of 1M cells the carry took 1,060 of a 1,520 s run, more than the 20 training
    epochs ("What we tried" #65); scaled as the epochs are, it stays a prelude to self-training.
    """
    return default_epochs(n_cells)[1] // 2


def resolve_batch_size(batch_size: int | None, n_cells: int) -> int | None:
    """Seed cells per step: the given number, else full-batch (``None``) up to ``FULL_BATCH_MAX_CELLS`` cells."""
    if batch_size is not None:
        return None if batch_size >= n_cells else int(batch_size)
    return None if n_cells <= FULL_BATCH_MAX_CELLS else AUTO_BATCH_SIZE


def size_defaults(n_cells: int, batch_size: int | None = None) -> dict:
    """The size-aware fields of a :class:`~dagcl_scverse.model.config.TrainingConfig` for ``n_cells`` cells.

    ``pretrain_epochs``, ``epochs``, ``batch_size`` (``batch_size`` as given, resolved by
    :func:`resolve_batch_size`) and ``carry_steps``: what :func:`dagcl.tl.cluster` sets unless told otherwise.
    """
    pretrain_epochs, epochs = default_epochs(n_cells)
    return {
        "pretrain_epochs": pretrain_epochs,
        "epochs": epochs,
        "batch_size": resolve_batch_size(batch_size, n_cells),
        "carry_steps": default_carry_steps(n_cells),
    }
