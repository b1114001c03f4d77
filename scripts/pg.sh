#!/usr/bin/env bash
# pg.sh - a private PostgreSQL cluster for sheaf's development and tests.
#
#   scripts/pg.sh start    create the cluster if needed, start it, create the
#                          database; print the connection string on stdout
#   scripts/pg.sh stop     stop it (fast shutdown) if it is running
#   scripts/pg.sh status   say whether it runs; exit 0 running, 3 stopped,
#                          4 no cluster (as pg_ctl status)
#   scripts/pg.sh url      print the connection string (starts nothing)
#   scripts/pg.sh psql ... run psql on the database (extra args to psql)
#
# Only the connection string goes to stdout, so
#   export DATABASE_URL=$(scripts/pg.sh start)
# works; everything else goes to stderr. The string is a libpq keyword/value
# string:  host=<abs dir>/run port=<port> user=sheaf dbname=<db>
#
# The cluster listens on no TCP port at all (listen_addresses = ''), only on
# a unix socket in $DIR/run, so several clusters (say, the development one and
# the integration tests' one) coexist and nothing else on the host sees them.
# Authentication is 'trust' for the role 'sheaf'; the socket is mode 0700, so
# only the cluster's owner (and root) can connect; with SHEAF_PG_SOCKET_GROUP
# it is mode 0770 and that group's, so that a sheafd running as an
# unprivileged SHEAF_USER of that group can connect too.
#
# Environment:
#   SHEAF_PG_DIR   cluster directory (default: <repo>/var/pg); holds data/,
#                  run/ (the socket) and log/ (postgresql.log)
#   SHEAF_PG_PORT  port number, used only to name the socket (default 5433);
#                  a cluster already running on another port is an error
#                  (start, psql), so stop it before changing the port
#   SHEAF_PG_DB    database to create (default sheaf)
#   SHEAF_PG_BIN   PostgreSQL bin directory (default: the newest
#                  /usr/lib/postgresql/*/bin, or the one matching an existing
#                  cluster's version)
#   SHEAF_PG_SOCKET_GROUP  a group whose members may connect too (the
#                  socket becomes 0770 and that group's); as root, the
#                  'postgres' user is added to it (PostgreSQL can only give
#                  its socket to a group it is in). Takes effect when the
#                  cluster starts: restart a running one (make pg-stop).
#
# PostgreSQL refuses to run as root. When run as root, the script runs initdb,
# pg_ctl and psql as the 'postgres' user (created by Debian's postgresql
# package) and gives it data/, run/ and log/. That user must be able to
# traverse every parent of $DIR; when it cannot (a clone under /root, mode
# 0700) or when the socket path would be too long for a unix socket, the
# cluster is placed in /var/tmp/sheaf-pg-<uid>-<hash of $DIR> instead and
# $DIR becomes a symbolic link to it, so `ls -l var/pg` shows where it went.
set -euo pipefail
umask 022

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf 'pg: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The connection string must mean the same whatever the caller's environment
# holds: drop libpq variables that would fill in or override parts of it.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGSERVICE PGOPTIONS \
      PGSSLMODE PGTARGETSESSIONATTRS

# Relative paths are taken from the current directory, like any path; the
# default is anchored at the repo root. -s: keep a symlink at $DIR as it is.
DIR=$(realpath -m -s "${SHEAF_PG_DIR:-$ROOT/var/pg}")
PORT=${SHEAF_PG_PORT:-5433}
DB=${SHEAF_PG_DB:-sheaf}
ROLE=sheaf
SOCKET_GROUP=${SHEAF_PG_SOCKET_GROUP:-}

if ! [[ "$PORT" =~ ^[0-9]+$ ]] || ((PORT < 1 || PORT > 65535)); then
    die "SHEAF_PG_PORT must be a port number, not '$PORT'"
fi
[[ "$DB" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] ||
    die "SHEAF_PG_DB must be a plain identifier, not '$DB'"
if [[ -n "$SOCKET_GROUP" ]]; then
    if ! [[ "$SOCKET_GROUP" =~ ^[A-Za-z_][A-Za-z0-9_.-]*$ ]] ||
       ! getent group "$SOCKET_GROUP" >/dev/null; then
        die "SHEAF_PG_SOCKET_GROUP: no group '$SOCKET_GROUP'"
    fi
fi

# --- who runs PostgreSQL ---------------------------------------------------

if ((EUID == 0)); then
    PG_USER=postgres
    id -u "$PG_USER" >/dev/null 2>&1 ||
        die "running as root, but there is no 'postgres' user to run" \
            "PostgreSQL as (install Debian's postgresql package:" \
            "scripts/deps.sh)"
else
    PG_USER=$(id -un)
fi

# Run a command as the user that owns the cluster. From '/', so that the
# postgres user is not left in a directory it cannot read.
as_pg() {
    if ((EUID == 0)); then
        (cd / && runuser -u "$PG_USER" -- "$@")
    else
        "$@"
    fi
}

# --- where the cluster lives ----------------------------------------------

# Can the cluster's user reach (search) directory $1? access(2) checks every
# component of the path, so one test covers all the parents.
reachable() {
    ((EUID != 0)) || as_pg test -x "$1" 2>/dev/null
}

# The nearest existing ancestor of $1 (itself if it exists).
existing_ancestor() {
    local d=$1
    while [[ ! -e "$d" ]]; do d=$(dirname "$d"); done
    printf '%s\n' "$d"
}

# A unix socket path is at most 107 bytes (sun_path is 108 with the NUL).
socket_fits() {
    local sock="$1/run/.s.PGSQL.$PORT"
    ((${#sock} <= 107))
}

fallback_dir() {
    local base=/var/tmp hash
    [[ -d "$base" && -w "$base" ]] || base=/tmp
    hash=$(printf '%s' "$DIR" | sha256sum | cut -c1-12)
    printf '%s/sheaf-pg-%s-%s\n' "$base" "$EUID" "$hash"
}

# Decide the directory the cluster really lives in (CL), without creating
# anything: $DIR itself, or the target of the symlink a fallback left there,
# or (for a new cluster that PostgreSQL could not use at $DIR) the fallback.
# FALLBACK=1 when a new symlink has to be made.
resolve_dir() {
    FALLBACK=0
    FALLBACK_WHY=
    CL=$DIR
    if [[ -L "$DIR" ]]; then
        CL=$(readlink -m "$DIR")
    elif [[ ! -e "$DIR" ]]; then
        if ! reachable "$(existing_ancestor "$DIR")"; then
            FALLBACK_WHY="the '$PG_USER' user cannot reach it"
        elif ! socket_fits "$DIR"; then
            FALLBACK_WHY="its socket path would be too long"
        fi
        if [[ -n "$FALLBACK_WHY" ]]; then
            CL=$(fallback_dir)
            FALLBACK=1
        fi
    fi
    DATA=$CL/data
    RUN=$CL/run
    LOGDIR=$CL/log
}

# --- PostgreSQL binaries ----------------------------------------------------

find_bin() {
    local version
    if [[ -n "${SHEAF_PG_BIN:-}" ]]; then
        BIN=$SHEAF_PG_BIN
    elif [[ -f "$DATA/PG_VERSION" ]] &&
         version=$(<"$DATA/PG_VERSION") &&
         [[ -x "/usr/lib/postgresql/$version/bin/pg_ctl" ]]; then
        # An existing cluster needs the binaries of its own major version.
        BIN=/usr/lib/postgresql/$version/bin
    else
        # shellcheck disable=SC2012 # plain version directories
        BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
        if [[ -z "$BIN" ]] && command -v pg_ctl >/dev/null 2>&1; then
            BIN=$(dirname "$(command -v pg_ctl)")
        fi
    fi
    [[ -n "$BIN" && -x "$BIN/pg_ctl" && -x "$BIN/initdb" ]] ||
        die "PostgreSQL server binaries not found (looked in" \
            "/usr/lib/postgresql/*/bin); run scripts/deps.sh"
    if [[ -f "$DATA/PG_VERSION" ]]; then
        version=$(<"$DATA/PG_VERSION")
        local re=" $version(\\.|\$)"
        [[ "$("$BIN/pg_ctl" --version)" =~ $re ]] ||
            die "the cluster in $DATA is PostgreSQL $version but $BIN is" \
                "$("$BIN/pg_ctl" --version); remove $CL to start afresh"
    fi
}

# --- connection string ------------------------------------------------------

# Quote a libpq keyword value when it needs it (spaces, quotes, backslashes).
conninfo_value() {
    local v=$1
    if [[ "$v" =~ [[:space:]\'\\] || -z "$v" ]]; then
        v=${v//\\/\\\\}
        v=${v//\'/\\\'}
        v="'$v'"
    fi
    printf '%s' "$v"
}

# The connection string for database $1 (default: $DB).
conninfo() {
    printf 'host=%s port=%s user=%s dbname=%s\n' \
        "$(conninfo_value "$RUN")" "$PORT" "$ROLE" "${1:-$DB}"
}

# --- cluster operations -----------------------------------------------------

# pg_ctl status: 0 running, 3 not running, 4 no cluster.
pg_status() {
    local rc=0
    [[ -f "$DATA/PG_VERSION" ]] || return 4
    as_pg "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1 || rc=$?
    return "$rc"
}

# The port a running cluster was started with (line 4 of postmaster.pid), or
# nothing when it cannot be read (not running, or the file is being written).
running_port() {
    local port
    port=$(sed -n 4p "$DATA/postmaster.pid" 2>/dev/null) || return 0
    [[ "$port" =~ ^[0-9]+$ ]] && printf '%s\n' "$port"
    return 0
}

# Fail when the cluster runs on another port than SHEAF_PG_PORT: its socket
# is named after that port, so connecting through $PORT would fail with a
# bare "No such file or directory", and sheaf.conf must not be rewritten
# under a running server.
check_running_port() {
    local port
    port=$(running_port)
    [[ -z "$port" || "$port" == "$PORT" ]] ||
        die "the cluster in $CL is already running on port $port, not" \
            "SHEAF_PG_PORT=$PORT. Set SHEAF_PG_PORT=$port to use it, or" \
            "stop it first ('scripts/pg.sh stop' or 'make pg-stop') to" \
            "restart it on port $PORT"
}

# Serialise start and stop of one cluster: two `make` runs at once must not
# both initdb. The lock fd (9) is closed for anything long-lived we start.
lock_cluster() {
    exec 9>"$CL/.pg.lock"
    flock -w 120 9 || die "another pg.sh holds $CL/.pg.lock"
}

# Create the directories, owned by the cluster's user.
make_dirs() {
    if ((FALLBACK)); then
        mkdir -p "$(dirname "$DIR")"
        mkdir -p "$CL"
        ln -sfn "$CL" "$DIR"
        log "$DIR is not usable by PostgreSQL ($FALLBACK_WHY):" \
            "the cluster lives in $CL, and $DIR links to it"
    fi
    mkdir -p "$CL" "$DATA" "$RUN" "$LOGDIR"
    if ((EUID == 0)); then
        chown "$PG_USER:" "$DATA" "$RUN" "$LOGDIR"
    fi
    chmod 0700 "$DATA"
    chmod 0755 "$RUN" "$LOGDIR"
    reachable "$RUN" ||
        die "the '$PG_USER' user cannot reach $CL: a parent directory is" \
            "not searchable by it. Either make the parents searchable" \
            "(chmod o+x on each), or set SHEAF_PG_DIR to a directory it can" \
            "reach (e.g. /var/tmp/sheaf-pg), or remove $DIR so that pg.sh" \
            "places the cluster under /var/tmp by itself"
}

init_cluster() {
    if [[ -n "$(ls -A "$DATA")" ]]; then
        die "$DATA is not empty but holds no cluster (an interrupted" \
            "initdb?); remove $CL and try again"
    fi
    log "creating a cluster in $DATA"
    if ! as_pg "$BIN/initdb" -D "$DATA" -U "$ROLE" --auth=trust -E UTF8 \
            --locale=C >"$LOGDIR/initdb.log" 2>&1; then
        cat "$LOGDIR/initdb.log" >&2
        die "initdb failed (log: $LOGDIR/initdb.log)"
    fi
}

# The socket's owner group and mode (see SHEAF_PG_SOCKET_GROUP).
socket_settings() {
    if [[ -n "$SOCKET_GROUP" ]]; then
        printf "unix_socket_group = '%s'\nunix_socket_permissions = 0770\n" \
            "$SOCKET_GROUP"
    else
        printf 'unix_socket_permissions = 0700\n'
    fi
}

# PostgreSQL can give its socket only to a group its user is in: as root,
# add the 'postgres' user to SHEAF_PG_SOCKET_GROUP (once).
join_socket_group() {
    [[ -n "$SOCKET_GROUP" ]] && ((EUID == 0)) || return 0
    if ! id -nG "$PG_USER" | tr ' ' '\n' | grep -qx "$SOCKET_GROUP"; then
        log "adding the '$PG_USER' user to the group '$SOCKET_GROUP'" \
            "(SHEAF_PG_SOCKET_GROUP)"
        usermod -a -G "$SOCKET_GROUP" "$PG_USER" ||
            die "cannot add '$PG_USER' to the group '$SOCKET_GROUP'"
    fi
}

# Settings for a small machine, rewritten at every start (so SHEAF_PG_PORT
# and the socket directory always match) and included at the end of
# postgresql.conf. ALTER SYSTEM still overrides them.
write_config() {
    local conf=$DATA/sheaf.conf
    local run_quoted=${RUN//\'/\'\'}  # a ' in a setting is written ''
    cat >"$conf" <<EOF
# Written by scripts/pg.sh at every start: do not edit, use ALTER SYSTEM.
listen_addresses = ''
port = $PORT
unix_socket_directories = '$run_quoted'
$(socket_settings)
max_connections = 200
shared_buffers = 128MB
work_mem = 8MB
maintenance_work_mem = 64MB
fsync = on
synchronous_commit = on
full_page_writes = on
max_wal_size = 1GB
timezone = 'UTC'
log_timezone = 'UTC'
log_line_prefix = '%m [%p] %q%u@%d '
log_min_messages = warning
log_min_error_statement = error
EOF
    if ((EUID == 0)); then
        chown "$PG_USER:" "$conf"
    fi
    if ! grep -qx "include_if_exists = 'sheaf.conf'" \
            "$DATA/postgresql.conf"; then
        printf '\n# sheaf: settings written by scripts/pg.sh\n%s\n' \
            "include_if_exists = 'sheaf.conf'" >>"$DATA/postgresql.conf"
    fi
}

start_server() {
    log "starting PostgreSQL on $RUN/.s.PGSQL.$PORT (log: $LOGDIR/postgresql.log)"
    # -w waits until it accepts connections. Its messages go to stderr, and
    # it must not inherit the lock (fd 9) or our stdout: the postmaster lives
    # on after we exit.
    if ! as_pg "$BIN/pg_ctl" -D "$DATA" -l "$LOGDIR/postgresql.log" \
            -w -t 60 -s start >&2 9>&-; then
        tail -n 30 "$LOGDIR/postgresql.log" >&2 || true
        die "PostgreSQL did not start (log: $LOGDIR/postgresql.log)"
    fi
}

create_database() {
    local exists
    exists=$(as_pg "$BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 \
        -d "$(conninfo postgres)" \
        -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")
    if [[ "$exists" != 1 ]]; then
        log "creating database $DB"
        as_pg "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -d "$(conninfo postgres)" \
            -c "CREATE DATABASE \"$DB\"" >&2
    fi
}

cmd_start() {
    resolve_dir
    make_dirs
    lock_cluster
    find_bin
    [[ -f "$DATA/PG_VERSION" ]] || init_cluster
    # Re-resolve the binaries: a fresh cluster now has a PG_VERSION.
    find_bin
    join_socket_group
    if pg_status; then
        check_running_port
        write_config
        log "already running ($CL)"
        if [[ -n "$SOCKET_GROUP" ]] &&
           [[ "$(stat -c %G "$RUN/.s.PGSQL.$PORT" 2>/dev/null)" != \
              "$SOCKET_GROUP" ]]; then
            log "warning: its socket is not the group '$SOCKET_GROUP'" \
                "(SHEAF_PG_SOCKET_GROUP) yet: restart it (make pg-stop)"
        fi
    else
        write_config
        start_server
    fi
    create_database
    conninfo
}

cmd_stop() {
    resolve_dir
    [[ -d "$CL" ]] || { log "no cluster in $DIR"; return 0; }
    lock_cluster
    find_bin
    if pg_status; then
        log "stopping PostgreSQL ($CL)"
        as_pg "$BIN/pg_ctl" -D "$DATA" -m fast -w -t 60 -s stop >&2
    else
        log "not running ($CL)"
    fi
}

cmd_status() {
    local rc=0 port
    resolve_dir
    find_bin
    pg_status || rc=$?
    case $rc in
        0)
            port=$(running_port)
            if [[ -n "$port" && "$port" != "$PORT" ]]; then
                echo "running: $CL on port $port, not SHEAF_PG_PORT=$PORT" \
                     "(set SHEAF_PG_PORT=$port to use it)"
            else
                echo "running: $CL ($(conninfo))"
            fi
            ;;
        4) echo "no cluster in $CL" ;;
        *) echo "stopped: $CL" ;;
    esac
    return "$rc"
}

cmd_url() {
    resolve_dir
    conninfo
}

cmd_psql() {
    resolve_dir
    find_bin
    if pg_status; then
        check_running_port
    fi
    as_pg "$BIN/psql" -X -d "$(conninfo)" "$@"
}

usage() {
    echo "usage: $0 start|stop|status|url|psql [psql args...]" >&2
    exit 2
}

(($# >= 1)) || usage
cmd=$1
shift
case $cmd in
    start)  cmd_start ;;
    stop)   cmd_stop ;;
    status) cmd_status ;;
    url)    cmd_url ;;
    psql)   cmd_psql "$@" ;;
    *)      usage ;;
esac
