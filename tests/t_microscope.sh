#!/bin/sh
# t_microscope.sh — the reasoning microscope on screen, as a user meets it: README command 1
# (`./bootstrap`, when the build is in the source tree; app/r1lab otherwise) opens the
# workbench on the built-in model while two busy loops keep both cores loaded; then a question,
# the token cursor with its alternatives, colouring by probability, the logit lens, attention
# as heat, a branch at a chosen token with its own answer and the tree walked back, the
# patching heatmap, and the built-in model beside a second checkpoint.  Own tmux socket, HOME
# in a temporary folder; every wait polls capture-pane.
src=$(cd "${top_srcdir:-.}" && pwd)
build=$(cd "${top_builddir:-.}" && pwd)
if ! command -v tmux >/dev/null 2>&1; then
    echo "1..0 # SKIP tmux is not installed"
    exit 0
fi
if [ ! -f "$src/models/builtin/config.json" ]; then
    echo "1..0 # SKIP no built-in model in this tree"
    exit 0
fi
tmp=$(mktemp -d)
sock="r1scope-$$"
. "$src/tests/screen_lib.sh"
screen_traps
# colours: the escape sequences of the screen, one line per screen line
screen_e() { T capture-pane -p -e -t "$1"; }

# the sanitizer build starts several times slower: give it longer on busy cores
bin="$build/app/r1lab"
[ -x "$build/app/.libs/r1lab" ] && bin="$build/app/.libs/r1lab"
wait_s=$(slow_wait "$bin")
echo "1..32"
busy_cores
keep_server # session s is killed before the tour's starts
mkdir -p "$tmp/home"
if [ "$src" = "$build" ]; then
    launch="./bootstrap"
else
    launch="$build/app/r1lab"
fi
start_wb s 130 "$launch"
wait_re s 'F1 help' "$wait_s"
ok $? "$launch opens the workbench (busy cores)"

# the token inspector: a question the model is unsure of (a countdown puzzle: which number first)
type_line s '?Use the numbers 7, 4, 6 to make 34 with + - * /, each at most once.'
wait_re s '^│answer: ' "$wait_s"
ok $? "the question is answered by the built-in model"
T send-keys -t s Tab
T send-keys -t s Right Right Right
wait_re s "Reasoning · token 3 '.' of [0-9]+"
ok $? "Tab and Right move the token cursor"
wait_re s "│'.' p [01]\.[0-9]{3} · entropy [0-9.]+ nats · MTP next '.*' [01]\.[0-9]{2}"
ok $? "the Routing pane shows its probability, entropy and the MTP module's guess"
wait_re s "│1 '.+' [01]\.[0-9]{2}  2 '.+' [01]\.[0-9]{2}  3 '.+' "
ok $? "and its alternatives with their probabilities"
T send-keys -t s c
wait_re s "Reasoning · token 3 '.' of [0-9]+ · by probability"
ok $? "c colours the tokens by probability"
screen_e s | grep -qE '\[38;5;214m|\[1m\[38;5;196m|\[38;5;196m'
ok $? "doubtful and unsure tokens take the theme's doubt and unsure colours"
T send-keys -t s c
wait_re s "· by entropy"
ok $? "c again: by entropy"
T send-keys -t s c

# the logit lens and attention at the cursor
T send-keys -t s l
wait_re s "Logit lens · t: next view" "$wait_s"
ok $? "l shows the logit lens"
wait_re s "│layer 5  .{4} [01]\.[0-9]{2}"
ok $? "a row per layer with its top predictions"
wait_re s "│MTP      "
ok $? "and the MTP module's row"
T send-keys -t s w
wait_re s "· attention L5 mean of 6 heads" "$wait_s"
ok $? "w shows where the model looked (the last layer, the mean of the heads)"
T send-keys -t s '['
wait_re s "· attention L4 mean of 6 heads" "$wait_s"
ok $? "[ goes to the layer below"
T send-keys -t s h
wait_re s "· attention L4 head 1" "$wait_s"
ok $? "h picks a head"
screen_e s | sed -n '2,12p' | grep -qE '38;5;(24|31|37|72|149|185|208|196)m'
ok $? "the attention weights colour the reasoning text with the heat ramp"

# the busy loops end: the rest needs no more than a loaded machine already showed
for p in $busy; do kill "$p" 2>/dev/null; done
busy=""

# a branch at a chosen token: the 16 of 7+9=16 in an addition, with 7 instead of 6
T send-keys -t s a Escape
type_line s "local _ = m:ask('What is 457+389?', {task = 'add', target = '846'})"
wait_re s '^│✓ right 846' "$wait_s"
T send-keys -t s Tab
i=0
while [ $i -lt 37 ]; do T send-keys -t s Right; i=$((i + 1)); done
wait_re s "Reasoning · token 37 '6' of"
T send-keys -t s 2
wait_re s "▶   #2 '.'@37 → [0-9]+ ✗" "$wait_s"
ok $? "2 branches with the second alternative: the Answer pane lists the new branch, wrong"
wait_re s "  #1 → 846 ✓"
ok $? "beside the original, right"
T send-keys -t s Tab Up Enter
wait_re s "▶ #1 → 846 ✓" "$wait_s"
ok $? "Up and Enter in the Answer pane walk back to the original"

# activation patching
T send-keys -t s Escape
type_line s ':patch What is 457+389? | What is 457+388?'
wait_re s "Activation patching · t: next view" "$wait_s"
ok $? ":patch shows the patching heatmap"
wait_re s "│embed   [·.]+[▁▂▃▄▅▆▇█]"
ok $? "where restoring the changed digit brings the clean answer back"

# the built-in model beside a second checkpoint (an untrained one of the same shape)
type_line s "r1.init('$src/models/builtin/config.json', {seed = 3}):save('$tmp/other')"
wait_re s "r1> r1.init" 30
type_line s ":compare $tmp/other"
wait_re s "Reasoning · A and B side by side" "$wait_s"
ok $? ":compare shows both traces"
wait_re s "texts differ from token 1; experts changed per layer"
ok $? "where they diverge, and how the routing differs per layer"

# the MoE lab's mismatch meter: GRPO with an fp8 sampler and fp32 training
type_line s "local _ = r1.grpo{model = r1.load(m:path()), tasks = 'add:1', steps = 3, \
prompts = 2, group = 4, max_new = 60, rollout_dtype = 'fp8', seed = 2}"
wait_re s "grpo step 3: expert load" "$wait_s"
wait_re s "│L[0-9]  .* flips [0-9.]+%"
ok $? "the Routing pane shows each MoE layer's router flips"
wait_re s "flips 0\.[0-9]+ +lp diff [0-9.e-]+"
ok $? "the GRPO pane plots the flips and the log-prob mismatch"

# expert analytics: the layer x expert heat of every token class
type_line s "local _ = ui.experts{tasks = 'add:1-2,mul:1', n = 4}"
wait_re s "Experts by token class" "$wait_s"
wait_re s "│all: [0-9]+ tokens · n: next class"
ok $? "ui.experts shows the load of every MoE layer"
wait_re s "│L1 [0-9]\.[0-9]{2}  +[·▁▂▃▄▅▆▇█]{16}"
ok $? "with its MaxVio beside the heat"
T send-keys -t s Tab Tab Tab n
wait_re s "│digit: [0-9]+ tokens"
ok $? "n in the Routing pane goes to the next class"
T send-keys -t s Escape
# :export: the pane that had the focus last (Routing) as an SVG picture
type_line s ":export $tmp/experts.svg"
wait_re s "the routing pane is in $tmp/experts.svg" "$wait_s"
grep -q '<svg' "$tmp/experts.svg" && [ "$(grep -o 'class="cell"' "$tmp/experts.svg" | wc -l)" -ge 80 ]
ok $? ":export FILE.svg writes the Routing pane's heatmap ($(grep -o 'class="cell"' \
    "$tmp/experts.svg" | wc -l) cells)"
type_line s ":export $tmp/x.txt"
wait_re s ":export FILE.svg \[routing\|grpo\|reasoning\]"
ok $? "a file name without .svg is refused with the usage"
T kill-session -t s

# the guided tour: --demo FILE opens it in demo mode; every cell runs without an error
if [ "$src" = "$build" ]; then
    launch="./bootstrap run"
fi
start_wb d 130 "$launch" --demo scripts/microscope.md
wait_re d "Notebook · microscope.md · cell 1/7" "$wait_s"
ok $? "--demo scripts/microscope.md opens the tour"
wait_re d "DEMO · space: next cell"
ok $? "in demo mode"
type_line d ':runall'
wait_re d '^│\[7\] (ok|error)' "$wait_s"
screen d | grep -q '^│\[7\] ok' && ! screen d | grep -qE '^│\[[0-9]\] error'
ok $? "all seven cells run"
exit 0
