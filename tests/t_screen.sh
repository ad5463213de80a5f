#!/bin/sh
# t_screen.sh — the workbench driven in tmux like a person would: typing Lua and commands,
# notebooks, focus and zoom, resizing, a generation streaming into the panes, Ctrl-C, odd
# terminal sizes, quitting with the terminal restored.  Every wait polls capture-pane until
# the text shows (10 s at most), on a private tmux server with HOME in a temporary folder.
r1lab="${top_builddir:-.}/app/r1lab"
r1lab=$(cd "$(dirname "$r1lab")" && pwd)/$(basename "$r1lab")
data=$(cd "${top_srcdir:-.}/tests/data" && pwd)
if ! command -v tmux >/dev/null 2>&1; then
    echo "1..0 # SKIP tmux is not installed"
    exit 0
fi
tmp=$(mktemp -d)
sock="r1test-$$"
export LC_ALL=C.UTF-8
. "${top_srcdir:-.}/tests/screen_lib.sh"
trap 'T kill-server >/dev/null 2>&1; rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM HUP PIPE # through the EXIT trap: no tmux server is left behind

mkdir -p "$tmp/home"
cat > "$tmp/run.sh" <<EOF
#!/bin/sh
# run.sh NAME ARGS...: r1lab in a tmux pane; records the exit status and the tty modes
name=\$1; shift
stty -g > "$tmp/stty.\$name.before"
"$r1lab" "\$@"
rc=\$?
stty -g > "$tmp/stty.\$name.after"
echo \$rc > "$tmp/rc.\$name.tmp" && mv "$tmp/rc.\$name.tmp" "$tmp/rc.\$name"  # last, whole
exec sleep 600
EOF

# start NAME COLS ROWS [ENV=VALUE...] -- [ARGS...]
start() {
    name=$1 cols=$2 rows=$3
    shift 3
    envs=""
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do envs="$envs $1"; shift; done
    [ "$1" = "--" ] && shift
    T new-session -d -s "$name" -x "$cols" -y "$rows" -c "$tmp" \
        "env -u XDG_STATE_HOME -u XDG_CONFIG_HOME -u NO_COLOR HOME=$tmp/home \
         LC_ALL=C.UTF-8 TERM=tmux-256color $envs sh $tmp/run.sh $name $*"
}
# wait_for NAME TEXT [SECONDS]: polls until the screen shows TEXT
wait_for() {
    i=0
    lim=$((${3:-10} * 20))
    while [ $i -lt $lim ]; do
        screen "$1" | grep -qF -- "$2" && return 0
        sleep 0.05
        i=$((i + 1))
    done
    echo "# waited for '$2' on $1; the screen:"
    screen "$1" | sed 's/^/#   /'
    return 1
}
# wait_col NAME TEXT MIN MAX: polls until TEXT starts at a column in [MIN, MAX] of the top line
wait_col() {
    i=0
    while [ $i -lt 200 ]; do
        c=$(screen "$1" | head -1 | sed 's/[^ -~]/-/g' | awk -v t="$2" '{ print index($0, t) }')
        [ "${c:-0}" -ge "$3" ] && [ "${c:-0}" -le "$4" ] && return 0
        sleep 0.05
        i=$((i + 1))
    done
    echo "# '$2' is at column $c of the top line of $1, not in [$3, $4]"
    return 1
}
wait_file() { i=0; while [ ! -s "$1" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done; [ -s "$1" ]; }

# ---------------------------------------------------------------- 80x24: start, REPL
start main 80 24 --
wait_for main "F1 help"
ok $? "starts at 80x24"
s=$(screen main)
for p in Reasoning Routing Answer GRPO; do
    echo "$s" | grep -q "$p"
    ok $? "the $p pane shows at 80x24"
done
echo "$s" | grep -q "Notebook · welcome.md"
ok $? "the welcome notebook opens on start"

type_line main "1+41"
wait_re main '^│42 +│$'
ok $? "a Lua expression prints its value"
T send-keys -t main Up
wait_for main "r1> 1+41"
ok $? "Up recalls the history"
T send-keys -t main C-u
type_line main "for i = 1, 3 do"
wait_for main ">> "
ok $? "an incomplete chunk continues on a >> prompt"
type_line main "io.write(i, ',')"
type_line main "end"
wait_for main "1,2,3,"
ok $? "the chunk runs once complete"
wait_for main " ready "

# a bracketed paste (the probe's H3: ESC[200~ hung the workbench at 100% CPU): the pasted
# lines land in the input line as one chunk, Enter runs it; a start marker without its end
# lapses, and the next line still runs
T send-keys -t main -l "$(printf '\033[200~pa = 6\npb = 7\033[201~')"
T send-keys -t main -l "$(printf '\033[200~\nio.write(pa * pb, "!")\033[201~')"
sleep 0.3
T send-keys -t main Enter
wait_for main "42!"
ok $? "a bracketed paste of three lines is run as one chunk by Enter"
wait_for main " ready "
T send-keys -t main -l "$(printf '\033[200~')"
sleep 1
type_line main "io.write('after', 6 * 7)"
wait_for main "after42"
ok $? "a paste start marker without its end does not hang the workbench"

# Tab completion of globals, fields and userdata methods
T send-keys -t main -l "r1.lo"
T send-keys -t main Tab
wait_for main "r1> r1.load"
ok $? "Tab completes a table field"
T send-keys -t main C-u
T send-keys -t main -l "string.fo"
T send-keys -t main Tab
wait_for main "r1> string.format"
ok $? "Tab completes a library function"
T send-keys -t main C-u
# a name of 200 parts (_G._G._G...): the completer walks it without growing the Lua stack
long=$(awk 'BEGIN { for (i = 0; i < 200; i++) printf "_G."; printf "io.wri" }')
T send-keys -t main -l "$long"
T send-keys -t main Tab
sleep 1
T send-keys -t main C-u
type_line main "io.write('still', 6 * 7)"
wait_for main "still42"
ok $? "Tab on a name of 200 parts leaves the workbench working"
# a chunk returning as many values as Lua's stack holds: no room left to show them
type_line main 'local n = 999999; while not pcall(table.unpack, {}, 1, n) do n = n - 1 end; return table.unpack({}, 1, n)'
wait_for main "too many results to show"
ok $? "a chunk returning ~1M values says there are too many to show"
type_line main "io.write('after', 6 * 8)"
wait_for main "after48"
ok $? "... and the workbench goes on"

# a notebook with a failing cell: the traceback shows and the REPL survives
cat > "$tmp/nb.md" <<'EOF'
# A test notebook

```lua
print("cell one")
```

Prose between the cells.

```lua
local function f() error("boom") end
f()
```
tail
EOF
cp "$tmp/nb.md" "$tmp/nb.orig"
type_line main ":open $tmp/nb.md"
wait_for main "Notebook · nb.md"
ok $? ":open shows the notebook"
type_line main ":runall"
wait_for main "[2] error"
ok $? "the failing cell is marked"
wait_for main "boom"
ok $? "its error shows"
wait_for main "stack traceback:"
ok $? "with the traceback"
type_line main "6*9"
wait_re main '^│54 +│$'
ok $? "the REPL answers after the error"
type_line main ":save"
wait_for main "saved $tmp/nb.md"
ok $? ":save reports the file"
expected="$tmp/nb.expected"
{
    sed -n '1,5p' "$tmp/nb.orig"
    printf '```output\ncell one\n```\n'
    sed -n '6,12p' "$tmp/nb.orig"
} > "$expected"
grep -q 'boom' "$tmp/nb.md" && grep -q '^stack traceback:' "$tmp/nb.md"
ok $? "the saved notebook holds the error output"
head -c "$(wc -c < "$expected")" "$tmp/nb.md" | cmp -s - "$expected"
ok $? "the saved notebook keeps the prose and code byte for byte"
type_line main ":open $tmp/nb.md"
wait_for main "Notebook · nb.md · cell 1/2"
ok $? "the saved notebook opens again, unchanged"

type_line main ":edit 1"
wait_for main '[1]> print("cell one")'
ok $? ":edit N puts the cell into the input line"
T send-keys -t main End
T send-keys -t main -l ' print("edited")'
T send-keys -t main Enter
wait_for main "│ edited"
ok $? "Enter runs the edited cell"

# focus, explain, zoom, help
T send-keys -t main Tab
T send-keys -t main z
wait_re main '^┌ Reasoning ─+┐$'
ok $? "Tab focuses the Reasoning pane and z zooms it"
screen main | grep -q "Routing"
ok $((!$?)) "the zoomed pane hides the others"
T send-keys -t main z
wait_for main "Routing"
ok $? "z again restores the layout"
T send-keys -t main Tab Tab e
wait_for main "What the Routing pane shows"
ok $? "e explains the focused pane"
T send-keys -t main Down Down Down
wait_for main "column one routed expert"
ok $? "Down scrolls a long explanation"
T send-keys -t main e F1
wait_for main "keys and commands"
ok $? "F1 shows the help"
T send-keys -t main q Escape
sleep 0.1
screen main | grep -q "keys and commands"
ok $((!$?)) "any key closes the help"

# a generation on screen: tokens stream, routing fills, the token cursor selects
type_line main ":load $data/tiny_moe"
wait_for main "loaded r1.model"
ok $? ":load loads a model into m"
type_line main "r = m:generate({1,2,3},{max_tokens=20})"
wait_for main "Reasoning · 20 tokens"
ok $? "the generated tokens stream into the Reasoning pane"
wait_re main '│> (1 2 3|3 tokens) +│'
ok $? "under the prompt"
wait_for main "share of 20 tokens"
ok $? "the routing heatmap counts the tokens"
wait_re main 'L1  [▁▂▃▄▅▆▇█·]{8}'
ok $? "and fills a row per layer"
T send-keys -t main Tab Right Right Right
wait_for main "Routing · token 3"
ok $? "moving the token cursor selects a token for the Routing pane"
wait_re main 'L1  [·▁▂▃▄▅▆▇█]{8}  e[0-7] [0-9.]+ e[0-7]'
ok $? "which lists its experts and weights"
T send-keys -t main a Escape
wait_for main " ready "
T send-keys -t main -l "m:gen"
T send-keys -t main Tab
wait_for main "r1> m:generate"
ok $? "Tab completes a userdata method"
T send-keys -t main C-u

# ?QUESTION and :ask go to ask(text) when it is defined
type_line main 'function ask(q) print("asked: " .. q) end'
type_line main "?What is 2+2?"
wait_for main "asked: What is 2+2?"
ok $? "?QUESTION calls ask"
type_line main ":ask hello there"
wait_for main "asked: hello there"
ok $? ":ask TEXT calls ask"
type_line main "ask = nil"

# the GRPO pane from ui.step / ui.group (and r1.grpo when the build has it)
type_line main 'for s = 1, 12 do ui.step{stage="grpo", step=s, total=12, stats={reward=s/12, accuracy=s/24, kl=0.01*s, length=30-s}} end'
wait_for main "grpo step 12/12"
ok $? "training steps show in the GRPO pane"
type_line main 'ui.group{prompt="2+3?", reward_names={"accuracy","format"}, completions={{text="5", rewards={1,1}}, {text="6", rewards={0,1}}}}'
wait_for main "GRPO · group of 2"
ok $? "a group shows as bars"
wait_for main "A=+1.00"
ok $? "with the advantages"
if "$r1lab" run /dev/stdin <<'EOF' >/dev/null 2>&1
assert(r1.grpo and r1.init("tiny").ask)
EOF
then
    # a model with the built-in tokenizer: questions in text, GRPO on a task
    type_line main 'q = r1.init("tiny", {seed = 1})'
    type_line main 'q:ask("What is 2+3?", {max_tokens = 24})'
    wait_re main '│> What is 2\+3\? +│'
    ok $? "a question shows in the Reasoning pane"
    wait_re main 'Reasoning · 2[0-9] tokens'
    ok $? "and its reasoning streams in"
    type_line main 'r1.grpo{model=q, task="add", difficulty=1, steps=3, group=4, prompts=1, max_new=12}'
    wait_for main "grpo step 3" 30
    ok $? "three GRPO steps from the REPL fill the GRPO pane"
    wait_for main "GRPO · group of 4"
    ok $? "with the group's completions"
    wait_for main "Routing · expert load (training)"
    ok $? "and the Routing pane shows the expert load"
else
    for i in 1 2 3 4 5; do skip "r1.grpo or m:ask is not in this build"; done
fi

# a very long pasted line
long=$(head -c 5000 /dev/zero | tr '\0' 'a')
T send-keys -t main -l "x = '$long'"
T send-keys -t main Enter
type_line main "#x"
wait_re main '^│5000 +│$'
ok $? "a pasted 5000-character line arrives whole"

# Ctrl-C stops a running loop; the REPL answers
type_line main "while true do end"
wait_for main "Ctrl-C stops"
ok $? "a long loop shows as running"
T send-keys -t main C-c
wait_for main "interrupted"
ok $? "Ctrl-C interrupts it"
type_line main "1+2"
wait_re main '^│3 +│$'
ok $? "and the REPL answers"
wait_for main " ready "
T send-keys -t main C-c
wait_for main "Quit r1lab? (y/n)"
ok $? "Ctrl-C at an idle prompt asks before quitting"
T send-keys -t main n
type_line main "2+2"
wait_re main '^│4 +│$'
ok $? "n keeps it running"

# resizing
T resize-window -t main -x 200 -y 50
wait_col main "- Routing" 100 102
ok $? "resized to 200x50, the layout follows"
T resize-window -t main -x 80 -y 24
wait_col main "- Routing" 40 42
ok $? "and back at 80x24"
T resize-window -t main -x 40 -y 20
wait_re main '^├ Routing'
ok $? "a narrow terminal stacks the panes"
T resize-window -t main -x 80 -y 24

# quitting restores the terminal
type_line main ":quit"
wait_for main "Unsaved notebook changes"
ok $? ":quit asks when the notebook has unsaved changes"
T send-keys -t main y
wait_file "$tmp/rc.main"
[ "$(cat "$tmp/rc.main" 2>/dev/null)" = 0 ]
ok $? ":quit exits with status 0"
cmp -s "$tmp/stty.main.before" "$tmp/stty.main.after"
ok $? "the terminal modes are restored"
grep -qx '1+41' "$tmp/home/.local/state/r1lab/history"
ok $? "the history is saved in ~/.local/state/r1lab/history"

# ---------------------------------------------------------------- 200x50
start big 200 50 -- --theme light
wait_for big "F1 help"
ok $? "starts at 200x50"
s=$(screen big)
echo "$s" | grep -q "Reasoning" && echo "$s" | grep -q "Routing" && echo "$s" | grep -q "GRPO" &&
    echo "$s" | grep -q "Answer" && echo "$s" | grep -q "Notebook · welcome.md · cell"
ok $? "all panes show at 200x50 (the output pane showing the welcome notebook)"
echo "$s" | grep -q "Notebook · welcome.md"
ok $? "the welcome notebook opens on every start without --notebook"
type_line big ":theme $tmp/nb.md"
wait_for big "using the default theme"
ok $? "a bad theme file gets a message and the default theme"
type_line big ":theme nosuchtheme"
wait_for big "theme called 'nosuchtheme'"
ok $? "a missing theme is named"
T send-keys -t big C-d
wait_file "$tmp/rc.big"
[ "$(cat "$tmp/rc.big" 2>/dev/null)" = 0 ]
ok $? "Ctrl-D quits"

# ---------------------------------------------------------------- tiny terminals
start tiny 10 5 --
wait_for tiny "r1>"
ok $? "a 10x5 terminal starts"
type_line tiny "1+1"
wait_re tiny '^2 *$'
ok $? "and evaluates"
T resize-window -t tiny -x 3 -y 2
sleep 0.2
T resize-window -t tiny -x 1 -y 1
sleep 0.2
T resize-window -t tiny -x 10 -y 5
type_line tiny "3+3"
wait_re tiny '^6 *$'
ok $? "shrinking to 1x1 and back neither crashes nor hangs"
type_line tiny ":quit"
wait_file "$tmp/rc.tiny"
[ "$(cat "$tmp/rc.tiny" 2>/dev/null)" = 0 ]
ok $? "and it quits cleanly"

# ---------------------------------------------------------------- TERM=dumb
# a terminal that cannot place the cursor gets the plain REPL (the probe's L1: a blank screen)
start dumb 80 24 TERM=dumb --
wait_for dumb "here is the plain REPL"
ok $? "TERM=dumb says it cannot drive the terminal and offers the plain REPL"
type_line dumb "print(6 * 7)"
wait_for dumb "42"
ok $? "and the plain REPL runs Lua"
type_line dumb ":quit"

# ---------------------------------------------------------------- demo mode, no colour
start demo 100 30 NO_COLOR=1 -- --demo
wait_for demo "DEMO"
ok $? "--demo plays the welcome notebook"
T send-keys -t demo " "
wait_for demo "[1] ok"
ok $? "space runs the next cell"
if T capture-pane -e -p -t demo | grep -qE '\[(3[0-7]|38;5;[0-9]+)m'; then r=1; else r=0; fi
ok $r "NO_COLOR: no colours on the screen"
T send-keys -t demo Escape C-c y
wait_file "$tmp/rc.demo"
[ "$(cat "$tmp/rc.demo" 2>/dev/null)" = 0 ]
ok $? "Ctrl-C and y quit"

# mouse: a click selects a token
start mouse 80 24 -- --notebook "$tmp/nb.md"
wait_for mouse "F1 help"
type_line mouse ":load $data/tiny_moe"
wait_for mouse "loaded r1.model"
type_line mouse "m:generate({1,2,3},{max_tokens=20})"
wait_for mouse "Reasoning · 20 tokens"
T send-keys -t mouse -l "$(printf '\033[<0;2;3M\033[<0;2;3m')"
wait_for mouse "Routing · token 1"
ok $? "a mouse click on a token selects it"
T send-keys -t mouse -l ":quit"
T send-keys -t mouse Enter
wait_file "$tmp/rc.mouse"

# SIGTERM restores the terminal too
start term 80 24 --
wait_for term "F1 help"
pane=$(T display-message -p -t term '#{pane_pid}')
pid=$(ps -o pid= --ppid "$pane" | tr -d ' ' | head -1)
kill -TERM "$pid" 2>/dev/null
wait_file "$tmp/rc.term"
[ -s "$tmp/rc.term" ] && cmp -s "$tmp/stty.term.before" "$tmp/stty.term.after"
ok $? "SIGTERM ends r1lab with the terminal restored"

# the plain REPL when stdin is not a terminal
out=$(echo '1+1' | "$r1lab" 2>&1)
[ "$out" = 2 ]
ok $? "a non-terminal stdin gets the plain REPL"

echo "1..$n"
