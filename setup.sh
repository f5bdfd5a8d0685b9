#!/usr/bin/env bash
# Sets the project up on a fresh Debian 12 machine with Node.js 20, then runs
# the main job. `./setup.sh --no-run` only sets up (what CI does).
set -euo pipefail
cd "$(dirname "$0")"

# Debian packages: PyTorch (the reference the benchmark and tests compare with),
# Open MPI (mpirun, one of the launchers the data-parallel workers accept).
missing=()
/usr/bin/python3 -c "import torch" 2>/dev/null || missing+=(python3-torch)
command -v mpirun >/dev/null || missing+=(openmpi-bin)
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then sudo=sudo; else sudo=; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm packages (the `prepare` script compiles the TypeScript to dist/).
npm ci --no-audit --no-fund

if [[ "${1:-}" != "--no-run" ]]; then
  npm start
fi
