#!/bin/sh
# t_module.sh — the r1 module also loads into the stand-alone lua5.4 interpreter (as it does
# after `make install`, from $(libdir)/lua/5.4/r1.so), and carries none of the workbench's
# screen code: the binding reports to an observer that only the workbench sets.
lua=$(command -v lua5.4 || true)
echo "1..3"
so="${top_builddir:-.}/app/.libs"
if [ -f "$so/r1.so" ] && command -v nm >/dev/null 2>&1; then
    found=$(nm -D --defined-only "$so/r1.so" | grep -E ' (ev_|wb_|ui_)' || true)
    [ -z "$found" ] && echo "ok 1 - r1.so defines no workbench or event function" ||
        echo "not ok 1 - r1.so defines workbench code: $(echo $found)"
else
    echo "ok 1 # SKIP no r1.so (or no nm) to read"
fi
if [ -z "$lua" ]; then
    echo "ok 2 # SKIP lua5.4 is not installed (Debian package lua5.4)"
    echo "ok 3 # SKIP lua5.4 is not installed"
    exit 0
fi
if ldd "$so/r1.so" 2>/dev/null | grep -q libasan; then
    # the sanitizer build's module needs the ASan runtime loaded first, which lua5.4 is not
    echo "ok 2 # SKIP a sanitizer build: lua5.4 cannot load an ASan module"
    echo "ok 3 # SKIP a sanitizer build"
    exit 0
fi
out=$(LUA_CPATH="$so/?.so" "$lua" -e 'local r1 = require "r1"; print(type(r1.init), r1.version())' 2>&1)
case "$out" in function*) echo "ok 2 - lua5.4 -e 'require \"r1\"'" ;; *) echo "not ok 2 - require r1: $out" ;; esac
out=$(LUA_CPATH="$so/?.so" "$lua" -e '
local r1 = require "r1"
local m = r1.init({preset = "tiny", num_hidden_layers = 1}, {seed = 1})
local res = m:generate("What is 1+1?", {max_tokens = 4})
print(#res.tokens)' 2>&1)
[ "$out" = "4" ] && echo "ok 3 - the module generates text in lua5.4" || echo "not ok 3 - $out"
