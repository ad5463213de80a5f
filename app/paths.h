/* paths.h — where r1lab finds its scripts, themes and built-in model: in the source tree when
 * the program runs from its build tree, else under the installed $(pkgdatadir).  The
 * R1LAB_DATADIR environment variable overrides both. */
#ifndef R1_APP_PATHS_H
#define R1_APP_PATHS_H

/* The data directory (borrowed, valid for the life of the process). */
const char *paths_datadir(void);

/* Writes datadir/rel into buf (size n); returns buf. */
char *paths_data(char *buf, unsigned long n, const char *rel);

/* This program's own file (from /proc/self/exe; "r1lab", found on PATH, where that is
 * missing), for scripts that run r1lab's commands (Lua's arg[-1]). */
const char *paths_self(void);

#endif
