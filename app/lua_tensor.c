/* lua_tensor.c — r1.tensor: a dense F32 or I32 array with a shape, returned by m:forward and
 * friends.  Indexing is 1-based as everywhere in Lua.  The data is malloc'd and freed by
 * __close or __gc; allocating a tensor nudges the garbage collector by its size so that large
 * tensors do not pile up unseen (the mistake Torch7's userdata made). */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "lua_r1.h"

lua_tensor *lua_tensor_push(lua_State *L, int ndim, const int64_t *shape, int is_int)
{
    lua_tensor *t = lua_newuserdatauv(L, sizeof *t, 0); /* box first */
    memset(t, 0, sizeof *t);
    luaL_setmetatable(L, LUA_R1_TENSOR);
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        n *= (size_t)shape[i];
    }
    t->ndim = ndim;
    t->n = n;
    t->is_int = is_int;
    t->data = calloc(n ? n : 1, 4);
    if (!t->data)
        luaL_error(L, "out of memory for a tensor of %zu values", n);
    lua_gc(L, LUA_GCSTEP, (int)(n * 4 / 1024));
    return t;
}

lua_tensor *lua_tensor_check(lua_State *L, int idx)
{
    lua_tensor *t = luaL_checkudata(L, idx, LUA_R1_TENSOR);
    if (!t->data)
        luaL_error(L, "attempt to use a closed tensor");
    return t;
}

static void push_value(lua_State *L, const lua_tensor *t, size_t i)
{
    if (t->is_int)
        lua_pushinteger(L, ((const int32_t *)t->data)[i]);
    else
        lua_pushnumber(L, ((const float *)t->data)[i]);
}

/* t:shape() -> {d1, d2, ...} */
static int t_shape(lua_State *L)
{
    lua_tensor *t = lua_tensor_check(L, 1);
    lua_createtable(L, t->ndim, 0);
    for (int i = 0; i < t->ndim; i++) {
        lua_pushinteger(L, t->shape[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* t:get(i, j, ...) with one 1-based index per dimension */
static int t_get(lua_State *L)
{
    lua_tensor *t = lua_tensor_check(L, 1);
    if (lua_gettop(L) - 1 != t->ndim)
        return luaL_error(L, "tensor:get expects %d indices, got %d", t->ndim,
                          lua_gettop(L) - 1);
    size_t off = 0;
    for (int d = 0; d < t->ndim; d++) {
        lua_Integer i = luaL_checkinteger(L, d + 2);
        if (i < 1 || i > t->shape[d])
            return luaL_error(L, "tensor:get: index %d is %d, outside 1..%d", d + 1, (int)i,
                              (int)t->shape[d]);
        off = off * t->shape[d] + (size_t)(i - 1);
    }
    push_value(L, t, off);
    return 1;
}

static void tolist(lua_State *L, const lua_tensor *t, int d, size_t *off)
{
    lua_createtable(L, (int)t->shape[d], 0);
    for (int64_t i = 0; i < t->shape[d]; i++) {
        if (d + 1 == t->ndim)
            push_value(L, t, (*off)++);
        else
            tolist(L, t, d + 1, off);
        lua_rawseti(L, -2, i + 1);
    }
}

/* t:tolist() -> nested tables */
static int t_tolist(lua_State *L)
{
    lua_tensor *t = lua_tensor_check(L, 1);
    size_t off = 0;
    if (t->ndim == 0) {
        push_value(L, t, 0);
        return 1;
    }
    tolist(L, t, 0, &off);
    return 1;
}

static int t_numel(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)lua_tensor_check(L, 1)->n);
    return 1;
}

static int t_len(lua_State *L)
{
    lua_tensor *t = lua_tensor_check(L, 1);
    lua_pushinteger(L, t->ndim ? t->shape[0] : 0);
    return 1;
}

static int t_close(lua_State *L)
{
    lua_tensor *t = luaL_checkudata(L, 1, LUA_R1_TENSOR);
    free(t->data);
    t->data = NULL;
    return 0;
}

static int t_closed(lua_State *L)
{
    lua_pushboolean(L, luaL_checkudata(L, 1, LUA_R1_TENSOR) == NULL ||
                           ((lua_tensor *)luaL_checkudata(L, 1, LUA_R1_TENSOR))->data == NULL);
    return 1;
}

static int t_tostring(lua_State *L)
{
    lua_tensor *t = luaL_checkudata(L, 1, LUA_R1_TENSOR);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, t->is_int ? "r1.tensor I32 [" : "r1.tensor F32 [");
    for (int i = 0; i < t->ndim; i++) {
        lua_pushfstring(L, i ? ", %I" : "%I", (lua_Integer)t->shape[i]);
        luaL_addvalue(&b);
    }
    luaL_addstring(&b, t->data ? "]" : "] (closed)");
    luaL_pushresult(&b);
    return 1;
}

static const luaL_Reg tensor_methods[] = {{"shape", t_shape},   {"get", t_get},
                                          {"tolist", t_tolist}, {"numel", t_numel},
                                          {"close", t_close},   {"closed", t_closed},
                                          {NULL, NULL}};
static const luaL_Reg tensor_meta[] = {{"__gc", t_close},
                                       {"__close", t_close},
                                       {"__len", t_len},
                                       {"__tostring", t_tostring},
                                       {NULL, NULL}};

void lua_tensor_open(lua_State *L)
{
    luaL_newmetatable(L, LUA_R1_TENSOR);
    luaL_setfuncs(L, tensor_meta, 0);
    luaL_newlib(L, tensor_methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}
