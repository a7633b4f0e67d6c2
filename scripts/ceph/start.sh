#!/usr/bin/env bash
# Start a throwaway single-node Ceph cluster (1 mon, 1 memstore osd, radosgw)
# in DIR, bound to 127.0.0.1 only, without systemd.
#
#   scripts/ceph/start.sh DIR
#
# Writes DIR/ceph.conf, DIR/env (SSSHELF_TEST_S3_* variables to `source`),
# daemon PIDs in DIR/run/{mon,osd,rgw}.pid and logs in DIR/log/.
# Stop it with scripts/ceph/stop.sh DIR.  On failure it stops what it started.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dir=${1:?usage: start.sh DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

access_key=${CEPH_S3_ACCESS_KEY:-ssshelf-test-access}
secret_key=${CEPH_S3_SECRET_KEY:-ssshelf-test-secret}
# Memstore keeps every object in RAM; 1 GiB is plenty for the test suite.
memstore_bytes=${CEPH_MEMSTORE_BYTES:-1073741824}
python=${PYTHON:-python3}

log() { printf '[ceph %s] %s\n' "$(date +%T)" "$*" >&2; }

free_port() {
    "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

on_exit() {
    local rc=$?
    if [ "$rc" -ne 0 ]; then
        log "start failed (exit $rc); last log lines:"
        for f in "$dir"/log/*.log "$dir"/log/*.out; do
            [ -s "$f" ] || continue
            echo "--- $f" >&2
            tail -n 15 "$f" >&2
        done
        bash "$here/stop.sh" "$dir" || true
    fi
}
trap on_exit EXIT

# Wait until "$@" succeeds, at most $1 seconds (checking that no daemon died).
wait_for() {
    local what=$1 timeout=$2
    shift 2
    local deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        for name in mon osd rgw; do
            if [ -f "$dir/run/$name.pid" ] && ! kill -0 "$(cat "$dir/run/$name.pid")" 2>/dev/null; then
                log "$name died while waiting for $what"
                return 1
            fi
        done
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "timed out after ${timeout}s waiting for $what"
            return 1
        fi
        sleep 0.2
    done
}

# Run a daemon in the foreground of a background job; remember its PID.
spawn() {
    local name=$1
    shift
    "$@" -f -c "$conf" >"$dir/log/$name.out" 2>&1 &
    echo $! >"$dir/run/$name.pid"
}

mkdir -p "$dir"/{run,log,crash,mon,osd,rgw}
conf=$dir/ceph.conf
mon_port=$(free_port)
rgw_port=$(free_port)
fsid=$("$python" -c 'import uuid; print(uuid.uuid4())')
sed -e "s|@DIR@|$dir|g" -e "s|@FSID@|$fsid|g" -e "s|@MON_PORT@|$mon_port|g" \
    -e "s|@RGW_PORT@|$rgw_port|g" -e "s|@MEMSTORE_BYTES@|$memstore_bytes|g" \
    "$here/ceph.conf.in" >"$conf"
ceph=(ceph -c "$conf" --connect-timeout 10)

log "mon on 127.0.0.1:$mon_port"
monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$dir/monmap" >/dev/null
ceph-mon -c "$conf" -i a --mkfs --monmap "$dir/monmap" >"$dir/log/mon-mkfs.out" 2>&1
spawn mon ceph-mon -i a
wait_for "the mon" 30 "${ceph[@]}" mon stat

log "osd (memstore)"
osd_uuid=$("$python" -c 'import uuid; print(uuid.uuid4())')
osd_id=$("${ceph[@]}" osd new "$osd_uuid")
mkdir -p "$dir/osd/osd.$osd_id"
ceph-osd -c "$conf" -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" >"$dir/log/osd-mkfs.out" 2>&1
spawn osd ceph-osd -i "$osd_id"
osd_up() { "${ceph[@]}" osd dump | grep -q "^osd\.$osd_id up"; }
wait_for "osd.$osd_id up" 60 osd_up

log "radosgw on 127.0.0.1:$rgw_port"
spawn rgw radosgw -n client.rgw.a
http_up() { "$python" -c "import urllib.request as u, urllib.error as e
try: u.urlopen('http://127.0.0.1:$rgw_port/', timeout=2)
except e.HTTPError: pass"; }
wait_for "radosgw HTTP" 90 http_up

radosgw-admin -c "$conf" user create --uid=ssshelf-test --display-name="ssshelf test" \
    --access-key="$access_key" --secret-key="$secret_key" >"$dir/log/user-create.out"

cat >"$dir/env" <<ENV
export SSSHELF_TEST_S3_ENDPOINT=http://127.0.0.1:$rgw_port
export SSSHELF_TEST_S3_ACCESS_KEY=$access_key
export SSSHELF_TEST_S3_SECRET_KEY=$secret_key
export SSSHELF_TEST_S3_REGION=us-east-1
export CEPH_CONF=$conf
ENV
log "ready: http://127.0.0.1:$rgw_port (source $dir/env)"
