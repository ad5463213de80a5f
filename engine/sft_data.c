/* sft_data.c — the documents of pretraining and cold-start SFT: the stream (a pure function of
 * seed, stage and position), the packer (whole documents, first fit, pads with weight 0) and the
 * held-out set with the exclusion of its problems from training.  See r1_sft.h for the why.
 *
 * Ownership: r1_sft_data owns its tables and scratch buffers and borrows the tokenizer.
 * Errors: R1_EINVAL when no document fits a row or a text does not encode; R1_ENOMEM. */
#include <config.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "r1_rng.h"
#include "r1_sft.h"

/* Redraws of a document whose problem is held out before keeping it anyway (tiny spaces). */
#define MAX_REDRAWS 8
/* Documents in a row longer than seq_len before the packer gives up. */
#define MAX_SKIPS 10000
/* Documents in a row that found no room in any row: the batch is full. */
#define MAX_MISSES 8

typedef struct {
    const r1_task *task;
    int difficulty;
    int in_training;
} cell;

struct r1_sft_data {
    r1_sft_settings s;
    const r1_tokenizer *tok; /* borrowed */
    double wsum;             /* sum of the mixture weights */
    int ncells;
    cell cells[R1_SFT_MAX_CELLS];
    uint64_t *keys; /* open-addressing set of held-out problem keys (0: empty) */
    size_t nkeys;   /* capacity, a power of two */
    long redraws, hits;
    /* the last document made, because the packer asks twice for the one that did not fit */
    int64_t cache_pos;
    int cache_n;
    r1_sft_doc cache_info;
    int32_t cache_ids[R1_SFT_DOC_MAX];
    float cache_w[R1_SFT_DOC_MAX];
    /* scratch */
    r1_task_sample a, b;
    char reasoning[2 * R1_TASK_REASONING_MAX];
    char text[R1_SFT_DOC_MAX + R1_TASK_REASONING_MAX];
};

static uint64_t splitmix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* FNV-1a over the task name, a separator and the English prompt; never 0 (the empty slot). */
static uint64_t problem_key(const r1_task *t, const char *en_prompt)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *p = r1_task_name(t); *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    h = (h ^ 0xff) * 0x100000001b3ull;
    for (const char *p = en_prompt; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    return h ? h : 1;
}

static void key_insert(r1_sft_data *d, uint64_t k)
{
    size_t i = (size_t)splitmix(k) & (d->nkeys - 1);
    while (d->keys[i] && d->keys[i] != k)
        i = (i + 1) & (d->nkeys - 1);
    d->keys[i] = k;
}

int r1_sft_data_is_heldout(const r1_sft_data *d, const r1_task *task, const char *en_prompt)
{
    uint64_t k = problem_key(task, en_prompt);
    size_t i = (size_t)splitmix(k) & (d->nkeys - 1);
    while (d->keys[i]) {
        if (d->keys[i] == k)
            return 1;
        i = (i + 1) & (d->nkeys - 1);
    }
    return 0;
}

/* The held-out seeds: top bit set, training seeds have it clear (r1_sft.h). */
static uint64_t heldout_seed(int difficulty, int j)
{
    return (1ull << 63) | ((uint64_t)difficulty << 32) | (uint64_t)j;
}

r1_status r1_sft_data_heldout(const r1_sft_data *d, int i, int j, r1_task_sample *out,
                              r1_error *err)
{
    if (i < 0 || i >= d->ncells || j < 0 || j >= R1_SFT_HELDOUT)
        return r1_error_set(err, R1_EINVAL, "held-out sample (%d, %d): expected cell 0..%d and "
                            "index 0..%d", i, j, d->ncells - 1, R1_SFT_HELDOUT - 1);
    const cell *c = &d->cells[i];
    return r1_task_generate_phrased(c->task, heldout_seed(c->difficulty, j), c->difficulty,
                                    R1_LANG_AUTO, (r1_phrasing)d->s.eval_phrasing, out, err);
}

int r1_sft_data_ncells(const r1_sft_data *d)
{
    return d->ncells;
}

void r1_sft_data_cell(const r1_sft_data *d, int i, const r1_task **task, int *difficulty,
                      int *in_training)
{
    const cell *c = &d->cells[i];
    if (task)
        *task = c->task;
    if (difficulty)
        *difficulty = c->difficulty;
    if (in_training)
        *in_training = c->in_training;
}

long r1_sft_data_heldout_redraws(const r1_sft_data *d)
{
    return d->redraws;
}

long r1_sft_data_heldout_hits(const r1_sft_data *d)
{
    return d->hits;
}

void r1_sft_data_free(r1_sft_data *d)
{
    if (!d)
        return;
    free(d->keys);
    free(d);
}

r1_status r1_sft_data_new(r1_sft_data **out, const r1_sft_settings *s, const r1_tokenizer *tok,
                          r1_error *err)
{
    *out = NULL;
    r1_status st = r1_sft_validate(s, NULL, err);
    if (st != R1_OK)
        return st;
    r1_sft_data *d = calloc(1, sizeof *d);
    if (!d)
        return r1_error_set(err, R1_ENOMEM, "out of memory");
    d->s = *s;
    d->tok = tok;
    d->cache_pos = -1;
    for (int i = 0; i < s->ntasks; i++) {
        const r1_sft_task *t = &s->tasks[i];
        d->wsum += t->weight;
        int top = t->dmax + s->eval_above, max = r1_task_max_difficulty(t->task);
        for (int k = t->dmin; k <= (top < max ? top : max); k++) {
            int j = 0; /* a task listed twice for different difficulties shares its cells */
            while (j < d->ncells && (d->cells[j].task != t->task || d->cells[j].difficulty != k))
                j++;
            if (j == d->ncells)
                d->cells[d->ncells++] = (cell){t->task, k, k <= t->dmax};
            else
                d->cells[j].in_training |= k <= t->dmax;
        }
    }
    d->nkeys = 1;
    while (d->nkeys < (size_t)d->ncells * R1_SFT_HELDOUT * 2)
        d->nkeys <<= 1;
    d->keys = calloc(d->nkeys, sizeof *d->keys);
    if (!d->keys) {
        r1_sft_data_free(d);
        return r1_error_set(err, R1_ENOMEM, "out of memory");
    }
    /* every held-out problem that any evaluation of these settings may pose (R1_SFT_HELDOUT per
     * cell, not just eval_n, so that raising eval_n later does not meet trained problems) */
    for (int i = 0; i < d->ncells; i++)
        for (int j = 0; j < R1_SFT_HELDOUT; j++) {
            const cell *c = &d->cells[i];
            st = r1_task_generate(c->task, heldout_seed(c->difficulty, j), c->difficulty,
                                  R1_LANG_EN, &d->a, err);
            if (st != R1_OK) {
                r1_sft_data_free(d);
                return st;
            }
            key_insert(d, problem_key(c->task, d->a.prompt));
        }
    *out = d;
    return R1_OK;
}

/* ------------------------------------------------------------------ one document */

/* Line i of text (lines separated by '\n'): start and length, or 0 when there is none. */
static int line_at(const char *text, int i, const char **start, size_t *len)
{
    const char *p = text;
    for (int k = 0; k < i; k++) {
        p = strchr(p, '\n');
        if (!p)
            return 0;
        p++;
    }
    const char *e = strchr(p, '\n');
    *start = p;
    *len = e ? (size_t)(e - p) : strlen(p);
    return 1;
}

/* The reasoning of d->a with each line taken from d->a or d->b (the other language) at random;
 * both have the same lines (t_sft checks the tasks).  Falls back to d->a's text when the lines
 * do not pair up or the result would not fit a sample. */
static const char *mixed_reasoning(r1_sft_data *d, r1_rng *r)
{
    size_t k = 0;
    for (int i = 0;; i++) {
        const char *pa, *pb;
        size_t la, lb;
        int ha = line_at(d->a.reasoning, i, &pa, &la), hb = line_at(d->b.reasoning, i, &pb, &lb);
        if (ha != hb)
            return d->a.reasoning;
        if (!ha)
            break;
        int other = r1_rng_below(r, 2);
        const char *p = other ? pb : pa;
        size_t l = other ? lb : la;
        if (k + l + 2 >= R1_TASK_REASONING_MAX)
            return d->a.reasoning;
        if (i)
            d->reasoning[k++] = '\n';
        memcpy(d->reasoning + k, p, l);
        k += l;
    }
    d->reasoning[k] = 0;
    return d->reasoning;
}

/* How people type the tasks' questions: a share of the documents of both stages pose the
 * question with spaces around its operators ("457 + 389"), and an English one may leave out
 * the language request (English is what the model answers in when nobody asks). */
#define VARIANT_FRAC 0.3

static void prompt_variant(char *dst, size_t cap, const char *src, r1_lang lang, r1_rng *r)
{
    int spaced = r1_rng_below(r, 2), bare = r1_rng_below(r, 2) && lang == R1_LANG_EN;
    size_t k = 0, n = strlen(src);
    const char *req = " Think in English.";
    size_t rl = strlen(req);
    if (bare && n >= rl && strcmp(src + n - rl, req) == 0)
        n -= rl;
    for (size_t i = 0; i < n && k + 4 < cap; i++) {
        char c = src[i];
        int op = spaced && i > 0 && i + 1 < n && strchr("+-*", c) && isdigit((unsigned char)src[i - 1]) &&
                 isdigit((unsigned char)src[i + 1]);
        if (op)
            dst[k++] = ' ';
        dst[k++] = c;
        if (op)
            dst[k++] = ' ';
    }
    dst[k] = 0;
}

static r1_status make_doc(r1_sft_data *d, int64_t pos, int32_t *ids, float *w, r1_sft_doc *info,
                          r1_error *err)
{
    const r1_sft_settings *s = &d->s;
    int64_t k = s->stage == R1_SFT_COLDSTART && s->sft_docs > 0 ? pos % s->sft_docs : pos;
    r1_rng r;
    r1_rng_seed(&r, splitmix(splitmix(s->seed) ^ ((uint64_t)s->stage << 56) ^ (uint64_t)k));
    const r1_sft_task *e = NULL;
    int diff = 0, plain = 0, mixed = 0, variant = 0;
    r1_lang lang = R1_LANG_EN;
    uint64_t tseed = 0;
    r1_status st;
    for (int attempt = 0;; attempt++) {
        double u = r1_rng_uniform(&r) * d->wsum;
        e = &s->tasks[s->ntasks - 1];
        for (int i = 0; i < s->ntasks; i++) {
            if (u < s->tasks[i].weight) {
                e = &s->tasks[i];
                break;
            }
            u -= s->tasks[i].weight;
        }
        diff = e->dmin + (int)r1_rng_below(&r, (uint32_t)(e->dmax - e->dmin + 1));
        tseed = r1_rng_u64(&r) >> 1; /* top bit clear: never a held-out seed */
        lang = r1_rng_below(&r, 2) ? R1_LANG_ES : R1_LANG_EN;
        /* drawn in both stages so that the draws line up; used by pretraining only */
        plain = r1_rng_uniform(&r) < s->plain_frac && s->stage == R1_SFT_PRETRAIN;
        mixed = r1_rng_uniform(&r) < s->mix_frac && s->stage == R1_SFT_PRETRAIN;
        variant = r1_rng_uniform(&r) < VARIANT_FRAC;
        if ((st = r1_task_generate(e->task, tseed, diff, lang, &d->a, err)) != R1_OK)
            return st;
        r1_lang other = lang == R1_LANG_EN ? R1_LANG_ES : R1_LANG_EN;
        if ((st = r1_task_generate(e->task, tseed, diff, other, &d->b, err)) != R1_OK)
            return st;
        const char *en = lang == R1_LANG_EN ? d->a.prompt : d->b.prompt;
        if (!r1_sft_data_is_heldout(d, e->task, en))
            break;
        if (attempt + 1 == MAX_REDRAWS) {
            d->hits++; /* a problem space too small to avoid the held-out problems */
            break;
        }
        d->redraws++;
    }
    /* from the problem's seed (the document's other draws stay what they were); the problem,
     * checked against the held-out set above, is the same in either phrasing */
    if (r1_phrasing_for(tseed, s->typed_frac) == R1_PHRASING_TYPED &&
        (st = r1_task_generate_phrased(e->task, tseed, diff, lang, R1_PHRASING_TYPED, &d->a,
                                       err)) != R1_OK)
        return st;
    const char *reasoning = mixed ? mixed_reasoning(d, &r) : d->a.reasoning;
    if (variant) {
        char q[R1_TASK_PROMPT_MAX];
        prompt_variant(q, sizeof q, d->a.prompt, lang, &r);
        memcpy(d->a.prompt, q, sizeof q);
    }
    int n = 0, as = 0;
    if (plain) {
        snprintf(d->text, sizeof d->text, "%s%s\n%s\n%s %s%s", R1_TEXT_BOS, d->a.prompt, reasoning,
                 lang == R1_LANG_ES ? "Respuesta:" : "Answer:", d->a.answer, R1_TEXT_EOS);
        st = r1_tokenizer_encode(d->tok, d->text, ids, R1_SFT_DOC_MAX, &n, err);
    } else {
        st = r1_tokenizer_encode_chat(d->tok, d->a.prompt, reasoning, d->a.answer, ids,
                                      R1_SFT_DOC_MAX, &n, &as, err);
    }
    if (st != R1_OK) {
        r1_error_prefix(err, "document %lld (%s, difficulty %d)", (long long)pos,
                        r1_task_name(e->task), diff);
        return st;
    }
    for (int i = 0; i < n; i++)
        w[i] = i == 0 ? 0.0f : s->stage == R1_SFT_PRETRAIN ? 1.0f : i >= as ? 1.0f : 0.0f;
    if (info) {
        info->task = e->task;
        info->difficulty = diff;
        info->lang = lang;
        info->task_seed = tseed;
        info->plain = plain;
        info->mixed = mixed;
        info->typed = d->a.typed;
        info->n = n;
        info->assistant_start = plain ? 0 : as;
        snprintf(info->prompt, sizeof info->prompt, "%s", d->a.prompt);
    }
    return R1_OK;
}

r1_status r1_sft_data_doc(r1_sft_data *d, int64_t pos, int32_t *ids, float *w, r1_sft_doc *info,
                          r1_error *err)
{
    if (pos < 0)
        return r1_error_set(err, R1_EINVAL, "document %lld: positions start at 0",
                            (long long)pos);
    if (pos != d->cache_pos) {
        d->cache_pos = -1;
        r1_status st = make_doc(d, pos, d->cache_ids, d->cache_w, &d->cache_info, err);
        if (st != R1_OK)
            return st;
        d->cache_pos = pos;
        d->cache_n = d->cache_info.n;
    }
    if (ids)
        memcpy(ids, d->cache_ids, sizeof(int32_t) * d->cache_n);
    if (w)
        memcpy(w, d->cache_w, sizeof(float) * d->cache_n);
    if (info)
        *info = d->cache_info;
    return R1_OK;
}

/* ------------------------------------------------------------------ packing */

r1_status r1_sft_data_batch(r1_sft_data *d, int64_t *pos, int32_t *tokens, float *weights,
                            long *ntok, long *dropped, r1_error *err)
{
    int B = d->s.batch, T = d->s.seq_len;
    int pad = r1_tokenizer_special_id(d->tok, R1_TOK_PAD);
    int fill[R1_SFT_MAX_BATCH];
    long nt = 0, dr = 0, run = 0;
    memset(fill, 0, sizeof(int) * B);
    /* first fit: each document goes into the first row with room; the batch is complete after
     * MAX_MISSES documents in a row found no room (rows only fill up, so a document dropped
     * for lack of room would not fit at the end either) */
    for (int misses = 0; misses < MAX_MISSES;) {
        r1_status st = r1_sft_data_doc(d, *pos, NULL, NULL, NULL, err);
        if (st != R1_OK)
            return st;
        int n = d->cache_n;
        (*pos)++;
        if (n > T) { /* never cut a document: pass over it */
            dr++;
            if (++run > MAX_SKIPS)
                return r1_error_set(err, R1_EINVAL,
                                    "seq_len %d: %d documents in a row are longer; raise "
                                    "seq_len or lower the difficulties",
                                    T, MAX_SKIPS);
            continue;
        }
        run = 0;
        int b = 0;
        while (b < B && fill[b] + n > T)
            b++;
        if (b == B) {
            dr++;
            misses++;
            continue;
        }
        misses = 0;
        memcpy(tokens + (size_t)b * T + fill[b], d->cache_ids, sizeof(int32_t) * n);
        memcpy(weights + (size_t)b * T + fill[b], d->cache_w, sizeof(float) * n);
        for (int i = 0; i < n; i++)
            nt += d->cache_w[i] != 0;
        fill[b] += n;
    }
    for (int b = 0; b < B; b++)
        for (int i = fill[b]; i < T; i++) {
            tokens[(size_t)b * T + i] = pad;
            weights[(size_t)b * T + i] = 0;
        }
    if (ntok)
        *ntok = nt;
    if (dropped)
        *dropped = dr;
    return R1_OK;
}
