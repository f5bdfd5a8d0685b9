#!/usr/bin/env bash
# Opens the lessons in JupyterLab (`npm run lab`) or Notebook 7 (`npm run notebook`), on 127.0.0.1
# only, with this checkout's TypeScript kernel.
#   scripts/open-lessons.sh lab|notebook [ARGS...]    extra arguments go to jupyter (--port 8899, --no-browser)
# The lessons read FASHION_MNIST_LESSON_SETTING (smoke | quick | full; quick when unset):
#   FASHION_MNIST_LESSON_SETTING=full npm run lab
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
app=${1:-}
case "$app" in
  lab | notebook) shift ;;
  *) echo "usage: scripts/open-lessons.sh lab|notebook [ARGS...]" >&2; exit 2 ;;
esac
if [[ ! -f "$root/dist/lib/launch/worker-main.js" ]]; then
  echo "open-lessons: dist/ is missing (multi-worker runs fork the compiled workers): run npm run build" >&2
  exit 1
fi
extra=()
if [[ $(id -u) -eq 0 ]]; then extra+=(--allow-root); fi
exec "$root/scripts/jupyter-env.sh" jupyter "$app" --ip 127.0.0.1 --ServerApp.root_dir="$root/notebooks" "${extra[@]}" "$@"
