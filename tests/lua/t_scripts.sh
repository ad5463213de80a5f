#!/bin/sh
# t_scripts.sh — every example script in scripts/ runs to the end with tiny settings.
#
# In the sanitizer build (8x slower here, and CI's longest test at 16 of its 30 minutes) three
# runs whose C code another run of this file already takes are left out, each named as a skip:
# r1_pipeline.lua (the stages train_builtin.lua --quick runs, with other numbers),
# reproduce.lua (the README's `r1lab train` commands, t_cli.sh's code) and three of the
# balance experiment's five rows (the routing bias and the auxiliary loss each keep a row).
# The plain build runs them all.
r1lab="${top_builddir:-.}/app/r1lab"
s="${top_srcdir:-.}/scripts"
export R1LAB_DATADIR="${top_srcdir:-.}"
. "${top_srcdir:-.}/tests/screen_lib.sh" # skip, sanitized
bin="$r1lab"
[ -x "${top_builddir:-.}/app/.libs/r1lab" ] && bin="${top_builddir:-.}/app/.libs/r1lab"
san=""
sanitized "$bin" && san=1
n=0
run() { # name, command...
    n=$((n + 1))
    name=$1
    shift
    if out=$("$@" 2>&1); then
        echo "ok $n - $name"
    else
        echo "not ok $n - $name"
        echo "$out" | tail -5 | sed 's/^/# /'
    fi
}
run "quickstart.lua" "$r1lab" run "$s/quickstart.lua" --max_tokens 12
run "grpo_addition.lua" "$r1lab" run "$s/grpo_addition.lua" --steps 1 --group 4 --prompts 2 \
    --max_new 12 --eval 2
run "my_reward.lua" "$r1lab" run "$s/my_reward.lua" --steps 1 --group 4 --prompts 2 --max_new 12
if [ -n "$san" ]; then
    skip "r1_pipeline.lua: left to the plain build (its stages: train_builtin.lua below)"
else
    run "r1_pipeline.lua" "$r1lab" run "$s/r1_pipeline.lua" --steps 2
fi
run "routing_stats.lua" "$r1lab" run "$s/routing_stats.lua" --n 1 --max_tokens 8
tmp=$(mktemp -d)
run "train_builtin.lua --quick (every stage, a few steps)" "$r1lab" run "$s/train_builtin.lua" \
    --quick true --out "$tmp/builtin" --stages "$tmp/stages"
n=$((n + 1))
if grep -q '^Trained on: .*OpenBLAS .* kernels, .* threads\?\.$' "$tmp/builtin/card.md" &&
    grep -q '^Evaluated on: .*OpenBLAS' "$tmp/builtin/card.md" &&
    [ -f "$tmp/builtin/card.md" ] && [ -f "$tmp/builtin/model.safetensors" ] &&
    [ -f "$tmp/builtin/tokenizer.json" ] && [ -f "$tmp/builtin-student/config.json" ]; then
    echo "ok $n - it writes the model, its card (with the machine) and the student"
else
    echo "not ok $n - it writes the model, its card (with the machine) and the student"
fi
n=$((n + 1))
if [ -f "$tmp/stages/pretrain/model.safetensors" ] && [ -f "$tmp/stages/sft/config.json" ] &&
    [ -f "$tmp/stages/rl2/model.safetensors" ]; then
    echo "ok $n - --stages keeps the model after each stage"
else
    echo "not ok $n - --stages keeps the model after each stage"
fi
n=$((n + 1))
card="$tmp/builtin/card.md"
if grep -q "^| task | difficulty | target | pretraining | cold-start SFT | GRPO |" "$card" &&
    grep -q "^| sort | 3 | 0.90 |" "$card" && grep -q "^| \*\*language\*\* | asked in Spanish |" \
    "$card" && [ "$(grep -c '"kind": "frontier"' "$tmp/builtin/stages.jsonl")" -eq 2 ] &&
    [ "$(grep -c '"kind": "stage"' "$tmp/builtin/stages.jsonl")" -ge 4 ] &&
    grep -q "^| 2 | [0-9.]* | 0.00 | 0.00 |" "$card"; then
    echo "ok $n - the card has every cell after each stage, by language, and the frontier"
else
    echo "not ok $n - the card has every cell after each stage, by language, and the frontier"
fi
# --card rebuilds the card from the run's record (stages.jsonl) without the stage models
rm "$card"
run "train_builtin.lua --card (the card again from the record)" "$r1lab" run \
    "$s/train_builtin.lua" --quick true --card "$tmp/builtin"
n=$((n + 1))
if grep -q "^| task | difficulty | target | pretraining | cold-start SFT | GRPO |" "$card" &&
    grep -q "^| 2 | [0-9.]* | 0.00 | 0.00 |" "$card" && grep -q "^Targets missed" "$card"; then
    echo "ok $n - --card rebuilds the per-stage table and the frontier from stages.jsonl"
else
    echo "not ok $n - --card rebuilds the per-stage table and the frontier from stages.jsonl"
fi
for e in harder sampling zero distill mismatch mtp; do
    run "evidence.lua --exp $e --quick" "$r1lab" run "$s/evidence.lua" --exp "$e" --quick true \
        --stages "$tmp/stages" --out "$tmp/evidence"
done
rows=1,2,3,4,5 # the balance table's rows: routing bias, none, two auxiliary losses, bias again
[ -n "$san" ] && rows=1,3
run "evidence.lua --exp balance --quick --rows $rows" "$r1lab" run "$s/evidence.lua" \
    --exp balance --quick true --rows "$rows" --stages "$tmp/stages" --out "$tmp/evidence"
run "evidence.lua --exp zerobase --zero_plain 0.97 --quick" "$r1lab" run "$s/evidence.lua" \
    --exp zerobase --zero_plain 0.97 --quick true --stages "$tmp/stages" --out "$tmp/evidence"
n=$((n + 1))
if [ -f "$tmp/evidence/zero-base-0.97-2steps-seed1-quick/config.json" ] &&
    grep -q "zero-base-0.97-2steps-seed1-quick).*format" "$tmp/evidence/zerobase.md"; then
    echo "ok $n - the R1-Zero base is pretrained, saved and evaluated"
else
    echo "not ok $n - the R1-Zero base is pretrained, saved and evaluated"
fi
n=$((n + 1))
if [ -f "$tmp/evidence/harder.md" ] && [ -f "$tmp/evidence/sampling.md" ] &&
    [ -f "$tmp/evidence/zero.md" ] && [ -f "$tmp/evidence/lang.md" ] &&
    [ -f "$tmp/evidence/distill.md" ] && grep -q "^| + GRPO |" "$tmp/evidence/harder.md" &&
    grep -q "^| fp8 sampler + routing replay | .* | 0.00% |" "$tmp/evidence/mismatch.md" &&
    grep -q "^| GRPO without it (mtp_lambda 0) | [0-9.]*% " "$tmp/evidence/mtp.md" &&
    [ "$(grep -c "^| routing bias, gamma\|^| none\|^| auxiliary loss" \
        "$tmp/evidence/balance.md")" -eq "$(echo "$rows" | tr ',' '\n' | wc -l)" ]; then
    echo "ok $n - the experiments write their tables"
else
    echo "not ok $n - the experiments write their tables"
fi
n=$((n + 1))
if "$r1lab" run "$s/evidence.lua" --exp nope --stages "$tmp/stages" 2>&1 |
    grep -q "expected harder, sampling, zero, lang, zerobase, distill, mismatch, balance, mtp, family, kl or controls, got nope"; then
    echo "ok $n - an unknown experiment is named"
else
    echo "not ok $n - an unknown experiment is named"
fi
# fidelity.lua --quick: the family, KL and controls experiments for a step, then the claims table
run "fidelity.lua --quick" "$r1lab" run "$s/fidelity.lua" --quick true --stages "$tmp/stages" \
    --out "$tmp/evidence"
n=$((n + 1))
if [ "$(grep -c '^| [A-Z"].* | \(yes\|no\|within the noise\)' "$tmp/evidence/quick/fidelity.md")" \
        -eq 9 ] && [ -f "$tmp/evidence/quick/family.md" ] && [ -f "$tmp/evidence/quick/aha.md" ] &&
    grep -q "^| CISPO | " "$tmp/evidence/quick/family.md" &&
    grep -q "^| R1-Zero base, add 1-3 digits | random | " "$tmp/evidence/quick/controls.md"; then
    echo "ok $n - fidelity.lua writes a verdict for each of its 9 claims"
else
    echo "not ok $n - fidelity.lua writes a verdict for each of its 9 claims"
fi
n=$((n + 1))
if "$r1lab" run "$s/fidelity.lua" --quick true --stages "$tmp/stages" --out "$tmp/evidence" \
    --exp family,klx 2>&1 | grep -q "a list of family, kl and controls, got klx"; then
    echo "ok $n - fidelity.lua names an unknown experiment"
else
    echo "not ok $n - fidelity.lua names an unknown experiment"
fi
# reproduce.lua: its commands are the README's, flag for flag, and a quick sweep writes its table
pairs() { # one command per line -> its "--flag value" pairs, sorted
    sed -e 's/^[^-]*//' -e 's/ --/\n--/g' | sort
}
readme=$(sed -n '/^## Training your own/,/^## Scripting/p' "${top_srcdir:-.}/README.md" |
    sed -e ':a' -e '/\\$/N; s/\\\n *//; ta' | grep '^app/r1lab train --stage \(pretrain\|sft\) ')
n=$((n + 1))
if [ "$(echo "$readme" | head -2 | pairs)" = "$("$r1lab" run "$s/reproduce.lua" --commands true | pairs)" ] &&
    [ "$(echo "$readme" | wc -l)" -eq 2 ]; then
    echo "ok $n - reproduce.lua runs the README's two commands, flag for flag"
else
    echo "not ok $n - reproduce.lua runs the README's two commands, flag for flag"
    echo "# README: $readme" | head -3
fi
if [ -n "$san" ]; then
    skip "reproduce.lua --quick: left to the plain build (its runs: t_cli.sh's r1lab train)"
    skip "its table of every cell: left to the plain build"
    skip "its --collect: left to the plain build"
    rm -rf "$tmp"
    echo "1..$n"
    exit 0
fi
run "reproduce.lua --quick (one seed)" "$r1lab" run "$s/reproduce.lua" --quick true --seeds 1 \
    --kernels env --out "$tmp/reproduce"
n=$((n + 1))
if grep -q '^| 3 | yes | [0-9.]*% | ' "$tmp/reproduce/results.md" &&
    [ -f "$tmp/reproduce/env-seed1/sft/model.safetensors" ]; then
    echo "ok $n - it writes the table of every cell and keeps the run folders"
else
    echo "not ok $n - it writes the table of every cell and keeps the run folders"
fi
n=$((n + 1))
out=$("$r1lab" run "$s/reproduce.lua" --quick true --seeds 1,2 --kernels env --collect true \
    --out "$tmp/reproduce" 2>&1)
if echo "$out" | grep -q "env kernels, seed 2: not finished, left out" &&
    echo "$out" | grep -q "(kept); SFT ... .*(kept)" && [ ! -e "$tmp/reproduce/env-seed2" ] &&
    grep -q "^Pretraining .*: 1 run (.* kernels, seed 1) on " "$tmp/reproduce/results.md"; then
    echo "ok $n - --collect tables the finished runs and trains none"
else
    echo "not ok $n - --collect tables the finished runs and trains none"
    echo "$out" | tail -3 | sed 's/^/# /'
fi
rm -rf "$tmp"
echo "1..$n"
