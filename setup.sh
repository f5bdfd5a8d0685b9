#!/usr/bin/env bash
# Sets the project up on a fresh Debian 12 machine with Node.js 20, then runs
# the main job. `./setup.sh --no-run` only sets up (what CI does).
set -euo pipefail
cd "$(dirname "$0")"

# Debian packages: PyTorch (the reference the benchmark and tests compare with),
# Open MPI (mpirun, one of the launchers the data-parallel workers accept),
# Jupyter (the classic Notebook and nbconvert run the lesson notebooks) and
# Chromium (the browser test opens a notebook in it).
missing=()
/usr/bin/python3 -c "import torch" 2>/dev/null || missing+=(python3-torch)
command -v mpirun >/dev/null || missing+=(openmpi-bin)
for pkg in jupyter-notebook jupyter-nbconvert python3-nbclient jupyter-client chromium; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then sudo=sudo; else sudo=; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm packages (the `prepare` script compiles the TypeScript to dist/, where
# the data-parallel workers that notebooks start are).
npm ci --no-audit --no-fund

# The TypeScript kernel (tslab) of the lesson notebooks, registered for this
# checkout only: its kernel.json holds absolute paths, so it is made here and
# never committed (.jupyter/ is ignored). Jupyter finds it through
# JUPYTER_PATH=$PWD/.jupyter/share/jupyter (scripts/jupyter-env.sh sets it).
npx --no-install tslab install --python=/usr/bin/python3 --binary="$PWD/node_modules/.bin/tslab" --prefix="$PWD/.jupyter" >/dev/null
# Notebooks import ./lib/... (tslab compiles only files under the notebook's
# folder): notebooks/lib is a committed symlink to ../lib; made again if missing.
[[ -L notebooks/lib ]] || { rm -rf notebooks/lib; ln -s ../lib notebooks/lib; }

if [[ "${1:-}" != "--no-run" ]]; then
  npm run lessons
fi
