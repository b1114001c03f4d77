#!/usr/bin/env bash
# cluster_test.sh - the multi-host tests (tests/cluster, issue 14): three
# sheafd "hosts" in Linux network namespaces on a private bridge, sharing
# PostgreSQL (TCP, scram-sha-256) and an S3-compatible store (s3rver), one
# of them cut off mid-job, a stale one fenced, a rolling restart.
#
#   SHEAF_BIN=build scripts/cluster_test.sh [pytest args...]
#
# Needs root (ip netns); as another user it says so and exits 0 (the
# tests are skipped). Everything it starts lives in namespaces it makes and
# removes (tests/cluster/cluster.py); nothing listens outside them. Bounded:
# the whole run is killed after SHEAF_CLUSTER_TIMEOUT_S (default 600) s.
#
# Exits with pytest's status.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf 'cluster: %s\n' "$*" >&2; }

SHEAF_BIN=${SHEAF_BIN:-$ROOT/build}
[[ -x "$SHEAF_BIN/sheafd" ]] || { log "no executable sheafd in $SHEAF_BIN"; exit 1; }
SHEAF_BIN=$(cd "$SHEAF_BIN" && pwd)
export SHEAF_BIN

if ((EUID != 0)); then
    log "skipped: the cluster tests make network namespaces (ip netns)," \
        "which needs root"
    exit 0
fi
"$ROOT/scripts/npm_tools.sh" it

cd "$ROOT"
# -k: SIGKILL 30 s after the SIGTERM if pytest's own clean-up hangs.
rc=0
timeout -k 30 "${SHEAF_CLUSTER_TIMEOUT_S:-600}" \
    /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/cluster "$@" ||
    rc=$?
exit "$rc"
