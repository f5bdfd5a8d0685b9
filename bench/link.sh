#!/usr/bin/env bash
# `npm run bench:link [-- RATE [MODEL:BATCH [STEPS]]]`: two "nodes" joined by a slow link, to reach
# the regime where hiding communication under the backward pass matters. Two network namespaces
# (fmnist-a, fmnist-b) joined by a veth pair whose both ends are limited by tc's token bucket (tbf)
# to RATE (default 100mbit); one worker per node (--num-nodes 2, TCP between them). It trains with
# one bucket after the backward pass (--bucket-cap-mb 0), buckets after it (--no-overlap), and
# buckets during it (the default), then runs PyTorch DDP (gloo, bench/pytorch_ddp.py) over the
# same link with the same bucket sizes. Prints rank 0's time per step. The cnn's gradients are
# 0.9 MB: under the first bucket's 1 MiB, so only caps below that split them (PyTorch keeps its
# first bucket at 1 MiB whatever the cap, and so never splits them).
#
# Needs root and iproute2 (scripts/two-nodes.sh makes the nodes). The namespaces are removed at
# the end, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:-100mbit}
case_=${2:-cnn:64}
steps=${3:-30}
model=${case_%%:*}
batch=${case_##*:}

why=$(scripts/two-nodes.sh check) || { echo "bench:link: $why" >&2; exit 2; }
[[ -f dist/lib/cli/main.js ]] || { echo "bench:link: dist/ is missing: run npm run build" >&2; exit 2; }

a=fmnist-a b=fmnist-b addr_a=10.77.0.1 addr_b=10.77.0.2
tmp=$(mktemp -d)
cleanup() {
  scripts/two-nodes.sh down fmnist
  rm -rf "$tmp"
}
trap cleanup EXIT
scripts/two-nodes.sh up fmnist "$rate" 0

echo "Two nodes in network namespaces, one worker each, joined by a veth pair limited to $rate each way (tc tbf); $model, batch $batch per worker, $steps steps per epoch, the second of 2 epochs"
printf '%-50s %9s %9s %9s %9s %9s\n' "run (ours: rank 0, ms per step)" "images/s" "compute" "wait" "exposed" "hidden"
port=29700
ours() {
  local label=$1
  shift
  port=$((port + 1))
  local common=(--model "$model" --batch-size "$batch" --epochs 2 --train-subset $((steps * 2 * batch)) --val-subset 100
    --target-accuracy 1 --no-progress --num-nodes 2 --num-gpus 1 --master-addr $addr_a --master-port $port "$@")
  ip netns exec $b node dist/lib/cli/main.js "${common[@]}" --node-id 1 --runs-dir "$tmp/runs-b" >"$tmp/b.log" 2>&1 &
  local peer=$!
  ip netns exec $a node dist/lib/cli/main.js "${common[@]}" --node-id 0 --runs-dir "$tmp/runs-a" >"$tmp/a.log" 2>&1 || { cat "$tmp/a.log" "$tmp/b.log" >&2; exit 1; }
  wait $peer
  local metrics
  metrics=$(ls -t "$tmp"/runs-a/*/metrics.jsonl | head -1)
  tail -1 "$metrics" | node -e "
    const m = JSON.parse(require('fs').readFileSync(0, 'utf8'));
    const steps = m.imagesPerSec * m.epochTime / (2 * $batch);
    const ms = (s) => (1000 * s / steps).toFixed(1).padStart(9);
    console.log('$label'.padEnd(50), m.imagesPerSec.toFixed(1).padStart(9), ms(m.computeSeconds), ms(m.waitSeconds), ms(m.allReduceSeconds), ms(m.hiddenSeconds));"
}
ours "one bucket after the backward (--bucket-cap-mb 0)" --bucket-cap-mb 0
ours "25 MB buckets after the backward (--no-overlap)" --no-overlap
ours "25 MB buckets during the backward (default)"
ours "1 MB buckets during the backward" --bucket-cap-mb 1
ours "0.1 MB buckets after the backward" --bucket-cap-mb 0.1 --no-overlap
ours "0.1 MB buckets during the backward" --bucket-cap-mb 0.1

if /usr/bin/python3 -c "import torch" 2>/dev/null; then
  printf '%-50s %9s %9s %9s\n' "run (PyTorch DDP, gloo: rank 0, ms per step)" "images/s" "step" "no_sync"
  for cap in 0 25 1 0.1; do
    port=$((port + 1))
    args=(bench/pytorch_ddp.py --model "$model" --batch "$batch" --steps "$steps" --bucket-cap-mb $cap --world-size 2 --master-addr $addr_a --master-port $port)
    GLOO_SOCKET_IFNAME=fmnist-vb ip netns exec $b /usr/bin/python3 "${args[@]}" --rank 1 >"$tmp/pb.log" 2>&1 &
    peer=$!
    GLOO_SOCKET_IFNAME=fmnist-va ip netns exec $a /usr/bin/python3 "${args[@]}" --rank 0 >"$tmp/pa.log" 2>&1 || { cat "$tmp/pa.log" "$tmp/pb.log" >&2; exit 1; }
    wait $peer
    node -e "
      const r = JSON.parse(require('fs').readFileSync('$tmp/pa.log', 'utf8').trim().split('\n').pop());
      console.log('bucket_cap_mb $cap'.padEnd(50), r.imagesPerSec.toFixed(1).padStart(9), r.stepMs.toFixed(1).padStart(9), r.noSyncStepMs.toFixed(1).padStart(9));"
  done
else
  echo "(PyTorch is not installed: /usr/bin/python3 -c 'import torch' failed; Debian's python3-torch is the baseline)"
fi
