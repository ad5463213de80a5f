/* lua_grpo.c — r1.grpo{...}: GRPO from Lua, with built-in and Lua reward functions.
 *
 *   r1.grpo{model = m, task = "add" | tasks = {"add", "mul:1-2"}, difficulty = 3, lang = "auto",
 *           steps = 10, group = 8, prompts = 8, mu = 1, lr = 1e-5, beta = 0.04,
 *           eps_low = 0.2, eps_high = 0.2, temperature = 1, max_new = 64,
 *           agg = "seq" | "token" | "const", std_scale = true, dynamic_sampling = false,
 *           ref_reset = 0, micro = 16, seed = 1, balance_gamma = 0.001,
 *           rewards = {"accuracy", "format", {"language", weight = 0.5},
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
 * run (an error on the first step): the result gets stopped = the reason, and `save` is kept. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "lua_r1.h"
#include "r1_grpo.h"
#include "r1_rng.h"

typedef struct {
    lua_State *L;
    lua_model *u;
    const r1_task *tasks[16];
    int ntasks, dmin[16], dmax[16]; /* difficulty range per task */
    r1_lang lang;
    uint64_t seed;
    int max_new;
    r1_reward rw[R1_GRPO_MAX_REWARDS]; /* built-ins; fn NULL for a Lua reward */
    int lua_ref[R1_GRPO_MAX_REWARDS];  /* registry refs of Lua rewards */
    int nrw;
    int on_group; /* stack index or 0 */
    int64_t step;
    int failed;   /* an error message is on the registry ref err_ref */
    int err_ref;
    r1_task_sample sample; /* scratch */
} run;

/* The prompt number i: task i mod n, a seed from the run's seed and i (training seeds are
 * disjoint from evaluation seeds, which the tasks draw from another range). */
static const r1_task *sample_of(run *r, int64_t i, r1_task_sample *s)
{
    int k = (int)(i % r->ntasks);
    const r1_task *t = r->tasks[k];
    uint64_t seed = 0x5eed0000ull + r->seed * 1000003ull + (uint64_t)i;
    int d = r->dmin[k];
    if (r->dmax[k] > d) { /* a range: the difficulty is drawn from the prompt's own seed */
        r1_rng g;
        r1_rng_seed(&g, seed ^ 0xd1ff1c017ull);
        d += (int)r1_rng_below(&g, (uint32_t)(r->dmax[k] - d + 1));
    }
    r1_task_generate(t, seed, d, r->lang, s, NULL);
    return t;
}

static int prompt_fn(void *user, int64_t index, int32_t *ids, int cap)
{
    run *r = user;
    sample_of(r, index, &r->sample);
    int n = 0;
    if (r1_tokenizer_encode_prompt(r->u->tok, r->sample.prompt, ids, cap, &n, NULL) != R1_OK)
        return -1;
    return n;
}

static int traceback(lua_State *L)
{
    luaL_traceback(L, L, lua_tostring(L, 1), 1);
    return 1;
}

/* Calls the function below nargs arguments with a traceback handler; on error records
 * "what at step S, prompt I: message" and returns 0. */
static int call(run *r, int nargs, int nres, const char *what, int64_t index)
{
    lua_State *L = r->L;
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, traceback);
    lua_insert(L, base);
    int st = lua_pcall(L, nargs, nres, base);
    lua_remove(L, base);
    if (st != LUA_OK) {
        lua_pushfstring(L, "%s failed at step %I, prompt %I: %s", what, (lua_Integer)r->step + 1,
                        (lua_Integer)index, lua_tostring(L, -1));
        r->err_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        lua_pop(L, 1);
        r->failed = 1;
        return 0;
    }
    return 1;
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

static int score_fn(void *user, int64_t index, const int32_t *prompt, int plen,
                    const int32_t *comp, int clen, int finish, double *out)
{
    (void)prompt, (void)plen, (void)finish;
    run *r = user;
    r1_task_sample *ts = &r->sample;
    const r1_task *t = sample_of(r, index, ts);
    char *text = NULL;
    if (r1_tokenizer_decode(r->u->tok, comp, clen, &text, NULL) != R1_OK)
        return 1;
    r1_reward_sample s = {ts->prompt, text, NULL, NULL, ts->answer, t, ts->lang, clen,
                          r->max_new};
    int ok = 1;
    for (int k = 0; k < r->nrw && ok; k++) {
        if (r->rw[k].fn) {
            out[k] = r->rw[k].fn(&s, r->rw[k].user);
            continue;
        }
        lua_State *L = r->L;
        lua_rawgeti(L, LUA_REGISTRYINDEX, r->lua_ref[k]);
        push_sample(L, &s, ts);
        char what[64];
        snprintf(what, sizeof what, "reward '%s'", r->rw[k].name);
        if (!(ok = call(r, 1, 1, what, index)))
            break;
        if (lua_type(L, -1) == LUA_TNUMBER) {
            out[k] = lua_tonumber(L, -1);
        } else if (lua_istable(L, -1)) { /* named components: their sum */
            double sum = 0;
            lua_pushnil(L);
            while (lua_next(L, -2)) {
                sum += lua_tonumber(L, -1);
                lua_pop(L, 1);
            }
            out[k] = sum;
        } else {
            lua_pushfstring(L, "reward '%s' at step %I, prompt %I returned %s; expected a number",
                            r->rw[k].name, (lua_Integer)r->step + 1, (lua_Integer)index,
                            luaL_typename(L, -1));
            r->err_ref = luaL_ref(L, LUA_REGISTRYINDEX);
            r->failed = 1;
            ok = 0;
        }
        lua_pop(L, 1);
    }
    free(text);
    return !ok;
}

static int group_fn(void *user, const r1_grpo_group *g)
{
    run *r = user;
    lua_State *L = r->L;
    int post = ev_sink_active();
    ev *e = post ? ev_new(EV_GROUP) : NULL;
    if (e) {
        e->n = g->G;
        e->nreward_names = r->nrw;
        for (int k = 0; k < r->nrw && k < 8; k++)
            snprintf(e->reward_names[k], sizeof e->reward_names[k], "%s", r->rw[k].name);
        r1_tokenizer_decode(r->u->tok, g->prompt, g->plen, &e->text, NULL);
        e->completions = calloc(g->G, sizeof(ev_completion));
        e->stage[0] = 0;
        e->step = (int)r->step + 1;
    }
    if (r->on_group)
        lua_pushvalue(L, r->on_group), lua_createtable(L, 0, 8);
    if (r->on_group) {
        lua_pushinteger(L, g->index);
        lua_setfield(L, -2, "index");
        lua_pushboolean(L, g->dropped);
        lua_setfield(L, -2, "dropped");
        lua_r1_push_decoded(L, r->u->tok, g->prompt, g->plen);
        lua_setfield(L, -2, "prompt");
        const r1_task *t = sample_of(r, g->index, &r->sample);
        lua_pushstring(L, r1_task_name(t));
        lua_setfield(L, -2, "task");
        lua_pushinteger(L, r->sample.difficulty);
        lua_setfield(L, -2, "difficulty");
        lua_createtable(L, g->G, 0);
    }
    for (int j = 0; j < g->G; j++) {
        char *text = NULL;
        r1_tokenizer_decode(r->u->tok, g->completions[j], g->lens[j], &text, NULL);
        if (e && e->completions) {
            ev_completion *c = &e->completions[j];
            c->text = text ? strdup(text) : NULL;
            c->nrewards = r->nrw < 8 ? r->nrw : 8;
            for (int k = 0; k < c->nrewards; k++)
                c->rewards[k] = g->rewards[(size_t)j * r->nrw + k];
            c->total = g->totals[j];
            c->advantage = g->adv[j];
            c->correct = -1;
            for (int k = 0; k < r->nrw; k++)
                if (!strcmp(r->rw[k].name, "accuracy"))
                    c->correct = g->rewards[(size_t)j * r->nrw + k] > 0.5;
        }
        if (r->on_group) {
            lua_createtable(L, 0, 5);
            lua_pushstring(L, text ? text : "");
            lua_setfield(L, -2, "text");
            lua_createtable(L, 0, r->nrw);
            for (int k = 0; k < r->nrw; k++) {
                lua_pushnumber(L, g->rewards[(size_t)j * r->nrw + k]);
                lua_setfield(L, -2, r->rw[k].name);
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
        free(text);
    }
    if (e)
        ev_post(e);
    if (r->on_group) {
        lua_setfield(L, -2, "completions");
        if (!call(r, 1, 0, "on_group", g->index))
            return 1;
    }
    return 0;
}

/* Reads the rewards option (index idx) into r. */
static void read_rewards(lua_State *L, int idx, run *r)
{
    lua_getfield(L, idx, "rewards");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        r1_reward_find(&r->rw[0], "accuracy", NULL);
        r1_reward_find(&r->rw[1], "format", NULL);
        r->nrw = 2;
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
            if (lua_r1_opt_fn(L, e, "fn"))
                fn = lua_gettop(L);
        } else {
            luaL_error(L, "r1.grpo: reward %d: expected a name, a function or a table", k + 1);
        }
        if (fn) {
            lua_pushvalue(L, fn);
            r->lua_ref[k] = luaL_ref(L, LUA_REGISTRYINDEX);
            r->rw[k].fn = NULL;
            static char names[R1_GRPO_MAX_REWARDS][24];
            snprintf(names[k], sizeof names[k], "%s", name ? name : "lua");
            if (!name)
                snprintf(names[k], sizeof names[k], "lua%d", k + 1);
            r->rw[k].name = names[k];
        } else {
            r1_error err = {0};
            if (!name || r1_reward_find(&r->rw[k], name, &err) != R1_OK)
                luaL_error(L, "r1.grpo: reward %d: %s", k + 1,
                           name ? err.msg : "a table reward needs a name or a fn");
        }
        r->rw[k].weight = weight;
        lua_settop(L, t);
    }
    r->nrw = n;
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
        set_stat(L, r->rw[k].name, st->reward_mean[k]);
    lua_setfield(L, -2, "rewards");
    for (int k = 0; k < r->nrw; k++) /* accuracy, format, language: their means at top level */
        set_stat(L, r->rw[k].name, st->reward_mean[k]);
    set_stat(L, "len_mean", st->len_mean);
    set_stat(L, "len_max", st->len_max);
    set_stat(L, "kl", st->kl);
    set_stat(L, "clip_frac", st->clip_frac);
    set_stat(L, "entropy", st->entropy);
    set_stat(L, "grad_norm", st->grad_norm);
    set_stat(L, "lr", st->lr);
    set_stat(L, "zero_var", st->zero_var_share);
    set_stat(L, "logprob_mismatch", st->logprob_mismatch);
    set_stat(L, "t_sample", st->t_sample);
    set_stat(L, "t_score", st->t_score);
    set_stat(L, "t_train", st->t_train);
    set_stat(L, "tokens_per_s", st->tokens_per_s);
    set_stat(L, "gen_tokens_per_s", st->gen_tokens_per_s);
    set_stat(L, "groups", st->groups_used);
}

/* The step as a JSONL line and a workbench event. */
static void log_step(lua_State *L, const r1_grpo_stats *st, const char *log)
{
    int t = lua_gettop(L); /* the stats table */
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    lua_pushfstring(L, "{\"stage\":\"grpo\",\"step\":%I", (lua_Integer)st->step);
    luaL_addvalue(&b);
    ev *e = ev_sink_active() ? ev_new(EV_STEP) : NULL;
    if (e) {
        snprintf(e->stage, sizeof e->stage, "grpo");
        e->step = (int)st->step;
    }
    lua_pushnil(L);
    while (lua_next(L, t)) {
        if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TNUMBER &&
            strcmp(lua_tostring(L, -2), "step") != 0) {
            char num[64];
            snprintf(num, sizeof num, "%.9g", lua_tonumber(L, -1));
            lua_pushfstring(L, ",\"%s\":%s", lua_tostring(L, -2), num);
            luaL_addvalue(&b);
            if (e && e->nstats < 48) {
                snprintf(e->stats[e->nstats].name, sizeof e->stats[0].name, "%s",
                         lua_tostring(L, -2));
                e->stats[e->nstats++].value = lua_tonumber(L, -1);
            }
        }
        lua_pop(L, 1);
    }
    luaL_addstring(&b, "}");
    luaL_pushresult(&b);
    if (e && st->n_moe > 0 && st->expert_load) {
        size_t n = (size_t)st->n_moe * st->n_experts;
        e->load_layers = st->n_moe;
        e->load_experts = st->n_experts;
        e->load = malloc(sizeof(float) * n);
        e->bias = malloc(sizeof(float) * n);
        if (e->load)
            memcpy(e->load, st->expert_load, sizeof(float) * n);
        if (e->bias)
            memcpy(e->bias, st->expert_bias, sizeof(float) * n);
    }
    if (e)
        ev_post(e);
    if (log) {
        r1_error err = {0};
        if (r1_jsonl_append(log, lua_tostring(L, -1), &err) != R1_OK) {
            lua_settop(L, t);
            luaL_error(L, "%s", err.msg);
        }
    }
    lua_settop(L, t);
}

typedef struct {
    r1_grpo *g;
    run *r;
} grpo_box;

static int box_gc(lua_State *L)
{
    grpo_box *b = lua_touserdata(L, 1);
    if (b->g)
        r1_grpo_free(b->g);
    b->g = NULL;
    if (b->r) {
        for (int k = 0; k < b->r->nrw; k++)
            if (!b->r->rw[k].fn)
                luaL_unref(L, LUA_REGISTRYINDEX, b->r->lua_ref[k]);
        free(b->r);
    }
    b->r = NULL;
    return 0;
}

static int l_grpo(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_getfield(L, 1, "model");
    lua_model *u = lua_model_check(L, -1);
    lua_pop(L, 1); /* the options table keeps it alive */
    if (!u->tok)
        return luaL_error(L, "r1.grpo: the model has no tokenizer");
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
    /* tasks */
    lua_getfield(L, 1, "tasks");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_createtable(L, 1, 0);
        lua_pushstring(L, lua_r1_opt_str(L, 1, "task", "add"));
        lua_rawseti(L, -2, 1);
    }
    int nt = (int)lua_rawlen(L, -1);
    if (nt < 1 || nt > 16)
        return luaL_error(L, "r1.grpo: between 1 and 16 tasks, got %d", nt);
    int dflt = (int)lua_r1_opt_int(L, 1, "difficulty", 0);
    for (int i = 0; i < nt; i++) {
        lua_rawgeti(L, -1, i + 1);
        /* "add", or "add:4", or "add:2-4" (a difficulty drawn per prompt) */
        lua_r1_task_spec(L, "r1.grpo", i + 1, luaL_checkstring(L, -1), dflt, &r->tasks[i],
                         &r->dmin[i], &r->dmax[i]);
        lua_pop(L, 1);
    }
    r->ntasks = nt;
    lua_pop(L, 1);
    r1_error err = {0};
    if (r1_lang_parse(&r->lang, lua_r1_opt_str(L, 1, "lang", "auto"), &err) != R1_OK)
        return luaL_error(L, "%s", err.msg);
    read_rewards(L, 1, r);
    /* settings */
    r1_grpo_cfg c = r1_grpo_defaults();
    c.group = (int)lua_r1_opt_int(L, 1, "group", c.group);
    c.prompts = (int)lua_r1_opt_int(L, 1, "prompts", c.prompts);
    c.mu = (int)lua_r1_opt_int(L, 1, "mu", c.mu);
    c.eps_low = (float)lua_r1_opt_num(L, 1, "eps_low", c.eps_low);
    c.eps_high = (float)lua_r1_opt_num(L, 1, "eps_high", c.eps_high);
    c.beta = (float)lua_r1_opt_num(L, 1, "beta", c.beta);
    c.temperature = (float)lua_r1_opt_num(L, 1, "temperature", c.temperature);
    c.top_k = (int)lua_r1_opt_int(L, 1, "top_k", c.top_k);
    c.top_p = (float)lua_r1_opt_num(L, 1, "top_p", c.top_p);
    c.max_new = (int)lua_r1_opt_int(L, 1, "max_new", c.max_new);
    static const char *const aggs[] = {"seq", "token", "const", NULL};
    const char *agg = lua_r1_opt_str(L, 1, "agg", "seq");
    int ai = 0;
    while (aggs[ai] && strcmp(aggs[ai], agg))
        ai++;
    if (!aggs[ai])
        return luaL_error(L, "r1.grpo: agg expects \"seq\", \"token\" or \"const\", got \"%s\"",
                          agg);
    c.agg = (r1_grpo_agg)ai;
    c.std_scale = lua_r1_opt_bool(L, 1, "std_scale", c.std_scale);
    c.dynamic_sampling = lua_r1_opt_bool(L, 1, "dynamic_sampling", c.dynamic_sampling);
    c.max_refill = (int)lua_r1_opt_int(L, 1, "max_refill", c.max_refill);
    c.ref_reset = (int)lua_r1_opt_int(L, 1, "ref_reset", c.ref_reset);
    c.micro = (int)lua_r1_opt_int(L, 1, "micro", c.micro);
    c.balance_gamma = (float)lua_r1_opt_num(L, 1, "balance_gamma", c.balance_gamma);
    c.opt.lr = (float)lua_r1_opt_num(L, 1, "lr", c.opt.lr);
    c.opt.min_lr = (float)lua_r1_opt_num(L, 1, "min_lr", c.opt.lr);
    c.opt.warmup = (int)lua_r1_opt_int(L, 1, "warmup", 0);
    c.opt.clip = (float)lua_r1_opt_num(L, 1, "clip", c.opt.clip);
    c.seed = (uint64_t)lua_r1_opt_int(L, 1, "seed", 1);
    c.stop_ids[0] = R1_TOK_EOS;
    c.n_stop = 1;
    c.nrewards = r->nrw;
    for (int k = 0; k < r->nrw; k++) {
        snprintf(c.reward_names[k], sizeof c.reward_names[k], "%s", r->rw[k].name);
        c.reward_weights[k] = r->rw[k].weight;
    }
    r->seed = c.seed;
    r->max_new = c.max_new;
    int steps = (int)lua_r1_opt_int(L, 1, "steps", 10);
    const char *log = lua_r1_opt_str(L, 1, "log", NULL);
    const char *save = lua_r1_opt_str(L, 1, "save", NULL);
    const char *resume = lua_r1_opt_str(L, 1, "resume", NULL);
    int save_every = (int)lua_r1_opt_int(L, 1, "save_every", 0);
    int on_step = lua_r1_opt_fn(L, 1, "on_step") ? lua_gettop(L) : 0;
    r->on_group = lua_r1_opt_fn(L, 1, "on_group") ? lua_gettop(L) : 0;
    if (r1_grpo_new(&box->g, u->m, &c, &err) != R1_OK)
        return luaL_error(L, "%s", err.msg);
    if (resume && r1_grpo_resume(box->g, resume, &err) != R1_OK)
        return luaL_error(L, "%s", err.msg);
    r->step = r1_grpo_steps(box->g);
    int have_stats = 0;
    r1_grpo_stats st;
    for (int i = 0; i < steps; i++) {
        r1_status s = r1_grpo_step(box->g, prompt_fn, score_fn, group_fn, r, &st, &err);
        if (r->failed) {
            lua_rawgeti(L, LUA_REGISTRYINDEX, r->err_ref);
            return lua_error(L); /* the box frees the trainer */
        }
        if (s == R1_ECANCELED && r1_interrupted()) {
            if (save)
                r1_grpo_save(box->g, save, NULL);
            return luaL_error(L, "interrupted at step %d%s", (int)r->step + 1,
                              save ? " (checkpoint kept)" : "");
        }
        if (s == R1_ECANCELED && have_stats && r1_grpo_exhausted(box->g)) {
            /* every group scored the same even after the refills: the run ends here, as if
             * on_step had stopped it, and the last step's stats say why */
            lua_pushstring(L, err.msg);
            lua_setfield(L, -2, "stopped");
            break;
        }
        if (s != R1_OK)
            return luaL_error(L, "%s", err.msg);
        r->step = st.step;
        if (have_stats)
            lua_pop(L, 1); /* keep only the last stats */
        have_stats = 1;
        push_stats(L, r, &st);
        log_step(L, &st, log);
        int stop = 0;
        if (save && save_every > 0 && st.step % save_every == 0 &&
            r1_grpo_save(box->g, save, &err) != R1_OK)
            return luaL_error(L, "%s", err.msg);
        if (on_step) {
            lua_pushvalue(L, on_step);
            lua_pushvalue(L, -2);
            if (!call(r, 1, 1, "on_step", -1)) {
                lua_rawgeti(L, LUA_REGISTRYINDEX, r->err_ref);
                return lua_error(L);
            }
            stop = lua_isboolean(L, -1) && !lua_toboolean(L, -1);
            lua_pop(L, 1);
        }
        if (stop)
            break;
    }
    if (save && r1_grpo_save(box->g, save, &err) != R1_OK)
        return luaL_error(L, "%s", err.msg);
    if (!have_stats)
        lua_pushnil(L);
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
