/* lua_sft.c — pretraining and cold-start SFT from Lua (engine/r1_sft.h):
 *   r1.pretrain{model = m, tasks = "add:1-3@4,mul:1-2", steps = 1000, batch = 16,
 *               seq_len = 256, lr = 2e-3, min_lr = 2e-4, warmup = 50, seed = 1,
 *               mtp_lambda = 0.3, plain_frac = 0.25, mix_frac = 0.2, eval_every = 250,
 *               eval_n = 16, eval_above = 2, save_every = 250, out = "run/",
 *               on_step = function(stats) ... end}            -> the last stats
 *   r1.sft{...}: the same settings (sft_docs = 4096: the cold-start set's size)
 *   precision = "fp32" | "bf16" | "fp8" | "fp8-tensor": the training steps' GEMMs (r1_model.h;
 *   fp8 = true | "tiles" | "tensor" | false is its older spelling); bf16_moments = true:
 *   AdamW's moments at bf16 precision, as DeepSeek-V3 keeps them
 * Unset fields keep the stage's defaults (r1_sft_defaults).  stats = {step, steps, loss,
 * loss_main, loss_mtp, lr, grad_norm, tokens, tokens_per_s, elapsed, eta, eval = {accuracy,
 * format, language, length, accuracy_in, accuracy_above, cells = {{task, difficulty,
 * accuracy, ...}}}}.  Returning false from on_step stops after a checkpoint.  Under mpirun
 * both run data-parallel over the ranks (r1_sft_set_comm); rank 0 evaluates and writes. */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include "lua_r1.h"
#include "r1_distill.h"
#include "r1_fp8.h"
#include "r1_sft.h"
#include "world.h"

typedef struct {
    lua_State *L;
    int fn;
    int failed;
    int ref;
} sft_cb;

static void num(lua_State *L, const char *k, double v)
{
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

static void push_eval(lua_State *L, const r1_sft_eval *e)
{
    lua_createtable(L, 0, 8);
    num(L, "accuracy", e->accuracy);
    num(L, "format", e->format);
    num(L, "language", e->language);
    num(L, "length", e->length);
    num(L, "think_len", e->think_len);
    num(L, "accuracy_in", e->accuracy_in);
    num(L, "accuracy_above", e->accuracy_above);
    /* by the language the prompt asks for: by_lang.en / by_lang.es = {n, accuracy, format,
     * language} */
    lua_createtable(L, 0, 2);
    for (int l = 0; l < 2; l++) {
        lua_createtable(L, 0, 4);
        lua_pushinteger(L, e->lang_n[l]);
        lua_setfield(L, -2, "n");
        num(L, "accuracy", e->lang_accuracy[l]);
        num(L, "format", e->lang_format[l]);
        num(L, "language", e->lang_language[l]);
        lua_setfield(L, -2, l == R1_LANG_EN ? "en" : "es");
    }
    lua_setfield(L, -2, "by_lang");
    num(L, "seconds", e->seconds);
    if (e->mtp_depth > 0) { /* per MTP draft position: acceptance rate and drafts tried */
        lua_createtable(L, e->mtp_depth, 0);
        for (int k = 0; k < e->mtp_depth; k++) {
            lua_pushnumber(L, e->mtp_tries[k] ? (double)e->mtp_hits[k] / e->mtp_tries[k] : 0);
            lua_rawseti(L, -2, k + 1);
        }
        lua_setfield(L, -2, "mtp_accept");
        lua_createtable(L, e->mtp_depth, 0);
        for (int k = 0; k < e->mtp_depth; k++) {
            lua_pushinteger(L, e->mtp_tries[k]);
            lua_rawseti(L, -2, k + 1);
        }
        lua_setfield(L, -2, "mtp_drafts");
    }
    lua_createtable(L, e->ncells, 0);
    for (int i = 0; i < e->ncells; i++) {
        const r1_sft_eval_cell *c = &e->cell[i];
        lua_createtable(L, 0, 8);
        lua_pushstring(L, r1_task_name(c->task));
        lua_setfield(L, -2, "task");
        lua_pushinteger(L, c->difficulty);
        lua_setfield(L, -2, "difficulty");
        lua_pushboolean(L, c->in_training);
        lua_setfield(L, -2, "in_training");
        lua_pushinteger(L, c->n);
        lua_setfield(L, -2, "n");
        num(L, "accuracy", c->accuracy);
        num(L, "format", c->format);
        num(L, "language", c->language);
        num(L, "length", c->length);
        num(L, "think_len", c->think_len);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "cells");
}

static void push_progress(lua_State *L, const r1_sft_progress *p)
{
    lua_createtable(L, 0, 14);
    lua_pushstring(L, p->stage);
    lua_setfield(L, -2, "stage");
    lua_pushinteger(L, p->step);
    lua_setfield(L, -2, "step");
    lua_pushinteger(L, p->steps);
    lua_setfield(L, -2, "steps");
    num(L, "loss", p->loss);
    num(L, "loss_main", p->loss_main);
    num(L, "loss_mtp", p->loss_mtp);
    num(L, "lr", p->lr);
    num(L, "grad_norm", p->grad_norm);
    num(L, "tokens", (double)p->tokens);
    num(L, "tokens_per_s", p->tokens_per_s);
    num(L, "elapsed", p->elapsed);
    num(L, "eta", p->eta);
    lua_pushboolean(L, p->checkpointed);
    lua_setfield(L, -2, "checkpointed");
    if (p->n_moe > 0) { /* DeepSeek-V3's balance measure, per MoE layer, and its mean */
        lua_createtable(L, p->n_moe, 0);
        for (int j = 0; j < p->n_moe; j++) {
            lua_pushnumber(L, p->maxvio[j]);
            lua_rawseti(L, -2, j + 1);
        }
        lua_setfield(L, -2, "maxvio");
        num(L, "maxvio_mean", p->maxvio_mean);
    }
    if (p->eval) {
        push_eval(L, p->eval);
        lua_setfield(L, -2, "eval");
    }
}

static int push_progress_arg(lua_State *L, void *ud)
{
    push_progress(L, ud);
    return 1;
}

static int on_progress(void *user, const r1_step_report *r)
{
    const r1_sft_progress *p = r->sft;
    sft_cb *c = user;
    lua_State *L = c->L;
    const lua_r1_observer *obs = lua_r1_observer_get();
    if (obs) {
        static const char *const names[] = {"loss",         "loss_main", "loss_mtp", "lr",
                                            "tokens_per_s", "maxvio",    "accuracy", "format"};
        double vals[] = {p->loss,         p->loss_main,   p->loss_mtp,
                         p->lr,           p->tokens_per_s, p->maxvio_mean,
                         p->eval ? p->eval->accuracy : 0, p->eval ? p->eval->format : 0};
        lua_r1_step s = {p->stage, (int)p->step, (int)p->steps, p->eval ? 8 : 6, names, vals,
                         0, 0, NULL, NULL};
        obs->step(&s);
    }
    if (!c->fn)
        return 0;
    /* an error stops the run; it is re-raised after cleanup */
    int stop = lua_r1_callback(L, c->fn, push_progress_arg, (void *)p, &c->ref);
    c->failed = stop < 0;
    return stop != 0;
}

static int box_gc(lua_State *L)
{
    r1_sft **b = lua_touserdata(L, 1);
    r1_sft_free(*b);
    *b = NULL;
    return 0;
}

static int run_stage(lua_State *L, r1_sft_stage stage)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_getfield(L, 1, "model");
    lua_model *u = lua_model_idle(L, -1, stage == R1_SFT_PRETRAIN ? "r1.pretrain" : "r1.sft");
    lua_pop(L, 1);
    r1_sft_settings s = r1_sft_defaults(stage);
    r1_error err = {0};
    static const char *const own_keys[] = {"model", "out", "fp8", "on_step", "resume", NULL};
    char where[16];
    snprintf(where, sizeof where, "r1.%s", r1_sft_stage_name(stage));
    lua_r1_read_settings(L, 1, r1_sft_settings_table(stage), &s, where, own_keys);
    const char *resume = lua_r1_opt_str(L, 1, "resume", NULL);
    if (resume) { /* the run's own settings: only the model, callbacks and fp8 go with it */
        lua_pushnil(L);
        while (lua_next(L, 1)) {
            const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
            if (strcmp(k, "model") && strcmp(k, "resume") && strcmp(k, "on_step") &&
                strcmp(k, "fp8"))
                return luaL_error(L, "%s: resume continues with the run's own settings; '%s' "
                                  "cannot go with it", where, k);
            lua_pop(L, 1);
        }
    }
    s.opt.total = s.steps;
    snprintf(s.out_dir, sizeof s.out_dir, "%s", lua_r1_opt_str(L, 1, "out", ""));
    /* fp8 = true | "tiles" | "tensor" | "off" | false: the older spelling of precision = "fp8"
     * (or "fp8-tensor", "fp32"), kept because notebooks use it */
    int prec = -1;
    lua_getfield(L, 1, "fp8");
    if (lua_isboolean(L, -1))
        prec = lua_toboolean(L, -1) ? R1_PREC_FP8 : R1_PREC_FP32;
    else if (!lua_isnil(L, -1)) {
        static const char *const modes[] = {"off", "tiles", "tensor", NULL};
        static const int as[] = {R1_PREC_FP32, R1_PREC_FP8, R1_PREC_FP8_TENSOR};
        prec = as[luaL_checkoption(L, -1, NULL, modes)];
    }
    lua_pop(L, 1);
    lua_getfield(L, 1, "precision");
    int both = prec >= 0 && !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (both)
        return luaL_error(L, "%s: give precision or fp8 (its older spelling), not both", where);
    if (prec >= 0)
        s.precision = prec;
    sft_cb cb = {L, 0, 0, LUA_NOREF};
    if (lua_r1_opt_fn(L, 1, "on_step"))
        cb.fn = lua_gettop(L);
    if (!u->tok)
        return luaL_error(L, "r1.%s: the model has no tokenizer", r1_sft_stage_name(stage));
    r1_sft **box = lua_newuserdatauv(L, sizeof *box, 0); /* box first */
    *box = NULL;
    luaL_setmetatable(L, "r1.sftbox");
    if (resume) {
        /* the run folder's checkpoint: its model, optimizer and settings; the trained weights
         * go back into m at the end */
        if (r1_sft_resume(box, resume, &err) != R1_OK)
            return luaL_error(L, "%s", err.msg);
        if (r1_sft_get_settings(*box)->stage != stage)
            return luaL_error(L, "%s: %s holds a %s run; resume it with r1.%s", where, resume,
                              r1_sft_stage_name(r1_sft_get_settings(*box)->stage),
                              r1_sft_stage_name(r1_sft_get_settings(*box)->stage));
        s = *r1_sft_get_settings(*box);
    } else if (r1_sft_new(box, u->m, u->tok, &s, &err) != R1_OK) {
        return luaL_error(L, "%s", err.msg);
    }
    r1_model *tm = r1_sft_model(*box);
    if (resume && prec >= 0)
        r1_sft_set_precision(*box, (r1_precision)prec);
    if (r1_sft_set_comm(*box, world_comm(), &err) != R1_OK) /* under mpirun: data-parallel */
        return luaL_error(L, "%s: %s", where, err.msg);
    r1_observer o = {.step = on_progress, .user = &cb};
    lua_model_hold(u, stage == R1_SFT_PRETRAIN ? "r1.pretrain" : "r1.sft");
    r1_status st = r1_sft_run(*box, &o, &err);
    lua_model_drop(u);
    if (resume && (st == R1_OK || st == R1_ECANCELED)) {
        r1_error e2 = {0};
        if (r1_model_copy_params(u->m, tm, &e2) != R1_OK)
            return luaL_error(L, "%s: the run's model does not fit m: %s", where, e2.msg);
    }
    if (cb.failed) {
        return lua_r1_raise_ref(L, cb.ref);
    }
    if (st == R1_ECANCELED && r1_interrupted())
        return luaL_error(L, "interrupted (checkpoint kept%s%s)", s.out_dir[0] ? " in " : "",
                          s.out_dir);
    if (st != R1_OK && st != R1_ECANCELED)
        return luaL_error(L, "%s", err.msg);
    r1_sft_eval ev_;
    if (r1_sft_eval_now(*box, 0, &ev_, &err) != R1_OK)
        return luaL_error(L, "%s", err.msg);
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, r1_sft_step_count(*box));
    lua_setfield(L, -2, "step");
    push_eval(L, &ev_);
    lua_setfield(L, -2, "eval");
    return 1;
}

/* ---- SFT on a JSONL set, and distillation (engine/r1_distill.h) */

typedef struct {
    lua_State *L;
    int fn, failed, ref;
} dcb;

/* on_step's argument for distillation and SFT on a data set (built protected). */
static int push_distill(lua_State *L, void *ud)
{
    const r1_distill_progress *p = ud;
    lua_createtable(L, 0, 10);
    lua_pushinteger(L, p->step);
    lua_setfield(L, -2, "step");
    lua_pushinteger(L, p->steps);
    lua_setfield(L, -2, "steps");
    num(L, "loss", p->loss);
    num(L, "ce", p->ce);
    num(L, "kl", p->kl);
    num(L, "lr", p->lr);
    num(L, "grad_norm", p->grad_norm);
    num(L, "tokens_per_s", p->tokens_per_s);
    num(L, "elapsed", p->elapsed);
    return 1;
}

static int on_distill(void *user, const r1_step_report *r)
{
    const r1_distill_progress *p = r->distill;
    dcb *c = user;
    lua_State *L = c->L;
    const lua_r1_observer *obs = lua_r1_observer_get();
    if (obs) {
        static const char *const names[] = {"loss", "kl"};
        double vals[] = {p->loss, p->kl};
        lua_r1_step s = {"distill", (int)p->step, (int)p->steps, 2, names, vals, 0, 0, NULL,
                         NULL};
        obs->step(&s);
    }
    if (!c->fn)
        return 0;
    int stop = lua_r1_callback(L, c->fn, push_distill, (void *)p, &c->ref);
    c->failed = stop < 0;
    return stop != 0;
}

/* r1.sft{model = m, data = "set.jsonl", ...} and r1.distill{student = s, teacher = t,
 * data = "set.jsonl", kd = 0.5, ce = 1, steps, batch, seq_len, lr, min_lr, warmup, seed,
 * on_step} -> {step, loss, ce, kl, records, skipped} */
static int run_dataset(lua_State *L, const char *model_key, int distill)
{
    r1_distill_set_comm(world_comm()); /* under mpirun: data-parallel over the ranks */
    lua_getfield(L, 1, model_key);
    lua_model *u = lua_model_idle(L, -1, distill ? "r1.distill" : "r1.sft");
    lua_pop(L, 1);
    r1_model *teacher = NULL;
    lua_model *tu = NULL;
    if (distill) {
        lua_getfield(L, 1, "teacher");
        if (!lua_isnil(L, -1))
            tu = lua_model_idle(L, -1, "r1.distill"), teacher = tu->m;
        lua_pop(L, 1);
    }
    if (!u->tok)
        return luaL_error(L, "the %s has no tokenizer", model_key);
    r1_distill_cfg c = r1_distill_defaults();
    const char *data = lua_r1_opt_str(L, 1, "data", NULL);
    if (!data)
        return luaL_error(L, "data = \"FILE.jsonl\" is required");
    static const char *const own_keys[] = {"model", "student", "teacher", "data", "on_step",
                                           NULL};
    c.kd = -1;
    lua_r1_read_settings(L, 1, r1_distill_settings_table(), &c,
                         distill ? "r1.distill" : "r1.sft", own_keys);
    if (c.kd < 0) /* not given: soft targets when there is a teacher */
        c.kd = teacher ? 0.5f : 0;
    dcb cb = {L, 0, 0, LUA_NOREF};
    if (lua_r1_opt_fn(L, 1, "on_step"))
        cb.fn = lua_gettop(L);
    r1_distill_progress last;
    r1_error err = {0};
    r1_observer o = {.step = on_distill, .user = &cb};
    lua_model_hold(u, distill ? "r1.distill" : "r1.sft");
    lua_model_hold(tu, "r1.distill");
    r1_status st = r1_distill_run(u->m, u->tok, data, teacher, &c, &o, &last, &err);
    lua_model_drop(u);
    lua_model_drop(tu);
    if (cb.failed) {
        return lua_r1_raise_ref(L, cb.ref);
    }
    if (st == R1_ECANCELED && r1_interrupted())
        return luaL_error(L, "interrupted");
    if (st != R1_OK && st != R1_ECANCELED)
        return luaL_error(L, "%s", err.msg);
    lua_createtable(L, 0, 6);
    lua_pushinteger(L, last.step);
    lua_setfield(L, -2, "step");
    num(L, "loss", last.loss);
    num(L, "ce", last.ce);
    num(L, "kl", last.kl);
    lua_pushinteger(L, last.records);
    lua_setfield(L, -2, "records");
    lua_pushinteger(L, last.skipped);
    lua_setfield(L, -2, "skipped");
    return 1;
}

/* r1.evaluate{model = m, tasks = "add:1-5,mul:1-4", n = 16, above = 0, seed = 1,
 *             trained = "add:1-3,mul:1-2"}
 * -> {accuracy, format, language, length, think_len, accuracy_in, accuracy_above, by_lang,
 *     cells}
 * on the held-out problems (the same ones the SFT trainer evaluates on), greedy.  `trained`
 * (a task list as for training) decides which cells count as in_training; without it, every
 * difficulty `tasks` names does. */
static int l_evaluate(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_getfield(L, 1, "model");
    lua_model *u = lua_model_idle(L, -1, "r1.evaluate");
    lua_pop(L, 1);
    if (!u->tok)
        return luaL_error(L, "r1.evaluate: the model has no tokenizer");
    r1_eval_settings es = r1_eval_defaults();
    static const char *const own_keys[] = {"model", NULL};
    lua_r1_read_settings(L, 1, r1_eval_settings_table(), &es, "r1.evaluate", own_keys);
    r1_error err = {0};
    r1_sft_eval *e = lua_newuserdatauv(L, sizeof *e, 0);
    /* under mpirun every rank takes its share and gets the whole result (call it on all) */
    r1_status st = r1_eval_run_comm(u->m, u->tok, &es, world_comm(), e, &err);
    if (st == R1_ECANCELED && r1_interrupted())
        return luaL_error(L, "interrupted");
    if (st != R1_OK)
        return luaL_error(L, "%s", err.msg);
    push_eval(L, e);
    return 1;
}

static int l_pretrain(lua_State *L) { return run_stage(L, R1_SFT_PRETRAIN); }

static int l_sft(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "data");
    int dataset = !lua_isnil(L, -1);
    lua_pop(L, 1);
    return dataset ? run_dataset(L, "model", 0) : run_stage(L, R1_SFT_COLDSTART);
}

static int l_distill(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    return run_dataset(L, "student", 1);
}

void lua_sft_open(lua_State *L)
{
    luaL_newmetatable(L, "r1.sftbox");
    lua_pushcfunction(L, box_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    lua_pushcfunction(L, l_evaluate);
    lua_setfield(L, -2, "evaluate");
    lua_pushcfunction(L, l_pretrain);
    lua_setfield(L, -2, "pretrain");
    lua_pushcfunction(L, l_sft);
    lua_setfield(L, -2, "sft");
    lua_pushcfunction(L, l_distill);
    lua_setfield(L, -2, "distill");
}
