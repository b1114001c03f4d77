#!/usr/bin/env bash
# it_tools.sh - install the npm tools of the integration tests
# (tools/it/package.json: s3rver, an S3-compatible server; minio, an
# independent S3 client; kubernetes-models and yaml, the manifests' schema
# check) into tools/it/node_modules, with `npm ci` at the exact versions of
# tools/it/package-lock.json.
#
# Run by scripts/deps.sh, and by the tests that need the tools when they
# are missing. Skipped when node_modules already holds that lock file's
# packages (a stamp records the lock's SHA-256), so a second run is instant
# and needs no network. Needs node and npm.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS=$ROOT/tools/it
STAMP=$TOOLS/node_modules/.sheaf-lock-sha256

log() { printf 'it-tools: %s\n' "$*" >&2; }

want=$(sha256sum "$TOOLS/package-lock.json" | cut -d' ' -f1)
if [[ -f $STAMP && "$(cat "$STAMP")" == "$want" ]]; then
    exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
    log "npm is missing: install Debian's nodejs and npm (scripts/deps.sh)"
    exit 1
fi

log "npm ci in tools/it (s3rver, minio, kubernetes-models, yaml)"
npm_log=$(mktemp "${TMPDIR:-/tmp}/sheaf-it-tools.XXXXXX")
trap 'rm -f "$npm_log"' EXIT
if ! (cd "$TOOLS" && npm ci --no-audit --no-fund) >"$npm_log" 2>&1; then
    log "npm ci failed:"
    tail -n 40 "$npm_log" >&2
    exit 1
fi
echo "$want" >"$STAMP"
log "done"
