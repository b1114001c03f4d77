#!/usr/bin/env bash
# bench.sh - `make bench`: time sheaf against the peers in shared/bench.
# A placeholder until issue 3 fills it in.
set -euo pipefail

echo "make bench: not implemented yet (issue 3)"
exit 0
