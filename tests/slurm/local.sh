#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for the test suite and CI (Debian 12, as root, no
# systemd needed). Everything but MUNGE lives in one scratch folder DIR: slurm.conf, state, spool,
# logs and the daemons' PIDs. Clients reach the cluster through SLURM_CONF=DIR/slurm.conf.
#
#   install    apt-get install slurmctld slurmd slurm-client munge where slurmctld/sbatch/munged
#              are missing (sudo when not root)
#   start DIR  write DIR/slurm.conf (this host as the only node, partition "debug", KillWait=10,
#              MinJobAge=600), start munged if `munge -n | unmunge` fails, start slurmctld and
#              slurmd in the background, wait until the node is idle; the last stdout line is
#              SLURM_CONF=DIR/slurm.conf. A cluster already running from DIR is stopped first.
#   stop DIR   cancel its jobs, stop its slurmctld and slurmd (munged, shared, keeps running)
#   check      install, start in a temporary folder, run one job, stop: fail loudly if Slurm
#              cannot run here
#
# See /work/shared/notes/slurm-local.md for what was tried. The daemons need root.
set -euo pipefail

usage() { echo "usage: bash $0 install | start DIR | stop DIR | check" >&2; exit 2; }
die() { echo "slurm/local.sh: $*" >&2; exit 1; }

install_slurm() {
    if command -v slurmctld >/dev/null && command -v sbatch >/dev/null && command -v munged >/dev/null; then
        return 0
    fi
    local sudo="" out
    [ "$(id -u)" = 0 ] || sudo=sudo
    out=$({ $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
        && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            slurmctld slurmd slurm-client munge; } 2>&1) || { echo "$out" >&2; die "apt-get failed"; }
}

# The PID recorded in DIR for daemon $2, if that process still runs with DIR's slurm.conf.
running_pid() {
    local pid cmd
    pid=$(cat "$1/$2.pid" 2>/dev/null) || return 1
    cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
    [[ -n "$pid" && "$cmd" == *"$1/slurm.conf"* ]] || return 1
    echo "$pid"
}

stop() {
    local dir pid name i f
    dir=$(realpath -m "$1")
    if running_pid "$dir" slurmctld >/dev/null && running_pid "$dir" slurmd >/dev/null; then
        # Jobs' processes outlive slurmd: cancel them (SIGTERM, SIGKILL after KillWait) first. By
        # partition: `scancel <raw id of an array task>` is ignored once the array's own record ended.
        export SLURM_CONF=$dir/slurm.conf
        scancel --partition=debug 2>/dev/null || true
        for ((i = 0; i < 150; i++)); do
            [ -z "$(squeue -h -t R,CG -o %A 2>/dev/null)" ] && break
            sleep 0.1
        done
    fi
    # proctrack/linuxproc loses a job's process whose parent died (a shell killed by SIGTERM):
    # kill whatever still runs with this cluster's SLURM_CONF and a SLURM_JOB_ID in its environment.
    while read -r f; do
        pid=${f#/proc/}
        pid=${pid%/environ}
        [ "$pid" != $$ ] && grep -qz '^SLURM_JOB_ID=' "$f" 2>/dev/null && kill -9 "$pid" 2>/dev/null
    done < <(grep -lzx "SLURM_CONF=$dir/slurm.conf" /proc/[0-9]*/environ 2>/dev/null)
    for name in slurmd slurmctld; do
        pid=$(running_pid "$dir" "$name") || { rm -f "$dir/$name.pid"; continue; }
        kill "$pid" 2>/dev/null || true
        # Gone once its cmdline is empty: a zombie counts (PID 1 may be slow to reap).
        for ((i = 0; i < 100; i++)); do running_pid "$dir" "$name" >/dev/null || break; sleep 0.1; done
        running_pid "$dir" "$name" >/dev/null && kill -9 "$pid" 2>/dev/null
        rm -f "$dir/$name.pid"
    done
}

# Stop what started from DIR, show the tails of its daemons' output, and fail.
fail() {
    local f
    for f in "$1"/log/slurmctld.out "$1"/log/slurmd.out; do
        [ -f "$f" ] && { echo "--- tail of $f"; tail -n 15 "$f"; }
    done >&2
    stop "$1"
    die "$2 (logs: $1/log)"
}

start_munge() {
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
    install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
    install -d -o munge -g munge -m 0755 /run/munge
    [ -f /etc/munge/munge.key ] || runuser -u munge -- mungekey --create
    runuser -u munge -- munged || die "munged does not start"
    munge -n | unmunge >/dev/null || { tail -n 15 /var/log/munge/munged.log >&2; die "munge -n | unmunge fails"; }
}

write_conf() {
    local dir=$1 host mem
    host=$(hostname -s)
    mem=$(awk '/^MemTotal:/ { m = int($2 / 1024); print (m > 2048 ? m - 1024 : int(m / 2)) }' /proc/meminfo)
    cat >"$dir/slurm.conf" <<EOF
# Written by tests/slurm/local.sh: a single-node cluster for tests.
ClusterName=local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
KillWait=10
MinJobAge=600
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=60 State=UP
EOF
}

start() {
    [ "$(id -u)" = 0 ] || die "start needs root (slurmd runs jobs as their users)"
    command -v slurmctld >/dev/null || die "Slurm is not installed: run bash $0 install"
    local dir i state=""
    dir=$(realpath -m "$1")
    stop "$dir"
    mkdir -p "$dir"/{state,spool,run,log}
    write_conf "$dir"
    export SLURM_CONF=$dir/slurm.conf
    start_munge
    # setsid: the daemons leave the caller's process group (no Ctrl-C), and never hold its stdout.
    setsid slurmctld -D -i -f "$SLURM_CONF" </dev/null >"$dir/log/slurmctld.out" 2>&1 &
    echo $! >"$dir/slurmctld.pid"
    setsid slurmd -D -f "$SLURM_CONF" </dev/null >"$dir/log/slurmd.out" 2>&1 &
    echo $! >"$dir/slurmd.pid"
    for ((i = 0; i < 300; i++)); do
        running_pid "$dir" slurmctld >/dev/null || fail "$dir" "slurmctld exited"
        running_pid "$dir" slurmd >/dev/null || fail "$dir" "slurmd exited"
        if scontrol ping 2>/dev/null | grep -q UP; then
            state=$(sinfo -h -N -o %t 2>/dev/null || true)
            [ "$state" = idle ] && { echo "SLURM_CONF=$SLURM_CONF"; return 0; }
        fi
        sleep 0.1
    done
    fail "$dir" "the node is not idle after 30 s (sinfo says: ${state:-nothing})"
}

check() {
    install_slurm
    local out
    CHECK_DIR=$(mktemp -d /tmp/slurm-check.XXXXXX)
    trap 'stop "$CHECK_DIR"' EXIT
    local dir=$CHECK_DIR
    start "$dir" >/dev/null
    export SLURM_CONF=$dir/slurm.conf
    out=$dir/check.out
    timeout 60 sbatch --quiet --wait --chdir="$dir" --output="$out" --wrap 'echo ok' \
        || fail "$dir" "the check job failed (sbatch --wait)"
    [ "$(cat "$out" 2>/dev/null)" = ok ] || fail "$dir" "the check job's output is not 'ok'"
    echo "slurm/local.sh: Slurm works here ($(sbatch --version))"
    stop "$dir"
    trap - EXIT
    rm -rf "$dir"
}

case "${1:-}" in
    install) [ $# = 1 ] || usage; install_slurm ;;
    start) [ $# = 2 ] || usage; start "$2" ;;
    stop) [ $# = 2 ] || usage; stop "$2" ;;
    check) [ $# = 1 ] || usage; check ;;
    *) usage ;;
esac
