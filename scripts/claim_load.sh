#!/usr/bin/env bash
# claim_load.sh - the claim path under load (docs/scaling.md): simulated
# workers claim and finish tiny tasks against one PostgreSQL through the
# functions sheafd's workers call (build/claim_load: db_task_claim with
# CLAIM_SQL of service/db_tasks.c, then db_task_finish).
#
#   scripts/claim_load.sh [CLAIMERS...]      default: 10 100 1000
#
# Starts a private PostgreSQL cluster (scripts/pg.sh: unix socket only,
# fsync and synchronous_commit on) under CLAIM_PG_DIR (default
# var/claim-pg) on socket port CLAIM_PG_PORT (default 55447), raises its
# max_connections to fit the largest level, and for each level queues
# CLAIM_TASKS tiny tasks (default 100000) in CLAIM_JOBS jobs (default 10)
# and lets that many claimers, one connection each, drain them. With
# CLAIM_PGBOUNCER_POOL=N (and Debian's pgbouncer) each level runs a second
# time through a transaction-pooling pgbouncer on 127.0.0.1 holding N
# server sessions. Prints one line per run; stops the cluster at the end.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

LEVELS=("$@")
((${#LEVELS[@]})) || LEVELS=(10 100 1000)
TASKS=${CLAIM_TASKS:-100000}
JOBS=${CLAIM_JOBS:-10}
POOL=${CLAIM_PGBOUNCER_POOL:-}
export SHEAF_PG_DIR=${CLAIM_PG_DIR:-$ROOT/var/claim-pg}
export SHEAF_PG_PORT=${CLAIM_PG_PORT:-55447}
export SHEAF_PG_DB=sheaf_claim

log() { printf 'claim_load: %s\n' "$*" >&2; }

make --no-print-directory -j2 build/claim_load >&2

max=0
for n in "${LEVELS[@]}"; do ((n > max)) && max=$n; done

pgb_pid=
pgb_dir=
# shellcheck disable=SC2317 # runs from the EXIT trap
cleanup() {
    if [[ -n "$pgb_pid" ]]; then
        kill -INT "$pgb_pid" 2>/dev/null || true
        wait "$pgb_pid" 2>/dev/null || true
    fi
    [[ -n "$pgb_dir" ]] && rm -rf "$pgb_dir"
    scripts/pg.sh stop >&2 || true
}
trap cleanup EXIT

scripts/pg.sh start >/dev/null
want=$((max + 20))
have=$(scripts/pg.sh psql -XAtqc 'SHOW max_connections')
if ((have < want)); then
    log "max_connections $have -> $want (ALTER SYSTEM), restarting"
    scripts/pg.sh psql -XAtqc "ALTER SYSTEM SET max_connections = $want" >&2
    scripts/pg.sh stop >&2
    scripts/pg.sh start >/dev/null
fi
URL=$(scripts/pg.sh url)
log "database: $URL; $TASKS tasks in $JOBS jobs a run"

if [[ -n "$POOL" ]]; then
    command -v pgbouncer >/dev/null || { log "no pgbouncer"; exit 1; }
    pgb_dir=$(mktemp -d /var/tmp/sheaf-claim-pgb-XXXXXX)
    pgb_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    host=$(sed -E 's/.*host=([^ ]*).*/\1/' <<<"$URL")
    user=$(sed -E 's/.*user=([^ ]*).*/\1/' <<<"$URL")
    printf '"%s" ""\n' "$user" >"$pgb_dir/users.txt"
    cat >"$pgb_dir/pgbouncer.ini" <<EOF
[databases]
* = host=$host port=$SHEAF_PG_PORT
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $pgb_port
unix_socket_dir =
auth_type = trust
auth_file = $pgb_dir/users.txt
pool_mode = transaction
default_pool_size = $POOL
max_client_conn = $((max + 100))
ignore_startup_parameters = options
logfile = $pgb_dir/pgbouncer.log
EOF
    as=()
    if ((EUID == 0)); then
        chown -R postgres: "$pgb_dir"
        as=(-u postgres)
    fi
    ulimit -n $((max * 2 + 1024)) 2>/dev/null || true
    pgbouncer "${as[@]}" "$pgb_dir/pgbouncer.ini" >/dev/null 2>&1 &
    pgb_pid=$!
    for _ in $(seq 100); do
        psql "host=127.0.0.1 port=$pgb_port user=$user dbname=sheaf_claim" \
            -XAtqc 'SELECT 1' >/dev/null 2>&1 && break
        sleep 0.1
    done
    PGB_URL="host=127.0.0.1 port=$pgb_port user=$user dbname=sheaf_claim"
fi

for n in "${LEVELS[@]}"; do
    echo "direct:   $(build/claim_load "$URL" migrations "$TASKS" "$n" "$JOBS")"
    if [[ -n "$POOL" ]]; then
        echo "pgbouncer(pool $POOL): $(build/claim_load "$PGB_URL" migrations \
            "$TASKS" "$n" "$JOBS")"
    fi
done
