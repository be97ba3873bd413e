#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for the Slurm check of the test suite:
#   bash scripts/slurm-local.sh start   installs slurmctld, slurmd and munge (Debian packages) if
#                                       missing, writes a one-node configuration under
#                                       $SLURM_LOCAL (default /tmp/segprep-slurm), starts munged,
#                                       slurmctld and slurmd, and waits until the node is idle
#   bash scripts/slurm-local.sh stop    stops them
# Needs root (apt-get, and slurmd runs jobs as the submitting user).
set -euo pipefail
ROOT=${SLURM_LOCAL:-/tmp/segprep-slurm}
CONF=$ROOT/slurm.conf

start() {
    if [ -f "$CONF" ] && SLURM_CONF=$CONF sinfo -h -o %T 2>/dev/null | grep -q idle; then
        echo "SLURM_CONF=$CONF" # already running
        return 0
    fi
    if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
        # bounded: a machine that cannot reach its package mirror skips the check, it does not hang
        DEBIAN_FRONTEND=noninteractive timeout 240 apt-get install -y -q slurmctld slurmd munge >/dev/null
    fi
    mkdir -p "$ROOT/state" "$ROOT/spool" "$ROOT/log" /run/munge
    chown munge:munge /run/munge
    if [ ! -s /etc/munge/munge.key ]; then
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
        chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    fi
    if [ ! -S /run/munge/munge.socket.2 ]; then
        start_munge
        for _ in $(seq 20); do [ -S /run/munge/munge.socket.2 ] && break; sleep 0.25; done
    fi
    local host
    host=$(hostname -s)
    cat > "$CONF" <<CONF
ClusterName=segprep-local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$ROOT/state
SlurmdSpoolDir=$ROOT/spool
SlurmctldPidFile=$ROOT/slurmctld.pid
SlurmdPidFile=$ROOT/slurmd.pid
SlurmctldLogFile=$ROOT/log/slurmctld.log
SlurmdLogFile=$ROOT/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
# the node announces more than it has, so docs/scale.md's script (8 tasks of 8 CPUs and 8 GiB)
# runs unchanged, all at once, on a small machine
SlurmdParameters=config_overrides
NodeName=$host CPUs=64 RealMemory=65536 State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
    SLURM_CONF=$CONF slurmctld -f "$CONF"
    SLURM_CONF=$CONF slurmd -f "$CONF"
    for _ in $(seq 60); do
        if SLURM_CONF=$CONF sinfo -h -o %T 2>/dev/null | grep -q idle; then
            echo "SLURM_CONF=$CONF"
            return 0
        fi
        sleep 0.5
    done
    echo "slurm did not come up; see $ROOT/log" >&2
    return 1
}

start_munge() {
    # munged refuses root unless forced; run it as its own user where possible
    if command -v runuser >/dev/null; then
        runuser -u munge -- munged
    else
        munged --force
    fi
}

stop() {
    local name
    for name in slurmd slurmctld munged; do
        pkill -x "$name" 2>/dev/null || true
        for _ in $(seq 20); do pgrep -x "$name" >/dev/null || break; sleep 0.25; done
    done
    rm -f /run/munge/munge.socket.2
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
