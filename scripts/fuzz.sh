#!/usr/bin/env bash
# fuzz.sh - run the libFuzzer harnesses of build-fuzz/ (make fuzz-build)
# one after the other, each for FUZZ_S seconds, and sum up.
#
#   scripts/fuzz.sh [TARGET...]   the targets (csv, expr, ...); default all,
#                                 every tests/fuzz/fuzz_TARGET.c
#   FUZZ_S=60     seconds per target
#   FUZZ_KEEP=1   keep what the fuzzer finds new in build-fuzz/corpus/TARGET
#                 and start from it next time (make fuzz); 0 (make test):
#                 a temporary directory, removed after, so every run starts
#                 from the seeds alone
#
# The seeds in tests/fuzz/corpus/TARGET/ are read, never written (libFuzzer
# writes new inputs to the first corpus directory only: the work directory),
# and tests/fuzz/TARGET.dict is used when it exists. A crash, a sanitizer
# error, a leak, a timeout (FUZZ_TIMEOUT_S for one input, default 10) or a
# broken property saves the input as build-fuzz/crashes/TARGET/crash-<sha1>
# (or leak-, timeout-, oom-), prints its path and the end of the log, and
# fails the script once every target has run. Reproduce with
# build-fuzz/fuzz_TARGET <that file>. Logs: build-fuzz/logs/TARGET.log.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

FUZZ_S=${FUZZ_S:-60}
FUZZ_KEEP=${FUZZ_KEEP:-0}
FUZZ_TIMEOUT_S=${FUZZ_TIMEOUT_S:-10}
BIN=build-fuzz

if (($# > 0)); then
    targets=("$@")
else
    targets=()
    for f in tests/fuzz/fuzz_*.c; do
        t=${f#tests/fuzz/fuzz_}
        t=${t%.c}
        [[ $t == common ]] || targets+=("$t")
    done
fi

for t in "${targets[@]}"; do
    if [[ ! -x $BIN/fuzz_$t ]]; then
        echo "fuzz: no $BIN/fuzz_$t; run make fuzz-build" >&2
        exit 2
    fi
done

# UBSan and ASan errors are fatal and show a stack (libFuzzer then saves
# the input).
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sheaf-fuzz.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$BIN/logs"

failed=()
summary=()
for t in "${targets[@]}"; do
    seeds=tests/fuzz/corpus/$t
    crashes=$BIN/crashes/$t
    log=$BIN/logs/$t.log
    if [[ $FUZZ_KEEP == 1 ]]; then
        work=$BIN/corpus/$t
    else
        work=$tmp/corpus-$t
    fi
    mkdir -p "$work" "$crashes"
    args=(-max_total_time="$FUZZ_S" -timeout="$FUZZ_TIMEOUT_S"
          -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1
          -artifact_prefix="$crashes/")
    [[ -f tests/fuzz/$t.dict ]] && args+=(-dict="tests/fuzz/$t.dict")
    dirs=("$work")
    [[ -d $seeds ]] && dirs+=("$seeds")

    echo "== fuzz $t: ${FUZZ_S}s"
    start=$SECONDS
    rc=0
    "$BIN/fuzz_$t" "${args[@]}" "${dirs[@]}" >"$log" 2>&1 || rc=$?
    took=$((SECONDS - start))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    units=$(find "$work" -type f | wc -l)
    if ((rc != 0)); then
        unit=$(sed -n 's/.*Test unit written to //p' "$log" | tail -1)
        echo "FAILED: fuzz $t after ${took}s (exit $rc): ${unit:-no input saved}"
        # The report: from the first error line to libFuzzer's SUMMARY,
        # without ASan's shadow-memory map.
        echo "--- $log (report)"
        awk '/ERROR|runtime error|FUZZ PROPERTY FAILED/ { p = 1 }
             /^Shadow bytes around|^Shadow byte legend/ { s = 1 }
             /^SUMMARY/ { s = 0 }
             p && !s' "$log" | head -n 80
        echo "---"
        echo "reproduce: $BIN/fuzz_$t ${unit:-}"
        failed+=("$t: ${unit:-exit $rc, see $log}")
        summary+=("$(printf '%-10s FAILED after %4ds %10s execs %7s/s' \
            "$t" "$took" "${execs:-?}" "${rate:-?}")")
    else
        summary+=("$(printf '%-10s ok %4ds %10s execs %7s/s %6s corpus units' \
            "$t" "$took" "${execs:-?}" "${rate:-?}" "$units")")
    fi
done

echo
echo "== fuzz summary (FUZZ_S=$FUZZ_S)"
for line in "${summary[@]}"; do
    echo "   $line"
done
if ((${#failed[@]} > 0)); then
    echo
    echo "fuzz: ${#failed[@]} target(s) found a problem:"
    for f in "${failed[@]}"; do
        echo "   $f"
    done
    exit 1
fi
