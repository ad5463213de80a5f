#!/bin/sh
# t_layering.sh — the engine never includes Lua, curses or readline headers and never prints,
# exits or aborts (assert() is allowed): only app/ talks to the terminal.  And no circle of
# calls between the files of engine/ or of app/: read from the built objects (nm), a file
# that calls a function of another is above it, and no two files are above each other.
dir="${top_srcdir:-.}/engine"
files=$(ls "$dir"/*.c "$dir"/*.h 2>/dev/null)
echo "1..5"
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

# cycles GROUP OBJECTS...: lists the circles of calls between the objects (empty when none)
cycles() {
    for o in "$@"; do
        name=$(basename "$o" .o)
        name=${name#*-}
        [ -f "$src/$group/$name.c" ] || continue # an object left from a file since removed
        nm -g --defined-only "$o" 2>/dev/null | awk -v m="$name" 'NF == 3 { print "D", m, $3 }'
        nm -u "$o" 2>/dev/null | awk -v m="$name" '{ print "U", m, $NF }'
    done | awk '
        $1 == "D" { owner[$3] = $2; next }
        { use[++nu] = $2 SUBSEP $3 }
        END {
            for (i = 1; i <= nu; i++) {
                split(use[i], p, SUBSEP)
                if ((p[2] in owner) && owner[p[2]] != p[1]) edge[p[1], owner[p[2]]] = 1
            }
            for (e in edge) { split(e, q, SUBSEP); node[q[1]] = 1; node[q[2]] = 1 }
            for (a in node) for (b in node) reach[a, b] = ((a, b) in edge)
            for (k in node) for (a in node) if (reach[a, k]) for (b in node)
                if (reach[k, b]) reach[a, b] = 1
            for (e in edge) {
                split(e, q, SUBSEP)
                if (reach[q[2], q[1]]) print q[1] " -> " q[2] " -> ... -> " q[1]
            }
        }'
}
build="${top_builddir:-.}"
src="${top_srcdir:-.}"
for group in engine app; do
    if [ $group = engine ]; then objs=$(ls "$build"/engine/.libs/libr1_la-*.o 2>/dev/null)
    else objs=$(ls "$build"/app/r1lab-*.o 2>/dev/null); fi
    if [ -z "$objs" ] || ! command -v nm >/dev/null 2>&1; then
        echo "ok $n # SKIP no objects of $group/ (or no nm) to read"
    else
        found=$(cycles $objs)
        if [ -z "$found" ]; then
            echo "ok $n - no circle of calls between the files of $group/"
        else
            echo "not ok $n - no circle of calls between the files of $group/"
            echo "$found" | sed 's/^/# /'
        fi
    fi
    n=$((n + 1))
done
