/* lua_grpo.c — r1.grpo{...}: GRPO from Lua, with built-in and Lua reward functions.
 *
 *   r1.grpo{model = m, task = "add" | tasks = {"add", "mul:1-2"}, difficulty = 3, lang = "auto",
 *           steps = 10, group = 8, prompts = 8, mu = 1, lr = 1e-5, beta = 0.04,
 *           eps_low = 0.2, eps_high = 0.2, temperature = 1, max_new = 64,
 *           loss_type = "grpo" | "dapo" | "dr_grpo" | "cispo", std_scale = true,
 *           importance_sampling_level = "token" | "sequence", top_entropy_quantile = 1,
 *           entropy_coef = 0, multi_objective_aggregation = "sum_then_normalize",
 *           off_policy_mask_threshold = 0, use_bias_correction_kl = false,
 *           sync_ref_model = false, ref_model_sync_steps = 512, ref_model_mixup_alpha = 0.6,
 *           dynamic_sampling = false, micro = 16, seed = 1, balance_gamma = 0.001,
 *           rewards = {"accuracy", "format", {"language", weight = 0.5},
 *                      {"overlong", max = 200, cache = 50}, "random" | "incorrect",
 *                      {name = "short", weight = 0.2, fn = function(sample) ... end}},
 *           log = "run.jsonl", save = "ckpt/", save_every = 10, resume = "ckpt/",
 *           on_step = function(stats) ... end, on_group = function(group) ... end}
 *   -> the last step's stats
 *
 * A Lua reward gets sample = {prompt, completion, think, answer, target, task, lang, tokens,
 * max_tokens} and returns a number (or a table of numbers, summed).  An error in a reward or a
 * callback stops the run with its traceback and the step and prompt it happened at; with `save`
 * the last checkpoint stays loadable.  Returning false from on_step stops after the step.  With
 * dynamic sampling, a step whose groups all score equal rewards even after the refills ends the
 * run (an error on the first step): the result gets stopped = the reason, and `save` is kept.
 *
 * The run itself is the engine's (r1_grpo_run.h): this file reads the options through GRPO's
 * settings table (so an unknown or misspelt option is an error with a suggestion), turns Lua
 * rewards and callbacks into the run's hooks, and reports steps and groups to the observer. */
#include <config.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua_r1.h"
#include "r1_grpo_run.h"
#include "world.h"

typedef struct {
    lua_State *L;
    lua_model *u;
    char names[R1_GRPO_MAX_REWARDS][24]; /* the rewards' names, for Lua tables and the observer */
    int lua_ref[R1_GRPO_MAX_REWARDS];    /* registry refs of Lua rewards (LUA_NOREF: built-in) */
    int custom[R1_GRPO_MAX_REWARDS];
    int nrw;
    int on_group, on_step; /* stack indices or 0 */
    int64_t step;
    int step_results; /* stats tables pushed (the last stays on the stack) */
    int failed;   /* an error message is on the registry ref err_ref */
    int err_ref;
} run;

/* Calls the function at stack index fn with the nargs values on top and push's arguments,
 * protected (lua_r1_pcall_with);
 * on error records "what failed at step S, prompt I: message and traceback" and returns 0.
 * A Ctrl-C raises "interrupted" inside whatever Lua runs next, often this callback: that is
 * no failure of the callback but a stop, so the run ends through its checkpoint. */
static int call(run *r, int fn, int nargs, int (*push)(lua_State *L, void *ud), void *ud,
                int nres, const char *what, int64_t index)
{
    lua_State *L = r->L;
    if (lua_r1_pcall_with(L, fn, nargs, push, ud, nres) == LUA_OK)
        return 1;
    if (r1_interrupted()) {
        lua_pop(L, 1);
        return 0;
    }
    const char *msg = lua_tostring(L, -1);
    if (index >= 0) /* during sampling: the step under way */
        lua_pushfstring(L, "%s failed at step %I, prompt %I: %s", what, (lua_Integer)r->step + 1,
                        (lua_Integer)index, msg ? msg : "?");
    else /* on_step: after the step it reports */
        lua_pushfstring(L, "%s failed at step %I: %s", what, (lua_Integer)r->step,
                        msg ? msg : "?");
    r->err_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pop(L, 1);
    r->failed = 1;
    return 0;
}

static void push_sample(lua_State *L, const r1_reward_sample *s, const r1_task_sample *ts)
{
    lua_createtable(L, 0, 10);
    lua_pushstring(L, s->prompt);
    lua_setfield(L, -2, "prompt");
    lua_pushstring(L, s->completion);
    lua_setfield(L, -2, "completion");
    r1_completion_parts p;
    r1_reward_split(s->completion, &p);
    lua_pushlstring(L, p.think, p.think_len);
    lua_setfield(L, -2, "think");
    if (p.answer) {
        lua_pushlstring(L, p.answer, p.answer_len);
        lua_setfield(L, -2, "answer");
    }
    lua_pushstring(L, s->target);
    lua_setfield(L, -2, "target");
    lua_pushstring(L, r1_task_name(ts->task));
    lua_setfield(L, -2, "task");
    lua_pushstring(L, r1_lang_name(ts->lang));
    lua_setfield(L, -2, "lang");
    lua_pushinteger(L, s->ntokens);
    lua_setfield(L, -2, "tokens");
    lua_pushinteger(L, s->max_tokens);
    lua_setfield(L, -2, "max_tokens");
    lua_pushinteger(L, ts->difficulty);
    lua_setfield(L, -2, "difficulty");
}

typedef struct {
    const r1_reward_sample *s;
    const r1_task_sample *ts;
} sample_arg;

static int push_sample_arg(lua_State *L, void *ud)
{
    const sample_arg *a = ud;
    push_sample(L, a->s, a->ts);
    return 1;
}

/* The run's reward hook: Lua reward k of one completion. */
static int reward_hook(void *user, int k, int64_t index, const r1_reward_sample *s,
                       const r1_task_sample *ts, double *out)
{
    run *r = user;
    lua_State *L = r->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, r->lua_ref[k]);
    int fn = lua_gettop(L);
    char what[64];
    snprintf(what, sizeof what, "reward '%s'", r->names[k]);
    sample_arg a = {s, ts};
    int called = call(r, fn, 0, push_sample_arg, &a, 1, what, index);
    lua_remove(L, fn);
    if (!called)
        return 1;
    int ok = 1;
    if (lua_type(L, -1) == LUA_TNUMBER) {
        *out = lua_tonumber(L, -1);
    } else if (lua_istable(L, -1)) { /* named components: their sum */
        double sum = 0;
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            sum += lua_tonumber(L, -1);
            lua_pop(L, 1);
        }
        *out = sum;
    } else {
        lua_pushfstring(L, "reward '%s' at step %I, prompt %I returned %s; expected a number",
                        r->names[k], (lua_Integer)r->step + 1, (lua_Integer)index,
                        luaL_typename(L, -1));
        r->err_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        r->failed = 1;
        ok = 0;
    }
    lua_pop(L, 1);
    return !ok;
}

typedef struct {
    run *r;
    const r1_grpo_group *g;
    const r1_task_sample *ts;
    char **texts; /* [G] decoded completions (entries may be NULL) */
} group_arg;

/* on_group's argument (built protected): {index, dropped, prompt, task, difficulty,
 * completions = {{text, rewards = {name = value}, reward, advantage, tokens}}}. */
static int push_group(lua_State *L, void *ud)
{
    const group_arg *a = ud;
    const run *r = a->r;
    const r1_grpo_group *g = a->g;
    lua_createtable(L, 0, 8);
    lua_pushinteger(L, g->index);
    lua_setfield(L, -2, "index");
    lua_pushboolean(L, g->dropped);
    lua_setfield(L, -2, "dropped");
    lua_r1_push_decoded(L, r->u->tok, g->prompt, g->plen);
    lua_setfield(L, -2, "prompt");
    lua_pushstring(L, r1_task_name(a->ts->task));
    lua_setfield(L, -2, "task");
    lua_pushinteger(L, a->ts->difficulty);
    lua_setfield(L, -2, "difficulty");
    lua_createtable(L, g->G, 0);
    for (int j = 0; j < g->G; j++) {
        lua_createtable(L, 0, 5);
        lua_pushstring(L, a->texts[j] ? a->texts[j] : "");
        lua_setfield(L, -2, "text");
        lua_createtable(L, 0, r->nrw);
        for (int k = 0; k < r->nrw; k++) {
            lua_pushnumber(L, g->rewards[(size_t)j * r->nrw + k]);
            lua_setfield(L, -2, r->names[k]);
        }
        lua_setfield(L, -2, "rewards");
        lua_pushnumber(L, g->totals[j]);
        lua_setfield(L, -2, "reward");
        lua_pushnumber(L, g->adv[j]);
        lua_setfield(L, -2, "advantage");
        lua_pushinteger(L, g->lens[j]);
        lua_setfield(L, -2, "tokens");
        lua_rawseti(L, -2, j + 1);
    }
    lua_setfield(L, -2, "completions");
    return 1;
}

/* The group for the observer (the workbench's GRPO pane). */
static void post_group(const lua_r1_observer *obs, const run *r, const r1_grpo_group *g,
                       char **texts)
{
    const char *names[R1_GRPO_MAX_REWARDS];
    int acc = -1;
    for (int k = 0; k < r->nrw; k++) {
        names[k] = r->names[k];
        if (!strcmp(r->names[k], "accuracy"))
            acc = k;
    }
    int *correct = malloc(sizeof(int) * (size_t)g->G);
    for (int j = 0; correct && j < g->G; j++)
        correct[j] = acc < 0 ? -1 : g->rewards[(size_t)j * r->nrw + acc] > 0.5;
    char *prompt = NULL;
    r1_tokenizer_decode(r->u->tok, g->prompt, g->plen, &prompt, NULL);
    lua_r1_group rg = {(int)r->step + 1, prompt, g->G, (const char *const *)texts, r->nrw,
                       names, g->rewards, g->totals, g->adv, correct};
    obs->group(&rg);
    free(prompt);
    free(correct);
}

static int group_fn(void *user, const r1_grpo_group *g, const r1_task_sample *ts)
{
    run *r = user;
    const lua_r1_observer *obs = lua_r1_observer_get();
    if (!obs && !r->on_group)
        return 0;
    char **texts = calloc((size_t)g->G, sizeof *texts);
    if (!texts)
        return 0; /* nothing to show; the run goes on */
    for (int j = 0; j < g->G; j++)
        r1_tokenizer_decode(r->u->tok, g->completions[j], g->lens[j], &texts[j], NULL);
    if (obs)
        post_group(obs, r, g, texts);
    int ok = 1;
    if (r->on_group) {
        group_arg a = {r, g, ts, texts};
        ok = call(r, r->on_group, 0, push_group, &a, 0, "on_group", g->index);
    }
    for (int j = 0; j < g->G; j++)
        free(texts[j]);
    free(texts);
    return !ok;
}

/* Reads the rewards option of the table at idx into r and the settings' reward list. */
static void read_rewards(lua_State *L, int idx, run *r, r1_grpo_settings *gs)
{
    lua_getfield(L, idx, "rewards");
    if (lua_isnil(L, -1)) { /* the settings' defaults */
        lua_pop(L, 1);
        r->nrw = gs->cfg.nrewards;
        for (int k = 0; k < r->nrw; k++)
            snprintf(r->names[k], sizeof r->names[k], "%s", gs->cfg.reward_names[k]);
        return;
    }
    luaL_argexpected(L, lua_istable(L, -1), 1, "rewards = a list");
    int t = lua_gettop(L), n = (int)lua_rawlen(L, t);
    if (n < 1 || n > R1_GRPO_MAX_REWARDS)
        luaL_error(L, "r1.grpo: between 1 and %d rewards, got %d", R1_GRPO_MAX_REWARDS, n);
    for (int k = 0; k < n; k++) {
        lua_rawgeti(L, t, k + 1);
        int e = lua_gettop(L);
        double weight = 1;
        const char *name = NULL;
        int fn = 0;
        if (lua_type(L, e) == LUA_TSTRING) {
            name = lua_tostring(L, e);
        } else if (lua_isfunction(L, e)) {
            fn = e;
        } else if (lua_istable(L, e)) {
            lua_rawgeti(L, e, 1);
            if (lua_type(L, -1) == LUA_TSTRING)
                name = lua_tostring(L, -1);
            lua_pop(L, 1); /* the string stays alive inside the table */
            name = lua_r1_opt_str(L, e, "name", name);
            weight = lua_r1_opt_num(L, e, "weight", 1);
            if (name && !strcmp(name, "overlong")) { /* {"overlong", max = L, cache = C} */
                double mx = lua_r1_opt_num(L, e, "max", 0), ca = lua_r1_opt_num(L, e, "cache", 0);
                if (!(mx >= 0 && mx <= 65536 && ca >= 0 && ca <= 65536) || mx != (int)mx ||
                    ca != (int)ca)
                    luaL_error(L, "r1.grpo: reward %d: overlong's max and cache are whole "
                               "numbers of tokens in 1..65536", k + 1);
                gs->overlong_max = (int)mx, gs->overlong_cache = (int)ca;
            }
            if (lua_r1_opt_fn(L, e, "fn"))
                fn = lua_gettop(L);
        } else {
            luaL_error(L, "r1.grpo: reward %d: expected a name, a function or a table", k + 1);
        }
        if (!isfinite(weight))
            luaL_error(L, "r1.grpo: reward %d: the weight is not a finite number", k + 1);
        if (fn) {
            lua_pushvalue(L, fn);
            r->lua_ref[k] = luaL_ref(L, LUA_REGISTRYINDEX);
            r->custom[k] = 1;
            if (name)
                snprintf(r->names[k], sizeof r->names[k], "%s", name);
            else
                snprintf(r->names[k], sizeof r->names[k], "lua%d", k + 1);
        } else {
            r1_error err = {0};
            r1_reward rw;
            if (!name || r1_reward_find(&rw, name, &err) != R1_OK)
                luaL_error(L, "r1.grpo: reward %d: %s", k + 1,
                           name ? err.msg : "a table reward needs a name or a fn");
            snprintf(r->names[k], sizeof r->names[k], "%s", name);
        }
        snprintf(gs->cfg.reward_names[k], sizeof gs->cfg.reward_names[k], "%s", r->names[k]);
        gs->cfg.reward_weights[k] = weight;
        r->nrw = k + 1; /* the refs so far are the box's to release */
        lua_settop(L, t);
    }
    gs->cfg.nrewards = n;
    lua_pop(L, 1);
}

static void set_stat(lua_State *L, const char *k, double v)
{
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

/* Pushes the stats table of a step. */
static void push_stats(lua_State *L, run *r, const r1_grpo_stats *st)
{
    lua_createtable(L, 0, 32);
    lua_pushinteger(L, st->step);
    lua_setfield(L, -2, "step");
    set_stat(L, "reward", st->total_mean);
    set_stat(L, "reward_std", st->total_std);
    lua_createtable(L, 0, r->nrw);
    for (int k = 0; k < r->nrw; k++)
        set_stat(L, r->names[k], st->reward_mean[k]);
    lua_setfield(L, -2, "rewards");
    for (int k = 0; k < r->nrw; k++) /* accuracy, format, language: their means at top level */
        set_stat(L, r->names[k], st->reward_mean[k]);
    set_stat(L, "len_mean", st->len_mean);
    set_stat(L, "len_max", st->len_max);
    set_stat(L, "len_min", st->len_min);
    set_stat(L, "clipped_ratio", st->clipped_ratio);
    set_stat(L, "kl", st->kl);
    set_stat(L, "clip_frac", st->clip_frac);
    set_stat(L, "entropy", st->entropy);
    set_stat(L, "grad_norm", st->grad_norm);
    set_stat(L, "lr", st->lr);
    set_stat(L, "zero_var", st->zero_var_share);
    set_stat(L, "logprob_mismatch", st->logprob_mismatch);
    set_stat(L, "mtp_loss", st->mtp_loss);
    set_stat(L, "entropy_kept", st->entropy_kept);
    set_stat(L, "off_policy_masked", st->off_policy_masked);
    if (st->n_moe > 0) { /* the mismatch meter: per MoE layer, then the mean */
        lua_createtable(L, st->n_moe, 0);
        for (int j = 0; j < st->n_moe && j < R1_GRPO_MAX_MOE; j++) {
            lua_pushnumber(L, st->route_flip[j]);
            lua_rawseti(L, -2, j + 1);
        }
        lua_setfield(L, -2, "route_flip");
        set_stat(L, "route_flip_mean", st->route_flip_mean);
        lua_createtable(L, st->n_moe, 0);
        for (int j = 0; j < st->n_moe && j < R1_GRPO_MAX_MOE; j++) {
            lua_pushnumber(L, st->maxvio[j]);
            lua_rawseti(L, -2, j + 1);
        }
        lua_setfield(L, -2, "maxvio");
        set_stat(L, "maxvio_mean", st->maxvio_mean);
        for (int j = 0; j < st->n_moe && j < 8; j++) { /* for the panes: the first 8 layers */
            char k[32];
            snprintf(k, sizeof k, "route_flip_%d", j + 1);
            set_stat(L, k, st->route_flip[j]);
        }
    }
    set_stat(L, "t_sample", st->t_sample);
    set_stat(L, "t_score", st->t_score);
    set_stat(L, "t_train", st->t_train);
    set_stat(L, "tokens_per_s", st->tokens_per_s);
    set_stat(L, "gen_tokens_per_s", st->gen_tokens_per_s);
    set_stat(L, "groups", st->groups_used);
}

/* The step for the observer (of total steps): the numbers of the stats table on top, and the
 * expert load. */
static void post_step(lua_State *L, const r1_grpo_stats *st, int64_t total)
{
    const lua_r1_observer *obs = lua_r1_observer_get();
    if (!obs)
        return;
    enum { MAX = 48 };
    const char *names[MAX];
    double values[MAX];
    int n = 0, t = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, t)) { /* lua_next and lua_to* allocate nothing: no error here */
        if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TNUMBER &&
            strcmp(lua_tostring(L, -2), "step") != 0 && n < MAX) {
            names[n] = lua_tostring(L, -2); /* a key of the table: lives as long as it */
            values[n++] = lua_tonumber(L, -1);
        }
        lua_pop(L, 1);
    }
    lua_r1_step s = {"grpo", (int)st->step, (int)total, n, names, values,
                     st->expert_load ? st->n_moe : 0, st->n_experts, st->expert_load,
                     st->expert_bias};
    obs->step(&s);
}

typedef struct {
    run *r;
    const r1_grpo_stats *st;
} stats_arg;

static int push_stats_arg(lua_State *L, void *ud)
{
    const stats_arg *a = ud;
    push_stats(L, a->r, a->st);
    return 1;
}

/* The run's step hook: the stats table (left on the stack as the latest result, the one
 * before it dropped), the event, then on_step.  Stops the run when on_step returns false. */
static int step_hook(void *user, const r1_step_report *rep)
{
    const r1_grpo_stats *st = rep->grpo;
    run *r = user;
    lua_State *L = r->L;
    if (r->step_results)
        lua_pop(L, 1); /* keep only the last stats */
    stats_arg a = {r, st};
    if (lua_r1_protect(L, push_stats_arg, &a, 1) != LUA_OK) { /* out of memory */
        r->err_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        r->failed = 1;
        r->step_results = 0;
        return 1;
    }
    r->step_results++;
    r->step = st->step;
    post_step(L, st, rep->steps);
    if (!r->on_step)
        return 0;
    lua_pushvalue(L, -1); /* the stats, as on_step's argument */
    if (!call(r, r->on_step, 1, NULL, NULL, 1, "on_step", -1))
        return 1;
    int stop = lua_isboolean(L, -1) && !lua_toboolean(L, -1);
    lua_pop(L, 1);
    return stop;
}

typedef struct {
    r1_grpo_run *g;
    run *r;
} grpo_box;

static int box_gc(lua_State *L)
{
    grpo_box *b = lua_touserdata(L, 1);
    r1_grpo_run_free(b->g);
    b->g = NULL;
    if (b->r) {
        for (int k = 0; k < b->r->nrw; k++)
            if (b->r->custom[k])
                luaL_unref(L, LUA_REGISTRYINDEX, b->r->lua_ref[k]);
        free(b->r);
    }
    b->r = NULL;
    return 0;
}

/* The option keys r1.grpo reads itself; every other key is a setting of GRPO's table. */
static const char *const own_keys[] = {"model", "task", "rewards", "log", "save", "resume",
                                       "on_step", "on_group", NULL};

static int l_grpo(lua_State *L)
{

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_getfield(L, 1, "model");
    lua_model *u = lua_model_idle(L, -1, "r1.grpo");
    lua_pop(L, 1); /* the options table keeps it alive */
    if (!u->tok)
        return luaL_error(L, "r1.grpo: the model has no tokenizer");
    r1_grpo_settings gs = r1_grpo_settings_defaults();
    const char *task = lua_r1_opt_str(L, 1, "task", NULL); /* one task: tasks = {task} */
    r1_error err = {0};
    if (task && r1_grpo_parse_tasks(&gs, task, &err) != R1_OK)
        return luaL_error(L, "r1.grpo: %s", err.msg);
    lua_r1_read_settings(L, 1, r1_grpo_settings_table(), &gs, "r1.grpo", own_keys);
    const char *log = lua_r1_opt_str(L, 1, "log", NULL);
    const char *save = lua_r1_opt_str(L, 1, "save", NULL);
    const char *resume = lua_r1_opt_str(L, 1, "resume", NULL);
    /* own everything in a box first */
    grpo_box *box = lua_newuserdatauv(L, sizeof *box, 0);
    box->g = NULL;
    box->r = NULL;
    luaL_setmetatable(L, "r1.grpobox");
    int boxi = lua_gettop(L);
    run *r = calloc(1, sizeof *r);
    if (!r)
        return luaL_error(L, "out of memory");
    box->r = r;
    r->L = L;
    r->u = u;
    read_rewards(L, 1, r, &gs);
    r->on_step = lua_r1_opt_fn(L, 1, "on_step") ? lua_gettop(L) : 0;
    r->on_group = lua_r1_opt_fn(L, 1, "on_group") ? lua_gettop(L) : 0;
    r1_grpo_paths paths = {log, save, NULL};
    if (r1_grpo_run_new(&box->g, u->m, u->tok, &gs, r->custom, resume, &paths, &err) != R1_OK)
        return luaL_error(L, "%s", err.msg);
    if (r1_grpo_run_set_comm(box->g, world_comm(), &err) != R1_OK) /* under mpirun */
        return luaL_error(L, "r1.grpo: %s", err.msg);
    r->step = r1_grpo_run_step(box->g);
    r1_grpo_hooks h = {reward_hook, r};
    r1_observer o = {.step = step_hook, .group = group_fn, .user = r};
    r1_grpo_stats last;
    lua_model_hold(u, "r1.grpo");
    r1_status s = r1_grpo_run_go(box->g, &h, &o, &last, &err);
    lua_model_drop(u);
    if (r->failed) {
        return lua_r1_raise_ref(L, r->err_ref); /* the box frees the run */
    }
    if ((s == R1_ECANCELED || s == R1_OK) && r1_interrupted()) /* Ctrl-C, in a callback too */
        return luaL_error(L, "interrupted after step %d%s", (int)r1_grpo_run_step(box->g),
                          save ? " (checkpoint kept)" : "");
    if (s != R1_OK)
        return luaL_error(L, "%s", err.msg);
    const char *stopped = r1_grpo_run_stopped(box->g);
    if (!r->step_results)
        lua_pushnil(L);
    else if (stopped && strncmp(stopped, "stopped by the observer", 23) != 0) {
        lua_pushstring(L, stopped); /* every group scored the same: why the run ended */
        lua_setfield(L, -2, "stopped");
    }
    lua_replace(L, boxi); /* the result replaces the box, which the GC then frees */
    lua_settop(L, boxi);
    return 1;
}

void lua_grpo_open(lua_State *L)
{
    luaL_newmetatable(L, "r1.grpobox");
    lua_pushcfunction(L, box_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    lua_pushcfunction(L, l_grpo);
    lua_setfield(L, -2, "grpo");
}
