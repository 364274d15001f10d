"""Encoder, decoder and Student-t cluster head of DAGCL."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .attention_aggregate import SortedGraph
from .layers import DynamicGraphAttention
from .sparse_input import SparseFeatures, sparse_linear


class DAGCLModule(nn.Module):
    """Graph-attention autoencoder with a Student-t clustering head.

    Encoder: ``Linear -> ELU -> DynamicGraphAttention -> ELU -> Linear`` to the latent space;
    decoder: a mirrored MLP back to the input features. Cluster centres are set with
    :meth:`init_centres` after pre-training.

    Parameters
    ----------
    n_features
        Number of input features (genes or components).
    hidden
        Width of the first encoder layer.
    attention_channels
        Output channels of the attention layer (the gated channels).
    latent
        Dimension of the embedding.
    learn_temperature
        Passed to :class:`~dagcl_scverse.model.layers.DynamicGraphAttention`.
    alpha
        Degrees of freedom of the Student-t kernel.
    """

    def __init__(
        self,
        n_features: int,
        *,
        hidden: int = 128,
        attention_channels: int = 64,
        latent: int = 32,
        learn_temperature: bool = True,
        alpha: float = 10.0,
    ) -> None:
        super().__init__()
        self.input = nn.Sequential(nn.Linear(n_features, hidden), nn.ELU())
        self.attention = DynamicGraphAttention(hidden, attention_channels, learn_temperature=learn_temperature)
        self.to_latent = nn.Sequential(nn.ELU(), nn.Linear(attention_channels, latent))
        self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.ELU(), nn.Linear(hidden, n_features))
        self.alpha = alpha
        self.centres = nn.Parameter(torch.zeros(0, latent))

    def encode(
        self,
        x: Tensor | SparseFeatures,
        edge_index: Tensor,
        edge_weight: Tensor | None,
        *,
        aggregation: float,
        capacity: float,
        graph: SortedGraph | None = None,
    ) -> Tensor:
        """Embedding ``(n, latent)`` of features ``x`` (dense, or :class:`SparseFeatures`) over the graph.

        ``graph``: ``edge_index`` already sorted, passed to the attention layer.
        """
        return self.encode_hidden(
            self.input_layer(x), edge_index, edge_weight, aggregation=aggregation, capacity=capacity, graph=graph
        )

    def input_layer(self, x: Tensor | SparseFeatures) -> Tensor:
        """The first layer's output ``(n, hidden)``: what a cell sends its neighbours messages from."""
        if isinstance(x, SparseFeatures):
            linear, activation = self.input[0], self.input[1]
            return activation(sparse_linear(x, linear.weight, linear.bias))
        return self.input(x)

    def encode_hidden(
        self,
        h: Tensor,
        edge_index: Tensor,
        edge_weight: Tensor | None,
        *,
        aggregation: float,
        capacity: float,
        graph: SortedGraph | None = None,
    ) -> Tensor:
        """Embedding ``(n, latent)`` of the first layer's output ``h`` (see :meth:`encode`)."""
        h = self.attention(h, edge_index, edge_weight, aggregation=aggregation, capacity=capacity, graph=graph)
        return self.to_latent(h)

    def decode(self, z: Tensor) -> Tensor:
        """Reconstructed features ``(n, n_features)`` of the embedding ``z``."""
        return self.decoder(z)

    def init_centres(self, centres: Tensor) -> None:
        """Set the cluster centres ``(k, latent)``, in the standardised cluster space."""
        self.centres = nn.Parameter(centres.detach().clone())

    @staticmethod
    def cluster_space(z: Tensor, *, mean: Tensor | None = None, std: Tensor | None = None) -> Tensor:
        """The embedding standardised per dimension, where centres live and q is computed.

        The losses leave the embedding's scale free; without this the Student-t kernel would
        see a scale-dependent, often nearly flat, landscape. By default ``z`` is standardised
        with its own per-dimension mean and (biased) standard deviation. Fixed ``mean`` and
        ``std``, each ``(latent,)`` (e.g. a reference's, from
        :func:`~dagcl_scverse.model.inference.latent_statistics`), are used instead when given,
        so that each cell's result depends on that cell alone.
        """
        if (mean is None) != (std is None):
            raise ValueError("Pass both `mean` and `std` of the embedding, or neither.")
        if mean is None:
            mean, std = z.mean(0), z.std(0, unbiased=False)
        return (z - mean) / (std + 1e-6)

    def soft_assign(self, z: Tensor, *, mean: Tensor | None = None, std: Tensor | None = None) -> Tensor:
        """Student-t soft assignment q (rows sum to 1) of the embedding ``z``, in the log domain.

        ``mean`` and ``std`` are passed to :meth:`cluster_space`.
        """
        return self.assign_standardised(self.cluster_space(z, mean=mean, std=std))

    def assign_standardised(self, zs: Tensor) -> Tensor:
        """Student-t soft assignment q of an embedding already in :meth:`cluster_space`."""
        # ok-dense: cells x clusters, linear in cells
        d2 = torch.cdist(zs, self.centres).pow(2)
        logits = -(self.alpha + 1.0) / 2.0 * torch.log1p(d2 / self.alpha)
        return torch.softmax(logits, dim=1)
