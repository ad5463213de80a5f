/* lua_stages.c — the R1 stages besides GRPO, from Lua:
 *   r1.reject_sample{model = m, task = "add" | tasks = {"add", "mul:2", "add:1-3", ...},
 *                    difficulty = 3, prompts = 64,
 *                    k = 8, keep = 2, temperature = 0.8, max_new = 192, min_language = 0.9,
 *                    direct_share = 0.1, seed = 1, out = "samples.jsonl",
 *                    on_progress = function(done, total, stats) end}  -> stats
 *   r1.reject_sample{model = m, out = "samples.jsonl", resume = true}
 *                    continues a run into that file that was stopped (Ctrl-C, a kill, an
 *                    error, on_progress returning false) with its own settings: the file
 *                    comes out as if it had never stopped
 * Errors are Lua errors naming the setting or the file. */
#include <config.h>

#include <string.h>

#include "lua_r1.h"
#include "r1_reject.h"
#include "world.h"

/* Reads task / tasks / difficulty at table idx into tasks, diff; returns the count.  An entry
 * "add:4" fixes its difficulty; "add:1-3" stands for add:1, add:2 and add:3 (the prompts cycle
 * through the entries, so each difficulty gets its share). */
static int read_tasks(lua_State *L, int idx, r1_reject_cfg *c, int max)
{
    const r1_task **tasks = c->tasks;
    int *diff = c->difficulty;
    lua_getfield(L, idx, "tasks");
    if (lua_type(L, -1) == LUA_TSTRING) { /* "add:1-3,mul:2" as the command line takes it */
        r1_error err = {0};
        if (r1_reject_parse_tasks(c, lua_tostring(L, -1), &err) != R1_OK)
            luaL_error(L, "r1.reject_sample: %s", err.msg);
        lua_pop(L, 1);
        return c->ntasks;
    }
    if (!lua_isnil(L, -1) && !lua_istable(L, -1))
        luaL_error(L, "r1.reject_sample: tasks: expected a list of task names or a string "
                      "like \"add:1-3,mul:2\", got a %s", luaL_typename(L, -1));
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_createtable(L, 1, 0);
        lua_pushstring(L, lua_r1_opt_str(L, idx, "task", "add"));
        lua_rawseti(L, -2, 1);
    }
    int n = (int)lua_rawlen(L, -1), k = 0;
    if (n < 1)
        luaL_error(L, "r1.reject_sample: between 1 and %d tasks, got %d", max, n);
    int d = (int)lua_r1_opt_int(L, idx, "difficulty", 0);
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, -1, i + 1);
        const r1_task *t;
        int lo, hi;
        lua_r1_task_spec(L, "r1.reject_sample", i + 1, luaL_checkstring(L, -1), d, &t, &lo,
                         &hi);
        lua_pop(L, 1);
        for (int v = lo; v <= hi; v++, k++) {
            if (k == max)
                luaL_error(L, "r1.reject_sample: more than %d task entries (a range "
                              "\"name:lo-hi\" counts one per difficulty)", max);
            tasks[k] = t;
            diff[k] = v;
        }
    }
    lua_pop(L, 1);
    return k;
}

static void push_reject_stats(lua_State *L, const r1_reject_stats *st)
{
    lua_createtable(L, 0, 8);
    lua_pushinteger(L, st->sampled);
    lua_setfield(L, -2, "sampled");
    lua_pushinteger(L, st->correct);
    lua_setfield(L, -2, "correct");
    lua_pushinteger(L, st->well_formed);
    lua_setfield(L, -2, "well_formed");
    lua_pushinteger(L, st->in_language);
    lua_setfield(L, -2, "in_language");
    lua_pushinteger(L, st->kept);
    lua_setfield(L, -2, "kept");
    lua_pushinteger(L, st->duplicates);
    lua_setfield(L, -2, "duplicates");
    lua_pushinteger(L, st->direct);
    lua_setfield(L, -2, "direct");
    lua_pushnumber(L, st->seconds);
    lua_setfield(L, -2, "seconds");
}

typedef struct {
    lua_State *L;
    int fn;
    int failed;
    int ref; /* the error, when failed */
} progress_cb;

typedef struct {
    int done, total;
    const r1_reject_stats *st;
} progress_arg;

static int push_progress(lua_State *L, void *ud)
{
    const progress_arg *a = ud;
    lua_pushinteger(L, a->done);
    lua_pushinteger(L, a->total);
    push_reject_stats(L, a->st);
    return 3;
}

static int on_progress(void *user, const r1_step_report *r)
{
    const r1_reject_stats *st = r->reject;
    int done = (int)r->step, total = (int)r->steps;
    progress_cb *p = user;
    const lua_r1_observer *obs = lua_r1_observer_get();
    if (obs) { /* the prompts done so far as the "step" */
        static const char *const names[] = {"sampled", "correct", "well_formed", "in_language",
                                            "kept"};
        double vals[] = {(double)st->sampled, (double)st->correct, (double)st->well_formed,
                         (double)st->in_language, (double)st->kept};
        lua_r1_step s = {"reject", done, total, 5, names, vals, 0, 0, NULL, NULL};
        obs->step(&s);
    }
    if (!p->fn)
        return 0;
    progress_arg a = {done, total, st};
    int stop = lua_r1_callback(p->L, p->fn, push_progress, &a, &p->ref);
    p->failed = stop < 0;
    return stop != 0;
}

static int l_reject_sample(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_getfield(L, 1, "model");
    lua_model *u = lua_model_idle(L, -1, "r1.reject_sample");
    lua_pop(L, 1);
    if (!u->tok)
        return luaL_error(L, "r1.reject_sample: the model has no tokenizer");
    r1_reject_cfg c = r1_reject_defaults();
    /* tasks as r1.grpo takes them (task, a list, a default difficulty); the rest through the
     * stage's settings table */
    c.ntasks = read_tasks(L, 1, &c, R1_REJECT_MAX_TASKS);
    static const char *const own_keys[] = {"model", "task", "tasks", "difficulty", "out",
                                           "on_progress", "resume", NULL};
    lua_r1_read_settings(L, 1, r1_reject_settings_table(), &c, "r1.reject_sample", own_keys);
    const char *out = lua_r1_opt_str(L, 1, "out", NULL);
    if (!out)
        return luaL_error(L, "r1.reject_sample: out = \"FILE.jsonl\" is required");
    lua_getfield(L, 1, "resume");
    int resume = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (resume) { /* the run's own settings: only model, out, on_progress and resume */
        lua_pushnil(L);
        while (lua_next(L, 1)) {
            const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
            if (strcmp(k, "model") && strcmp(k, "out") && strcmp(k, "on_progress") &&
                strcmp(k, "resume"))
                return luaL_error(L, "r1.reject_sample: resume = true continues with the run's "
                                  "own settings; '%s' cannot be given with it", k);
            lua_pop(L, 1);
        }
    }
    progress_cb p = {L, 0, 0, LUA_NOREF};
    if (lua_r1_opt_fn(L, 1, "on_progress"))
        p.fn = lua_gettop(L);
    r1_reject_stats st;
    r1_error err = {0};
    r1_observer o = {.step = on_progress, .user = &p};
    lua_model_hold(u, "r1.reject_sample");
    r1_reject_set_comm(world_comm()); /* under mpirun: the prompts shared over the ranks */
    r1_status s = resume ? r1_reject_resume(u->m, u->tok, out, &o, &st, &err)
                         : r1_reject_sample(u->m, u->tok, &c, out, &o, &st, &err);
    lua_model_drop(u);
    if (p.failed) {
        return lua_r1_raise_ref(L, p.ref);
    }
    if (s == R1_ECANCELED && r1_interrupted())
        return luaL_error(L, "interrupted: %s; resume = true continues it", err.msg);
    if (s != R1_OK && s != R1_ECANCELED)
        return luaL_error(L, "%s", err.msg);
    push_reject_stats(L, &st);
    return 1;
}

void lua_stages_open(lua_State *L)
{
    lua_pushcfunction(L, l_reject_sample);
    lua_setfield(L, -2, "reject_sample");
}
