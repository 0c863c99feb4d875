#!/usr/bin/env bash
# local-slurm.sh: a real single-node Slurm (Debian's 22.05 packages) on this machine, for tests,
# the demo and benchmarks. Needs root. Idempotent.
#
#   scripts/local-slurm.sh up       install if missing, write the config, start munge/slurmctld/slurmd
#   scripts/local-slurm.sh down     stop the daemons (the packages and config stay)
#   scripts/local-slurm.sh status   print whether it is up; exit 0 only if the node is usable
#   scripts/local-slurm.sh reset    cancel every job (keeps the daemons up)
#
# Partitions: "debug" (the default, up) and "down" (State=DOWN: jobs there stay PENDING with
# reason PartitionDown, the way to build a large pending queue).
# Facts behind each setting: ../shared/SLURM-LOCAL.md (and the comments below).
set -euo pipefail

CONF=/etc/slurm/slurm.conf
SPOOL=/var/spool/slurmd
STATE=/var/spool/slurmctld
LOGDIR=/var/log/slurm
# Extra CPUs the node advertises (config_overrides), so that many small jobs run at once.
NODE_CPUS=${LOCAL_SLURM_CPUS:-16}

log() { printf 'local-slurm: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

need_root() { [ "$(id -u)" = 0 ] || die "needs root (it installs packages and starts daemons)"; }

install_packages() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null &&
    command -v munged >/dev/null; then
    return 0
  fi
  log "installing munge and slurm from Debian packages"
  # Stop the packages' postinst scripts from starting daemons with the stock config.
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 0755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' RETURN
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq --no-install-recommends munge slurm-wlm slurm-client slurmctld slurmd >/tmp/local-slurm-apt.log 2>&1; then
    apt-get update -qq >/tmp/local-slurm-apt.log 2>&1 || die "apt-get update failed: see /tmp/local-slurm-apt.log"
    apt-get install -y -qq --no-install-recommends munge slurm-wlm slurm-client slurmctld slurmd >>/tmp/local-slurm-apt.log 2>&1 ||
      die "apt-get install failed: see /tmp/local-slurm-apt.log"
  fi
}

write_config() {
  local host mem
  host=$(hostname -s)
  getent hosts "$host" >/dev/null || echo "127.0.0.1 $host" >>/etc/hosts
  mem=$(awk '/MemTotal/ {printf "%d", $2/1024*0.8}' /proc/meminfo)
  mkdir -p /etc/slurm "$SPOOL" "$STATE" "$LOGDIR"
  cat >"$CONF.new" <<EOF
# Written by dispatch-slurm scripts/local-slurm.sh: a single-node test cluster.
ClusterName=localtest
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Without DefMemPerCPU a job without --mem takes the whole node.
DefMemPerCPU=256
# priority = 1000000 - nice, so renicing is observable.
PriorityType=priority/multifactor
PriorityWeightPartition=1000000
PriorityWeightAge=0
PriorityWeightFairshare=0
PriorityWeightJobSize=0
PriorityWeightQOS=0
SlurmdParameters=config_overrides
SchedulerParameters=batch_sched_delay=0
StateSaveLocation=$STATE
SlurmdSpoolDir=$SPOOL
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOGDIR/slurmctld.log
SlurmdLogFile=$LOGDIR/slurmd.log
MailProg=/bin/true
KillWait=5
MaxJobCount=20000
MinJobAge=300
ReturnToService=2
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${NODE_CPUS} RealMemory=${mem} TmpDisk=100000 State=UNKNOWN
PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP
PartitionName=down Nodes=${host} Default=NO MaxTime=INFINITE State=DOWN
EOF
  if ! cmp -s "$CONF.new" "$CONF"; then
    mv "$CONF.new" "$CONF"
    return 0
  fi
  rm -f "$CONF.new"
  return 1
}

start_munge() {
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then return 0; fi
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  chmod 0755 /run/munge
  [ -f /etc/munge/munge.key ] || /usr/sbin/mungekey --create >/dev/null 2>&1 ||
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
  runuser -u munge -- /usr/sbin/munged --force
  wait_for "munge" 10 bash -c 'munge -n | unmunge >/dev/null 2>&1'
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_for() {
  local what=$1 secs=$2 i
  shift 2
  for ((i = 0; i < secs * 10; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  return 1
}

node_idle() {
  local st
  st=$(sinfo -h -N -p debug -o %T 2>/dev/null | head -1)
  case "$st" in idle | mixed | allocated | completing) return 0 ;; esac
  return 1
}

up() {
  need_root
  install_packages
  local changed=0
  write_config && changed=1
  start_munge || die "munged did not start"
  if [ "$changed" = 1 ] && pid_alive /run/slurmctld.pid; then
    log "config changed: restarting daemons"
    down_daemons
  fi
  if ! pid_alive /run/slurmctld.pid; then
    slurmctld -i || die "slurmctld failed to start: see $LOGDIR/slurmctld.log"
  fi
  wait_for "slurmctld" 20 bash -c 'scontrol ping | grep -q UP' ||
    die "slurmctld is not answering: see $LOGDIR/slurmctld.log"
  if ! pid_alive /run/slurmd.pid; then
    slurmd || die "slurmd failed to start: see $LOGDIR/slurmd.log"
  fi
  if ! wait_for "node idle" 30 node_idle; then
    scontrol update NodeName="$(hostname -s)" State=RESUME >/dev/null 2>&1 || true
    wait_for "node idle" 10 node_idle ||
      die "node not usable: $(sinfo -N -o '%N %T %E' 2>&1 | tail -n +2); see $LOGDIR/slurmd.log"
  fi
  log "up: $(sinfo -h -o '%P %a %D %T' | tr '\n' ' ')"
}

down_daemons() {
  local p
  for p in /run/slurmd.pid /run/slurmctld.pid; do
    if pid_alive "$p"; then
      kill "$(cat "$p")" 2>/dev/null || true
      wait_for "stop" 15 bash -c "! kill -0 $(cat "$p") 2>/dev/null" || kill -9 "$(cat "$p")" 2>/dev/null || true
    fi
    rm -f "$p"
  done
}

down() {
  need_root
  down_daemons
  log "down"
}

status() {
  if command -v scontrol >/dev/null && scontrol ping 2>/dev/null | grep -q UP && node_idle; then
    echo "up: $(sinfo -h -o '%P %a %D %T' | tr '\n' ' ')"
    return 0
  fi
  echo "down"
  return 1
}

reset() {
  scancel --user="$(id -un)" >/dev/null 2>&1 || true
}

case "${1:-}" in
up) up ;;
down) down ;;
status) status ;;
reset) reset ;;
*)
  echo "usage: $0 up|down|status|reset" >&2
  exit 2
  ;;
esac
