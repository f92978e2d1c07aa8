#!/usr/bin/env bash
# A throwaway Slurm cluster on this host: munged, slurmctld and two emulated nodes (n1, n2), every
# file of it (configuration, state, spool, logs, pids, munge key and socket) under one temporary
# root. It installs nothing: without the Debian packages (slurmctld slurmd slurm-client munge) it
# says so and fails.
#
#   scripts/slurm-test-cluster.sh up [ROOT]   start; prints ROOT then SLURM_CONF=ROOT/slurm.conf
#   scripts/slurm-test-cluster.sh down ROOT   stop every daemon and step of it, remove ROOT
#
# Several clusters may run at once (test files run in parallel): each takes its own free ports and
# its own range of job ids, because nodes of the same name share their cgroup directories
# (/sys/fs/cgroup/<controller>/slurm_n1) and job ids are the only thing apart there.
set -euo pipefail

die() { echo "slurm-test-cluster: $*" >&2; exit 1; }

need_binaries() {
  local b missing=()
  for b in munged slurmctld slurmd srun scontrol squeue; do
    command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] || missing+=("$b")
  done
  [ ${#missing[@]} -eq 0 ] ||
    die "missing ${missing[*]}: install the Debian packages: apt-get install slurmctld slurmd slurm-client munge"
}

port_free() { ! ss -Htln "sport = :$1" 2>/dev/null | grep -q .; }

# Three consecutive free ports (controller, n1, n2), starting at a random base.
pick_ports() {
  local tries base
  for tries in $(seq 1 50); do
    base=$(( 20000 + (RANDOM * 32768 + RANDOM) % 30000 ))
    if port_free "$base" && port_free $((base + 1)) && port_free $((base + 2)); then
      echo "$base"; return 0
    fi
  done
  die "no three free consecutive ports found"
}

wait_for() { # what, seconds, command... (polled every 50 ms; a deadline, not a count of tries,
  # because under load each try itself (sinfo, a round trip to slurmctld) can take a second)
  local what=$1 seconds=$2; shift 2
  local deadline=$(( $(date +%s%N) + seconds * 1000000000 ))
  while :; do
    if "$@" >/dev/null 2>&1; then return 0; fi
    [ "$(date +%s%N)" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}

# Whether the node's slurmd (its pid file, under the cluster's root) is alive.
node_running() { # root, node
  local pid
  pid=$(cat "$1/run/slurmd-$2.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

up() {
  need_binaries
  local root=${1:-}
  if [ -z "$root" ]; then root=$(mktemp -d /tmp/shuma-slurm.XXXXXX); else mkdir -p "$root"; fi
  chmod 0755 "$root"
  mkdir -p "$root"/{state,spool/n1,spool/n2,log,run,munge}
  chmod 0700 "$root/munge"
  local host base conf
  host=$(hostname -s)
  base=$(pick_ports)
  conf="$root/slurm.conf"

  # munge: a key of our own and a socket under the root; clients find it through AuthInfo.
  dd if=/dev/urandom of="$root/munge/munge.key" bs=1024 count=1 status=none
  chmod 0400 "$root/munge/munge.key"
  munged -f --key-file="$root/munge/munge.key" --socket="$root/munge/munge.socket" \
    --pid-file="$root/run/munged.pid" --log-file="$root/log/munged.log" \
    --seed-file="$root/munge/munged.seed" --num-threads=2 ||
    die "munged did not start: $(tail -3 "$root/log/munged.log" 2>/dev/null)"

  cat >"$conf" <<EOF
# A throwaway test cluster (scripts/slurm-test-cluster.sh); everything lives under $root.
ClusterName=shuma$base
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$base
SlurmdPort=$((base + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$root/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$root/state
SlurmdSpoolDir=$root/spool/%n
SlurmctldPidFile=$root/run/slurmctld.pid
SlurmdPidFile=$root/run/slurmd-%n.pid
SlurmctldLogFile=$root/log/slurmctld.log
SlurmdLogFile=$root/log/slurmd-%n.log
FirstJobId=$(( (base - 20000) * 1000 + 1 ))
MaxJobId=67043328
ProctrackType=proctrack/cgroup
TaskPlugin=task/cgroup,task/affinity
JobAcctGatherType=jobacct_gather/cgroup
JobAcctGatherFrequency=task=1
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
ReturnToService=2
# A lost node is noticed within seconds, not the default five minutes.
SlurmdTimeout=5
SlurmctldTimeout=10
MessageTimeout=5
KillWait=2
InactiveLimit=0
MinJobAge=2
SchedulerParameters=sched_interval=1
NodeName=n1 NodeHostname=$host NodeAddr=127.0.0.1 Port=$((base + 1)) CPUs=2 RealMemory=2048 State=UNKNOWN
NodeName=n2 NodeHostname=$host NodeAddr=127.0.0.1 Port=$((base + 2)) CPUs=2 RealMemory=2048 State=UNKNOWN
PartitionName=main Nodes=n[1-2] Default=YES MaxTime=INFINITE State=UP DefMemPerCPU=128
EOF
  cat >"$root/cgroup.conf" <<EOF
CgroupPlugin=autodetect
ConstrainRAMSpace=yes
EOF
  export SLURM_CONF=$conf
  slurmctld -f "$conf" || die "slurmctld did not start: $(tail -5 "$root/log/slurmctld.log" 2>/dev/null)"
  slurmd -f "$conf" -N n1 || die "slurmd n1 did not start: $(tail -5 "$root/log/slurmd-n1.log" 2>/dev/null)"
  slurmd -f "$conf" -N n2 || die "slurmd n2 did not start: $(tail -5 "$root/log/slurmd-n2.log" 2>/dev/null)"
  # Ready when both nodes have registered and are idle. Under load a node's slurmd was seen gone
  # before it registered (the node "unk*" for 30 s): one that is not running is started again.
  local idle='[ "$(sinfo -h -N -o "%N %t" 2>/dev/null | grep -c " idle$")" = 2 ]'
  if ! wait_for "nodes idle" 20 bash -c "$idle"; then
    local node
    for node in n1 n2; do
      node_running "$root" "$node" || slurmd -f "$conf" -N "$node" || true
    done
    if ! wait_for "nodes idle" 40 bash -c "$idle"; then
      sinfo -N >&2 || true
      tail -5 "$root/log/slurmctld.log" "$root/log/slurmd-n1.log" "$root/log/slurmd-n2.log" >&2 || true
      down "$root"
      die "the nodes did not become idle within 60 s"
    fi
  fi
  echo "$root"
  echo "SLURM_CONF=$conf"
}

# Every process that carries this cluster's configuration in its environment (slurmstepd, the
# tasks of its steps, a leftover srun), besides the daemons in the pid files.
cluster_pids() {
  local root=$1 p
  for p in /proc/[0-9]*; do
    [ "${p#/proc/}" = "$$" ] && continue
    if { tr '\0' '\n' <"$p/environ"; } 2>/dev/null | grep -qxF "SLURM_CONF=$root/slurm.conf"; then
      echo "${p#/proc/}"
    fi
  done
}

stop_pid_file() { # signal, file
  local pid
  [ -f "$2" ] || return 0
  pid=$(cat "$2" 2>/dev/null || true)
  [ -n "$pid" ] && kill "-$1" "$pid" 2>/dev/null || true
}

pid_file_alive() {
  local f pid
  for f in "$@"; do
    [ -f "$f" ] || continue
    pid=$(cat "$f" 2>/dev/null || true)
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && return 0
  done
  return 1
}

none_alive() { ! pid_file_alive "$@"; }

down() {
  local root=${1:-}
  [ -n "$root" ] || die "usage: $0 down ROOT"
  [ -f "$root/slurm.conf" ] || [ -d "$root/run" ] || die "$root is not a test cluster's root"
  export SLURM_CONF=$root/slurm.conf
  # Jobs first, while the daemons can still end their steps; then the daemons, then any stray.
  if pid_file_alive "$root/run/slurmctld.pid"; then
    scancel --quiet --full --user=root 2>/dev/null || true
  fi
  local daemons=("$root/run/slurmd-n1.pid" "$root/run/slurmd-n2.pid" "$root/run/slurmctld.pid")
  local f
  for f in "${daemons[@]}"; do stop_pid_file TERM "$f"; done
  wait_for "daemons gone" 5 none_alive "${daemons[@]}" || {
    for f in "${daemons[@]}"; do stop_pid_file KILL "$f"; done
  }
  local strays
  strays=$(cluster_pids "$root")
  [ -z "$strays" ] || kill -KILL $strays 2>/dev/null || true
  stop_pid_file TERM "$root/run/munged.pid"
  wait_for "munged gone" 5 none_alive "$root/run/munged.pid" ||
    stop_pid_file KILL "$root/run/munged.pid"
  remove_job_cgroups "$root"
  rm -rf "$root"
}

# Empty cgroup directories of this cluster's jobs (slurmd leaves job_N behind when it is killed);
# rmdir only ever removes an empty cgroup, so a cluster running beside this one is not touched.
remove_job_cgroups() {
  local root=$1 first dir
  first=$(sed -n 's/^FirstJobId=//p' "$root/slurm.conf" 2>/dev/null || true)
  [ -n "$first" ] || return 0
  for dir in /sys/fs/cgroup/*/slurm_n[12]/uid_*/job_*; do
    [ -d "$dir" ] || continue
    local id=${dir##*job_}
    if [ "$id" -ge "$first" ] && [ "$id" -lt $((first + 1000)) ]; then
      find "$dir" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    fi
  done
}

case "${1:-}" in
  up) up "${2:-}" ;;
  down) down "${2:-}" ;;
  *) echo "usage: $0 up [ROOT] | down ROOT" >&2; exit 2 ;;
esac
