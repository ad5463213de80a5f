/* lua_tokenizer.c — the tokenizer in Lua:
 *   r1.tokenizer([dir])  tok:encode(s [, {chat=true}]), tok:decode(ids), tok:token(id),
 *                        tok:vocab_size(), tok:special(name), tok:save(path), tok:close()
 * and the encode/decode helpers the other binding files use.  The userdata owns its
 * r1_tokenizer (freed by __close/__gc); conventions as in lua_r1.h. */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "lua_r1.h"

lua_tokenizer *lua_tokenizer_check(lua_State *L, int idx)
{
    lua_tokenizer *u = luaL_checkudata(L, idx, LUA_R1_TOKENIZER);
    if (!u->t)
        luaL_error(L, "attempt to use a closed tokenizer");
    return u;
}

lua_tokenizer *lua_tokenizer_push(lua_State *L)
{
    lua_tokenizer *u = lua_newuserdatauv(L, sizeof *u, 0); /* box first */
    u->t = NULL;
    luaL_setmetatable(L, LUA_R1_TOKENIZER);
    return u;
}

/* r1.tokenizer([dir or tokenizer.json]) -> the built-in one, or the one saved there */
static int l_tokenizer(lua_State *L)
{
    int builtin = lua_isnoneornil(L, 1);
    const char *path = builtin ? NULL : luaL_checkstring(L, 1);
    lua_tokenizer *u = lua_tokenizer_push(L);
    if (builtin) {
        u->t = r1_tokenizer_new_builtin();
        if (!u->t)
            return luaL_error(L, "out of memory");
        return 1;
    }
    r1_error err = {0};
    if (r1_tokenizer_load(&u->t, path, &err) != R1_OK)
        return luaL_error(L, "%s", err.msg);
    return 1;
}

int32_t *lua_r1_encode(lua_State *L, const r1_tokenizer *t, const char *s, int chat, int *n)
{
    size_t len = strlen(s);
    int cap = (int)len + 16;
    int32_t *ids = lua_newuserdatauv(L, sizeof(int32_t) * cap, 0);
    r1_error err = {0};
    r1_status st = chat ? r1_tokenizer_encode_prompt(t, s, ids, cap, n, &err)
                        : r1_tokenizer_encode(t, s, ids, cap, n, &err);
    if (st != R1_OK)
        luaL_error(L, "%s", err.msg);
    return ids;
}

void lua_r1_push_decoded(lua_State *L, const r1_tokenizer *t, const int32_t *ids, int n)
{
    char *text = NULL;
    r1_error err = {0};
    if (r1_tokenizer_decode(t, ids, n, &text, &err) != R1_OK)
        luaL_error(L, "%s", err.msg);
    lua_pushstring(L, text);
    free(text);
}

/* tok:encode(s [, {chat = true}]) -> ids (chat: the generation prompt of the chat format) */
static int tok_encode(lua_State *L)
{
    lua_tokenizer *u = lua_tokenizer_check(L, 1);
    const char *s = luaL_checkstring(L, 2);
    int chat = lua_r1_opt_bool(L, 3, "chat", 0), n;
    int32_t *ids = lua_r1_encode(L, u->t, s, chat, &n);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushinteger(L, ids[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int tok_decode(lua_State *L)
{
    lua_tokenizer *u = lua_tokenizer_check(L, 1);
    int n;
    int32_t *ids = lua_r1_ids(L, 2, 2, &n);
    lua_r1_push_decoded(L, u->t, ids, n);
    return 1;
}

static int tok_token(lua_State *L)
{
    lua_tokenizer *u = lua_tokenizer_check(L, 1);
    const char *s = r1_tokenizer_token(u->t, (int)luaL_checkinteger(L, 2));
    if (!s)
        return luaL_argerror(L, 2, "token id out of range");
    lua_pushstring(L, s);
    return 1;
}

static int tok_vocab(lua_State *L)
{
    lua_pushinteger(L, r1_tokenizer_vocab_size(lua_tokenizer_check(L, 1)->t));
    return 1;
}

/* tok:special("eos") -> id */
static int tok_special(lua_State *L)
{
    lua_tokenizer *u = lua_tokenizer_check(L, 1);
    static const char *const names[] = {"pad",    "bos",     "eos",    "user",       "assistant",
                                        "think",  "think_end", "answer", "answer_end", NULL};
    int which = luaL_checkoption(L, 2, NULL, names);
    lua_pushinteger(L, r1_tokenizer_special_id(u->t, which));
    return 1;
}

static int tok_save(lua_State *L)
{
    lua_tokenizer *u = lua_tokenizer_check(L, 1);
    r1_error err = {0};
    if (r1_tokenizer_save(u->t, luaL_checkstring(L, 2), &err) != R1_OK)
        return luaL_error(L, "%s", err.msg);
    return 0;
}

static int tok_close(lua_State *L)
{
    lua_tokenizer *u = luaL_checkudata(L, 1, LUA_R1_TOKENIZER);
    r1_tokenizer_free(u->t);
    u->t = NULL;
    return 0;
}

static int tok_tostring(lua_State *L)
{
    lua_tokenizer *u = luaL_checkudata(L, 1, LUA_R1_TOKENIZER);
    if (u->t)
        lua_pushfstring(L, "r1.tokenizer (%d tokens)", r1_tokenizer_vocab_size(u->t));
    else
        lua_pushliteral(L, "r1.tokenizer (closed)");
    return 1;
}

static const luaL_Reg tok_methods[] = {{"encode", tok_encode},   {"decode", tok_decode},
                                       {"token", tok_token},     {"vocab_size", tok_vocab},
                                       {"special", tok_special}, {"save", tok_save},
                                       {"close", tok_close},     {NULL, NULL}};
static const luaL_Reg tok_meta[] = {
    {"__gc", tok_close}, {"__close", tok_close}, {"__tostring", tok_tostring}, {NULL, NULL}};
void lua_tokenizer_open(lua_State *L)
{
    luaL_newmetatable(L, LUA_R1_TOKENIZER);
    luaL_setfuncs(L, tok_meta, 0);
    luaL_newlib(L, tok_methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    lua_pushcfunction(L, l_tokenizer);
    lua_setfield(L, -2, "tokenizer"); /* into the module table on top */
}
