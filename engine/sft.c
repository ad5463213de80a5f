/* sft.c — the trainer of the pretraining and cold-start SFT stages: the step loop, metrics
 * lines, evaluation, checkpoints, exact resume.  See r1_sft.h for the data, the run folder and
 * the metrics keys.
 *
 * Exact resume rests on three things: the data stream is a pure function of (seed, stage,
 * position) and the checkpoint keeps the position; the checkpoint keeps everything else a step
 * reads (parameters and router biases in F32, both AdamW moments and its step count, which
 * drives the schedule); and nothing else carries state between steps (the expert-load counts
 * are consumed by the balancing update inside every step; generation for evaluation neither
 * counts loads nor touches the training buffers before the next forward overwrites them).
 *
 * Ownership: see r1_sft.h.  Errors: R1_EINVAL (settings, a folder holding a run), R1_EIO and
 * friends from files (messages name them), R1_ECANCELED after a checkpoint when stopped. */
#include <config.h>

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "atomic_file.h"
#include "r1_comm.h"
#include "r1_sft.h"
#include "r1_train.h"

struct r1_sft {
    r1_sft_settings s;
    r1_model *m;             /* borrowed, or owned when own_model */
    int own_model;
    const r1_tokenizer *tok; /* borrowed, or tok_owned */
    r1_tokenizer *tok_owned;
    r1_adamw *o;
    r1_sft_data *d;
    int64_t step; /* optimizer steps done */
    int64_t pos;  /* documents consumed */
    r1_rng rng;   /* saved with the state; this stage draws nothing from it (the stream is
                   * hashed from the position), it is kept so every stage's state has one */
    int64_t saved_step;     /* the step of the last checkpoint written or loaded (-1: none) */
    double elapsed_before;  /* seconds spent in earlier sessions of the run */
    double t_start;         /* this session's start */
    int64_t session_steps;  /* steps done in this session */
    int32_t *tokens;        /* [B,T] */
    float *weights;         /* [B,T] */
    r1_sft_eval eval;
    const r1_comm *comm;    /* data parallelism (NULL: one process) */
    int stop_asked;         /* with ranks: an observer asked to stop, after the next sum */
};


static int path_exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}


static void out_path(const r1_sft *t, const char *name, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", t->s.out_dir, name);
}

void r1_sft_free(r1_sft *t)
{
    if (!t)
        return;
    r1_sft_data_free(t->d);
    r1_adamw_free(t->o);
    if (t->own_model)
        r1_model_free(t->m);
    r1_tokenizer_free(t->tok_owned);
    free(t->tokens);
    free(t->weights);
    free(t);
}

/* The parts new and resume share, once s, m and tok are set. */
static r1_status setup(r1_sft *t, r1_error *err)
{
    r1_status st = r1_sft_validate(&t->s, r1_model_config(t->m), err);
    if (st != R1_OK)
        return st;
    if ((st = r1_tokenizer_check_vocab(t->tok, r1_model_config(t->m)->vocab_size, NULL, err)) !=
        R1_OK)
        return st;
    size_t BT = (size_t)t->s.batch * t->s.seq_len;
    t->tokens = malloc(sizeof(int32_t) * BT);
    t->weights = malloc(sizeof(float) * BT);
    if (!t->tokens || !t->weights)
        return r1_error_set(err, R1_ENOMEM, "out of memory for a %d x %d batch", t->s.batch,
                            t->s.seq_len);
    if ((st = r1_sft_data_new(&t->d, &t->s, t->tok, err)) != R1_OK)
        return st;
    if (t->s.out_dir[0] && (st = r1_mkdirs(t->s.out_dir, 0755, err)) != R1_OK)
        return st;
    t->t_start = r1_now();
    return R1_OK;
}

r1_status r1_sft_new(r1_sft **out, r1_model *m, const r1_tokenizer *tok,
                     const r1_sft_settings *s, r1_error *err)
{
    *out = NULL;
    r1_sft *t = calloc(1, sizeof *t);
    if (!t)
        return r1_error_set(err, R1_ENOMEM, "out of memory");
    t->s = *s;
    t->s.opt.total = s->steps;
    t->m = m;
    t->tok = tok;
    t->saved_step = -1;
    r1_status st = R1_OK;
    if (!tok && !(t->tok = t->tok_owned = r1_tokenizer_new_builtin()))
        st = r1_error_set(err, R1_ENOMEM, "out of memory");
    if (st == R1_OK && t->s.out_dir[0]) {
        st = r1_run_folder_fresh(t->s.out_dir, err);
    }
    if (st == R1_OK)
        st = setup(t, err);
    if (st == R1_OK)
        st = r1_adamw_new(&t->o, m, &t->s.opt, err);
    if (st != R1_OK) {
        r1_sft_free(t);
        return st;
    }
    r1_rng_seed(&t->rng, t->s.seed);
    *out = t;
    return R1_OK;
}

/* Rewrites path without the lines whose "step" exceeds step (lines of a run killed after its
 * last checkpoint), atomically.  A missing file is fine. */
r1_status r1_sft_resume(r1_sft **out, const char *out_dir, r1_error *err)
{
    *out = NULL;
    if (!out_dir || !*out_dir || strlen(out_dir) >= R1_SFT_PATH_MAX - 64)
        return r1_error_set(err, R1_EINVAL, "resume: expected a run folder");
    char ck[R1_SFT_PATH_MAX + 32], p[R1_SFT_PATH_MAX + 64];
    snprintf(ck, sizeof ck, "%s/checkpoint", out_dir);
    r1_sft *t = calloc(1, sizeof *t);
    if (!t)
        return r1_error_set(err, R1_ENOMEM, "out of memory");
    t->own_model = 1;
    r1_train_state ts;
    char *sj = NULL;
    r1_status st = r1_ckpt_load(ck, &t->m, &t->o, &ts, &sj, err);
    if (st == R1_OK && !sj)
        st = r1_error_set(err, R1_EFORMAT, "%s/trainer_state.json: no \"settings\": not a "
                          "pretrain or sft checkpoint", ck);
    if (st == R1_OK)
        st = r1_sft_settings_parse(&t->s, sj, err);
    if (st == R1_OK && strcmp(ts.stage, r1_sft_stage_name(t->s.stage)) != 0)
        st = r1_error_set(err, R1_EFORMAT, "%s: stage \"%s\" but settings of \"%s\"", ck,
                          ts.stage, r1_sft_stage_name(t->s.stage));
    if (st == R1_OK) {
        json_t *j = json_loads(sj, 0, NULL);
        json_t *e = j ? json_object_get(j, "elapsed") : NULL;
        t->elapsed_before = json_is_number(e) ? json_number_value(e) : 0;
        json_decref(j);
        snprintf(t->s.out_dir, sizeof t->s.out_dir, "%s", out_dir);
        snprintf(p, sizeof p, "%s/tokenizer.json", ck);
        if (path_exists(p))
            st = r1_tokenizer_load(&t->tok_owned, p, err);
        else if (!(t->tok_owned = r1_tokenizer_new_builtin()))
            st = r1_error_set(err, R1_ENOMEM, "out of memory");
        t->tok = t->tok_owned;
    }
    free(sj);
    if (st == R1_OK) {
        /* the settings' copy of the optimizer settings is the exact one (17 digits) */
        r1_adamw_cfg *oc = r1_adamw_config(t->o);
        *oc = t->s.opt;
        oc->total = t->s.steps;
        t->step = ts.step;
        t->pos = ts.data_pos;
        t->rng = ts.rng;
        t->saved_step = ts.step;
        if (r1_adamw_steps(t->o) != ts.step)
            st = r1_error_set(err, R1_EFORMAT, "%s: the optimizer made %d steps, the trainer "
                              "%lld", ck, r1_adamw_steps(t->o), (long long)ts.step);
    }
    if (st == R1_OK)
        st = setup(t, err);
    if (st == R1_OK) {
        snprintf(p, sizeof p, "%s/metrics.jsonl", out_dir);
        st = r1_jsonl_trim(p, t->step, err);
    }
    if (st != R1_OK) {
        r1_sft_free(t);
        return st;
    }
    *out = t;
    return R1_OK;
}

static double elapsed(const r1_sft *t)
{
    return t->elapsed_before + r1_now() - t->t_start;
}

r1_status r1_sft_checkpoint(r1_sft *t, r1_error *err)
{
    if (!t->s.out_dir[0] || !r1_comm_leads(t->comm))
        return R1_OK;
    char *sj = r1_sft_settings_json(&t->s);
    json_t *j = sj ? json_loads(sj, 0, NULL) : NULL;
    free(sj);
    if (!j)
        return r1_error_set(err, R1_ENOMEM, "out of memory");
    json_object_set_new(j, "elapsed", json_real(elapsed(t)));
    sj = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(j);
    if (!sj)
        return r1_error_set(err, R1_ENOMEM, "out of memory");
    r1_train_state ts;
    memset(&ts, 0, sizeof ts);
    snprintf(ts.stage, sizeof ts.stage, "%s", r1_sft_stage_name(t->s.stage));
    ts.step = t->step;
    ts.data_pos = t->pos;
    ts.rng = t->rng;
    char p[R1_SFT_PATH_MAX + 32];
    out_path(t, "checkpoint", p, sizeof p);
    r1_status st = r1_ckpt_save_tok(p, t->m, t->o, &ts, sj, t->tok, err);
    free(sj);
    /* the plain model folder beside it, for generate and the next stage */
    if (st == R1_OK)
        st = r1_model_save(t->m, t->s.out_dir, R1_DT_F32, err);
    if (st == R1_OK)
        st = r1_tokenizer_save(t->tok, t->s.out_dir, err);
    if (st == R1_OK)
        t->saved_step = t->step;
    return st;
}

r1_status r1_sft_eval_now(r1_sft *t, int n, r1_sft_eval *out, r1_error *err)
{
    return r1_sft_evaluate(t->m, t->tok, t->d, n > 0 ? n : t->s.eval_n, out, err);
}

/* The step's metrics line (r1_sft.h lists the keys). */
static r1_status write_metrics(r1_sft *t, const r1_sft_progress *p, r1_error *err)
{
    if (!t->s.out_dir[0] || !r1_comm_leads(t->comm))
        return R1_OK;
    json_t *j = json_object();
    json_object_set_new(j, "step", json_integer(p->step));
    json_object_set_new(j, "stage", json_string(p->stage));
    json_object_set_new(j, "loss", json_real(p->loss));
    json_object_set_new(j, "loss_main", json_real(p->loss_main));
    json_object_set_new(j, "loss_mtp", json_real(p->loss_mtp));
    json_object_set_new(j, "lr", json_real(p->lr));
    json_object_set_new(j, "grad_norm", json_real(p->grad_norm));
    json_object_set_new(j, "tokens", json_integer(p->tokens));
    json_object_set_new(j, "tokens_per_s", json_real(p->tokens_per_s));
    json_object_set_new(j, "data_pos", json_integer(p->data_pos));
    json_object_set_new(j, "elapsed", json_real(p->elapsed));
    if (p->n_moe > 0) { /* DeepSeek-V3's balance measure, per MoE layer */
        json_t *a = json_array();
        for (int i = 0; i < p->n_moe; i++)
            json_array_append_new(a, json_real(p->maxvio[i]));
        json_object_set_new(j, "maxvio", a);
        json_object_set_new(j, "maxvio_mean", json_real(p->maxvio_mean));
    }
    const r1_sft_eval *e = p->eval;
    if (e) {
        json_object_set_new(j, "eval.accuracy", json_real(e->accuracy));
        json_object_set_new(j, "eval.format", json_real(e->format));
        json_object_set_new(j, "eval.language", json_real(e->language));
        json_object_set_new(j, "eval.length", json_real(e->length));
        json_object_set_new(j, "eval.think_len", json_real(e->think_len));
        json_object_set_new(j, "eval.accuracy_in", json_real(e->accuracy_in));
        json_object_set_new(j, "eval.accuracy_above", json_real(e->accuracy_above));
        json_object_set_new(j, "eval.seconds", json_real(e->seconds));
        if (e->mtp_depth > 0) { /* the acceptance rate of each MTP draft position */
            json_t *a = json_array();
            for (int k = 0; k < e->mtp_depth; k++)
                json_array_append_new(a, json_real(e->mtp_tries[k] ? (double)e->mtp_hits[k] /
                                                                         e->mtp_tries[k]
                                                                   : 0));
            json_object_set_new(j, "eval.mtp_accept", a);
        }
        for (int i = 0; i < e->ncells; i++) {
            const r1_sft_eval_cell *c = &e->cell[i];
            static const char *names[] = {"accuracy", "format", "language", "length",
                                          "think_len"};
            double v[] = {c->accuracy, c->format, c->language, c->length, c->think_len};
            for (int k = 0; k < 5; k++) {
                char key[96];
                snprintf(key, sizeof key, "eval.%s.%d.%s", r1_task_name(c->task), c->difficulty,
                         names[k]);
                json_object_set_new(j, key, json_real(v[k]));
            }
        }
    }
    char *line = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(j);
    if (!line)
        return r1_error_set(err, R1_ENOMEM, "out of memory");
    char path[R1_SFT_PATH_MAX + 32];
    out_path(t, "metrics.jsonl", path, sizeof path);
    r1_status st = r1_jsonl_append(path, line, err);
    free(line);
    return st;
}

/* One optimizer step: batch, forward, backward, AdamW, balancing. */
static r1_status train_step(r1_sft *t, r1_sft_progress *p, r1_error *err)
{
    double t0 = r1_now();
    long ntok = 0;
    r1_status st = r1_sft_data_batch(t->d, &t->pos, t->tokens, t->weights, &ntok, NULL, err);
    if (st != R1_OK)
        return st;
    r1_fwd_opts fo = r1_fwd_defaults();
    fo.mtp_lambda = t->s.mtp_lambda;
    fo.balance_alpha = t->s.balance_alpha;
    fo.loss_weights = t->weights;
    /* data parallelism: every rank packs the whole batch (the same documents), takes its rows
     * and normalises as the whole batch does; the gradients then sum to the whole batch's */
    int B = t->s.batch, T = t->s.seq_len, lo = 0, hi = B;
    const r1_config *mc = r1_model_config(t->m);
    double mtp_den[8] = {0};
    int dp = t->comm && t->comm->size > 1;
    if (dp) {
        r1_comm_rows(t->comm, B, &lo, &hi);
        int D = mc->num_nextn_predict_layers < 8 ? mc->num_nextn_predict_layers : 8;
        double w_main = 0;
        for (int b = 0; b < B; b++)
            for (int i = 1; i < T; i++) {
                double w = t->weights[(size_t)b * T + i];
                w_main += w;
                for (int k = 1; k <= D; k++) /* depth k predicts positions k + 1 .. T - 1 */
                    mtp_den[k - 1] += i >= k + 1 ? w : 0;
            }
        fo.main_denom = w_main; /* 0 only when no row counts anywhere: then the loss is 0 */
        fo.mtp_denoms = mtp_den;
        fo.balance_rows = B;
        fo.loss_weights = t->weights + (size_t)lo * T;
    }
    r1_loss L;
    r1_model_zero_grad(t->m);
    r1_precision was = r1_model_precision(t->m);
    r1_model_set_precision(t->m, (r1_precision)t->s.precision);
    st = r1_model_forward(t->m, t->tokens + (size_t)lo * T, hi - lo, T, &fo, &L, err);
    if (st == R1_OK)
        st = r1_model_backward(t->m, err);
    r1_model_set_precision(t->m, was);
    if (st != R1_OK)
        return st;
    if (dp) { /* the gradients, the loss's parts and the experts' loads, summed over ranks */
        double parts[4] = {L.loss, L.main, L.mtp, L.balance};
        st = r1_comm_sum_f32(t->comm, r1_model_grads(t->m), r1_model_numel(t->m), err);
        if (st == R1_OK)
            st = r1_comm_sum_f64(t->comm, parts, 4, err);
        if (st == R1_OK)
            st = r1_comm_sum_loads(t->comm, t->m, err);
        if (st != R1_OK)
            return st;
        L.loss = parts[0], L.main = parts[1], L.mtp = parts[2], L.balance = parts[3];
    }
    if (!isfinite(L.loss)) /* nothing of this step is applied: the last checkpoint stands */
        return r1_error_set(err, R1_EINVAL, "%s: step %lld: the loss is not finite (%g); the "
                            "run stops, the last checkpoint is kept",
                            r1_sft_stage_name(t->s.stage), (long long)t->step + 1, L.loss);
    double gnorm = 0;
    float lr = r1_adamw_step(t->o, t->m, &gnorm);
    if (!isfinite(gnorm))
        return r1_error_set(err, R1_EINVAL, "%s: step %lld: the gradient is not finite; the "
                            "run stops, the last checkpoint is kept",
                            r1_sft_stage_name(t->s.stage), (long long)t->step + 1);
    /* the step's balance, then the balancing update (with gamma 0 it only starts the next
     * step's count) */
    float load[mc->n_routed_experts > 0 ? mc->n_routed_experts : 1];
    p->n_moe = 0;
    p->maxvio_mean = 0;
    for (int l = 0; l < mc->num_hidden_layers && p->n_moe < R1_SFT_MAX_MOE; l++)
        if (r1_model_expert_load(t->m, l, load) >= 0)
            p->maxvio[p->n_moe++] = r1_load_maxvio(load, mc->n_routed_experts);
    for (int j = 0; j < p->n_moe; j++)
        p->maxvio_mean += p->maxvio[j] / p->n_moe;
    r1_model_balance_update(t->m, t->s.balance_gamma);
    t->step++;
    t->session_steps++;
    double dt = r1_now() - t0;
    p->step = t->step;
    p->loss = L.loss;
    p->loss_main = L.main;
    p->loss_mtp = t->s.mtp_lambda > 0 ? L.mtp / t->s.mtp_lambda : 0;
    p->lr = lr;
    p->grad_norm = gnorm;
    p->tokens = ntok;
    p->tokens_per_s = dt > 0 ? (double)ntok / dt : 0;
    p->data_pos = t->pos;
    return R1_OK;
}

static r1_status stop(r1_sft *t, r1_status why, r1_error *err)
{
    if (t->step != t->saved_step) {
        r1_status st = r1_sft_checkpoint(t, err);
        if (st != R1_OK)
            return st;
    }
    if (why == R1_ECANCELED)
        return r1_error_set(err, R1_ECANCELED, "stopped after step %lld of %d%s",
                            (long long)t->step, t->s.steps,
                            t->s.out_dir[0] ? " (checkpoint written)" : "");
    return why;
}

r1_status r1_sft_run(r1_sft *t, const r1_observer *o, r1_error *err)
{
    const r1_sft_settings *s = &t->s;
    int dp = t->comm && t->comm->size > 1;
    while (t->step < s->steps) {
        /* with ranks, all stop after the same step: a Ctrl-C or an observer's stop on any
         * rank is summed first */
        double flag = r1_interrupted() || t->stop_asked;
        r1_status fs = r1_comm_sum_f64(t->comm, &flag, 1, err);
        if (fs != R1_OK)
            return fs;
        if (flag > 0)
            return stop(t, R1_ECANCELED, err);
        r1_sft_progress p;
        memset(&p, 0, sizeof p);
        p.stage = r1_sft_stage_name(s->stage);
        p.steps = s->steps;
        r1_status st = train_step(t, &p, err);
        if (st != R1_OK)
            return st;
        int last = t->step == s->steps, canceled = 0;
        if (s->eval_every > 0 && (t->step % s->eval_every == 0 || last) &&
            r1_comm_leads(t->comm)) { /* rank 0 evaluates, the others go on to the next sum */
            st = r1_sft_eval_now(t, s->eval_n, &t->eval, err);
            if (st == R1_ECANCELED)
                canceled = 1; /* interrupted while generating: log the step without eval */
            else if (st != R1_OK)
                return st;
            else {
                p.eval = &t->eval;
                if (o && o->eval && o->eval(o->user, &t->eval))
                    canceled = 1;
            }
        }
        p.elapsed = elapsed(t);
        double per = (r1_now() - t->t_start) / (double)t->session_steps;
        p.eta = per * (double)(s->steps - t->step);
        if ((st = write_metrics(t, &p, err)) != R1_OK)
            return st;
        if (canceled && !dp)
            return stop(t, R1_ECANCELED, err);
        t->stop_asked |= canceled;
        if ((s->save_every > 0 && t->step % s->save_every == 0) || last) {
            if ((st = r1_sft_checkpoint(t, err)) != R1_OK)
                return st;
            p.checkpointed = 1;
        }
        r1_step_report rep = {p.stage, p.step, p.steps, p.elapsed, &p, NULL, NULL, NULL};
        if (o && o->step && o->step(o->user, &rep)) {
            if (!dp)
                return stop(t, R1_ECANCELED, err);
            t->stop_asked = 1;
        }
    }
    return R1_OK;
}

r1_status r1_sft_set_comm(r1_sft *t, const r1_comm *c, r1_error *err)
{
    if (c && c->size > t->s.batch)
        return r1_error_set(err, R1_EINVAL, "%s: batch %d is smaller than the %d ranks; each "
                            "rank needs a row at least", r1_sft_stage_name(t->s.stage),
                            t->s.batch, c->size);
    t->comm = c;
    return R1_OK;
}

void r1_sft_set_precision(r1_sft *t, r1_precision p)
{
    t->s.precision = p;
}

r1_model *r1_sft_model(r1_sft *t)
{
    return t->m;
}

const r1_tokenizer *r1_sft_tokenizer(const r1_sft *t)
{
    return t->tok;
}

const r1_sft_settings *r1_sft_get_settings(const r1_sft *t)
{
    return &t->s;
}

r1_sft_data *r1_sft_get_data(r1_sft *t)
{
    return t->d;
}

int64_t r1_sft_step_count(const r1_sft *t)
{
    return t->step;
}

int64_t r1_sft_data_pos(const r1_sft *t)
{
    return t->pos;
}
