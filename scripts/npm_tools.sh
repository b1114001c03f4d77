#!/usr/bin/env bash
# npm_tools.sh - install the npm tools of the test suite, one folder of
# tools/ per group, each with its package.json and package-lock.json:
#
#   openapi  Redocly CLI, the lint of api/openapi.yaml (scripts/lint_openapi.sh)
#   browser  puppeteer-core, the driver of Debian's chromium in the
#            dashboard's test (it never downloads a browser)
#   it       s3rver (an S3-compatible server), minio (an independent S3
#            client), kubernetes-models and yaml (the manifests' check)
#
#   scripts/npm_tools.sh NAME...
#
# `npm ci` at the exact versions of each lock file, into
# tools/NAME/node_modules. Skipped when node_modules already holds that
# lock file's packages (a stamp records the lock's SHA-256), so a second
# run is instant and needs no network. Run by scripts/deps.sh, and by the
# tests that need a group when it is missing. Needs node and npm (deps.sh
# installs Debian's when npm is missing).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf 'npm-tools: %s\n' "$*" >&2; }

# install NAME: one group.
install() {
    local tools=$ROOT/tools/$1 want stamp npm_log

    [[ -f $tools/package-lock.json ]] || { log "no tools/$1"; return 1; }
    stamp=$tools/node_modules/.sheaf-lock-sha256
    want=$(sha256sum "$tools/package-lock.json" | cut -d' ' -f1)
    if [[ -f $stamp && "$(cat "$stamp")" == "$want" ]]; then
        return 0
    fi
    if ! command -v npm >/dev/null 2>&1; then
        log "npm is missing: install Debian's nodejs and npm (scripts/deps.sh)"
        return 1
    fi
    log "npm ci in tools/$1"
    npm_log=$(mktemp "${TMPDIR:-/tmp}/sheaf-npm-tools.XXXXXX")
    if ! (cd "$tools" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit \
            --no-fund) >"$npm_log" 2>&1; then
        log "npm ci in tools/$1 failed:"
        tail -n 40 "$npm_log" >&2
        rm -f "$npm_log"
        return 1
    fi
    rm -f "$npm_log"
    echo "$want" >"$stamp"
    log "tools/$1 done"
}

(($# > 0)) || { log "usage: scripts/npm_tools.sh NAME..."; exit 2; }
for name in "$@"; do
    install "$name"
done
