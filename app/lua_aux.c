/* lua_aux.c — the helpers every binding file shares (declared in lua_r1.h): option tables and
 * the settings tables read from them, task specs, id lists, and the protected calls into Lua
 * from engine callbacks.  The bottom layer of the binding: it calls no other binding file. */
#include <config.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua_r1.h"

static void bad_option(lua_State *L, const char *key, const char *want)
{
    luaL_error(L, "bad option '%s' (%s expected, got %s)", key, want, luaL_typename(L, -1));
}

/* Pushes field key of the table at idx (nil when idx is not a table). */
static int get_opt(lua_State *L, int idx, const char *key)
{
    if (!lua_istable(L, idx)) {
        if (!lua_isnoneornil(L, idx))
            luaL_error(L, "bad options (table expected, got %s)", luaL_typename(L, idx));
        lua_pushnil(L);
        return 0;
    }
    return lua_getfield(L, idx, key) != LUA_TNIL;
}

void lua_r1_task_spec(lua_State *L, const char *who, int i, const char *spec, int dflt,
                      const r1_task **task, int *lo, int *hi)
{
    r1_error err = {0};
    if (r1_task_parse_entry(spec, strlen(spec), task, lo, hi, &err) != R1_OK)
        luaL_error(L, "%s: tasks[%d] %s", who, i, err.msg);
    if (*lo == 0) {
        *lo = *hi = dflt ? dflt : r1_task_train_difficulty(*task);
        if (*lo > r1_task_max_difficulty(*task))
            luaL_error(L, "%s: difficulty %d outside 1..%d for task %s", who, *lo,
                       r1_task_max_difficulty(*task), r1_task_name(*task));
    }
}

int lua_r1_opt_int_in(lua_State *L, int idx, const char *key, int def, int lo, int hi)
{
    lua_Integer v = lua_r1_opt_int(L, idx, key, def);
    if (v < lo || v > hi) /* before the cast to int: 2^32 + 1 must not read as 1 */
        luaL_error(L, "bad option '%s' (an integer in %d..%d expected, got %I)", key, lo, hi,
                   (LUAI_UACINT)v);
    return (int)v;
}

lua_Integer lua_r1_opt_int(lua_State *L, int idx, const char *key, lua_Integer def)
{
    idx = lua_absindex(L, idx);
    if (get_opt(L, idx, key)) {
        if (!lua_isinteger(L, -1)) {
            lua_Number x = lua_tonumber(L, -1);
            if (!lua_isnumber(L, -1) || x != (lua_Number)(lua_Integer)x)
                bad_option(L, key, "integer");
        }
        def = lua_tointeger(L, -1);
    }
    lua_pop(L, 1);
    return def;
}

lua_Number lua_r1_opt_num(lua_State *L, int idx, const char *key, lua_Number def)
{
    idx = lua_absindex(L, idx);
    if (get_opt(L, idx, key)) {
        if (lua_type(L, -1) != LUA_TNUMBER)
            bad_option(L, key, "number");
        def = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
    return def;
}

int lua_r1_opt_bool(lua_State *L, int idx, const char *key, int def)
{
    idx = lua_absindex(L, idx);
    if (get_opt(L, idx, key)) {
        if (!lua_isboolean(L, -1))
            bad_option(L, key, "boolean");
        def = lua_toboolean(L, -1);
    }
    lua_pop(L, 1);
    return def;
}

const char *lua_r1_opt_str(lua_State *L, int idx, const char *key, const char *def)
{
    idx = lua_absindex(L, idx);
    const char *s = def;
    if (get_opt(L, idx, key)) {
        if (lua_type(L, -1) != LUA_TSTRING)
            bad_option(L, key, "string");
        /* the string stays alive: it is a field of the caller's table */
        s = lua_tostring(L, -1);
    }
    lua_pop(L, 1);
    return s;
}

int lua_r1_opt_fn(lua_State *L, int idx, const char *key)
{
    idx = lua_absindex(L, idx);
    if (get_opt(L, idx, key)) {
        if (!lua_isfunction(L, -1))
            bad_option(L, key, "function");
        return 1;
    }
    lua_pop(L, 1);
    return 0;
}

int32_t *lua_r1_ids(lua_State *L, int idx, int arg, int *n)
{
    idx = lua_absindex(L, idx);
    luaL_argexpected(L, lua_istable(L, idx), arg, "table of token ids");
    int len = (int)lua_rawlen(L, idx);
    int32_t *v = lua_newuserdatauv(L, sizeof(int32_t) * (size_t)(len + 1), 0);
    for (int i = 0; i < len; i++) {
        lua_rawgeti(L, idx, i + 1);
        int isint;
        lua_Integer x = lua_tointegerx(L, -1, &isint);
        if (!isint || x < 0 || x > 0x7fffffff)
            luaL_error(L, "bad argument #%d (token %d: expected an id >= 0, got %s)", arg, i + 1,
                       isint ? "a negative number" : luaL_typename(L, -1));
        v[i] = (int32_t)x;
        lua_pop(L, 1);
    }
    *n = len;
    return v;
}

/* r1.save_tensors(path, {name = tensor, ...}): a safetensors file other tools can read. */
/* The value at the top of the stack as setting e of s; raises naming where and the key. */
static void set_value(lua_State *L, const r1_setting *e, void *s, const char *where)
{
    r1_error err = {0};
    r1_status st;
    int t = lua_type(L, -1);
    if (t == LUA_TNUMBER) {
        st = r1_settings_set_number(e, s, lua_tonumber(L, -1), where, &err);
    } else if (t == LUA_TBOOLEAN) {
        st = r1_settings_set_bool(e, s, lua_toboolean(L, -1), where, &err);
    } else if (t == LUA_TSTRING) {
        st = r1_settings_set_text(e, s, lua_tostring(L, -1), where, &err);
    } else if (t == LUA_TTABLE && e->type == R1_SET_TEXT) { /* {"add:4", "mul"}: a list */
        luaL_Buffer b;
        int tbl = lua_gettop(L);
        luaL_buffinit(L, &b);
        lua_Integer k = (lua_Integer)lua_rawlen(L, tbl);
        for (lua_Integer i = 1; i <= k; i++) {
            if (i > 1) /* before the push: only luaL_addvalue takes a value above the buffer */
                luaL_addchar(&b, ',');
            lua_rawgeti(L, tbl, i);
            if (lua_type(L, -1) != LUA_TSTRING)
                luaL_error(L, "%s: %s[%d]: expected a string, got %s", where, e->name, (int)i,
                           luaL_typename(L, -1));
            luaL_addvalue(&b);
        }
        luaL_pushresult(&b);
        st = r1_settings_set_text(e, s, lua_tostring(L, -1), where, &err);
        lua_pop(L, 1);
    } else {
        return (void)luaL_error(L, "%s: %s: unexpected %s", where, e->name, luaL_typename(L, -1));
    }
    if (st != R1_OK)
        luaL_error(L, "%s", err.msg);
}

void lua_r1_read_settings(lua_State *L, int idx, const r1_settings_table *t, void *s,
                          const char *where, const char *const *extra)
{
    idx = lua_absindex(L, idx);
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            lua_pop(L, 1);
            continue; /* positional entries are the caller's */
        }
        const char *key = lua_tostring(L, -2);
        int skip = 0;
        for (int i = 0; extra && extra[i]; i++)
            skip |= !strcmp(extra[i], key);
        if (!skip) {
            int old;
            r1_error err = {0};
            const r1_setting *e = r1_settings_find(t, key, &old, where, &err);
            if (!e) { /* the caller's own keys are candidates for the suggestion too */
                const char *best = r1_settings_suggest(t, key);
                int bd = best ? r1_settings_distance(key, best) : 3;
                for (int i = 0; extra && extra[i]; i++)
                    if (r1_settings_distance(key, extra[i]) < bd) {
                        bd = r1_settings_distance(key, extra[i]);
                        best = extra[i];
                    }
                if (best)
                    luaL_error(L, "unknown option '%s' for %s (did you mean '%s'?)", key, where,
                               best);
                luaL_error(L, "%s", err.msg);
            }
            if (old)
                fprintf(stderr, "%s: option '%s' is deprecated: use '%s'\n", where, key, e->name);
            set_value(L, e, s, where);
        }
        lua_pop(L, 1);
    }
}

/* ------------------------------------------------------------------ protected callbacks */

int lua_r1_traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

typedef struct {
    int (*push)(lua_State *L, void *ud);
    void *ud;
    int call; /* 1: call the function at 1 with its arguments; 0: return what push pushed */
    int nres;
} trampoline_arg;

/* Runs inside lua_pcall: the arguments are built here, so that even a memory error while
 * building them is caught instead of unwinding through the engine's frames.  Note that this is
 * a C function's own frame: push must not use the caller's stack indices (values it needs go
 * in as arguments, nargs of lua_r1_pcall_with). */
static int trampoline(lua_State *L)
{
    trampoline_arg *a = lua_touserdata(L, lua_upvalueindex(1));
    int pre = lua_gettop(L);
    int n = a->push ? a->push(L, a->ud) : 0;
    if (!a->call)
        return n;
    lua_call(L, pre - 1 + n, a->nres);
    return a->nres;
}

/* fn: an absolute index or 0; the nargs values on top go in first. */
static int protected(lua_State *L, int fn, int nargs, int (*push)(lua_State *L, void *ud),
                     void *ud, int nres)
{
    trampoline_arg a = {push, ud, fn != 0, nres};
    if (!lua_checkstack(L, 8)) {
        lua_pop(L, nargs);
        return LUA_ERRMEM; /* nothing pushed: the caller's own error path reports it */
    }
    int base = lua_gettop(L) - nargs + 1;
    lua_pushcfunction(L, lua_r1_traceback);
    lua_pushlightuserdata(L, &a);
    lua_pushcclosure(L, trampoline, 1);
    if (fn)
        lua_pushvalue(L, fn);
    lua_rotate(L, base, 2 + (fn != 0)); /* handler, trampoline, fn below the arguments */
    int st = lua_pcall(L, (fn != 0) + nargs, nres, base);
    lua_remove(L, base);
    return st;
}

int lua_r1_pcall_with(lua_State *L, int fn, int nargs, int (*push)(lua_State *L, void *ud),
                      void *ud, int nres)
{
    return protected(L, lua_absindex(L, fn), nargs, push, ud, nres);
}

int lua_r1_protect(lua_State *L, int (*push)(lua_State *L, void *ud), void *ud, int nres)
{
    return protected(L, 0, 0, push, ud, nres);
}

int lua_r1_callback(lua_State *L, int fn, int (*push)(lua_State *L, void *ud), void *ud,
                    int *err_ref)
{
    int top = lua_gettop(L);
    int st = lua_r1_pcall_with(L, fn, 0, push, ud, 1);
    if (st != LUA_OK && r1_interrupted()) { /* Ctrl-C raised inside the callback: a stop */
        lua_settop(L, top);
        return 1;
    }
    if (st != LUA_OK) { /* the message, or nothing when not even the stack could grow */
        *err_ref = lua_gettop(L) > top ? luaL_ref(L, LUA_REGISTRYINDEX) : LUA_REFNIL;
        return -1;
    }
    int stop = lua_isboolean(L, -1) && !lua_toboolean(L, -1);
    lua_pop(L, 1);
    return stop;
}

int lua_r1_raise_ref(lua_State *L, int ref)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    luaL_unref(L, LUA_REGISTRYINDEX, ref);
    return lua_error(L);
}

void lua_r1_gc_hint(lua_State *L, size_t bytes)
{
    size_t kb = bytes >> 10;
    lua_gc(L, LUA_GCSTEP, kb > INT_MAX ? INT_MAX : (int)kb);
}

static const lua_r1_observer *observer;

void lua_r1_set_observer(const lua_r1_observer *o)
{
    observer = o;
}

const lua_r1_observer *lua_r1_observer_get(void)
{
    return observer;
}

const lua_r1_observer *lua_r1_observer_watches_generation(void)
{
    return observer && observer->token ? observer : NULL;
}
