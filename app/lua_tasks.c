/* lua_tasks.c — the reasoning tasks and the rule-based rewards in Lua:
 *   r1.tasks.list()      r1.tasks.<name>{difficulty=, seed=, lang=, phrasing=}  -> task
 *                        task:sample([i]) -> {prompt, target, solution, difficulty, lang, task,
 *                        seed, typed}
 *                        task:samples(n) (an iterator), task:verify(completion) -> ok, parsed
 *   r1.rewards.accuracy / format / language / length / incorrect / format_only / random
 *   (sample) -> number   (random flips the coin of sample.key, an integer)
 * Userdata follow lua_r1.h's conventions. */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "lua_r1.h"
#include "r1_rewards.h"
#include "r1_tasks.h"

/* ------------------------------------------------------------------ tasks */

typedef struct {
    const r1_task *task;
    int difficulty;
    uint64_t seed;
    r1_lang lang;
    r1_phrasing phrasing;
    uint64_t next; /* the iterator's position */
} lua_task;

const r1_task *lua_task_ptr(lua_State *L, int idx)
{
    return ((lua_task *)luaL_checkudata(L, idx, LUA_R1_TASK))->task;
}

void lua_r1_push_sample(lua_State *L, const r1_task_sample *s)
{
    lua_createtable(L, 0, 7);
    lua_pushstring(L, s->prompt);
    lua_setfield(L, -2, "prompt");
    lua_pushstring(L, s->answer);
    lua_setfield(L, -2, "target");
    lua_pushstring(L, s->reasoning);
    lua_setfield(L, -2, "solution");
    lua_pushinteger(L, s->difficulty);
    lua_setfield(L, -2, "difficulty");
    lua_pushstring(L, r1_lang_name(s->lang));
    lua_setfield(L, -2, "lang");
    lua_pushstring(L, r1_task_name(s->task));
    lua_setfield(L, -2, "task");
    lua_pushinteger(L, (lua_Integer)s->seed);
    lua_setfield(L, -2, "seed");
    lua_pushboolean(L, s->typed);
    lua_setfield(L, -2, "typed");
}

/* the constructor behind r1.tasks.<name>{difficulty=, seed=, lang=} (upvalue: the task) */
static int task_new(lua_State *L)
{
    const r1_task *t = lua_touserdata(L, lua_upvalueindex(1));
    int d = (int)lua_r1_opt_int(L, 1, "difficulty", r1_task_train_difficulty(t));
    if (d < 1 || d > r1_task_max_difficulty(t))
        return luaL_error(L, "r1.tasks.%s: difficulty %d outside 1..%d", r1_task_name(t), d,
                          r1_task_max_difficulty(t));
    r1_lang lang = R1_LANG_AUTO;
    r1_error err = {0};
    if (r1_lang_parse(&lang, lua_r1_opt_str(L, 1, "lang", "auto"), &err) != R1_OK)
        return luaL_error(L, "%s", err.msg);
    r1_phrasing ph = R1_PHRASING_TASK;
    if (r1_phrasing_parse(&ph, lua_r1_opt_str(L, 1, "phrasing", "task"), &err) != R1_OK)
        return luaL_error(L, "r1.tasks.%s: %s", r1_task_name(t), err.msg);
    lua_task *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->task = t;
    u->difficulty = d;
    u->seed = (uint64_t)lua_r1_opt_int(L, 1, "seed", 1);
    u->lang = lang;
    u->phrasing = ph;
    u->next = 0;
    luaL_setmetatable(L, LUA_R1_TASK);
    return 1;
}

/* task:sample([i]) -> the i-th sample (0-based position in this task's stream) */
static int task_sample(lua_State *L)
{
    lua_task *u = luaL_checkudata(L, 1, LUA_R1_TASK);
    uint64_t i = lua_isnoneornil(L, 2) ? u->next++ : (uint64_t)luaL_checkinteger(L, 2);
    r1_task_sample *s = lua_newuserdatauv(L, sizeof *s, 0); /* big: not on the C stack */
    r1_error err = {0};
    if (r1_task_generate_phrased(u->task, u->seed * 1000003ull + i, u->difficulty, u->lang,
                                 u->phrasing, s, &err))
        return luaL_error(L, "%s", err.msg);
    lua_r1_push_sample(L, s);
    return 1;
}

static int task_iter(lua_State *L)
{
    lua_Integer left = lua_tointeger(L, lua_upvalueindex(2));
    if (left <= 0)
        return 0;
    lua_pushinteger(L, left - 1);
    lua_replace(L, lua_upvalueindex(2));
    lua_settop(L, 0);
    lua_pushvalue(L, lua_upvalueindex(1));
    return task_sample(L);
}

/* for s in task:samples(n) do ... end */
static int task_samples(lua_State *L)
{
    luaL_checkudata(L, 1, LUA_R1_TASK);
    lua_Integer n = luaL_optinteger(L, 2, 10);
    lua_pushvalue(L, 1);
    lua_pushinteger(L, n);
    lua_pushcclosure(L, task_iter, 2);
    return 1;
}

/* task:verify(completion, target) -> correct, parsed answer, well_formed */
static int task_verify(lua_State *L)
{
    lua_task *u = luaL_checkudata(L, 1, LUA_R1_TASK);
    const char *completion = luaL_checkstring(L, 2), *target = luaL_checkstring(L, 3);
    r1_task_verdict v;
    int ok = r1_task_verify(u->task, target, completion, &v);
    lua_pushboolean(L, ok);
    lua_pushstring(L, v.parsed);
    lua_pushboolean(L, v.well_formed);
    return 3;
}

static int task_tostring(lua_State *L)
{
    lua_task *u = luaL_checkudata(L, 1, LUA_R1_TASK);
    lua_pushfstring(L, "r1.task %s (difficulty %d of %d, %s): %s", r1_task_name(u->task),
                    u->difficulty, r1_task_max_difficulty(u->task), r1_lang_name(u->lang),
                    r1_task_summary(u->task));
    return 1;
}

static int task_index(lua_State *L)
{
    lua_task *u = luaL_checkudata(L, 1, LUA_R1_TASK);
    const char *k = luaL_checkstring(L, 2);
    if (!strcmp(k, "name"))
        lua_pushstring(L, r1_task_name(u->task));
    else if (!strcmp(k, "difficulty"))
        lua_pushinteger(L, u->difficulty);
    else if (!strcmp(k, "max_difficulty"))
        lua_pushinteger(L, r1_task_max_difficulty(u->task));
    else if (!strcmp(k, "lang"))
        lua_pushstring(L, r1_lang_name(u->lang));
    else {
        luaL_getmetatable(L, LUA_R1_TASK);
        lua_getfield(L, -1, "methods");
        lua_getfield(L, -1, k);
    }
    return 1;
}

/* r1.tasks.list() -> {{name=, summary=, max_difficulty=, train_difficulty=}, ...} */
static int tasks_list(lua_State *L)
{
    lua_createtable(L, r1_task_count(), 0);
    for (int i = 0; i < r1_task_count(); i++) {
        const r1_task *t = r1_task_at(i);
        lua_createtable(L, 0, 4);
        lua_pushstring(L, r1_task_name(t));
        lua_setfield(L, -2, "name");
        lua_pushstring(L, r1_task_summary(t));
        lua_setfield(L, -2, "summary");
        lua_pushinteger(L, r1_task_max_difficulty(t));
        lua_setfield(L, -2, "max_difficulty");
        lua_pushinteger(L, r1_task_train_difficulty(t));
        lua_setfield(L, -2, "train_difficulty");
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* ------------------------------------------------------------------ rewards */

/* Reads a sample table {prompt, completion, think, answer, target, task, lang, tokens,
 * max_tokens, key} into s; strings stay owned by the table at idx. */
void lua_r1_reward_sample(lua_State *L, int idx, r1_reward_sample *s)
{
    idx = lua_absindex(L, idx);
    luaL_checktype(L, idx, LUA_TTABLE);
    memset(s, 0, sizeof *s);
    s->prompt = lua_r1_opt_str(L, idx, "prompt", NULL);
    s->completion = lua_r1_opt_str(L, idx, "completion", "");
    s->think = lua_r1_opt_str(L, idx, "think", NULL);
    s->answer = lua_r1_opt_str(L, idx, "answer", NULL);
    s->target = lua_r1_opt_str(L, idx, "target", "");
    const char *task = lua_r1_opt_str(L, idx, "task", NULL);
    r1_error err = {0};
    if (task && r1_task_find(&s->task, task, &err) != R1_OK)
        luaL_error(L, "%s", err.msg);
    s->lang = R1_LANG_AUTO;
    const char *lang = lua_r1_opt_str(L, idx, "lang", "auto");
    if (r1_lang_parse(&s->lang, lang, &err) != R1_OK)
        luaL_error(L, "%s", err.msg);
    s->ntokens = (int)lua_r1_opt_int(L, idx, "tokens", 0);
    s->max_tokens = (int)lua_r1_opt_int(L, idx, "max_tokens", 0);
    s->key = (uint64_t)lua_r1_opt_int(L, idx, "key", 0); /* the random reward's coin */
}

static int reward_call(lua_State *L)
{
    r1_reward_fn fn = (r1_reward_fn)lua_touserdata(L, lua_upvalueindex(1));
    r1_reward_sample s;
    lua_r1_reward_sample(L, 1, &s);
    lua_pushnumber(L, fn(&s, NULL));
    return 1;
}

static const luaL_Reg task_methods[] = {{"sample", task_sample},
                                        {"samples", task_samples},
                                        {"verify", task_verify},
                                        {NULL, NULL}};

void lua_tasks_open(lua_State *L)
{
    luaL_newmetatable(L, LUA_R1_TASK);
    lua_pushcfunction(L, task_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, task_tostring);
    lua_setfield(L, -2, "__tostring");
    luaL_newlib(L, task_methods);
    lua_setfield(L, -2, "methods");
    lua_pop(L, 1);
    /* module fields: tasks, rewards */
    lua_createtable(L, 0, r1_task_count() + 1);
    for (int i = 0; i < r1_task_count(); i++) {
        lua_pushlightuserdata(L, (void *)r1_task_at(i));
        lua_pushcclosure(L, task_new, 1);
        lua_setfield(L, -2, r1_task_name(r1_task_at(i)));
    }
    lua_pushcfunction(L, tasks_list);
    lua_setfield(L, -2, "list");
    lua_setfield(L, -2, "tasks");
    static const struct {
        const char *name;
        r1_reward_fn fn;
    } rw[] = {{"accuracy", r1_reward_accuracy},
              {"format", r1_reward_format},
              {"language", r1_reward_language},
              {"length", r1_reward_length},
              {"incorrect", r1_reward_incorrect},
              {"format_only", r1_reward_format_only},
              {"random", r1_reward_random}};
    lua_createtable(L, 0, (int)(sizeof rw / sizeof *rw));
    for (size_t i = 0; i < sizeof rw / sizeof *rw; i++) {
        lua_pushlightuserdata(L, (void *)rw[i].fn);
        lua_pushcclosure(L, reward_call, 1);
        lua_setfield(L, -2, rw[i].name);
    }
    lua_setfield(L, -2, "rewards");
}
