#!/usr/bin/env bash
# lint_openapi.sh - lint api/openapi.yaml with Redocly CLI (installed in
# tools/openapi/node_modules by scripts/npm_tools.sh openapi) under
# tools/openapi/redocly.yaml: the recommended rules less the two it switches
# off, saying why. Exits non-zero when Redocly reports an error (warnings
# are printed, not fatal).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REDOCLY=$ROOT/tools/openapi/node_modules/.bin/redocly

# scripts/deps.sh installs it; a tree where that did not happen installs
# it now (npm ci, exact versions).
if [[ ! -x $REDOCLY ]]; then
    "$ROOT/scripts/npm_tools.sh" openapi
fi
# No usage reports or update checks: the tool runs offline.
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
exec "$REDOCLY" lint --config "$ROOT/tools/openapi/redocly.yaml" \
    "$ROOT/api/openapi.yaml"
