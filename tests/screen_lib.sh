# screen_lib.sh — helpers the shell tests share (sourced, not run): TAP lines (ok, skip), and
# for the tmux screen tests their private server: a screen test sets $sock, its private tmux
# socket, before it calls T, screen, type_line or wait_re, and $tmp, its temporary folder,
# before it calls screen_traps (which removes it, the server and the busy loops at the end).
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

# busy_cores: two busy loops (races hide on an idle machine), stopped by screen_traps' cleanup
busy=""
busy_cores() {
    for c in 1 2; do
        sh -c 'while :; do :; done' &
        busy="$busy $!"
    done
}
screen_cleanup() {
    T kill-server >/dev/null 2>&1
    for p in $busy; do kill "$p" 2>/dev/null; done
    # the workbench writes its history as it exits: let it finish before removing the folder
    for i in 1 2 3 4 5; do rm -rf "$tmp" 2>/dev/null && break; sleep 0.2; done
}
# screen_traps: the cleanup at the end, also after a signal (no tmux server is left behind)
screen_traps() {
    trap screen_cleanup EXIT
    trap 'exit 1' INT TERM HUP PIPE
}
# keep_server: a session that outlives the test's own.  A tmux server whose last session is
# killed exits; on busy cores the next new-session can reach it as it goes, and that session is
# lost with it ("no server running" on every later capture).  Call it before the first start.
keep_server() { T new-session -d -s keep "exec sleep 3600"; }
# sanitized BIN: true when BIN is the sanitizer build's (AddressSanitizer linked in)
sanitized() {
    nm -D "$1" 2>/dev/null | grep -q __asan_init || ldd "$1" 2>/dev/null | grep -q libasan
}
# slow_wait BIN: seconds to wait for a start on busy cores (the sanitizer build is slower)
slow_wait() {
    if sanitized "$1"; then
        echo 300
    else
        echo 120
    fi
}
# start_wb NAME COLS COMMAND...: COMMAND (README command 1 or app/r1lab, with its arguments)
# in a new session of COLS x 50 in $src, as a fresh user: HOME in $tmp/home, no make or XDG
# variables from the caller, UTF-8, a 256-colour terminal
start_wb() {
    _n=$1 _c=$2
    shift 2
    mkdir -p "$tmp/home"
    T new-session -d -s "$_n" -x "$_c" -y 50 -c "$src" \
        "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u XDG_STATE_HOME -u XDG_CONFIG_HOME \
         -u NO_COLOR HOME=$tmp/home LC_ALL=C.UTF-8 TERM=tmux-256color $*; exec sleep 600"
}
