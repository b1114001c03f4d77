#!/usr/bin/env bash
# bench.sh - `make bench`: the workloads W1-W6 of ../shared/bench run as
# sheaf jobs through a private sheafd (its own PostgreSQL cluster, data root
# and spool under var/bench), the peers of ../shared/bench timed by its
# run.sh on the same file, and one table side by side (BENCHMARKS.md).
#
#   1. data    ../shared/bench/gen_arxiv.py --size $BENCH_SIZE --seed 42,
#              cached as var/bench/data/arxiv-$BENCH_SIZE.csv
#   2. peers   ../shared/bench/setup.sh when a peer is missing (best effort:
#              apt + npm; a peer that still cannot run shows as failed)
#   3. sheaf   scripts/bench_sheaf.py: sheafd from $BUILD (default build/,
#              which `make bench` builds), a private cluster
#              (scripts/pg.sh, var/bench/pg) unless DATABASE_URL is set;
#              W1-W6 timed from POST to result downloaded, peak RSS of the
#              largest worker (VmHWM)
#   4. peers   ../shared/bench/run.sh on the same file
#   5. table   scripts/bench_table.py -> stdout and var/bench/table-$BENCH_SIZE.md
#
# W7 (only when BENCH_WORKLOADS names it): W1 read from a Parquet copy of
# the file, which DuckDB makes once (scripts/bench_parquet.js copy, cached
# as var/bench/data/arxiv-$BENCH_SIZE.parquet); the peer is DuckDB reading
# the same Parquet file (bench_parquet.js w7, timed here as run.sh times
# its peers), and Polars when BENCH_PEERS names it (bench_parquet.js
# w7-polars). MB/s is still over the CSV's size.
#
# W8 (in the default list; BENCH_WORKLOADS=w8 alone): the file joined with
# a second table (scripts/bench_join.js gen: deterministic, about 200 MB
# for the 1 GiB file, scaled with BENCH_SIZE, cached as
# var/bench/data/arxiv-$BENCH_SIZE-w8side.csv), then a groupby; sheaf runs
# it in a sheafd restarted with SHEAF_MEMORY_MB=64 (workloads.ENV), so the
# 'with' side is over the budget and the join is partitioned; the peer is
# DuckDB with memory_limit 64MiB (bench_join.js w8). The table says whether
# sheaf's largest worker stayed under the 64 MiB budget.
#
# Environment:
#   BENCH_SIZE       file size for gen_arxiv.py --size (default 1G)
#   BENCH_RUNS       runs of each workload, sheaf and peers; the median is
#                    shown (default 1)
#   BENCH_PEERS      peers to run (default "duckdb polars pandas dask sklearn
#                    awk"; "" for none). DuckDB is the reference.
#   BENCH_WORKLOADS  default "w1 w2 w3 w4 w5 w6 w7 w8"
#   BENCH_NODE_MODULES  where setup.sh puts the node peers (default
#                    /tmp/bench-peers; run.sh's BENCH_PEERS)
#   BENCH_TIMEOUT    seconds per run, sheaf and peers (default 1800)
#   BENCH_PARTITION_SIZE  sheaf's input.partition_size (default 64MiB)
#   BENCH_VAR        working directory (default var/bench)
#   BENCH_CLUSTER    1: run scripts/bench_cluster.sh (1, 2, 3 hosts) instead
#   SHEAF_WORKERS, SHEAF_MEMORY_MB  pass through to sheafd (defaults: cores,
#                    256)
set -euo pipefail
# sheafd stays root here (it reads inputs this script writes as root)
# unless a SHEAF_USER is given.
export SHEAF_USER=${SHEAF_USER-}

# BENCH_CLUSTER=1: the multi-host scaling bench instead (bench_cluster.sh).
if [[ "${BENCH_CLUSTER:-0}" == 1 ]]; then
    exec "$(dirname "${BASH_SOURCE[0]}")/bench_cluster.sh"
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

SIZE=${BENCH_SIZE:-1G}
RUNS=${BENCH_RUNS:-1}
# BENCH_PEERS holding a directory is run.sh's meaning (node_modules)
if [[ "${BENCH_PEERS-}" == */* ]]; then
    BENCH_NODE_MODULES=${BENCH_NODE_MODULES:-$BENCH_PEERS}
    unset BENCH_PEERS
fi
PEERS=${BENCH_PEERS-duckdb polars pandas dask sklearn awk}
WORKLOADS=${BENCH_WORKLOADS:-w1 w2 w3 w4 w5 w6 w7 w8}
NODE_MODULES=${BENCH_NODE_MODULES:-/tmp/bench-peers}
TIMEOUT=${BENCH_TIMEOUT:-1800}
PSIZE=${BENCH_PARTITION_SIZE:-64MiB}
VAR=$(realpath -m "${BENCH_VAR:-$ROOT/var/bench}")
BUILD_DIR=$(realpath -m "${BUILD:-build}")
SHARED=$(realpath -m "${SHEAF_BENCH_DIR:-$ROOT/../shared/bench}")
PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3

[[ "$SIZE" =~ ^[0-9]+[KMG]?$ ]] || die "BENCH_SIZE must look like 1G, 50M, 200000K"
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer"
[[ -f $SHARED/gen_arxiv.py && -x $SHARED/run.sh ]] ||
    die "no bench kit at $SHARED (gen_arxiv.py, run.sh); set SHEAF_BENCH_DIR"
[[ -x $BUILD_DIR/sheafd ]] || die "no $BUILD_DIR/sheafd: run 'make all' (or make bench)"

mkdir -p "$VAR/data" "$VAR/out"
name=arxiv-$SIZE
csv=$VAR/data/$name.csv
out=$VAR/out/$name            # run.sh writes $BENCH_DATA/out/<csv name>/
started=$SECONDS

# --- 1. data -----------------------------------------------------------------

if [[ ! -s $csv ]]; then
    log "generating $csv (gen_arxiv.py --size $SIZE --seed 42)"
    t=$SECONDS
    "$PY" "$SHARED/gen_arxiv.py" --size "$SIZE" --seed 42 \
        --jobs "$(nproc)" --out "$csv.tmp"
    mv "$csv.tmp" "$csv"
    log "generated in $((SECONDS - t)) s"
else
    log "using cached $csv"
fi
bytes=$(stat -c %s "$csv")
parquet=$VAR/data/$name.parquet
w7=0
[[ " $WORKLOADS " == *" w7 "* ]] && w7=1
if ((w7)) && [[ ! -s $parquet ]]; then
    log "W7: DuckDB copies $csv to $parquet"
    if BENCH_PEERS=$NODE_MODULES node scripts/bench_parquet.js copy "$csv" "$parquet.tmp"; then
        mv "$parquet.tmp" "$parquet"
    else
        log "W7 skipped: DuckDB (@duckdb/node-api in $NODE_MODULES) could not make the Parquet copy"
        rm -f "$parquet.tmp"
        w7=0
        WORKLOADS=$(printf '%s\n' $WORKLOADS | { grep -vx w7 || true; } | tr '\n' ' ')
    fi
fi

side=$VAR/data/$name-w8side.csv
w8=0
[[ " $WORKLOADS " == *" w8 "* ]] && w8=1
if ((w8)) && [[ ! -s $side ]]; then
    # about 200 MB for the 1 GiB file: 1.75 million rows of ~114 bytes
    rows=$((bytes / 1073741824 * 1750000 + bytes % 1073741824 * 1750000 / 1073741824))
    ((rows < 1000)) && rows=1000
    log "W8: DuckDB writes the second table, $rows rows, to $side"
    if BENCH_PEERS=$NODE_MODULES node scripts/bench_join.js gen "$rows" "$side.tmp"; then
        mv "$side.tmp" "$side"
    else
        log "W8 skipped: DuckDB (@duckdb/node-api in $NODE_MODULES) could not write the second table"
        rm -f "$side.tmp"
        w8=0
        WORKLOADS=$(printf '%s\n' $WORKLOADS | { grep -vx w8 || true; } | tr '\n' ' ')
    fi
fi

# --- 2. peers ----------------------------------------------------------------

peers_ok() {
    local p
    for p in $PEERS; do
        case $p in
            duckdb | polars)
                command -v node >/dev/null || return 1
                node -e "require('module').createRequire('$NODE_MODULES/x.js')('$([[ $p == duckdb ]] && echo @duckdb/node-api || echo nodejs-polars)')" \
                    2>/dev/null || return 1 ;;
            pandas) "$PY" -c 'import pandas' 2>/dev/null || return 1 ;;
            dask) "$PY" -c 'import dask.dataframe' 2>/dev/null || return 1 ;;
            sklearn) "$PY" -c 'import sklearn' 2>/dev/null || return 1 ;;
            awk) command -v mawk >/dev/null || command -v gawk >/dev/null || return 1 ;;
        esac
    done
}

if [[ -n "${PEERS// /}" ]] && ! peers_ok; then
    log "some peers are missing: running $SHARED/setup.sh (apt + npm)"
    if ! BENCH_PEERS=$NODE_MODULES bash "$SHARED/setup.sh" >"$VAR/setup.log" 2>&1; then
        log "setup.sh failed (see $VAR/setup.log); peers that cannot run show as failed"
    fi
fi

# --- 3. sheaf ----------------------------------------------------------------

pg_started=0
cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    if ((pg_started)); then
        SHEAF_PG_DIR=$VAR/pg SHEAF_PG_PORT=5439 scripts/pg.sh stop || true
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

if [[ -z "${DATABASE_URL:-}" ]]; then
    if ! SHEAF_PG_DIR=$VAR/pg SHEAF_PG_PORT=5439 scripts/pg.sh status >/dev/null 2>&1; then
        pg_started=1
    fi
    DATABASE_URL=$(SHEAF_PG_DIR=$VAR/pg SHEAF_PG_PORT=5439 SHEAF_PG_DB=sheaf_bench scripts/pg.sh start)
    export DATABASE_URL
fi

mkdir -p "$out"
rm -rf "$VAR/spool"
# The peers run after run.sh's `cat > /dev/null` baseline has put the file
# in the page cache; sheaf gets the same start (else its first workload
# pays the disk read the peers do not).
log "warming the page cache: cat $csv > /dev/null"
cat "$csv" >/dev/null
log "sheaf: $WORKLOADS on $name ($((bytes / 1000000)) MB), $RUNS run(s) each"
"$PY" scripts/bench_sheaf.py --sheafd "$BUILD_DIR/sheafd" \
    --data-root "$VAR/data" --spool "$VAR/spool" --csv "$name.csv" \
    --out-dir "$out" --json "$out/sheaf.json" --workloads "$WORKLOADS" \
    --runs "$RUNS" --timeout "$TIMEOUT" --partition-size "$PSIZE"
rm -rf "$VAR/spool"

# --- 4. peers ----------------------------------------------------------------

# peer_row PEER W CMD...: time PEER's run of sheaf's own workload W (its
# output in $out/PEER-W.csv) RUNS times as run.sh times its peers, and
# append its row in run.sh's format to $peers_md: DuckDB is the reference,
# another peer's output is compared with DuckDB's. With duck_retry=1, a
# failed run appends nothing and returns 1 (the caller tries again
# otherwise). With peer_post set (a command), its output, run after the
# timed runs, is the peer's output (e.g. put in the canonical form).
duck_retry=0
peer_post=()
peer_row() {
    local peer=$1 w=$2 i kb wall status=ok rss=0 walls=() match=reference
    shift 2
    for ((i = 1; i <= RUNS; i++)); do
        if ! BENCH_PEERS=$NODE_MODULES /usr/bin/time -v -o "$out/time-$peer-$w.txt" \
            timeout "$TIMEOUT" "$@" 2>"$out/$peer-$w.err"; then
            status="failed"
            break
        fi
        walls+=("$(awk -F': ' '/Elapsed/ { n = split($2, p, ":"); s = 0; for (j = 1; j <= n; j++) s = s * 60 + p[j]; print s }' "$out/time-$peer-$w.txt")")
        kb=$(awk -F': ' '/Maximum resident/ { print $2 }' "$out/time-$peer-$w.txt")
        ((kb * 1024 / 1000000 > rss)) && rss=$((kb * 1024 / 1000000))
    done
    if [[ $status == ok && ${#peer_post[@]} -gt 0 ]]; then
        "${peer_post[@]}" >"$out/$peer-$w.csv" || status="failed (output)"
    fi
    if [[ $status == ok && $peer != duckdb ]]; then
        if [[ ! -s $out/duckdb-$w.csv ]]; then
            match="n/a"
        elif cmp -s "$out/$peer-$w.csv" "$out/duckdb-$w.csv"; then
            match="yes"
        else
            match="NO"
        fi
    fi
    if [[ $status == ok ]]; then
        wall=$(printf '%s\n' "${walls[@]}" | sort -g | sed -n "$(((RUNS + 1) / 2))p")
        printf '| %s | %s | %.2f | %s | %d | %s |\n' "$w" "$peer" "$wall" \
            "$(awk -v b="$bytes" -v w="$wall" 'BEGIN { if (w > 0) printf "%.0f", b / 1e6 / w; else print "-" }')" \
            "$rss" "$match" >>"$peers_md"
    elif ((duck_retry)); then
        return 1
    else
        printf '| %s | %s | %s | | | - |\n' "$w" "$peer" "$status" >>"$peers_md"
    fi
}

peers_md=$out/peers.md
if [[ -n "${PEERS// /}" ]]; then
    log "peers: $PEERS (run.sh, RUNS=$RUNS)"
    shared_w=$(printf '%s\n' $WORKLOADS | { grep -vx 'w[78]' || true; } | tr '\n' ' ')
    : >"$peers_md"
    if [[ -n "${shared_w// /}" ]]; then
        BENCH_DATA=$VAR BENCH_PEERS=$NODE_MODULES RUNS=$RUNS TIMEOUT=$TIMEOUT \
            bash "$SHARED/run.sh" "$csv" "$PEERS" "$shared_w" >"$peers_md"
    fi
    if ((w7)) && [[ " $PEERS " == *" duckdb "* ]]; then
        peer_row duckdb w7 node scripts/bench_parquet.js w7 "$parquet" "$out/duckdb-w7.csv"
    fi
    if ((w7)) && [[ " $PEERS " == *" polars "* ]]; then
        # timed on Polars' own CSV; put in the canonical form after
        rm -f "$out/polars-w7.csv"
        peer_post=("$PY" tests/integration/workloads.py canon w7 "$out/polars-w7.raw.csv")
        peer_row polars w7 node scripts/bench_parquet.js w7-polars "$parquet" "$out/polars-w7.raw.csv"
        peer_post=()
    fi
    if ((w8)) && [[ " $PEERS " == *" duckdb "* ]]; then
        # DuckDB's memory_limit as sheaf's budget, or the smallest of these
        # it does not run out of memory with (a failed try is not timed);
        # the table says which (duckdb-w8.limit)
        rm -f "$out/duckdb-w8.limit"
        duck_retry=1
        for lim in 64MiB 96MiB 128MiB 192MiB 256MiB 512MiB; do
            [[ $lim == 512MiB ]] && duck_retry=0
            if peer_row duckdb w8 node scripts/bench_join.js w8 "$csv" "$side" "$lim" "$out/duckdb-w8.csv"; then
                echo "$lim" >"$out/duckdb-w8.limit"
                break
            fi
            log "W8: DuckDB failed with memory_limit $lim: $(head -c 200 "$out/duckdb-w8.err")"
        done
        duck_retry=0
    fi
else
    : >"$peers_md"
fi

# --- 5. the table --------------------------------------------------------------

table=$VAR/table-$SIZE.md
{
    echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)," \
        "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1);" \
        "disk: $(findmnt -no SOURCE,FSTYPE -T "$VAR" 2>/dev/null | head -1);" \
        "Linux $(uname -r)"
    echo
    "$PY" scripts/bench_table.py --sheaf "$out/sheaf.json" --peers "$peers_md" \
        --out-dir "$out" --csv "$csv" --peer-list "$PEERS"
    echo
    extra=
    for v in SHEAF_WORKERS SHEAF_MEMORY_MB BENCH_WORKLOADS BENCH_PARTITION_SIZE; do
        [[ -n "${!v:-}" ]] && extra+="$v=\"${!v}\" "
    done
    echo "command: ${extra}BENCH_SIZE=$SIZE BENCH_RUNS=$RUNS BENCH_PEERS=\"$PEERS\" make bench" \
        "($((SECONDS - started)) s in all)"
} | tee "$table"
log "table written to $table; outputs in $out"
