#!/bin/sh
# t_interrupt.sh — Ctrl-C in `r1lab run` (the reliability probe's H4 and M5): the script stops at
# the next step with "interrupted", exit 130, and a GRPO or pre-training run keeps its
# checkpoint, also when the Ctrl-C lands inside an on_step callback.
r1lab="${top_builddir:-.}/app/r1lab"
src=$(cd "${top_srcdir:-.}" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "${top_srcdir:-.}/tests/screen_lib.sh" # ok and the test count

# run_until_step SCRIPT [MARK]: runs it in the background, Ctrl-C once MARK ($tmp/stepped by
# default) exists; rc, err
run_until_step() {
    mk=${2:-$tmp/stepped}
    rm -f "$mk"
    "$r1lab" run "$1" > "$tmp/out" 2> "$tmp/err" &
    pid=$!
    i=0
    while [ $i -lt 1200 ] && ! [ -e "$mk" ]; do sleep 0.05; i=$((i + 1)); done
    kill -INT $pid
    wait $pid
    rc=$?
    err=$(cat "$tmp/err")
}

# Without on_step the Ctrl-C waits for the first line of the run's metrics log: a step done.
# (It had waited for a file written just before r1.grpo, and on busy cores it could land before
# the run's first step, which is a plain "interrupted" with nothing to keep.)
for cb in with without; do
    if [ $cb = with ]; then
        hook="on_step = function(s) io.open('$tmp/stepped', 'w'):close() end,"
        mk="$tmp/stepped"
    else
        hook="log = '$tmp/metrics.jsonl',"
        mk="$tmp/metrics.jsonl"
    fi
    cat > "$tmp/grpo_$cb.lua" <<LUA
local m = r1.load("$src/models/builtin")
r1.grpo{model = m, tasks = {"add:1"}, steps = 400, group = 2, prompts = 1, max_new = 12,
  save = "$tmp/ck_$cb", $hook}
print("not reached")
LUA
    run_until_step "$tmp/grpo_$cb.lua" "$mk"
    [ $rc -eq 130 ]
    ok $? "Ctrl-C ends r1lab run with exit 130 ($cb on_step; rc $rc)"
    echo "$err" | grep -q "interrupted after step [0-9]* (checkpoint kept)"
    ok $? "r1.grpo says it was interrupted and kept its checkpoint ($cb on_step: $(echo "$err" | head -1))"
    ! grep -q "not reached" "$tmp/out"
    ok $? "the script does not go on after the run ($cb on_step)"
    "$r1lab" run /dev/stdin <<LUA > /dev/null 2>&1
local m = r1.load("$tmp/ck_$cb")
local l = m:forward({{1, 3, 40, 41, 4}}).loss
assert(l == l and l < math.huge)
LUA
    ok $? "the checkpoint loads and is finite ($cb on_step)"
done

cat > "$tmp/pre.lua" <<LUA
local m = r1.init("tiny", {seed = 1})
r1.pretrain{model = m, tasks = "add:1", steps = 100000, batch = 2, seq_len = 128,
  eval_every = 0, out = "$tmp/pre",
  on_step = function(s) io.open("$tmp/stepped", "w"):close() end}
LUA
run_until_step "$tmp/pre.lua"
[ $rc -eq 130 ] && [ -f "$tmp/pre/checkpoint/trainer_state.json" ] && echo "$err" | grep -q interrupted
ok $? "r1.pretrain interrupted inside on_step keeps its checkpoint (rc $rc: $(echo "$err" | head -1))"

# a plain script: Lua itself stops
cat > "$tmp/loop.lua" <<LUA
io.open("$tmp/stepped", "w"):close()
while true do end
LUA
run_until_step "$tmp/loop.lua"
[ $rc -eq 130 ] && echo "$err" | grep -q "interrupted"
ok $? "a Lua loop stops at Ctrl-C with the traceback (rc $rc)"
echo "1..$n"
