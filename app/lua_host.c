/* lua_host.c — running Lua chunks for r1lab (see lua_host.h).  Errors are printed to stderr
 * with a traceback; the state stays usable after any error, including Ctrl-C. */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "lua_host.h"
#include "lua_launch.h"
#include "lua_r1.h"
#include "lua_ui.h"
#include "paths.h"
#include "r1.h"

/* Raises "interrupted" in the next Lua function that runs.  C functions (the binding's own
 * protected helpers, which build tables for callbacks) are let through: the engine has seen
 * r1_interrupt() and stops at its next step, and an error there would read as the helper
 * failing rather than as a stop. */
static void stop_hook(lua_State *L, lua_Debug *ar)
{
    if (lua_getinfo(L, "S", ar) && ar->what[0] == 'C')
        return;
    lua_sethook(L, NULL, 0, 0);
    luaL_error(L, "interrupted");
}

void lua_host_interrupt(lua_State *L)
{
    r1_interrupt();
    lua_sethook(L, stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

/* Calls the function below narg arguments on the stack under a traceback handler. */
static int docall(lua_State *L, int narg, int nres)
{
    int base = lua_gettop(L) - narg;
    lua_pushcfunction(L, lua_r1_traceback);
    lua_insert(L, base);
    lua_sethook(L, NULL, 0, 0); /* a Ctrl-C that came after the last chunk ended */
    r1_interrupt_clear();
    int status = lua_pcall(L, narg, nres, base);
    lua_remove(L, base);
    lua_sethook(L, NULL, 0, 0);
    return status;
}

static int report(lua_State *L, int status)
{
    if (status != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        fprintf(stderr, "r1lab: %s\n", msg ? msg : "(error object is not a string)");
        fflush(stderr);
        lua_pop(L, 1);
    }
    return status == LUA_OK ? 0 : 1;
}

lua_State *lua_host_new(void)
{
    lua_State *L = luaL_newstate();
    if (!L)
        return NULL;
    luaL_openlibs(L);
    luaL_requiref(L, "r1", luaopen_r1, 1); /* global r1, and require "r1" finds it too */
    lua_pop(L, 1);
    lua_launch_open(L); /* r1.launch: MPI jobs in the background */
    lua_ui_open(L); /* the global `ui`: feeds the workbench panes, a no-op headless */
    char path[4096];
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    snprintf(path, sizeof path, "%s/scripts/?.lua;%s", paths_datadir(), lua_tostring(L, -1));
    lua_pop(L, 1);
    lua_pushstring(L, path);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
    return L;
}

int lua_host_run_file(lua_State *L, const char *path, int argc, char **argv)
{
    lua_createtable(L, argc, 1);
    lua_pushstring(L, path);
    lua_rawseti(L, -2, 0);
    lua_pushstring(L, paths_self()); /* as lua(1) puts its interpreter at arg[-1] */
    lua_rawseti(L, -2, -1);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setglobal(L, "arg");
    int status = luaL_loadfile(L, path);
    if (status == LUA_OK)
        status = docall(L, 0, 0);
    return report(L, status);
}

int lua_host_run_line(lua_State *L, const char *line)
{
    int top = lua_gettop(L);
    const char *ret = lua_pushfstring(L, "return %s;", line);
    int status = luaL_loadbuffer(L, ret, strlen(ret), "=stdin");
    lua_remove(L, -2);
    if (status != LUA_OK) {
        lua_pop(L, 1);
        status = luaL_loadbuffer(L, line, strlen(line), "=stdin");
    }
    if (status == LUA_OK)
        status = docall(L, 0, LUA_MULTRET);
    if (status != LUA_OK)
        return report(L, status);
    int n = lua_gettop(L) - top;
    if (n > 0) {
        luaL_checkstack(L, LUA_MINSTACK, "too many results to print");
        lua_getglobal(L, "print");
        lua_insert(L, top + 1);
        if (lua_pcall(L, n, 0, 0) != LUA_OK)
            return report(L, LUA_ERRRUN);
    }
    fflush(stdout);
    return 0;
}

int lua_host_call(lua_State *L, int narg, int nres)
{
    return docall(L, narg, nres);
}

/* True when the error message on top says the chunk ended early (lua.c's test). */
static int incomplete_chunk(lua_State *L, int status)
{
    if (status != LUA_ERRSYNTAX)
        return 0;
    size_t len;
    const char *msg = lua_tolstring(L, -1, &len);
    static const char eof[] = "<eof>";
    return msg && len >= sizeof eof - 1 && strcmp(msg + len - (sizeof eof - 1), eof) == 0;
}

int lua_host_load_line(lua_State *L, const char *src, const char *name, int *incomplete)
{
    *incomplete = 0;
    const char *ret = lua_pushfstring(L, "return %s;", src);
    int status = luaL_loadbuffer(L, ret, strlen(ret), name);
    lua_remove(L, -2);
    if (status == LUA_OK)
        return status;
    lua_pop(L, 1);
    status = luaL_loadbuffer(L, src, strlen(src), name);
    *incomplete = incomplete_chunk(L, status);
    return status;
}
