#!/usr/bin/env bash
# Sets the project up, then runs the main job (every lesson, headless). `./setup.sh --no-run` only
# sets up (what CI does). One line per step; everything the steps print goes to setup.log.
#
# Needs Node.js 20+ with npm, and Python 3 with venv and pip. On Debian it installs the rest with
# apt-get: python3-venv, python3-torch (the PyTorch reference of the benchmarks and tests),
# openmpi-bin (mpirun, one of the launchers the workers accept) and chromium (the browser tests).
# Jupyter (JupyterLab 4, Notebook 7, nbconvert 7) comes from PyPI, pinned in requirements.txt, into
# .venv/ inside the checkout.
set -euo pipefail
cd "$(dirname "$0")"
root=$PWD
log="$root/setup.log"
: >"$log"
started=$SECONDS
run_main=1
[[ "${1:-}" == "--no-run" ]] && run_main=0
steps=$((4 + run_main))
step=0

say() { echo "setup: $*"; }

# Runs one step: prints "[k/n] what ... ok (t s)"; its output goes to the log. On failure, the
# step's last lines and the log's path.
run_step() {
  local what=$1
  shift
  step=$((step + 1))
  printf 'setup: [%d/%d] %s ... ' "$step" "$steps" "$what"
  echo "==== [$step/$steps] $what" >>"$log"
  local t0=$SECONDS rc=0
  # In the background, so that `set -e` holds inside the step (it is off under `||`).
  ("$@") >>"$log" 2>&1 &
  wait $! || rc=$?
  if ((rc != 0)); then
    echo "FAILED (exit $rc)"
    echo "---- the last lines of $log:"
    tail -n 25 "$log" | sed 's/^/  | /'
    say "failed at step $step ($what) after $((SECONDS - started)) s; the whole log: $log"
    exit "$rc"
  fi
  echo "ok ($((SECONDS - t0)) s)"
}

# Debian's python3 (where python3-torch lives); any python3 elsewhere. PYTHON overrides.
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x /usr/bin/python3 ]]; then PYTHON=/usr/bin/python3; else PYTHON=$(command -v python3 || true); fi
fi
[[ -n "$PYTHON" ]] || { say "no python3 found: install Python 3 (with venv and pip), or set PYTHON"; exit 1; }

debian_packages() {
  local missing=()
  "$PYTHON" -c "import ensurepip, venv" 2>/dev/null || missing+=(python3-venv)
  "$PYTHON" -c "import torch" 2>/dev/null || missing+=(python3-torch)
  command -v mpirun >/dev/null || missing+=(openmpi-bin)
  [[ -x /usr/bin/chromium ]] || missing+=(chromium)
  if ((${#missing[@]} == 0)); then
    echo "all present"
    return 0
  fi
  echo "installing: ${missing[*]}"
  local sudo=
  [[ $(id -u) -eq 0 ]] || sudo=sudo
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# .venv sees the system's site-packages (Debian's torch); every package of requirements.txt is
# installed into it all the same (--ignore-installed), so the system's own versions never leak in.
# Made again when requirements.txt changes or the venv is broken.
python_tools() {
  local stamp=.venv/requirements.sha256 want
  want=$(sha256sum requirements.txt | cut -d' ' -f1)
  if [[ -x .venv/bin/python && -f $stamp && $(cat "$stamp") == "$want" ]] && .venv/bin/python -c "import jupyterlab, notebook, nbconvert" 2>/dev/null; then
    echo "up to date"
    return 0
  fi
  rm -rf .venv
  "$PYTHON" -m venv --system-site-packages .venv
  .venv/bin/python -m pip install --disable-pip-version-check --no-input --ignore-installed --no-deps -r requirements.txt
  .venv/bin/python -c "import jupyterlab, notebook, nbconvert, plotly, nbclient; print('jupyterlab', jupyterlab.__version__, 'notebook', notebook.__version__, 'nbconvert', nbconvert.__version__)"
  echo "$want" >"$stamp"
}

# The TypeScript kernel (tslab) of the lesson notebooks, registered for this checkout only: its
# kernel.json holds absolute paths, so it is made here and never committed (.jupyter/ is ignored).
# Jupyter finds it through JUPYTER_PATH (scripts/jupyter-env.sh sets it). Notebooks import
# ./lib/...: notebooks/lib is a committed symlink to ../dist/lib (the compiled library, with its
# declarations: the kernel runs the same code as the workers it starts), made again if missing.
notebook_kernel() {
  # scripts/tslab-kernel.sh runs tslab with its output socket fixed (scripts/tslab-zeromq.cjs).
  npx --no-install tslab install --python="$root/.venv/bin/python" --binary="$root/scripts/tslab-kernel.sh" --prefix="$root/.jupyter"
  [[ -L notebooks/lib ]] || { rm -rf notebooks/lib; ln -s ../dist/lib notebooks/lib; }
  scripts/jupyter-env.sh jupyter kernelspec list
}

if command -v apt-get >/dev/null && command -v dpkg >/dev/null; then
  run_step "Debian packages (python3-venv, python3-torch, openmpi-bin, chromium)" debian_packages
else
  step=$((step + 1))
  say "[$step/$steps] not Debian: install yourself what is missing of Python 3 venv, PyTorch (benchmarks and one test), Open MPI (mpirun) and Chromium at /usr/bin/chromium (browser tests)"
fi
run_step "Python tools in .venv (JupyterLab, Notebook, nbconvert, plotly, torch-optimizer: requirements.txt)" python_tools
# `prepare` compiles the TypeScript to dist/, where the workers that notebooks start are.
run_step "npm packages (npm ci, then the build)" npm ci --no-audit --no-fund
run_step "the notebooks' TypeScript kernel (tslab, for this checkout)" notebook_kernel
say "set up in $((SECONDS - started)) s (the log: setup.log)"

if ((run_main)); then
  step=$((step + 1))
  say "[$step/$steps] the main job: npm run lessons (every lesson, quick setting, headless -> reports/)"
  npm run --silent lessons
  say "done in $((SECONDS - started)) s"
fi
