#!/usr/bin/env bash
# Stop what scripts/ceph/start.sh DIR started, by PID: first a test run that
# test-ceph.sh recorded in DIR/run/pytest.pid (its whole process group), then
# rgw, osd, mon in that order.  Waits for each to exit (SIGKILL after a grace
# period).  Safe to run twice or on a half-started cluster.
set -euo pipefail

dir=${1:?usage: stop.sh DIR}
grace=${CEPH_STOP_GRACE:-15}

# Alive = exists and is not a zombie waiting for its parent to reap it.
alive() {
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}

# Only signal a PID whose command line still mentions $2 (PIDs get recycled).
ours() {
    alive "$1" && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q -- "$2"
}

# stop NAME PID TARGET: TERM, wait, KILL; TARGET is PID or -PGID.
stop() {
    local name=$1 pid=$2 target=$3
    kill -TERM -- "$target" 2>/dev/null || true
    for _ in $(seq $((grace * 10))); do
        alive "$pid" || break
        sleep 0.1
    done
    if alive "$pid"; then
        echo "[ceph] $name ($pid) ignored SIGTERM for ${grace}s; killing" >&2
    fi
    # A group may have members that outlive its leader: KILL them all.
    if alive "$pid" || [ "$target" != "$pid" ]; then
        kill -KILL -- "$target" 2>/dev/null || true
    fi
    while alive "$pid"; do sleep 0.1; done
}

pidfile=$dir/run/pytest.pid
if [ -f "$pidfile" ]; then
    pid=$(cat "$pidfile")
    if ours "$pid" pytest; then
        stop pytest "$pid" "-$pid"
    fi
    rm -f "$pidfile"
fi

for name in rgw osd mon; do
    pidfile=$dir/run/$name.pid
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    if ours "$pid" "$dir/ceph.conf"; then
        stop "$name" "$pid" "$pid"
    fi
    rm -f "$pidfile"
done
