#!/usr/bin/env bash
# browser_tools.sh - install puppeteer-core, the driver of Debian's chromium
# in tests/integration/test_dashboard.py (tools/browser/package.json), into
# tools/browser/node_modules, with `npm ci` at the exact versions of
# tools/browser/package-lock.json. It never downloads a browser: the test
# uses /usr/bin/chromium.
#
# Run by scripts/deps.sh. Skipped when node_modules already holds that lock
# file's packages (a stamp records the lock's SHA-256), so a second run is
# instant and needs no network. Needs node and npm (deps.sh installs
# Debian's when npm is missing).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS=$ROOT/tools/browser
STAMP=$TOOLS/node_modules/.sheaf-lock-sha256

log() { printf 'browser-tools: %s\n' "$*" >&2; }

want=$(sha256sum "$TOOLS/package-lock.json" | cut -d' ' -f1)
if [[ -d $TOOLS/node_modules/puppeteer-core && -f $STAMP
      && "$(cat "$STAMP")" == "$want" ]]; then
    exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
    log "npm is missing: install Debian's nodejs and npm (scripts/deps.sh)"
    exit 1
fi

log "npm ci in tools/browser (puppeteer-core)"
npm_log=$(mktemp "${TMPDIR:-/tmp}/sheaf-browser-tools.XXXXXX")
trap 'rm -f "$npm_log"' EXIT
if ! (cd "$TOOLS" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund) \
        >"$npm_log" 2>&1; then
    log "npm ci failed:"
    tail -n 40 "$npm_log" >&2
    exit 1
fi
echo "$want" >"$STAMP"
log "done"
