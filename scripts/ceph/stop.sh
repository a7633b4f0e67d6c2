#!/usr/bin/env bash
# Stop the daemons that scripts/ceph/start.sh DIR started, by PID, in the
# order rgw, osd, mon; wait for each to exit (SIGKILL after a grace period).
# Safe to run twice or on a half-started cluster.
set -euo pipefail

dir=${1:?usage: stop.sh DIR}
grace=${CEPH_STOP_GRACE:-15}

# Alive = exists and is not a zombie waiting for its parent to reap it.
alive() {
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}

for name in rgw osd mon; do
    pidfile=$dir/run/$name.pid
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    # Guard against a recycled PID: only signal the daemon we started.
    if alive "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$dir/ceph.conf"; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq $((grace * 10))); do
            alive "$pid" || break
            sleep 0.1
        done
        if alive "$pid"; then
            echo "[ceph] $name ($pid) ignored SIGTERM for ${grace}s; killing" >&2
            kill -KILL "$pid" 2>/dev/null || true
            while alive "$pid"; do sleep 0.1; done
        fi
    fi
    rm -f "$pidfile"
done
