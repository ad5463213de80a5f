/* sft_settings.c — the settings of the pretraining and cold-start SFT stages: defaults, the
 * task-mixture syntax, validation and JSON (stored in checkpoints so that a run resumes with
 * exactly its own settings).  See r1_sft.h.
 *
 * Errors: R1_EINVAL / R1_ENOTFOUND naming the setting or the mixture entry; R1_EFORMAT naming
 * the JSON key.  Nothing allocates except r1_sft_settings_json (the caller frees). */
#include <config.h>

#include <assert.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "r1_sft.h"

const char *r1_sft_stage_name(r1_sft_stage stage)
{
    return stage == R1_SFT_COLDSTART ? "sft" : "pretrain";
}

r1_status r1_sft_stage_parse(r1_sft_stage *out, const char *name, r1_error *err)
{
    if (name && strcmp(name, "pretrain") == 0)
        *out = R1_SFT_PRETRAIN;
    else if (name && strcmp(name, "sft") == 0)
        *out = R1_SFT_COLDSTART;
    else
        return r1_error_set(err, R1_EINVAL, "stage \"%s\": expected pretrain or sft",
                            name ? name : "(null)");
    return R1_OK;
}

/* The recipe that trains the tiny preset (README.md, "Pretraining and cold-start SFT").
 * Addition carries the most weight because it is what the first RL stage starts from; the
 * other tasks stay at their easy end so that the model knows their format. */
#define DEFAULT_TASKS "add:1-3@4,mul:1-2,linear:1-2,sort:1-2,bool:1-2,countdown:1"

r1_sft_settings r1_sft_defaults(r1_sft_stage stage)
{
    r1_sft_settings s;
    memset(&s, 0, sizeof s);
    s.stage = stage;
    s.seq_len = 256;
    s.batch = 16;
    s.opt = r1_adamw_defaults();
    s.opt.weight_decay = 0.1f;
    s.opt.clip = 1.0f;
    s.mtp_lambda = 0.3f;
    s.balance_gamma = 1e-3f;
    s.seed = 1;
    s.eval_n = 16;
    s.eval_above = 2;
    if (stage == R1_SFT_PRETRAIN) {
        s.steps = 1000;
        s.opt.lr = 2e-3f;
        s.opt.min_lr = 2e-4f;
        s.opt.warmup = 50;
        s.plain_frac = 0.25;
        s.mix_frac = 0.2;
        s.eval_every = 250;
        s.ckpt_every = 250;
    } else {
        s.steps = 300;
        s.opt.lr = 5e-4f;
        s.opt.min_lr = 5e-5f;
        s.opt.warmup = 20;
        s.sft_docs = 4096;
        s.eval_every = 100;
        s.ckpt_every = 100;
    }
    s.opt.total = s.steps;
    r1_status st = r1_sft_parse_tasks(&s, DEFAULT_TASKS, NULL);
    (void)st;
    assert(st == R1_OK);
    return s;
}

/* ------------------------------------------------------------------ the mixture syntax */

static int parse_uint(const char **p, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(*p, &end, 10);
    if (end == *p || errno || v < 0 || **p == '-' || **p == '+')
        return 0;
    *p = end;
    *out = v;
    return 1;
}

/* One entry "NAME[:D|:DMIN-DMAX][@WEIGHT]" of length len at e. */
static r1_status parse_entry(r1_sft_task *out, const char *e, size_t len, r1_error *err)
{
    char buf[128];
    if (len == 0 || len >= sizeof buf)
        return r1_error_set(err, R1_EINVAL, "tasks: entry \"%.*s\" is empty or too long",
                            (int)(len < 60 ? len : 60), e);
    memcpy(buf, e, len);
    buf[len] = 0;
    char *at = strchr(buf, '@'), *colon = strchr(buf, ':');
    if (at)
        *at++ = 0;
    if (colon && (!at || colon < at))
        *colon++ = 0;
    else
        colon = NULL;
    const r1_task *t;
    r1_status s = r1_task_find(&t, buf, err);
    if (s != R1_OK) {
        r1_error_prefix(err, "tasks: entry \"%.*s\"", (int)len, e);
        return s;
    }
    int max = r1_task_max_difficulty(t);
    long lo = 1, hi = r1_task_train_difficulty(t);
    if (colon) {
        const char *p = colon;
        if (!parse_uint(&p, &lo))
            goto bad;
        hi = lo;
        if (*p == '-') {
            p++;
            if (!parse_uint(&p, &hi))
                goto bad;
        }
        if (*p)
            goto bad;
    }
    if (lo < 1 || hi < lo || hi > max)
        return r1_error_set(err, R1_EINVAL,
                            "tasks: entry \"%.*s\": difficulties %ld-%ld; %s has 1..%d", (int)len,
                            e, lo, hi, r1_task_name(t), max);
    double w = 1;
    if (at) {
        char *end;
        w = strtod(at, &end);
        if (!*at || *end || !(w > 0 && w < 1e6))
            return r1_error_set(err, R1_EINVAL,
                                "tasks: entry \"%.*s\": weight should be a number > 0", (int)len,
                                e);
    }
    out->task = t;
    out->dmin = (int)lo;
    out->dmax = (int)hi;
    out->weight = w;
    return R1_OK;
bad:
    return r1_error_set(err, R1_EINVAL,
                        "tasks: entry \"%.*s\": expected NAME[:D|:DMIN-DMAX][@WEIGHT]", (int)len,
                        e);
}

r1_status r1_sft_parse_tasks(r1_sft_settings *s, const char *spec, r1_error *err)
{
    r1_sft_task tasks[R1_SFT_MAX_TASKS];
    int n = 0;
    if (!spec || !*spec)
        return r1_error_set(err, R1_EINVAL, "tasks: the list is empty");
    for (const char *p = spec;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (n == R1_SFT_MAX_TASKS)
            return r1_error_set(err, R1_EINVAL, "tasks: more than %d entries", R1_SFT_MAX_TASKS);
        r1_status st = parse_entry(&tasks[n], p, len, err);
        if (st != R1_OK)
            return st;
        for (int i = 0; i < n; i++) /* "add:1-3@6,add:4" weighs difficulties differently */
            if (tasks[i].task == tasks[n].task && tasks[i].dmin <= tasks[n].dmax &&
                tasks[n].dmin <= tasks[i].dmax)
                return r1_error_set(err, R1_EINVAL,
                                    "tasks: %s is listed twice with overlapping difficulties "
                                    "(%d-%d and %d-%d)",
                                    r1_task_name(tasks[n].task), tasks[i].dmin, tasks[i].dmax,
                                    tasks[n].dmin, tasks[n].dmax);
        n++;
        if (!comma)
            break;
        p = comma + 1;
    }
    memcpy(s->tasks, tasks, sizeof(r1_sft_task) * n);
    s->ntasks = n;
    return R1_OK;
}

void r1_sft_format_tasks(const r1_sft_settings *s, char *buf, size_t cap)
{
    size_t k = 0;
    if (cap)
        buf[0] = 0;
    for (int i = 0; i < s->ntasks && k < cap; i++) {
        const r1_sft_task *t = &s->tasks[i];
        int w = snprintf(buf + k, cap - k, "%s%s:%d-%d@%g", i ? "," : "", r1_task_name(t->task),
                         t->dmin, t->dmax, t->weight);
        if (w < 0)
            break;
        k += (size_t)w;
    }
}

/* ------------------------------------------------------------------ validation */

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            return r1_error_set(err, R1_EINVAL, __VA_ARGS__);                                      \
    } while (0)

r1_status r1_sft_validate(const r1_sft_settings *s, const r1_config *c, r1_error *err)
{
    CHECK(s->stage == R1_SFT_PRETRAIN || s->stage == R1_SFT_COLDSTART,
          "stage: expected pretrain or sft");
    CHECK(s->ntasks >= 1 && s->ntasks <= R1_SFT_MAX_TASKS, "tasks: expected 1..%d entries, got %d",
          R1_SFT_MAX_TASKS, s->ntasks);
    int cells = 0;
    for (int i = 0; i < s->ntasks; i++) {
        const r1_sft_task *t = &s->tasks[i];
        CHECK(t->task, "tasks: entry %d has no task", i + 1);
        CHECK(t->dmin >= 1 && t->dmin <= t->dmax && t->dmax <= r1_task_max_difficulty(t->task),
              "tasks: %s difficulties %d-%d; expected within 1..%d", r1_task_name(t->task),
              t->dmin, t->dmax, r1_task_max_difficulty(t->task));
        CHECK(t->weight > 0, "tasks: %s weight %g; expected > 0", r1_task_name(t->task),
              t->weight);
        int top = t->dmax + s->eval_above;
        if (top > r1_task_max_difficulty(t->task))
            top = r1_task_max_difficulty(t->task);
        cells += top - t->dmin + 1;
    }
    CHECK(cells <= R1_SFT_MAX_CELLS, "tasks: %d evaluation cells; at most %d", cells,
          R1_SFT_MAX_CELLS);
    CHECK(s->seq_len >= 16 && s->seq_len <= 1 << 16, "seq_len %d: expected 16..65536",
          s->seq_len);
    CHECK(s->batch >= 1 && s->batch <= R1_SFT_MAX_BATCH, "batch %d: expected 1..%d", s->batch,
          R1_SFT_MAX_BATCH);
    CHECK(s->steps >= 1, "steps %d: expected >= 1", s->steps);
    CHECK(s->opt.lr > 0 && s->opt.lr < 1, "lr %g: expected 0 < lr < 1", s->opt.lr);
    CHECK(s->opt.min_lr >= 0 && s->opt.min_lr <= s->opt.lr, "min_lr %g: expected 0..lr",
          s->opt.min_lr);
    CHECK(s->opt.warmup >= 0, "warmup %d: expected >= 0", s->opt.warmup);
    CHECK(s->mtp_lambda >= 0, "mtp_lambda %g: expected >= 0", s->mtp_lambda);
    CHECK(s->balance_gamma >= 0, "balance_gamma %g: expected >= 0", s->balance_gamma);
    CHECK(s->plain_frac >= 0 && s->plain_frac <= 1, "plain_frac %g: expected 0..1",
          s->plain_frac);
    CHECK(s->mix_frac >= 0 && s->mix_frac <= 1, "mix_frac %g: expected 0..1", s->mix_frac);
    CHECK(s->sft_docs >= 0, "sft_docs %d: expected >= 0", s->sft_docs);
    CHECK(s->eval_every >= 0, "eval_every %d: expected >= 0", s->eval_every);
    CHECK(s->eval_n >= 1 && s->eval_n <= R1_SFT_HELDOUT, "eval_n %d: expected 1..%d", s->eval_n,
          R1_SFT_HELDOUT);
    CHECK(s->eval_above >= 0, "eval_above %d: expected >= 0", s->eval_above);
    CHECK(s->ckpt_every >= 0, "ckpt_every %d: expected >= 0", s->ckpt_every);
    CHECK(memchr(s->out_dir, 0, sizeof s->out_dir) != NULL, "out_dir: not terminated");
    CHECK(strlen(s->out_dir) < R1_SFT_PATH_MAX - 64, "out_dir: longer than %d characters",
          R1_SFT_PATH_MAX - 64);
    if (c) {
        CHECK(s->seq_len <= c->max_position_embeddings,
              "seq_len %d exceeds the model's max_position_embeddings (%d)", s->seq_len,
              c->max_position_embeddings);
        CHECK(c->vocab_size >= R1_TOK_NSPECIAL, "the model's vocab_size %d is too small",
              c->vocab_size);
    }
    return R1_OK;
}

/* ------------------------------------------------------------------ JSON */

char *r1_sft_settings_json(const r1_sft_settings *s)
{
    char tasks[R1_SFT_MAX_TASKS * 48], seed[32];
    r1_sft_format_tasks(s, tasks, sizeof tasks);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)s->seed);
    json_t *j = json_object();
    json_object_set_new(j, "stage", json_string(r1_sft_stage_name(s->stage)));
    json_object_set_new(j, "tasks", json_string(tasks));
    json_object_set_new(j, "seq_len", json_integer(s->seq_len));
    json_object_set_new(j, "batch", json_integer(s->batch));
    json_object_set_new(j, "steps", json_integer(s->steps));
    json_object_set_new(j, "lr", json_real(s->opt.lr));
    json_object_set_new(j, "min_lr", json_real(s->opt.min_lr));
    json_object_set_new(j, "warmup", json_integer(s->opt.warmup));
    json_object_set_new(j, "beta1", json_real(s->opt.beta1));
    json_object_set_new(j, "beta2", json_real(s->opt.beta2));
    json_object_set_new(j, "eps", json_real(s->opt.eps));
    json_object_set_new(j, "weight_decay", json_real(s->opt.weight_decay));
    json_object_set_new(j, "clip", json_real(s->opt.clip));
    json_object_set_new(j, "mtp_lambda", json_real(s->mtp_lambda));
    json_object_set_new(j, "balance_gamma", json_real(s->balance_gamma));
    json_object_set_new(j, "seed", json_string(seed)); /* u64: JSON numbers are doubles */
    json_object_set_new(j, "plain_frac", json_real(s->plain_frac));
    json_object_set_new(j, "mix_frac", json_real(s->mix_frac));
    json_object_set_new(j, "sft_docs", json_integer(s->sft_docs));
    json_object_set_new(j, "eval_every", json_integer(s->eval_every));
    json_object_set_new(j, "eval_n", json_integer(s->eval_n));
    json_object_set_new(j, "eval_above", json_integer(s->eval_above));
    json_object_set_new(j, "ckpt_every", json_integer(s->ckpt_every));
    json_object_set_new(j, "out_dir", json_string(s->out_dir));
    /* 17 digits: floats and doubles read back bit-identically */
    char *text = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(j);
    return text;
}

typedef enum { K_INT, K_FLOAT, K_DOUBLE } kind;

static r1_status get_num(json_t *j, const char *key, kind k, void *dst, r1_error *err)
{
    json_t *v = json_object_get(j, key);
    if (!v)
        return R1_OK;
    if (k == K_INT ? !json_is_integer(v) : !json_is_number(v))
        return r1_error_set(err, R1_EFORMAT, "settings: \"%s\" should be %s", key,
                            k == K_INT ? "an integer" : "a number");
    if (k == K_INT)
        *(int *)dst = (int)json_integer_value(v);
    else if (k == K_FLOAT)
        *(float *)dst = (float)json_number_value(v);
    else
        *(double *)dst = json_number_value(v);
    return R1_OK;
}

static r1_status get_str(json_t *j, const char *key, const char **out, r1_error *err)
{
    json_t *v = json_object_get(j, key);
    *out = NULL;
    if (!v)
        return R1_OK;
    if (!json_is_string(v))
        return r1_error_set(err, R1_EFORMAT, "settings: \"%s\" should be a string", key);
    *out = json_string_value(v);
    return R1_OK;
}

r1_status r1_sft_settings_parse(r1_sft_settings *out, const char *text, r1_error *err)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        return r1_error_set(err, R1_EFORMAT, "settings: not a JSON object (%s)",
                            j ? "another type" : je.text);
    }
    const char *stage = NULL, *tasks = NULL, *seed = NULL, *dir = NULL;
    r1_sft_stage sg = R1_SFT_PRETRAIN;
    r1_status s = get_str(j, "stage", &stage, err);
    if (s == R1_OK && stage)
        s = r1_sft_stage_parse(&sg, stage, err);
    r1_sft_settings v = r1_sft_defaults(sg);
    struct {
        const char *key;
        kind k;
        void *dst;
    } nums[] = {
        {"seq_len", K_INT, &v.seq_len},          {"batch", K_INT, &v.batch},
        {"steps", K_INT, &v.steps},              {"lr", K_FLOAT, &v.opt.lr},
        {"min_lr", K_FLOAT, &v.opt.min_lr},      {"warmup", K_INT, &v.opt.warmup},
        {"beta1", K_FLOAT, &v.opt.beta1},        {"beta2", K_FLOAT, &v.opt.beta2},
        {"eps", K_FLOAT, &v.opt.eps},            {"weight_decay", K_FLOAT, &v.opt.weight_decay},
        {"clip", K_FLOAT, &v.opt.clip},          {"mtp_lambda", K_FLOAT, &v.mtp_lambda},
        {"balance_gamma", K_FLOAT, &v.balance_gamma},
        {"plain_frac", K_DOUBLE, &v.plain_frac}, {"mix_frac", K_DOUBLE, &v.mix_frac},
        {"sft_docs", K_INT, &v.sft_docs},        {"eval_every", K_INT, &v.eval_every},
        {"eval_n", K_INT, &v.eval_n},            {"eval_above", K_INT, &v.eval_above},
        {"ckpt_every", K_INT, &v.ckpt_every},
    };
    for (size_t i = 0; s == R1_OK && i < sizeof nums / sizeof *nums; i++)
        s = get_num(j, nums[i].key, nums[i].k, nums[i].dst, err);
    if (s == R1_OK)
        s = get_str(j, "tasks", &tasks, err);
    if (s == R1_OK && tasks)
        s = r1_sft_parse_tasks(&v, tasks, err);
    if (s == R1_OK)
        s = get_str(j, "seed", &seed, err);
    if (s == R1_OK && seed) {
        char *end;
        errno = 0;
        unsigned long long x = strtoull(seed, &end, 10);
        if (!*seed || *end || errno)
            s = r1_error_set(err, R1_EFORMAT, "settings: \"seed\" should be a decimal string");
        v.seed = x;
    }
    if (s == R1_OK)
        s = get_str(j, "out_dir", &dir, err);
    if (s == R1_OK && dir) {
        if (strlen(dir) >= sizeof v.out_dir)
            s = r1_error_set(err, R1_EINVAL, "settings: \"out_dir\" is too long");
        else
            snprintf(v.out_dir, sizeof v.out_dir, "%s", dir);
    }
    json_decref(j);
    v.opt.total = v.steps;
    if (s == R1_OK)
        s = r1_sft_validate(&v, NULL, err);
    if (s == R1_OK)
        *out = v;
    return s;
}
