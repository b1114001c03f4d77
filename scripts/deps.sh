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
    libcurl4-openssl-dev libssl-dev zlib1g-dev libpcre2-dev
    # Parquet's codecs (executor/parquet_page.c)
    libsnappy-dev libzstd-dev
    # the workers' seccomp filter (service/sandbox.c)
    libseccomp-dev
    # run: the private PostgreSQL cluster (scripts/pg.sh)
    postgresql postgresql-client
    # test and tools
    python3 python3-pytest curl valgrind time ca-certificates
    # make format / format-check (.clang-format is written for version 14)
    clang-format
    # the fuzz harnesses (make fuzz): clang and its libFuzzer runtime
    # (libclang_rt.fuzzer, not a dependency of clang-14 on Debian 12)
    clang libclang-rt-14-dev
    # the workload tests' reference answers (tests/integration/test_workloads.py):
    # pandas for W1-W5, scikit-learn for W6 (~42 MB to fetch, ~300 MB installed)
    python3-pandas python3-sklearn
    # the CI recipes' check (tests/integration/test_cli_progress.py)
    python3-yaml
    # the service figures of make bench (scripts/bench_service.sh): wrk on
    # GET /v1/jobs/{id}
    wrk
    # the dashboard's browser test (tests/integration/test_dashboard.py):
    # Debian's chromium (~100 MB), driven by puppeteer-core from npm
    chromium
    # the notebook examples/arxiv.ipynb and its test: nbclient runs it in an
    # ipykernel; matplotlib draws its plots
    python3-nbclient python3-ipykernel python3-matplotlib
    # the cluster test and bench (tests/cluster, scripts/cluster_test.sh):
    # ip netns, veth and bridges; unshare and taskset are util-linux's
    iproute2 util-linux
)

log() { printf 'deps: %s\n' "$*" >&2; }

# The OpenAPI checks: every reply of the integration tests is validated
# against api/openapi.yaml (tests/integration/openapi_check.py), which
# Redocly CLI lints; puppeteer-core drives the dashboard's browser test.
# Both come from npm (scripts/npm_tools.sh),
# installed last; Debian's node and npm come only when the machine has no
# npm.
PACKAGES+=(python3-yaml python3-jsonschema)
# GET /metrics: promtool and a Prometheus server (tests/integration/test_metrics.py)
PACKAGES+=(prometheus)
# sheafd behind a transaction-pooling pgbouncer (tests/integration/test_pgbouncer.py)
PACKAGES+=(pgbouncer)
if ! command -v npm >/dev/null 2>&1; then
    PACKAGES+=(nodejs npm)
fi
npm_tools() {
    "$(dirname "${BASH_SOURCE[0]}")/npm_tools.sh" openapi browser it
}

if [[ "${SHEAF_SKIP_DEPS:-0}" == 1 ]]; then
    log "SHEAF_SKIP_DEPS=1: not checking packages"
    exit 0
fi

if ! command -v dpkg >/dev/null 2>&1; then
    log "no dpkg: not a Debian system, cannot check packages."
    log "sheaf needs the equivalents of: ${PACKAGES[*]}"
    log "continuing; the build will tell what is missing"
    if command -v npm >/dev/null 2>&1; then
        npm_tools
    fi
    exit 0
fi

# Object storage and Kubernetes tests (test_s3*.py, test_k8s.py): node and
# npm for tools/it (scripts/npm_tools.sh), kubectl for `kubectl kustomize`.
# A machine that has them from elsewhere (NodeSource's nodejs holds npm;
# Google's kubectl) keeps them: Debian's packages would conflict.
command -v npm >/dev/null 2>&1 || PACKAGES+=(nodejs npm)
command -v kubectl >/dev/null 2>&1 || PACKAGES+=(kubernetes-client)

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
log "done"
npm_tools
