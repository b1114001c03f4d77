#!/usr/bin/env bash
# bench_service.sh - the service figures of `make bench` (issue 13): a
# private sheafd and PostgreSQL cluster, driven over HTTP on 127.0.0.1 by
# scripts/bench_service.py, which prints one table:
#
#   - a one-row job, POST -> GET ?wait= returns "succeeded", one after the
#     other (BENCH_SERVICE_SEQ jobs, default 200): p50 / p99
#   - BENCH_SERVICE_BURST (default 500) one-row jobs submitted at once: the
#     time until all have ended, and jobs/s
#   - wrk -t2 -c50 -d10s --latency on GET /v1/jobs/{id} (Debian's wrk,
#     installed by scripts/deps.sh): req/s and p99
#   - one task's overhead (claim, start, finish, commit) on one-row
#     partitions, and a stage hand-off on tiny partitions
#   - Dask's own overhead for scale: LocalCluster with 2 worker processes,
#     read_csv + filter + compute() of a one-row file (skipped with a note
#     when /usr/bin/python3 cannot import dask: ../shared/bench/setup.sh)
#
# Bounded: loopback only, every call has a timeout, and sheafd and the
# cluster (when this script started it) are stopped at the end.
#
# Environment:
#   BUILD                  where sheafd is (default build/)
#   BENCH_VAR              working directory (default var/bench-service)
#   BENCH_SERVICE_SEQ, BENCH_SERVICE_BURST, BENCH_SERVICE_WRK_S (10),
#   BENCH_SERVICE_DASK_RUNS (20)
#   BENCH_SERVICE_ONLY     a subset of "seq burst wrk task handoff dask"
#   DATABASE_URL           use this database instead of a private cluster
#   SHEAF_WORKERS, ...     pass through to sheafd
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

VAR=$(realpath -m "${BENCH_VAR:-$ROOT/var/bench-service}")
BUILD_DIR=$(realpath -m "${BUILD:-build}")
PG_PORT=5441
PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3
[[ -x $BUILD_DIR/sheafd ]] || die "no $BUILD_DIR/sheafd: run 'make all'"
mkdir -p "$VAR"

pg_started=0
cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    if ((pg_started)); then
        SHEAF_PG_DIR=$VAR/pg SHEAF_PG_PORT=$PG_PORT scripts/pg.sh stop || true
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

if [[ -z "${DATABASE_URL:-}" ]]; then
    if ! SHEAF_PG_DIR=$VAR/pg SHEAF_PG_PORT=$PG_PORT scripts/pg.sh status \
            >/dev/null 2>&1; then
        pg_started=1
    fi
    DATABASE_URL=$(SHEAF_PG_DIR=$VAR/pg SHEAF_PG_PORT=$PG_PORT \
                   SHEAF_PG_DB=sheaf_bench_service scripts/pg.sh start)
    export DATABASE_URL
fi

started=$SECONDS
{
    echo "service: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)," \
        "load average at start $(cut -d' ' -f1-3 /proc/loadavg); Linux $(uname -r)"
    echo
    "$PY" scripts/bench_service.py --sheafd "$BUILD_DIR/sheafd" \
        --work "$VAR" --json "$VAR/service.json" \
        --seq "${BENCH_SERVICE_SEQ:-200}" --burst "${BENCH_SERVICE_BURST:-500}" \
        --wrk-duration "${BENCH_SERVICE_WRK_S:-10}" \
        --dask-runs "${BENCH_SERVICE_DASK_RUNS:-20}" \
        --only "${BENCH_SERVICE_ONLY:-seq burst wrk task handoff dask}"
    echo
    echo "command: scripts/bench_service.sh ($((SECONDS - started)) s;" \
        "SHEAF_WORKERS=${SHEAF_WORKERS:-$(nproc)})"
} | tee "$VAR/table.md"
