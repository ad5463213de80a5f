#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# t_gguf_llama.sh — r1lab's GGUF export run by llama.cpp itself: the built-in model (MoE, MLA,
# MTP) and its distilled dense student are exported with `r1lab export --gguf` and llama.cpp's
# greedy decode of prompts in the chat format must be r1lab's, token for token.  Each model is
# exported twice: with its MTP layers (blk.L.nextn.*) and without (--mtp no, the main model as
# llama.cpp's own converter writes it).  A llama.cpp whose deepseek2 predates the nextn tensors
# refuses the first file ("wrong number of tensors"): those checks are then skipped by name.
# F32 files must give r1lab's text exactly.  A BF16 file may part from it only at a near tie:
# llama.cpp rounds the activations to BF16 before each product, r1lab keeps them fp32, so where
# r1lab's greedy token has probability below 0.6 the two may pick differently; the probability
# at the first differing token is read from r1lab's --trace and printed.
#
# Runs when llama.cpp's llama-simple (or llama-completion, the old llama-cli) is on PATH, else
# skips as a whole.  The vocabulary is one token per character plus special tokens that both
# programs print as their text, and r1lab reads a special token's text as that token, so equal
# text is equal tokens; where llama-tokenize is on PATH the prompt's ids are compared too.
# Checked by hand with llama.cpp 34af94cd9ab2 (August 2026) and with 0253fb21f (May 2026, which
# refuses the MTP layers) (README, "Running an r1lab model in llama.cpp").
r1lab="${top_builddir:-.}/app/r1lab"
models="${top_srcdir:-.}/models"
if command -v llama-simple >/dev/null 2>&1; then
    llama=llama-simple
elif command -v llama-completion >/dev/null 2>&1; then
    llama=llama-completion
else
    echo "1..0 # SKIP no llama.cpp binary on PATH (llama-simple or llama-completion)"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
ok() {
    n=$((n + 1))
    if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; return 1; fi
}

# llama.cpp's greedy continuation of prompt text $2 with model file $1, 200 tokens at most,
# printed as text; llama-simple echoes the prompt, so it is cut off here
greedy() {
    if [ "$llama" = llama-simple ]; then
        out=$("$llama" -m "$1" -n 200 "$2" 2>"$tmp/llama.err")
    else # prints special tokens with -sp, the end of text too, and then says so
        out=$("$llama" -m "$1" -p "$2" -n 200 --temp 0 --top-k 1 -no-cnv --no-display-prompt \
            --no-warmup -sp -t 1 </dev/null 2>"$tmp/llama.err")
    fi
    rc=$?
    out="${out%" [end of text]"}"
    out="${out%"<|eos|>"}"
    printf '%s' "${out#"$2"}"
    return $rc
}

# The probability r1lab's greedy decode (trace $1, JSON lines) gave the token holding the first
# character where texts $2 and $3 differ (awk; the vocabulary is ASCII characters and special
# tokens, whose texts the trace escapes as JSON strings).
prob_at_split() {
    awk -v a="$2" -v b="$3" 'BEGIN {
        for (i = 1; i <= length(a) && substr(a, i, 1) == substr(b, i, 1); i++) ;
        split_at = i - 1; at = 0 }
    {
        t = $0; sub(/.*"text":"/, "", t); sub(/","logprob".*/, "", t)
        gsub(/\\n/, "\n", t); gsub(/\\t/, "\t", t); gsub(/\\"/, "\"", t); gsub(/\\\\/, "\\", t)
        lp = $0; sub(/.*"logprob":/, "", lp); sub(/,.*/, "", lp)
        if (at + length(t) > split_at) { printf "%.3f", exp(lp); exit }
        at += length(t)
    }' "$1"
}

echo "# with $(command -v "$llama")"
for model in builtin builtin-student; do
    for mtp in yes no; do
        for dtype in f32 bf16; do
            gguf="$tmp/$model-$dtype-$mtp.gguf"
            out=$("$r1lab" export --gguf "$gguf" --model "$models/$model" --dtype "$dtype" \
                --mtp "$mtp" 2>&1)
            ok $? "r1lab export --gguf $model --dtype $dtype --mtp $mtp: $out"
            for q in "What is 347 + 499?" "What is 12 * 7?" "Is (true and not false) or false?"; do
                p="<|bos|><|user|>$q<|assistant|><think>"
                what="$model $dtype (MTP layers: $mtp): llama.cpp's greedy tokens for \"$q\""
                want=$("$r1lab" generate --model "$models/$model" --prompt "$q" --max-tokens 200 \
                    --trace "$tmp/trace.jsonl" 2>/dev/null)
                got=$(greedy "$gguf" "$p")
                rc=$?
                if [ $rc -ne 0 ] && [ "$mtp" = yes ] &&
                    grep -q 'wrong number of tensors' "$tmp/llama.err"; then
                    n=$((n + 1))
                    echo "ok $n - $what # SKIP this llama.cpp's deepseek2 does not load nextn tensors"
                    continue
                fi
                if [ $rc -eq 0 ] && [ -n "$want" ] && [ "$got" != "$want" ] && [ "$dtype" = bf16 ]
                then
                    pr=$(prob_at_split "$tmp/trace.jsonl" "$want" "$got")
                    if awk -v p="${pr:-1}" 'BEGIN { exit !(p < 0.6) }'; then
                        ok 0 "$what are r1lab's up to a near tie (r1lab's token there: p = $pr)"
                        continue
                    fi
                fi
                [ $rc -eq 0 ] && [ -n "$want" ] && [ "$got" = "$want" ]
                if ! ok $? "$what are r1lab's"; then
                    echo "#   r1lab: $(echo "$want" | head -c 300 | tr '\n' '|')"
                    echo "#   llama: $(echo "$got" | head -c 300 | tr '\n' '|') (exit $rc)"
                    tail -3 "$tmp/llama.err" | sed 's/^/#   /'
                fi
            done
        done
    done
done

if command -v llama-tokenize >/dev/null 2>&1; then
    q="What is 347 + 499?"
    cat >"$tmp/ids.lua" <<EOF
local r1 = require "r1"
local ids = r1.tokenizer("$models/builtin"):encode(arg[1], {chat = true})
print("[" .. table.concat(ids, ", ") .. "]")
EOF
    want=$("$r1lab" run "$tmp/ids.lua" "$q")
    got=$(llama-tokenize -m "$tmp/builtin-f32-no.gguf" -p "<|bos|><|user|>$q<|assistant|><think>" \
        --ids --log-disable 2>/dev/null | tail -1)
    [ -n "$want" ] && [ "$got" = "$want" ]
    ok $? "llama-tokenize gives the prompt r1lab's ids: $got"
fi
echo "1..$n"
