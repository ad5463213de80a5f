#!/bin/sh
# t_firststart.sh — the first five minutes, as a new user meets them: README command 1
# (`./bootstrap`, the script itself, not app/r1lab) started in tmux while two busy loops keep
# both cores loaded, then `?What is 12+34?` with no :load first; the Answer pane must show 46.
# Repeated R1_FIRSTSTART_RUNS times (5 by default): the start-up load used to be dropped by
# the welcome notebook's opening whenever the worker had not yet taken it off the queue,
# which a busy machine makes likely.  Own tmux socket, HOME in a temporary folder.
src=$(cd "${top_srcdir:-.}" && pwd)
build=$(cd "${top_builddir:-.}" && pwd)
runs=${R1_FIRSTSTART_RUNS:-5}
if ! command -v tmux >/dev/null 2>&1; then
    echo "1..0 # SKIP tmux is not installed"
    exit 0
fi
if [ "$src" != "$build" ]; then # ./bootstrap configures and builds in the source tree
    echo "1..0 # SKIP ./bootstrap builds in the source tree; this is a separate build tree"
    exit 0
fi
if [ ! -f "$src/models/builtin/config.json" ]; then
    echo "1..0 # SKIP no built-in model in this tree"
    exit 0
fi
tmp=$(mktemp -d)
sock="r1first-$$"
. "$src/tests/screen_lib.sh"
screen_traps
# the Answer pane's first line: the line below the "├ Answer" rule, its left column
answer_line() { screen "$1" | awk '/^├ Answer/ { getline; print; exit }'; }
# wait_answer NAME REGEX SECONDS: polls until the Answer pane matches; gives up at once when
# the output pane says no model is loaded
wait_answer() {
    i=0
    while [ $i -lt $(($3 * 10)) ]; do
        answer_line "$1" | grep -qE -- "$2" && return 0
        screen "$1" | grep -qF 'no model loaded' && break
        sleep 0.1
        i=$((i + 1))
    done
    echo "# waited $3 s for the Answer pane to show /$2/ on $1; the screen:"
    screen "$1" | sed 's/^/#   /'
    return 1
}

# the sanitizer build starts several times slower: give it longer on busy cores
bin="${top_builddir:-.}/app/r1lab"
[ -x "${top_builddir:-.}/app/.libs/r1lab" ] && bin="${top_builddir:-.}/app/.libs/r1lab"
wait_s=$(slow_wait "$bin")
echo "1..$((runs * 3 + 9))"
busy_cores
mkdir -p "$tmp/home"
keep_server # each run's session is killed before the next starts
r=0
while [ $r -lt "$runs" ]; do
    r=$((r + 1))
    name="start$r"
    # the environment of a user's shell: no make job server from this test's make
    T new-session -d -s "$name" -x 80 -y 24 -c "$src" \
        "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u XDG_STATE_HOME -u XDG_CONFIG_HOME \
         -u NO_COLOR HOME=$tmp/home LC_ALL=C.UTF-8 TERM=tmux-256color ./bootstrap; \
         echo \"bootstrap exited \$?\"; exec sleep 600"
    wait_re "$name" 'F1 help' "$wait_s"
    ok $? "run $r: ./bootstrap opens the workbench on busy cores"
    T send-keys -t "$name" -l '?What is 12+34?'
    T send-keys -t "$name" Enter
    wait_answer "$name" '^│46 ' "$wait_s"
    ok $? "run $r: ?What is 12+34? answers 46 with no :load"
    screen "$name" | grep -qF 'no model loaded'
    ok $((!$?)) "run $r: no 'no model loaded' message"
    T kill-session -t "$name" >/dev/null 2>&1
done

# ---------------------------------------------------------------- what the user is told
# These start app/r1lab directly (cores still busy), with the data folder in a temporary copy.
r1lab="$build/app/r1lab"
start() { # start NAME COLS DATADIR: the workbench at COLSx30 on that data folder
    T new-session -d -s "$1" -x "$2" -y 30 -c "$tmp" \
        "env -u XDG_STATE_HOME -u XDG_CONFIG_HOME -u NO_COLOR HOME=$tmp/home \
         R1LAB_DATADIR=$3 LC_ALL=C.UTF-8 TERM=tmux-256color $r1lab; exec sleep 600"
}

# A built-in model that does not load: the output pane and the status line say why.
mkdir -p "$tmp/bad/models/builtin" "$tmp/bad/scripts"
cp "$src/scripts/welcome.md" "$tmp/bad/scripts/"
printf '{"hidden_size": 64,' > "$tmp/bad/models/builtin/config.json"
start bad 200 "$tmp/bad"
wait_re bad 'no model: the load failed: .*/bad/models/builtin/config.json' 60
ok $? "a failed start-up load names the file in the status line"
type_line bad '?What is 1+1?'
wait_re bad "no model loaded, so nothing to ask: :load .*/bad/models/builtin loads the" 30
ok $? "?question without a model says how to get one"
screen bad | grep -qF 'm is not loaded: :load DIR loads a model folder'
ok $? "the output pane said why the load failed and how to load one"
type_line bad ':run 1'
wait_re bad 'no model was loaded, so m is a new untrained model' 30
ok $? "the welcome notebook says when it makes an untrained model"
T kill-session -t bad

# Work the user queued is never dropped unseen: opening a notebook cancels only its cells,
# Ctrl-C cancels the rest, and the output pane lists what will not run.
mkdir -p "$tmp/nbs"
cat > "$tmp/nbs/slow.md" <<'NB'
```lua
local t = os.time() while os.time() - t < 5 do end print("slow done")
```

```lua
print("cell two ran")
```

```lua
print("cell three ran")
```
NB
printf '```lua\nprint("other")\n```\n' > "$tmp/nbs/other.md"
start q 100 "$src"
wait_re q ' ready ' 60
type_line q ":open $tmp/nbs/slow.md"
type_line q ':runall'
wait_re q 'cell 1 · Ctrl-C stops' 10
type_line q 'local f = io.open("typed.txt", "w") f:write(6 * 7) f:close()'
type_line q ":open! $tmp/nbs/other.md"
wait_re q 'cancelled before they ran \(2\): cell 2, cell 3' 20
ok $? "opening a notebook lists the queued cells it cancelled"
i=0
while [ $i -lt 200 ] && [ "$(cat "$tmp/typed.txt" 2>/dev/null)" != 42 ]; do
    sleep 0.1
    i=$((i + 1))
done
[ "$(cat "$tmp/typed.txt" 2>/dev/null)" = 42 ]
ok $? "a REPL line queued behind the cells still runs"
type_line q 'local t = os.time() while os.time() - t < 30 do end'
type_line q 'print("never")'
sleep 0.5
T send-keys -t q C-c
wait_re q 'cancelled before they ran \(1\): print\("never"\)' 20
ok $? "Ctrl-C lists the queued job it cancelled"
wait_re q '^│(stdin:1: )?interrupted' 20
ok $? "and interrupts the running one"
sleep 0.5
screen q | grep -qE '^│never +│'
ok $((!$?)) "the cancelled job did not run"
T kill-session -t q
