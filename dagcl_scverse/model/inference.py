"""Inference with a DAGCL module: encode cells over their edges and assign them to the centres.

One routine serves both the trainer's final pass over the training graph and the mapping of
new cells onto a trained model (``dagcl.tl.ingest``), so both compute the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor

from .attention_aggregate import SortedGraph
from .module import DAGCLModule
from .sparse_input import SparseFeatures

#: the settings :func:`module_from_state` needs, as stored by ``dagcl.tl.cluster``
MODULE_SETTINGS = ("n_features", "hidden", "attention_channels", "latent", "student_t_dof", "learn_temperature")


def latent_statistics(z: Tensor) -> tuple[Tensor, Tensor]:
    """Per-dimension mean and (biased) standard deviation of the embedding ``z``.

    These are the statistics :meth:`DAGCLModule.cluster_space` standardises with by default.
    """
    return z.mean(0), z.std(0, unbiased=False)


def embed(
    module: DAGCLModule,
    features: Tensor | SparseFeatures,
    edge_index: Tensor,
    edge_weight: Tensor | None,
    *,
    aggregation: float,
    capacity: float,
    graph: SortedGraph | None = None,
) -> Tensor:
    """The embedding ``(n, latent)`` of cells over their edges, without gradients.

    The arguments are those of :func:`infer`, which adds the soft assignments.
    """
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            return module.encode(
                features, edge_index, edge_weight, aggregation=aggregation, capacity=capacity, graph=graph
            )
    finally:
        module.train(was_training)


def infer(
    module: DAGCLModule,
    features: Tensor | SparseFeatures,
    edge_index: Tensor,
    edge_weight: Tensor | None,
    *,
    aggregation: float,
    capacity: float,
    latent_mean: Tensor | None = None,
    latent_std: Tensor | None = None,
    graph: SortedGraph | None = None,
) -> tuple[Tensor, Tensor]:
    """Embedding and soft assignments of cells over their edges, without gradients.

    Parameters
    ----------
    module
        A trained module with its centres set; it is not modified (its training mode is
        restored on return).
    features
        ``(n, f)`` input features of every node (dense, or :class:`SparseFeatures`).
    edge_index
        ``(2, E)`` edges, row 0 the source (sender) and row 1 the target (receiver) node.
    edge_weight
        ``(E,)`` positive edge weights, or ``None``.
    aggregation, capacity
        Aggregation strength and channel capacity of the attention layer.
    latent_mean, latent_std
        ``(latent,)`` statistics to standardise the embedding with before the assignment (see
        :func:`latent_statistics`); ``None`` uses those of this batch of nodes, as training does.
    graph
        ``edge_index`` already sorted (:meth:`SortedGraph.from_edge_index`), if the caller keeps it.

    Returns
    -------
    The embedding ``(n, latent)`` and the soft assignments ``(n, k)`` (rows sum to 1).
    """
    z = embed(module, features, edge_index, edge_weight, aggregation=aggregation, capacity=capacity, graph=graph)
    with torch.no_grad():
        q = module.soft_assign(z, mean=latent_mean, std=latent_std)
    return z, q


def module_from_state(settings: Mapping, state_dict: Mapping[str, np.ndarray], centres: np.ndarray) -> DAGCLModule:
    """Rebuild a trained module (CPU, eval mode, no gradients) from stored numpy arrays.

    Parameters
    ----------
    settings
        The entries named in :data:`MODULE_SETTINGS`.
    state_dict
        The module's parameters as numpy arrays, without ``"centres"``; they are copied.
    centres
        ``(k, latent)`` cluster centres; copied.
    """
    missing = [name for name in MODULE_SETTINGS if name not in settings]
    if missing:
        raise KeyError(f"The stored model lacks the setting(s) {', '.join(missing)}; re-run `dagcl.tl.cluster`.")
    module = DAGCLModule(
        int(settings["n_features"]),
        hidden=int(settings["hidden"]),
        attention_channels=int(settings["attention_channels"]),
        latent=int(settings["latent"]),
        learn_temperature=bool(settings["learn_temperature"]),
        alpha=float(settings["student_t_dof"]),
    )
    module.init_centres(torch.tensor(np.asarray(centres), dtype=torch.float32))
    tensors = {name: torch.tensor(np.asarray(value)) for name, value in state_dict.items()}
    tensors["centres"] = module.centres.detach()
    module.load_state_dict(tensors, strict=True)
    module.eval()
    module.requires_grad_(False)
    return module


def state_dict_arrays(module: DAGCLModule) -> dict[str, np.ndarray]:
    """The module's parameters and buffers as numpy arrays (CPU copies), without the centres."""
    return {
        name: tensor.detach().cpu().numpy().copy() for name, tensor in module.state_dict().items() if name != "centres"
    }
