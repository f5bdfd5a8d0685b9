#!/usr/bin/env bash
# Opens the lessons in the classic Jupyter Notebook (Debian's notebook 6.4), on
# 127.0.0.1 only, with this checkout's TypeScript kernel. `npm run notebook`.
# Extra arguments go to `jupyter notebook` (e.g. --port 8899, --no-browser).
# The lessons read FASHION_MNIST_LESSON_SETTING (smoke | quick | full; quick
# when unset): `FASHION_MNIST_LESSON_SETTING=full npm run notebook`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
extra=()
if [[ $(id -u) -eq 0 ]]; then extra+=(--allow-root); fi
if [[ ! -f "$root/dist/lib/ddp/worker-main.js" ]]; then
  echo "notebook: dist/ is missing (multi-worker runs fork the compiled workers): run npm run build" >&2
  exit 1
fi
exec "$root/scripts/jupyter-env.sh" /usr/bin/jupyter notebook --ip 127.0.0.1 --notebook-dir "$root/notebooks" "${extra[@]}" "$@"
