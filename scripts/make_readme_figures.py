"""Make the README's figures from the shipped dataset: the README quick start, default settings.

Usage: ``python scripts/make_readme_figures.py``

Writes ``docs/_static/curriculum.png`` (``dagcl.pl.curriculum``) and
``docs/_static/stages.png`` (``dagcl.pl.stages``). DAGCL is deterministic on CPU for a given
``random_state``, so rerunning reproduces them.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import dagcl_scverse as dagcl
from dagcl_scverse.cli import standard_pipeline

OUT = Path(__file__).parents[1] / "docs" / "_static"
DPI = 110
#: no timestamp or version in the PNG, so an unchanged figure gives an unchanged file
METADATA = {"Software": None}


def main() -> None:
    """Render the README's figures from a run on the shipped data."""
    adata = dagcl.datasets.mouse_pancreas()
    standard_pipeline(adata)
    dagcl.tl.cluster(adata, n_clusters=13, accelerator="cpu")

    OUT.mkdir(parents=True, exist_ok=True)
    for name, plot in (("curriculum", dagcl.pl.curriculum), ("stages", dagcl.pl.stages)):
        fig = plot(adata, show=False)
        path = OUT / f"{name}.png"
        fig.savefig(path, dpi=DPI, metadata=METADATA)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
