"""The scale issue's GPU check: a 10k-cell smoke run, then a million synthetic cells, on one CUDA device.

Made for a machine with torch, numpy and scipy but no scanpy or anndata: it calls
``dagcl_scverse.model`` directly, with the defaults ``dagcl.tl.cluster`` would resolve for that
many cells (``model.size_defaults``). For each size the features are drawn on the device with
torch (the distributions of ``synthetic_large.sparse_expression``: 2,000 genes, about 8 %
non-zero, 12 types of unequal size), the 15-neighbour graph is built on the device by exact
brute-force search over 30 principal components (from the features alone, never the types),
and ``trainer.train`` runs on the device. Then two ``deterministic=True`` runs of the smoke
size are compared. Every result is appended as one JSON line to ``OUT/gpu.jsonl`` as soon as
it exists, so a run stopped at its time limit still leaves what it measured.

Usage (one call on the device machine, ``timeout_s`` at most 480)::

    PYTHONUNBUFFERED=1 python benchmarks/gpu.py --out $OUT

and, to check the script itself on a CPU: ``python benchmarks/gpu.py --device cpu --sizes 3000
--deterministic-size 0 --epochs 2``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).parent))
from synthetic_large import DENSITY, MARKERS_PER_TYPE, N_GENES, N_TYPES

from dagcl_scverse.model import trainer
from dagcl_scverse.model.config import TrainingConfig
from dagcl_scverse.model.determinism import deterministic_algorithms
from dagcl_scverse.model.size_defaults import size_defaults
from dagcl_scverse.model.sparse_input import csr_beta_warning_silenced

#: cells drawn or projected at a time
CHUNK = 16_384
#: cells whose distances to every cell are held at a time (4,096 x 1M float32: 16 GB)
QUERY_CHUNK = 4_096
N_NEIGHBOURS = 15
N_PCS = 30


def expression(n_cells: int, device: torch.device, seed: int = 0) -> tuple[sp.csr_matrix, np.ndarray]:
    """Log-normalised-like CSR expression drawn on ``device`` (returned on the host) and the types."""
    generator = torch.Generator(device=device).manual_seed(seed)

    def lognormal(mean: float, sigma: float, size) -> torch.Tensor:
        return torch.exp(mean + sigma * torch.randn(size, generator=generator, device=device))

    detection = lognormal(float(np.log(DENSITY)) - 0.6, 1.0, (N_GENES,)).clamp(0.002, 0.9).repeat(N_TYPES, 1)
    level = lognormal(0.0, 0.5, (N_GENES,)).repeat(N_TYPES, 1)
    for t in range(N_TYPES):
        markers = torch.randperm(N_GENES, generator=generator, device=device)[:MARKERS_PER_TYPE]
        detection[t, markers] = (detection[t, markers] * 4 + 0.1).clamp(max=0.95)
        level[t, markers] *= 3.0
    proportions = torch.as_tensor(np.random.default_rng(seed).dirichlet(np.full(N_TYPES, 3.0)), device=device)
    types = torch.multinomial(proportions, n_cells, replacement=True, generator=generator)
    blocks = []
    for start in range(0, n_cells, CHUNK):
        chunk = types[start : start + CHUNK]
        detected = torch.rand(chunk.numel(), N_GENES, generator=generator, device=device) < detection[chunk]
        # gamma(2, scale) as the sum of two exponentials
        uniform = torch.rand(2, chunk.numel(), N_GENES, generator=generator, device=device).clamp_min(1e-12)
        values = torch.log1p(-uniform.log().sum(0) * level[chunk]) * detected  # ok-dense: one chunk of cells
        with csr_beta_warning_silenced():
            block = values.to_sparse_csr()
        blocks.append(
            sp.csr_matrix(
                (block.values().cpu().numpy(), block.col_indices().cpu().numpy(), block.crow_indices().cpu().numpy()),
                shape=tuple(block.shape),
            )
        )
    return sp.vstack(blocks, format="csr"), types.cpu().numpy()


def principal_scores(features: sp.csr_matrix, device: torch.device) -> torch.Tensor:
    """``(n, N_PCS)`` scores of the centred features on their top principal axes, computed on ``device``."""
    n = features.shape[0]
    gram = torch.zeros(N_GENES, N_GENES, dtype=torch.float64, device=device)
    total = torch.zeros(N_GENES, dtype=torch.float64, device=device)
    for start in range(0, n, CHUNK):
        block = _dense_rows(features, start, device).double()
        gram += block.T @ block
        total += block.sum(0)
    mean = total / n
    covariance = gram / n - torch.outer(mean, mean)
    axes = torch.linalg.eigh(covariance).eigenvectors[:, -N_PCS:].float()
    return torch.cat([(_dense_rows(features, s, device) - mean.float()) @ axes for s in range(0, n, CHUNK)])


def _dense_rows(features: sp.csr_matrix, start: int, device: torch.device) -> torch.Tensor:
    # ok-dense: one chunk of cells x genes at a time
    return torch.as_tensor(features[start : start + CHUNK].toarray(), device=device)


def knn_edges(scores: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Symmetrised 15-neighbour graph as ``(2, E)`` (sender, receiver) and Gaussian weights."""
    n = scores.shape[0]
    rows, cols, dists = [], [], []
    for start in range(0, n, QUERY_CHUNK):
        d = torch.cdist(scores[start : start + QUERY_CHUNK], scores)  # ok-dense: one chunk of queries x cells
        d[torch.arange(d.shape[0]), torch.arange(start, start + d.shape[0])] = float("inf")
        top = d.topk(N_NEIGHBOURS, largest=False)
        rows.append(torch.arange(start, start + d.shape[0], device=scores.device).repeat_interleave(N_NEIGHBOURS))
        cols.append(top.indices.ravel())
        dists.append(top.values.ravel())
    rows, cols, dists = torch.cat(rows), torch.cat(cols), torch.cat(dists)
    sigma = dists.view(n, N_NEIGHBOURS).max(1).values.clamp_min(1e-12)
    weights = torch.exp(-((dists / sigma[rows]) ** 2))
    graph = sp.csr_matrix((weights.cpu().numpy(), (rows.cpu().numpy(), cols.cpu().numpy())), shape=(n, n))
    graph = graph.maximum(graph.T).tocoo()
    return np.stack([graph.col, graph.row]).astype(np.int64), graph.data.astype(np.float32)


def adjusted_rand(a: np.ndarray, b: np.ndarray) -> float:
    """ARI of two labelings (numpy only: the device machine has no scikit-learn)."""
    _, a = np.unique(a, return_inverse=True)
    _, b = np.unique(b, return_inverse=True)
    table = np.bincount(a * (b.max() + 1) + b, minlength=(a.max() + 1) * (b.max() + 1)).astype(float)

    def pairs(x: np.ndarray) -> float:
        return float((x * (x - 1) / 2).sum())

    rows = table.reshape(a.max() + 1, b.max() + 1)
    index, expected = pairs(rows), pairs(rows.sum(1)) * pairs(rows.sum(0)) / pairs(np.array([a.size]))
    maximum = (pairs(rows.sum(1)) + pairs(rows.sum(0))) / 2
    return float((index - expected) / (maximum - expected)) if maximum != expected else 1.0


def train_once(features, edges, n_cells: int, device: torch.device, *, seed: int, epochs: int | None, deterministic):
    """Labels, seconds and the result of one training run with the size's defaults."""
    defaults = size_defaults(n_cells)
    if epochs is not None:
        defaults.update(pretrain_epochs=epochs, epochs=epochs)
    config = TrainingConfig(n_clusters=N_TYPES, random_state=seed, **defaults)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    with deterministic_algorithms(device, deterministic):
        result = trainer.train(features, *edges, config, device=device, progress_bar=False)
    return result, time.perf_counter() - start


def measure_size(n_cells: int, device: torch.device, epochs: int | None) -> dict:
    """Draw, build the graph, train once; the row of this size."""
    start = time.perf_counter()
    features, types = expression(n_cells, device)
    features_s = time.perf_counter() - start
    start = time.perf_counter()
    edges = knn_edges(principal_scores(features, device))
    graph_s = time.perf_counter() - start
    result, train_s = train_once(features, edges, n_cells, device, seed=0, epochs=epochs, deterministic=False)
    epoch_seconds = result.timings.get("epoch_seconds", np.array([]))
    return {
        "n_cells": n_cells,
        "device": str(device),
        "nnz_share": features.nnz / (n_cells * N_GENES),
        "n_edges": int(edges[0].shape[1]),
        "features_s": features_s,
        "graph_s": graph_s,
        "train_s": train_s,
        "s_per_epoch": float(np.median(epoch_seconds)) if len(epoch_seconds) else None,
        "one_off_s": float(np.sum(result.timings.get("one_off_seconds", 0.0))),
        "steps_per_epoch": int(result.steps_per_epoch),
        "batch_size": int(result.batch_size),
        "peak_gpu_gb": torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None,
        "ari": adjusted_rand(types, result.labels),
    }


def determinism_check(n_cells: int, device: torch.device, epochs: int | None) -> dict:
    """Two ``deterministic=True`` runs of the same data and seed: do their labels agree?"""
    features, _ = expression(n_cells, device)
    edges = knn_edges(principal_scores(features, device))
    runs = [train_once(features, edges, n_cells, device, seed=0, epochs=epochs, deterministic=True) for _ in range(2)]
    (first, _), (second, _) = runs
    return {
        "check": "deterministic",
        "n_cells": n_cells,
        "labels_equal": float(np.mean(first.labels == second.labels)),
        "embedding_max_abs_diff": float(np.abs(first.embedding - second.embedding).max()),
        "train_s": [seconds for _, seconds in runs],
    }


def main() -> None:
    """Run the sizes, then the determinism check, appending each result to OUT/gpu.jsonl."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="*", type=int, default=[10_000, 1_000_000])
    parser.add_argument("--deterministic-size", type=int, default=10_000, help="0 skips the check")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--epochs", type=int, help="pre-training and self-training epochs (default: the size's)")
    parser.add_argument("--out", type=Path, default=Path("gpu_out"))
    args = parser.parse_args()
    device = torch.device(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "gpu.jsonl"
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    rows = [{"check": "device", "name": name, "torch": torch.__version__}]
    rows += [lambda n=n: measure_size(n, device, args.epochs) for n in args.sizes]
    if args.deterministic_size:
        rows.append(lambda: determinism_check(args.deterministic_size, device, args.epochs))
    for row in rows:
        row = row() if callable(row) else row
        with log.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
