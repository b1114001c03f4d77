#!/usr/bin/env bash
# integration.sh - run the integration tests (tests/integration, pytest).
#
#   SHEAF_BIN=build scripts/integration.sh [pytest args...]
#
# SHEAF_BIN (required) is the directory holding the sheafd to test; the tests
# start it themselves, each session with its own data root and spool in a
# temporary directory. DATABASE_URL, when set, names the database to use;
# when unset, this script starts a private test cluster (var/test-pg, socket
# port 5434, database sheaf_test, emptied at every run), separate from the
# development one of `make run`, and stops it when the tests are done.
# SHEAF_IT_PG_DIR and SHEAF_IT_PG_PORT move that cluster (so that two runs
# can go on at once on one machine).
#
# Exits with pytest's status.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf 'integration: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ -n "${SHEAF_BIN:-}" ]] ||
    die "set SHEAF_BIN to the directory holding sheafd (e.g. SHEAF_BIN=build)"
# Relative to where we were invoked from, before the cd below.
[[ -d "$SHEAF_BIN" ]] || die "SHEAF_BIN=$SHEAF_BIN is not a directory"
SHEAF_BIN=$(cd "$SHEAF_BIN" && pwd)
[[ -x "$SHEAF_BIN/sheafd" ]] || die "no executable sheafd in $SHEAF_BIN"
export SHEAF_BIN

cd "$ROOT"

# The test cluster: its own directory, socket and database. TEST_PG_DB
# overrides the database for one call (the maintenance database "postgres").
test_pg() {
    SHEAF_PG_DIR=${SHEAF_IT_PG_DIR:-$ROOT/var/test-pg} \
        SHEAF_PG_PORT=${SHEAF_IT_PG_PORT:-5434} \
        SHEAF_PG_DB=${TEST_PG_DB:-sheaf_test} scripts/pg.sh "$@"
}

pg_started=0
# shellcheck disable=SC2317 # runs from the EXIT trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    if ((pg_started)); then
        test_pg stop || true
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

if [[ -z "${DATABASE_URL:-}" ]]; then
    pg_started=1
    test_pg start >/dev/null
    # Start every run from an empty database: no jobs or migrations left over
    # from an earlier run (FORCE ends the sessions of a sheafd left behind).
    TEST_PG_DB=postgres test_pg psql -q -v ON_ERROR_STOP=1 \
        -c 'DROP DATABASE IF EXISTS sheaf_test WITH (FORCE)' \
        -c 'CREATE DATABASE sheaf_test' >&2
    DATABASE_URL=$(test_pg url)
    export DATABASE_URL
fi

log "sheafd from $SHEAF_BIN, database: $DATABASE_URL"

# The system Python: python3-pytest is a Debian package (scripts/deps.sh),
# which a python3 earlier in PATH (pyenv, a venv) would not see.
rc=0
/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration "$@" ||
    rc=$?
exit "$rc"
