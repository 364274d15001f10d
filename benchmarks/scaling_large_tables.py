"""Tables and the figure of ``benchmarks/scaling_large.py``, written into docs/benchmarks.md."""

from __future__ import annotations

import json

import _common as c
import numpy as np
from scaling import scaling_figure

from dagcl_scverse.metrics import adjusted_rand_index


def growth_exponent(rows: list[dict]) -> tuple[float, float]:
    """Slope of log(seconds per epoch) on log(cells): fitted over every size, and between the end sizes."""
    n = np.array([r["n_cells"] for r in rows], dtype=float)
    spe = np.array([r["s_per_epoch"] for r in rows])
    if len(n) < 2:
        return float("nan"), float("nan")
    return float(np.polyfit(np.log(n), np.log(spe), 1)[0]), float(np.log(spe[-1] / spe[0]) / np.log(n[-1] / n[0]))


def _gb(mb: float) -> str:
    return f"{mb / 1024:.2f}"


def write_scaling(rows: list[dict], command: str, profiled: dict | None = None) -> None:
    """The scaling table, the growth exponent, the profile of a separate run of the largest size, and the figure."""
    c.RESULTS.mkdir(parents=True, exist_ok=True)
    (c.RESULTS / "scaling_large.json").write_text(json.dumps({"rows": rows, "profiled": profiled}, indent=1))
    table = c.markdown_table(
        ["cells", "edges", "graph (s)", "tl.cluster (s)", "epochs", "batch (steps / epoch)", "s / epoch",
         "one-off (s)", "peak RSS (GiB)", "ARI", "edges inside a batch (median / min)", "context cells / seed"],
        [
            [f"{r['n_cells']:,}", f"{r['n_edges']:,}", f"{r.get('graph_s', float('nan')):.0f}",
             f"{r['cluster_s']:.0f}", r["epochs"], f"{r['batch_size']:,} ({r['steps_per_epoch']})",
             f"{r['s_per_epoch']:.2f}", f"{r['one_off_s']:.0f}", _gb(r["peak_rss_mb"]), f"{r['ari']:.3f}",
             f"{r['inside_share_median']:.2f} / {r['inside_share_min']:.2f}", f"{r['context_per_seed']:.2f}"]
            for r in rows
        ],
    )  # fmt: skip
    fitted, ends = growth_exponent(rows)
    text = [
        f"Command: `{command}`\n", table,
        f"\nGrowth exponent of the time per epoch: {fitted:.3f} (fitted over all sizes), {ends:.3f} "
        f"(between {rows[0]['n_cells']:,} and {rows[-1]['n_cells']:,} cells).",
        "\n![time per epoch and peak memory against cells](_static/scaling_large.png)",
    ]  # fmt: skip
    if profiled:
        text += [
            f"\nWhere the time of a {profiled['n_cells']:,}-cell run goes: a separate run under cProfile, whose "
            f"tl.cluster took {profiled['cluster_s']:.0f} s ({profiled['s_per_epoch']:.2f} s / epoch); cumulative "
            "seconds, nested entries are included in the ones above them:\n",
            c.markdown_table(
                ["function", "seconds", "share of tl.cluster"],
                [[f"`{p['function']}`", f"{p['seconds']:.1f}", f"{p['seconds'] / profiled['cluster_s']:.0%}"]
                 for p in profiled["profile"]],
            ),
        ]  # fmt: skip
    c.write_section("scaling_large", "\n".join(text))
    scaling_figure(rows, c.STATIC / "scaling_large.png")


def write_batch_modes(pairs: list[tuple[dict, dict]], command: str) -> None:
    """Full-batch against mini-batch training at each size."""
    (c.RESULTS / "batch_modes.json").write_text(json.dumps(pairs, indent=1))
    body = []
    for full, mini in pairs:
        for name, r in (("full-batch", full), (f"batches of {mini['batch_size']:,}", mini)):
            body.append([f"{r['n_cells']:,}", name, r["steps_per_epoch"], f"{r['cluster_s']:.0f}",
                         f"{r['s_per_epoch']:.2f}", _gb(r["peak_rss_mb"]), f"{r['ari']:.3f}"])  # fmt: skip
    table = c.markdown_table(
        ["cells", "training", "steps / epoch", "tl.cluster (s)", "s / epoch", "peak RSS (GiB)", "ARI"], body
    )
    c.write_section("batch_modes", f"Command: `{command}`\n\n{table}")


def write_nproc(one: dict, two: dict, labels_one, labels_two, command: str) -> None:
    """One process against two."""
    agreement = adjusted_rand_index(labels_one, labels_two)
    (c.RESULTS / "nproc.json").write_text(json.dumps({"one": one, "two": two, "agreement": agreement}, indent=1))
    body = [
        [r["world_size"], f"{r['cluster_s']:.0f}", f"{r['s_per_epoch']:.2f}", _gb(r["peak_rss_mb"]), f"{r['ari']:.3f}"]
        for r in (one, two)
    ]
    table = c.markdown_table(["processes", "tl.cluster (s)", "s / epoch", "peak RSS of the parent (GiB)", "ARI"], body)
    c.write_section(
        "nproc",
        f"Command: `{command}`, {one['n_cells']:,} cells\n\n{table}\n\nARI between the two runs' labels: {agreement:.3f}.",
    )
