#!/usr/bin/env bash
# bench_cluster.sh - scaling measured (issue 14, point 5): W1, W3 and W5 on
# 1, 2 and 3 sheafd hosts (network namespaces sharing PostgreSQL over TCP
# and s3rver; tests/cluster/cluster.py), one worker per host pinned to one
# core with taskset, over one generated file in the store; a table of time,
# speed-up and coordination overhead (tests/cluster/bench_cluster.py).
#
#   BENCH_CLUSTER=1 make bench      or      make bench-cluster
#
# Environment:
#   BENCH_CLUSTER_SIZE  gen_arxiv.py --size (default 200M), cached as
#                       $BENCH_VAR/data/arxiv-$SIZE.csv
#   BENCH_CLUSTER_PART  input.partition_size (default 8MiB)
#   BENCH_VAR           working directory (default var/bench)
#   BUILD               directory of sheafd (default build)
#
# Root only (ip netns). The table goes to stdout and
# $BENCH_VAR/cluster-$SIZE.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

log() { printf 'bench-cluster: %s\n' "$*" >&2; }

((EUID == 0)) || { log "needs root (ip netns)"; exit 1; }
SIZE=${BENCH_CLUSTER_SIZE:-200M}
PART=${BENCH_CLUSTER_PART:-8MiB}
VAR=${BENCH_VAR:-$ROOT/var/bench}
BUILD=${BUILD:-$ROOT/build}
export SHEAF_BIN=$BUILD
[[ -x "$BUILD/sheafd" ]] || { log "no sheafd in $BUILD (make all)"; exit 1; }
scripts/npm_tools.sh it

mkdir -p "$VAR/data"
csv=$VAR/data/arxiv-$SIZE.csv
if [[ ! -s "$csv" ]]; then
    log "generating $csv"
    python3 "$ROOT/../shared/bench/gen_arxiv.py" --size "$SIZE" --seed 42 \
        --out "$csv.tmp"
    mv "$csv.tmp" "$csv"
fi
started=$SECONDS
timeout -k 30 3600 /usr/bin/python3 tests/cluster/bench_cluster.py "$csv" \
    --part "$PART" --out "$VAR/cluster-$SIZE.md"
echo "command: BENCH_CLUSTER_SIZE=$SIZE BENCH_CLUSTER_PART=$PART" \
    "make bench-cluster ($((SECONDS - started)) s)" | tee -a "$VAR/cluster-$SIZE.md"
