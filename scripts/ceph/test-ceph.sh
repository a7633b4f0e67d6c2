#!/usr/bin/env bash
# `make test-ceph`: the storage contract, seed-example, manager and consistency
# tests against a throwaway single-node Ceph RADOS Gateway on 127.0.0.1.
#
#   bash scripts/ceph/test-ceph.sh [extra pytest args]
#
# Installs Ceph from Debian when it is missing (root only), starts the cluster
# in a temp dir (start.sh), runs pytest, and always stops the daemons by PID
# and removes the temp dir, whatever happens.  Exit code: pytest's.
# CEPH_KEEP_LOGS=DIR copies the daemons' logs to DIR before the temp dir goes.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
export PYTHON=${PYTHON:-$root/.venv/bin/python}

log() { printf '[test-ceph %s] %s\n' "$(date +%T)" "$*" >&2; }
now() { date +%s.%N; }
took() { "$PYTHON" -c "import sys, time; print(f'{time.time() - float(sys.argv[1]):.1f}s')" "$1"; }

# Peak and current resident memory of each daemon, from /proc.
report_memory() {
    local name pid total=0 hwm rss
    for name in mon osd rgw; do
        pid=$(cat "$work/run/$name.pid" 2>/dev/null) || continue
        hwm=$(awk '/^VmHWM/ {print int($2 / 1024)}' "/proc/$pid/status" 2>/dev/null) || continue
        [ -n "$hwm" ] || continue # exited (a zombie has no memory lines)
        rss=$(awk '/^VmRSS/ {print int($2 / 1024)}' "/proc/$pid/status")
        log "memory: $name ${rss} MB now, ${hwm} MB peak"
        total=$((total + hwm))
    done
    log "memory: ${total} MB peak for the three daemons together"
}

work=
watchdog=
# shellcheck disable=SC2317  # (reached through the trap)
cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    if [ -n "$watchdog" ]; then kill "$watchdog" 2>/dev/null || true; fi
    if [ -n "$work" ] && [ -d "$work" ]; then
        bash "$here/stop.sh" "$work" || true
        if [ -n "${CEPH_KEEP_LOGS:-}" ]; then
            mkdir -p "$CEPH_KEEP_LOGS"
            cp -r "$work/log/." "$CEPH_KEEP_LOGS/" || true
        fi
        rm -rf "$work"
        log "cluster stopped, $work removed"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# Were this script SIGKILLed, no trap would run: a watchdog stops pytest and
# the daemons and removes the temp dir once this shell is gone.
start_watchdog() {
    local parent=$$
    (
        trap 'kill "$nap" 2>/dev/null; exit 0' TERM
        trap '' INT HUP
        while kill -0 "$parent" 2>/dev/null; do
            sleep 1 &
            nap=$!
            wait "$nap"
        done
        bash "$here/stop.sh" "$work" >/dev/null 2>&1
        rm -rf "$work"
    ) &
    watchdog=$!
}

t_install=$(now)
bash "$here/install.sh"
t_start=$(now)
work=$(mktemp -d "${TMPDIR:-/tmp}/ssshelf-ceph.XXXXXX")
start_watchdog
bash "$here/start.sh" "$work"
# shellcheck source=/dev/null
source "$work/env"
log "cluster up in $(took "$t_start") at $SSSHELF_TEST_S3_ENDPOINT"

tests=()
for f in tests/test_storage_contract.py tests/test_seed_example.py \
    tests/test_manager*.py tests/test_consistency*.py tests/test_races.py \
    tests/test_repair.py tests/test_surface.py tests/test_blocking.py tests/test_event_loops.py \
    tests/test_seed_collections.py tests/test_cli_urls.py \
    tests/test_s3*.py; do
    [ -e "$f" ] && tests+=("$f")
done
log "running: ${tests[*]} $*"
t_run=$(now)
# pytest runs in a session of its own (its worker processes too), so that
# stop.sh can end the whole group; `wait`, unlike a foreground command, lets
# the INT/TERM traps run at once.
SSSHELF_TEST_BACKENDS=s3 SSSHELF_TEST_S3_REGION=us-east-1 \
    setsid "$root/.venv/bin/pytest" -q -rfEs -p no:cacheprovider -m "not moto_only" \
    "${tests[@]}" "$@" &
echo $! >"$work/run/pytest.pid"
rc=0
wait $! || rc=$?
rm -f "$work/run/pytest.pid"
log "pytest exit $rc after $(took "$t_run") (whole script $(took "$t_install"))"
report_memory
exit "$rc"
