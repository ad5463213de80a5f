/* distill.c — SFT on a JSONL dataset with optional logit distillation (see r1_distill.h). */
#include <config.h>

#include <jansson.h>
#include <stddef.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "r1_comm.h"
#include "r1_distill.h"
#include "r1_rng.h"
#include "r1_train.h"

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
    c.save_every = 50;
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
    {"precision", R1_SET_CHOICE, F(precision), 0, 0, R1_PRECISION_CHOICES,
     "the linear layers' GEMMs: fp32, bf16 mixed precision, DeepSeek-V3's FP8 (through BF16)",
     NULL, NULL, NULL},
    {"seed", R1_SET_SEED, F(seed), 0, 0, NULL, "seed of the record order", NULL, NULL, NULL},
    {"save_every", R1_SET_INT, F(save_every), 0, 1e8, NULL,
     "checkpoint every N steps in a run folder (0: at the end only)", NULL, NULL, NULL},
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

/* One run: the student, its optimizer, where the data and the teacher come from, and the run
 * folder (out[0] == 0: none, the in-memory r1_distill_run). */
typedef struct {
    r1_model *m, *teacher;
    const r1_tokenizer *tok;
    r1_distill_cfg c;
    char data[R1_DISTILL_PATH_MAX], teacher_dir[R1_DISTILL_PATH_MAX], out[R1_DISTILL_PATH_MAX];
    r1_adamw *opt;         /* NULL: a new one */
    int64_t start;         /* steps done before this session */
    r1_train_state saved;  /* the checkpoint's state (when start > 0), checked on replay */
    double elapsed_before;
} run;

/* Packs the next B rows of T tokens from whole records (order, at and rng advance). */
static void pack(const rec *recs, long nrec, long *order, long *at, r1_rng *rng, int B, int T,
                 int32_t *tokb, float *w)
{
    for (int b = 0; b < B; b++) {
        int used = 0;
        for (;;) {
            const rec *r = &recs[order[*at]];
            if (used + r->n > T && used > 0)
                break;
            memcpy(tokb + b * T + used, r->ids, sizeof(int32_t) * r->n);
            for (int i = 0; i < r->n; i++)
                w[b * T + used + i] = i >= r->start ? 1.0f : 0.0f;
            used += r->n;
            if (++*at == nrec) { /* a new epoch, a new order */
                *at = 0;
                shuffle(order, nrec, rng);
            }
        }
        for (int i = used; i < T; i++) {
            tokb[b * T + i] = R1_TOK_PAD;
            w[b * T + i] = 0;
        }
    }
}

static void out_path(const run *R, const char *name, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", R->out, name);
}

/* The settings as the checkpoint keeps them: the table's, the data and teacher paths, the
 * time so far. */
static char *settings_json(const run *R, double elapsed)
{
    char *sj = r1_settings_json(r1_distill_settings_table(), &R->c);
    json_t *j = sj ? json_loads(sj, 0, NULL) : NULL;
    free(sj);
    if (!j)
        return NULL;
    json_object_set_new(j, "data", json_string(R->data));
    json_object_set_new(j, "teacher", R->teacher_dir[0] ? json_string(R->teacher_dir)
                                                         : json_null());
    json_object_set_new(j, "elapsed", json_real(elapsed));
    sj = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(j);
    return sj;
}

static r1_status checkpoint(const run *R, r1_adamw *opt, int64_t step, long at,
                            const r1_rng *rng, double elapsed, r1_error *err)
{
    char *sj = settings_json(R, elapsed);
    if (!sj)
        return r1_error_set(err, R1_ENOMEM, "out of memory");
    r1_train_state ts;
    memset(&ts, 0, sizeof ts);
    snprintf(ts.stage, sizeof ts.stage, "distill");
    ts.step = step;
    ts.data_pos = at;
    ts.rng = *rng;
    char p[R1_DISTILL_PATH_MAX + 32];
    out_path(R, "checkpoint", p, sizeof p);
    r1_status st = r1_ckpt_save_tok(p, R->m, opt, &ts, sj, R->tok, err);
    free(sj);
    /* the plain model folder beside it, for generate and the next stage */
    if (st == R1_OK)
        st = r1_model_save(R->m, R->out, R1_DT_F32, err);
    if (st == R1_OK)
        st = r1_tokenizer_save(R->tok, R->out, err);
    return st;
}

static r1_status log_step(const run *R, const r1_distill_progress *P, r1_error *err)
{
    char p[R1_DISTILL_PATH_MAX + 32], line[512];
    out_path(R, "metrics.jsonl", p, sizeof p);
    snprintf(line, sizeof line,
             "{\"stage\":\"distill\",\"step\":%lld,\"loss\":%.9g,\"ce\":%.9g,\"kl\":%.9g,"
             "\"lr\":%.9g,\"grad_norm\":%.9g,\"tokens_per_s\":%.9g,\"elapsed\":%.9g}",
             (long long)P->step, P->loss, P->ce, P->kl, P->lr, P->grad_norm, P->tokens_per_s,
             P->elapsed);
    return r1_jsonl_append(p, line, err);
}

/* the process's data parallelism (r1_distill_set_comm): like the thread count, a property of
 * the process rather than of one run */
static const r1_comm *dist_comm;

void r1_distill_set_comm(const r1_comm *c)
{
    dist_comm = c;
}

static r1_status go(run *R, const r1_observer *o, r1_distill_progress *last, r1_error *err)
{
    const r1_comm *comm = dist_comm;
    int dp = comm && comm->size > 1, lead = r1_comm_leads(comm);
    r1_model *m = R->m, *teacher = R->teacher;
    const r1_distill_cfg *c = &R->c;
    const r1_config *mc = r1_model_config(m);
    int V = mc->vocab_size, B = c->batch, T = c->seq_len;
    if (last)
        memset(last, 0, sizeof *last);
    if (B < 1 || T < 2 || c->steps < 1 || T > mc->max_position_embeddings)
        return r1_error_set(err, R1_EINVAL,
                            "distill: batch >= 1, steps >= 1, 2 <= seq_len <= %d expected",
                            mc->max_position_embeddings);
    if (dp && B < comm->size)
        return r1_error_set(err, R1_EINVAL, "distill: batch %d is smaller than the %d ranks; "
                            "each rank needs a row at least", B, comm->size);
    if (teacher && r1_model_config(teacher)->vocab_size != V)
        return r1_error_set(err, R1_EINVAL,
                            "distill: the teacher's vocabulary (%d) differs from the student's "
                            "(%d)",
                            r1_model_config(teacher)->vocab_size, V);
    rec *recs = NULL;
    long nrec = 0, skipped = 0;
    r1_status s = load(R->data, R->tok, T, &recs, &nrec, &skipped, err);
    if (s != R1_OK)
        return s;
    r1_adamw *opt = R->opt;
    long *order = malloc(sizeof(long) * nrec);
    int32_t *tokb = malloc(sizeof(int32_t) * B * T);
    float *w = malloc(sizeof(float) * B * T);
    float *dl = malloc(sizeof(float) * (size_t)B * T * V);
    float *tp = teacher ? malloc(sizeof(float) * (size_t)B * T * V) : NULL;
    if (!order || !tokb || !w || !dl || (teacher && !tp))
        s = r1_error_set(err, R1_ENOMEM, "out of memory");
    if (s == R1_OK && !opt) {
        r1_adamw_cfg oc = c->opt;
        oc.total = c->steps;
        s = r1_adamw_new(&opt, m, &oc, err);
    }
    r1_rng rng;
    r1_rng_seed(&rng, c->seed);
    for (long i = 0; i < nrec; i++)
        order[i] = i;
    if (s == R1_OK)
        shuffle(order, nrec, &rng);
    long at = 0;
    /* a resumed run replays the packing of the steps done: the same rows as if it never
     * stopped; the checkpoint's position and RNG must come out the same */
    for (int64_t k = 0; s == R1_OK && k < R->start; k++)
        pack(recs, nrec, order, &at, &rng, B, T, tokb, w);
    if (s == R1_OK && R->start > 0 &&
        (at != R->saved.data_pos || memcmp(&rng, &R->saved.rng, sizeof rng) != 0))
        s = r1_error_set(err, R1_EINVAL, "%s: the records differ from the ones the run was "
                         "trained on (replaying %lld steps did not reach the checkpoint's "
                         "position)", R->data, (long long)R->start);
    double t0 = r1_now();
    r1_distill_progress P;
    memset(&P, 0, sizeof P);
    P.steps = c->steps;
    P.records = nrec;
    P.skipped = skipped;
    P.step = R->start;
    r1_fwd_opts fo = r1_fwd_defaults();
    fo.no_mtp = 1;
    fo.loss_weights = w;
    r1_precision was = r1_model_precision(m); /* the student's; the teacher stays as it is */
    r1_model_set_precision(m, (r1_precision)c->precision);
    /* data parallelism: every rank packs the same batch, takes its rows [lo, hi) and
     * normalises as the whole batch does; the gradients are summed over the ranks */
    int lo = 0, hi = B;
    r1_comm_rows(comm, B, &lo, &hi);
    for (int64_t step = R->start; s == R1_OK && step < c->steps; step++) {
        double ts = r1_now();
        pack(recs, nrec, order, &at, &rng, B, T, tokb, w);
        r1_loss L;
        long W = 0;
        double wmain = 0;
        for (int i = 0; i < B * T; i++) {
            W += w[i] > 0;
            wmain += i % T ? w[i] : 0; /* the forward's own normaliser, over the whole batch */
        }
        int nb = hi - lo;
        const int32_t *tk = tokb + (size_t)lo * T;
        const float *wl = w + (size_t)lo * T;
        fo.loss_weights = wl;
        fo.main_denom = dp ? wmain : 0;
        if (teacher) {
            if ((s = r1_model_forward(teacher, tk, nb, T, &fo, NULL, err)) != R1_OK)
                break;
            memcpy(tp, r1_model_logits(teacher), sizeof(float) * (size_t)nb * T * V);
        }
        r1_model_zero_grad(m);
        if ((s = r1_model_forward(m, tk, nb, T, &fo, &L, err)) != R1_OK)
            break;
        double kl = 0;
        /* the CE gradient of the forward, plus kd (p_s - p_t) / W at every trained row */
        const float *ls = r1_model_logits(m);
        /* CE dlogits: recompute here (the model keeps them privately) */
        for (int i = 0; i < nb * T; i++) {
            float *d = dl + (size_t)i * V;
            memset(d, 0, sizeof(float) * V);
            int tgt_w = (i % T) + 1 < T ? wl[i + 1] > 0 : 0; /* row i predicts token i+1 */
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
            d[tk[i + 1]] -= c->ce / W;
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
        if (dp) { /* the gradients, the losses and the experts' loads of every rank */
            double v[2] = {L.main, kl};
            s = r1_comm_sum_f32(comm, r1_model_grads(m), r1_model_numel(m), err);
            if (s == R1_OK)
                s = r1_comm_sum_f64(comm, v, 2, err);
            if (s == R1_OK)
                s = r1_comm_sum_loads(comm, m, err);
            if (s != R1_OK)
                break;
            L.main = v[0], kl = v[1];
        }
        double loss = c->ce * L.main + c->kd * (W ? kl / W : 0);
        if (!isfinite(loss)) { /* nothing of this step is applied or saved */
            s = r1_error_set(err, R1_EINVAL, "distill: step %lld: the loss is not finite (%g); "
                             "the run stops, the last checkpoint is kept",
                             (long long)step + 1, loss);
            break;
        }
        double gn = 0;
        float lr = r1_adamw_step(opt, m, &gn);
        if (!isfinite(gn)) {
            s = r1_error_set(err, R1_EINVAL, "distill: step %lld: the gradient is not finite; "
                             "the run stops, the last checkpoint is kept", (long long)step + 1);
            break;
        }
        if (c->balance_gamma > 0)
            r1_model_balance_update(m, c->balance_gamma);
        P.step = step + 1;
        P.ce = L.main;
        P.kl = W ? kl / W : 0;
        P.loss = loss;
        P.lr = lr;
        P.grad_norm = gn;
        P.tokens_per_s = W / (r1_now() - ts);
        P.elapsed = R->elapsed_before + r1_now() - t0;
        if (R->out[0] && lead && (s = log_step(R, &P, err)) != R1_OK)
            break;
        r1_step_report rep = {"distill", P.step, P.steps, P.elapsed, NULL, NULL, &P, NULL};
        int stop = r1_interrupted() || (o && o->step && o->step(o->user, &rep));
        if (dp) { /* all ranks stop after the same step */
            double f = stop;
            if ((s = r1_comm_sum_f64(comm, &f, 1, err)) != R1_OK)
                break;
            stop = f > 0;
        }
        if (R->out[0] && lead && (stop || P.step == c->steps ||
                                  (c->save_every > 0 && P.step % c->save_every == 0))) {
            if ((s = checkpoint(R, opt, P.step, at, &rng, P.elapsed, err)) != R1_OK)
                break;
        }
        if (stop)
            s = r1_error_set(err, R1_ECANCELED, "distill: stopped at step %lld%s",
                             (long long)P.step, R->out[0] ? " (checkpoint written)" : "");
    }
    r1_model_set_precision(m, was);
    if (last)
        *last = P;
    if (opt != R->opt)
        r1_adamw_free(opt);
    free(order), free(tokb), free(w), free(dl), free(tp);
    free_recs(recs, nrec);
    return s;
}

static r1_status set_path(char *dst, const char *src, const char *what, r1_error *err)
{
    if (!src)
        src = "";
    if (strlen(src) >= R1_DISTILL_PATH_MAX)
        return r1_error_set(err, R1_EINVAL, "distill: the %s path is longer than %d bytes",
                            what, R1_DISTILL_PATH_MAX - 1);
    snprintf(dst, R1_DISTILL_PATH_MAX, "%s", src);
    /* no trailing slashes: "run/" and "run" are one folder */
    for (size_t n = strlen(dst); n > 1 && dst[n - 1] == '/'; n--)
        dst[n - 1] = '\0';
    return R1_OK;
}

r1_status r1_distill_run(r1_model *m, const r1_tokenizer *tok, const char *jsonl,
                         r1_model *teacher, const r1_distill_cfg *c, const r1_observer *o,
                         r1_distill_progress *last, r1_error *err)
{
    run R;
    memset(&R, 0, sizeof R);
    R.m = m, R.teacher = teacher, R.tok = tok, R.c = *c;
    r1_status s = set_path(R.data, jsonl, "data", err);
    if (s != R1_OK)
        return s;
    return go(&R, o, last, err);
}

r1_status r1_distill_run_dir(r1_model *student, const r1_tokenizer *tok, const char *jsonl,
                             const char *teacher_dir, const r1_distill_cfg *c,
                             const char *out_dir, const r1_observer *o,
                             r1_distill_progress *last, r1_error *err)
{
    run R;
    memset(&R, 0, sizeof R);
    R.m = student, R.tok = tok, R.c = *c;
    r1_status s = set_path(R.data, jsonl, "data", err);
    if (s == R1_OK)
        s = set_path(R.teacher_dir, teacher_dir, "teacher", err);
    if (s == R1_OK)
        s = set_path(R.out, out_dir, "run folder", err);
    if (s == R1_OK && !R.out[0])
        s = r1_error_set(err, R1_EINVAL, "distill: expected a run folder");
    if (s == R1_OK)
        s = r1_run_folder_fresh(R.out, err);
    if (s == R1_OK)
        s = r1_mkdirs(R.out, 0777, err);
    if (s == R1_OK && R.teacher_dir[0])
        s = r1_model_load(&R.teacher, R.teacher_dir, err);
    if (s == R1_OK && R.c.kd < 0) /* not given: soft targets when there is a teacher */
        R.c.kd = R.teacher ? 0.5f : 0;
    if (s == R1_OK)
        s = go(&R, o, last, err);
    r1_model_free(R.teacher);
    return s;
}

r1_status r1_distill_resume(const char *out_dir, r1_distill_cfg *cfg_out, const r1_observer *o,
                            r1_distill_progress *last, r1_error *err)
{
    run R;
    memset(&R, 0, sizeof R);
    r1_status s = set_path(R.out, out_dir, "run folder", err);
    if (s == R1_OK && !R.out[0])
        s = r1_error_set(err, R1_EINVAL, "resume: expected a run folder");
    if (s != R1_OK)
        return s;
    char ck[R1_DISTILL_PATH_MAX + 32], p[R1_DISTILL_PATH_MAX + 64];
    out_path(&R, "checkpoint", ck, sizeof ck);
    char *sj = NULL;
    r1_tokenizer *tok = NULL;
    s = r1_ckpt_load(ck, &R.m, &R.opt, &R.saved, &sj, err);
    if (s == R1_OK && strcmp(R.saved.stage, "distill") != 0)
        s = r1_error_set(err, R1_EINVAL, "%s: a %s checkpoint, not a distillation one", ck,
                         R.saved.stage);
    if (s == R1_OK && !sj)
        s = r1_error_set(err, R1_EFORMAT, "%s/trainer_state.json: no \"settings\"", ck);
    R.c = r1_distill_defaults();
    static const char *const extra[] = {"data", "teacher", "elapsed", NULL};
    if (s == R1_OK)
        s = r1_settings_parse_json(r1_distill_settings_table(), &R.c, sj, extra, ck, err);
    if (s == R1_OK) {
        json_t *j = json_loads(sj, 0, NULL);
        json_t *d = j ? json_object_get(j, "data") : NULL, *t = j ? json_object_get(j, "teacher") : NULL;
        json_t *e = j ? json_object_get(j, "elapsed") : NULL;
        if (!json_is_string(d) || (t && !json_is_null(t) && !json_is_string(t)))
            s = r1_error_set(err, R1_EFORMAT, "%s/trainer_state.json: settings: expected "
                             "\"data\" (a path) and \"teacher\" (a path or null)", ck);
        if (s == R1_OK)
            s = set_path(R.data, json_string_value(d), "data", err);
        if (s == R1_OK && json_is_string(t))
            s = set_path(R.teacher_dir, json_string_value(t), "teacher", err);
        R.elapsed_before = json_is_number(e) ? json_number_value(e) : 0;
        json_decref(j);
    }
    free(sj);
    if (s == R1_OK) {
        snprintf(p, sizeof p, "%s/tokenizer.json", ck);
        s = r1_tokenizer_load(&tok, p, err);
        R.tok = tok;
    }
    if (s == R1_OK) {
        /* the settings' copy of the optimizer settings is the exact one (17 digits) */
        r1_adamw_cfg *oc = r1_adamw_config(R.opt);
        *oc = R.c.opt;
        oc->total = R.c.steps;
        R.start = R.saved.step;
        if (r1_adamw_steps(R.opt) != R.saved.step)
            s = r1_error_set(err, R1_EFORMAT, "%s: the optimizer made %d steps, the trainer "
                             "%lld", ck, r1_adamw_steps(R.opt), (long long)R.saved.step);
    }
    if (s == R1_OK && R.teacher_dir[0])
        s = r1_model_load(&R.teacher, R.teacher_dir, err);
    if (s == R1_OK) {
        out_path(&R, "metrics.jsonl", p, sizeof p);
        s = r1_jsonl_trim(p, R.start, err);
    }
    if (s == R1_OK && cfg_out)
        *cfg_out = R.c;
    if (s == R1_OK) {
        if (R.start >= R.c.steps) { /* complete already */
            if (last) {
                memset(last, 0, sizeof *last);
                last->step = last->steps = R.c.steps;
            }
        } else {
            s = go(&R, o, last, err);
        }
    }
    r1_adamw_free(R.opt);
    r1_model_free(R.teacher);
    r1_model_free(R.m);
    r1_tokenizer_free(tok);
    return s;
}
