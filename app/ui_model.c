/* ui_model.c — the screen model: applying worker events, the output log, the training history
 * (see ui.h).  No curses here: this file is what the panes read, and what the unit tests fill
 * with fixed snapshots.  Out of memory drops the update at hand and nothing else. */
#include <config.h>

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nb.h"
#include "ui.h"

void ui_model_init(ui_model *m)
{
    memset(m, 0, sizeof *m);
    m->verdict = -1;
    m->cursor = -1;
    m->focus = UI_REPL;
    m->last_pane = UI_ROUTING;
    m->zoom = -1;
    for (int i = 0; i < UI_NPANES; i++)
        m->scroll[i] = -1;
}

static void clear_matches(ui_model *m)
{
    for (int i = 0; i < m->nmatches; i++)
        free(m->matches[i]);
    free(m->matches);
    m->matches = NULL;
    m->nmatches = 0;
}

static void clear_generation(ui_model *m)
{
    free(m->prompt);
    m->prompt = NULL;
    free(m->tok);
    m->tok = NULL;
    m->ntok = m->captok = 0;
    free(m->route_e);
    free(m->route_w);
    m->route_e = NULL;
    m->route_w = NULL;
    m->nroute = m->caproute = 0;
    free(m->counts);
    m->counts = NULL;
    m->ncount_e = 0;
    m->routed_tokens = 0;
    m->n_moe = m->K = 0;
    m->cursor = -1;
    m->verdict = -1;
    m->gen_done = 0;
    m->seen_answer = 0;
    m->gen_active = 0;
    m->gen_rows = 0;
    m->scroll[UI_REASONING] = m->scroll[UI_ANSWER] = -1;
}

void ui_model_clear_run(ui_model *m)
{
    clear_generation(m);
    free(m->load);
    free(m->bias);
    m->load = m->bias = NULL;
    m->load_layers = m->load_experts = 0;
    for (int i = 0; i < H_NSERIES; i++) {
        free(m->hist[i].v);
        memset(&m->hist[i], 0, sizeof m->hist[i]);
    }
    m->have_step = 0;
    m->nstats = 0;
    ev_free(m->group);
    m->group = NULL;
    m->group_sel = 0;
    m->reader = 0;
    m->routing_view = 0;
    for (int i = 0; i < EV_NVIEWS; i++) {
        ev_free(m->view[i]);
        m->view[i] = NULL;
    }
    m->attn_on = m->compare_on = 0;
    m->tree_sel = 0;
}

void ui_model_clear_output(ui_model *m)
{
    for (int i = 0; i < m->nlines; i++)
        free(m->lines[(m->line0 + i) % UI_MAX_LINES].text);
    m->nlines = m->line0 = 0;
    free(m->partial);
    m->partial = NULL;
    m->scroll[UI_OUTPUT] = -1;
}

void ui_model_free(ui_model *m)
{
    ui_model_clear_run(m);
    ui_model_clear_output(m);
    free(m->lines);
    clear_matches(m);
    memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------------ output log */

static void add_line(ui_model *m, int role, const char *s, size_t n)
{
    if (!m->lines && !(m->lines = calloc(UI_MAX_LINES, sizeof *m->lines)))
        return;
    size_t tabs = 0;
    for (size_t i = 0; i < n; i++)
        tabs += s[i] == '\t';
    char *t = malloc(n + 3 * tabs + 1);
    if (!t)
        return;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) { /* tabs (tracebacks, print's separators) as 4 blanks */
        if (s[i] == '\t') {
            memcpy(t + j, "    ", 4);
            j += 4;
        } else {
            t[j++] = s[i];
        }
    }
    t[j] = '\0';
    int at;
    if (m->nlines == UI_MAX_LINES) { /* drop the oldest */
        at = m->line0;
        free(m->lines[at].text);
        m->line0 = (m->line0 + 1) % UI_MAX_LINES;
    } else {
        at = (m->line0 + m->nlines++) % UI_MAX_LINES;
    }
    m->lines[at].text = t;
    m->lines[at].role = (unsigned char)role;
    if (m->scroll[UI_OUTPUT] > 0) /* keep a scrolled-up view where it is */
        m->scroll[UI_OUTPUT]++;
}

void ui_model_print(ui_model *m, ui_out_role role, const char *text)
{
    if (!text || !*text)
        return;
    if (m->partial && m->partial_role != (int)role) { /* a role change ends the fragment */
        add_line(m, m->partial_role, m->partial, strlen(m->partial));
        free(m->partial);
        m->partial = NULL;
    }
    const char *p = text;
    for (;;) {
        const char *nl = strchr(p, '\n');
        if (!nl)
            break;
        if (m->partial) {
            size_t a = strlen(m->partial), b = (size_t)(nl - p);
            char *t = malloc(a + b + 1);
            if (t) {
                memcpy(t, m->partial, a);
                memcpy(t + a, p, b);
                add_line(m, role, t, a + b);
                free(t);
            }
            free(m->partial);
            m->partial = NULL;
        } else {
            add_line(m, role, p, (size_t)(nl - p));
        }
        p = nl + 1;
    }
    if (*p) {
        size_t a = m->partial ? strlen(m->partial) : 0, b = strlen(p);
        char *t = realloc(m->partial, a + b + 1);
        if (t) {
            memcpy(t + a, p, b + 1);
            m->partial = t;
            m->partial_role = role;
        }
    }
}

void ui_model_printf(ui_model *m, ui_out_role role, const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (n > (int)sizeof buf - 2)
        n = (int)sizeof buf - 2;
    buf[n] = '\n';
    buf[n + 1] = '\0';
    ui_model_print(m, role, buf);
}

const ui_line *ui_model_line(const ui_model *m, int i)
{
    if (i < 0 || i >= m->nlines)
        return NULL;
    return &m->lines[(m->line0 + i) % UI_MAX_LINES];
}

void ui_model_status(ui_model *m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->status, sizeof m->status, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------ generation */

const int32_t *ui_model_token_experts(const ui_model *m, int i)
{
    return (i >= 0 && i < m->ntok && m->route_e) ? m->route_e + m->tok[i].route : NULL;
}

const float *ui_model_token_weights(const ui_model *m, int i)
{
    return (i >= 0 && i < m->ntok && m->route_w) ? m->route_w + m->tok[i].route : NULL;
}

/* Makes counts cover expert ids < e (keeping what is counted). */
static int grow_counts(ui_model *m, int e)
{
    if (e <= m->ncount_e)
        return 0;
    int ne = m->ncount_e ? m->ncount_e : 8;
    while (ne < e)
        ne *= 2;
    int *c = calloc((size_t)m->n_moe * ne, sizeof *c);
    if (!c)
        return -1;
    for (int l = 0; l < m->n_moe && m->counts; l++)
        memcpy(c + (size_t)l * ne, m->counts + (size_t)l * m->ncount_e,
               sizeof *c * m->ncount_e);
    free(m->counts);
    m->counts = c;
    m->ncount_e = ne;
    return 0;
}

static void count_routing(ui_model *m, const ev *e)
{
    if (e->n_moe <= 0 || e->K <= 0)
        return;
    if (m->n_moe == 0) { /* the first token fixes the shape */
        m->n_moe = e->n_moe < EV_MAX_MOE ? e->n_moe : EV_MAX_MOE;
        m->K = e->K < EV_MAX_K ? e->K : EV_MAX_K;
        memcpy(m->moe_layers, e->moe_layers, sizeof(int) * m->n_moe);
    }
    if (e->n_moe != m->n_moe || e->K != m->K)
        return;
    int emax = 0;
    for (int i = 0; i < m->n_moe * m->K; i++)
        if (e->experts[i] + 1 > emax)
            emax = e->experts[i] + 1;
    if (emax > 4096 || grow_counts(m, emax) != 0)
        return;
    for (int l = 0; l < m->n_moe; l++)
        for (int k = 0; k < m->K; k++) {
            int x = e->experts[l * m->K + k];
            if (x >= 0)
                m->counts[(size_t)l * m->ncount_e + x]++;
        }
    m->routed_tokens++;
}

/* A microscope view replaces the last of its kind and shows itself. */
/* Whether a view has the shape its pane reads (events.h): anything else (a script's ui.view
 * with the wrong sizes) is dropped rather than read out of bounds. */
static int view_shape_ok(const ev *e)
{
    switch (e->view) {
    case EV_VIEW_LENS: return e->cols == 4;
    case EV_VIEW_ATTN: return e->rows == 1;
    case EV_VIEW_PATCH: return e->rows >= 1 && e->cols >= 1;
    case EV_VIEW_COMPARE: return e->rows == 1;
    case EV_VIEW_TREE: return e->cols == 5;
    case EV_VIEW_EXPERTS:
        return e->ints[0] >= 1 && e->ints[1] >= 1 && e->rows == e->ints[0] * e->ints[1] &&
               e->cols >= 1 && e->nlabels >= 2 * e->ints[0] + 2 * e->ints[1];
    }
    return 0;
}

static void apply_view(ui_model *m, const ev *e)
{
    if (e->view < 0 || e->view >= EV_NVIEWS || !view_shape_ok(e)) {
        ui_model_status(m, "a microscope view with the wrong shape was dropped");
        return;
    }
    ev *c = ev_copy_view(e);
    if (!c)
        return;
    ev_free(m->view[e->view]);
    m->view[e->view] = c;
    switch (e->view) {
    case EV_VIEW_LENS:
        m->routing_view = UI_RV_LENS;
        break;
    case EV_VIEW_PATCH:
        m->routing_view = UI_RV_PATCH;
        break;
    case EV_VIEW_COMPARE:
        m->routing_view = UI_RV_COMPARE;
        m->compare_on = 1;
        m->attn_on = 0;
        break;
    case EV_VIEW_ATTN:
        m->attn_on = 1;
        m->compare_on = 0;
        break;
    case EV_VIEW_EXPERTS:
        m->routing_view = UI_RV_EXPERTS;
        m->experts_class = 0;
        break;
    case EV_VIEW_TREE:
        m->tree_sel = 0;
        for (int r = 0; r < c->rows; r++)
            if ((int)c->vals[r * c->cols] == c->ints[0])
                m->tree_sel = r;
        if (c->ints[1] >= 1 && c->ints[1] <= m->ntok) /* the cursor on the branch point */
            m->cursor = c->ints[1] - 1;
        break;
    }
}

static void add_token(ui_model *m, const ev *e)
{
    count_routing(m, e);
    if (e->row != 0)
        return; /* the panes show row 0; every row counts for routing */
    if (m->ntok == m->captok) {
        int cap = m->captok ? m->captok * 2 : 256;
        ui_token *t = realloc(m->tok, sizeof *t * cap);
        if (!t)
            return;
        m->tok = t;
        m->captok = cap;
    }
    size_t need = (size_t)m->n_moe * m->K;
    if (e->n_moe == m->n_moe && e->K == m->K && m->nroute + need > m->caproute) {
        size_t cap = m->caproute ? m->caproute * 2 : 4096;
        while (cap < m->nroute + need)
            cap *= 2;
        int32_t *re = realloc(m->route_e, sizeof *re * cap);
        if (re)
            m->route_e = re;
        float *rw = realloc(m->route_w, sizeof *rw * cap);
        if (rw)
            m->route_w = rw;
        if (!re || !rw)
            return;
        m->caproute = cap;
    }
    ui_token *t = &m->tok[m->ntok++];
    memset(t, 0, sizeof *t);
    t->id = e->token;
    memcpy(t->text, e->tok_text, sizeof t->text);
    t->text[sizeof t->text - 1] = '\0';
    t->part = e->part;
    if (e->part == 2)
        m->seen_answer = 1;
    t->reasoning = e->part == 1 || (e->part == 3 && !m->seen_answer);
    t->row = e->row;
    t->logprob = e->logprob;
    t->route = m->nroute;
    t->n_top = e->n_top;
    memcpy(t->top_id, e->top_id, sizeof t->top_id);
    memcpy(t->top_p, e->top_p, sizeof t->top_p);
    memcpy(t->top_text, e->top_text, sizeof t->top_text);
    for (int j = 0; j < 5; j++)
        t->top_text[j][sizeof t->top_text[j] - 1] = '\0';
    t->entropy = e->n_top ? e->entropy : NAN;
    t->mtp_id = e->mtp_id;
    t->mtp_p = e->mtp_p;
    memcpy(t->mtp_text, e->mtp_text, sizeof t->mtp_text);
    t->mtp_text[sizeof t->mtp_text - 1] = '\0';
    if (need && e->n_moe == m->n_moe && e->K == m->K) {
        memcpy(m->route_e + m->nroute, e->experts, sizeof(int32_t) * need);
        memcpy(m->route_w + m->nroute, e->weights, sizeof(float) * need);
    } else if (need) { /* an odd token: no routing of its own */
        for (size_t i = 0; i < need && m->route_e; i++) {
            m->route_e[m->nroute + i] = -1;
            m->route_w[m->nroute + i] = 0;
        }
    }
    m->nroute += need;
}

/* ------------------------------------------------------------------ training */

static void push(ui_series *s, double v)
{
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 64;
        double *p = realloc(s->v, sizeof *p * cap);
        if (!p)
            return;
        s->v = p;
        s->cap = cap;
    }
    s->v[s->n++] = v;
}

double ui_model_stat(const ui_model *m, const char *name)
{
    for (int i = 0; i < m->nstats; i++)
        if (!strcmp(m->stats[i].name, name))
            return m->stats[i].value;
    return NAN;
}

/* The first of the names a statistic goes by that the step carries. */
static double stat_any(const ui_model *m, const char *const *names)
{
    for (; *names; names++) {
        double v = ui_model_stat(m, *names);
        if (!isnan(v))
            return v;
    }
    return NAN;
}

static void apply_step(ui_model *m, const ev *e)
{
    /* r1lab's names, then TRL's (the names of r1lab's metrics.jsonl) and others' */
    static const char *const reward[] = {"reward", "reward_mean", "mean_reward", "rewards", NULL};
    static const char *const acc[] = {"accuracy", "rewards/accuracy/mean", "acc",
                                      "reward_accuracy", NULL};
    static const char *const kl[] = {"kl", "KL", "kl_mean", NULL};
    static const char *const len[] = {"length", "len_mean", "completions/mean_length",
                                      "mean_length", "response_length", "len", NULL};
    static const char *const flip[] = {"route_flip_mean", NULL};
    static const char *const lpmis[] = {"logprob_mismatch", "sampling/sampling_logp_difference/mean",
                                        NULL};
    static const char *const *const names[H_NSERIES] = {reward, acc, kl, len, flip, lpmis};
    m->have_step = 1;
    snprintf(m->stage, sizeof m->stage, "%s", e->stage);
    m->step = e->step;
    m->total_steps = e->total_steps;
    m->nstats = e->nstats < EV_MAX_STATS ? e->nstats : EV_MAX_STATS;
    if (m->nstats > 0) /* a step with only expert load has no statistics array */
        memcpy(m->stats, e->stats, sizeof(ev_stat) * m->nstats);
    for (int h = 0; h < H_NSERIES; h++) {
        double v = stat_any(m, names[h]);
        if (!isnan(v))
            push(&m->hist[h], v);
    }
    if (e->load && e->load_layers > 0 && e->load_experts > 0) {
        size_t n = (size_t)e->load_layers * e->load_experts;
        float *l = malloc(sizeof *l * n), *b = e->bias ? malloc(sizeof *b * n) : NULL;
        if (!l || (e->bias && !b)) {
            free(l);
            free(b);
            return;
        }
        memcpy(l, e->load, sizeof *l * n);
        if (b)
            memcpy(b, e->bias, sizeof *b * n);
        free(m->load);
        free(m->bias);
        m->load = l;
        m->bias = b;
        m->load_layers = e->load_layers;
        m->load_experts = e->load_experts;
        m->routing_view = 1;
    }
}

/* A deep copy of a group event. */
static ev *copy_group(const ev *e)
{
    ev *c = ev_new(EV_GROUP);
    if (!c)
        return NULL;
    *c = *e;
    c->text = e->text ? strdup(e->text) : NULL;
    c->completions = e->n > 0 ? calloc((size_t)e->n, sizeof *c->completions) : NULL;
    if (e->n > 0 && !c->completions) {
        c->n = 0;
        ev_free(c);
        return NULL;
    }
    for (int i = 0; i < e->n; i++) {
        c->completions[i] = e->completions[i];
        c->completions[i].text = e->completions[i].text ? strdup(e->completions[i].text) : NULL;
    }
    return c;
}

void ui_model_apply(ui_model *m, const ev *e)
{
    switch (e->kind) {
    case EV_PRINT:
        ui_model_print(m, OUT_TEXT, e->text);
        break;
    case EV_GEN_BEGIN:
        clear_generation(m);
        m->prompt = e->text ? strdup(e->text) : NULL;
        m->gen_rows = e->n;
        m->gen_active = 1;
        m->routing_view = 0; /* show the new generation's routing */
        /* views of the old tokens go (a branch shown again brings its tree back); patching
         * and a comparison stay until replaced */
        for (int v = 0; v < EV_NVIEWS; v++) {
            if (v == EV_VIEW_PATCH || v == EV_VIEW_COMPARE || v == EV_VIEW_EXPERTS)
                continue;
            ev_free(m->view[v]);
            m->view[v] = NULL;
        }
        m->attn_on = 0;
        m->compare_on = 0;
        break;
    case EV_TOKEN:
        add_token(m, e);
        break;
    case EV_GEN_END:
        m->gen_active = 0;
        m->gen_done = 1;
        m->verdict = e->verdict;
        break;
    case EV_STEP:
        apply_step(m, e);
        break;
    case EV_GROUP: {
        ev *g = copy_group(e);
        if (g) {
            ev_free(m->group);
            m->group = g;
            m->group_step = m->step;
            if (m->group_sel >= g->n)
                m->group_sel = 0;
            m->reader = 0;
        }
        break;
    }
    case EV_JOB_DONE:
        m->gen_active = 0;
        break;
    case EV_VIEW:
        apply_view(m, e);
        break;
    }
}
