#!/usr/bin/env bash
# test.sh - `make test`: the whole suite, stage by stage.
#
#   1. deps          scripts/deps.sh (install what is missing)
#      format-check  make format-check: every C file as .clang-format
#                    would write it (`make format` fixes what it names;
#                    SHEAF_SKIP_FORMAT=1 skips)
#   2. build         make all                        -> build/
#   3. build-asan    make asan (ASan + UBSan)        -> build-asan/
#   4. unit-asan     build-asan/unit_tests
#   5. unit-valgrind valgrind build/unit_tests       (SHEAF_SKIP_VALGRIND=1 skips)
#   6. build-fuzz    make fuzz-build (clang, libFuzzer) -> build-fuzz/
#   7. fuzz          scripts/fuzz.sh: every harness for FUZZ_S=10 seconds,
#                    from its seeds, new inputs in a temporary directory
#                    (SHEAF_SKIP_FUZZ=1 skips 6 and 7)
#   8. integration   scripts/integration.sh with SHEAF_BIN=build-asan
#   9. cluster       scripts/cluster_test.sh with SHEAF_BIN=build-asan: three
#                    hosts in network namespaces, one lost (root only;
#                    SHEAF_SKIP_CLUSTER=1 skips)
#
# Stops at the first failing stage ("FAILED: <stage>") and always ends with a
# summary of the stages and their times. Runs from the repo root wherever it
# is invoked from. Extra arguments go to pytest (stage 6).
#
# After build-asan, the openapi-lint stage runs scripts/lint_openapi.sh
# (Redocly CLI on api/openapi.yaml); the integration stage checks every
# reply the tests get against that document.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

# This script drives make itself. Flags of an outer `make -jN test` would
# hand the inner makes a jobserver they cannot use (make warns); -j is set
# here instead.
unset MAKEFLAGS MFLAGS MAKELEVEL
JOBS=$(nproc 2>/dev/null || echo 2)

# UBSan: stack traces in reports (the Makefile makes UBSan errors fatal).
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

summary=()

print_summary() {
    local line
    echo
    echo "== make test summary"
    for line in "${summary[@]}"; do
        echo "   $line"
    done
}

# run_stage NAME COMMAND...: run one stage, record its result and time, and
# stop everything when it fails.
run_stage() {
    local name=$1 start rc=0
    shift
    echo
    echo "== $name: $*"
    start=$SECONDS
    "$@" || rc=$?
    if ((rc != 0)); then
        summary+=("$(printf '%-14s FAILED (exit %d, %ds)' "$name" "$rc" \
            $((SECONDS - start)))")
        print_summary
        echo
        echo "FAILED: $name"
        exit 1
    fi
    summary+=("$(printf '%-14s ok (%ds)' "$name" $((SECONDS - start)))")
}

skip_stage() {
    echo
    echo "== $1: skipped ($2)"
    summary+=("$(printf '%-14s skipped (%s)' "$1" "$2")")
}

unit_asan() {
    # Leak detection stays on for the unit tests.
    ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 build-asan/unit_tests
}

unit_valgrind() {
    # PCRE2's JIT code is opaque to valgrind (false uninitialised reads)
    SHEAF_REGEX_JIT=0 valgrind --error-exitcode=1 --leak-check=full \
        --errors-for-leak-kinds=definite -q build/unit_tests
}

# Each harness for 10 s: a regression in a parser shows here. The tree is
# not written: the seeds are read only, crashes go to build-fuzz/crashes/.
fuzz_short() {
    FUZZ_S=10 FUZZ_KEEP=0 scripts/fuzz.sh
}

# In a subshell, so that the exports stay in it.
integration() (
    # For the sheafd processes the tests start: leaks are not checked (a
    # server killed at the end of a test leaves its memory), other errors
    # abort the server, which the tests see.
    export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
    export SHEAF_BIN=$ROOT/build-asan
    scripts/integration.sh "$@"
)

# The same sanitizer settings for the cluster's sheafd processes.
cluster() (
    export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
    SHEAF_BIN=$ROOT/build-asan scripts/cluster_test.sh
)

run_stage deps scripts/deps.sh
if [[ "${SHEAF_SKIP_FORMAT:-0}" == 1 ]]; then
    skip_stage format-check "SHEAF_SKIP_FORMAT=1"
else
    run_stage format-check make format-check
fi
run_stage build make -j"$JOBS" all
run_stage build-asan make -j"$JOBS" asan
run_stage openapi-lint scripts/lint_openapi.sh
run_stage unit-asan unit_asan
if [[ "${SHEAF_SKIP_VALGRIND:-0}" == 1 ]]; then
    skip_stage unit-valgrind "SHEAF_SKIP_VALGRIND=1"
else
    run_stage unit-valgrind unit_valgrind
fi
if [[ "${SHEAF_SKIP_FUZZ:-0}" == 1 ]]; then
    skip_stage build-fuzz "SHEAF_SKIP_FUZZ=1"
    skip_stage fuzz "SHEAF_SKIP_FUZZ=1"
else
    run_stage build-fuzz make -j"$JOBS" fuzz-build
    run_stage fuzz fuzz_short
fi
run_stage integration integration "$@"
if [[ "${SHEAF_SKIP_CLUSTER:-0}" == 1 ]]; then
    skip_stage cluster "SHEAF_SKIP_CLUSTER=1"
elif ((EUID != 0)); then
    skip_stage cluster "not root: ip netns needs root"
else
    run_stage cluster cluster
fi

print_summary
echo
echo "all stages passed"
