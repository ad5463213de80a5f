/* lua_ui.c — the `ui` Lua table and print/io.write to the output pane (see lua_ui.h).  Every event is built in C memory owned by the event (ev_new / ev_free) and
 * posted before anything can raise, or freed on the error path: a Lua error never leaks one. */
#include <config.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "events.h"
#include "lua_r1.h"
#include "lua_ui.h"

/* ------------------------------------------------------------------ ui.step, ui.group */

/* Reads field `key` of the table at idx, a list of equal-length number lists, into a userdata
 * [rows, cols] that it leaves on the stack (the Lua GC owns it while reading raises); pushes
 * nil and returns NULL when the field is absent. */
static float *read_matrix(lua_State *L, int idx, const char *key, int *rows, int *cols)
{
    *rows = *cols = 0;
    if (lua_getfield(L, idx, key) == LUA_TNIL)
        return NULL;
    if (!lua_istable(L, -1))
        luaL_error(L, "ui.step: '%s' expects a list of number lists", key);
    int t = lua_gettop(L);
    int r = (int)lua_rawlen(L, t), c = -1;
    for (int i = 1; i <= r; i++) {
        lua_rawgeti(L, t, i);
        if (!lua_istable(L, -1))
            luaL_error(L, "ui.step: '%s' row %d is not a list", key, i);
        int n = (int)lua_rawlen(L, -1);
        if (c >= 0 && n != c)
            luaL_error(L, "ui.step: '%s' row %d has %d values, row 1 has %d", key, i, n, c);
        c = n;
        lua_pop(L, 1);
    }
    if (r < 1 || c < 1) {
        lua_pop(L, 1);
        lua_pushnil(L);
        return NULL;
    }
    float *v = lua_newuserdatauv(L, sizeof(float) * (size_t)r * c, 0);
    for (int i = 0; i < r; i++) {
        lua_rawgeti(L, t, i + 1);
        for (int j = 0; j < c; j++) {
            lua_rawgeti(L, -1, j + 1);
            int ok;
            lua_Number x = lua_tonumberx(L, -1, &ok);
            if (!ok)
                luaL_error(L, "ui.step: '%s'[%d][%d] is not a number", key, i + 1, j + 1);
            v[(size_t)i * c + j] = (float)x;
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    lua_remove(L, t); /* leave the userdata */
    *rows = r;
    *cols = c;
    return v;
}

/* ui.step{stage=, step=, total=, stats={name=value}, load={{...}}, bias={{...}}} */
static int l_step(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *stage = lua_r1_opt_str(L, 1, "stage", "train");
    int step = (int)lua_r1_opt_int(L, 1, "step", 0);
    int total = (int)lua_r1_opt_int(L, 1, "total", 0);
    const char *names[48]; /* keys of the stats table, which stays on the stack */
    double values[48];
    int nstats = 0;
    if (lua_getfield(L, 1, "stats") == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TNUMBER && nstats < 48) {
                names[nstats] = lua_tostring(L, -2);
                values[nstats++] = lua_tonumber(L, -1);
            }
            lua_pop(L, 1);
        }
    } else if (!lua_isnil(L, -1)) {
        return luaL_error(L, "ui.step: 'stats' expects a table of name = number");
    }
    int lr, lc, br, bc;
    const float *load = read_matrix(L, 1, "load", &lr, &lc);
    const float *bias = read_matrix(L, 1, "bias", &br, &bc);
    if (bias && (!load || br != lr || bc != lc))
        return luaL_error(L, "ui.step: 'bias' (%dx%d) needs a 'load' of the same shape", br, bc);
    /* nothing raises from here; the stats table is still on the stack below the matrices */
    const lua_r1_observer *obs = lua_r1_observer_get();
    lua_r1_step st = {stage, step, total, nstats, names, values, load ? lr : 0, load ? lc : 0,
                      load, bias};
    if (obs)
        obs->step(&st);
    return 0;
}

/* ui.group{prompt=, reward_names={...}, completions={{text=, rewards={...}, total=,
 *          advantage=, correct=}, ...}} — total defaults to the sum of the rewards, the
 * advantage to (total - mean) / std over the group. */
static int l_group(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    if (lua_getfield(L, 1, "completions") != LUA_TTABLE)
        return luaL_error(L, "ui.group: 'completions' expects a list of tables");
    int comp = lua_gettop(L);
    int n = (int)lua_rawlen(L, comp);
    if (n > 64)
        n = 64;
    char names[8][24];
    int nnames = 0;
    if (lua_getfield(L, 1, "reward_names") == LUA_TTABLE) {
        for (int i = 1; i <= (int)lua_rawlen(L, -1) && nnames < 8; i++) {
            lua_rawgeti(L, -1, i);
            snprintf(names[nnames++], sizeof names[0], "%s",
                     lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    /* read everything into a userdata first: reading may raise */
    ev_completion *tmp = lua_newuserdatauv(L, sizeof *tmp * (size_t)(n ? n : 1), 0);
    memset(tmp, 0, sizeof *tmp * (size_t)(n ? n : 1));
    int texts = lua_gettop(L) + 1;
    lua_createtable(L, n, 0); /* the texts, kept as Lua strings until copied */
    double sum = 0, sq = 0;
    int has_adv[64] = {0};
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, comp, i + 1);
        if (!lua_istable(L, -1))
            return luaL_error(L, "ui.group: completion %d is not a table", i + 1);
        int c = lua_gettop(L);
        lua_getfield(L, c, "text");
        lua_rawseti(L, texts, i + 1);
        double tot = 0;
        if (lua_getfield(L, c, "rewards") == LUA_TTABLE) {
            for (int j = 0; j < 8; j++) {
                int t;
                if (j < (int)lua_rawlen(L, -1))
                    t = lua_rawgeti(L, -1, j + 1);
                else if (j < nnames)
                    t = lua_getfield(L, -1, names[j]);
                else
                    break;
                if (t == LUA_TNUMBER) {
                    tmp[i].rewards[j] = lua_tonumber(L, -1);
                    tot += tmp[i].rewards[j];
                    tmp[i].nrewards = j + 1;
                }
                lua_pop(L, 1);
            }
        }
        lua_pop(L, 1);
        tmp[i].total = lua_r1_opt_num(L, c, "total", tot);
        lua_getfield(L, c, "advantage");
        has_adv[i] = lua_type(L, -1) == LUA_TNUMBER;
        tmp[i].advantage = has_adv[i] ? lua_tonumber(L, -1) : 0;
        lua_pop(L, 1);
        lua_getfield(L, c, "correct");
        tmp[i].correct = lua_isboolean(L, -1)   ? lua_toboolean(L, -1)
                         : lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1)
                                                : -1;
        lua_pop(L, 2);
        sum += tmp[i].total;
        sq += tmp[i].total * tmp[i].total;
    }
    double mean = n ? sum / n : 0, var = n ? sq / n - mean * mean : 0;
    double sd = var > 0 ? sqrt(var) : 0;
    for (int i = 0; i < n; i++)
        if (!has_adv[i])
            tmp[i].advantage = sd > 1e-9 ? (tmp[i].total - mean) / sd : 0;
    const char *prompt = lua_r1_opt_str(L, 1, "prompt", NULL);
    /* nothing raises from here */
    ev *e = ev_new(EV_GROUP);
    if (!e)
        return 0;
    e->completions = calloc((size_t)(n ? n : 1), sizeof *e->completions);
    e->text = prompt ? strdup(prompt) : NULL;
    if (!e->completions) {
        ev_free(e);
        return 0;
    }
    e->n = n;
    for (int i = 0; i < n; i++) {
        e->completions[i] = tmp[i];
        lua_rawgeti(L, texts, i + 1);
        const char *t = lua_tostring(L, -1);
        e->completions[i].text = strdup(t ? t : "");
        lua_pop(L, 1);
    }
    e->nreward_names = nnames;
    memcpy(e->reward_names, names, sizeof names);
    ev_post(e);
    return 0;
}

/* ui.active() -> true when a workbench shows the events */
static int l_active(lua_State *L)
{
    lua_pushboolean(L, ev_sink_active());
    return 1;
}

static const luaL_Reg ui_funcs[] = {
    {"step", l_step}, {"group", l_group}, {"active", l_active}, {NULL, NULL}};

void lua_ui_open(lua_State *L)
{
    luaL_newlib(L, ui_funcs);
    lua_ui_views_open(L);
    lua_setglobal(L, "ui");
}

/* ------------------------------------------------------------------ print and io.write */

static int l_print(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1)
            luaL_addchar(&b, '\t');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_addchar(&b, '\n');
    luaL_pushresult(&b);
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    ev_print(s, len);
    return 0;
}

/* io.write(...) as liolib's g_write formats it; returns io.stdout like the original */
static int l_write(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (lua_type(L, i) == LUA_TNUMBER) {
            char num[64];
            if (lua_isinteger(L, i))
                snprintf(num, sizeof num, LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(L, i));
            else
                snprintf(num, sizeof num, LUA_NUMBER_FMT, (LUAI_UACNUMBER)lua_tonumber(L, i));
            luaL_addstring(&b, num);
        } else {
            size_t l;
            const char *s = luaL_checklstring(L, i, &l);
            luaL_addlstring(&b, s, l);
        }
    }
    luaL_pushresult(&b);
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    ev_print(s, len);
    lua_pushvalue(L, lua_upvalueindex(1));
    return 1;
}

void lua_ui_redirect_output(lua_State *L)
{
    lua_pushcfunction(L, l_print);
    lua_setglobal(L, "print");
    if (lua_getglobal(L, "io") == LUA_TTABLE) {
        lua_getfield(L, -1, "stdout");
        lua_pushcclosure(L, l_write, 1);
        lua_setfield(L, -2, "write");
    }
    lua_pop(L, 1);
}
