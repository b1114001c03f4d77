#!/usr/bin/env bash
# deps.sh - install the Debian packages sheaf needs to build, run and test.
#
# Checks each package with dpkg first and touches apt only when something is
# missing, so a second run is instant and needs no network. As root (CI, a
# container) it installs non-interactively; as another user it prints the
# exact command to run and fails.
#
#   SHEAF_SKIP_DEPS=1   skip the check entirely (you manage packages yourself)
set -euo pipefail

PACKAGES=(
    # build
    build-essential pkg-config
    libmicrohttpd-dev libjansson-dev libpq-dev uuid-dev libcunit1-dev
    libcurl4-openssl-dev libssl-dev zlib1g-dev
    # run: the private PostgreSQL cluster (scripts/pg.sh)
    postgresql postgresql-client
    # test and tools
    python3 python3-pytest curl valgrind time ca-certificates
    # the workload tests' reference answers (tests/integration/test_workloads.py):
    # pandas for W1-W5, scikit-learn for W6 (~42 MB to fetch, ~300 MB installed)
    python3-pandas python3-sklearn
    # the CI recipes' check (tests/integration/test_cli_progress.py)
    python3-yaml
)
# The object-storage tests' S3 server and client (npm: tools/package.json)
# need node and npm; the manifests' check (deploy/k8s) needs kubectl. A
# machine that has them from elsewhere (NodeSource's nodejs, which holds
# npm; Google's kubectl) keeps them: Debian's packages would conflict.
command -v npm >/dev/null 2>&1 || PACKAGES+=(nodejs npm)
command -v kubectl >/dev/null 2>&1 || PACKAGES+=(kubernetes-client)

log() { printf 'deps: %s\n' "$*" >&2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# The npm tools of the tests (tools/package.json, pinned by its lock file):
# npm ci when node_modules is missing or older than the lock file.
npm_tools() {
    local lock=$ROOT/tools/package-lock.json
    [[ -f "$lock" ]] || return 0
    if [[ -d "$ROOT/tools/node_modules" \
          && "$ROOT/tools/node_modules" -nt "$lock" ]]; then
        return 0
    fi
    if ! command -v npm >/dev/null 2>&1; then
        log "no npm: cannot install the test tools of tools/package.json"
        return 1
    fi
    log "installing the test tools (npm ci in tools/)"
    (cd "$ROOT/tools" && npm ci --no-audit --no-fund --loglevel=error) >&2
    touch "$ROOT/tools/node_modules"
}

if [[ "${SHEAF_SKIP_DEPS:-0}" == 1 ]]; then
    log "SHEAF_SKIP_DEPS=1: not checking packages"
    exit 0
fi

if ! command -v dpkg >/dev/null 2>&1; then
    log "no dpkg: not a Debian system, cannot check packages."
    log "sheaf needs the equivalents of: ${PACKAGES[*]}"
    log "continuing; the build will tell what is missing"
    exit 0
fi

# A package counts as present only when it is fully installed ("install ok
# installed"); a removed package whose config files remain is missing.
# (Captured first: piping into grep -q could SIGPIPE dpkg under pipefail.)
installed() {
    local status
    status=$(dpkg -s "$1" 2>/dev/null) || return 1
    grep -qx 'Status: install ok installed' <<<"$status"
}

missing=()
for pkg in "${PACKAGES[@]}"; do
    installed "$pkg" || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
    npm_tools
    exit 0
fi

if ((EUID != 0)); then
    log "missing packages: ${missing[*]}"
    log "install them with:"
    echo "sudo apt-get install -y --no-install-recommends ${missing[*]}"
    exit 1
fi

log "installing: ${missing[*]}"

# apt and dpkg talk a lot even with -qq; keep their output in a log and show
# it only when something fails.
apt_log=$(mktemp "${TMPDIR:-/tmp}/sheaf-deps.XXXXXX")
trap 'rm -f "$apt_log"' EXIT

apt() {
    if ! DEBIAN_FRONTEND=noninteractive apt-get -y -qq \
            -o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=300 \
            -o Dpkg::Options::=--force-confdef \
            -o Dpkg::Options::=--force-confold \
            "$@" </dev/null >"$apt_log" 2>&1; then
        log "apt-get $* failed:"
        tail -n 40 "$apt_log" >&2
        exit 1
    fi
}

apt update
apt install --no-install-recommends "${missing[@]}"

# Make sure apt did what it said.
still=()
for pkg in "${missing[@]}"; do
    installed "$pkg" || still+=("$pkg")
done
if ((${#still[@]} > 0)); then
    log "still missing after install: ${still[*]}"
    exit 1
fi
npm_tools
log "done"
