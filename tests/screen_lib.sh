# screen_lib.sh — helpers the shell tests share (sourced, not run): TAP lines (ok, skip), and
# for the tmux screen tests their private server: a screen test sets $sock, its private tmux
# socket, before it calls T, screen, type_line or wait_re.
n=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }
skip() { n=$((n + 1)); echo "ok $n # SKIP $1"; }
T() { tmux -L "$sock" -f /dev/null "$@"; }
screen() { T capture-pane -p -t "$1"; }
type_line() { T send-keys -t "$1" -l "$2"; T send-keys -t "$1" Enter; }
# wait_re NAME REGEX [SECONDS]: polls until a line of the screen matches the extended regular
# expression (10 s by default); shows the screen when it never does
wait_re() {
    i=0
    lim=$((${3:-10} * 20))
    while [ $i -lt $lim ]; do
        screen "$1" | grep -qE -- "$2" && return 0
        sleep 0.05
        i=$((i + 1))
    done
    echo "# waited ${3:-10} s for /$2/ on $1; the screen:"
    screen "$1" | sed 's/^/#   /'
    return 1
}
