"""Data-parallel training on torch.distributed: ``nproc`` processes started here, or torchrun's ranks.

:func:`train_in_processes` starts the processes itself (``spawn``) once the data have been read
and preprocessed, hands each the same arrays, and returns rank 0's result; only rank 0 writes
it, to a temporary file the caller reads. Each process trains on its own shard of the cells
(see :class:`~dagcl_scverse.model.batches.BatchPlan`) with gloo on CPU, NCCL on CUDA.

A process that fails stops the run: its peers are terminated and :class:`RankFailedError`
names it; collectives give up after ``TIMEOUT_SECONDS`` if a peer hangs instead. For tests,
``DAGCL_TEST_KILL_RANK=r`` makes rank ``r`` kill itself after its first optimisation step
(see :mod:`.world`).
"""

from __future__ import annotations

import datetime
import os
import pickle
import tempfile
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from .config import TrainingConfig
from .trainer import TrainingResult, train
from .world import World

#: a collective waits this long for a silent peer before the run fails
TIMEOUT_SECONDS = 120


class RankFailedError(RuntimeError):
    """A process of a data-parallel run failed, so the run stopped."""


def backend_for(device: torch.device) -> str:
    """The torch.distributed backend for training on ``device``."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def init_process_group(device: torch.device, **kwargs) -> None:
    """Join the default process group (``kwargs`` as for :func:`torch.distributed.init_process_group`)."""
    dist.init_process_group(backend_for(device), timeout=datetime.timedelta(seconds=TIMEOUT_SECONDS), **kwargs)


def _worker(rank: int, nproc: int, folder: str, threads: int, arguments: tuple, options: dict) -> None:
    torch.set_num_threads(threads)
    device = torch.device(options["device"])
    if device.type == "cuda":
        device = torch.device("cuda", rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    init_process_group(device, init_method=Path(folder, "rendezvous").as_uri(), rank=rank, world_size=nproc)
    try:
        options = {**options, "device": device, "progress_bar": options["progress_bar"] and rank == 0}
        result = train(*arguments, world=World(rank=rank, size=nproc), **options)
        if rank == 0:
            partial = Path(folder, "result.partial")
            with partial.open("wb") as handle:
                pickle.dump(result, handle, protocol=pickle.HIGHEST_PROTOCOL)
            partial.replace(Path(folder, "result.pickle"))
    finally:
        dist.destroy_process_group()


def train_in_processes(
    features,
    edge_index,
    edge_weight,
    config: TrainingConfig,
    *,
    nproc: int,
    device: torch.device | str = "cpu",
    progress_bar: bool = True,
    stage_indices=None,
) -> TrainingResult:
    """:func:`~dagcl_scverse.model.trainer.train` data-parallel in ``nproc`` processes on this machine.

    The arguments are those of ``train``. Each process gets an equal share of this machine's
    torch threads.

    Raises
    ------
    RankFailedError
        When a process raised an error or died; the message names its rank.
    """
    threads = max(1, torch.get_num_threads() // nproc)
    options = {"device": str(device), "progress_bar": progress_bar, "stage_indices": stage_indices}
    with tempfile.TemporaryDirectory(prefix="dagcl-ranks-") as folder:
        try:
            mp.start_processes(
                _worker,
                args=(nproc, folder, threads, (features, edge_index, edge_weight, config), options),
                nprocs=nproc,
                join=True,
                start_method="spawn",
            )
        except mp.ProcessRaisedException as error:
            raise RankFailedError(
                f"DAGCL rank {error.error_index} of {nproc} failed: {_last_line(str(error))}"
            ) from None
        except mp.ProcessExitedException as error:
            raise RankFailedError(
                f"DAGCL rank {error.error_index} of {nproc} stopped unexpectedly ({error}); the run was stopped"
            ) from None
        with Path(folder, "result.pickle").open("rb") as handle:
            return pickle.load(handle)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else text


def torchrun_world_size() -> int:
    """``WORLD_SIZE`` as torchrun sets it (1 when it is not set)."""
    return int(os.environ.get("WORLD_SIZE", "1"))
