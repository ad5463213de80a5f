/* reject.c — rejection sampling into a JSONL training set (see r1_reject.h). */
#include <config.h>

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "atomic_file.h"
#include "r1_reject.h"
#include "r1_rewards.h"

r1_reject_cfg r1_reject_defaults(void)
{
    r1_reject_cfg c;
    memset(&c, 0, sizeof c);
    c.prompts = 64;
    c.k = 8;
    c.keep_per_prompt = 2;
    c.temperature = 0.8f;
    c.max_new = 192;
    c.min_language = 0.9;
    c.direct_share = 0.1;
    c.seed = 1;
    c.batch_prompts = 8;
    c.ntasks = 1; /* addition at its training difficulty, as r1.reject_sample's default */
    r1_task_find(&c.tasks[0], "add", NULL);
    c.difficulty[0] = r1_task_train_difficulty(c.tasks[0]);
    return c;
}


/* ------------------------------------------------------------------ the settings table */

r1_status r1_reject_parse_tasks(r1_reject_cfg *c, const char *spec, r1_error *err)
{
    r1_reject_cfg v = *c;
    v.ntasks = 0;
    if (!spec || !*spec)
        return r1_error_set(err, R1_EINVAL, "tasks: the list is empty");
    for (const char *p = spec;;) {
        size_t len = strcspn(p, ",");
        const r1_task *t;
        int lo, hi;
        r1_status st = r1_task_parse_entry(p, len, &t, &lo, &hi, err);
        if (st != R1_OK) {
            r1_error_prefix(err, "tasks: entry %d", v.ntasks + 1);
            return st;
        }
        if (lo == 0) /* a bare name: the task's training difficulty */
            lo = hi = r1_task_train_difficulty(t);
        for (int d = lo; d <= hi; d++) { /* a range: one entry per difficulty */
            if (v.ntasks == R1_REJECT_MAX_TASKS)
                return r1_error_set(err, R1_EINVAL, "tasks: more than %d entries (a range "
                                    "counts one per difficulty)", R1_REJECT_MAX_TASKS);
            v.tasks[v.ntasks] = t;
            v.difficulty[v.ntasks++] = d;
        }
        if (!p[len])
            break;
        p += len + 1;
    }
    *c = v;
    return R1_OK;
}

static r1_status parse_tasks(void *c, const char *t, r1_error *e)
{
    return r1_reject_parse_tasks(c, t, e);
}

static void format_tasks(const void *cv, char *buf, size_t cap)
{
    const r1_reject_cfg *c = cv;
    size_t k = 0;
    if (cap)
        buf[0] = 0;
    for (int i = 0; i < c->ntasks && k < cap; i++) {
        int w = snprintf(buf + k, cap - k, "%s%s:%d", i ? "," : "", r1_task_name(c->tasks[i]),
                         c->difficulty[i]);
        if (w < 0)
            break;
        k += (size_t)w;
    }
}

#define F(field) offsetof(r1_reject_cfg, field)
static const r1_setting reject_settings[] = {
    {"tasks", R1_SET_TEXT, 0, 0, 0, NULL,
     "tasks the prompts cycle through: NAME[:D|:LO-HI],... (a range: one entry per difficulty)",
     NULL, parse_tasks, format_tasks},
    {"prompts", R1_SET_INT, F(prompts), 1, 1e6, NULL, "prompts to sample", NULL, NULL, NULL},
    {"k", R1_SET_INT, F(k), 1, 1024, NULL, "completions per prompt", NULL, NULL, NULL},
    {"keep", R1_SET_INT, F(keep_per_prompt), 1, 1024, NULL,
     "at most this many kept per prompt", NULL, NULL, NULL},
    {"temperature", R1_SET_FLOAT, F(temperature), 0, 100, NULL, "sampling temperature", NULL,
     NULL, NULL},
    {"max_new", R1_SET_INT, F(max_new), 1, 65536, NULL, "completion length limit", NULL, NULL,
     NULL},
    {"min_language", R1_SET_DOUBLE, F(min_language), 0, 1, NULL,
     "share of requested-language words a kept reasoning needs", NULL, NULL, NULL},
    {"direct_share", R1_SET_DOUBLE, F(direct_share), 0, 1, NULL,
     "share of difficulty-1 prompts that also get a direct answer", NULL, NULL, NULL},
    {"seed", R1_SET_SEED, F(seed), 0, 0, NULL, "seed of the prompts and the sampling", NULL,
     NULL, NULL},
    {"batch_prompts", R1_SET_INT, F(batch_prompts), 1, 4096, NULL,
     "prompts per generation batch", NULL, NULL, NULL},
};
#undef F

const r1_settings_table r1_reject_settings_tbl = {
    "reject", reject_settings, sizeof reject_settings / sizeof *reject_settings};

const r1_settings_table *r1_reject_settings_table(void)
{
    return &r1_reject_settings_tbl;
}

/* ------------------------------------------------------------------ sampling */

/* Prompt number i of the run: its task, difficulty and sample. */
static const r1_task *prompt_sample(const r1_reject_cfg *c, int i, r1_task_sample *s)
{
    int t = i % c->ntasks;
    /* the seeds live in their own range: not the held-out set (top bit) nor GRPO's */
    r1_task_generate(c->tasks[t], 0x7e1ec70000ull + c->seed * 1000003ull + (uint64_t)i,
                     c->difficulty[t], R1_LANG_AUTO, s, NULL);
    return c->tasks[t];
}

static r1_status write_line(r1_afile *a, json_t *o, r1_error *err)
{
    char *text = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(o);
    if (!text)
        return r1_error_set(err, R1_ENOMEM, "out of memory");
    r1_status s = r1_afile_write(a, text, strlen(text), err);
    if (s == R1_OK)
        s = r1_afile_write(a, "\n", 1, err);
    free(text);
    return s;
}

static json_t *record(const r1_task_sample *s, const char *completion, int direct, double acc,
                      double fmt, double lang)
{
    json_t *o = json_object(), *rw = json_object();
    json_object_set_new(o, "prompt", json_string(s->prompt));
    json_object_set_new(o, "completion", json_string(completion));
    json_object_set_new(o, "task", json_string(r1_task_name(s->task)));
    json_object_set_new(o, "difficulty", json_integer(s->difficulty));
    json_object_set_new(o, "lang", json_string(r1_lang_name(s->lang)));
    json_object_set_new(o, "target", json_string(s->answer));
    json_object_set_new(o, "direct", json_boolean(direct));
    json_object_set_new(rw, "accuracy", json_real(acc));
    json_object_set_new(rw, "format", json_real(fmt));
    json_object_set_new(rw, "language", json_real(lang));
    json_object_set_new(o, "rewards", rw);
    return o;
}

r1_status r1_reject_sample(r1_model *m, const r1_tokenizer *tok, const r1_reject_cfg *c,
                           const char *out, const r1_observer *obs,
                           r1_reject_stats *stp, r1_error *err)
{
    if (c->ntasks < 1 || c->ntasks > R1_REJECT_MAX_TASKS || c->prompts < 1 || c->k < 1 ||
        c->keep_per_prompt < 1 || c->max_new < 1 || c->batch_prompts < 1)
        return r1_error_set(err, R1_EINVAL,
                            "reject: tasks (1..%d), prompts, k, keep_per_prompt, max_new and "
                            "batch_prompts must be >= 1",
                            R1_REJECT_MAX_TASKS);
    r1_reject_stats st;
    memset(&st, 0, sizeof st);
    double t0 = r1_now();
    r1_afile a;
    r1_status s = r1_afile_open(&a, out, err);
    if (s != R1_OK)
        return s;
    int P = c->batch_prompts, cap = r1_model_config(m)->max_position_embeddings;
    r1_task_sample *samples = calloc(P, sizeof(r1_task_sample));
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)P * cap);
    const int32_t **ps = malloc(sizeof(int32_t *) * (size_t)P * c->k);
    int *lens = malloc(sizeof(int) * (size_t)P * c->k);
    char **kept = calloc(c->keep_per_prompt, sizeof(char *));
    if (!samples || !ids || !ps || !lens || !kept)
        s = r1_error_set(err, R1_ENOMEM, "out of memory");
    long direct_due = 0;
    for (int p0 = 0; s == R1_OK && p0 < c->prompts; p0 += P) {
        int np = c->prompts - p0 < P ? c->prompts - p0 : P;
        for (int i = 0; s == R1_OK && i < np; i++) {
            prompt_sample(c, p0 + i, &samples[i]);
            int n = 0;
            s = r1_tokenizer_encode_prompt(tok, samples[i].prompt, ids + (size_t)i * cap,
                                           cap - c->max_new, &n, err);
            for (int j = 0; j < c->k; j++) {
                ps[i * c->k + j] = ids + (size_t)i * cap;
                lens[i * c->k + j] = n;
            }
        }
        if (s != R1_OK)
            break;
        r1_gen_cfg gc = r1_gen_defaults();
        gc.max_tokens = c->max_new;
        gc.temperature = c->temperature;
        gc.seed = c->seed * 7919 + (uint64_t)p0;
        int32_t stop = R1_TOK_EOS;
        gc.stop_ids = &stop;
        gc.n_stop_ids = 1;
        r1_gen_result *res = NULL;
        s = r1_generate(m, ps, lens, np * c->k, &gc, NULL, &res, err);
        for (int i = 0; s == R1_OK && i < np; i++) {
            int nk = 0;
            r1_task_sample *smp = &samples[i];
            for (int j = 0; s == R1_OK && j < c->k; j++) {
                r1_gen_row *o = &res->row[i * c->k + j];
                char *text = NULL;
                if ((s = r1_tokenizer_decode(tok, o->tokens, o->n, &text, err)) != R1_OK)
                    break;
                st.sampled++;
                r1_reward_sample rs = {smp->prompt, text, NULL, NULL, smp->answer, smp->task,
                                       smp->lang, o->n, c->max_new};
                double acc = r1_reward_accuracy(&rs, NULL), fmt = r1_reward_format(&rs, NULL);
                double lang = r1_reward_language(&rs, NULL);
                st.correct += acc > 0.5;
                st.well_formed += fmt > 0.5;
                st.in_language += lang >= c->min_language;
                int dup = 0;
                for (int q = 0; q < nk; q++)
                    dup |= strcmp(kept[q], text) == 0;
                st.duplicates += dup && acc > 0.5 && fmt > 0.5;
                if (acc > 0.5 && fmt > 0.5 && lang >= c->min_language && !dup &&
                    nk < c->keep_per_prompt) {
                    s = write_line(&a, record(smp, text, 0, acc, fmt, lang), err);
                    kept[nk++] = text;
                    st.kept++;
                    text = NULL;
                }
                free(text);
            }
            for (int q = 0; q < nk; q++) {
                free(kept[q]);
                kept[q] = NULL;
            }
            /* non-reasoning samples: a share of the easiest problems answered directly */
            direct_due += smp->difficulty == 1;
            if (s == R1_OK && c->direct_share > 0 && smp->difficulty == 1 &&
                st.direct < (long)(c->direct_share * direct_due + 0.5)) {
                char comp[R1_TASK_ANSWER_MAX + 64];
                snprintf(comp, sizeof comp, "</think><answer>%s</answer><|eos|>", smp->answer);
                s = write_line(&a, record(smp, comp, 1, 1, 1, 1), err);
                st.direct++;
            }
        }
        r1_gen_result_free(res);
        st.seconds = r1_now() - t0;
        r1_step_report rep = {"reject", p0 + np, c->prompts, st.seconds, NULL, NULL, NULL, &st};
        if (s == R1_OK && (r1_interrupted() || (obs && obs->step && obs->step(obs->user, &rep))))
            s = r1_error_set(err, R1_ECANCELED, "rejection sampling canceled");
    }
    free(samples), free(ids), free(ps), free(lens), free(kept);
    st.seconds = r1_now() - t0;
    if (stp)
        *stp = st;
    if (s != R1_OK) {
        r1_afile_abort(&a);
        return s;
    }
    return r1_afile_commit(&a, err);
}
