#!/bin/sh
# summary.sh DIR — prints "N passed, N failed" from the TAP results automake's tap-driver.sh
# left in DIR and its subfolders (*.trs, one ":test-result:" line per TAP assertion; the Lua
# tests' are in DIR/lua).  Exit status 1 when a result failed, errored or no result was found.
dir="${1:-tests}"
find "$dir" -name '*.trs' -exec cat {} + 2>/dev/null | awk '
    /^:test-result: (PASS|XFAIL|SKIP)/ { p++ }
    /^:test-result: (FAIL|XPASS|ERROR)/ { f++ }
    END { printf "%d passed, %d failed\n", p, f; exit (f > 0 || p == 0) ? 1 : 0 }'
