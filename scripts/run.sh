#!/usr/bin/env bash
# run.sh - `make run`: run sheafd in the foreground, with a private
# PostgreSQL cluster when no DATABASE_URL is given.
#
# Ctrl-C (or SIGTERM/SIGHUP to this script) sends SIGTERM to sheafd, waits
# for it to finish (SIGKILL after SHEAF_STOP_TIMEOUT_S, default 30 s), and
# then stops the private cluster if this script started it. Arguments are
# passed on to sheafd.
#
# Environment: DATABASE_URL, SHEAF_LISTEN, SHEAF_DATA_ROOT and the rest of
# sheafd's variables (the "Configuration" section of README.md) pass through
# unchanged; SHEAF_PG_PORT, SHEAF_PG_DIR and SHEAF_PG_DB go to scripts/pg.sh
# (README.md, "make run settings").
#
# Run as root, sheafd gives up root after binding its listener and runs as
# SHEAF_USER (default here: sheaf, created with useradd --system when
# missing); SHEAF_USER= (empty) or SHEAF_USER=root keeps it root.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

log() { printf 'run: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

SHEAFD=$ROOT/build/sheafd
STOP_TIMEOUT_S=${SHEAF_STOP_TIMEOUT_S:-30}
[[ -x "$SHEAFD" ]] || die "$SHEAFD is missing: build it with 'make all'"

sheafd_pid=
pg_started=0

# shellcheck disable=SC2317 # stop_sheafd and cleanup run from traps
# Stop sheafd: SIGTERM, wait up to STOP_TIMEOUT_S, then SIGKILL.
stop_sheafd() {
    local i
    [[ -n "$sheafd_pid" ]] || return 0
    if kill -TERM "$sheafd_pid" 2>/dev/null; then
        log "stopping sheafd (pid $sheafd_pid)"
        for ((i = 0; i < STOP_TIMEOUT_S * 10; i++)); do
            kill -0 "$sheafd_pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$sheafd_pid" 2>/dev/null; then
            log "sheafd did not stop within ${STOP_TIMEOUT_S}s: killing it"
            kill -KILL "$sheafd_pid" 2>/dev/null || true
        fi
    fi
    wait "$sheafd_pid" 2>/dev/null || true
    sheafd_pid=
}

# shellcheck disable=SC2317
# On any exit: sheafd first (it holds database connections), then the
# cluster, but only if this script started it.
cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    stop_sheafd
    if ((pg_started)); then
        scripts/pg.sh stop || true
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# --- the unprivileged user ---------------------------------------------------

if ((EUID == 0)); then
    export SHEAF_USER=${SHEAF_USER-sheaf}
else
    unset SHEAF_USER  # not root: nothing to give up
fi
if [[ -n "${SHEAF_USER:-}" && "$SHEAF_USER" != root ]]; then
    if ! id -u "$SHEAF_USER" >/dev/null 2>&1; then
        log "creating the system user '$SHEAF_USER' for sheafd (SHEAF_USER)"
        useradd --system --user-group --no-create-home \
            --home-dir /nonexistent --shell /usr/sbin/nologin "$SHEAF_USER" ||
            die "cannot create the user '$SHEAF_USER'"
    fi
    # The private cluster's socket lets that user's group in (pg.sh).
    SHEAF_PG_SOCKET_GROUP=${SHEAF_PG_SOCKET_GROUP:-$(id -gn "$SHEAF_USER")}
    export SHEAF_PG_SOCKET_GROUP
fi

# --- database ---------------------------------------------------------------

if [[ -z "${DATABASE_URL:-}" ]]; then
    # A cluster that was already running (`make pg-start`) is left running.
    if ! scripts/pg.sh status >/dev/null 2>&1; then
        pg_started=1
    fi
    DATABASE_URL=$(scripts/pg.sh start)
    export DATABASE_URL
fi

# --- data root --------------------------------------------------------------

data_root=${SHEAF_DATA_ROOT:-./data}
mkdir -p "$data_root"
data_root=$(cd "$data_root" && pwd)
if [[ -n "${SHEAF_USER:-}" && "$SHEAF_USER" != root ]] &&
   ! runuser -u "$SHEAF_USER" -- test -r "$data_root" -a -x "$data_root"; then
    die "the user '$SHEAF_USER' (SHEAF_USER) cannot read the data root" \
        "$data_root: give it read and search permission on it and its" \
        "parents, or set SHEAF_USER= to run sheafd as root"
fi

# --- banner -----------------------------------------------------------------

listen=${SHEAF_LISTEN:-127.0.0.1:8080}
host=${listen%:*}
port=${listen##*:}
# A wildcard address is reached through loopback.
case $host in
    "" | 0.0.0.0 | "[::]" | "::") host=127.0.0.1 ;;
esac
base="http://$host:$port"

cat <<EOF
starting sheafd on $listen (it logs "listening on ..." once it is ready)
  data root: $data_root  (job input paths are relative to it)
  database:  $DATABASE_URL
  try:       curl -s $base/healthz
             curl -s $base/v1/jobs
             curl -s -X POST $base/v1/jobs -H 'Content-Type: application/json' \\
               -d '{"input": {"path": "my.csv", "format": "csv"},
                    "steps": [{"op": "aggregate", "aggs": [{"as": "n", "fn": "count"}]}],
                    "output": {"format": "csv"}}'
  Ctrl-C stops sheafd$( ((pg_started)) && echo " and the private PostgreSQL cluster").
EOF

# --- sheafd -----------------------------------------------------------------

# In the background so that this script keeps control of the signals; `wait`
# returns early when one arrives, and its trap runs cleanup.
"$SHEAFD" "$@" &
sheafd_pid=$!
rc=0
wait "$sheafd_pid" || rc=$?
sheafd_pid=
log "sheafd exited with status $rc"
exit "$rc"
