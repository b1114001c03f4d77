#!/usr/bin/env bash
# lint_openapi.sh - lint api/openapi.yaml with Redocly CLI (installed in
# tools/openapi/node_modules by scripts/openapi_tools.sh) under
# tools/openapi/redocly.yaml: the recommended rules less the two it switches
# off, saying why. Exits non-zero when Redocly reports an error (warnings
# are printed, not fatal).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REDOCLY=$ROOT/tools/openapi/node_modules/.bin/redocly

if [[ ! -x $REDOCLY ]]; then
    echo "lint_openapi: no $REDOCLY; run scripts/openapi_tools.sh (or make deps)" >&2
    exit 1
fi
# No usage reports or update checks: the tool runs offline.
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
exec "$REDOCLY" lint --config "$ROOT/tools/openapi/redocly.yaml" \
    "$ROOT/api/openapi.yaml"
