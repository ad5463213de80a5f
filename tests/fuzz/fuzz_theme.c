/* fuzz_theme.c — the theme loader (app/ui_theme.c) on one theme file.
 *
 * A theme is a Lua chunk returning a table, run by ui_theme_load in its own small Lua state;
 * the parsing is Lua's and the loader's walk over the table.  The input is written to
 * theme.lua and loaded as a path, for a 256-colour terminal (odd sizes: an 8-colour one, which
 * maps every colour to the nearest of eight).  No curses screen is needed: the loader only
 * computes attributes; ui_theme_apply, which talks to curses, is not called.
 *
 * Checks: the loader returns 0, or -1 with a message and the built-in default theme; the
 * ramps stay within their sizes.  A chunk that loops or allocates without end must be stopped
 * by the loader's limits (a hang or an out-of-memory report here is a finding). */
#include <config.h>

#include <string.h>

#include "fuzz.h"
#include "ui.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write("theme.lua", data, size);
    ui_theme t;
    char err[1024];
    memset(&t, 0x55, sizeof t);
    int rc = ui_theme_load(&t, path, size % 2 ? 8 : 256, err, sizeof err);
    FUZZ_CHECK(rc == 0 || rc == -1, "ui_theme_load returned %d", rc);
    FUZZ_CHECK(rc == 0 || err[0], "ui_theme_load failed without a message");
    FUZZ_CHECK(memchr(t.name, '\0', sizeof t.name) && memchr(t.file, '\0', sizeof t.file),
               "unterminated theme name or file");
    FUZZ_CHECK(rc == 0 || !strcmp(t.name, "default"), "a failed load gives theme '%s'", t.name);
    FUZZ_CHECK(t.nheat >= 0 && t.nheat <= UI_MAX_HEAT && t.nseries >= 0 &&
                   t.nseries <= UI_MAX_SERIES,
               "%d heat and %d series colours", t.nheat, t.nseries);
    return 0;
}
