#!/usr/bin/env bash
# Runs a command with this checkout's Jupyter set-up: the tslab kernel that
# ./setup.sh registered under .jupyter/ (never committed: its kernel.json holds
# this checkout's absolute path) and Debian's Python.
#
#   scripts/jupyter-env.sh /usr/bin/jupyter kernelspec list
#   scripts/jupyter-env.sh /usr/bin/jupyter nbconvert --to notebook --execute notebooks/00-data-parallel-in-one-picture.ipynb
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export JUPYTER_PATH="$root/.jupyter/share/jupyter${JUPYTER_PATH:+:$JUPYTER_PATH}"
# Silences a debugger warning that every jupyter command prints otherwise.
export PYDEVD_DISABLE_FILE_VALIDATION=1
if [[ ! -f "$root/.jupyter/share/jupyter/kernels/tslab/kernel.json" ]]; then
  echo "jupyter-env: the tslab kernel is not registered for this checkout: run ./setup.sh --no-run" >&2
  exit 1
fi
if (($# == 0)); then
  echo "usage: scripts/jupyter-env.sh COMMAND [ARGS...]" >&2
  exit 2
fi
exec "$@"
