/* tasks.c — the task registry, sample generation and verification plumbing, and the helpers the
 * task files share (see tasks_internal.h).  The tasks themselves are in tasks_arith.c (add, mul,
 * linear), tasks_countdown.c and tasks_symbolic.c (sort, bool).
 *
 * Ownership: no allocation; samples and verdicts are the caller's.  Errors: R1_ENOTFOUND for an
 * unknown task name, R1_EINVAL for a difficulty out of range or a bad language, each naming the
 * value and what was expected.  Verification never fails: it judges. */
#include <config.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "r1_rewards.h"
#include "tasks_internal.h"

static const r1_task *const registry[] = {
    &r1_task_def_add,  &r1_task_def_mul,    &r1_task_def_countdown,
    &r1_task_def_sort, &r1_task_def_linear, &r1_task_def_bool, &r1_task_def_chat,
};
#define NTASKS ((int)(sizeof registry / sizeof registry[0]))

/* ------------------------------------------------------------------ languages */

const char *r1_lang_name(r1_lang lang)
{
    switch (lang) {
    case R1_LANG_EN: return "en";
    case R1_LANG_ES: return "es";
    case R1_LANG_AUTO: return "auto";
    }
    return "?";
}

r1_status r1_lang_parse(r1_lang *out, const char *name, r1_error *err)
{
    static const struct {
        const char *s;
        r1_lang l;
    } names[] = {{"en", R1_LANG_EN},      {"english", R1_LANG_EN}, {"es", R1_LANG_ES},
                 {"spanish", R1_LANG_ES}, {"espanol", R1_LANG_ES}, {"auto", R1_LANG_AUTO}};
    for (size_t i = 0; name && i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(name, names[i].s) == 0) {
            *out = names[i].l;
            return R1_OK;
        }
    return r1_error_set(err, R1_EINVAL, "language \"%s\": expected en, es or auto",
                        name ? name : "(null)");
}

const char *r1_phrasing_name(r1_phrasing p)
{
    return p == R1_PHRASING_TYPED ? "typed" : p == R1_PHRASING_MIXED ? "mixed" : "task";
}

r1_status r1_phrasing_parse(r1_phrasing *out, const char *name, r1_error *err)
{
    static const r1_phrasing all[] = {R1_PHRASING_TASK, R1_PHRASING_TYPED, R1_PHRASING_MIXED};
    for (size_t i = 0; name && i < sizeof all / sizeof all[0]; i++)
        if (strcasecmp(name, r1_phrasing_name(all[i])) == 0) {
            *out = all[i];
            return R1_OK;
        }
    return r1_error_set(err, R1_EINVAL, "phrasing \"%s\": expected task, typed or mixed",
                        name ? name : "(null)");
}

r1_phrasing r1_phrasing_for(uint64_t seed, double typed_frac)
{
    if (typed_frac <= 0)
        return R1_PHRASING_TASK;
    r1_rng g;
    r1_rng_seed(&g, seed ^ 0x7479706564ull);
    return r1_rng_uniform(&g) < typed_frac ? R1_PHRASING_TYPED : R1_PHRASING_TASK;
}

/* ------------------------------------------------------------------ registry */

int r1_task_count(void)
{
    return NTASKS;
}

const r1_task *r1_task_at(int i)
{
    return i >= 0 && i < NTASKS ? registry[i] : NULL;
}

r1_status r1_task_find(const r1_task **out, const char *name, r1_error *err)
{
    for (int i = 0; name && i < NTASKS; i++)
        if (strcmp(registry[i]->name, name) == 0) {
            *out = registry[i];
            return R1_OK;
        }
    char known[128] = "";
    for (int i = 0; i < NTASKS; i++) {
        strncat(known, registry[i]->name, sizeof known - strlen(known) - 1);
        if (i + 1 < NTASKS)
            strncat(known, ", ", sizeof known - strlen(known) - 1);
    }
    return r1_error_set(err, R1_ENOTFOUND, "no task \"%s\" (known: %s)", name ? name : "(null)",
                        known);
}

r1_status r1_task_parse_entry(const char *spec, size_t len, const r1_task **task, int *lo,
                              int *hi, r1_error *err)
{
    char e[64];
    if (len == 0 || len >= sizeof e)
        return r1_error_set(err, R1_EINVAL, "\"%.*s\": empty or too long",
                            (int)(len < 40 ? len : 40), spec);
    memcpy(e, spec, len);
    e[len] = 0;
    char *colon = strchr(e, ':');
    if (colon)
        *colon++ = 0;
    r1_status st = r1_task_find(task, e, err);
    if (st != R1_OK) {
        r1_error_prefix(err, "\"%.*s\"", (int)len, spec);
        return st;
    }
    *lo = *hi = 0;
    if (!colon)
        return R1_OK;
    char *end;
    long a = strtol(colon, &end, 10), b = a;
    int ok = end != colon;
    if (ok && *end == '-') {
        const char *q = end + 1;
        b = strtol(q, &end, 10);
        ok = end != q;
    }
    if (!ok || *end)
        return r1_error_set(err, R1_EINVAL, "\"%.*s\": expected NAME, NAME:D or NAME:LO-HI",
                            (int)len, spec);
    int max = r1_task_max_difficulty(*task);
    if (a < 1 || b < a || b > max)
        return r1_error_set(err, R1_EINVAL, "\"%.*s\": difficulties %ld-%ld; %s has 1..%d",
                            (int)len, spec, a, b, e, max);
    *lo = (int)a;
    *hi = (int)b;
    return R1_OK;
}

const char *r1_task_name(const r1_task *t)
{
    return t->name;
}

const char *r1_task_summary(const r1_task *t)
{
    return t->summary;
}

int r1_task_max_difficulty(const r1_task *t)
{
    return t->max_difficulty;
}

int r1_task_train_difficulty(const r1_task *t)
{
    return t->train_difficulty;
}

/* ------------------------------------------------------------------ generating */

static int task_index(const r1_task *t)
{
    for (int i = 0; i < NTASKS; i++)
        if (registry[i] == t)
            return i;
    return NTASKS;
}

r1_status r1_task_generate(const r1_task *t, uint64_t seed, int difficulty, r1_lang lang,
                           r1_task_sample *out, r1_error *err)
{
    return r1_task_generate_phrased(t, seed, difficulty, lang, R1_PHRASING_TASK, out, err);
}

r1_status r1_task_generate_phrased(const r1_task *t, uint64_t seed, int difficulty, r1_lang lang,
                                   r1_phrasing ph, r1_task_sample *out, r1_error *err)
{
    if (difficulty < 1 || difficulty > t->max_difficulty)
        return r1_error_set(err, R1_EINVAL, "task %s: difficulty %d is outside 1..%d", t->name,
                            difficulty, t->max_difficulty);
    if (lang != R1_LANG_AUTO && lang != R1_LANG_EN && lang != R1_LANG_ES)
        return r1_error_set(err, R1_EINVAL, "task %s: language %d is not en, es or auto", t->name,
                            (int)lang);
    /* Two streams: the problem depends on (seed, task, difficulty) only, so both languages of
     * a seed pose the same problem; the language draw has its own stream. */
    uint64_t mix = seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(task_index(t) * 64 + difficulty));
    r1_rng problem, pick;
    r1_rng_seed(&problem, mix);
    r1_rng_seed(&pick, mix ^ 0x6c616e6775616765ull);
    if (lang == R1_LANG_AUTO)
        lang = r1_rng_below(&pick, 2) ? R1_LANG_ES : R1_LANG_EN;
    if (ph != R1_PHRASING_TASK && ph != R1_PHRASING_TYPED && ph != R1_PHRASING_MIXED)
        return r1_error_set(err, R1_EINVAL, "task %s: phrasing %d is not task, typed or mixed",
                            t->name, (int)ph);
    /* the phrasing's draws come after the language's, from a stream of their own: the
     * problem and the language of a seed stay what they were */
    r1_rng phr;
    r1_rng_seed(&phr, mix ^ 0x7068726173696e67ull);
    int typed = ph == R1_PHRASING_TYPED || (ph == R1_PHRASING_MIXED && r1_rng_below(&phr, 2));
    int variant = typed ? 1 + (int)r1_rng_below(&phr, 1u << 20) : 0;

    memset(out, 0, sizeof *out);
    out->task = t;
    out->seed = seed;
    out->difficulty = difficulty;
    out->lang = lang;
    out->typed = typed;
    task_out o = {.lang = lang, .typed = variant};
    sb_init(&o.prompt, out->prompt, sizeof out->prompt);
    sb_init(&o.reasoning, out->reasoning, sizeof out->reasoning);
    sb_init(&o.answer, out->answer, sizeof out->answer);
    t->generate(&problem, difficulty, &o);
    /* The sizes hold every difficulty (the tests generate the hardest ones); this guards the
     * invariant rather than an input. */
    if (o.prompt.overflow || o.reasoning.overflow || o.answer.overflow)
        return r1_error_set(err, R1_EINVAL,
                            "task %s: the sample of seed %llu, difficulty %d "
                            "does not fit the text buffers",
                            t->name, (unsigned long long)seed, difficulty);
    return R1_OK;
}

/* ------------------------------------------------------------------ verifying */

/* Ends a truncated parsed answer with "..." so that a reader sees it was cut. */
static void finish_parsed(sbuf *b)
{
    if (b->overflow && b->cap >= 4)
        memcpy(b->p + b->cap - 4, "...", 4);
}

static int check_span(const r1_task *t, const char *target, const char *ans, size_t len,
                      char *parsed, size_t cap)
{
    char scratch[4];
    sbuf b;
    if (parsed && cap)
        sb_init(&b, parsed, cap);
    else
        sb_init(&b, scratch, sizeof scratch);
    trim(&ans, &len);
    int ok = t->check(target, ans, len, &b);
    finish_parsed(&b);
    return ok;
}

int r1_task_check_answer(const r1_task *t, const char *target, const char *answer, char *parsed,
                         size_t cap)
{
    return check_span(t, target, answer, strlen(answer), parsed, cap);
}

int r1_task_verify(const r1_task *t, const char *target, const char *completion, r1_task_verdict *v)
{
    r1_task_verdict local;
    if (!v)
        v = &local;
    memset(v, 0, sizeof *v);
    r1_completion_parts p;
    v->well_formed = r1_reward_split(completion, &p);
    if (!v->well_formed)
        return 0;
    v->correct = check_span(t, target, p.answer, p.answer_len, v->parsed, sizeof v->parsed);
    return v->correct;
}
