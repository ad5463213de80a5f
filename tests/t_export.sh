#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# t_export.sh — the front ends of the GGUF export: `r1lab export --gguf` (each dtype, the MTP
# layers kept or left out, its messages for misspelt options, bad values, a folder without a
# tokenizer, a target it cannot write) and Lua's m:save_gguf.  The file's contents are t_gguf's business (and llama.cpp's,
# t_gguf_llama.sh); here only its header and size.
r1lab="${top_builddir:-.}/app/r1lab"
models="${top_srcdir:-.}/models"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }
has() { case "$1" in *"$2"*) echo 0 ;; *) echo 1 ;; esac; }
size() { wc -c <"$1" | tr -d ' '; }

for dt in f32 bf16 f16; do
    out=$("$r1lab" export --gguf "$tmp/m-$dt.gguf" --model "$models/builtin" --dtype "$dt" 2>&1)
    ok $? "export --dtype $dt: $out"
done
[ "$(head -c 4 "$tmp/m-f32.gguf")" = GGUF ] &&
    [ "$(od -An -tu4 -j4 -N4 "$tmp/m-f32.gguf" | tr -d ' ')" = 3 ]
ok $? "the file starts with GGUF version 3"
s32=$(size "$tmp/m-f32.gguf") s16=$(size "$tmp/m-bf16.gguf") h16=$(size "$tmp/m-f16.gguf")
[ "$s16" = "$h16" ] && [ $((s16 * 2)) -gt "$s32" ] && [ $((s16 * 2 - s32)) -lt $((s32 / 50)) ]
ok $? "bf16 and f16 are the same size, about half of f32 ($s16, $h16, $s32 bytes)"

out=$("$r1lab" export --gguf "$tmp/m-nomtp.gguf" --model "$models/builtin" --mtp no 2>&1)
ok $? "export --mtp no: $out"
grep -q 'blk\.6\.nextn\.eh_proj' "$tmp/m-f32.gguf" && ! grep -q 'nextn' "$tmp/m-nomtp.gguf" &&
    ! grep -q 'blk\.6\.' "$tmp/m-nomtp.gguf" && grep -q 'blk\.5\.ffn_down_exps' "$tmp/m-nomtp.gguf" &&
    [ "$(size "$tmp/m-nomtp.gguf")" -lt "$s32" ]
ok $? "with --mtp no the MTP layer (blk.6) and its nextn tensors are left out, the main layers kept"
out=$("$r1lab" export --gguf "$tmp/x.gguf" --model "$models/builtin" --mtp maybe 2>&1)
[ $? -eq 2 ] && [ "$(has "$out" "--mtp expects yes or no, got 'maybe'")" = 0 ] && [ ! -e "$tmp/x.gguf" ]
ok $? "a bad --mtp value: $out"
out=$("$r1lab" export --gguff "$tmp/x.gguf" --model "$models/builtin" 2>&1)
[ $? -eq 2 ] && [ "$(has "$out" "unknown option '--gguff' (did you mean --gguf?)")" = 0 ]
ok $? "a misspelt option names the one it resembles: $out"
out=$("$r1lab" export --gguf "$tmp/x.gguf" --model "$models/builtin" --dtype q4 2>&1)
[ $? -eq 2 ] && [ "$(has "$out" "--dtype expects f32, bf16 or f16, got 'q4'")" = 0 ]
ok $? "a bad dtype: $out"
out=$("$r1lab" export --gguf "$tmp/x.gguf" 2>&1)
[ $? -eq 2 ] && [ "$(has "$out" "usage: r1lab export --gguf OUT.gguf --model DIR")" = 0 ]
ok $? "no model: the usage"
out=$("$r1lab" export --help 2>&1)
[ $? -eq 0 ] && [ "$(has "$out" "--dtype f32|bf16|f16")" = 0 ]
ok $? "export --help lists the options"
"$r1lab" init --config tiny --out "$tmp/notok" >/dev/null 2>&1 && rm "$tmp/notok/tokenizer.json"
out=$("$r1lab" export --gguf "$tmp/x.gguf" --model "$tmp/notok" 2>&1)
[ $? -eq 1 ] && [ "$(has "$out" "notok/tokenizer.json: not found")" = 0 ] && [ ! -e "$tmp/x.gguf" ]
ok $? "a folder without its tokenizer: named, nothing written: $out"
mkdir "$tmp/dir.gguf"
out=$("$r1lab" export --gguf "$tmp/dir.gguf" --model "$models/builtin" 2>&1)
[ $? -eq 1 ] && [ "$(has "$out" "dir.gguf: a folder, not a file")" = 0 ]
ok $? "a folder as the target is refused: $out"
[ -z "$(ls "$tmp" | grep '\.tmp\.')" ]
ok $? "no temporary file is left behind"

cat >"$tmp/t.lua" <<EOF
local r1 = require "r1"
local m = r1.load("$models/builtin")
assert(m:save_gguf("$tmp/lua.gguf", {dtype = "bf16"}) == m)
m:save_gguf("$tmp/lua-nomtp.gguf", {mtp = false})
local okk, err = pcall(m.save_gguf, m, "$tmp/y.gguf", {dtype = "q8"})
print(okk, err)
local t = r1.init({preset = "tiny", vocab_size = 200}, {seed = 1}) -- no tokenizer fits
print(pcall(t.save_gguf, t, "$tmp/z.gguf"))
EOF
out=$("$r1lab" run "$tmp/t.lua" 2>&1)
ok $? "m:save_gguf runs: $(echo "$out" | tr '\n' '|')"
cmp -s "$tmp/lua.gguf" "$tmp/m-bf16.gguf"
ok $? "m:save_gguf writes what r1lab export writes"
cmp -s "$tmp/lua-nomtp.gguf" "$tmp/m-nomtp.gguf"
ok $? "... and with mtp = false what --mtp no writes"
ok $(has "$out" 'm:save_gguf: dtype expects "f32", "bf16" or "f16", got "q8"') \
    "... names a bad dtype"
ok $(has "$out" 'm:save_gguf: the model has no tokenizer') "... and a model without a tokenizer"
echo "1..$n"
