#!/bin/sh
# run.sh BUILD SRC NAME... — make fuzz: runs the libFuzzer harnesses BUILD/fuzz_NAME one after
# another, FUZZ_SECONDS (60) each, on a scratch copy of SRC/corpus/NAME (the committed corpus is
# never changed), with SRC/dict/NAME.dict when there is one.  Whatever crashed, leaked, hung or
# ran out of memory is copied to SRC/crashes/NAME/, where make check replays it from then on.
# Prints one summary line per harness; exit status 1 when any harness found something.
#
# The scratch folder is under $TMPDIR, else /dev/shm (the harnesses write a file per input),
# else /tmp, and is removed at the end; R1_FUZZ_KEEP=1 keeps it (the logs are in it).
set -u
build=$1
src=$2
shift 2
seconds="${FUZZ_SECONDS:-60}"
base="${TMPDIR:-}"
if [ -z "$base" ]; then
    base=/tmp
    [ -d /dev/shm ] && [ -w /dev/shm ] && base=/dev/shm
fi
work=$(mktemp -d "$base/r1fuzz-run.XXXXXX") || exit 2
[ "${R1_FUZZ_KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
# leaks are findings; UBSan stops at the first report (-fno-sanitize-recover) with a stack
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
export OPENBLAS_NUM_THREADS=1

status=0
printf '%-12s %6s %10s %6s %14s  %s\n' harness seconds runs cov "corpus" found
for name; do
    w="$work/$name"
    mkdir -p "$w/corpus" "$w/artifacts" "$w/tmp"
    cp "$src/corpus/$name"/* "$w/corpus/" 2>/dev/null
    seeds=$(ls "$w/corpus" | wc -l)
    dict=""
    [ -f "$src/dict/$name.dict" ] && dict="-dict=$src/dict/$name.dict"
    start=$(date +%s)
    TMPDIR="$w/tmp" "$build/fuzz_$name" $dict -max_total_time="$seconds" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$w/artifacts/" \
        "$w/corpus" >"$w/log" 2>&1
    rc=$?
    took=$(($(date +%s) - start))
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$w/log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$w/log" | tail -n 1 | cut -d' ' -f2)
    found=""
    for a in "$w/artifacts"/*; do
        [ -f "$a" ] || continue
        mkdir -p "$src/crashes/$name"
        cp "$a" "$src/crashes/$name/"
        found="$found $(basename "$a")"
    done
    if [ -n "$found" ]; then
        status=1
        found="saved in tests/fuzz/crashes/$name/:$found"
        grep -m 1 -E 'ERROR: |runtime error: |fuzz check failed: ' "$w/log" | sed 's/^/    /' >&2
    elif [ "$rc" -ne 0 ]; then
        status=1
        found="exit status $rc without an artefact (see the log: R1_FUZZ_KEEP=1)"
    else
        found="nothing"
    fi
    printf '%-12s %6s %10s %6s %6s -> %5s  %s\n' "$name" "$took" "${runs:-?}" "${cov:-?}" \
        "$seeds" "$(ls "$w/corpus" | wc -l)" "$found"
done
exit $status
