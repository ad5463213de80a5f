#!/bin/sh
# t_layering.sh — the engine never includes Lua, curses or readline headers and never prints,
# exits or aborts (assert() is allowed): only app/ talks to the terminal.
dir="${top_srcdir:-.}/engine"
files=$(ls "$dir"/*.c "$dir"/*.h 2>/dev/null)
echo "1..3"
n=1
check() { # description, grep pattern
    hits=$(grep -nE "$2" $files | grep -v '^\s*//' || true)
    if [ -z "$hits" ]; then
        echo "ok $n - $1"
    else
        echo "not ok $n - $1"
        echo "$hits" | sed 's/^/# /'
    fi
    n=$((n + 1))
}
check "engine includes no Lua, curses or readline header" \
    '#[[:space:]]*include[[:space:]]*[<"](lua|lauxlib|lualib|curses|ncurses|ncursesw/|readline/|term\.h)'
check "engine calls no printf family that writes to a stream" \
    '(^|[^a-z_])(printf|fprintf|vprintf|vfprintf|puts|fputs|putchar|perror)[[:space:]]*\('
check "engine calls no exit or abort" \
    '(^|[^a-z_.>])(exit|_exit|_Exit|abort|quick_exit)[[:space:]]*\('
