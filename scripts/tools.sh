#!/usr/bin/env bash
# tools.sh - install the Node tools of the tests (tools/package.json, with
# its lockfile): puppeteer-core, which drives Debian's chromium in
# tests/integration/test_dashboard.py. Run by scripts/deps.sh.
#
# Does nothing when tools/node_modules already matches the lockfile, so a
# second run is instant and needs no network. Never downloads a browser:
# the tests use /usr/bin/chromium.
#
#   SHEAF_SKIP_DEPS=1   skip (you manage packages yourself)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS=$ROOT/tools

log() { printf 'tools: %s\n' "$*" >&2; }

if [[ "${SHEAF_SKIP_DEPS:-0}" == 1 ]]; then
    exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
    # Debian's npm, unless a Node.js that brings its own is installed.
    if ((EUID == 0)) && command -v apt-get >/dev/null 2>&1; then
        log "installing npm"
        DEBIAN_FRONTEND=noninteractive apt-get -y -qq \
            -o DPkg::Lock::Timeout=300 install --no-install-recommends npm \
            </dev/null >/dev/null
    else
        log "npm is missing: install it (apt-get install npm)"
        exit 1
    fi
fi

# npm writes the lockfile it installed to node_modules/.package-lock.json;
# the same content as ours means nothing to do.
stamp=$TOOLS/node_modules/.sheaf-lock
if [[ -f "$stamp" ]] && cmp -s "$stamp" "$TOOLS/package-lock.json" &&
        [[ -d "$TOOLS/node_modules/puppeteer-core" ]]; then
    exit 0
fi

log "installing the Node tools (tools/package-lock.json)"
npm_log=$(mktemp "${TMPDIR:-/tmp}/sheaf-tools.XXXXXX")
trap 'rm -f "$npm_log"' EXIT
if ! (cd "$TOOLS" && PUPPETEER_SKIP_DOWNLOAD=1 \
        PUPPETEER_SKIP_CHROME_DOWNLOAD=1 npm ci --no-audit --no-fund \
        --loglevel=error) >"$npm_log" 2>&1; then
    log "npm ci failed:"
    tail -n 40 "$npm_log" >&2
    exit 1
fi
cp "$TOOLS/package-lock.json" "$stamp"
log "done"
