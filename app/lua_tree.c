/* lua_tree.c — reasoning trees from Lua: m:tree(prompt, opts) generates a completion, and
 * t:branch(node, index, token_or_text) regenerates from any of its tokens with another token
 * (an alternative of the token inspector, or typed text) forced in its place; every branch is
 * a node of the tree with its text, answer and, for a task problem, its verdict and reward.
 * Trees save to JSON (atomically) and load again; t:cell() gives the Lua that rebuilds one in
 * a notebook.
 *
 * A tree is a plain Lua table with the metatable "r1.tree" (its methods), so a script can read
 * every field:
 *   t.model       the model (not saved)
 *   t.prompt      the question as typed (nil for an id prompt); t.prompt_ids its tokens
 *   t.task, t.target   the task problem, when given: branches are judged
 *   t.opts        {max_tokens, temperature, seed} of every generation
 *   t.nodes[id]   {id, parent, at, forced, tokens, text, think, answer, correct, reward,
 *                  children = {ids}}: tokens is the node's whole completion; a branch keeps
 *                  its parent's tokens before `at` and starts with the forced tokens
 * Generation goes through m:generate, so the workbench shows every branch as it is written. */
#include <config.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"
#include "lua_r1.h"
#include "r1_completion.h"

#define LUA_R1_TREE "r1.tree"

/* Raises unless the value at idx is a tree. */
static void check_tree(lua_State *L, int idx, const char *who)
{
    int ok = lua_istable(L, idx) && lua_getmetatable(L, idx);
    if (ok) {
        luaL_getmetatable(L, LUA_R1_TREE);
        ok = lua_rawequal(L, -1, -2);
        lua_pop(L, 2);
    }
    if (!ok)
        luaL_error(L, "%s: expected a tree (from m:tree or r1.tree_load), got %s", who,
                   luaL_typename(L, idx));
}

/* Pushes t.nodes[id] for the node argument at idx (an id or a node table of this tree). */
static int push_node(lua_State *L, int tree, int idx, const char *who)
{
    lua_Integer id;
    if (lua_istable(L, idx)) {
        lua_getfield(L, idx, "id");
        id = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : 0;
        lua_pop(L, 1);
    } else {
        id = luaL_checkinteger(L, idx);
    }
    lua_getfield(L, tree, "nodes");
    lua_rawgeti(L, -1, id);
    lua_remove(L, -2);
    if (!lua_istable(L, -1) || (lua_istable(L, idx) && !lua_rawequal(L, -1, idx)))
        luaL_error(L, "%s: the node %s is not a node of this tree (it has %d nodes)", who,
                   lua_istable(L, idx) ? "given" : lua_tostring(L, idx),
                   (int)(lua_getfield(L, tree, "nodes"), lua_rawlen(L, -1)));
    return (int)id;
}

/* Fills node (a table on top) from its tokens: text, think, answer, and the verdict. */
static void judge(lua_State *L, int tree, int node, const lua_model *u)
{
    int n;
    lua_getfield(L, node, "tokens");
    int32_t *ids = lua_r1_ids(L, lua_gettop(L), 0, &n);
    if (!u->tok) {
        lua_pop(L, 2);
        return;
    }
    lua_r1_push_decoded(L, u->tok, ids, n);
    const char *text = lua_tostring(L, -1);
    r1_completion_parts parts;
    r1_reward_split(text, &parts);
    lua_pushlstring(L, parts.think, parts.think_len);
    lua_setfield(L, node, "think");
    if (parts.answer) {
        lua_pushlstring(L, parts.answer, parts.answer_len);
        lua_setfield(L, node, "answer");
    }
    lua_getfield(L, tree, "task");
    lua_getfield(L, tree, "target");
    if (lua_isstring(L, -2) && lua_isstring(L, -1)) {
        const r1_task *task = NULL;
        r1_error err = {0};
        if (r1_task_find(&task, lua_tostring(L, -2), &err) != R1_OK)
            luaL_error(L, "%s", err.msg);
        int v = r1_task_verify(task, lua_tostring(L, -1), text, NULL);
        lua_pushboolean(L, v == 1);
        lua_setfield(L, node, "correct");
        lua_pushnumber(L, v == 1 ? 1.0 : 0.0); /* the accuracy reward of the R1 recipe */
        lua_setfield(L, node, "reward");
    }
    lua_pop(L, 2);
    lua_setfield(L, node, "text");
    lua_pop(L, 2); /* ids buffer, tokens */
}

/* Generates the continuation of prompt_ids + prefix (a list on top, popped) with the tree's
 * options and pushes the whole completion (prefix + continuation) as a list. */
static void continue_from(lua_State *L, int tree, int model)
{
    int prefix = lua_gettop(L);
    int np = (int)lua_rawlen(L, prefix);
    lua_createtable(L, 0, 0);
    int full = lua_gettop(L);
    lua_getfield(L, tree, "prompt_ids");
    int nq = (int)lua_rawlen(L, -1);
    for (int i = 1; i <= nq; i++) {
        lua_rawgeti(L, -1, i);
        lua_rawseti(L, full, i);
    }
    lua_pop(L, 1);
    for (int i = 1; i <= np; i++) {
        lua_rawgeti(L, prefix, i);
        lua_rawseti(L, full, nq + i);
    }
    lua_getfield(L, tree, "opts");
    int opts = lua_gettop(L);
    lua_Integer max_tokens = (lua_getfield(L, opts, "max_tokens"), lua_tointeger(L, -1));
    lua_pop(L, 1);
    int stopped = np > 0 && (lua_rawgeti(L, prefix, np), lua_tointeger(L, -1)) == R1_TOK_EOS;
    if (np > 0)
        lua_pop(L, 1);
    if (max_tokens - np >= 1 && !stopped) {
        lua_getfield(L, model, "generate");
        lua_pushvalue(L, model);
        lua_pushvalue(L, full);
        lua_createtable(L, 0, 4);
        lua_pushinteger(L, max_tokens - np);
        lua_setfield(L, -2, "max_tokens");
        lua_getfield(L, opts, "temperature");
        lua_setfield(L, -2, "temperature");
        lua_getfield(L, opts, "seed");
        lua_setfield(L, -2, "seed");
        lua_call(L, 3, 1);
        lua_getfield(L, -1, "tokens");
        int ng = (int)lua_rawlen(L, -1);
        for (int i = 1; i <= ng; i++) {
            lua_rawgeti(L, -1, i);
            lua_rawseti(L, prefix, np + i);
        }
        lua_pop(L, 2);
    }
    lua_settop(L, prefix); /* the prefix list, now the whole completion */
}

/* Appends a node {parent, at, forced, tokens = list on top (popped)} and returns it on top. */
static void add_node(lua_State *L, int tree, int model, int parent, int at, const char *forced)
{
    int tokens = lua_gettop(L);
    lua_getfield(L, tree, "nodes");
    int nodes = lua_gettop(L);
    int id = (int)lua_rawlen(L, nodes) + 1;
    lua_createtable(L, 0, 12);
    int node = lua_gettop(L);
    lua_pushinteger(L, id);
    lua_setfield(L, node, "id");
    if (parent) {
        lua_pushinteger(L, parent);
        lua_setfield(L, node, "parent");
        lua_pushinteger(L, at);
        lua_setfield(L, node, "at");
        lua_pushstring(L, forced);
        lua_setfield(L, node, "forced");
    }
    lua_pushvalue(L, tokens);
    lua_setfield(L, node, "tokens");
    lua_newtable(L);
    lua_setfield(L, node, "children");
    judge(L, tree, node, lua_model_check(L, model));
    lua_pushvalue(L, node);
    lua_rawseti(L, nodes, id);
    if (parent) { /* parent.children += id */
        lua_rawgeti(L, nodes, parent);
        lua_getfield(L, -1, "children");
        lua_pushinteger(L, id);
        lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
        lua_pop(L, 2);
    }
    lua_replace(L, tokens);
    lua_settop(L, tokens);
}

/* m:tree(prompt [, {task, target, max_tokens = 256, temperature = 0, seed = 0, chat = true,
 *                   tokens}]) -> a tree whose node 1 is the prompt's completion (generated, or
 * the given token list). */
static int m_tree(lua_State *L)
{
    lua_model *u = lua_model_idle(L, 1, "m:tree");
    if (!lua_isnoneornil(L, 3))
        luaL_checktype(L, 3, LUA_TTABLE);
    lua_settop(L, 3);
    int chat = lua_r1_opt_bool(L, 3, "chat", 1);
    const char *task = lua_r1_opt_str(L, 3, "task", NULL);
    const char *target = lua_r1_opt_str(L, 3, "target", NULL);
    if (task) {
        const r1_task *t;
        r1_error err = {0};
        if (r1_task_find(&t, task, &err) != R1_OK)
            return luaL_error(L, "m:tree: %s", err.msg);
        if (!target)
            return luaL_error(L, "m:tree: a task needs its target (the right answer) to judge "
                              "the branches");
    }
    int n;
    int32_t *ids;
    if (lua_type(L, 2) == LUA_TSTRING) {
        if (!u->tok)
            return luaL_error(L, "m:tree: this model has no tokenizer: give token ids");
        ids = lua_r1_encode(L, u->tok, lua_tostring(L, 2), chat, &n);
    } else {
        ids = lua_r1_ids(L, 2, 2, &n);
    }
    if (n < 1)
        return luaL_error(L, "m:tree: the prompt is empty");
    lua_createtable(L, 0, 8);
    int tree = lua_gettop(L);
    luaL_setmetatable(L, LUA_R1_TREE);
    lua_pushvalue(L, 1);
    lua_setfield(L, tree, "model");
    if (lua_type(L, 2) == LUA_TSTRING) {
        lua_pushvalue(L, 2);
        lua_setfield(L, tree, "prompt");
    }
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushinteger(L, ids[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, tree, "prompt_ids");
    if (task) {
        lua_pushstring(L, task);
        lua_setfield(L, tree, "task");
        lua_pushstring(L, target);
        lua_setfield(L, tree, "target");
    }
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, lua_r1_opt_int_in(L, 3, "max_tokens", 256, 1, 1 << 16));
    lua_setfield(L, -2, "max_tokens");
    lua_pushnumber(L, lua_r1_opt_num(L, 3, "temperature", 0));
    lua_setfield(L, -2, "temperature");
    lua_pushinteger(L, lua_r1_opt_int(L, 3, "seed", 0));
    lua_setfield(L, -2, "seed");
    lua_setfield(L, tree, "opts");
    lua_newtable(L);
    lua_setfield(L, tree, "nodes");
    if (lua_istable(L, 3) && lua_getfield(L, 3, "tokens") != LUA_TNIL) { /* adopt them */
        int nt;
        int32_t *given = lua_r1_ids(L, lua_gettop(L), 3, &nt);
        lua_createtable(L, nt, 0);
        for (int i = 0; i < nt; i++) {
            lua_pushinteger(L, given[i]);
            lua_rawseti(L, -2, i + 1);
        }
    } else {
        lua_newtable(L);
        continue_from(L, tree, 1);
    }
    add_node(L, tree, 1, 0, 0, NULL);
    lua_pop(L, 1);
    lua_pushvalue(L, tree);
    return 1;
}

/* t:branch(node, index, token_or_text) -> the new node: node's tokens before `index` (1-based),
 * then the token id or the text's tokens in place of token `index`, then the model's
 * continuation. */
static int t_branch(lua_State *L)
{
    check_tree(L, 1, "t:branch");
    lua_getfield(L, 1, "model");
    int model = lua_gettop(L);
    lua_model *u = lua_model_idle(L, model, "t:branch");
    int parent = push_node(L, 1, 2, "t:branch");
    int node = lua_gettop(L);
    lua_getfield(L, node, "tokens");
    int ntok = (int)lua_rawlen(L, -1);
    int toks = lua_gettop(L);
    lua_Integer at = luaL_checkinteger(L, 3);
    if (at < 1 || at > ntok + 1)
        return luaL_error(L, "t:branch: index %d is outside node %d's %d tokens (1..%d)",
                          (int)at, parent, ntok, ntok + 1);
    int nf;
    int32_t *forced;
    if (lua_type(L, 4) == LUA_TSTRING) {
        if (!u->tok)
            return luaL_error(L, "t:branch: this model has no tokenizer: give a token id");
        forced = lua_r1_encode(L, u->tok, lua_tostring(L, 4), 0, &nf);
        if (nf < 1)
            return luaL_error(L, "t:branch: the text to force is empty");
    } else {
        lua_Integer id = luaL_checkinteger(L, 4);
        int V = r1_model_config(u->m)->vocab_size;
        if (id < 0 || id >= V)
            return luaL_error(L, "t:branch: token %d is outside the vocabulary (0..%d)",
                              (int)id, V - 1);
        forced = lua_newuserdatauv(L, sizeof(int32_t), 0);
        forced[0] = (int32_t)id;
        nf = 1;
    }
    char shown[256] = "";
    size_t k = 0;
    for (int i = 0; i < nf && u->tok; i++)
        k += (size_t)snprintf(shown + k, k < sizeof shown ? sizeof shown - k : 0, "%s",
                              r1_tokenizer_token(u->tok, forced[i]));
    if (!u->tok)
        snprintf(shown, sizeof shown, "%d", (int)forced[0]);
    lua_createtable(L, (int)at - 1 + nf, 0);
    for (int i = 1; i < at; i++) {
        lua_rawgeti(L, toks, i);
        lua_rawseti(L, -2, i);
    }
    for (int i = 0; i < nf; i++) {
        lua_pushinteger(L, forced[i]);
        lua_rawseti(L, -2, (lua_Integer)at + i);
    }
    continue_from(L, 1, model);
    add_node(L, 1, model, parent, (int)at, shown);
    return 1;
}

/* t:walk() -> iterator of (node, depth) in depth-first order, children in creation order. */
static int walk_next(lua_State *L)
{
    /* upvalue 1: the list of {node, depth} built by t_walk; upvalue 2: the position */
    lua_Integer i = lua_tointeger(L, lua_upvalueindex(2)) + 1;
    lua_pushinteger(L, i);
    lua_replace(L, lua_upvalueindex(2));
    if (lua_rawgeti(L, lua_upvalueindex(1), 2 * i - 1) == LUA_TNIL)
        return 1;
    lua_rawgeti(L, lua_upvalueindex(1), 2 * i);
    return 2;
}

/* Appends {node, depth} pairs to the list at `list` in depth-first order from node 1, with an
 * explicit stack (a Lua table) rather than C recursion: a chain of nodes as long as memory
 * allows walks without exhausting the C stack; a node reached twice (children lists forming
 * a cycle, or sharing a node) is an error naming it, not an endless walk. */
static void walk_collect(lua_State *L, int nodes, int list)
{
    lua_newtable(L); /* pending (id, depth) pairs, the next on top */
    int work = lua_gettop(L);
    lua_newtable(L); /* the ids seen */
    int seen = lua_gettop(L);
    lua_Integer top = 0, n = 0;
    lua_pushinteger(L, 1);
    lua_rawseti(L, work, ++top);
    lua_pushinteger(L, 0);
    lua_rawseti(L, work, ++top);
    while (top > 0) {
        lua_rawgeti(L, work, top - 1);
        lua_Integer id = lua_tointeger(L, -1);
        lua_rawgeti(L, work, top);
        lua_Integer depth = lua_tointeger(L, -1);
        lua_pop(L, 2);
        top -= 2;
        if (lua_rawgeti(L, nodes, id) != LUA_TTABLE) {
            lua_pop(L, 1);
            continue;
        }
        if (lua_rawgeti(L, seen, id) != LUA_TNIL)
            luaL_error(L, "t:walk: node %I is reached twice (the children lists form a cycle "
                       "or share a node)", id);
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
        lua_rawseti(L, seen, id);
        lua_pushvalue(L, -1);
        lua_rawseti(L, list, ++n);
        lua_pushinteger(L, depth);
        lua_rawseti(L, list, ++n);
        if (lua_getfield(L, -1, "children") == LUA_TTABLE)
            for (lua_Integer k = (lua_Integer)lua_rawlen(L, -1); k >= 1; k--) { /* first on top */
                lua_rawgeti(L, -1, k);
                lua_rawseti(L, work, ++top);
                lua_pushinteger(L, depth + 1);
                lua_rawseti(L, work, ++top);
            }
        lua_pop(L, 2);
    }
    lua_pop(L, 2);
}

static int t_walk(lua_State *L)
{
    check_tree(L, 1, "t:walk");
    lua_getfield(L, 1, "nodes");
    lua_newtable(L);
    walk_collect(L, 2, 3);
    lua_pushinteger(L, 0);
    lua_pushcclosure(L, walk_next, 2);
    return 1;
}

/* ------------------------------------------------------------------ JSON */

static json_t *ints_json(lua_State *L, int idx)
{
    json_t *a = json_array();
    for (lua_Integer i = 1; i <= (lua_Integer)lua_rawlen(L, idx); i++) {
        lua_rawgeti(L, idx, i);
        json_array_append_new(a, json_integer(lua_tointeger(L, -1)));
        lua_pop(L, 1);
    }
    return a;
}

/* The tree at 1 as a JSON text (pushed). */
static void push_json(lua_State *L)
{
    json_t *root = json_object();
    json_object_set_new(root, "format", json_string("r1lab-tree-1"));
    static const char *const strs[] = {"prompt", "task", "target"};
    for (int i = 0; i < 3; i++)
        if (lua_getfield(L, 1, strs[i]) == LUA_TSTRING)
            json_object_set_new(root, strs[i], json_string(lua_tostring(L, -1)));
    lua_pop(L, 3);
    lua_getfield(L, 1, "prompt_ids");
    json_object_set_new(root, "prompt_ids", ints_json(L, lua_gettop(L)));
    lua_getfield(L, 1, "opts");
    json_t *o = json_object();
    json_object_set_new(o, "max_tokens", json_integer((lua_getfield(L, -1, "max_tokens"),
                                                       lua_tointeger(L, -1))));
    json_object_set_new(o, "temperature", json_real((lua_getfield(L, -2, "temperature"),
                                                     lua_tonumber(L, -1))));
    json_object_set_new(o, "seed", json_integer((lua_getfield(L, -3, "seed"),
                                                 lua_tointeger(L, -1))));
    lua_pop(L, 5);
    json_object_set_new(root, "opts", o);
    json_t *nodes = json_array();
    lua_getfield(L, 1, "nodes");
    for (lua_Integer i = 1; i <= (lua_Integer)lua_rawlen(L, -1); i++) {
        lua_rawgeti(L, -1, i);
        json_t *n = json_object();
        if (lua_getfield(L, -1, "parent") == LUA_TNUMBER) {
            json_object_set_new(n, "parent", json_integer(lua_tointeger(L, -1)));
            json_object_set_new(n, "at", json_integer((lua_getfield(L, -2, "at"),
                                                      lua_tointeger(L, -1))));
            json_object_set_new(n, "forced", json_string((lua_getfield(L, -3, "forced"),
                                                          lua_tostring(L, -1))));
            lua_pop(L, 2);
        }
        lua_pop(L, 1);
        lua_getfield(L, -1, "tokens");
        json_object_set_new(n, "tokens", ints_json(L, lua_gettop(L)));
        lua_pop(L, 1);
        json_array_append_new(nodes, n);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    json_object_set_new(root, "nodes", nodes);
    char *s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!s)
        luaL_error(L, "out of memory");
    lua_pushstring(L, s);
    free(s);
}

/* t:json() -> the tree as JSON text (tokens, forced texts, options; not the model). */
static int t_json(lua_State *L)
{
    check_tree(L, 1, "t:json");
    push_json(L);
    return 1;
}

/* t:save(path): the JSON, written to a temporary name, synced and renamed. */
static int t_save(lua_State *L)
{
    check_tree(L, 1, "t:save");
    const char *path = luaL_checkstring(L, 2);
    push_json(L);
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    r1_afile a;
    r1_error err = {0};
    if (r1_afile_open(&a, path, &err) != R1_OK)
        return luaL_error(L, "t:save: %s", err.msg);
    if (fwrite(s, 1, len, a.f) != len || fputc('\n', a.f) == EOF) {
        r1_afile_abort(&a);
        return luaL_error(L, "t:save: cannot write %s", path);
    }
    if (r1_afile_commit(&a, &err) != R1_OK)
        return luaL_error(L, "t:save: %s", err.msg);
    return 0;
}

/* t:cell() -> Lua source that rebuilds this tree on the model `m` (for a notebook cell). */
static int t_cell(lua_State *L)
{
    check_tree(L, 1, "t:cell");
    push_json(L);
    const char *s = lua_tostring(L, -1);
    char eqs[64] = "=";
    for (size_t eq = 1; eq + 3 < sizeof eqs; eq++) { /* a long bracket the JSON does not hold */
        char close[72];
        memset(eqs, '=', eq);
        eqs[eq] = '\0';
        snprintf(close, sizeof close, "]%s]", eqs);
        if (!strstr(s, close))
            break;
    }
    lua_pushfstring(L, "t = r1.tree_load(m, [%s[\n%s\n]%s])\n", eqs, s, eqs);
    return 1;
}

/* Reads an int list field of a JSON object into a new Lua list (pushed); raises naming the
 * source, the node and the field. */
static void ints_from_json(lua_State *L, json_t *a, const char *src, int node, const char *key,
                           int V)
{
    char where[32] = "";
    if (node)
        snprintf(where, sizeof where, "node %d: ", node);
    if (!json_is_array(a))
        luaL_error(L, "r1.tree_load: %s: %s'%s' must be a list of token ids", src, where, key);
    lua_createtable(L, (int)json_array_size(a), 0);
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *v = json_array_get(a, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= V)
            luaL_error(L, "r1.tree_load: %s: %s'%s'[%d] must be a token id in 0..%d", src,
                       where, key, (int)i + 1, V - 1);
        lua_pushinteger(L, (lua_Integer)json_integer_value(v));
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
}

typedef struct {
    json_t *j;
} json_box;

static int json_box_gc(lua_State *L)
{
    json_box *b = lua_touserdata(L, 1);
    json_decref(b->j);
    b->j = NULL;
    return 0;
}

/* r1.tree_load(m, path_or_json) -> the tree saved by t:save (or t:json's text), on model m:
 * every node's text and verdict computed again. */
static int l_tree_load(lua_State *L)
{
    lua_model *u = lua_model_idle(L, 1, "r1.tree_load");
    const char *arg = luaL_checkstring(L, 2);
    const char *p = arg;
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
        p++;
    int text = *p == '{';
    const char *src = text ? "tree JSON" : arg;
    json_box *box = lua_newuserdatauv(L, sizeof *box, 0); /* box first */
    box->j = NULL;
    lua_newtable(L);
    lua_pushcfunction(L, json_box_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    json_error_t je;
    box->j = text ? json_loads(arg, 0, &je) : json_load_file(arg, 0, &je);
    if (!box->j)
        return luaL_error(L, "r1.tree_load: %s: line %d, column %d: %s", src, je.line,
                          je.column, je.text);
    json_t *root = box->j;
    json_t *fmt = json_object_get(root, "format");
    if (!json_is_string(fmt) || strcmp(json_string_value(fmt), "r1lab-tree-1"))
        return luaL_error(L, "r1.tree_load: %s: 'format' must be \"r1lab-tree-1\" (a file "
                          "written by t:save)", src);
    int V = r1_model_config(u->m)->vocab_size;
    lua_createtable(L, 0, 8);
    int tree = lua_gettop(L);
    luaL_setmetatable(L, LUA_R1_TREE);
    lua_pushvalue(L, 1);
    lua_setfield(L, tree, "model");
    static const char *const strs[] = {"prompt", "task", "target"};
    for (int i = 0; i < 3; i++) {
        json_t *v = json_object_get(root, strs[i]);
        if (v && !json_is_string(v))
            return luaL_error(L, "r1.tree_load: %s: '%s' must be a string", src, strs[i]);
        if (v) {
            lua_pushstring(L, json_string_value(v));
            lua_setfield(L, tree, strs[i]);
        }
    }
    if (json_object_get(root, "task")) {
        const r1_task *t;
        r1_error err = {0};
        if (r1_task_find(&t, json_string_value(json_object_get(root, "task")), &err) != R1_OK)
            return luaL_error(L, "r1.tree_load: %s: %s", src, err.msg);
    }
    ints_from_json(L, json_object_get(root, "prompt_ids"), src, 0, "prompt_ids", V);
    if (lua_rawlen(L, -1) < 1)
        return luaL_error(L, "r1.tree_load: %s: 'prompt_ids' is empty", src);
    lua_setfield(L, tree, "prompt_ids");
    json_t *o = json_object_get(root, "opts");
    json_t *mt = json_object_get(o, "max_tokens"), *te = json_object_get(o, "temperature"),
           *sd = json_object_get(o, "seed");
    if (!json_is_object(o) || !json_is_integer(mt) || json_integer_value(mt) < 1 ||
        !json_is_number(te) || json_number_value(te) < 0 || !json_is_integer(sd))
        return luaL_error(L, "r1.tree_load: %s: 'opts' must hold max_tokens (>= 1), temperature "
                          "(>= 0) and seed", src);
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, (lua_Integer)json_integer_value(mt));
    lua_setfield(L, -2, "max_tokens");
    lua_pushnumber(L, json_number_value(te));
    lua_setfield(L, -2, "temperature");
    lua_pushinteger(L, (lua_Integer)json_integer_value(sd));
    lua_setfield(L, -2, "seed");
    lua_setfield(L, tree, "opts");
    json_t *nodes = json_object_get(root, "nodes");
    if (!json_is_array(nodes) || json_array_size(nodes) < 1)
        return luaL_error(L, "r1.tree_load: %s: 'nodes' must be a non-empty list", src);
    lua_newtable(L);
    lua_setfield(L, tree, "nodes");
    for (size_t i = 0; i < json_array_size(nodes); i++) {
        json_t *n = json_array_get(nodes, i);
        int id = (int)i + 1;
        if (!json_is_object(n))
            return luaL_error(L, "r1.tree_load: %s: node %d must be an object", src, id);
        json_t *par = json_object_get(n, "parent");
        int parent = 0, at = 0;
        const char *forced = NULL;
        if (id == 1 && par)
            return luaL_error(L, "r1.tree_load: %s: node 1 is the root: it has no parent", src);
        if (id > 1) {
            json_t *a = json_object_get(n, "at"), *f = json_object_get(n, "forced");
            if (!json_is_integer(par) || json_integer_value(par) < 1 ||
                json_integer_value(par) >= id)
                return luaL_error(L, "r1.tree_load: %s: node %d: 'parent' must be the id of an "
                                  "earlier node (1..%d)", src, id, id - 1);
            if (!json_is_integer(a) || json_integer_value(a) < 1 || !json_is_string(f))
                return luaL_error(L, "r1.tree_load: %s: node %d: a branch needs 'at' (>= 1) "
                                  "and 'forced' (text)", src, id);
            parent = (int)json_integer_value(par);
            at = (int)json_integer_value(a);
            forced = json_string_value(f);
        }
        ints_from_json(L, json_object_get(n, "tokens"), src, id, "tokens", V);
        add_node(L, tree, 1, parent, at, forced);
        lua_pop(L, 1);
    }
    lua_pushvalue(L, tree);
    return 1;
}

void lua_tree_open(lua_State *L)
{
    static const luaL_Reg methods[] = {{"branch", t_branch}, {"walk", t_walk},
                                       {"json", t_json},     {"save", t_save},
                                       {"cell", t_cell},     {NULL, NULL}};
    luaL_newmetatable(L, LUA_R1_TREE);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    lua_pushcfunction(L, l_tree_load);
    lua_setfield(L, -2, "tree_load");
    luaL_getmetatable(L, LUA_R1_MODEL);
    lua_getfield(L, -1, "__index");
    lua_pushcfunction(L, m_tree);
    lua_setfield(L, -2, "tree");
    lua_pop(L, 2);
}
