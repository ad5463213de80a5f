#!/bin/sh
# t_limits.sh — resource limits (#18): under an address-space limit (ulimit -v) small enough
# to fail, every entry point ends with "out of memory" and a non-zero status, or succeeds;
# never a hang (the probe's M7: OpenBLAS spun forever when it could not get its work buffer).
# Skipped in sanitizer builds, which cannot start under ulimit -v.
r1lab="${top_builddir:-.}/app/r1lab"
src=$(cd "${top_srcdir:-.}" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "${top_srcdir:-.}/tests/screen_lib.sh" # ok and the test count
bin="$r1lab"
[ -x "${top_builddir:-.}/app/.libs/r1lab" ] && bin="${top_builddir:-.}/app/.libs/r1lab"
if sanitized "$bin"; then
    echo "1..0 # SKIP a sanitizer build cannot run under ulimit -v"
    exit 0
fi
B="$src/models/builtin"
printf 'local m = r1.load("%s")\nr1.grpo{model = m, tasks = {"add:1"}, steps = 2, group = 4, prompts = 2, max_new = 32}\n' "$B" > "$tmp/grpo.lua"

# limited KIB NAME ARGS...: runs r1lab ARGS under ulimit -v KIB for at most 60 s
limited() {
    kib=$1 name=$2
    shift 2
    ( ulimit -v "$kib"; exec timeout 60 "$r1lab" "$@" ) > "$tmp/out" 2>&1
    rc=$?
    if [ $rc -eq 124 ]; then
        ok 1 "$name under ulimit -v $kib: no hang (timed out after 60 s)"
    elif [ $rc -eq 0 ]; then
        ok 0 "$name under ulimit -v $kib: succeeds"
    else
        grep -q "out of memory" "$tmp/out"
        ok $? "$name under ulimit -v $kib: exit $rc, $(grep -m1 'out of memory' "$tmp/out" | cut -c1-90)"
    fi
}

for kib in 300000 700000 1000000; do
    limited $kib "init small" init --config small --out "$tmp/i$kib"
    limited $kib "forward" forward --model "$B" --tokens "1 2 3" --out "$tmp/f.st"
    limited $kib "generate" generate --model "$B" --prompt "What is 2+3?" --max-tokens 48
    limited $kib "train grpo" train --stage grpo --model "$B" --out "$tmp/g$kib" --tasks add:1 \
        --steps 2 --group 4 --prompts 2 --max-new 48
    limited $kib "train pretrain small" train --stage pretrain --model small --out "$tmp/p$kib" \
        --steps 2 --batch 4 --eval-every 0
    limited $kib "eval" eval --model "$B" --tasks add:1 --n 4
    limited $kib "run (r1.grpo)" run "$tmp/grpo.lua"
done
echo "1..$n"
