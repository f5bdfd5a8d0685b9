#!/usr/bin/env bash
# Runs a command with this checkout's Jupyter: the tools in .venv/ (JupyterLab, Notebook 7,
# nbconvert 7, from requirements.txt) first on PATH, and the tslab kernel that ./setup.sh registered
# under .jupyter/ (never committed: its kernel.json holds this checkout's absolute path).
#
#   scripts/jupyter-env.sh jupyter kernelspec list
#   scripts/jupyter-env.sh jupyter nbconvert --to notebook --execute notebooks/00-data-parallel-in-one-picture.ipynb
#   scripts/jupyter-env.sh jupyter lab
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if [[ ! -x "$root/.venv/bin/jupyter" ]]; then
  echo "jupyter-env: .venv/ holds no Jupyter: run ./setup.sh --no-run" >&2
  exit 1
fi
if [[ ! -f "$root/.jupyter/share/jupyter/kernels/tslab/kernel.json" ]]; then
  echo "jupyter-env: the tslab kernel is not registered for this checkout: run ./setup.sh --no-run" >&2
  exit 1
fi
if (($# == 0)); then
  echo "usage: scripts/jupyter-env.sh COMMAND [ARGS...]" >&2
  exit 2
fi
export VIRTUAL_ENV="$root/.venv"
export PATH="$root/.venv/bin:$PATH"
export JUPYTER_PATH="$root/.jupyter/share/jupyter${JUPYTER_PATH:+:$JUPYTER_PATH}"
# Silences a debugger warning that every jupyter command prints otherwise.
export PYDEVD_DISABLE_FILE_VALIDATION=1
exec "$@"
