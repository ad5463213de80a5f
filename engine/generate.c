/* generate.c — r1_generate: batched decoding of several prompts with sampling, stop
 * conditions, streamed tokens with their routing, and MTP speculative decoding.
 *
 * Every row keeps a "pending" token: sampled (and recorded) but not yet fed to the model.  A
 * token's event fires once the model has processed it, because only then is its routing known;
 * a row that stops feeds its last token once more so that every token has routing.
 *
 * Speculative rounds (per row, P tokens cached, pending x_P, hidden h_{P-1}):
 *   1. the MTP module reads its queued (hidden, next token) pairs and drafts d for x_{P+1};
 *   2. the main model reads [x_P, d] in one step: logits for x_{P+1} and x_{P+2};
 *   3. d is accepted with probability min(1, p(d)/q(d)) (greedy: when it is p's argmax), and
 *      then x_{P+2} is drawn from the second logits; otherwise x_{P+1} is drawn from
 *      norm(max(0, p - q)) and the cache forgets d.  This keeps the main model's distribution
 *      exactly (Leviathan et al., Chen et al.), and greedy output equals plain greedy output.
 * Ownership: the result belongs to the caller; everything else is freed before returning. */
#include <config.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model_internal.h"
#include "r1_generate.h"
#include "sample.h"

/* Plain decoding with mtp_predict runs the MTP module over up to this many queued positions of
 * a row at once: one pass over its weights for several tokens (one at a time cost a fifth of
 * the decoding speed with bf16 weights).  The tokens' events wait for their predictions. */
#define MTP_CHUNK 8

r1_gen_cfg r1_gen_defaults(void)
{
    r1_gen_cfg c;
    memset(&c, 0, sizeof c);
    c.max_tokens = 128;
    c.top_p = 1;
    c.repetition_penalty = 1;
    return c;
}

typedef struct {
    int active;        /* still sampling */
    int unfed;         /* the pending token still has to be fed (for its routing) */
    int P;             /* tokens in the main cache */
    int32_t pending;   /* the last sampled token */
    int nq;            /* queued MTP pairs (hidden, token): 1 or 2 when speculating, up to
                        * MTP_CHUNK for mtp_predict */
    float *qh;         /* [MTP_CHUNK, C] */
    int32_t qt[MTP_CHUNK];
    int qi[MTP_CHUNK]; /* the queued tokens' indices among the row's generated tokens */
    int np;            /* prompt tokens */
    int fed_n;         /* tokens fed (their routing known) */
    int fired;         /* tokens whose event has fired */
    r1_rng rng;
    uint8_t *seen;     /* [V] tokens in the row so far */
    float *qdist;      /* [V] the MTP draft's sampling distribution */
    int32_t draft;     /* the MTP module's proposal for x_{P+1} */
} row_state;

void r1_gen_result_free(r1_gen_result *r)
{
    if (!r)
        return;
    for (int i = 0; r->row && i < r->rows; i++) {
        r1_gen_row *g = &r->row[i];
        free(g->tokens), free(g->logprobs), free(g->logprobs_model);
        free(g->experts), free(g->weights);
        free(g->top_ids), free(g->top_p), free(g->entropy), free(g->mtp_ids), free(g->mtp_p);
        free(g->prompt_experts);
    }
    free(r->row);
    free(r->moe_layers);
    free(r);
}

typedef struct {
    r1_model *m;
    const r1_gen_cfg *cfg;
    r1_decoder *d;
    r1_gen_result *res;
    row_state *st;
    const r1_observer *o;
    int V, C;
    float *p, *q;   /* [V] distributions */
    int *idx;       /* [V] */
    int canceled;
} gen;

/* Records a sampled token for row r, drawn from logits (its routing comes when it is fed). */
static void record(gen *g, int r, int32_t tok, float lp, const float *logits)
{
    r1_gen_row *o = &g->res->row[r];
    int n = g->res->top_n;
    o->tokens[o->n] = tok;
    o->logprobs[o->n] = lp;
    o->logprobs_model[o->n] = r1_log_softmax_at(logits, g->V, tok);
    if (n)
        r1_top_tokens(logits, g->V, n, o->top_ids + (size_t)o->n * n, o->top_p + (size_t)o->n * n,
                  o->entropy + o->n);
    if (o->mtp_ids)
        o->mtp_ids[o->n] = -1;
    o->n++;
    g->st[r].seen[tok] = 1;
}

/* Fires the event of row r's token `index` at position pos. */
static void fire(gen *g, int r, int index, int pos, int drafted)
{
    r1_gen_result *res = g->res;
    r1_gen_row *o = &res->row[r];
    int K = res->K;
    g->st[r].fired = index + 1;
    if (!g->o || !g->o->token || g->canceled)
        return;
    int n = res->top_n;
    r1_token_event ev = {r,
                         index,
                         pos,
                         o->tokens[index],
                         o->logprobs[index],
                         o->logprobs_model[index],
                         drafted > 0,
                         res->n_moe,
                         res->moe_layers,
                         K,
                         o->experts + (size_t)index * res->n_moe * K,
                         o->weights + (size_t)index * res->n_moe * K,
                         n,
                         n ? o->top_ids + (size_t)index * n : NULL,
                         n ? o->top_p + (size_t)index * n : NULL,
                         n ? o->entropy[index] : NAN,
                         o->mtp_ids ? o->mtp_ids[index] : -1,
                         o->mtp_ids ? o->mtp_p[index] : NAN};
    if (g->o->token(g->o->user, &ev))
        g->canceled = 1;
}

/* Whether tokens' events wait for their MTP predictions (plain decoding with mtp_predict). */
static int deferred(const gen *g)
{
    return g->cfg->mtp_predict && !g->cfg->speculative;
}

/* Fires row r's waiting events in order, each once its token is fed and (unless force) its
 * MTP prediction is known. */
static void drain(gen *g, int r, int force)
{
    row_state *st = &g->st[r];
    const r1_gen_row *o = &g->res->row[r];
    while (st->fired < st->fed_n && (force || o->mtp_ids[st->fired] >= 0))
        fire(g, r, st->fired, st->np + st->fired, 0);
}

/* Records the routing of row r's token `index`, which step token `slot` just fed at position
 * pos, and fires its event (or leaves it waiting for its MTP prediction). */
static void fed(gen *g, int r, int index, int pos, int slot, int drafted)
{
    r1_gen_result *res = g->res;
    r1_gen_row *o = &res->row[r];
    int K = res->K;
    for (int j = 0; j < res->n_moe; j++) {
        const int32_t *e;
        const float *w;
        r1_decoder_routing(g->d, res->moe_layers[j], slot, &e, &w);
        memcpy(o->experts + ((size_t)index * res->n_moe + j) * K, e, sizeof(int32_t) * K);
        memcpy(o->weights + ((size_t)index * res->n_moe + j) * K, w, sizeof(float) * K);
    }
    g->st[r].fed_n = index + 1;
    if (!deferred(g))
        fire(g, r, index, pos, drafted);
}

/* Whether row r must stop after its last recorded token. */
static int stops(gen *g, int r)
{
    const r1_gen_cfg *c = g->cfg;
    r1_gen_row *o = &g->res->row[r];
    int32_t t = o->tokens[o->n - 1];
    for (int i = 0; i < c->n_stop_ids; i++)
        if (c->stop_ids[i] == t) {
            o->finish = R1_FINISH_STOP;
            return 1;
        }
    for (int i = 0; i < c->n_stop_seqs; i++) {
        int L = c->stop_lens[i];
        if (L > 0 && L <= o->n &&
            memcmp(o->tokens + o->n - L, c->stop_seqs[i], sizeof(int32_t) * L) == 0) {
            o->finish = R1_FINISH_STOP;
            return 1;
        }
    }
    if (o->n >= c->max_tokens) {
        o->finish = R1_FINISH_LENGTH;
        return 1;
    }
    return 0;
}

/* Samples row r's next token from logits and makes it pending. */
static void sample_next(gen *g, int r, const float *logits)
{
    row_state *s = &g->st[r];
    r1__sampling_dist(g->cfg, logits, s->seen, g->p, g->idx, g->V);
    int t = g->cfg->temperature <= 0 ? r1__argmax(g->p, g->V) : r1__draw(g->p, g->V, &s->rng);
    record(g, r, t, logf(g->p[t]), logits);
    s->pending = t;
    s->unfed = 1;
    if (stops(g, r))
        s->active = 0;
}

static r1_status setup(gen *g, const int32_t *const *prompts, const int *lens, int R,
                       r1_error *err)
{
    r1_model *m = g->m;
    const r1_config *c = &m->cfg;
    const r1_gen_cfg *cfg = g->cfg;
    if (R < 1)
        return r1_error_set(err, R1_EINVAL, "generate: no prompts");
    if (cfg->max_tokens < 1)
        return r1_error_set(err, R1_EINVAL, "generate: max_tokens is %d; expected >= 1",
                            cfg->max_tokens);
    /* each check is written so that NaN fails it (every comparison with NaN is false) */
    static const char *const names[] = {"temperature", "top_p", "min_p", "repetition_penalty"};
    const float vals[] = {cfg->temperature, cfg->top_p, cfg->min_p, cfg->repetition_penalty};
    const float lo[] = {0, 0, 0, 1e-3f}, hi[] = {100, 1, 1, 1000};
    for (int i = 0; i < 4; i++)
        if (!(vals[i] >= lo[i] && vals[i] <= hi[i]))
            return r1_error_set(err, R1_EINVAL, "generate: %s is %g; expected a number in "
                                "%g..%g", names[i], (double)vals[i], (double)lo[i],
                                (double)hi[i]);
    if (cfg->top_k < 0 || cfg->top_k > c->vocab_size)
        return r1_error_set(err, R1_EINVAL, "generate: top_k is %d; expected 0 (off) to the "
                            "vocabulary size %d", cfg->top_k, c->vocab_size);
    if ((cfg->speculative || cfg->mtp_predict) && m->D < 1)
        return r1_error_set(err, R1_EUNSUPPORTED,
                            "generate: %s needs an MTP module; this checkpoint has none "
                            "(num_nextn_predict_layers is 0)",
                            cfg->speculative ? "speculative decoding" : "mtp_predict");
    if (cfg->top_n < 0 || cfg->top_n > R1_TOP_MAX)
        return r1_error_set(err, R1_EINVAL, "generate: top_n is %d; expected 0 (off) to %d",
                            cfg->top_n, R1_TOP_MAX);
    int maxlen = 0;
    for (int r = 0; r < R; r++) {
        if (lens[r] < 1)
            return r1_error_set(err, R1_EINVAL, "generate: prompt %d is empty", r);
        for (int t = 0; t < lens[r]; t++)
            if (prompts[r][t] < 0 || prompts[r][t] >= c->vocab_size)
                return r1_error_set(err, R1_EINVAL,
                                    "generate: token %d of prompt %d is %d; expected 0..%d", t,
                                    r, (int)prompts[r][t], c->vocab_size - 1);
        if (lens[r] + cfg->max_tokens > c->max_position_embeddings)
            return r1_error_set(err, R1_EINVAL,
                                "generate: prompt %d (%d tokens) + max_tokens %d exceeds "
                                "max_position_embeddings (%d)",
                                r, lens[r], cfg->max_tokens, c->max_position_embeddings);
        maxlen = lens[r] > maxlen ? lens[r] : maxlen;
    }
    if (cfg->bf16 && cfg->fp8)
        return r1_error_set(err, R1_EINVAL, "generate: choose bf16 or fp8 weights, not both");
    r1_status s = r1_decoder_new(&g->d, m, R, maxlen + cfg->max_tokens, err);
    if (s == R1_OK && cfg->bf16)
        s = r1_decoder_set_bf16(g->d, 1, err);
    if (s == R1_OK && cfg->fp8)
        s = r1_decoder_set_fp8(g->d, 1, err);
    if (s != R1_OK)
        return s;
    g->V = c->vocab_size;
    g->C = c->hidden_size;
    r1_gen_result *res = calloc(1, sizeof *res);
    g->res = res;
    if (res)
        res->weight_bytes = r1_decoder_weight_bytes(g->d, &res->weight_bytes_fp32);
    g->st = calloc(R, sizeof(row_state));
    g->p = malloc(sizeof(float) * g->V);
    g->q = malloc(sizeof(float) * g->V);
    g->idx = malloc(sizeof(int) * g->V);
    if (!res || !g->st || !g->p || !g->q || !g->idx)
        return r1_error_set(err, R1_ENOMEM, "out of memory");
    res->rows = R;
    res->K = c->num_experts_per_tok;
    res->top_n = cfg->top_n < c->vocab_size ? cfg->top_n : c->vocab_size;
    res->row = calloc(R, sizeof(r1_gen_row));
    res->moe_layers = calloc(m->L + 1, sizeof(int));
    if (!res->row || !res->moe_layers)
        return r1_error_set(err, R1_ENOMEM, "out of memory");
    for (int l = 0; l < m->L; l++)
        if (m->layers[l].moe)
            res->moe_layers[res->n_moe++] = l;
    size_t per = (size_t)cfg->max_tokens;
    size_t rk = (size_t)(res->n_moe ? res->n_moe : 1) * (res->K ? res->K : 1);
    for (int r = 0; r < R; r++) {
        r1_gen_row *o = &res->row[r];
        o->tokens = malloc(sizeof(int32_t) * per);
        o->logprobs = malloc(sizeof(float) * per);
        o->logprobs_model = malloc(sizeof(float) * per);
        o->experts = calloc(per * rk, sizeof(int32_t));
        o->weights = calloc(per * rk, sizeof(float));
        if (res->top_n) {
            o->top_ids = malloc(sizeof(int32_t) * per * res->top_n);
            o->top_p = malloc(sizeof(float) * per * res->top_n);
            o->entropy = malloc(sizeof(float) * per);
            if (!o->top_ids || !o->top_p || !o->entropy)
                return r1_error_set(err, R1_ENOMEM, "out of memory");
        }
        if (cfg->prompt_routing && !(o->prompt_experts = calloc((size_t)lens[r] * rk,
                                                                 sizeof(int32_t))))
            return r1_error_set(err, R1_ENOMEM, "out of memory");
        if (cfg->mtp_predict) {
            o->mtp_ids = malloc(sizeof(int32_t) * per);
            o->mtp_p = malloc(sizeof(float) * per);
            if (!o->mtp_ids || !o->mtp_p)
                return r1_error_set(err, R1_ENOMEM, "out of memory");
        }
        row_state *st = &g->st[r];
        st->qh = malloc(sizeof(float) * MTP_CHUNK * g->C);
        st->np = lens[r];
        st->seen = calloc(g->V, 1);
        st->qdist = malloc(sizeof(float) * g->V);
        if (!st->qdist || !o->tokens || !o->logprobs || !o->logprobs_model || !o->experts ||
            !o->weights || !st->qh || !st->seen)
            return r1_error_set(err, R1_ENOMEM, "out of memory");
        /* row r's stream: the seed mixed with the row, so rows differ and runs repeat */
        r1_rng_seed(&st->rng, cfg->seed * 0x9e3779b97f4a7c15ull + (uint64_t)(cfg->row0 + r) + 1);
        for (int t = 0; t < lens[r]; t++)
            st->seen[prompts[r][t]] = 1;
        st->active = 1;
    }
    return R1_OK;
}

/* Prefills every prompt (identical prompts once) and samples each row's first token.  A row
 * whose prompt an earlier row already had copies that row's cache, and its last logits and
 * hidden state (kept per row: the scratch holds only the latest prefill's, which is another
 * prompt's when the two are not neighbours). */
static r1_status prefill(gen *g, const int32_t *const *prompts, const int *lens, int R,
                         r1_error *err)
{
    int V = g->V, C = g->C, maxlen = 0;
    for (int r = 0; r < R; r++)
        maxlen = lens[r] > maxlen ? lens[r] : maxlen;
    float *lg = malloc(sizeof(float) * (size_t)maxlen * V);
    float *hid = malloc(sizeof(float) * (size_t)maxlen * C);
    float *last_lg = malloc(sizeof(float) * (size_t)R * V);
    float *last_hid = malloc(sizeof(float) * (size_t)R * C);
    if (!lg || !hid || !last_lg || !last_hid) {
        free(lg), free(hid), free(last_lg), free(last_hid);
        return r1_error_set(err, R1_ENOMEM, "out of memory");
    }
    r1_status s = R1_OK;
    for (int r = 0; r < R && s == R1_OK; r++) {
        int src = -1;
        for (int q = 0; q < r && src < 0; q++)
            if (lens[q] == lens[r] && !memcmp(prompts[q], prompts[r], sizeof(int32_t) * lens[r]))
                src = q;
        r1_gen_row *o = &g->res->row[r];
        size_t rk = (size_t)g->res->n_moe * g->res->K;
        if (src >= 0) { /* a GRPO group: the same prompt G times */
            r1_decoder_copy_row(g->d, r, src);
            if (o->prompt_experts)
                memcpy(o->prompt_experts, g->res->row[src].prompt_experts,
                       sizeof(int32_t) * lens[r] * rk);
            memcpy(last_lg + (size_t)r * V, last_lg + (size_t)src * V, sizeof(float) * V);
            memcpy(last_hid + (size_t)r * C, last_hid + (size_t)src * C, sizeof(float) * C);
        } else {
            int n = lens[r];
            s = r1_decoder_step(g->d, &r, 1, prompts[r], n, lg, err);
            for (int i = 0; s == R1_OK && o->prompt_experts && i < n; i++)
                for (int j = 0; j < g->res->n_moe; j++) {
                    const int32_t *e;
                    const float *w;
                    r1_decoder_routing(g->d, g->res->moe_layers[j], i, &e, &w);
                    memcpy(o->prompt_experts + ((size_t)i * g->res->n_moe + j) * g->res->K, e,
                           sizeof(int32_t) * g->res->K);
                }
            if (s == R1_OK && (g->cfg->speculative || g->cfg->mtp_predict)) {
                memcpy(hid, r1_decoder_hidden(g->d), sizeof(float) * (size_t)n * C);
                if (n > 1) /* MTP positions 0..n-2 read (h_j, t[j+1]) */
                    s = r1_decoder_mtp_step(g->d, &r, 1, hid, prompts[r] + 1, n - 1, NULL, err);
            }
            if (s == R1_OK) {
                memcpy(last_lg + (size_t)r * V, lg + (size_t)(n - 1) * V, sizeof(float) * V);
                memcpy(last_hid + (size_t)r * C, hid + (size_t)(n - 1) * C, sizeof(float) * C);
            }
        }
        if (s != R1_OK)
            break;
        row_state *st = &g->st[r];
        st->P = lens[r];
        sample_next(g, r, last_lg + (size_t)r * V);
        memcpy(st->qh, last_hid + (size_t)r * C, sizeof(float) * C);
        st->qt[0] = st->pending;
        st->qi[0] = 0;
        st->nq = 1;
    }
    free(lg);
    free(hid);
    free(last_lg);
    free(last_hid);
    g->res->steps += 1;
    return s;
}

/* Notes the MTP module's prediction (argmax of logits lq[V]) for row r's token `index`. */
static void mtp_note(gen *g, int r, int index, const float *lq)
{
    r1_gen_row *o = &g->res->row[r];
    if (!o->mtp_ids || index < 0 || index >= o->n)
        return;
    int t = r1__argmax(lq, g->V);
    o->mtp_ids[index] = t;
    o->mtp_p[index] = expf(r1_log_softmax_at(lq, g->V, t));
}

/* Runs the MTP module over the queued (hidden, token) pairs of the listed rows (rows with one
 * pair, then rows with two, ...), notes its predictions, and with `draft` samples each row's
 * draft for the token after its last pair.  ml is [MTP_CHUNK * R, V] scratch. */
static r1_status mtp_flush(gen *g, const int *rows, int R, int draft, float *ml, r1_error *err)
{
    int V = g->V, C = g->C;
    for (int nq = 1; nq <= MTP_CHUNK; nq++) {
        int sub[R], n = 0;
        for (int i = 0; i < R; i++)
            if (g->st[rows[i]].nq == nq)
                sub[n++] = rows[i];
        if (!n)
            continue;
        float *h = malloc(sizeof(float) * (size_t)n * nq * C);
        int32_t *t = malloc(sizeof(int32_t) * (size_t)n * nq);
        if (!h || !t) {
            free(h), free(t);
            return r1_error_set(err, R1_ENOMEM, "out of memory");
        }
        for (int i = 0; i < n; i++) {
            memcpy(h + (size_t)i * nq * C, g->st[sub[i]].qh, sizeof(float) * nq * C);
            memcpy(t + (size_t)i * nq, g->st[sub[i]].qt, sizeof(int32_t) * nq);
        }
        r1_status s = r1_decoder_mtp_step(g->d, sub, n, h, t, nq, ml, err);
        free(h), free(t);
        if (s != R1_OK)
            return s;
        for (int i = 0; i < n; i++) {
            row_state *st = &g->st[sub[i]];
            for (int j = 0; j < nq; j++)
                mtp_note(g, sub[i], st->qi[j], ml + ((size_t)i * nq + j) * V);
            st->nq = 0;
            if (!draft)
                continue;
            const float *lq = ml + ((size_t)i * nq + nq - 1) * V;
            r1__sampling_dist(g->cfg, lq, st->seen, st->qdist, g->idx, V);
            st->draft = g->cfg->temperature <= 0 ? r1__argmax(st->qdist, V)
                                                 : r1__draw(st->qdist, V, &st->rng);
        }
    }
    return R1_OK;
}

/* Feeds the pending token of the listed rows (plain decoding, or a final flush). */
static r1_status plain_round(gen *g, const int *rows, int R, int sample, float *lg,
                             float *ml, r1_error *err)
{
    int32_t tok[R];
    memset(tok, 0, sizeof tok); /* (R >= 1; keeps -Wmaybe-uninitialized quiet) */
    for (int i = 0; i < R; i++)
        tok[i] = g->st[rows[i]].pending;
    r1_status s = r1_decoder_step(g->d, rows, R, tok, 1, lg, err);
    if (s != R1_OK)
        return s;
    g->res->steps++;
    for (int i = 0; i < R; i++) {
        int r = rows[i];
        row_state *st = &g->st[r];
        st->unfed = 0;
        fed(g, r, g->res->row[r].n - 1, st->P, i, 0);
        st->P++;
        if (sample && st->active) {
            sample_next(g, r, lg + (size_t)i * g->V);
            if (deferred(g)) { /* queue (h_P, x_{P+1}) for the MTP module */
                memcpy(st->qh + (size_t)st->nq * g->C,
                       r1_decoder_hidden(g->d) + (size_t)i * g->C, sizeof(float) * g->C);
                st->qt[st->nq] = st->pending;
                st->qi[st->nq] = g->res->row[r].n - 1;
                st->nq++;
            }
        }
    }
    if (!deferred(g))
        return R1_OK;
    /* full queues, and rows that stopped with every token fed, go through the MTP module;
     * then the events that have their predictions fire */
    int full[R], nf = 0;
    for (int i = 0; i < R; i++) {
        row_state *st = &g->st[rows[i]];
        if (st->nq && (st->nq == MTP_CHUNK || (!st->active && !st->unfed)))
            full[nf++] = rows[i];
    }
    if (nf && (s = mtp_flush(g, full, nf, 0, ml, err)) != R1_OK)
        return s;
    for (int i = 0; i < R; i++)
        drain(g, rows[i], 0);
    return R1_OK;
}

/* One speculative round over the listed (active) rows. */
static r1_status spec_round(gen *g, const int *rows, int R, float *lg, float *ml,
                            r1_error *err)
{
    int V = g->V, C = g->C;
    /* 1. MTP drafts */
    r1_status s = mtp_flush(g, rows, R, 1, ml, err);
    if (s != R1_OK)
        return s;
    /* 2. the main model reads [pending, draft] */
    int32_t tok[2 * R];
    for (int i = 0; i < R; i++) {
        tok[2 * i] = g->st[rows[i]].pending;
        tok[2 * i + 1] = g->st[rows[i]].draft;
    }
    s = r1_decoder_step(g->d, rows, R, tok, 2, lg, err);
    if (s != R1_OK)
        return s;
    g->res->steps++;
    for (int i = 0; i < R; i++) {
        int r = rows[i];
        row_state *st = &g->st[r];
        const float *l0 = lg + (size_t)2 * i * V, *l1 = l0 + V;
        const float *h0 = r1_decoder_hidden(g->d) + (size_t)2 * i * C, *h1 = h0 + C;
        st->unfed = 0;
        fed(g, r, g->res->row[r].n - 1, st->P, 2 * i, 0);
        /* 3. accept the draft d with probability min(1, p(d)/q(d)) */
        int d = st->draft;
        r1__sampling_dist(g->cfg, l0, st->seen, g->p, g->idx, V);
        int accept;
        if (g->cfg->temperature <= 0)
            accept = r1__argmax(g->p, V) == d;
        else
            accept = st->qdist[d] > 0 &&
                     r1_rng_uniform(&st->rng) * st->qdist[d] < g->p[d];
        g->res->drafted++;
        if (accept) {
            g->res->accepted++;
            record(g, r, d, logf(g->p[d]), l0);
            fed(g, r, g->res->row[r].n - 1, st->P + 1, 2 * i + 1, 1);
            st->P += 2;
            memcpy(st->qh, h0, sizeof(float) * C);
            st->qt[0] = d;
            st->qi[0] = g->res->row[r].n - 1;
            st->nq = 1;
            if (stops(g, r)) { /* d was fed: nothing left to feed */
                st->active = 0;
                continue;
            }
            sample_next(g, r, l1);
            memcpy(st->qh + C, h1, sizeof(float) * C);
            st->qt[1] = st->pending;
            st->qi[1] = g->res->row[r].n - 1;
            st->nq = 2;
        } else {
            /* forget d; draw x_{P+1} from the residual norm(max(0, p - q)) */
            r1_decoder_truncate(g->d, r, st->P + 1, -1);
            st->P += 1;
            int t;
            if (g->cfg->temperature <= 0) {
                t = r1__argmax(g->p, V);
            } else {
                double tot = 0;
                for (int v = 0; v < V; v++) {
                    float rv = g->p[v] - st->qdist[v];
                    g->q[v] = rv > 0 ? rv : 0;
                    tot += g->q[v];
                }
                if (tot <= 0) /* p == q: the residual is empty; p itself is exact */
                    memcpy(g->q, g->p, sizeof(float) * V);
                else
                    for (int v = 0; v < V; v++)
                        g->q[v] = (float)(g->q[v] / tot);
                t = r1__draw(g->q, V, &st->rng);
            }
            record(g, r, t, logf(g->p[t]), l0);
            st->pending = t;
            st->unfed = 1;
            if (stops(g, r))
                st->active = 0;
            memcpy(st->qh, h0, sizeof(float) * C);
            st->qt[0] = t;
            st->qi[0] = g->res->row[r].n - 1;
            st->nq = 1;
        }
    }
    return R1_OK;
}


r1_status r1_generate(r1_model *m, const int32_t *const *prompts, const int *lens, int R,
                      const r1_gen_cfg *cfg, const r1_observer *o, r1_gen_result **out,
                      r1_error *err)
{
    *out = NULL;
    r1_gen_cfg defaults = r1_gen_defaults();
    gen g = {m, cfg ? cfg : &defaults, NULL, NULL, NULL, o, 0, 0, NULL, NULL, NULL, 0};
    double t0 = r1_now();
    float *lg = NULL, *ml = NULL;
    int *rows = NULL;
    r1_status s = setup(&g, prompts, lens, R, err);
    if (s == R1_OK) {
        lg = malloc(sizeof(float) * (size_t)2 * R * g.V);
        ml = malloc(sizeof(float) * (size_t)MTP_CHUNK * R * g.V);
        rows = malloc(sizeof(int) * R);
        if (!lg || !ml || !rows)
            s = r1_error_set(err, R1_ENOMEM, "out of memory");
    }
    if (s == R1_OK)
        s = prefill(&g, prompts, lens, R, err);
    while (s == R1_OK) {
        if (r1_interrupted())
            g.canceled = 1;
        int n = 0;
        for (int r = 0; r < R; r++)
            if (g.st[r].active)
                rows[n++] = r;
        if (!n || g.canceled)
            break;
        s = g.cfg->speculative ? spec_round(&g, rows, n, lg, ml, err)
                               : plain_round(&g, rows, n, 1, lg, ml, err);
        /* rows that just stopped with an unfed token: feed it for its routing */
        int f = 0;
        for (int r = 0; r < R; r++)
            if (!g.st[r].active && g.st[r].unfed)
                rows[f++] = r;
        if (s == R1_OK && f)
            s = plain_round(&g, rows, f, 0, lg, ml, err);
    }
    if (s == R1_OK && g.cfg->mtp_predict && !g.canceled) { /* the last tokens' predictions */
        int f = 0;
        for (int r = 0; r < R; r++)
            if (g.st[r].nq)
                rows[f++] = r;
        if (f)
            s = mtp_flush(&g, rows, f, 0, ml, err);
    }
    if (deferred(&g) && s == R1_OK) /* the events left fire, in order */
        for (int r = 0; r < R; r++)
            drain(&g, r, 1);
    if (s == R1_OK && g.canceled) {
        for (int r = 0; r < R; r++)
            if (g.st[r].active) {
                g.res->row[r].finish = R1_FINISH_CANCEL;
                g.st[r].active = 0;
            }
        s = r1_error_set(err, R1_ECANCELED, "generation canceled");
    }
    if (g.res)
        g.res->seconds = r1_now() - t0;
    for (int r = 0; g.st && r < R; r++) {
        free(g.st[r].qh);
        free(g.st[r].seen);
        free(g.st[r].qdist);
    }
    free(g.st), free(g.p), free(g.q), free(g.idx), free(lg), free(ml), free(rows);
    r1_decoder_free(g.d);
    if (s == R1_OK || s == R1_ECANCELED) {
        *out = g.res;
        return s;
    }
    r1_gen_result_free(g.res);
    return s;
}
