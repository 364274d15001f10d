"""Sphinx configuration for the dagcl-scverse documentation.

Build (warnings are errors)::

    sphinx-build -W --keep-going -b html docs docs/_build/html

The build works offline. Intersphinx links to scanpy, anndata, numpy and torch are made only
when ``DAGCL_DOCS_INTERSPHINX=1`` is set, because fetching their inventories needs the
internet and a failed fetch is a warning. The tutorial notebooks live in ``tutorials/`` and
are copied into ``docs/tutorials/`` at build time (myst-nb only renders files under
``docs/``); they are rendered with their saved outputs and never executed here.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
import warnings
from datetime import date
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))

import dagcl_scverse  # noqa: E402

# sphinx-autodoc-typehints still calls an API Sphinx 10 removes; not ours to fix, and noisy
warnings.filterwarnings("ignore", message=".*set_application.*is deprecated", category=DeprecationWarning)

# -- Project ---------------------------------------------------------------------------------

project = "dagcl-scverse"
author = "dagcl-scverse developers"
copyright = f"{date.today().year}, {author}"
version = release = dagcl_scverse.__version__

# -- Extensions ------------------------------------------------------------------------------

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx_autodoc_typehints",  # after napoleon
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinx_copybutton",
    "sphinx_design",
]

# .rst first: autosummary writes its stub pages with the first suffix
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
master_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]

# -- autodoc / autosummary / napoleon --------------------------------------------------------

autosummary_generate = True
autodoc_member_order = "bysource"
# torch/PyG base-class docstrings (forward, message, ...) say nothing about DAGCL
autodoc_inherit_docstrings = False
autodoc_typehints = "description"
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = True
napoleon_use_param = True
typehints_defaults = "braces"
always_document_param_types = True

# -- myst / myst-nb --------------------------------------------------------------------------

myst_enable_extensions = ["colon_fence", "dollarmath", "amsmath", "deflist", "substitution"]


def method_defaults() -> dict[str, str]:
    """Default constants quoted on the method page, read from the code so the page cannot drift."""
    import dataclasses
    import inspect

    from dagcl_scverse.model import centre_init, chunked_pca, restarts, schedules, trainer
    from dagcl_scverse.model.config import TrainingConfig

    config = {f.name: f.default for f in dataclasses.fields(TrainingConfig)}

    def default(function, name):
        return inspect.signature(function).parameters[name].default

    values = {
        "hidden": config["hidden"],
        "attention": config["attention_channels"],
        "latent": config["latent"],
        "dof": config["student_t_dof"],
        "refresh": config["update_interval"],
        "recon_cells": f"{config['recon_cells']:,}",
        "w_dec": config["weight_decorrelation"],
        "w_sm": config["weight_smoothness"],
        "w_sm_self": config["weight_smoothness_self"],
        "restarts": config["partition_restarts"],
        "restart_cells": f"{restarts.MAX_RESTART_CELLS:,}",
        "carry": config["carry_steps"],
        "w_kl": config["weight_kl"],
        "floor": config["proportion_floor"],
        "momentum": config["proportion_momentum"],
        "confident": config["confidence_threshold"],
        "cap0": config["capacity_start"],
        "warmup": config["capacity_warmup"],
        "agg0": config["aggregation_start"],
        "agg1": config["aggregation_end"],
        "cur0": config["curriculum_start"],
        "cur_full": default(schedules.curriculum_share, "full_at"),
        "sharp0": default(schedules.sharpening, "start"),
        "sharp1": config["sharpen_end"],
        "micro": centre_init.MICRO_CLUSTERS,
        "micro_fit": f"{centre_init.MICRO_FIT_CELLS:,}",
        "init_pcs": default(chunked_pca.principal_components, "n_components"),
        "scale_max": f"{centre_init.SCALE_MAX_VALUE:g}",
        "fit_steps": config["centre_fit_steps"],
        "fit_lr": trainer.CENTRE_FIT_LR,
    }
    return {name: f"{value:g}" if isinstance(value, float) else str(value) for name, value in values.items()}


myst_substitutions = method_defaults()
myst_heading_anchors = 3
nb_execution_mode = "off"  # tests/test_notebooks.py executes the notebooks instead
nb_merge_streams = True
nb_output_stderr = "show"  # warnings in the tutorials are part of the lesson
suppress_warnings = ["mystnb.unknown_mime_type"]

# -- intersphinx: only with network ----------------------------------------------------------

if os.environ.get("DAGCL_DOCS_INTERSPHINX") == "1":
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "anndata": ("https://anndata.readthedocs.io/en/stable/", None),
        "scanpy": ("https://scanpy.readthedocs.io/en/stable/", None),
        "numpy": ("https://numpy.org/doc/stable/", None),
        "pandas": ("https://pandas.pydata.org/docs/", None),
        "matplotlib": ("https://matplotlib.org/stable/", None),
        "torch": ("https://pytorch.org/docs/stable/", None),
    }
else:
    intersphinx_mapping = {}

# -- HTML ------------------------------------------------------------------------------------

html_theme = "sphinx_book_theme"
html_title = "dagcl-scverse"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_theme_options = {
    "repository_url": "https://github.com/dagcl-scverse/dagcl-scverse",
    "use_repository_button": False,
    "navigation_with_keys": False,
    "show_toc_level": 2,
}

# -- Build-time inputs -----------------------------------------------------------------------

TUTORIALS = ROOT / "tutorials"
TUTORIALS_COPY = DOCS / "tutorials"
GENERATED = DOCS / "generated"
CLI_COMMANDS = ([], ["train"], ["ingest"], ["demo"])


def copy_tutorials() -> None:
    """Mirror ``tutorials/*.ipynb`` into ``docs/tutorials/`` (only files that changed)."""
    TUTORIALS_COPY.mkdir(exist_ok=True)
    sources = {p.name: p for p in TUTORIALS.glob("*.ipynb")}
    for stale in TUTORIALS_COPY.glob("*.ipynb"):
        if stale.name not in sources:
            stale.unlink()
    for name, source in sources.items():
        target = TUTORIALS_COPY / name
        if not target.exists() or not filecmp.cmp(source, target, shallow=False):
            shutil.copy2(source, target)


def write_cli_help() -> None:
    """Write ``dagcl [command] --help`` into ``docs/generated/cli_*.txt`` for the CLI page."""
    GENERATED.mkdir(exist_ok=True)
    env = {**os.environ, "COLUMNS": "90"}
    for command in CLI_COMMANDS:
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from dagcl_scverse.cli import main; sys.exit(main())",
                *command,
                "--help",
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
        )
        if result.returncode != 0:
            raise RuntimeError(f"`dagcl {' '.join(command)} --help` failed:\n{result.stderr}")
        text = result.stdout
        name = "_".join(["cli", *command]) + ".txt"
        path = GENERATED / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)


def draw_schedules() -> None:
    """Draw the method page's schedule figures from the code that defines the schedules."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from dagcl_scverse.model import schedules
    from dagcl_scverse.model.config import TrainingConfig as C

    sources = [
        Path(schedules.__file__),
        ROOT / "dagcl_scverse" / "model" / "config.py",
        ROOT / "dagcl_scverse" / "pl" / "_schedules.py",
        Path(__file__),
    ]
    newest_source = max(p.stat().st_mtime for p in sources)
    targets = [GENERATED / "schedules_gamma.svg", GENERATED / "schedules_run.svg"]
    if all(p.exists() and p.stat().st_mtime > newest_source for p in targets):
        return
    GENERATED.mkdir(exist_ok=True)
    plt.rcParams["svg.hashsalt"] = "dagcl"  # stable ids in the svg

    fig = dagcl_scverse.pl.schedules(show=False)
    fig.savefig(targets[0], metadata={"Date": None})
    plt.close(fig)

    # one run with equal pre-training and self-training epochs, as the small-data default
    tau = np.linspace(0, 1, 401)
    self_tau = tau[tau >= 0.5]
    t = (self_tau - 0.5) / 0.5
    sharp0 = schedules.sharpening(0.0, end=C.sharpen_end)
    curves = [
        # (x, y, label, colour, line style, width)
        (
            tau,
            [schedules.capacity(v, C.capacity_start, C.capacity_warmup) for v in tau],
            "channel capacity c(τ)",
            "#56B4E9",
            "--",
            2,
        ),
        (
            tau,
            [schedules.aggregation(v, C.aggregation_start, C.aggregation_end) for v in tau],
            "aggregation strength s(τ)",
            "#009E73",
            "-.",
            2,
        ),
        (self_tau, [schedules.gamma(v, C.schedule) for v in t], f"KL weight γ(t), {C.schedule}", "#D55E00", "-", 2.6),
        (
            self_tau,
            [(schedules.sharpening(v, end=C.sharpen_end) - sharp0) / (C.sharpen_end - sharp0) for v in t],
            "target sharpening β(t),\nrescaled to [0, 1]",
            "#E69F00",
            (0, (5, 1, 1, 1)),
            2,
        ),
        (
            self_tau,
            [schedules.curriculum_share(v, C.curriculum_start) for v in t],
            "curriculum share σ(t)",
            "#CC79A7",
            ":",
            2.4,
        ),
    ]
    fig, ax = plt.subplots(figsize=(8.0, 3.4), layout="constrained")
    ax.axvspan(0, 0.5, color="0.93", lw=0)
    for x, y, label, color, style, width in curves:
        ax.plot(x, y, color=color, ls=style, lw=width, label=label)
    ax.axvline(0.5, color="0.4", ls="--", lw=1)
    ax.text(0.25, 1.06, "pre-training", ha="center", fontsize=9, color="0.3")
    ax.text(0.75, 1.06, "self-training", ha="center", fontsize=9, color="0.3")
    ax.set(
        xlim=(0, 1),
        ylim=(-0.03, 1.12),
        xlabel="training progress τ (self-training progress t from the dashed line)",
        ylabel="value",
    )
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=9)
    fig.savefig(targets[1], metadata={"Date": None})
    plt.close(fig)


copy_tutorials()
write_cli_help()
draw_schedules()
