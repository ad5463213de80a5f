#!/bin/sh
# t_report.sh — r1lab report: a GRPO run and an SFT run folder as one self-contained HTML page
# (plots of every metric, the evaluation table, the expert-load heatmap, GRPO groups) and as
# CSV; bad input; and, where Debian's Chromium is installed, the page rendered headless to a
# PNG with its plots in the rendered DOM (skipped by name elsewhere).
r1lab="${top_builddir:-.}/app/r1lab"
src="${top_srcdir:-.}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }
has() { case "$1" in *"$2"*) echo 0 ;; *) echo 1 ;; esac; }
count() { grep -o -- "$2" "$1" | wc -l; }

"$r1lab" train --stage grpo --model "$src/models/builtin" --tasks add:1 --group 4 --prompts 2 \
    --max-new 100 --steps 3 --out "$tmp/g" --threads 1 >"$tmp/g.log" 2>&1
ok $? "a 3-step GRPO run ($(tail -1 "$tmp/g.log" | cut -c1-60))"
[ "$(wc -l < "$tmp/g/groups.jsonl")" -eq 3 ]
ok $? "the run keeps one sampled group per step in groups.jsonl"
out=$("$r1lab" report "$tmp/g" 2>&1)
ok $? "r1lab report RUN_DIR: $out"
page="$tmp/g/report.html"
for t in reward kl entropy completions/mean_length clip_ratio/region_mean \
         frac_reward_zero_std maxvio route_flip; do
    grep -q "<title>$t</title>" "$page" || { echo "# no plot of $t"; false; } || break
done
ok $? "a plot per metric: reward, kl, entropy, length, clip ratio, zero-std groups, MaxVio..."
[ "$(count "$page" '<polyline')" -ge 25 ] && [ "$(count "$page" 'class="legend"')" -ge 10 ]
ok $? "$(count "$page" '<polyline') lines; per-layer metrics as one line per MoE layer"
grep -q "<h2>Expert load at step 3" "$page" && [ "$(count "$page" '<rect x=')" -ge 80 ]
ok $? "the expert load per MoE layer as a heatmap ($(count "$page" '<rect x=') cells)"
grep -q "<h2>GRPO groups" "$page" && grep -q 'class="pos">+\|class="neg">-' "$page" && \
    grep -q "&lt;think&gt;" "$page"
ok $? "GRPO groups with their completions, rewards and advantages"
! grep -q "<script\|src=\"http\|href=\"http\|@import" "$page"
ok $? "self-contained: no script, nothing fetched"

out=$("$r1lab" report "$tmp/g" --csv -o "$tmp/g.csv" 2>&1)
head=$(head -1 "$tmp/g.csv")
[ "$(has "$head" "step,reward,reward_std,rewards/accuracy/mean")" = 0 ] && \
    [ "$(has "$head" ",maxvio[1],")" = 0 ] && [ "$(wc -l < "$tmp/g.csv")" -eq 4 ]
ok $? "--csv: a step column, one column per number (maxvio[1] ...), a row per step"

"$r1lab" train --stage sft --model "$src/models/builtin" --tasks add:1 --steps 2 --batch 2 \
    --eval-every 2 --eval-n 1 --out "$tmp/s" --threads 1 >"$tmp/s.log" 2>&1
"$r1lab" report "$tmp/s" -o "$tmp/s.html" 2>/dev/null
grep -q "<h2>Evaluation at step 2" "$tmp/s.html" && grep -q "<td>add</td><td>1</td>" "$tmp/s.html" \
    && grep -q "<title>loss</title>" "$tmp/s.html"
ok $? "an SFT run: its loss curves and the evaluation table"

# bad input
out=$("$r1lab" report "$tmp/none" 2>&1)
[ $? -eq 1 ] && [ "$(has "$out" "$tmp/none/metrics.jsonl")" = 0 ]
ok $? "a folder without metrics: exit 1, naming the file ($out)"
mkdir -p "$tmp/bad" && printf '{"step": 1, "loss": 2}\n{"step": 2, "loss\n' > "$tmp/bad/metrics.jsonl"
out=$("$r1lab" report "$tmp/bad" 2>&1)
[ $? -eq 1 ] && [ "$(has "$out" "metrics.jsonl:2: not a JSON object")" = 0 ]
ok $? "a broken line: exit 1, naming the line ($out)"
out=$("$r1lab" report "$tmp/g" --svg 2>&1)
[ $? -eq 2 ] && [ "$(has "$out" "unknown option '--svg'")" = 0 ]
ok $? "an unknown option: exit 2, named"

# a real browser renders it
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -n "$browser" ]; then
    flags="--headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,2400"
    timeout 120 "$browser" $flags --screenshot="$tmp/page.png" "file://$page" >/dev/null 2>&1
    size=$(wc -c < "$tmp/page.png" 2>/dev/null || echo 0)
    [ "$(head -c 8 "$tmp/page.png" | od -An -c | tr -d ' ')" = '211PNG\r\n032\n' ] && \
        [ "$size" -gt 30000 ]
    ok $? "Chromium renders the page to a PNG ($size bytes)"
    timeout 120 "$browser" $flags --dump-dom "file://$page" > "$tmp/dom.html" 2>/dev/null
    [ "$(count "$tmp/dom.html" '<polyline')" -ge 25 ]
    ok $? "its rendered DOM has the plots ($(count "$tmp/dom.html" '<polyline') lines)"
else
    echo "ok $((n = n + 1)) # SKIP no Chromium on PATH: the page is not rendered"
    echo "ok $((n = n + 1)) # SKIP no Chromium on PATH: the rendered DOM is not checked"
fi
echo "1..$n"
