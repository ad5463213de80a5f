#!/bin/sh
# run.sh BUILDDIR SRCDIR — `make bench`: this core's peaks and GEMMs, then r1lab's training step
# in fp32, bf16 and fp8 beside the PyTorch reference's (tests/bench/torch_train.py, fp32 and
# bf16 autocast), one after the other in one run so the ratios compare like with like; then
# generation, GRPO and the precision evidence.  Numbers only; nothing here can fail a build.
b="$1"; s="$2"
bt="$b/tests/bench/bench_train"
py=/usr/bin/python3
echo "== this core's peaks (GFLOP/s): FMA on fp32 vectors, vdpbf16ps on bf16 pairs, tdpbf16ps"
echo "   on AMX tiles where present; one thread"
pk=$("$b/tests/bench/bench_gemm16" peak)
echo "$pk"
p32=$(echo "$pk" | sed -n 's/.*peak_fp32=\([0-9.]*\).*/\1/p')
p16=$(echo "$pk" | sed -n 's/.*peak_bf16=\([0-9.]*\).*/\1/p')
pamx=$(echo "$pk" | sed -n 's/.*peak_amx=\([0-9.]*\).*/\1/p')
[ -n "$p16" ] || p16=$p32
if [ -n "$pamx" ]; then # bf16 and fp8 train on the AMX kernel: their shares are of its peak
    p16=$pamx
    echo "(bf16 and fp8 shares below are of the AMX peak, the path they run on)"
fi
echo
echo "== training's GEMMs (small's shapes), 1 thread, GFLOP/s: OpenBLAS sgemm (fp32) and r1lab's"
echo "   fp32 GEMM (which fp32 training runs on where the path has it) beside r1lab's bf16 GEMM"
echo "   on each kernel path this machine has (R1_ISA)"
"$b/tests/bench/bench_gemm16" gemm
echo "   and tiny's shapes in a GRPO step (1360 tokens a micro-batch, 340 per routed expert)"
"$b/tests/bench/bench_gemm16" gemm-tiny
echo
echo "== OpenBLAS sgemm (GFLOP/s)"
$bt sgemm --threads 1
$bt sgemm --threads 2
echo
echo "== a linear layer's forward + backward on 1 thread: the engine's (r1lab's fp32 GEMM where the"
echo "   path has it, else sgemm cut into pieces by shape, so that results do not depend on the"
echo "   thread count) against one OpenBLAS call each (GFLOP/s; cut = the engine's)"
$bt cut
echo
echo "== training step: forward + backward (main + 0.3 MTP) + AdamW, 2 threads, tokens/s"
echo "   r1lab in fp32, bf16 mixed precision and fp8 (through BF16); PyTorch in fp32 and under"
echo "   torch.autocast(bf16); each cell's GFLOP/s as a share of 2 cores' matching peak above"
printf '%-14s %18s %18s %18s %11s %11s %8s %8s %8s\n' config "r1 fp32" "r1 bf16" "r1 fp8" \
    "torch fp32" "torch bf16" "fp32 x" "bf16 x" "bf16/32"
share() { awk -v g="$1" -v p="$2" 'BEGIN { if (p > 0) printf "%.0f%%", 100 * g / (2 * p); else printf "-" }'; }
for cfg in "tiny 16 128 5" "small 8 256 3"; do
    set -- $cfg
    cells=""; tps=""
    for prec in fp32 bf16 fp8; do
        r=$($bt train --preset "$1" --batch "$2" --seq "$3" --steps "$4" --threads 2 --precision $prec)
        t=$(echo "$r" | sed -n 's/.*tokens\/s=\([0-9.]*\).*/\1/p')
        g=$(echo "$r" | sed -n 's/.*gflops=\([0-9.]*\).*/\1/p')
        if [ $prec = fp32 ]; then pk=$p32; else pk=$p16; fi
        cells="$cells $(printf '%9s (%s)' "$t" "$(share "$g" "$pk")")"
        tps="$tps $t"
    done
    tf=""; tb=""
    if [ -x "$py" ]; then
        tf=$($py "$s/tests/bench/torch_train.py" --preset "$1" --batch "$2" --seq "$3" --steps 3 --threads 2 2>/dev/null | sed -n 's/.*tokens\/s=\([0-9.]*\).*/\1/p')
        tb=$($py "$s/tests/bench/torch_train.py" --preset "$1" --batch "$2" --seq "$3" --steps 3 --threads 2 --autocast 2>/dev/null | sed -n 's/.*tokens\/s=\([0-9.]*\).*/\1/p')
    fi
    set -- $cfg $tps
    r32=$5; r16=$6
    rf=$(awk -v a="$r32" -v b="$tf" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else printf "-" }')
    rb=$(awk -v a="$r16" -v b="$tb" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else printf "-" }')
    rs=$(awk -v a="$r16" -v b="$r32" 'BEGIN { printf "%.2fx", a / b }')
    printf '%-14s %s %11s %11s %8s %8s %8s\n' "$1 ${2}x$3" "$cells" "${tf:-n/a}" "${tb:-n/a}" "$rf" "$rb" "$rs"
done
# fp32 runs on OpenBLAS's kernels: when the environment names them (OPENBLAS_CORETYPE) and
# OpenBLAS on its own would take others for this CPU, the fp32 rows again on those
kern() { "$b/app/r1lab" --version | sed -n 's/.*OpenBLAS [^,]*, \([A-Za-z0-9]*\) kernels.*/\1/p'; }
here=$(kern)
own=$(unset OPENBLAS_CORETYPE; kern)
if [ -n "$OPENBLAS_CORETYPE" ] && [ -n "$own" ] && [ "$own" != "$here" ]; then
    echo "   fp32 on the kernels OpenBLAS picks for this CPU itself ($own; above: $here, named by"
    echo "   OPENBLAS_CORETYPE in this environment):"
    for cfg in "tiny 16 128 5" "small 8 256 3"; do
        set -- $cfg
        r=$(env -u OPENBLAS_CORETYPE $bt train --preset "$1" --batch "$2" --seq "$3" --steps "$4" --threads 2 --precision fp32)
        printf '   %-14s %s\n' "$1 ${2}x$3" "$(echo "$r" | sed -n 's/.*tokens\/s=\([0-9.]*\).*/\1 tokens\/s/p')"
    done
fi
echo
echo "== bf16 weights: r1_matmul_bf16 beside OpenBLAS sgemm with fp32 weights, 1 thread (GFLOP/s)"
"$b/tests/bench/bench_bf16"

echo
echo "== decoding: 16-token prompts, 128 new tokens, greedy, 2 threads (tokens/s; the best of 3"
echo "   timed passes after a warm-up)"
bd="$b/tests/bench/bench_decode"
printf '%-16s %10s %10s %10s %10s %11s %9s %9s\n' config fp32 "fp32+MTP" bf16 "bf16+MTP" "torch fp32" "fp32 x" "bf16 x"
for cfg in "tiny 1" "tiny 16" "small 1" "small 16"; do
    set -- $cfg
    f=$($bd --preset "$1" --batch "$2" --reps 4 | sed -n 's/.*tokens\/s=\([0-9.]*\).*/\1/p')
    fs=$($bd --preset "$1" --batch "$2" --reps 4 --speculative | sed -n 's/.*tokens\/s=\([0-9.]*\).*/\1/p')
    h=$($bd --preset "$1" --batch "$2" --reps 4 --bf16 | sed -n 's/.*tokens\/s=\([0-9.]*\).*/\1/p')
    hs=$($bd --preset "$1" --batch "$2" --reps 4 --bf16 --speculative | sed -n 's/.*tokens\/s=\([0-9.]*\).*/\1/p')
    t=""
    [ -x "$py" ] && t=$($py "$s/tests/bench/torch_decode.py" --preset "$1" --batch "$2" --prompt 16 --new 128 --threads 2 2>/dev/null | sed -n 's/.*tokens\/s=\([0-9.]*\).*/\1/p')
    if [ -n "$t" ]; then
        rf=$(awk -v a="$f" -v b="$t" 'BEGIN { printf "%.1fx", a / b }')
        rh=$(awk -v a="$h" -v b="$t" 'BEGIN { printf "%.1fx", a / b }')
    else
        t="n/a"; rf="-"; rh="-"
    fi
    printf '%-16s %10s %10s %10s %10s %11s %9s %9s\n' "$1 batch $2" "$f" "$fs" "$h" "$hs" "$t" "$rf" "$rh"
done
echo "(random weights: MTP drafts are rarely accepted here; see the README for the trained model)"

echo
echo "== MTP speculative decoding on the built-in model: 3-digit sums, greedy, to the end of the answer"
echo "   (tokens/s, the best of 3 timed passes after a warm-up)"
printf '%-16s %10s %10s %8s %9s %10s %10s %8s %9s\n' config fp32 "fp32+MTP" accept speedup bf16 \
    "bf16+MTP" accept speedup
mb="$s/models/builtin"
tp() { echo "$1" | sed -n 's/.*tokens\/s=\([0-9.]*\).*/\1/p'; }
ac() { echo "$1" | sed -n 's/.*accept=\([0-9.]*\).*/\1/p'; }
if [ -f "$mb/model.safetensors" ]; then
    for B in 1 16; do
        f=$($bd --model "$mb" --task add:3 --new 192 --batch $B --reps 4)
        fs=$($bd --model "$mb" --task add:3 --new 192 --batch $B --reps 4 --speculative)
        h=$($bd --model "$mb" --task add:3 --new 192 --batch $B --reps 4 --bf16)
        hs=$($bd --model "$mb" --task add:3 --new 192 --batch $B --reps 4 --bf16 --speculative)
        printf '%-16s %10s %10s %8s %9s %10s %10s %8s %9s\n' "builtin batch $B" "$(tp "$f")" \
            "$(tp "$fs")" "$(ac "$fs")" \
            "$(awk -v a="$(tp "$fs")" -v b="$(tp "$f")" 'BEGIN { printf "%.2fx", a / b }')" \
            "$(tp "$h")" "$(tp "$hs")" "$(ac "$hs")" "$(awk -v a="$(tp "$hs")" -v b="$(tp "$h")" 'BEGIN { printf "%.2fx", a / b }')"
    done
else
    echo "(no built-in model at $mb)"
fi

echo
echo "== the token inspector's cost at batch 1: the built-in model, 3-digit sums, greedy; plain"
echo "   decoding beside top 5 + entropy + the MTP module's prediction (m:generate's default)"
printf '%-16s %10s %10s %8s\n' config plain inspect cost
if [ -f "$mb/model.safetensors" ]; then
    for w in "" --bf16; do
        for th in 1 2; do
            p=$(tp "$($bd --model "$mb" --task add:3 --new 192 --batch 1 --threads $th --reps 5 $w)")
            q=$(tp "$($bd --model "$mb" --task add:3 --new 192 --batch 1 --threads $th --reps 5 $w --inspect)")
            printf '%-16s %10s %10s %8s\n' "${w:---fp32} ${th}t" "$p" "$q" \
                "$(awk -v a="$p" -v b="$q" 'BEGIN { printf "%+.1f%%", 100 * (a - b) / a }')"
        done
    done
else
    echo "(no built-in model at $mb)"
fi

echo
echo "== prefill: one 512-token prompt on the built-in model, the decoder's step alone (tokens/s)"
printf '%-10s %10s %10s %10s\n' threads fp32 bf16 fp8
if [ -f "$mb/model.safetensors" ]; then
    for th in 1 2; do
        row=""
        for w in "" --bf16 --fp8; do
            row="$row $(printf '%10s' "$($bd --model "$mb" --prompt 512 --batch 1 --threads $th --prefill $w | sed -n 's/.*tokens\/s=\([0-9.]*\).*/\1/p')")"
        done
        printf '%-10s%s\n' "$th" "$row"
    done
else
    echo "(no built-in model at $mb)"
fi

echo
echo "== llama.cpp on the built-in model: llama-bench given the same weights as a deepseek2 GGUF"
echo "   (r1lab export --mtp no: llama.cpp decodes without the MTP module, and builds before"
echo "   mid-2026 refuse it); prefill of a 512-token prompt (pp512) and batch-1 decoding of 128"
echo "   tokens (tg128), tokens/s; the best run of each: llama-bench's 5 repetitions, r1lab's 3"
echo "   (prefill) or 5 timed passes after a warm-up (decoding: from a one-token prompt, as"
echo "   llama-bench's tg test decodes from an empty cache; its time included)"
if command -v llama-bench >/dev/null 2>&1 && [ -f "$mb/model.safetensors" ]; then
    lt=$(mktemp -d)
    printf '%-14s %10s %10s %7s %10s %10s %7s\n' "weights, thr." "r1 pp512" "llama pp" ratio \
        "r1 tg128" "llama tg" ratio
    for dt in f32 bf16; do
        "$b/app/r1lab" export --gguf "$lt/$dt.gguf" --model "$mb" --dtype $dt --mtp no >/dev/null
        w=""; [ $dt = bf16 ] && w=--bf16
        for th in 1 2; do
            ll=$(llama-bench -m "$lt/$dt.gguf" -p 512 -n 128 -t $th -r 5 -o jsonl 2>/dev/null)
            best() { echo "$ll" | grep "\"n_prompt\": *$1, .*\"n_gen\": *$2," |
                sed -n 's/.*"samples_ts": *\[\([^]]*\)\].*/\1/p' | tr ',' '\n' |
                awk 'BEGIN { m = 0 } { if ($1 + 0 > m) m = $1 + 0 } END { print m }'; }
            lp=$(best 512 0)
            lg=$(best 0 128)
            rp=$(tp "$($bd --model "$mb" --prompt 512 --batch 1 --threads $th --prefill $w |
                sed 's/prefill/decode/')")
            rg=$(tp "$($bd --model "$mb" --prompt 1 --batch 1 --new 128 --threads $th --reps 6 $w)")
            printf '%-14s %10s %10.0f %7s %10s %10.0f %7s\n' "$dt, $th" "$rp" "${lp:-0}" \
                "$(awk -v a="$rp" -v b="$lp" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else printf "-" }')" \
                "$rg" "${lg:-0}" \
                "$(awk -v a="$rg" -v b="$lg" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else printf "-" }')"
        done
    done
    rm -rf "$lt"
else
    echo "(skipped: no llama-bench on PATH, or no built-in model at $mb)"
fi

echo
echo "== one thread against two: every decoding and training row above on 1 and on 2 threads"
echo "   (tokens/s, the best of 5 runs each, alternating; each decoding run is already the best of"
echo "   3 timed passes after a warm-up: one pass of a tiny row lasts half a second, and this shared"
echo "   machine's noise alone flagged rows as slower); a second thread must never cost"
printf '%-28s %10s %10s %8s\n' row "1 thread" "2 threads" "2t/1t"
slower=0
one_two() { # label, then the command without --threads; the best of 5 runs each, alternating
    label=$1; shift
    a=0; c=0
    for rep in 1 2 3 4 5; do
        x=$(tp "$("$@" --threads 1)")
        y=$(tp "$("$@" --threads 2)")
        a=$(awk -v a="$a" -v x="${x:-0}" 'BEGIN { print (x > a ? x : a) }')
        c=$(awk -v c="$c" -v y="${y:-0}" 'BEGIN { print (y > c ? y : c) }')
    done
    r=$(awk -v a="$a" -v c="$c" 'BEGIN { if (a > 0) printf "%.2fx", c / a; else printf "-" }')
    # a second thread that costs more than the noise (5%) is flagged
    flag=$(awk -v a="$a" -v c="$c" 'BEGIN { if (a > 0 && c < 0.95 * a) print "  slower" }')
    [ -n "$flag" ] && slower=$((slower + 1))
    printf '%-28s %10s %10s %8s%s\n' "$label" "$a" "$c" "$r" "$flag"
}
for cfg in "tiny 1" "tiny 16" "small 1" "small 16"; do
    set -- $cfg
    one_two "decode $1 batch $2 fp32" $bd --preset "$1" --batch "$2" --reps 4
    one_two "decode $1 batch $2 bf16" $bd --preset "$1" --batch "$2" --bf16 --reps 4
done
if [ -f "$mb/model.safetensors" ]; then
    for B in 1 16; do
        one_two "builtin batch $B fp32" $bd --model "$mb" --task add:3 --new 192 --batch $B --reps 4
        one_two "builtin batch $B bf16" $bd --model "$mb" --task add:3 --new 192 --batch $B --bf16 --reps 4
    done
fi
for cfg in "tiny 16 128 5" "small 8 256 3"; do
    set -- $cfg
    for prec in fp32 bf16; do
        one_two "train $1 ${2}x$3 $prec" $bt train --preset "$1" --batch "$2" --seq "$3" \
            --steps "$4" --precision $prec
    done
done
echo "rows where 2 threads ran more than 5% slower than 1: $slower"

echo
echo "== GRPO step: tiny, 8 prompts x G = 8, at most 64 new tokens; fp32, then bf16 training,"
echo "   then bf16 training with the sampler on bf16 weights (rollout_dtype)"
R1LAB_DATADIR="$s" "$b/app/r1lab" run "$s/tests/bench/grpo_step.lua" fp32
R1LAB_DATADIR="$s" "$b/app/r1lab" run "$s/tests/bench/grpo_step.lua" bf16
R1LAB_DATADIR="$s" "$b/app/r1lab" run "$s/tests/bench/grpo_step.lua" bf16 bf16

echo
echo "== data parallelism (mpirun, shared memory): the gradient sum of each preset, r1lab's fixed"
echo "   order beside MPI_Allreduce; then steps at the same global batch on 1 rank x 2 threads,"
echo "   1 rank x 1 thread and 2 ranks x 1 thread (collectives: time in the ranks' sums, waiting"
echo "   for the slower rank included)"
if "$b/app/r1lab" --version | grep -q '^mpi: Open MPI' && command -v mpirun >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    mpirun -np 2 "$b/tests/bench/bench_comm"
    for job in "pretrain tiny 16 128 7" "pretrain small 8 256 5" "grpo 5"; do
        R1LAB_DATADIR="$s" R1LAB_THREADS=2 "$b/app/r1lab" run "$s/tests/bench/dp_step.lua" $job
        R1LAB_DATADIR="$s" R1LAB_THREADS=1 "$b/app/r1lab" run "$s/tests/bench/dp_step.lua" $job
        mpirun -np 2 -x R1LAB_DATADIR="$s" -x R1LAB_THREADS=1 \
            "$b/app/r1lab" run "$s/tests/bench/dp_step.lua" $job
    done
else
    echo "(r1lab was built without MPI, or mpirun is missing)"
fi
echo
echo "== BF16 and FP8 training (DeepSeek-V3's fine-grained E4M3, through BF16) against fp32, 2 threads"
echo "   same seeded runs; 'fp32 seed+1' starts from other weights: how far fp32 runs drift by chance"
bf="$b/tests/bench/bench_fp8"
"$bf" --preset tiny --steps 100 --batch 8 --seq 128 --every 10 --threads 2
echo
"$bf" --preset small --steps 30 --batch 4 --seq 128 --every 5 --threads 2
echo
echo "== FP8 and outliers: why the 1x128 tiles matter (quantisation error, no training)"
"$bf" outliers
echo
echo "== FP8 weights for generation: r1_matmul_fp8 beside sgemm and r1_matmul_bf16, 1 thread (GFLOP/s)"
"$bf" gemm
echo
echo "== decoding with FP8 weights: 16-token prompts, 128 new tokens, greedy, 2 threads (tokens/s,"
echo "   the best of 3 timed passes after a warm-up)"
printf '%-16s %10s %10s %10s\n' config fp32 bf16 fp8
for cfg in "tiny 1" "tiny 16" "small 1" "small 16"; do
    set -- $cfg
    f=$($bd --preset "$1" --batch "$2" --reps 4 | sed -n 's/.*tokens\/s=\([0-9.]*\).*/\1/p')
    h=$($bd --preset "$1" --batch "$2" --reps 4 --bf16 | sed -n 's/.*tokens\/s=\([0-9.]*\).*/\1/p')
    e=$($bd --preset "$1" --batch "$2" --reps 4 --fp8 | sed -n 's/.*tokens\/s=\([0-9.]*\).*/\1/p')
    printf '%-16s %10s %10s %10s\n' "$1 batch $2" "$f" "$h" "$e"
done
