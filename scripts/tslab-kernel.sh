#!/usr/bin/env bash
# The notebooks' kernel: tslab, with zeromq's publisher sending at once (scripts/tslab-zeromq.cjs).
# ./setup.sh registers this script as the kernel's binary.
root=$(cd "$(dirname "$0")/.." && pwd)
exec node --require "$root/scripts/tslab-zeromq.cjs" "$root/node_modules/tslab/bin/tslab" "$@"
