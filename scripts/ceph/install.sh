#!/usr/bin/env bash
# Install Ceph's monitor, OSD and RADOS Gateway from Debian when any is missing.
#
#   scripts/ceph/install.sh
#
# Needs root only when something is missing (then: apt-get update once and
# apt-get install --no-install-recommends); exits 1 with the command to run
# when not root.  Used by test-ceph.sh and by `make bench`.
set -euo pipefail

log() { printf '[ceph-install %s] %s\n' "$(date +%T)" "$*" >&2; }

missing=()
for bin in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph; do
    command -v "$bin" >/dev/null || missing+=("$bin")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    log "Ceph is not installed (missing: ${missing[*]}) and installing it needs root:"
    log "  apt-get install --no-install-recommends radosgw ceph-mon ceph-osd ceph-common"
    exit 1
fi
log "installing Ceph (missing: ${missing[*]})"
started=$SECONDS
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    radosgw ceph-mon ceph-osd ceph-common >/dev/null
log "installed $(ceph --version | cut -d' ' -f1-3) in $((SECONDS - started)) s"
