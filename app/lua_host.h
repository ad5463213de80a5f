/* lua_host.h — the Lua 5.4 host: one lua_State with the standard libraries, every chunk run
 * under lua_pcall with a traceback handler, Ctrl-C turned into a Lua error through a hook. */
#ifndef R1_APP_LUA_HOST_H
#define R1_APP_LUA_HOST_H

#include <lua.h>

/* A new state with the standard libraries and package.path extended with the data dir's
 * scripts/.  NULL when out of memory. */
lua_State *lua_host_new(void);

/* Runs a file with arg = {[0]=path, ...}.  Prints an error with its traceback to stderr;
 * returns 0 on success, 1 on error. */
int lua_host_run_file(lua_State *L, const char *path, int argc, char **argv);

/* Runs one REPL line: first as an expression ("return LINE"), else as a statement.  Prints
 * results (or the error) to stdout/stderr.  Returns 0 on success, 1 on error. */
int lua_host_run_line(lua_State *L, const char *line);

/* Calls the function below narg arguments on the stack under the traceback handler, with the
 * engine's interrupt flag and the Ctrl-C hook cleared first.  Returns the Lua status; on an
 * error the message (with its traceback) is left on the stack. */
int lua_host_call(lua_State *L, int narg, int nres);

/* Compiles one REPL chunk as lua.c does: "return SRC" first (an expression prints its values),
 * else SRC as statements.  Pushes the function and returns LUA_OK, or pushes the syntax error
 * and returns its status; *incomplete is set to 1 when the chunk merely ended too early (more
 * lines may complete it: the "<eof>" errors), else 0. */
int lua_host_load_line(lua_State *L, const char *src, const char *name, int *incomplete);

/* Asks the running chunk to stop at its next instruction hook (async-signal-safe). */
void lua_host_interrupt(lua_State *L);

#endif
