/* lua_launch.c — r1.launch{np = N, script = FILE, ...}: an MPI job in the background, its
 * output and rank 0's training reports shown as they come (launch.h).  The program's own
 * binding (lua_host.c adds it): the stand-alone `r1` module has no r1.launch.
 *
 *   local job = r1.launch{np = 2, script = "train.lua", args = {"out"}, threads = 1,
 *                         hostfile = "hosts", mpirun_args = {"--bind-to", "none"}}
 *   job.id, job.command       the job's number and command line
 *   job:running()             true while it runs
 *   job:wait([seconds])       its exit status, or nil and "timeout" (Ctrl-C: "interrupted")
 *   job:stop()                SIGTERM to the job, SIGKILL after 5 s; returns the status */
#include <config.h>

#include <string.h>

#include "launch.h"
#include "lua_launch.h"
#include "lua_r1.h"
#include "r1_settings.h"

#define JOB "r1lab.job"

static launch_job *check_job(lua_State *L)
{
    return *(launch_job **)luaL_checkudata(L, 1, JOB);
}

static int l_running(lua_State *L)
{
    lua_pushboolean(L, launch_poll(check_job(L), NULL));
    return 1;
}

static int l_wait(lua_State *L)
{
    launch_job *j = check_job(L);
    double secs = luaL_optnumber(L, 2, -1);
    int status = 0;
    int rc = launch_wait(j, secs < 0 ? -1 : (int)(secs * 1000), r1_interrupted, &status);
    if (rc == 0) {
        lua_pushinteger(L, status);
        return 1;
    }
    lua_pushnil(L);
    lua_pushstring(L, rc == 1 ? "timeout" : "interrupted");
    return 2;
}

static int l_stop(lua_State *L)
{
    launch_job *j = check_job(L);
    launch_stop(j);
    int status = 0;
    launch_poll(j, &status);
    lua_pushinteger(L, status);
    return 1;
}

static int l_index(lua_State *L)
{
    launch_job *j = check_job(L);
    const char *k = luaL_checkstring(L, 2);
    if (!strcmp(k, "id"))
        lua_pushinteger(L, launch_id(j));
    else if (!strcmp(k, "command"))
        lua_pushstring(L, launch_command(j));
    else if (luaL_getmetafield(L, 1, "methods") == LUA_TTABLE)
        lua_getfield(L, -1, k);
    else
        lua_pushnil(L);
    return 1;
}

static int l_tostring(lua_State *L)
{
    launch_job *j = check_job(L);
    int status = 0;
    int run = launch_poll(j, &status);
    if (run)
        lua_pushfstring(L, "job %d (running): %s", launch_id(j), launch_command(j));
    else
        lua_pushfstring(L, "job %d (ended, exit status %d): %s", launch_id(j), status,
                        launch_command(j));
    return 1;
}

/* a list of strings at field k of table t into a userdata-owned array (n of them) */
static const char **strings(lua_State *L, int t, const char *k, int *n)
{
    *n = 0;
    if (lua_getfield(L, t, k) == LUA_TNIL) {
        lua_pop(L, 1);
        return NULL;
    }
    if (!lua_istable(L, -1))
        luaL_error(L, "r1.launch: '%s' expects a list of strings (got %s)", k,
                   luaL_typename(L, -1));
    int len = (int)luaL_len(L, -1);
    const char **v = lua_newuserdatauv(L, sizeof(char *) * (size_t)(len ? len : 1), 0);
    for (int i = 1; i <= len; i++) {
        lua_geti(L, -2, i);
        if (!lua_isstring(L, -1))
            luaL_error(L, "r1.launch: %s[%d] expects a string (got %s)", k, i,
                       luaL_typename(L, -1));
        v[i - 1] = lua_tostring(L, -1);
        lua_pop(L, 1); /* the string stays alive in the table */
    }
    lua_remove(L, -2); /* the list table stays referenced by the options; keep the array */
    *n = len;
    return v;
}

/* every key of the table at t is one of keys, or an error naming it (and the closest) */
static void check_keys(lua_State *L, int t, const char *const *keys)
{
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?";
        const char *best = NULL;
        int bd = 3, known = 0;
        for (int i = 0; keys[i]; i++) {
            int d = r1_settings_distance(k, keys[i]);
            known |= d == 0;
            if (d < bd)
                bd = d, best = keys[i];
        }
        if (!known && best)
            luaL_error(L, "unknown option '%s' for r1.launch (did you mean '%s'?)", k, best);
        if (!known)
            luaL_error(L, "unknown option '%s' for r1.launch (np, script, args, threads, "
                       "hostfile, mpirun_args, mpirun)", k);
    }
}

static int l_launch(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    static const char *const keys[] = {"np", "script", "args", "threads", "hostfile",
                                       "mpirun_args", "mpirun", NULL};
    check_keys(L, 1, keys);
    launch_opts o = {0};
    o.np = (int)lua_r1_opt_int(L, 1, "np", 0);
    if (o.np < 1)
        return luaL_error(L, "r1.launch: np = N (the number of ranks, >= 1) is required");
    o.script = lua_r1_opt_str(L, 1, "script", NULL);
    if (!o.script)
        return luaL_error(L, "r1.launch: script = \"FILE.lua\" is required");
    o.threads = (int)lua_r1_opt_int(L, 1, "threads", 0);
    o.hostfile = lua_r1_opt_str(L, 1, "hostfile", NULL);
    o.mpirun = lua_r1_opt_str(L, 1, "mpirun", NULL);
    o.args = strings(L, 1, "args", &o.nargs);
    o.extra = strings(L, 1, "mpirun_args", &o.nextra);
    char err[1024];
    launch_job *j = launch_start(&o, lua_r1_observer_get(), err, sizeof err);
    if (!j)
        return luaL_error(L, "r1.launch: %s", err);
    launch_job **u = lua_newuserdatauv(L, sizeof *u, 0);
    *u = j;
    luaL_setmetatable(L, JOB);
    return 1;
}

void lua_launch_open(lua_State *L)
{
    static const luaL_Reg methods[] = {{"running", l_running}, {"wait", l_wait},
                                       {"stop", l_stop}, {NULL, NULL}};
    if (luaL_newmetatable(L, JOB)) {
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "methods");
        lua_pushcfunction(L, l_index);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_pop(L, 1);
    lua_getglobal(L, "r1");
    lua_pushcfunction(L, l_launch);
    lua_setfield(L, -2, "launch");
    lua_pop(L, 1);
}
