#!/usr/bin/env bash
# Bring up a throwaway single-node SLURM on this machine: munged, slurmctld and slurmd, one node
# named after `hostname -s` with a fake GPU (gres `gpu:1` backed by /dev/null), no accounting.
#
# Usage: tests/cluster/setup_slurm.sh [DIR]
#   DIR (default ${TMPDIR:-/tmp}/vbmi-slurm) holds every config, socket, log, spool and pid file;
#   nothing is written to /etc/slurm. Clients find this cluster through SLURM_CONF=DIR/slurm.conf and
#   PATH=DIR/bin:$PATH (the srun shim below); `source DIR/env` sets both. The last line printed on
#   stdout is SLURM_CONF=DIR/slurm.conf.
# Ports: VBMI_SLURM_PORT (slurmctld; slurmd uses +1) or, unset, two free ports, so several clusters
#   (one per test session) can run side by side, each with its own munged socket.
# Idempotent: if the daemons recorded in DIR/pids are alive and answer, it prints SLURM_CONF and exits.
# Exit codes: 0 up; 77 this machine cannot run it (not root, SLURM not installable); 1 daemons failed
#   (the logs in DIR/log are printed to stderr); 2 DIR unusable. Stop it: tests/cluster/teardown_slurm.sh DIR.
# Runs as root: slurmctld/slurmd as root (SlurmUser=root), munged as the `munge` user.
set -euo pipefail

DIR=${1:-${TMPDIR:-/tmp}/vbmi-slurm}
HERE=$(cd "$(dirname "$0")" && pwd)
say() { echo "setup_slurm: $*" >&2; }
cant() { say "$*"; exit 77; }

[[ $(id -u) -eq 0 ]] || cant "needs root (slurmd must start jobs and munged runs as the munge user)"

# --- install Debian's slurm-wlm pieces and munge if missing (a few seconds from a warm apt cache)
need=()
command -v munged >/dev/null || need+=(munge)
command -v slurmctld >/dev/null || need+=(slurmctld)
command -v slurmd >/dev/null || need+=(slurmd)
command -v sbatch >/dev/null || need+=(slurm-client)
if ((${#need[@]})); then
    command -v apt-get >/dev/null || cant "SLURM is not installed and there is no apt-get to install ${need[*]}"
    say "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # policy-rc.d-style start failures are harmless: we start our own daemons below.
    if ! apt-get install -y -qq --no-install-recommends "${need[@]}" >&2; then
        apt-get update -qq >&2 || true
        apt-get install -y -qq --no-install-recommends "${need[@]}" >&2 ||
            cant "apt-get could not install ${need[*]}"
    fi
fi
[[ -r /etc/munge/munge.key ]] || cant "no /etc/munge/munge.key (the munge package creates it)"

# --- already up? (idempotence; the lock makes concurrent calls on one DIR wait for each other)
mkdir -p "$DIR"
exec 9>"$DIR/.lock"
flock 9
alive() { # name pid: the pid runs and was started on this DIR's config (guards against pid reuse)
    [[ -n ${2:-} && -r /proc/$2/cmdline ]] && tr '\0' ' ' <"/proc/$2/cmdline" | grep -q -- "$DIR/"
}
if [[ -s $DIR/pids && -s $DIR/slurm.conf ]]; then
    up=1
    while read -r name pid; do alive "$name" "$pid" || up=0; done <"$DIR/pids"
    if ((up)) && SLURM_CONF=$DIR/slurm.conf timeout 10 scontrol ping 2>/dev/null | grep -q UP; then
        say "already running in $DIR"
        echo "SLURM_CONF=$DIR/slurm.conf"
        exit 0
    fi
    say "stale cluster in $DIR: stopping what is left of it"
    "$HERE/teardown_slurm.sh" "$DIR" >&2 || true
fi

# --- fresh directory layout
rm -rf "$DIR/state" "$DIR/spool" "$DIR/log" "$DIR/munge"
mkdir -p "$DIR"/{state,spool,log,munge}
chmod 0755 "$DIR" "$DIR/log"
chown munge: "$DIR/munge"
chmod 0755 "$DIR/munge"
if ! runuser -u munge -- test -w "$DIR/munge"; then
    say "the munge user cannot reach $DIR/munge: every directory above it must be world-executable"
    say "(pytest's tmp_path is under a 0700 directory; use a directory made with mktemp -d in /tmp)"
    exit 2
fi
: >"$DIR/pids"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
        shuf -i 20000-60000 -n 1
}
if [[ -n ${VBMI_SLURM_PORT:-} ]]; then
    ctld_port=$VBMI_SLURM_PORT
    slurmd_port=$((VBMI_SLURM_PORT + 1))
else
    ctld_port=$(free_port)
    slurmd_port=$(free_port)
fi

host=$(hostname -s)
cpus=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc) # nproc alone obeys OMP_NUM_THREADS=1
# 90% of MemTotal in MiB: slurmd drains a node whose RealMemory exceeds what it finds.
mem=$(awk '/^MemTotal:/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)

cat >"$DIR/slurm.conf" <<EOF
# Written by tests/cluster/setup_slurm.sh: a single-node test cluster, not for production.
ClusterName=vbmi-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.socket
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
PlugStackConfig=$DIR/plugstack.conf
# No cgroups: proctrack/linuxproc and task/none work in containers and gVisor.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# No slurmdbd: this is what makes sacct useless and squeue the status command to use.
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
# cons_tres is what understands --gpus; cores are the consumable, memory is only checked.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
SchedulerType=sched/backfill
# The snakemake slurm plugin reads finished jobs from squeue, which shows them for MinJobAge seconds
# (it falls back to sacct when MinJobAge < 3 x its first status-check delay). An hour, so that a test
# can still inspect every job of a run with scontrol show job after the run.
MinJobAge=3600
ReturnToService=2
# Trust the node line below instead of draining on a topology or memory mismatch.
SlurmdParameters=config_overrides
SlurmdTimeout=300
KillWait=5
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
# gres.conf is read from the directory of slurm.conf. /dev/null stands in for /dev/nvidia0.
echo "NodeName=$host Name=gpu File=/dev/null" >"$DIR/gres.conf"
: >"$DIR/plugstack.conf"
# The slurm-jobstep plugin (0.6.1) strips every SLURM_* variable, SLURM_CONF included, before its
# nested `srun` inside the job, so that srun looks for /etc/slurm/slurm.conf. Real clusters keep their
# config there (or run configless); this private cluster instead puts DIR/bin first on PATH, holding
# an srun that restores SLURM_CONF, and leaves /etc/slurm alone.
mkdir -p "$DIR/bin"
# shellcheck disable=SC2016 # $@ and ${SLURM_CONF:-...} are for the wrapper, not for now
printf '#!/bin/sh\nSLURM_CONF=${SLURM_CONF:-%s} exec %s "$@"\n' \
    "$DIR/slurm.conf" "$(command -v srun)" >"$DIR/bin/srun"
chmod 0755 "$DIR/bin/srun"
# shellcheck disable=SC2016 # $PATH is expanded when DIR/env is sourced
printf 'export SLURM_CONF=%s\nexport PATH=%s:"$PATH"\n' "$DIR/slurm.conf" "$DIR/bin" >"$DIR/env"
export SLURM_CONF=$DIR/slurm.conf

fail() {
    say "$*"
    for f in "$DIR"/log/* "$DIR"/munge/munged.log; do
        [[ -s $f ]] && { say "--- $f"; tail -n 30 "$f" >&2; }
    done
    "$HERE/teardown_slurm.sh" "$DIR" >&2 || true
    exit 1
}
record() { # name pidfile: wait for the daemon's pid file and record the pid
    local _
    for _ in $(seq 100); do
        [[ -s $2 ]] && { echo "$1 $(cat "$2")" >>"$DIR/pids"; return 0; }
        sleep 0.1
    done
    fail "$1 did not write $2"
}

# --- munged: own socket, the system key
runuser -u munge -- munged --socket="$DIR/munge/munge.socket" --key-file=/etc/munge/munge.key \
    --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/munge/munged.log" \
    --seed-file="$DIR/munge/munged.seed" 9>&- || fail "munged did not start"
record munged "$DIR/munge/munged.pid"

# --- controller, then node
slurmctld -f "$DIR/slurm.conf" -c 9>&- || fail "slurmctld did not start"
record slurmctld "$DIR/slurmctld.pid"
slurmd -f "$DIR/slurm.conf" 9>&- || fail "slurmd did not start"
record slurmd "$DIR/slurmd.pid"

# --- wait until the node takes jobs
for _ in $(seq 150); do
    state=$(sinfo -h -n "$host" -o %T 2>/dev/null || true)
    [[ $state == idle* || $state == mixed* ]] && break
    sleep 0.2
done
[[ $state == idle* || $state == mixed* ]] || fail "node $host is '${state:-unreachable}', not idle"
say "up in $DIR: node $host, $cpus CPUs, ${mem} MB, gpu:1, ports $ctld_port/$slurmd_port"
echo "SLURM_CONF=$DIR/slurm.conf"
