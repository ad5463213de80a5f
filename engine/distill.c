/* distill.c — SFT on a JSONL dataset with optional logit distillation (see r1_distill.h). */
#include <config.h>

#include <jansson.h>
#include <stddef.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "r1_distill.h"
#include "r1_rng.h"

r1_distill_cfg r1_distill_defaults(void)
{
    r1_distill_cfg c;
    memset(&c, 0, sizeof c);
    c.seq_len = 256;
    c.batch = 8;
    c.steps = 200;
    c.opt = r1_adamw_defaults();
    c.opt.lr = 1e-3f;
    c.opt.min_lr = 1e-4f;
    c.opt.warmup = 20;
    c.balance_gamma = 1e-3f;
    c.seed = 1;
    c.ce = 1.0f;
    return c;
}

#define F(field) offsetof(r1_distill_cfg, field)
static const r1_setting distill_settings[] = {
    {"steps", R1_SET_INT, F(steps), 1, 1e8, NULL, "optimizer steps", NULL, NULL, NULL},
    {"batch", R1_SET_INT, F(batch), 1, 4096, NULL, "rows per step", NULL, NULL, NULL},
    {"seq_len", R1_SET_INT, F(seq_len), 16, 65536, NULL, "tokens per row", NULL, NULL, NULL},
    {"lr", R1_SET_FLOAT, F(opt.lr), 1e-8, 0.999, NULL, "peak learning rate", NULL, NULL, NULL},
    {"min_lr", R1_SET_FLOAT, F(opt.min_lr), 0, 0.999, NULL, "floor of the cosine schedule",
     NULL, NULL, NULL},
    {"warmup", R1_SET_INT, F(opt.warmup), 0, 1e8, NULL, "linear warmup steps", NULL, NULL,
     NULL},
    {"weight_decay", R1_SET_FLOAT, F(opt.weight_decay), 0, 10, NULL, "AdamW weight decay", NULL,
     NULL, NULL},
    {"ce", R1_SET_FLOAT, F(ce), 0, 100, NULL, "weight of the cross-entropy on the records",
     NULL, NULL, NULL},
    {"kd", R1_SET_FLOAT, F(kd), 0, 100, NULL,
     "weight of the KL to the teacher (0.5 when a teacher is given and kd is not)", NULL, NULL,
     NULL},
    {"balance_gamma", R1_SET_FLOAT, F(balance_gamma), 0, 1, NULL,
     "routing-bias step of auxiliary-loss-free balancing", "gamma", NULL, NULL},
    {"seed", R1_SET_SEED, F(seed), 0, 0, NULL, "seed of the record order", NULL, NULL, NULL},
};
#undef F

const r1_settings_table r1_distill_settings_tbl = {
    "distill", distill_settings, sizeof distill_settings / sizeof *distill_settings};

const r1_settings_table *r1_distill_settings_table(void)
{
    return &r1_distill_settings_tbl;
}

typedef struct {
    int32_t *ids; /* the whole chat sequence */
    int n, start; /* tokens; first completion token */
} rec;


static void free_recs(rec *r, long n)
{
    for (long i = 0; r && i < n; i++)
        free(r[i].ids);
    free(r);
}

/* Reads and encodes every record of path. */
static r1_status load(const char *path, const r1_tokenizer *tok, int seq_len, rec **out,
                      long *nout, long *skipped, r1_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return r1_error_set(err, R1_EIO, "%s: cannot open", path);
    rec *r = NULL;
    long n = 0, cap = 0, line = 0;
    *skipped = 0;
    char *buf = NULL;
    size_t bcap = 0;
    r1_status s = R1_OK;
    int32_t *ids = malloc(sizeof(int32_t) * 16384);
    if (!ids)
        s = r1_error_set(err, R1_ENOMEM, "out of memory");
    while (s == R1_OK && getline(&buf, &bcap, f) > 0) {
        line++;
        if (buf[strspn(buf, " \t\r\n")] == '\0')
            continue;
        json_error_t je;
        json_t *o = json_loads(buf, 0, &je);
        json_t *p = o ? json_object_get(o, "prompt") : NULL, *c = o ? json_object_get(o, "completion") : NULL;
        if (!o || !json_is_string(p) || !json_is_string(c)) {
            s = r1_error_set(err, R1_EFORMAT,
                             "%s:%ld: expected a JSON object with string fields \"prompt\" and "
                             "\"completion\"%s%s",
                             path, line, o ? "" : ": ", o ? "" : je.text);
            json_decref(o);
            break;
        }
        int np = 0, nc = 0;
        s = r1_tokenizer_encode_prompt(tok, json_string_value(p), ids, 16384, &np, err);
        if (s == R1_OK)
            s = r1_tokenizer_encode(tok, json_string_value(c), ids + np, 16384 - np, &nc, err);
        json_decref(o);
        if (s != R1_OK) {
            r1_error_prefix(err, "%s:%ld", path, line);
            break;
        }
        if (np + nc > seq_len || nc == 0) {
            (*skipped)++;
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            rec *nr = realloc(r, sizeof(rec) * cap);
            if (!nr) {
                s = r1_error_set(err, R1_ENOMEM, "out of memory");
                break;
            }
            r = nr;
        }
        r[n].ids = malloc(sizeof(int32_t) * (np + nc));
        if (!r[n].ids) {
            s = r1_error_set(err, R1_ENOMEM, "out of memory");
            break;
        }
        memcpy(r[n].ids, ids, sizeof(int32_t) * (np + nc));
        r[n].n = np + nc;
        r[n].start = np;
        n++;
    }
    free(buf);
    free(ids);
    fclose(f);
    if (s == R1_OK && n == 0)
        s = r1_error_set(err, R1_EINVAL, "%s: no record fits seq_len %d (%ld skipped)", path,
                         seq_len, *skipped);
    if (s != R1_OK) {
        free_recs(r, n);
        return s;
    }
    *out = r;
    *nout = n;
    return R1_OK;
}

static void shuffle(long *order, long n, r1_rng *rng)
{
    for (long i = n - 1; i > 0; i--) {
        long j = (long)r1_rng_below(rng, (uint32_t)(i + 1));
        long t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

r1_status r1_distill_run(r1_model *m, const r1_tokenizer *tok, const char *jsonl,
                         r1_model *teacher, const r1_distill_cfg *c, const r1_observer *o,
                         r1_distill_progress *last, r1_error *err)
{
    const r1_config *mc = r1_model_config(m);
    int V = mc->vocab_size, B = c->batch, T = c->seq_len;
    if (B < 1 || T < 2 || c->steps < 1 || T > mc->max_position_embeddings)
        return r1_error_set(err, R1_EINVAL,
                            "distill: batch >= 1, steps >= 1, 2 <= seq_len <= %d expected",
                            mc->max_position_embeddings);
    if (teacher && r1_model_config(teacher)->vocab_size != V)
        return r1_error_set(err, R1_EINVAL,
                            "distill: the teacher's vocabulary (%d) differs from the student's "
                            "(%d)",
                            r1_model_config(teacher)->vocab_size, V);
    rec *recs = NULL;
    long nrec = 0, skipped = 0;
    r1_status s = load(jsonl, tok, T, &recs, &nrec, &skipped, err);
    if (s != R1_OK)
        return s;
    r1_adamw_cfg oc = c->opt;
    oc.total = c->steps;
    r1_adamw *opt = NULL;
    long *order = malloc(sizeof(long) * nrec);
    int32_t *tokb = malloc(sizeof(int32_t) * B * T);
    float *w = malloc(sizeof(float) * B * T);
    float *dl = malloc(sizeof(float) * (size_t)B * T * V);
    float *tp = teacher ? malloc(sizeof(float) * (size_t)B * T * V) : NULL;
    if (!order || !tokb || !w || !dl || (teacher && !tp))
        s = r1_error_set(err, R1_ENOMEM, "out of memory");
    if (s == R1_OK)
        s = r1_adamw_new(&opt, m, &oc, err);
    r1_rng rng;
    r1_rng_seed(&rng, c->seed);
    for (long i = 0; i < nrec; i++)
        order[i] = i;
    if (s == R1_OK)
        shuffle(order, nrec, &rng);
    long at = 0;
    double t0 = r1_now();
    r1_distill_progress P;
    memset(&P, 0, sizeof P);
    P.steps = c->steps;
    P.records = nrec;
    P.skipped = skipped;
    r1_fwd_opts fo = r1_fwd_defaults();
    fo.no_mtp = 1;
    fo.loss_weights = w;
    for (int step = 0; s == R1_OK && step < c->steps; step++) {
        double ts = r1_now();
        /* pack whole records */
        for (int b = 0; b < B; b++) {
            int used = 0;
            for (;;) {
                const rec *r = &recs[order[at]];
                if (used + r->n > T && used > 0)
                    break;
                memcpy(tokb + b * T + used, r->ids, sizeof(int32_t) * r->n);
                for (int i = 0; i < r->n; i++)
                    w[b * T + used + i] = i >= r->start ? 1.0f : 0.0f;
                used += r->n;
                if (++at == nrec) { /* a new epoch, a new order */
                    at = 0;
                    shuffle(order, nrec, &rng);
                }
            }
            for (int i = used; i < T; i++) {
                tokb[b * T + i] = R1_TOK_PAD;
                w[b * T + i] = 0;
            }
        }
        r1_loss L;
        long W = 0;
        for (int i = 0; i < B * T; i++)
            W += w[i] > 0;
        if (teacher) {
            if ((s = r1_model_forward(teacher, tokb, B, T, &fo, NULL, err)) != R1_OK)
                break;
            memcpy(tp, r1_model_logits(teacher), sizeof(float) * (size_t)B * T * V);
        }
        r1_model_zero_grad(m);
        if ((s = r1_model_forward(m, tokb, B, T, &fo, &L, err)) != R1_OK)
            break;
        double kl = 0;
        /* the CE gradient of the forward, plus kd (p_s - p_t) / W at every trained row */
        const float *ls = r1_model_logits(m);
        /* CE dlogits: recompute here (the model keeps them privately) */
        for (int i = 0; i < B * T; i++) {
            float *d = dl + (size_t)i * V;
            memset(d, 0, sizeof(float) * V);
            int tgt_w = (i % T) + 1 < T ? w[i + 1] > 0 : 0; /* row i predicts token i+1 */
            if (!tgt_w)
                continue;
            const float *z = ls + (size_t)i * V;
            double mx = z[0], sum = 0;
            for (int v = 1; v < V; v++)
                mx = z[v] > mx ? z[v] : mx;
            for (int v = 0; v < V; v++)
                sum += exp(z[v] - mx);
            for (int v = 0; v < V; v++)
                d[v] = (float)(c->ce * exp(z[v] - mx) / sum / W);
            d[tokb[i + 1]] -= c->ce / W;
            if (teacher && c->kd > 0) {
                const float *zt = tp + (size_t)i * V;
                double mt = zt[0], st = 0;
                for (int v = 1; v < V; v++)
                    mt = zt[v] > mt ? zt[v] : mt;
                for (int v = 0; v < V; v++)
                    st += exp(zt[v] - mt);
                for (int v = 0; v < V; v++) {
                    double pt = exp(zt[v] - mt) / st, ps = exp(z[v] - mx) / sum;
                    if (pt > 0)
                        kl += pt * (log(pt) - log(ps > 1e-30 ? ps : 1e-30));
                    d[v] += (float)(c->kd * (ps - pt) / W);
                }
            }
        }
        s = r1_model_backward_logits(m, dl, err);
        if (s != R1_OK)
            break;
        double gn = 0;
        float lr = r1_adamw_step(opt, m, &gn);
        if (c->balance_gamma > 0)
            r1_model_balance_update(m, c->balance_gamma);
        P.step = step + 1;
        P.ce = L.main;
        P.kl = W ? kl / W : 0;
        P.loss = c->ce * L.main + c->kd * P.kl;
        P.lr = lr;
        P.grad_norm = gn;
        P.tokens_per_s = W / (r1_now() - ts);
        P.elapsed = r1_now() - t0;
        r1_step_report rep = {"distill", P.step, P.steps, P.elapsed, NULL, NULL, &P, NULL};
        if (r1_interrupted() || (o && o->step && o->step(o->user, &rep)))
            s = r1_error_set(err, R1_ECANCELED, "distill: stopped at step %d", step + 1);
    }
    if (last)
        *last = P;
    r1_adamw_free(opt);
    free(order), free(tokb), free(w), free(dl), free(tp);
    free_recs(recs, nrec);
    return s;
}
