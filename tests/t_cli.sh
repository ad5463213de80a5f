#!/bin/sh
# t_cli.sh — the model subcommands of r1lab: init writes a loadable checkpoint, forward
# reproduces the PyTorch fixture's loss and writes the documented tensors, bad input gets a
# one-line message and a non-zero exit.
r1lab="${top_builddir:-.}/app/r1lab"
data="${top_srcdir:-.}/tests/data"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }
has() { case "$1" in *"$2"*) echo 0 ;; *) echo 1 ;; esac; }

out=$("$r1lab" --version 2>&1)
[ $? -eq 0 ] && [ -n "$(echo "$out" | grep '^r1lab [0-9.]* (libr1 [0-9.]*)$')" ] && \
    [ -n "$(echo "$out" | grep '^on .*; OpenBLAS [0-9.]*, [A-Za-z0-9]* kernels; kernels ')" ] && \
    [ -n "$(echo "$out" | grep '^kernel paths: amx (.*), avx512bf16 (.*), avx2 (.*), portable (.*)')" ]
ok $? "--version names the version, the machine and the kernel paths ($(echo "$out" | tail -1))"
out=$(R1_ISA=portable "$r1lab" --version 2>&1)
ok $(has "$out" "portable (in use)") "R1_ISA=portable lowers the kernel path"
out=$(R1_ISA=avx9 "$r1lab" --version 2>&1)
[ $? -eq 2 ] && [ "$(has "$out" "R1_ISA=avx9: expected one of amx, avx512bf16, avx2, portable")" = 0 ]
ok $? "a misspelt R1_ISA is refused, naming the choices: $out"
if ! grep -qw amx_bf16 /proc/cpuinfo; then
    out=$(R1_ISA=amx "$r1lab" --version 2>&1)
    [ $? -eq 0 ] && [ "$(has "$out" "R1_ISA=amx: this CPU does not have it; using")" = 0 ]
    ok $? "R1_ISA=amx on a CPU without AMX: a warning and the best path ($(echo "$out" | head -1))"
else
    echo "ok $((n = n + 1)) # SKIP this CPU has AMX: R1_ISA=amx is not refused here"
fi
out=$("$r1lab" init --config tiny --out "$tmp/tiny" --seed 5 2>&1)
ok $? "init --config tiny succeeds"
ok $(has "$out" "parameters, seed 5") "init reports the parameter count"
[ -f "$tmp/tiny/config.json" ] && [ -f "$tmp/tiny/model.safetensors" ]
ok $? "init writes config.json and model.safetensors"
ok $(has "$(cat "$tmp/tiny/config.json")" '"model_type": "deepseek_v3"') "a deepseek_v3 config"
ok $(has "$(head -c 100000 "$tmp/tiny/model.safetensors" | tr -d '\0')" \
    'model.layers.6.shared_head.head.weight') "the MTP copy of the head is written"

# the fixture's tokens are in expected.safetensors; the same row through the CLI
toks="$("$r1lab" forward --model "$tmp/tiny" --tokens "1 2 3 4 5;6 7 8 9 10" \
    --out "$tmp/out.safetensors" --grads "$tmp/g.safetensors" 2>&1)"
ok $? "forward on the random tiny model"
hdr=$(head -c 20000 "$tmp/out.safetensors" | tr -d '\0')
for t in '"logits"' '"mtp_logits"' '"loss"' '"routing.1.experts"' '"routing.6.weights"'; do
    ok $(has "$hdr" "$t") "forward output holds $t"
done
ok $(has "$hdr" '"logits":{"dtype":"F32","shape":[2,5,128]') "logits are F32 [B,T,V]"
ok $(has "$(head -c 60000 "$tmp/g.safetensors" | tr -d '\0')" '"model.layers.3.mlp.experts.15.down_proj.weight"') \
    "gradients are stored under the HF names"

# the committed PyTorch fixture: tiny_moe's tokens, loss 5.456339 (tests/ref/)
out=$("$r1lab" forward --model "$data/tiny_moe" --tokens "$(cat "$data/tiny_moe/tokens.txt")" \
    --out "$tmp/f.safetensors" 2>&1)
ok $(has "$out" "loss 5.45633") "forward reproduces the PyTorch loss of tiny_moe ($out)"

out=$("$r1lab" forward --model "$data/tiny_moe" --tokens "1 2;3" --out "$tmp/x" 2>&1)
[ $? -ne 0 ] && [ -n "$(echo "$out" | grep 'row 2 has 1 tokens')" ]
ok $? "ragged token rows are refused with the row named"
out=$("$r1lab" forward --model "$data/tiny_moe" --tokens "1 99" --out "$tmp/x" 2>&1)
[ $? -ne 0 ] && [ -n "$(echo "$out" | grep 'token 1 of row 0 is 99')" ]
ok $? "an out-of-range token is refused with its position"
out=$("$r1lab" forward --model "$tmp/nowhere" --tokens "1" --out "$tmp/x" 2>&1)
[ $? -ne 0 ] && [ -n "$(echo "$out" | grep 'nowhere/config.json')" ]
ok $? "a missing model folder names the file"
out=$("$r1lab" init --config "$tmp/nothing.json" --out "$tmp/y" 2>&1)
[ $? -ne 0 ] && [ -n "$(echo "$out" | grep 'nothing.json')" ]
ok $? "a missing config file is named"
out=$("$r1lab" init --config tiny --out "$tmp/y" --seed abc 2>&1)
[ $? -eq 2 ] && [ -n "$(echo "$out" | grep 'seed')" ]
ok $? "a bad --seed is a usage error"
# generate: streams ids, writes a JSONL trace with routing, refuses bad input
out=$("$r1lab" generate --model "$data/tiny_moe" --tokens "1 2 3" --max-tokens 12 \
    --trace "$tmp/t.jsonl" 2>/dev/null)
ok $? "generate runs"
[ "$(echo $out | wc -w)" -eq 12 ]
ok $? "generate streams 12 tokens"
[ "$(wc -l < "$tmp/t.jsonl")" -eq 12 ]
ok $? "the trace has one line per token"
ok $(has "$(head -1 "$tmp/t.jsonl")" '{"pos":3,"token":') "a trace line starts with pos and token"
ok $(has "$(head -1 "$tmp/t.jsonl")" '"routing":[{"layer":1,"experts":[') "and carries the routing"
out2=$("$r1lab" generate --model "$data/tiny_moe" --tokens "1 2 3" --max-tokens 12 --speculative 2>&1)
ok $(has "$out2" "$out") "speculative greedy prints the same tokens"
ok $(has "$out2" "MTP drafts accepted") "and reports the acceptance"
out=$("$r1lab" generate --model "$data/tiny_dense" --tokens "1 2" --speculative 2>&1)
[ $? -eq 1 ] && [ -n "$(echo "$out" | grep 'needs an MTP module')" ]
ok $? "speculation without MTP is refused"
out=$("$r1lab" generate --model "$data/tiny_moe" --tokens "1 2" --max-tokens 63 2>&1)
[ $? -eq 1 ] && [ -n "$(echo "$out" | grep 'max_position_embeddings (64)')" ]
ok $? "max tokens past max_position_embeddings is refused"
out=$("$r1lab" generate --model "$data/tiny_moe" --tokens "" 2>&1)
[ $? -eq 1 ] && [ -n "$(echo "$out" | grep 'prompt 0 is empty')" ]
ok $? "an empty prompt is refused"
out=$("$r1lab" generate --model "$data/tiny_moe" --tokens "1" --top-p 2 2>&1)
[ $? -eq 2 ] && [ -n "$(echo "$out" | grep 'top-p expects')" ]
ok $? "a bad option value is a usage error"
# FP8: a checkpoint in DeepSeek-V3's layout, generation with FP8 weights and their memory
out=$("$r1lab" init --config tiny --out "$tmp/tiny8" --seed 5 --dtype fp8 2>&1)
ok $? "init --dtype fp8 succeeds"
ok $(has "$(cat "$tmp/tiny8/config.json")" '"quant_method": "fp8"') "its config has quantization_config"
hdr=$(head -c 200000 "$tmp/tiny8/model.safetensors" | tr -d '\0')
ok $(has "$hdr" '"model.layers.0.mlp.gate_proj.weight":{"dtype":"F8_E4M3","shape":[512,192]') \
    "linear weights are F8_E4M3"
ok $(has "$hdr" '"model.layers.0.mlp.gate_proj.weight_scale_inv":{"dtype":"F32","shape":[4,2]') \
    "with one F32 weight_scale_inv per 128x128 block"
out=$("$r1lab" generate --model "$tmp/tiny8" --tokens "1 2 3" --max-tokens 8 --weights fp8 2>&1)
ok $? "generate --weights fp8 runs on the FP8 checkpoint"
ok $(has "$out" "fp8 weights") "and reports the FP8 weights' memory ($(echo "$out" | tail -1))"
out=$("$r1lab" generate --model "$tmp/tiny8" --tokens "1 2" --weights fp4 2>&1)
[ $? -eq 2 ] && [ -n "$(echo "$out" | grep 'fp32, bf16 or fp8')" ]
ok $? "an unknown --weights is a usage error"
# generate --prompt: text in the chat format on every model folder with a tokenizer.json
src="${top_srcdir:-.}"
out=$("$r1lab" generate --model "$src/models/builtin" --prompt "What is 457+389?" 2>/dev/null)
ok $? "generate --prompt runs on the built-in model"
ok $(has "$out" "</think><answer>846</answer>") "and answers 457+389 in the chat format ($out)"
ok $(has "$out" "<|eos|>" | sed 's/0/x/;s/1/0/;s/x/1/') "the end-of-sequence token is not printed"
out=$("$r1lab" generate --model "$src/models/builtin-student" --prompt "What is 2+3?" \
    --max-tokens 40 --trace "$tmp/p.jsonl" 2>&1)
ok $? "generate --prompt runs on the built-in student"
ok $(has "$(head -1 "$tmp/p.jsonl")" '"text":"') "its trace carries the token texts"
[ -f "$tmp/tiny/tokenizer.json" ] && "$r1lab" generate --model "$tmp/tiny" --prompt "1+1" \
    --max-tokens 5 >/dev/null 2>&1
ok $? "generate --prompt runs on a model made by init (it has a tokenizer.json)"
out=$("$r1lab" generate --model "$data/tiny_moe" --prompt "hi" 2>&1)
[ $? -eq 1 ] && [ -n "$(echo "$out" | grep 'tiny_moe/tokenizer.json: not found')" ]
ok $? "--prompt without a tokenizer.json names the file and exits 1"
out=$("$r1lab" generate --model "$src/models/builtin" --prompt "Is 4€7 ok?" 2>&1)
[ $? -eq 1 ] && [ -n "$(echo "$out" | grep 'byte 4')" ]
ok $? "a prompt character outside the vocabulary is named with its position ($out)"
mkdir -p "$tmp/wrongtok" && cp "$data/tiny_moe/config.json" "$data/tiny_moe/model.safetensors" \
    "$tmp/wrongtok/" && cp "$src/models/builtin/tokenizer.json" "$tmp/wrongtok/"
out=$("$r1lab" generate --model "$tmp/wrongtok" --prompt "1+1" 2>&1)
[ $? -eq 1 ] && [ -n "$(echo "$out" | grep "more than the model's vocab_size")" ]
ok $? "a tokenizer larger than the model's vocabulary is refused ($out)"
out=$("$r1lab" generate --model "$src/models/builtin" --prompt "1+1" --tokens "1 2" 2>&1)
[ $? -eq 2 ] && [ -n "$(echo "$out" | grep 'usage')" ]
ok $? "--prompt and --tokens together are a usage error"
out=$("$r1lab" generate --model "$src/models/builtin" --prompt "1+1" --max-tokns 5 2>&1)
[ $? -eq 2 ] && [ -n "$(echo "$out" | grep "unknown option '--max-tokns'")" ]
ok $? "a misspelt option is refused, named, exit 2"
# train --stage grpo: a run folder, and --resume continues exactly
grpo="--stage grpo --model $src/models/builtin --tasks add:1 --group 4 --prompts 2 --max-new 40"
out=$("$r1lab" train $grpo --out "$tmp/g1" --steps 4 --threads 1 2>&1)
ok $? "train --stage grpo runs ($(echo "$out" | tail -1))"
[ -f "$tmp/g1/checkpoint/trainer_state.json" ] && [ -f "$tmp/g1/model.safetensors" ] && \
    [ -f "$tmp/g1/checkpoint/tokenizer.json" ] && [ "$(wc -l < "$tmp/g1/metrics.jsonl")" -eq 4 ]
ok $? "it writes the checkpoint (with the tokenizer), the model and 4 metrics lines"
line=$(sed -n 4p "$tmp/g1/metrics.jsonl")
for k in reward reward_std rewards/accuracy/mean rewards/format/std frac_reward_zero_std \
         completions/mean_length completions/clipped_ratio clip_ratio/region_mean \
         learning_rate sampling/sampling_logp_difference/mean route_flip_mean maxvio_mean; do
    case $line in *"\"$k\":"*) ;; *) echo "# no key $k in: $line"; false ;; esac || break
done
ok $? "the metrics carry TRL's names (reward, rewards/NAME/mean, completions/clipped_ratio...)"
ok $(has "$out" "grpo step 4/4  reward") "with a progress line per step"
ok $(has "$out" "OpenBLAS ") "the header names the machine: $(echo "$out" | sed -n 2p)"
st=$(sed -n '/"machine"/,/}/p' "$tmp/g1/checkpoint/trainer_state.json")
[ -n "$(echo "$st" | grep -E '"cpu": "[^"]+"')" ] && [ -n "$(echo "$st" | grep -E '"isa": ')" ] && \
    [ -n "$(echo "$st" | grep -E '"blas": "OpenBLAS [0-9.]+, [A-Za-z0-9]+ kernels"')" ] && \
    [ -n "$(echo "$st" | grep -E '"kernels": "[a-z0-9-]+"')" ] && [ -n "$(echo "$st" | grep '"threads": 1')" ]
ok $? "and the run folder records it (trainer_state.json: machine)"
"$r1lab" generate --model "$tmp/g1" --prompt "What is 2+3?" --max-tokens 8 >/dev/null 2>&1
ok $? "the run folder is a model folder generate reads"
# stopped by Ctrl-C after a step, then resumed: the same metrics as the run above
# ctrl_c_when CONDITION... : Ctrl-C to the last background job once CONDITION holds (30 s at
# most); rc gets its exit status
ctrl_c_when() {
    i=0
    while [ $i -lt 600 ] && ! "$@"; do sleep 0.05; i=$((i + 1)); done
    kill -INT $pid
    wait $pid
    rc=$?
}
"$r1lab" train $grpo --out "$tmp/g2" --steps 4 --threads 1 > "$tmp/g2.log" 2>&1 &
pid=$!
ctrl_c_when test -s "$tmp/g2/metrics.jsonl"
k=$(wc -l < "$tmp/g2/metrics.jsonl")
[ $rc -eq 130 ] && [ "$k" -lt 4 ] && grep -q "r1lab train --out $tmp/g2 --resume" "$tmp/g2.log"
ok $? "Ctrl-C stops after the current step ($k of 4 done), exit 130, and says how to resume"
"$r1lab" train --out "$tmp/g2" --resume --threads 1 > "$tmp/g2r.log" 2>&1
ok $? "--resume finishes the run ($(tail -1 "$tmp/g2r.log"))"
strip() { sed -E 's/"(t_sample|t_score|t_train|tokens_per_s|gen_tokens_per_s|elapsed)":[^,}]*,?//g' "$1"; }
[ "$(strip "$tmp/g1/metrics.jsonl")" = "$(strip "$tmp/g2/metrics.jsonl")" ]
ok $? "the resumed run's metrics equal the uninterrupted run's (timings aside)"
cmp -s "$tmp/g1/model.safetensors" "$tmp/g2/model.safetensors"
ok $? "and so does the model, bit for bit"
out=$("$r1lab" train $grpo --out "$tmp/g1" --steps 4 2>&1)
[ $? -eq 1 ] && [ -n "$(echo "$out" | grep 'holds a run already')" ]
ok $? "a folder holding a run is not overwritten"
# a FIFO where the weights should be: refused at once, never a blocked open (the probe's L6)
mkdir -p "$tmp/fifo"
cp "$src/models/builtin/config.json" "$tmp/fifo/"
mkfifo "$tmp/fifo/model.safetensors"
out=$(timeout 20 "$r1lab" forward --model "$tmp/fifo" --tokens "1 2" --out "$tmp/f.st" 2>&1)
[ $? -eq 1 ] && [ -n "$(echo "$out" | grep 'model.safetensors: not a regular file')" ]
ok $? "a FIFO as model.safetensors is refused by name ($out)"
# the plain REPL reads lines of any length (the probe's L7: 64 KB lines were split)
out=$(python3 -c "print('x = \"' + 'a' * 70000 + '\"'); print('print(#x)')" | "$r1lab" 2>&1)
[ "$out" = "70000" ]
ok $? "a 70000-character line reaches Lua whole ($(echo "$out" | head -c 80))"
# one settings table per stage: typos, ranges, help, deprecated spellings
out=$("$r1lab" train --stage sft --model tiny --out "$tmp/x" --stpes 5 2>&1)
[ $? -eq 2 ] && [ -n "$(echo "$out" | grep "unknown option 'stpes' for r1lab train --stage sft (did you mean 'steps'?)")" ]
ok $? "a misspelt setting is refused with a suggestion ($out)"
out=$("$r1lab" train --stage grpo --model tiny --out "$tmp/x" --prompts 1000000 2>&1)
[ $? -eq 2 ] && [ -n "$(echo "$out" | grep "prompts expects an integer in 1..4096")" ]
ok $? "a value outside the range is refused with the range ($out)"
out=$("$r1lab" train --stage grpo --help 2>&1)
[ $? -eq 0 ] && [ -n "$(echo "$out" | grep -- '--dynamic-sampling')" ] && \
    [ -n "$(echo "$out" | grep -- '--eps-high')" ]
ok $? "train --stage grpo --help prints the settings table"
# the GRPO family under TRL's names, on the command line as in Lua
out=$("$r1lab" train --stage grpo --help 2>&1)
fam=1
for o in loss-type importance-sampling-level top-entropy-quantile entropy-coef \
    multi-objective-aggregation off-policy-mask-threshold use-bias-correction-kl \
    sync-ref-model ref-model-sync-steps ref-model-mixup-alpha; do
    echo "$out" | grep -q -- "--$o " || { fam=0; echo "# no --$o in the help"; }
done
ok $((1 - fam)) "every option of the GRPO family is in --help"
out=$("$r1lab" train --stage grpo --model tiny --out "$tmp/x" --loss-type gspo 2>&1)
[ $? -eq 2 ] && [ -n "$(echo "$out" | grep "loss_type expects one of grpo|dapo|dr_grpo|cispo, got 'gspo'")" ]
ok $? "an unknown loss_type names the choices ($out)"
out=$("$r1lab" train --stage grpo --model tiny --out "$tmp/x" --rewards accuracy,overlong:max=0 2>&1)
[ $? -eq 2 ] && [ -n "$(echo "$out" | grep "overlong's settings are max=L and cache=C")" ]
ok $? "overlong's lengths are checked ($out)"
out=$("$r1lab" train --stage grpo --model "$src/models/builtin" --out "$tmp/fam" --tasks add:1 \
    --group 4 --prompts 2 --max-new 40 --steps 1 --threads 1 --loss-type cispo --eps-high 5 \
    --importance-sampling-level sequence --top-entropy-quantile 0.5 \
    --rewards accuracy,overlong:max=40:cache=10,random 2>&1)
[ $? -eq 0 ] && grep -q '"entropy_kept"' "$tmp/fam/metrics.jsonl" &&
    grep -q '"rewards/overlong/mean"' "$tmp/fam/metrics.jsonl" &&
    grep -q '"loss_type": *"cispo"' "$tmp/fam/checkpoint/trainer_state.json"
ok $? "a GRPO run with the family's options and rewards, kept in its checkpoint ($(echo "$out" | tail -1))"
for st in pretrain sft grpo reject distill; do
    out=$("$r1lab" train --stage $st --help 2>&1)
    n_help=$(echo "$out" | grep -c '^  --')
    [ "$n_help" -ge 5 ]
    ok $? "--stage $st --help lists its $n_help settings"
done
n_help=$("$r1lab" eval --help 2>&1 | grep -c '^  --')
[ "$n_help" -ge 5 ]
ok $? "r1lab eval --help lists its $n_help settings"
# rejection sampling, distillation and evaluation from the command line
out=$("$r1lab" train --stage reject --model "$src/models/builtin" --out "$tmp/rs.jsonl" \
    --tasks add:1-2 --prompts 4 --k 4 --threads 1 2>&1)
ok $? "train --stage reject runs ($(echo "$out" | tail -1))"
[ -s "$tmp/rs.jsonl" ] && grep -q '"completion":' "$tmp/rs.jsonl"
ok $? "it writes the kept samples as JSONL"
out=$("$r1lab" train --stage distill --model "$src/models/builtin-student" --teacher \
    "$src/models/builtin" --data "$tmp/rs.jsonl" --out "$tmp/dst" --steps 2 --batch 2 \
    --threads 1 2>&1)
ok $? "train --stage distill runs ($(echo "$out" | tail -1))"
[ "$(wc -l < "$tmp/dst/metrics.jsonl")" -eq 2 ] && [ -f "$tmp/dst/model.safetensors" ] && \
    [ -n "$(echo "$out" | grep 'kd 0.5')" ]
ok $? "it writes the student and its metrics, kd 0.5 with a teacher"
# both resume after Ctrl-C into what an uninterrupted run gives
rj="--stage reject --model $src/models/builtin --tasks add:1-2 --prompts 8 --batch-prompts 2 --k 4 --threads 1"
"$r1lab" train $rj --out "$tmp/rj1.jsonl" > /dev/null 2>&1
"$r1lab" train $rj --out "$tmp/rj2.jsonl" > "$tmp/rj2.log" 2>&1 &
pid=$!
ctrl_c_when grep -q "reject: 2/8" "$tmp/rj2.log"
[ $rc -eq 130 ] && [ ! -e "$tmp/rj2.jsonl" ] && [ -e "$tmp/rj2.jsonl.part.json" ] && \
    grep -q "r1lab train --out $tmp/rj2.jsonl --resume" "$tmp/rj2.log"
ok $? "Ctrl-C stops rejection sampling after a batch, exit 130, and says how to resume"
out=$("$r1lab" train --out "$tmp/rj2.jsonl" --resume --threads 1 2>&1)
ok $? "--resume finishes it ($(echo "$out" | tail -1))"
cmp -s "$tmp/rj1.jsonl" "$tmp/rj2.jsonl" && [ ! -e "$tmp/rj2.jsonl.part" ]
ok $? "into the same file as the run that never stopped, byte for byte"
ds="--stage distill --model $src/models/builtin-student --data $tmp/rs.jsonl --steps 6 --batch 2 --save-every 2 --threads 1"
"$r1lab" train $ds --out "$tmp/ds1" > /dev/null 2>&1
"$r1lab" train $ds --out "$tmp/ds2" > "$tmp/ds2.log" 2>&1 &
pid=$!
ctrl_c_when test -s "$tmp/ds2/metrics.jsonl"
[ $rc -eq 130 ] && grep -q "r1lab train --out $tmp/ds2 --resume" "$tmp/ds2.log"
ok $? "Ctrl-C stops distillation after a step with a checkpoint, exit 130"
out=$("$r1lab" train --out "$tmp/ds2" --resume --log-every 1 2>&1)
ok $? "--resume finishes it, with the run's own thread count ($(echo "$out" | tail -1))"
dstrip() { sed -E 's/"(tokens_per_s|elapsed)":[^,}]*,?//g' "$1"; }
[ "$(dstrip "$tmp/ds1/metrics.jsonl")" = "$(dstrip "$tmp/ds2/metrics.jsonl")" ] && \
    cmp -s "$tmp/ds1/model.safetensors" "$tmp/ds2/model.safetensors"
ok $? "with the metrics and the student of the run that never stopped"
"$r1lab" train $ds --out "$tmp/ds3" > "$tmp/ds3.log" 2>&1 &
pid=$!
ctrl_c_when test -s "$tmp/ds3/metrics.jsonl"
out=$("$r1lab" train --out "$tmp/ds3" --resume --threads 2 2>&1)
[ $rc -eq 130 ] && [ "$(dstrip "$tmp/ds1/metrics.jsonl")" = "$(dstrip "$tmp/ds3/metrics.jsonl")" ] && \
    cmp -s "$tmp/ds1/model.safetensors" "$tmp/ds3/model.safetensors"
ok $? "a run of 1 thread resumed on 2 ends with the same metrics and student, to the bit"
# the same command twice, and on another thread count: the same run to the bit
pt="--stage pretrain --model tiny --tasks add:1-2 --steps 3 --batch 4 --seq-len 96 --eval-every 0"
"$r1lab" train $pt --out "$tmp/pt1" --threads 2 > /dev/null 2>&1 &&
    "$r1lab" train $pt --out "$tmp/pt2" --threads 2 > /dev/null 2>&1 &&
    "$r1lab" train $pt --out "$tmp/pt3" --threads 1 > /dev/null 2>&1
ok $? "three short pretraining runs"
[ "$(dstrip "$tmp/pt1/metrics.jsonl")" = "$(dstrip "$tmp/pt2/metrics.jsonl")" ] && \
    cmp -s "$tmp/pt1/model.safetensors" "$tmp/pt2/model.safetensors"
ok $? "two fresh runs of the same command write the same metrics and model, to the bit"
[ "$(dstrip "$tmp/pt1/metrics.jsonl")" = "$(dstrip "$tmp/pt3/metrics.jsonl")" ] && \
    cmp -s "$tmp/pt1/model.safetensors" "$tmp/pt3/model.safetensors"
ok $? "and so does the same command on 1 thread instead of 2"
# where r1lab's fp32 GEMM runs training's products, OpenBLAS's kernels no longer enter them:
# the run under another OPENBLAS_CORETYPE is the same to the bit
if "$r1lab" --version | grep -q "^fp32 products: r1lab"; then
    for k in Haswell SkylakeX; do
        OPENBLAS_CORETYPE=$k "$r1lab" train $pt --out "$tmp/pt_$k" --threads 2 > /dev/null 2>&1
    done
    [ "$(dstrip "$tmp/pt_Haswell/metrics.jsonl")" = "$(dstrip "$tmp/pt1/metrics.jsonl")" ] && \
        cmp -s "$tmp/pt_Haswell/model.safetensors" "$tmp/pt1/model.safetensors" && \
        cmp -s "$tmp/pt_SkylakeX/model.safetensors" "$tmp/pt1/model.safetensors"
    ok $? "on r1lab's fp32 GEMM the run is the same under OPENBLAS_CORETYPE=Haswell and SkylakeX"
else
    echo "ok $((n = n + 1)) # SKIP OpenBLAS runs fp32 products on this path: its kernels set the bits"
fi
out=$("$r1lab" train --stage distill --model tiny --out "$tmp/dst2" 2>&1)
[ $? -eq 1 ] && [ -n "$(echo "$out" | grep 'needs --data')" ]
ok $? "distill without --data says what it needs"
out=$("$r1lab" eval --model "$src/models/builtin" --tasks add:1-2 --n 4 --trained add:1 2>&1)
ok $? "r1lab eval runs"
[ -n "$(echo "$out" | grep -E '^  add +1 +yes +4 ')" ] && [ -n "$(echo "$out" | grep -E '^  add +2 +no +4 ')" ]
ok $? "and prints a row per task and difficulty, trained marked ($(echo "$out" | head -1))"
out=$("$r1lab" eval --model "$src/models/builtin" --tasks add:1 --n 4 --phrasing typed 2>&1)
ok $? "r1lab eval --phrasing typed poses the questions as people type them"
out=$("$r1lab" eval --model "$src/models/builtin" --phrasing casual 2>&1)
[ $? -eq 2 ] && [ -n "$(echo "$out" | grep 'task|typed|mixed')" ]
ok $? "an unknown phrasing is refused with the choices ($(echo "$out" | head -1))"
out=$("$r1lab" eval --model "$src/models/builtin" --nn 3 2>&1)
[ $? -eq 2 ] && [ -n "$(echo "$out" | grep "did you mean 'n'")" ]
ok $? "r1lab eval refuses a misspelt option with a suggestion"
out=$("$r1lab" train --stage eval --model tiny --out x 2>&1)
[ $? -eq 2 ] && [ -n "$(echo "$out" | grep 'r1lab eval')" ]
ok $? "train --stage eval points to r1lab eval"
out=$("$r1lab" train --stage pretrain --plain 0.5 --help 2>&1)
ok $(has "$out" "--plain is deprecated: use --plain-frac") "an older spelling works with a notice"
echo "1..$n"
