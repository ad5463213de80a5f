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
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "r1_settings.h"
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
        s.save_every = 250;
    } else {
        s.steps = 300;
        s.opt.lr = 5e-4f;
        s.opt.min_lr = 5e-5f;
        s.opt.warmup = 20;
        s.sft_docs = 4096;
        s.eval_every = 100;
        s.save_every = 100;
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
    CHECK(s->balance_alpha >= 0, "balance_alpha %g: expected >= 0", s->balance_alpha);
    CHECK(s->plain_frac >= 0 && s->plain_frac <= 1, "plain_frac %g: expected 0..1",
          s->plain_frac);
    CHECK(s->mix_frac >= 0 && s->mix_frac <= 1, "mix_frac %g: expected 0..1", s->mix_frac);
    CHECK(s->typed_frac >= 0 && s->typed_frac <= 1, "typed_frac %g: expected 0..1",
          s->typed_frac);
    CHECK(s->eval_phrasing >= R1_PHRASING_TASK && s->eval_phrasing <= R1_PHRASING_MIXED,
          "eval_phrasing %d: expected task, typed or mixed", s->eval_phrasing);
    CHECK(s->sft_docs >= 0, "sft_docs %d: expected >= 0", s->sft_docs);
    CHECK(s->eval_every >= 0, "eval_every %d: expected >= 0", s->eval_every);
    CHECK(s->eval_n >= 1 && s->eval_n <= R1_SFT_HELDOUT, "eval_n %d: expected 1..%d", s->eval_n,
          R1_SFT_HELDOUT);
    CHECK(s->eval_above >= 0, "eval_above %d: expected >= 0", s->eval_above);
    CHECK(s->save_every >= 0, "save_every %d: expected >= 0", s->save_every);
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

/* ------------------------------------------------------------------ the settings table */

static r1_status parse_tasks_setting(void *s, const char *text, r1_error *err)
{
    return r1_sft_parse_tasks(s, text, err);
}

static void format_tasks_setting(const void *s, char *buf, size_t cap)
{
    r1_sft_format_tasks(s, buf, cap);
}

#define F(field) offsetof(r1_sft_settings, field)
/* Both stages read one table (a checkpoint of either stage stores every key); the help says
 * which stage a setting is for.  The command line spelt three of them differently before
 * (--plain, --mix, --gamma): those spellings still work, with a deprecation notice. */
static const r1_setting sft_settings[] = {
    {"tasks", R1_SET_TEXT, 0, 0, 0, NULL,
     "task mixture NAME[:D|:DMIN-DMAX][@WEIGHT],...", NULL, parse_tasks_setting,
     format_tasks_setting},
    {"steps", R1_SET_INT, F(steps), 1, 1e8, NULL, "optimizer steps of the run", NULL, NULL, NULL},
    {"batch", R1_SET_INT, F(batch), 1, R1_SFT_MAX_BATCH, NULL, "rows per step", NULL, NULL, NULL},
    {"seq_len", R1_SET_INT, F(seq_len), 16, 65536, NULL, "tokens per row", NULL, NULL, NULL},
    {"lr", R1_SET_FLOAT, F(opt.lr), 1e-8, 0.999, NULL, "peak learning rate", NULL, NULL, NULL},
    {"min_lr", R1_SET_FLOAT, F(opt.min_lr), 0, 0.999, NULL,
     "floor of the cosine schedule (lr/10 when only lr is given on the command line)", NULL, NULL, NULL},
    {"warmup", R1_SET_INT, F(opt.warmup), 0, 1e8, NULL, "linear warmup steps", NULL, NULL, NULL},
    {"weight_decay", R1_SET_FLOAT, F(opt.weight_decay), 0, 10, NULL, "AdamW weight decay",
     NULL, NULL, NULL},
    {"beta1", R1_SET_FLOAT, F(opt.beta1), 0, 0.999999, NULL, "AdamW beta1", NULL, NULL, NULL},
    {"beta2", R1_SET_FLOAT, F(opt.beta2), 0, 0.999999, NULL, "AdamW beta2", NULL, NULL, NULL},
    {"eps", R1_SET_FLOAT, F(opt.eps), 1e-20, 1, NULL, "AdamW epsilon", NULL, NULL, NULL},
    {"clip", R1_SET_FLOAT, F(opt.clip), 0, 1e9, NULL, "gradient-norm clip (0: off)", NULL, NULL, NULL},
    {"bf16_moments", R1_SET_BOOL, F(opt.bf16_moments), 0, 1, NULL,
     "AdamW moments at bf16 precision, as DeepSeek-V3 keeps them", NULL, NULL, NULL},
    {"mtp_lambda", R1_SET_FLOAT, F(mtp_lambda), 0, 100, NULL, "weight of the MTP loss", NULL, NULL, NULL},
    {"balance_gamma", R1_SET_FLOAT, F(balance_gamma), 0, 1, NULL,
     "routing-bias step of auxiliary-loss-free balancing (0: off)", "gamma", NULL, NULL},
    {"balance_alpha", R1_SET_FLOAT, F(balance_alpha), 0, 10, NULL,
     "coefficient of the sequence-wise auxiliary balance loss (0: off)", NULL, NULL, NULL},
    {"precision", R1_SET_CHOICE, F(precision), 0, 0, R1_PRECISION_CHOICES,
     "the linear layers' GEMMs: fp32, bf16 mixed precision, DeepSeek-V3's FP8 (through BF16)",
     NULL, NULL, NULL},
    {"seed", R1_SET_SEED, F(seed), 0, 0, NULL, "seed of the data stream (and of a random init)",
     NULL, NULL, NULL},
    {"plain_frac", R1_SET_DOUBLE, F(plain_frac), 0, 1, NULL,
     "pretrain: share of plain-text documents", "plain", NULL, NULL},
    {"mix_frac", R1_SET_DOUBLE, F(mix_frac), 0, 1, NULL,
     "pretrain: share of documents whose reasoning mixes languages", "mix", NULL, NULL},
    {"typed_frac", R1_SET_DOUBLE, F(typed_frac), 0, 1, NULL,
     "share of documents whose question is phrased as people type it", NULL, NULL, NULL},
    {"eval_phrasing", R1_SET_CHOICE, F(eval_phrasing), 0, 0, "task|typed|mixed",
     "the held-out questions: the task's own words, as people type them, or either", NULL, NULL,
     NULL},
    {"sft_docs", R1_SET_INT, F(sft_docs), 0, 1e8, NULL,
     "sft: size of the cold-start set (0: an endless stream)", NULL, NULL, NULL},
    {"eval_every", R1_SET_INT, F(eval_every), 0, 1e8, NULL,
     "evaluate every N steps and after the last (0: never)", NULL, NULL, NULL},
    {"eval_n", R1_SET_INT, F(eval_n), 1, R1_SFT_HELDOUT, NULL,
     "held-out problems per task and difficulty", NULL, NULL, NULL},
    {"eval_above", R1_SET_INT, F(eval_above), 0, 100, NULL,
     "evaluated difficulties above the trained ones", NULL, NULL, NULL},
    {"save_every", R1_SET_INT, F(save_every), 0, 1e8, NULL,
     "checkpoint every N steps (0: at the end and on Ctrl-C)", "ckpt_every", NULL, NULL},
};
#undef F

const r1_settings_table r1_sft_pretrain_table = {"pretrain", sft_settings,
                                                 sizeof sft_settings / sizeof *sft_settings};
const r1_settings_table r1_sft_coldstart_table = {"sft", sft_settings,
                                                  sizeof sft_settings / sizeof *sft_settings};

const r1_settings_table *r1_sft_settings_table(r1_sft_stage stage)
{
    return stage == R1_SFT_COLDSTART ? &r1_sft_coldstart_table : &r1_sft_pretrain_table;
}

/* ------------------------------------------------------------------ JSON */

char *r1_sft_settings_json(const r1_sft_settings *s)
{
    char *text = r1_settings_json(r1_sft_settings_table(s->stage), s);
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    if (!j)
        return NULL;
    json_object_set_new(j, "stage", json_string(r1_sft_stage_name(s->stage)));
    json_object_set_new(j, "out_dir", json_string(s->out_dir));
    /* 17 digits: floats and doubles read back bit-identically */
    text = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(j);
    return text;
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
    r1_sft_stage sg = R1_SFT_PRETRAIN;
    r1_status s = R1_OK;
    json_t *v = json_object_get(j, "stage");
    if (v && !json_is_string(v))
        s = r1_error_set(err, R1_EFORMAT, "settings: \"stage\" should be a string");
    else if (v)
        s = r1_sft_stage_parse(&sg, json_string_value(v), err);
    r1_sft_settings r = r1_sft_defaults(sg);
    v = json_object_get(j, "out_dir");
    if (s == R1_OK && v && !json_is_string(v))
        s = r1_error_set(err, R1_EFORMAT, "settings: \"out_dir\" should be a string");
    else if (s == R1_OK && v && strlen(json_string_value(v)) >= sizeof r.out_dir)
        s = r1_error_set(err, R1_EINVAL, "settings: \"out_dir\" is too long");
    else if (s == R1_OK && v)
        snprintf(r.out_dir, sizeof r.out_dir, "%s", json_string_value(v));
    json_decref(j);
    /* "elapsed" is the run's clock, kept beside the settings by r1_sft_checkpoint */
    static const char *const extra[] = {"stage", "out_dir", "elapsed", NULL};
    if (s == R1_OK)
        s = r1_settings_parse_json(r1_sft_settings_table(sg), &r, text, extra, "settings", err);
    r.opt.total = r.steps;
    if (s == R1_OK)
        s = r1_sft_validate(&r, NULL, err);
    if (s == R1_OK)
        *out = r;
    return s;
}
