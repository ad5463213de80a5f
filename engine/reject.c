/* reject.c — rejection sampling into a JSONL training set (see r1_reject.h). */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "atomic_file.h"
#include "json_util.h"
#include "r1_comm.h"
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
    {"typed_frac", R1_SET_DOUBLE, F(typed_frac), 0, 1, NULL,
     "share of prompts phrased as people type them", NULL, NULL, NULL},
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
    uint64_t seed = 0x7e1ec70000ull + c->seed * 1000003ull + (uint64_t)i;
    r1_task_generate_phrased(c->tasks[t], seed, c->difficulty[t], R1_LANG_AUTO,
                             r1_phrasing_for(seed, c->typed_frac), s, NULL);
    return c->tasks[t];
}

static r1_status write_line(FILE *f, const char *path, json_t *o, r1_error *err)
{
    char *text = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(o);
    if (!text)
        return r1_error_set(err, R1_ENOMEM, "out of memory");
    r1_status s = R1_OK;
    size_t n = strlen(text);
    text[n] = '\n'; /* the terminating NUL becomes the line's end */
    if (fwrite(text, 1, n + 1, f) != n + 1)
        s = r1_error_set(err, R1_EIO, "%s: cannot write: %s", path, strerror(errno));
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

/* ------------------------------------------------------------------ the run and its state
 *
 * The kept records go to OUT.part, flushed and synced after every generation batch; after it
 * OUT.part.json (written whole and renamed) records how far the run got: prompts done, the
 * length of OUT.part that belongs to them, the counts, the settings and the model's folder.
 * The last batch renames OUT.part to OUT and removes the state.  A run stopped anywhere (Ctrl-C,
 * kill -9, a failure) resumes from the state: OUT.part is cut back to its recorded length and
 * the prompts after it are sampled as they would have been (every batch is seeded by its first
 * prompt), so the file comes out byte for byte as an uninterrupted run's. */

typedef struct {
    int64_t prompts_done;
    int64_t bytes;
    long direct_due;
    r1_reject_stats st;
    double seconds_before;
} progress;

static void state_path(const char *out, const char *suffix, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s%s", out, suffix);
}

static r1_status save_state(const char *out, const r1_reject_cfg *c, const progress *p,
                            r1_error *err)
{
    char *sj = r1_settings_json(r1_reject_settings_table(), c);
    json_t *set = sj ? json_loads(sj, 0, NULL) : NULL;
    free(sj);
    json_t *o = json_object(), *st = json_object();
    if (!set || !o || !st) {
        json_decref(set), json_decref(o), json_decref(st);
        return r1_error_set(err, R1_ENOMEM, "out of memory");
    }
    json_object_set_new(o, "stage", json_string("reject"));
    json_object_set_new(o, "prompts_done", json_integer(p->prompts_done));
    json_object_set_new(o, "bytes", json_integer(p->bytes));
    json_object_set_new(o, "direct_due", json_integer(p->direct_due));
    json_object_set_new(o, "threads", json_integer(r1_threads())); /* resume's default */
    json_object_set_new(o, "machine", r1_machine_json());
    json_object_set_new(st, "sampled", json_integer(p->st.sampled));
    json_object_set_new(st, "correct", json_integer(p->st.correct));
    json_object_set_new(st, "well_formed", json_integer(p->st.well_formed));
    json_object_set_new(st, "in_language", json_integer(p->st.in_language));
    json_object_set_new(st, "kept", json_integer(p->st.kept));
    json_object_set_new(st, "duplicates", json_integer(p->st.duplicates));
    json_object_set_new(st, "direct", json_integer(p->st.direct));
    json_object_set_new(st, "seconds", json_real(p->st.seconds));
    json_object_set_new(o, "stats", st);
    json_object_set_new(o, "settings", set);
    json_object_set_new(o, "model", c->model[0] ? json_string(c->model) : json_null());
    char *text = json_dumps(o, JSON_INDENT(1) | JSON_REAL_PRECISION(17));
    json_decref(o);
    if (!text)
        return r1_error_set(err, R1_ENOMEM, "out of memory");
    char path[R1_REJECT_PATH_MAX + 16];
    state_path(out, ".part.json", path, sizeof path);
    r1_afile a;
    r1_status s = r1_afile_open(&a, path, err);
    if (s == R1_OK && (s = r1_afile_write(&a, text, strlen(text), err)) == R1_OK)
        s = r1_afile_commit(&a, err);
    else
        r1_afile_abort(&a);
    free(text);
    return s;
}

static long get_int(json_t *o, const char *k, int *bad)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        *bad = 1;
        return 0;
    }
    return (long)json_integer_value(v);
}

/* Reads OUT.part.json into *c (settings, model) and *p.  R1_ENOTFOUND when there is none. */
static r1_status load_state(const char *out, r1_reject_cfg *c, progress *p, r1_error *err)
{
    char path[R1_REJECT_PATH_MAX + 16];
    state_path(out, ".part.json", path, sizeof path);
    json_error_t je;
    json_t *o = json_load_file(path, 0, &je);
    if (!o) {
        if (access(path, F_OK) != 0)
            return r1_error_set(err, R1_ENOTFOUND, "%s: no unfinished rejection sampling to "
                                "resume (no %s)", out, path);
        return r1_error_set(err, R1_EFORMAT, "%s:%d: %s", path, je.line, je.text);
    }
    memset(p, 0, sizeof *p);
    *c = r1_reject_defaults();
    json_t *set = json_object_get(o, "settings"), *st = json_object_get(o, "stats");
    json_t *model = json_object_get(o, "model");
    r1_status s = R1_OK;
    int bad = !json_is_object(set) || !json_is_object(st) ||
              (model && !json_is_null(model) && !json_is_string(model));
    if (!bad) {
        p->prompts_done = get_int(o, "prompts_done", &bad);
        p->bytes = get_int(o, "bytes", &bad);
        p->direct_due = get_int(o, "direct_due", &bad);
        p->st.sampled = get_int(st, "sampled", &bad);
        p->st.correct = get_int(st, "correct", &bad);
        p->st.well_formed = get_int(st, "well_formed", &bad);
        p->st.in_language = get_int(st, "in_language", &bad);
        p->st.kept = get_int(st, "kept", &bad);
        p->st.duplicates = get_int(st, "duplicates", &bad);
        p->st.direct = get_int(st, "direct", &bad);
        json_t *sec = json_object_get(st, "seconds");
        p->seconds_before = json_is_number(sec) ? json_number_value(sec) : 0;
    }
    if (bad)
        s = r1_error_set(err, R1_EFORMAT, "%s: expected \"prompts_done\", \"bytes\", "
                         "\"direct_due\" (integers >= 0), \"stats\" and \"settings\" (objects) "
                         "and \"model\" (a path or null)", path);
    char *sj = s == R1_OK ? json_dumps(set, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    if (s == R1_OK && !sj)
        s = r1_error_set(err, R1_ENOMEM, "out of memory");
    if (s == R1_OK)
        s = r1_settings_parse_json(r1_reject_settings_table(), c, sj, NULL, path, err);
    free(sj);
    if (s == R1_OK && json_is_string(model))
        snprintf(c->model, sizeof c->model, "%s", json_string_value(model));
    if (s == R1_OK && p->prompts_done > c->prompts)
        s = r1_error_set(err, R1_EFORMAT, "%s: %lld prompts done of %d", path,
                         (long long)p->prompts_done, c->prompts);
    json_decref(o);
    return s;
}

r1_status r1_reject_pending(const char *out, r1_reject_cfg *c, r1_error *err)
{
    progress p;
    return load_state(out, c, &p, err);
}

/* ------------------------------------------------------------------ data parallelism
 *
 * Under mpirun every rank samples its share of each batch's prompts (whole groups of k, with
 * the sampling streams numbered by the row's place in the whole batch, so the completions do not
 * depend on the number of ranks), the completions are gathered on every rank, and every rank
 * filters the whole batch the same way; rank 0 alone writes the file and its state. */

static const r1_comm *rej_comm;

void r1_reject_set_comm(const r1_comm *c)
{
    rej_comm = c;
}

/* the batch's completions, rows [0, R): this rank's rows [r0, r0 + n) in res */
typedef struct {
    char **text;
    int *ntok;
} batch_rows;

/* Decodes this rank's rows, gathers every rank's and splits them into b (R rows). */
static r1_status gather_rows(const r1_comm *comm, const r1_tokenizer *tok,
                             const r1_gen_result *res, int n, int R, batch_rows *b,
                             r1_error *err)
{
    /* each row as its token count (4 bytes) and its text with the NUL */
    size_t cap = 0, at = 0;
    char *mine = NULL;
    r1_status s = R1_OK;
    for (int i = 0; s == R1_OK && i < n; i++) {
        char *text = NULL;
        if ((s = r1_tokenizer_decode(tok, res->row[i].tokens, res->row[i].n, &text, err)) !=
            R1_OK)
            break;
        size_t len = strlen(text) + 1;
        if (at + 4 + len > cap) {
            size_t nc = (at + 4 + len) * 2;
            char *g = realloc(mine, nc);
            if (!g) {
                free(text);
                s = r1_error_set(err, R1_ENOMEM, "out of memory");
                break;
            }
            mine = g, cap = nc;
        }
        int32_t nt = res->row[i].n;
        memcpy(mine + at, &nt, 4);
        memcpy(mine + at + 4, text, len);
        at += 4 + len;
        free(text);
    }
    char *all = NULL;
    size_t total = 0;
    if (s == R1_OK)
        s = r1_comm_gather(comm, mine, at, &all, &total, err);
    free(mine);
    size_t p = 0;
    for (int i = 0; s == R1_OK && i < R; i++) {
        const char *nul = p + 4 < total ? memchr(all + p + 4, 0, total - p - 4) : NULL;
        if (!nul) {
            s = r1_error_set(err, R1_EIO, "reject: the gathered completions end at row %d "
                             "of %d", i, R);
            break;
        }
        int32_t nt;
        memcpy(&nt, all + p, 4);
        b->ntok[i] = nt;
        if (!(b->text[i] = strdup(all + p + 4)))
            s = r1_error_set(err, R1_ENOMEM, "out of memory");
        p = (size_t)(nul - all) + 1;
    }
    free(all);
    return s;
}

/* The batches from pr->prompts_done on; f (rank 0 alone, else NULL) gets the kept records,
 * and the state is saved after every batch. */
static r1_status sample_batches(r1_model *m, const r1_tokenizer *tok, const r1_reject_cfg *c,
                                FILE *f, const char *part, const char *out, progress *pr,
                                const r1_observer *obs, r1_reject_stats *stp, r1_error *err)
{
    const r1_comm *comm = rej_comm;
    r1_reject_stats st = pr->st;
    double t0 = r1_now();
    r1_status s = R1_OK;
    int P = c->batch_prompts, K = c->k, cap = r1_model_config(m)->max_position_embeddings;
    r1_task_sample *samples = calloc(P, sizeof(r1_task_sample));
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)P * cap);
    const int32_t **ps = malloc(sizeof(int32_t *) * (size_t)P * K);
    int *lens = malloc(sizeof(int) * (size_t)P * K);
    char **kept = calloc(c->keep_per_prompt, sizeof(char *));
    batch_rows b = {calloc((size_t)P * K, sizeof(char *)), malloc(sizeof(int) * (size_t)P * K)};
    if (!samples || !ids || !ps || !lens || !kept || !b.text || !b.ntok)
        s = r1_error_set(err, R1_ENOMEM, "out of memory");
    long direct_due = pr->direct_due;
    for (int p0 = (int)pr->prompts_done; s == R1_OK && p0 < c->prompts; p0 += P) {
        int np = c->prompts - p0 < P ? c->prompts - p0 : P;
        for (int i = 0; s == R1_OK && i < np; i++) {
            prompt_sample(c, p0 + i, &samples[i]);
            int n = 0;
            s = r1_tokenizer_encode_prompt(tok, samples[i].prompt, ids + (size_t)i * cap,
                                           cap - c->max_new, &n, err);
            for (int j = 0; j < K; j++) {
                ps[i * K + j] = ids + (size_t)i * cap;
                lens[i * K + j] = n;
            }
        }
        if (s != R1_OK)
            break;
        /* this rank's prompts of the batch (all of them with one process) */
        int lo, hi;
        r1_comm_rows(comm, np, &lo, &hi);
        r1_gen_cfg gc = r1_gen_defaults();
        gc.max_tokens = c->max_new;
        gc.temperature = c->temperature;
        gc.seed = c->seed * 7919 + (uint64_t)p0;
        gc.row0 = (int64_t)lo * K;
        int32_t stop = R1_TOK_EOS;
        gc.stop_ids = &stop;
        gc.n_stop_ids = 1;
        r1_gen_result *res = NULL;
        if (hi > lo)
            s = r1_generate(m, ps + (size_t)lo * K, lens + (size_t)lo * K, (hi - lo) * K, &gc,
                            NULL, &res, err);
        if (s == R1_OK)
            s = gather_rows(comm, tok, res, res ? (hi - lo) * K : 0, np * K, &b, err);
        r1_gen_result_free(res);
        for (int i = 0; s == R1_OK && i < np; i++) {
            int nk = 0;
            r1_task_sample *smp = &samples[i];
            for (int j = 0; s == R1_OK && j < K; j++) {
                char *text = b.text[i * K + j];
                b.text[i * K + j] = NULL;
                st.sampled++;
                r1_reward_sample rs = {smp->prompt, text, NULL, NULL, smp->answer, smp->task,
                                       smp->lang, b.ntok[i * K + j], c->max_new, 0};
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
                    json_t *rec = record(smp, text, 0, acc, fmt, lang);
                    s = f ? write_line(f, part, rec, err) : (json_decref(rec), R1_OK);
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
                json_t *rec = record(smp, comp, 1, 1, 1, 1);
                s = f ? write_line(f, part, rec, err) : (json_decref(rec), R1_OK);
                st.direct++;
            }
        }
        for (int i = 0; i < np * K; i++) { /* what an error left */
            free(b.text[i]);
            b.text[i] = NULL;
        }
        st.seconds = pr->seconds_before + r1_now() - t0;
        /* the batch is on disk, then the state says so */
        if (s == R1_OK && f && (fflush(f) != 0 || fsync(fileno(f)) != 0))
            s = r1_error_set(err, R1_EIO, "%s: cannot write: %s", part, strerror(errno));
        struct stat fb; /* the size on disk (an append stream's ftell may say 0) */
        if (s == R1_OK && f && fstat(fileno(f), &fb) != 0)
            s = r1_error_set(err, R1_EIO, "%s: %s", part, strerror(errno));
        if (s == R1_OK) {
            pr->prompts_done = p0 + np;
            pr->bytes = f ? (int64_t)fb.st_size : 0;
            pr->direct_due = direct_due;
            pr->st = st;
            if (f)
                s = save_state(out, c, pr, err);
        }
        r1_step_report rep = {"reject", p0 + np, c->prompts, st.seconds, NULL, NULL, NULL, &st};
        int more = s == R1_OK && p0 + np < c->prompts;
        int halt = more && (r1_interrupted() || (obs && obs->step && obs->step(obs->user, &rep)));
        if (more && comm && comm->size > 1) { /* all ranks stop after the same batch */
            double h = halt;
            s = r1_comm_sum_f64(comm, &h, 1, err);
            halt = h > 0;
        }
        if (s == R1_OK && halt)
            s = r1_error_set(err, R1_ECANCELED, "rejection sampling stopped after %d of %d "
                             "prompts (kept so far in %s)", p0 + np, c->prompts, part);
        else if (s == R1_OK && p0 + np == c->prompts && obs && obs->step)
            obs->step(obs->user, &rep);
    }
    free(samples), free(ids), free(ps), free(lens), free(kept), free(b.text), free(b.ntok);
    st.seconds = pr->seconds_before + r1_now() - t0;
    if (stp)
        *stp = st;
    return s;
}

static r1_status sample_run(r1_model *m, const r1_tokenizer *tok, const r1_reject_cfg *c,
                            const char *out, const progress *from, const r1_observer *obs,
                            r1_reject_stats *stp, r1_error *err)
{
    if (c->ntasks < 1 || c->ntasks > R1_REJECT_MAX_TASKS || c->prompts < 1 || c->k < 1 ||
        c->keep_per_prompt < 1 || c->max_new < 1 || c->batch_prompts < 1)
        return r1_error_set(err, R1_EINVAL,
                            "reject: tasks (1..%d), prompts, k, keep_per_prompt, max_new and "
                            "batch_prompts must be >= 1",
                            R1_REJECT_MAX_TASKS);
    if (strlen(out) >= R1_REJECT_PATH_MAX)
        return r1_error_set(err, R1_EINVAL, "reject: the output path is longer than %d bytes",
                            R1_REJECT_PATH_MAX - 1);
    const r1_comm *comm = rej_comm;
    int lead = r1_comm_leads(comm);
    progress pr;
    memset(&pr, 0, sizeof pr);
    if (from)
        pr = *from;
    /* OUT.part is renamed over OUT at the end: a device or a FIFO there (/dev/null) would be
     * replaced by a plain file (as root, the system's /dev/null), so only a file will do */
    struct stat ob;
    if (stat(out, &ob) == 0 && !S_ISREG(ob.st_mode))
        return r1_error_set(err, R1_EINVAL, "%s: exists and is not a regular file; rejection "
                            "sampling writes a new file there (give a file path)", out);
    char part[R1_REJECT_PATH_MAX + 16], spath[R1_REJECT_PATH_MAX + 16];
    state_path(out, ".part", part, sizeof part);
    state_path(out, ".part.json", spath, sizeof spath);
    if (lead && !from && access(spath, F_OK) == 0)
        return r1_error_set(err, R1_EINVAL, "%s: an unfinished rejection sampling into this "
                            "file is waiting (%s); resume it, or remove %s and %s", out, spath,
                            spath, part);
    /* a new run starts OUT.part afresh; a resumed one cuts it back to its recorded length */
    if (!lead)
        return sample_batches(m, tok, c, NULL, part, out, &pr, obs, stp, err);
    int fd = open(part, from ? O_WRONLY | O_CLOEXEC : O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                  0666);
    if (fd < 0)
        return r1_error_set(err, R1_EIO, "%s: cannot %s: %s", part, from ? "open" : "create",
                            strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || (from && sb.st_size < pr.bytes) ||
        (from && ftruncate(fd, (off_t)pr.bytes) != 0)) {
        int e = errno;
        close(fd);
        if (from && sb.st_size < pr.bytes)
            return r1_error_set(err, R1_EFORMAT, "%s: %lld bytes, but the state (%s) records "
                                "%lld", part, (long long)sb.st_size, spath,
                                (long long)pr.bytes);
        return r1_error_set(err, R1_EIO, "%s: %s", part, S_ISREG(sb.st_mode) ? strerror(e)
                                                                              : "not a regular file");
    }
    FILE *f = fdopen(fd, "a");
    if (!f) {
        close(fd);
        return r1_error_set(err, R1_ENOMEM, "out of memory");
    }
    r1_status s = R1_OK;
    if (!from) /* the state from the start: a kill before the first batch still resumes */
        s = save_state(out, c, &pr, err);
    if (s == R1_OK)
        s = sample_batches(m, tok, c, f, part, out, &pr, obs, stp, err);
    if (fclose(f) != 0 && s == R1_OK)
        s = r1_error_set(err, R1_EIO, "%s: cannot write: %s", part, strerror(errno));
    if (s != R1_OK)
        return s; /* OUT.part and its state stay: r1_reject_resume continues */
    if (rename(part, out) != 0)
        return r1_error_set(err, R1_EIO, "%s: cannot rename to %s: %s", part, out,
                            strerror(errno));
    unlink(spath);
    return R1_OK;
}

r1_status r1_reject_sample(r1_model *m, const r1_tokenizer *tok, const r1_reject_cfg *c,
                           const char *out, const r1_observer *o, r1_reject_stats *st,
                           r1_error *err)
{
    return sample_run(m, tok, c, out, NULL, o, st, err);
}

r1_status r1_reject_resume(r1_model *m, const r1_tokenizer *tok, const char *out,
                           const r1_observer *o, r1_reject_stats *st, r1_error *err)
{
    r1_reject_cfg c;
    progress p;
    r1_status s = load_state(out, &c, &p, err);
    if (s != R1_OK)
        return s;
    return sample_run(m, tok, &c, out, &p, o, st, err);
}
