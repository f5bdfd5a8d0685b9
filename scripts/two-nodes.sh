#!/usr/bin/env bash
# Two "nodes" on one machine: network namespaces NAME-a (10.77.K.1) and NAME-b (10.77.K.2) joined by
# a veth pair whose both ends tc's token bucket (tbf) limits to RATE, for the slow-link benchmark
# (bench/link.sh) and test (test/slow-link.test.ts); RATE "none" leaves the veth as fast as it is
# (bench/allreduce.ts's TCP comparison).
#
#   scripts/two-nodes.sh up NAME RATE K     e.g. up fmnist 100mbit 0, up fmnist-tcp none 1
#   scripts/two-nodes.sh down NAME          kills what runs inside, removes both namespaces
#   scripts/two-nodes.sh check              exit 0 when this machine can make them, else says why (exit 2)
#
# Needs root and iproute2 (ip, tc); tc's netem (added delay) is not needed.
set -euo pipefail

check() {
  if [[ $(id -u) -ne 0 ]]; then echo "needs root (it makes network namespaces)"; return 2; fi
  for tool in ip tc; do
    command -v $tool >/dev/null || { echo "needs '$tool' (Debian package iproute2)"; return 2; }
  done
}

down() {
  local name=$1 ns
  for ns in "$name-a" "$name-b"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
}

up() {
  local name=$1 rate=$2 subnet=$3 side
  down "$name"
  ip netns add "$name-a"
  ip netns add "$name-b"
  ip link add "$name-va" type veth peer name "$name-vb"
  for side in a b; do
    ip link set "$name-v$side" netns "$name-$side"
    ip -n "$name-$side" addr add "10.77.$subnet.$([[ $side == a ]] && echo 1 || echo 2)/24" dev "$name-v$side"
    ip -n "$name-$side" link set lo up
    ip -n "$name-$side" link set "$name-v$side" up
    [[ $rate == none ]] || tc -n "$name-$side" qdisc add dev "$name-v$side" root tbf rate "$rate" burst 64kb latency 50ms
  done
}

case "${1:-}" in
  check) check ;;
  up) check >&2 && up "$2" "$3" "$4" ;;
  down) down "$2" ;;
  *) echo "usage: $0 check | up NAME RATE SUBNET | down NAME" >&2; exit 2 ;;
esac
