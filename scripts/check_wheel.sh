#!/usr/bin/env bash
# Installs the built wheel (dist/*.whl) with --no-deps into a fresh venv outside the source tree, whose
# dependencies come from the test venv (.venv), then imports the package and loads the shipped data set:
# a wheel that lacks a module or the data file fails here.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
wheel=$(ls "$root"/dist/*.whl)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$root/.venv/bin/python" -m venv --system-site-packages "$work/venv"
# Dependencies from the test venv: a path listed in a .pth file is searched after the venv's own
# site-packages, and the .pth files inside it (the editable install's link to the source tree) are not read.
site_of() { "$1" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])"; }
site_of "$root/.venv/bin/python" > "$(site_of "$work/venv/bin/python")/test_venv_dependencies.pth"
"$work/venv/bin/pip" install --quiet --no-deps "$wheel"
cd "$work"
"$work/venv/bin/python" - "$work" <<'PY'
import sys

import dagcl_scverse

assert dagcl_scverse.__file__.startswith(sys.argv[1]), f"imported from {dagcl_scverse.__file__}, not the wheel"
adata = dagcl_scverse.datasets.mouse_pancreas()
print(f"wheel dagcl_scverse {dagcl_scverse.__version__}: mouse_pancreas() {adata.n_obs} cells x {adata.n_vars} genes")
PY
