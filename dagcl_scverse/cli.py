"""The ``dagcl`` command: train (``dagcl train``), map new cells onto a reference (``dagcl ingest``), or the demo."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

STANDARD_PIPELINE = (
    "filter_genes(min_counts=1), normalize_total(target_sum=1e4), log1p (all genes kept in .raw),\n"
    "  highly_variable_genes(n_top_genes=2000, subset=True), pca(n_comps=50), neighbors(n_neighbors=15)"
)
#: genes per cluster in the markers csv, and how many of them are printed
N_MARKERS, N_MARKERS_PRINTED = 10, 3

TRAIN_DESCRIPTION = f"""\
Cluster the cells of FILE with DAGCL and write the result as an h5ad.

FILE is either an h5 file in the deep-clustering literature's layout (X: cells x genes
counts, Y: integer cell-type codes, optional ADT_X; see dagcl_scverse.io.read_h5) or an
.h5ad. Raw counts go through the standard pipeline
  {STANDARD_PIPELINE}
unless the h5ad already carries a neighbour graph (uns["neighbors"]), which is then used as is.

The number of clusters is estimated with Leiden (resolution 1) on the same graph unless
--n-clusters is given; cell-type labels (--labels-key) are only used to score the result
(ACC / NMI / ARI), never to train or to choose k. The literature's protocol passes the true
number of cell types explicitly, e.g. --n-clusters 13 for the mouse pancreas data.

Marker genes of each cluster (scanpy's rank_genes_groups: Wilcoxon test, the t-test above
100,000 cells, on .raw when the data has it) are printed, top 3 per cluster, and the top 10
written to <OUT stem>_markers.csv next to OUT.h5ad, with the columns cluster, rank, gene,
score, logfoldchange, pvals_adj; --no-markers skips them.

example:
  dagcl train --data Maayan_Mouse_Pancreas_cell_1.h5 --epochs 200 --lr 1e-3 --seed 0 --out r.h5ad
"""

DEMO_DESCRIPTION = f"""\
Cluster the shipped mouse pancreas data set (822 cells, 13 annotated types) with DAGCL:
the standard pipeline
  {STANDARD_PIPELINE}
k estimated by Leiden, scores against the annotation (ACC / NMI / ARI), marker genes of each
cluster (top 3 printed; unless --no-markers), and writes the h5ad, the top 10 marker genes per
cluster (mouse_pancreas_dagcl_markers.csv), umap.png and curriculum.png into OUT_DIR. The
shipped data set has no gene names: genes are called gene_<index>.
"""

INGEST_DESCRIPTION = """\
Map the cells of QUERY onto the DAGCL clustering of REF (an .h5ad written by `dagcl train` or
by dagcl.tl.cluster) without retraining, as dagcl.tl.ingest does: each query cell is encoded
through the trained model over its nearest reference cells (in the reference's PCA space) and
assigned to the reference's clusters. The result is QUERY with the labels, confidence,
embedding and soft assignments (and a UMAP position when REF has a UMAP), written as an h5ad.

QUERY is an h5 in the deep-clustering literature's layout or an .h5ad, with genes matched to
the reference's by name. Raw counts (integers) get the reference's normalisation
(normalize_total to the reference's target sum, then log1p) when the reference came through
the standard pipeline; otherwise QUERY must hold expression processed like the reference's X.
Batch effects between QUERY and REF are not corrected, and cells of a type absent from REF
get one of its clusters, often with high confidence.

A one-line summary gives the cells mapped, the share with confidence below 0.5 and, when
QUERY has cell-type labels (--labels-key), the scores against them.

example:
  dagcl ingest --ref pancreas_dagcl.h5ad --query new_cells.h5 --out new_cells_dagcl.h5ad
"""
#: confidence below which a mapped cell counts as uncertain in the summary
LOW_CONFIDENCE = 0.5

DEMO_FILE = "mouse_pancreas_dagcl.h5ad"


class UserError(Exception):
    """A problem with the command's input; reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """Argument errors as one line on stderr, exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _checked(convert, is_valid, expected: str):
    """An argparse ``type`` that converts the text and rejects values failing ``is_valid``."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not is_valid(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


_positive_int = _checked(int, lambda v: v >= 1, "a positive integer")
_n_clusters = _checked(int, lambda v: v >= 2, "at least 2 clusters")
_seed = _checked(int, lambda v: v >= 0, "a non-negative integer")
_learning_rate = _checked(float, lambda v: 0 < v < float("inf"), "a positive number")


def _message(error: BaseException) -> str:
    # str(KeyError("x")) is "'x'": use the message itself
    text = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    return " ".join(str(text).split())


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    from .model.schedules import SCHEDULES

    parser.add_argument(
        "--n-clusters", type=_n_clusters, metavar="K",
        help="number of clusters (default: estimated by Leiden; never taken from the labels)",
    )  # fmt: skip
    parser.add_argument(
        "--epochs", type=_positive_int, metavar="N",
        help="pre-training and self-training epochs, N each, unless --pretrain-epochs is given "
        "(default: size-aware)",
    )  # fmt: skip
    parser.add_argument(
        "--pretrain-epochs", type=_positive_int, metavar="N", help="pre-training epochs (default: as --epochs)"
    )
    parser.add_argument(
        "--lr",
        type=_learning_rate,
        default=1e-3,
        metavar="X",
        help="learning rate; shared out over the mini-batch steps of a self-training epoch (default: 1e-3)",
    )
    parser.add_argument("--seed", type=_seed, default=0, metavar="S", help="random seed (default: 0)")
    parser.add_argument(
        "--schedule", choices=SCHEDULES, default="convex",
        help="shape of the KL weight over self-training (default: convex)",
    )  # fmt: skip
    parser.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto",
        help="where to train (default: auto, CUDA when available)",
    )  # fmt: skip
    parser.add_argument(
        "--batch-size", type=_positive_int, metavar="N",
        help="seed cells per optimisation step (default: full-batch up to 65,536 cells, at most 65,536 above)",
    )  # fmt: skip
    parser.add_argument(
        "--nproc", type=_positive_int, metavar="N",
        help="train data-parallel in N processes on this machine (default: 1; under torchrun, its WORLD_SIZE)",
    )  # fmt: skip


def _add_markers_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-markers", dest="markers", action="store_false",
        help=f"skip the marker genes (default: rank them, print the top {N_MARKERS_PRINTED} per cluster and "
        f"write the top {N_MARKERS} to <OUT stem>_markers.csv)",
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The ``dagcl`` argument parser with its ``train`` and ``demo`` subcommands."""
    from . import __version__

    parser = _Parser(
        prog="dagcl",
        description="DAGCL: curriculum graph-attention deep clustering of single cells.",
    )
    parser.add_argument("--version", action="version", version=f"dagcl-scverse {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="{train,ingest,demo}")

    train = commands.add_parser(
        "train",
        help="cluster the cells of an h5 or h5ad file",
        description=TRAIN_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("--data", required=True, metavar="FILE", help="literature h5 file or .h5ad")
    _add_run_options(train)
    train.add_argument(
        "--labels-key", metavar="KEY",
        help="obs column (or the h5's Y) with the known cell types, used for scoring only (default: cell_type)",
    )  # fmt: skip
    train.add_argument(
        "--out", metavar="OUT.h5ad", help="where to write the result (default: <FILE stem>_dagcl.h5ad here)"
    )
    train.add_argument("--figures", metavar="DIR", help="also write umap.png and curriculum.png into DIR")
    _add_markers_option(train)
    train.set_defaults(handler=_train)

    ingest = commands.add_parser(
        "ingest",
        help="map new cells onto a trained DAGCL reference",
        description=INGEST_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ingest.add_argument("--ref", required=True, metavar="REF.h5ad", help="the reference, clustered by DAGCL")
    ingest.add_argument("--query", required=True, metavar="QUERY", help="the new cells: literature h5 file or .h5ad")
    ingest.add_argument(
        "--out", metavar="OUT.h5ad", help="where to write the mapped query (default: <QUERY stem>_dagcl.h5ad here)"
    )
    ingest.add_argument(
        "--labels-key", metavar="KEY",
        help="obs column (or the h5's Y) of the query with known cell types, for scoring only (default: cell_type)",
    )  # fmt: skip
    ingest.set_defaults(handler=_ingest)

    demo = commands.add_parser(
        "demo",
        help="cluster the shipped mouse pancreas data set and write results and figures",
        description=DEMO_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument(
        "--out-dir", default="dagcl-demo", metavar="OUT_DIR", help="output folder (default: ./dagcl-demo)"
    )
    demo.add_argument("--seed", type=_seed, default=0, metavar="S", help="random seed (default: 0)")
    demo.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="where to train (default: auto)"
    )
    _add_markers_option(demo)
    demo.set_defaults(handler=_demo)
    return parser


def _is_counts(matrix) -> bool:
    """Whether a sample of ``matrix`` is non-negative and integer-valued."""
    import numpy as np
    import scipy.sparse as sp

    values = matrix.data if sp.issparse(matrix) else np.asarray(matrix).ravel()
    values = np.asarray(values[:1_000_000])
    return bool(np.isfinite(values).all() and (values >= 0).all() and np.array_equal(values, np.round(values)))


def log_normalise(adata) -> None:
    """The standard pipeline's first steps on raw counts in ``adata.X``, in place.

    Counts are kept in ``layers["counts"]``; genes without counts are dropped; ``X`` becomes
    float32 expression normalised to 10,000 counts per cell and log1p-transformed.
    """
    import numpy as np
    import scanpy as sc

    if "counts" not in adata.layers:
        adata.layers["counts"] = adata.X.copy()
    adata.X = adata.X.astype(np.float32)
    sc.pp.filter_genes(adata, min_counts=1)
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)


def standard_pipeline(adata) -> None:
    """DESIGN.md's standard preprocessing of raw counts in ``adata.X``, in place.

    :func:`log_normalise`, then the log-normalised expression of all genes in ``adata.raw``
    (set before the highly variable genes subset, for marker genes); the number of principal
    components is capped for tiny data sets.
    """
    import scanpy as sc

    log_normalise(adata)
    adata.raw = adata
    sc.pp.highly_variable_genes(adata, n_top_genes=2000, subset=True)
    sc.pp.pca(adata, n_comps=min(50, adata.n_obs - 1, adata.n_vars - 1))
    sc.pp.neighbors(adata, n_neighbors=15)


def _read(path: Path):
    import anndata as ad

    from .io import read_h5

    if not path.exists():
        raise UserError(f"no such file: '{path}'")
    try:
        if path.suffix == ".h5ad":
            return ad.read_h5ad(path)
        return read_h5(path)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UserError(f"cannot read '{path}': {_message(error)}") from None


def _prepare(adata) -> str:
    """Apply the standard pipeline unless a neighbour graph exists; describe what was done."""
    if "neighbors" in adata.uns:
        return "using the neighbour graph stored in the file"
    if "counts" in adata.layers and _is_counts(adata.layers["counts"]):
        adata.X = adata.layers["counts"].copy()
    elif not _is_counts(adata.X):
        raise UserError(
            "X holds no raw counts (negative or non-integer values) and there is no neighbour graph: "
            "store raw counts in X or layers['counts'], or run sc.pp.neighbors and save the h5ad first"
        )
    n_genes = adata.n_vars
    standard_pipeline(adata)
    n_pcs = adata.obsm["X_pca"].shape[1]
    return f"standard pipeline: {n_genes} genes -> {adata.n_vars} highly variable, PCA {n_pcs}, 15 neighbours"


def _format_scores(scores: dict) -> str:
    return (
        f"ACC {scores['acc']:.3f}  NMI {scores['nmi']:.3f}  ARI {scores['ari']:.3f}  "
        f"({scores['n_clusters']} clusters, {scores['n_types']} types)"
    )


def _save_figures(adata, folder: Path, truth: str | None) -> list[Path]:
    import matplotlib.pyplot as plt
    import scanpy as sc

    from . import pl

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    colors = ["dagcl"] + ([truth] if truth else []) + ["dagcl_confidence"]
    fig = sc.pl.umap(adata, color=colors, wspace=0.4, show=False, return_fig=True)
    path = folder / "umap.png"
    fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)
    written.append(path)
    if hasattr(pl, "curriculum"):
        fig = pl.curriculum(adata, show=False)
        fig = fig if fig is not None else plt.gcf()
        path = folder / "curriculum.png"
        fig.savefig(path, dpi=150, bbox_inches="tight")
        plt.close(fig)
        written.append(path)
    return written


def _markers(adata):
    """Rank the clusters' marker genes and print the top ones; the table, or ``None`` when there is none."""
    from .tl import marker_table

    try:
        table = marker_table(adata, key="dagcl", n_genes=N_MARKERS)
    except ValueError as error:  # e.g. a single non-empty cluster: the clustering itself still stands
        print(f"No marker genes: {_message(error)}")
        return None
    params = adata.uns["rank_genes_groups"]["params"]
    data = "adata.raw" if params["use_raw"] else "X"
    print(f"Marker genes ({params['method']} test on {data}), top {N_MARKERS_PRINTED} per cluster:")
    for cluster, genes in table.groupby("cluster", sort=False)["gene"]:
        print(f"  cluster {cluster}: {', '.join(genes.iloc[:N_MARKERS_PRINTED])}")
    return table


def _run(
    adata,
    *,
    source: str,
    out: Path,
    figures: Path | None,
    labels_key: str | None,
    labels_required: bool,
    n_clusters: int | None,
    epochs: int | None,
    pretrain_epochs: int | None,
    lr: float,
    seed: int,
    schedule: str,
    device: str,
    markers: bool,
    batch_size: int | None = None,
    nproc: int | None = None,
    share=None,
) -> int:
    import scanpy as sc

    from .model.distributed import RankFailedError
    from .model.trainer import TrainingDivergedError
    from .tl import cluster, evaluate
    from .tl._settings import resolve_device

    try:
        resolved = resolve_device(device)
    except ValueError:
        raise UserError(f"--device {device}, but torch sees no CUDA device; use --device cpu or auto") from None
    _writable(out)
    truth = labels_key or "cell_type"
    if truth not in adata.obs.columns:
        if labels_required:
            found = ", ".join(adata.obs.columns) or "none"
            raise UserError(f"--labels-key '{truth}' is not a column of obs (found: {found})")
        truth = None

    print(f"Read {adata.n_obs} cells x {adata.n_vars} genes from {source}")
    prepared = _prepare(adata)
    print(prepared[0].upper() + prepared[1:])
    if share is not None:
        share(adata)
    try:
        cluster(
            adata,
            n_clusters=n_clusters,
            epochs=epochs,
            pretrain_epochs=epochs if pretrain_epochs is None else pretrain_epochs,
            lr=lr,
            schedule=schedule,
            random_state=seed,
            accelerator=device,
            batch_size=batch_size,
            nproc=nproc or 1,
            progress_bar=True,
        )
    except (ValueError, KeyError, TypeError, TrainingDivergedError, RankFailedError) as error:
        raise UserError(_message(error)) from None
    params = adata.uns["dagcl"]["params"]
    how = "estimated by Leiden; pass --n-clusters to fix it" if params["n_clusters_estimated"] else "given"
    n_found = adata.obs["dagcl"].nunique()
    found = f", {n_found} of them non-empty" if n_found < params["n_clusters"] else ""
    processes = f", {params['world_size']} processes" if params["world_size"] > 1 else ""
    steps = f" of {params['steps_per_epoch']} steps" if params["steps_per_epoch"] > 1 else ""
    print(
        f"DAGCL: k={params['n_clusters']} ({how}){found}, {params['pretrain_epochs']}+{params['epochs']} epochs"
        f"{steps} on {resolved.type}{processes}, seed {seed}"
    )
    if truth is not None:
        print(_format_scores(evaluate(adata, key="dagcl", truth=truth)))
    else:
        print("No cell-type labels (obs['cell_type'] or --labels-key): not scored")
    if markers:
        table = _markers(adata)
    else:
        table = None
        # a ranking of the file's earlier "dagcl" labels would not describe the new ones
        ranking = adata.uns.get("rank_genes_groups")
        if isinstance(ranking, dict) and ranking.get("params", {}).get("groupby") == "dagcl":
            del adata.uns["rank_genes_groups"]

    if figures is not None and "X_umap" not in adata.obsm:
        sc.tl.umap(adata, random_state=seed)
    try:
        adata.write_h5ad(out)
    except OSError as error:
        raise UserError(f"cannot write '{out}': {_message(error)}") from None
    print(f"Wrote {out}")
    if table is not None:
        path = out.with_name(f"{out.stem}_markers.csv")
        try:
            table.to_csv(path, index=False, float_format="%.6g")
        except OSError as error:
            raise UserError(f"cannot write '{path}': {_message(error)}") from None
        print(f"Wrote {path}")
    if figures is not None:
        written = _save_figures(adata, figures, truth)
        print("Wrote " + ", ".join(str(path) for path in written))
    return 0


def _train(args: argparse.Namespace) -> int:
    from .model.distributed import torchrun_world_size

    if torchrun_world_size() > 1:
        return _train_under_torchrun(args)
    return _train_here(args)


def _train_under_torchrun(args: argparse.Namespace) -> int:
    """Every rank trains; rank 0 alone reads, preprocesses (then shares the result), reports and writes."""
    import torch.distributed as dist

    from .model.distributed import init_process_group
    from .tl import cluster
    from .tl._settings import resolve_device

    if args.nproc is not None:
        raise UserError("under torchrun the number of processes is its WORLD_SIZE; omit --nproc")
    init_process_group(resolve_device(args.device))
    try:
        if dist.get_rank() == 0:
            return _train_here(args, share=lambda adata: dist.broadcast_object_list([adata], src=0))
        received = [None]
        dist.broadcast_object_list(received, src=0)
        cluster(
            received[0], n_clusters=args.n_clusters, epochs=args.epochs,
            pretrain_epochs=args.epochs if args.pretrain_epochs is None else args.pretrain_epochs, lr=args.lr,
            schedule=args.schedule, random_state=args.seed, accelerator=args.device, batch_size=args.batch_size,
            progress_bar=False,
        )  # fmt: skip
        return 0
    finally:
        dist.destroy_process_group()


def _train_here(args: argparse.Namespace, share=None) -> int:
    data = Path(args.data)
    adata = _read(data)
    out = Path(args.out) if args.out else Path(f"{data.stem}_dagcl.h5ad")
    return _run(
        adata,
        source=str(data),
        out=out,
        figures=Path(args.figures) if args.figures else None,
        labels_key=args.labels_key,
        labels_required=args.labels_key is not None,
        n_clusters=args.n_clusters,
        epochs=args.epochs,
        pretrain_epochs=args.pretrain_epochs,
        lr=args.lr,
        seed=args.seed,
        schedule=args.schedule,
        device=args.device,
        markers=args.markers,
        batch_size=args.batch_size,
        nproc=args.nproc,
        share=share,
    )


def _writable(out: Path) -> None:
    """Check that ``out`` names a file whose folder exists or can be made."""
    if out.is_dir():
        raise UserError(f"--out '{out}' is a folder; give a file name such as '{out / 'result.h5ad'}'")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create the folder for '{out}': {_message(error)}") from None


def _normalise_query(query, model) -> str:
    """Give a raw-count query the reference's stored normalisation, in place; describe what was done."""
    import scanpy as sc

    if not _is_counts(query.X):
        return "taken as processed like the reference's X"
    preprocessing = model["preprocessing"]
    target = preprocessing.get("target_sum")
    if target is None or not bool(preprocessing.get("log1p", False)):
        raise UserError(
            "the query holds raw counts, but the reference's normalisation is not known (it did not come "
            "through the standard pipeline): normalise and log-transform the query like the reference's X "
            "and save it as an .h5ad"
        )
    query.layers["counts"] = query.X.copy()
    query.X = query.X.astype("float32")
    sc.pp.normalize_total(query, target_sum=float(target))
    sc.pp.log1p(query)
    return f"raw counts, normalised as the reference: normalize_total(target_sum={float(target):g}), log1p"


def _ingest(args: argparse.Namespace) -> int:
    from .tl import evaluate, ingest
    from .tl._model import read_model

    ref_path, query_path = Path(args.ref), Path(args.query)
    if ref_path.suffix != ".h5ad":
        raise UserError(f"--ref '{ref_path}' must be an .h5ad written by 'dagcl train' or dagcl.tl.cluster")
    out = Path(args.out) if args.out else Path(f"{query_path.stem}_dagcl.h5ad")
    _writable(out)
    reference = _read(ref_path)
    query = _read(query_path)
    try:
        model = read_model(reference, "dagcl")
    except (KeyError, ValueError) as error:
        raise UserError(f"--ref '{ref_path}': {_message(error)}") from None
    truth = args.labels_key or "cell_type"
    if truth not in query.obs.columns:
        if args.labels_key is not None:
            found = ", ".join(query.obs.columns) or "none"
            raise UserError(f"--labels-key '{truth}' is not a column of the query's obs (found: {found})")
        truth = None
    print(f"Read {query.n_obs} cells x {query.n_vars} genes from {query_path}: {_normalise_query(query, model)}")
    try:
        ingest(query, reference, key_added="dagcl")
    except (ValueError, KeyError, TypeError) as error:
        raise UserError(_message(error)) from None
    n_clusters = len(query.obs["dagcl"].cat.categories)
    low = float((query.obs["dagcl_confidence"] < LOW_CONFIDENCE).mean())
    summary = (
        f"Mapped {query.n_obs} cells onto the {n_clusters} clusters of {ref_path}: "
        f"{low:.1%} with confidence < {LOW_CONFIDENCE}"
    )
    if truth is not None:
        summary += f"; against {truth}: {_format_scores(evaluate(query, key='dagcl', truth=truth))}"
    print(summary)
    try:
        query.write_h5ad(out)
    except OSError as error:
        raise UserError(f"cannot write '{out}': {_message(error)}") from None
    print(f"Wrote {out}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .datasets import mouse_pancreas

    out_dir = Path(args.out_dir)
    return _run(
        mouse_pancreas(),
        source="the shipped mouse pancreas data set (dagcl.datasets.mouse_pancreas)",
        out=out_dir / DEMO_FILE,
        figures=out_dir,
        labels_key="cell_type",
        labels_required=True,
        n_clusters=None,
        epochs=None,
        pretrain_epochs=None,
        lr=1e-3,
        seed=args.seed,
        schedule="convex",
        device=args.device,
        markers=args.markers,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dagcl`` console script; returns the exit status."""
    import matplotlib

    matplotlib.use("Agg")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.error("choose a command, 'train', 'ingest' or 'demo'")
    try:
        return args.handler(args)
    except UserError as error:
        print(f"dagcl {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"dagcl {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
