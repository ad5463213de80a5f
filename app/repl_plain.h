/* repl_plain.h — the line REPL: GNU readline with history on a terminal, plain lines from a
 * pipe or file otherwise.  Used when stdin is not a terminal, and by --plain. */
#ifndef R1_APP_REPL_PLAIN_H
#define R1_APP_REPL_PLAIN_H

#include <lua.h>

/* Reads and runs lines until end of input or :quit.  Returns the exit status for main. */
int repl_plain_run(lua_State *L);

#endif
