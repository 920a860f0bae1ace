#!/usr/bin/env bash
# Stop exactly the daemons tests/cluster/setup_slurm.sh started in DIR (listed in DIR/pids), newest
# first (slurmd, slurmctld, munged), and nothing else: a pid is signalled only while its command line
# still names DIR, so a recycled pid is left alone.
# Usage: tests/cluster/teardown_slurm.sh [DIR] [--purge]   (--purge also deletes DIR)
set -euo pipefail

DIR=${TMPDIR:-/tmp}/vbmi-slurm
purge=0
for a in "$@"; do
    case $a in
    --purge) purge=1 ;;
    *) DIR=$a ;;
    esac
done
say() { echo "teardown_slurm: $*" >&2; }

ours() { [[ -r /proc/$1/cmdline ]] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -q -- "$DIR/"; }

if [[ -s $DIR/pids ]]; then
    # jobs still running would keep slurmstepd around: cancel them while the controller answers
    SLURM_CONF=$DIR/slurm.conf timeout 10 scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
    tac "$DIR/pids" | while read -r name pid; do
        if ! ours "$pid"; then
            say "$name ($pid) is not running"
            continue
        fi
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 100); do
            ours "$pid" || break
            sleep 0.1
        done
        if ours "$pid"; then
            say "$name ($pid) ignored SIGTERM for 10 s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        say "stopped $name ($pid)"
    done
    : >"$DIR/pids"
else
    say "nothing recorded in $DIR/pids"
fi
if ((purge)); then rm -rf "$DIR"; fi
