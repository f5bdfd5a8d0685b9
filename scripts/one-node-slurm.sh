#!/usr/bin/env bash
# A SLURM cluster of one node (this machine), for trying srun here: munged, slurmctld and slurmd
# started from a configuration written into DIR (nothing under /etc is changed); `down` stops what
# `up` started (munged only if it was not running already). Needs root and
# Debian's slurmd, slurmctld and libpmix-dev (srun --mpi=pmix):
#   apt-get install slurmd slurmctld libpmix-dev
#
#   scripts/one-node-slurm.sh up DIR      then: SLURM_CONF=DIR/slurm.conf srun -n 2 ...
#   scripts/one-node-slurm.sh down DIR    stops the daemons it started
#   scripts/one-node-slurm.sh check       exit 0 when this machine can, else says why (exit 2)
set -euo pipefail

check() {
  if [[ $(id -u) -ne 0 ]]; then echo "needs root (it starts slurmd)"; return 2; fi
  local tool
  for tool in munged slurmctld slurmd srun; do
    command -v $tool >/dev/null || { echo "needs '$tool' (apt-get install slurmd slurmctld libpmix-dev)"; return 2; }
  done
  [[ -e /usr/lib/x86_64-linux-gnu/pmix2/lib/libpmix.so ]] || { echo "needs libpmix.so for srun --mpi=pmix (apt-get install libpmix-dev)"; return 2; }
}

up() {
  local dir=$1 host
  host=$(hostname)
  mkdir -p "$dir"/{state,spool,log}
  cat >"$dir/slurm.conf" <<CONF
ClusterName=fmnist
SlurmctldHost=$host
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
NodeName=$host CPUs=$(nproc) State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
  if ! munge -n >/dev/null 2>&1; then
    mkdir -p /run/munge && chown munge:munge /run/munge
    runuser -u munge -- /usr/sbin/munged
    cp /run/munge/munged.pid "$dir/munged.pid"
  fi
  SLURM_CONF="$dir/slurm.conf" slurmctld
  SLURM_CONF="$dir/slurm.conf" slurmd
  local i
  for i in $(seq 50); do
    if SLURM_CONF="$dir/slurm.conf" sinfo -h -o %T 2>/dev/null | grep -q idle; then return 0; fi
    sleep 0.2
  done
  echo "the one-node cluster did not come up: see $dir/log" >&2
  return 1
}

down() {
  local dir=$1 pid
  for pid in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munged.pid"; do
    [[ -f $pid ]] && kill "$(cat "$pid")" 2>/dev/null || true
  done
}

case "${1:-}" in
  check) check ;;
  up) check >&2 && up "$2" ;;
  down) down "$2" ;;
  *) echo "usage: $0 check | up DIR | down DIR" >&2; exit 2 ;;
esac
