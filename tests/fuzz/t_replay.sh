#!/bin/sh
# t_replay.sh — the fuzz corpora and every crash ever found, replayed through their harnesses
# as regression tests (tests/fuzz/README.md): one TAP line per harness of FUZZ_HARNESSES (set
# by make check; by hand, every folder of tests/fuzz/corpus/), ok when replay_NAME took every
# file of corpus/NAME and crashes/NAME without a failed check, crash or sanitizer report.
src="${top_srcdir:-.}/tests/fuzz"
build="${top_builddir:-.}/tests/fuzz"
names="${FUZZ_HARNESSES:-$(cd "$src/corpus" && ls)}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set -- $names
echo "1..$#"
n=1
for name in $names; do
    corpus="$src/corpus/$name"
    crashes="$src/crashes/$name"
    [ -d "$crashes" ] || crashes=""
    ncrash=0
    [ -n "$crashes" ] && ncrash=$(ls "$crashes" | grep -v '^README.md$' | wc -l)
    if [ ! -d "$corpus" ] || [ -z "$(ls "$corpus")" ]; then
        echo "not ok $n - $name: no seed corpus in $corpus"
    elif "$build/replay_$name" "$corpus" ${crashes:+"$crashes"} >"$log" 2>&1; then
        count=$(sed -n 's/^replayed \([0-9]*\) inputs$/\1/p' "$log")
        if [ -n "$count" ] && [ "$count" -gt 0 ]; then
            echo "ok $n - $name: replayed $count inputs ($ncrash of them past crashes)"
        else
            echo "not ok $n - $name: replay_$name replayed nothing"
        fi
    else
        status=$?
        echo "not ok $n - $name: replay_$name exited with status $status"
        tail -n 20 "$log" | sed 's/^/# /'
    fi
    n=$((n + 1))
done
