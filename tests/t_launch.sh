#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# t_launch.sh — r1.launch and :mpirun: a background MPI job whose output and rank 0's training
# reports come back to the launching r1lab.  Headless: the reports relayed through a launcher
# that prints chosen lines (well-formed, damaged, NaN statistics: no MPI needed), a real
# 2-rank job (its reports re-emitted by an r1lab that is itself relayed, so they can be
# counted), stopping a job, and the mistakes a user makes.  On screen: the workbench from
# README command 1 (`./bootstrap`, when the build is in the source tree) on busy cores,
# `:mpirun 2 FILE` with GRPO on the built-in model, its step and expert load in the panes.
src=$(cd "${top_srcdir:-.}" && pwd)
build=$(cd "${top_builddir:-.}" && pwd)
r1lab="$build/app/r1lab"
tmp=$(mktemp -d)
sock="r1launch-$$"
. "$src/tests/screen_lib.sh"
screen_traps
has() { case "$1" in *"$2"*) echo 0 ;; *) echo 1 ;; esac; }
rs=$(printf '\036')

# a launcher that prints what a relayed rank 0 would, plus a damaged record, then its
# arguments, and exits 3
cat >"$tmp/fake" <<EOF
#!/bin/sh
echo "plain output"
printf '%sr1ev {"ev":"step","stage":"grpo","step":2,"total":5,"stats":{"reward":0.5,"kl":null},"load":[[0.25,0.75]],"bias":[[0.1,-0.1]]}\n' "$rs"
printf '%sr1ev {"ev":"group","step":2,"prompt":"What is 2+2?","names":["accuracy"],"texts":["4","5"],"rewards":[[1.0],[0.0]],"totals":[1.0,0.0],"adv":[0.7,-0.7],"correct":[1,0]}\n' "$rs"
printf '%sr1ev {"ev":"step","stage":"grpo"' "$rs"; echo
printf '%sr1ev {"ev":"group","texts":["a"]}\n' "$rs"
echo "args: \$*" >&2
exit 3
EOF
chmod +x "$tmp/fake"
echo 'print("never run by the fake launcher")' >"$tmp/s.lua"
cat >"$tmp/relay.lua" <<EOF
local job = r1.launch{np = 2, script = "$tmp/s.lua", args = {"x y", "z"}, threads = 1,
                      mpirun = "$tmp/fake"}
print("status", job:wait())
EOF
out=$(R1LAB_EVENTS=1 "$r1lab" run "$tmp/relay.lua" 2>&1)
ok $? "r1.launch with a launcher that prints reports"
[ "$(has "$out" "plain output")" = 0 ] && [ "$(has "$out" "status	3")" = 0 ] &&
    [ "$(has "$out" "job 1 ended with exit status 3")" = 0 ]
ok $? "its output comes through, and its exit status"
[ "$(has "$out" "args: -np 2 -x R1LAB_EVENTS=1 -x R1LAB_THREADS=1 $build/app/r1lab run $tmp/s.lua x y z")" = 0 ]
ok $? "the job is mpirun -np 2 with the reports asked for, the threads, the script and its args"
# the relayed reports, re-emitted by this r1lab (itself relayed): the same numbers, NaN as null
step=$(echo "$out" | grep -c "^${rs}r1ev {\"ev\":\"step\",\"stage\":\"grpo\",\"step\":2,\"total\":5,\"stats\":{\"reward\":0.5,\"kl\":null},\"load\":\[\[0.25,0.75\]\],\"bias\":\[\[0.100000001,-0.100000001\]\]}")
group=$(echo "$out" | grep -c "^${rs}r1ev {\"ev\":\"group\",\"step\":2,\"prompt\":\"What is 2+2?\",\"names\":\[\"accuracy\"\],\"texts\":\[\"4\",\"5\"\],\"rewards\":\[\[1.0\],\[0.0\]\],\"totals\":\[1.0,0.0\],\"adv\":\[0.7,-0.7\],\"correct\":\[1,0\]}")
[ "$step" = 1 ] && [ "$group" = 1 ]
ok $? "a step (statistics, expert load, bias) and a group pass through whole ($step, $group)"
[ "$(echo "$out" | grep -c "^${rs}r1ev")" = 2 ] && [ "$(echo "$out" | grep -c "r1ev")" = 2 ]
ok $? "the damaged records are neither shown nor passed on"

# mistakes
err() { "$r1lab" run "$tmp/e.lua" 2>&1; }
echo "r1.launch{np = 2, scirpt = '$tmp/s.lua'}" >"$tmp/e.lua"
[ "$(has "$(err)" "unknown option 'scirpt' for r1.launch (did you mean 'script'?)")" = 0 ]
ok $? "a misspelt option is named with the closest one"
echo "r1.launch{np = 0, script = '$tmp/s.lua'}" >"$tmp/e.lua"
[ "$(has "$(err)" "np = N (the number of ranks, >= 1) is required")" = 0 ]
ok $? "np 0 is refused"
echo "r1.launch{np = 2, script = '$tmp/none.lua'}" >"$tmp/e.lua"
[ "$(has "$(err)" "r1.launch: $tmp/none.lua: No such file or directory")" = 0 ]
ok $? "a missing script is named"
echo "r1.launch{np = 2, script = '$tmp/s.lua', mpirun = '$tmp/nompirun'}" >"$tmp/e.lua"
[ "$(has "$(err)" "$tmp/nompirun is not installed (apt-get install openmpi-bin")" = 0 ]
ok $? "a missing launcher is named with the package"
echo "r1.launch{np = 2, script = '$tmp/s.lua', args = {1, {}}}" >"$tmp/e.lua"
[ "$(has "$(err)" "args[2] expects a string (got table)")" = 0 ]
ok $? "a bad argument is named by its place"

# the thread count a job's ranks get (r1.launch{threads = N}), and a wrong one refused
echo 'print("threads", r1.machine().threads)' >"$tmp/th.lua"
[ "$(R1LAB_THREADS=1 "$r1lab" run "$tmp/th.lua" 2>&1)" = "threads	1" ]
ok $? "R1LAB_THREADS=1 sets the engine's threads"
out=$(R1LAB_THREADS=x "$r1lab" run "$tmp/th.lua" 2>&1)
[ $? = 2 ] && [ "$(has "$out" "R1LAB_THREADS=x: expected a thread count, 1 to 1024")" = 0 ]
ok $? "R1LAB_THREADS=x is refused with the reason"

# a job that never ends: job:stop() ends it (its process group) within seconds
cat >"$tmp/slow" <<'EOF'
#!/bin/sh
sleep 373 &
echo started
wait
EOF
chmod +x "$tmp/slow"
cat >"$tmp/stop.lua" <<EOF
local job = r1.launch{np = 1, script = "$tmp/s.lua", mpirun = "$tmp/slow"}
print(job:wait(0.5))
print("running", job:running())
local t = os.time()
print("stopped", job:stop(), os.time() - t <= 6)
print("running", job:running())
EOF
out=$("$r1lab" run "$tmp/stop.lua" 2>&1)
[ "$(has "$out" "nil	timeout")" = 0 ] && [ "$(has "$out" "running	true")" = 0 ] &&
    [ "$(has "$out" "stopped	143	true")" = 0 ] && [ "$(has "$out" "running	false")" = 0 ]
ok $? "job:wait(0.5) times out, job:stop() ends it with SIGTERM (status 143)"
sleep 0.2
[ -z "$(pgrep -f "sleep 373")" ] && [ -z "$(pgrep -f "$tmp/slow")" ]
ok $? "and nothing of it is left running"

mpi_ok=1
if ! "$r1lab" --version | grep -q '^mpi: Open MPI' || ! command -v mpirun >/dev/null 2>&1; then
    mpi_ok=0
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
cat >"$tmp/train.lua" <<EOF
local r1 = require "r1"
local w = r1.world()
print("rank " .. w.rank .. " of " .. w.size)
r1.pretrain{model = r1.init("tiny", {seed = 3}), tasks = "add:1", steps = 3, batch = 4,
            seq_len = 128, eval_every = 0, seed = 3}
r1.grpo{model = r1.load("$src/models/builtin"), tasks = "add:2", group = 4, prompts = 2,
        steps = 2, max_new = 60}
print("rank " .. w.rank .. " done")
EOF
if [ $mpi_ok = 1 ]; then
    echo "local j = r1.launch{np = 2, script = '$tmp/train.lua', threads = 1} print('status', j:wait())" \
        >"$tmp/real.lua"
    out=$(R1LAB_EVENTS=1 "$r1lab" run "$tmp/real.lua" 2>&1)
    ok $? "a real 2-rank job: pretraining and GRPO"
    [ "$(has "$out" "rank 0 of 2")" = 0 ] && [ "$(has "$out" "rank 0 done")" = 0 ] &&
        [ "$(has "$out" "rank 1")" = 1 ] && [ "$(has "$out" "status	0")" = 0 ]
    ok $? "rank 0's output comes back (rank 1's does not), exit status 0"
    np=$(echo "$out" | grep -c "^${rs}r1ev {\"ev\":\"step\",\"stage\":\"pretrain\"")
    ng=$(echo "$out" | grep -c "^${rs}r1ev {\"ev\":\"step\",\"stage\":\"grpo\",\"step\":[12],\"total\":2,.*\"load\":")
    nG=$(echo "$out" | grep -c "^${rs}r1ev {\"ev\":\"group\"")
    [ "$np" = 3 ] && [ "$ng" = 2 ] && [ "$nG" = 2 ]
    ok $? "rank 0's reports arrive: $np pretraining steps, $ng GRPO steps (of 2) with expert load, $nG groups (rank 0's share)"
else
    skip "a real 2-rank job: r1lab built without MPI or no mpirun"
    skip "rank 0's output: no MPI"
    skip "rank 0's reports: no MPI"
fi

# on screen
if ! command -v tmux >/dev/null 2>&1 || [ $mpi_ok = 0 ] ||
    [ ! -f "$src/models/builtin/config.json" ]; then
    for t in 1 2 3 4 5 6 7 8; do skip "on screen: needs tmux, MPI and the built-in model"; done
    echo "1..$n"
    exit 0
fi
wait_s=$(slow_wait "$build/app/r1lab")
busy_cores
mkdir -p "$tmp/home"
launch="$build/app/r1lab"
[ "$src" = "$build" ] && launch="./bootstrap"
start_wb s 140 "$launch"
wait_re s 'F1 help' "$wait_s"
ok $? "$launch opens the workbench (busy cores)"
type_line s ":mpirun 2 $tmp/none.lua"
wait_re s ":mpirun: $tmp/none.lua: No such file or directory"
ok $? ":mpirun with a missing script says so"
# a notebook cell runs while the job prints: the job's lines stay out of the cell's output
type_line s ":new $tmp/nb.md"
type_line s ":add local t = os.time() while os.time() < t + 8 do end print('cell done')"
type_line s ":mpirun 2 $tmp/train.lua"
wait_re s "r1lab: job 1 started \(mpirun -np 2 " 30
ok $? ":mpirun 2 FILE starts the job"
type_line s ":run"
# the job prints "rank 0 of 2" before its first step, while the 8-second cell runs
wait_re s "cell done" 60 && wait_re s "(pretrain|grpo) step [0-9]+" "$wait_s"
type_line s ":save"
i=0
while ! grep -q "cell done" "$tmp/nb.md" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
grep -q "cell done" "$tmp/nb.md" && ! grep -q "rank 0 of 2\|r1lab: job 1" "$tmp/nb.md"
ok $? "the job's output is not the running cell's (the saved notebook holds the cell's alone)"
wait_re s "grpo step [12]/2 .*reward" "$wait_s"
ok $? "rank 0's GRPO steps reach the GRPO pane"
wait_re s "Routing · expert load \(training\)" 30
ok $? "and the expert load the Routing pane"
wait_re s "job 1 ended with exit status 0" "$wait_s"
ok $? "the end of the job is reported with its exit status"
type_line s ":mpirun"
wait_re s "job 1: ended, exit status 0: mpirun -np 2"
ok $? ":mpirun lists the jobs"
echo "1..$n"
