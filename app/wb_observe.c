/* wb_observe.c — the workbench's observer of the Lua binding (lua_r1_observer, lua_r1.h): it
 * turns generation, training steps and GRPO groups into screen events (events.h) for the UI
 * thread.  Only the workbench program links it; the stand-alone `r1` module has no observer.
 * Runs on the worker thread; never fails (an event that cannot be allocated is dropped). */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "lua_r1.h"
#include "wb_observe.h"

static void gen_begin(const char *prompt, int rows)
{
    ev *e = ev_new(EV_GEN_BEGIN);
    if (!e)
        return;
    e->n = rows;
    e->text = prompt ? strdup(prompt) : NULL;
    ev_post(e);
}

/* A candidate's text for the screen: the token's text, or its id. */
static void cand_text(char *buf, size_t n, const r1_tokenizer *tok, int32_t id)
{
    if (tok)
        snprintf(buf, n, "%s", r1_tokenizer_token(tok, id));
    else
        snprintf(buf, n, "%d", (int)id);
}

static void token(const r1_token_event *te, const char *text, int part, const r1_tokenizer *tok)
{
    ev *e = ev_new(EV_TOKEN);
    if (!e)
        return;
    e->row = te->row, e->index = te->index, e->pos = te->pos, e->token = te->token;
    e->logprob = te->logprob_model;
    e->part = part;
    if (text)
        snprintf(e->tok_text, sizeof e->tok_text, "%s", text);
    else
        snprintf(e->tok_text, sizeof e->tok_text, "%d ", (int)te->token);
    e->n_top = te->n_top < 5 ? te->n_top : 5;
    for (int j = 0; j < e->n_top; j++) {
        e->top_id[j] = te->top_ids[j];
        e->top_p[j] = te->top_p[j];
        cand_text(e->top_text[j], sizeof e->top_text[j], tok, te->top_ids[j]);
    }
    e->entropy = te->entropy;
    e->mtp_id = te->mtp_token;
    e->mtp_p = te->mtp_p;
    if (te->mtp_token >= 0)
        cand_text(e->mtp_text, sizeof e->mtp_text, tok, te->mtp_token);
    if (ev_alloc_routing(e, te->n_moe, te->K) != 0) {
        ev_free(e);
        return;
    }
    for (int j = 0; j < e->n_moe; j++) {
        e->moe_layers[j] = te->moe_layers[j];
        for (int k = 0; k < e->K; k++) {
            e->experts[j * e->K + k] = te->experts[j * te->K + k];
            e->weights[j * e->K + k] = te->weights[j * te->K + k];
        }
    }
    ev_post(e);
}

static void gen_end(const char *completion, int verdict)
{
    ev *e = ev_new(EV_GEN_END);
    if (!e)
        return;
    e->text = completion ? strdup(completion) : NULL;
    e->verdict = verdict;
    ev_post(e);
}

static float *copy_floats(const float *x, size_t n)
{
    float *y = x && n ? malloc(sizeof(float) * n) : NULL;
    if (y)
        memcpy(y, x, sizeof(float) * n);
    return y;
}

static void step(const lua_r1_step *s)
{
    ev *e = ev_new(EV_STEP);
    if (!e)
        return;
    snprintf(e->stage, sizeof e->stage, "%s", s->stage ? s->stage : "");
    e->step = s->step;
    e->total_steps = s->total;
    if (ev_alloc_stats(e, s->nstats) != 0) {
        ev_free(e);
        return;
    }
    for (int i = 0; i < s->nstats && e->nstats < EV_MAX_STATS; i++) {
        snprintf(e->stats[e->nstats].name, sizeof e->stats[0].name, "%s", s->names[i]);
        e->stats[e->nstats++].value = s->values[i];
    }
    size_t n = (size_t)s->load_layers * (size_t)s->load_experts;
    e->load = copy_floats(s->load, n);
    e->bias = e->load ? copy_floats(s->bias, n) : NULL;
    e->load_layers = e->load ? s->load_layers : 0;
    e->load_experts = e->load ? s->load_experts : 0;
    ev_post(e);
}

static void group(const lua_r1_group *g)
{
    ev *e = ev_new(EV_GROUP);
    if (!e)
        return;
    e->n = g->G;
    e->text = g->prompt ? strdup(g->prompt) : NULL;
    e->nreward_names = g->nrewards < 8 ? g->nrewards : 8;
    for (int k = 0; k < e->nreward_names; k++)
        snprintf(e->reward_names[k], sizeof e->reward_names[k], "%s", g->names[k]);
    e->completions = calloc((size_t)(g->G ? g->G : 1), sizeof(ev_completion));
    if (!e->completions) {
        ev_free(e);
        return;
    }
    for (int j = 0; j < g->G; j++) {
        ev_completion *c = &e->completions[j];
        c->text = strdup(g->texts[j] ? g->texts[j] : "");
        c->nrewards = e->nreward_names;
        for (int k = 0; k < c->nrewards; k++)
            c->rewards[k] = g->rewards[(size_t)j * g->nrewards + k];
        c->total = g->totals[j];
        c->advantage = g->adv[j];
        c->correct = g->correct ? g->correct[j] : -1;
    }
    ev_post(e);
}

static const lua_r1_observer observer = {gen_begin, token, gen_end, step, group};

const lua_r1_observer *wb_observer(void)
{
    return &observer;
}

void wb_observe_start(void)
{
    lua_r1_set_observer(&observer);
}

void wb_observe_stop(void)
{
    lua_r1_set_observer(NULL);
}
