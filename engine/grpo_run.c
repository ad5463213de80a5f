/* grpo_run.c — GRPO as a whole run (see r1_grpo_run.h): the settings table, prompts from the
 * tasks, rewards, the step loop with its metrics, checkpoints, resume and early stop.
 *
 * Errors: R1_EINVAL naming the setting; file errors naming the file; R1_ECANCELED when
 * r1_interrupt() or a hook stopped the run.  Nothing prints. */
#include <config.h>

#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "r1_comm.h"
#include "r1_grpo_run.h"
#include "r1_rng.h"
#include "r1_sft.h"
#include "r1_train.h"

r1_grpo_settings r1_grpo_settings_defaults(void)
{
    r1_grpo_settings s;
    memset(&s, 0, sizeof s);
    s.cfg = r1_grpo_defaults();
    s.cfg.opt.min_lr = -1; /* the same as lr: a constant rate after warmup */
    s.cfg.opt.warmup = 0;
    s.cfg.seed = 1;
    s.steps = 10;
    s.ntasks = 1;
    r1_task_find(&s.tasks[0], "add", NULL);
    s.cfg.nrewards = 2;
    snprintf(s.cfg.reward_names[0], sizeof s.cfg.reward_names[0], "accuracy");
    snprintf(s.cfg.reward_names[1], sizeof s.cfg.reward_names[1], "format");
    s.cfg.reward_weights[0] = s.cfg.reward_weights[1] = 1;
    return s;
}

/* ------------------------------------------------------------------ tasks and rewards */

r1_status r1_grpo_parse_tasks(r1_grpo_settings *s, const char *spec, r1_error *err)
{
    r1_grpo_settings v = *s;
    v.ntasks = 0;
    if (!spec || !*spec)
        return r1_error_set(err, R1_EINVAL, "tasks: the list is empty");
    for (const char *p = spec;;) {
        size_t len = strcspn(p, ",");
        if (v.ntasks == R1_GRPO_MAX_TASKS)
            return r1_error_set(err, R1_EINVAL, "tasks: more than %d entries",
                                R1_GRPO_MAX_TASKS);
        int k = v.ntasks++;
        /* a bare name keeps 0 0: the run's difficulty, resolved by validation */
        r1_status st = r1_task_parse_entry(p, len, &v.tasks[k], &v.dmin[k], &v.dmax[k], err);
        if (st != R1_OK) {
            r1_error_prefix(err, "tasks: entry %d", k + 1);
            return st;
        }
        if (!p[len])
            break;
        p += len + 1;
    }
    *s = v;
    return R1_OK;
}

r1_status r1_grpo_parse_rewards(r1_grpo_settings *s, const char *spec, r1_error *err)
{
    r1_grpo_cfg c = s->cfg;
    c.nrewards = 0;
    int ov_max = 0, ov_cache = 0;
    if (!spec || !*spec)
        return r1_error_set(err, R1_EINVAL, "rewards: the list is empty");
    for (const char *p = spec;;) {
        size_t len = strcspn(p, ",");
        char e[64];
        if (c.nrewards == R1_GRPO_MAX_REWARDS)
            return r1_error_set(err, R1_EINVAL, "rewards: more than %d", R1_GRPO_MAX_REWARDS);
        if (len == 0 || len >= sizeof e)
            return r1_error_set(err, R1_EINVAL, "rewards: entry %d is empty or too long",
                                c.nrewards + 1);
        memcpy(e, p, len);
        e[len] = 0;
        char *at = strchr(e, '@');
        double w = 1;
        char *colon = strchr(e, ':'); /* a reward's own settings: overlong:max=L:cache=C */
        int omax = 0, ocache = 0;
        if (colon && (!at || colon < at)) {
            *colon++ = 0;
            if (strcmp(e, "overlong") != 0)
                return r1_error_set(err, R1_EINVAL, "rewards: entry %d \"%s\": only overlong "
                                    "takes settings (overlong:max=L:cache=C)", c.nrewards + 1, e);
            for (char *q = colon; q && *q && (!at || q < at);) {
                char *end;
                int cache = !strncmp(q, "cache=", 6), mx = !strncmp(q, "max=", 4);
                long v = (cache || mx) ? strtol(q + (cache ? 6 : 4), &end, 10) : -1;
                if ((!cache && !mx) || v < 1 || v > 65536 || (*end && *end != ':' && *end != '@'))
                    return r1_error_set(err, R1_EINVAL, "rewards: entry %d: overlong's settings "
                                        "are max=L and cache=C, whole numbers in 1..65536, "
                                        "near \"%s\"", c.nrewards + 1, q);
                *(cache ? &ocache : &omax) = (int)v;
                q = *end == ':' ? end + 1 : NULL;
            }
        }
        if (at) {
            *at++ = 0;
            char *end;
            w = strtod(at, &end);
            if (!*at || *end || !isfinite(w) || fabs(w) > 1e6)
                return r1_error_set(err, R1_EINVAL, "rewards: entry %d \"%s@%s\": the weight "
                                    "should be a number", c.nrewards + 1, e, at);
        }
        r1_reward rw;
        r1_status st = r1_reward_find(&rw, e, err);
        if (st != R1_OK) {
            r1_error_prefix(err, "rewards: entry %d", c.nrewards + 1);
            return st;
        }
        if (strlen(e) >= sizeof c.reward_names[0])
            return r1_error_set(err, R1_EINVAL, "rewards: entry %d: the name is too long",
                                c.nrewards + 1);
        memcpy(c.reward_names[c.nrewards], e, strlen(e) + 1);
        c.reward_weights[c.nrewards++] = w;
        if (!strcmp(e, "overlong"))
            ov_max = omax, ov_cache = ocache;
        if (!p[len])
            break;
        p += len + 1;
    }
    s->cfg = c;
    s->overlong_max = ov_max, s->overlong_cache = ov_cache;
    return R1_OK;
}

static void format_tasks(const void *sv, char *buf, size_t cap)
{
    const r1_grpo_settings *s = sv;
    size_t k = 0;
    if (cap)
        buf[0] = 0;
    for (int i = 0; i < s->ntasks && k < cap; i++) {
        int w;
        if (s->dmin[i] == 0)
            w = snprintf(buf + k, cap - k, "%s%s", i ? "," : "", r1_task_name(s->tasks[i]));
        else if (s->dmin[i] == s->dmax[i])
            w = snprintf(buf + k, cap - k, "%s%s:%d", i ? "," : "", r1_task_name(s->tasks[i]),
                         s->dmin[i]);
        else
            w = snprintf(buf + k, cap - k, "%s%s:%d-%d", i ? "," : "", r1_task_name(s->tasks[i]),
                         s->dmin[i], s->dmax[i]);
        if (w < 0)
            break;
        k += (size_t)w;
    }
}

static void format_rewards(const void *sv, char *buf, size_t cap)
{
    const r1_grpo_settings *s = sv;
    size_t k = 0;
    if (cap)
        buf[0] = 0;
    for (int i = 0; i < s->cfg.nrewards && k < cap; i++) {
        char opt[48] = "";
        if (!strcmp(s->cfg.reward_names[i], "overlong") && s->overlong_max)
            snprintf(opt, sizeof opt, ":max=%d", s->overlong_max);
        if (!strcmp(s->cfg.reward_names[i], "overlong") && s->overlong_cache)
            snprintf(opt + strlen(opt), sizeof opt - strlen(opt), ":cache=%d", s->overlong_cache);
        int w = s->cfg.reward_weights[i] == 1
                    ? snprintf(buf + k, cap - k, "%s%s%s", i ? "," : "", s->cfg.reward_names[i],
                               opt)
                    : snprintf(buf + k, cap - k, "%s%s%s@%.17g", i ? "," : "",
                               s->cfg.reward_names[i], opt, s->cfg.reward_weights[i]);
        if (w < 0)
            break;
        k += (size_t)w;
    }
}

static r1_status parse_tasks(void *s, const char *t, r1_error *e)
{
    return r1_grpo_parse_tasks(s, t, e);
}

static r1_status parse_rewards(void *s, const char *t, r1_error *e)
{
    return r1_grpo_parse_rewards(s, t, e);
}

#define F(field) offsetof(r1_grpo_settings, field)
static const r1_setting grpo_settings[] = {
    {"tasks", R1_SET_TEXT, 0, 0, 0, NULL,
     "tasks the prompts cycle through: NAME[:D|:LO-HI],...", NULL, parse_tasks, format_tasks},
    {"difficulty", R1_SET_INT, F(difficulty), 0, 1000, NULL,
     "difficulty of entries without one (0: each task's training difficulty)", NULL, NULL, NULL},
    {"lang", R1_SET_CHOICE, F(lang), 0, 0, "auto|en|es",
     "the language the prompts ask for (auto: drawn per prompt)", NULL, NULL, NULL},
    {"typed_frac", R1_SET_DOUBLE, F(typed_frac), 0, 1, NULL,
     "share of prompts phrased as people type them (drawn per prompt)", NULL, NULL, NULL},
    {"rewards", R1_SET_TEXT, 0, 0, 0, NULL, "built-in rewards NAME[@WEIGHT],...", NULL,
     parse_rewards, format_rewards},
    {"steps", R1_SET_INT, F(steps), 1, 1e8, NULL, "GRPO steps of the run", NULL, NULL, NULL},
    {"group", R1_SET_INT, F(cfg.group), 2, 64, NULL, "completions per prompt (G)", NULL, NULL, NULL},
    {"prompts", R1_SET_INT, F(cfg.prompts), 1, 4096, NULL, "prompts per step", NULL, NULL, NULL},
    {"mu", R1_SET_INT, F(cfg.mu), 1, 64, NULL, "updates per batch (1: ratio 1)", NULL, NULL, NULL},
    {"eps_low", R1_SET_FLOAT, F(cfg.eps_low), 0, 1, NULL, "clip range below 1", NULL, NULL, NULL},
    {"eps_high", R1_SET_FLOAT, F(cfg.eps_high), 0, 10, NULL,
     "clip range above 1 (clip-higher: 0.28)", NULL, NULL, NULL},
    {"beta", R1_SET_FLOAT, F(cfg.beta), 0, 100, NULL,
     "KL coefficient (0: no reference model)", NULL, NULL, NULL},
    {"temperature", R1_SET_FLOAT, F(cfg.temperature), 0, 100, NULL, "sampling temperature",
     NULL, NULL, NULL},
    {"top_k", R1_SET_INT, F(cfg.top_k), 0, 1000000, NULL, "sample among the k likeliest (0: all)",
     NULL, NULL, NULL},
    {"top_p", R1_SET_FLOAT, F(cfg.top_p), 0, 1, NULL, "nucleus sampling (1: off)", NULL, NULL, NULL},
    {"max_new", R1_SET_INT, F(cfg.max_new), 1, 65536, NULL, "completion length limit", NULL, NULL, NULL},
    {"loss_type", R1_SET_CHOICE, F(cfg.agg), 0, 0, "grpo|dapo|dr_grpo|cispo;seq|token|const",
     "policy loss: GRPO (sequence mean), DAPO (token mean), Dr. GRPO (constant), CISPO",
     "agg", NULL, NULL},
    {"importance_sampling_level", R1_SET_CHOICE, F(cfg.is_level), 0, 0, "token|sequence",
     "importance ratio per token, or per completion (GSPO: length-normalised, clipped once)",
     NULL, NULL, NULL},
    {"top_entropy_quantile", R1_SET_FLOAT, F(cfg.top_entropy_quantile), 0, 1, NULL,
     "the policy loss keeps each completion's top-rho tokens by entropy (1: all)", NULL, NULL,
     NULL},
    {"entropy_coef", R1_SET_FLOAT, F(cfg.entropy_coef), -10, 10, NULL,
     "weight of the policy's entropy added to the objective (0: none)", NULL, NULL, NULL},
    {"multi_objective_aggregation", R1_SET_CHOICE, F(cfg.multi_objective), 0, 0,
     "sum_then_normalize|normalize_then_sum",
     "several rewards: advantages of their weighted sum, or GDPO's per-reward normalisation",
     NULL, NULL, NULL},
    {"off_policy_mask_threshold", R1_SET_FLOAT, F(cfg.off_policy_mask), 0, 1e6, NULL,
     "drop completions with A < 0 whose mean log(p_sampler / p) exceeds this (0: off)", NULL,
     NULL, NULL},
    {"use_bias_correction_kl", R1_SET_BOOL, F(cfg.bias_correction_kl), 0, 1, NULL,
     "the KL term times the importance ratio (DeepSeek-V3.2's unbiased estimator)", NULL, NULL,
     NULL},
    {"std_scale", R1_SET_BOOL, F(cfg.std_scale), 0, 1, NULL,
     "divide advantages by the group's std (Dr. GRPO: false)", NULL, NULL, NULL},
    {"dynamic_sampling", R1_SET_BOOL, F(cfg.dynamic_sampling), 0, 1, NULL,
     "drop groups with all-equal rewards and refill (DAPO)", NULL, NULL, NULL},
    {"max_refill", R1_SET_INT, F(cfg.max_refill), 0, 100, NULL, "refill rounds per step", NULL, NULL, NULL},
    {"sync_ref_model", R1_SET_BOOL, F(cfg.sync_ref), 0, 1, NULL,
     "mix the policy into the reference every ref_model_sync_steps steps (TR-DPO)", NULL, NULL,
     NULL},
    {"ref_model_sync_steps", R1_SET_INT, F(cfg.ref_sync_steps), 1, 1e8, NULL,
     "steps between reference syncs", NULL, NULL, NULL},
    {"ref_model_mixup_alpha", R1_SET_FLOAT, F(cfg.ref_mixup_alpha), 0, 1, NULL,
     "reference = alpha policy + (1 - alpha) reference (1: a copy)", NULL, NULL, NULL},
    {"micro", R1_SET_INT, F(cfg.micro), 1, 4096, NULL, "sequences per forward/backward chunk",
     NULL, NULL, NULL},
    {"balance_gamma", R1_SET_FLOAT, F(cfg.balance_gamma), 0, 1, NULL,
     "routing-bias step of auxiliary-loss-free balancing (0: frozen)", "gamma", NULL, NULL},
    {"precision", R1_SET_CHOICE, F(cfg.precision), 0, 0, R1_PRECISION_CHOICES,
     "the linear layers' GEMMs: fp32, bf16 mixed precision, DeepSeek-V3's FP8 (through BF16)",
     NULL, NULL, NULL},
    {"rollout_dtype", R1_SET_CHOICE, F(cfg.rollout_dtype), 0, 0, "fp32|bf16|fp8",
     "the sampler's weights (a fast low-precision rollout engine; training keeps its own)",
     NULL, NULL, NULL},
    {"routing_replay", R1_SET_BOOL, F(cfg.routing_replay), 0, 1, NULL,
     "the training forward uses the experts the rollout chose (R3)", NULL, NULL, NULL},
    {"mtp_lambda", R1_SET_FLOAT, F(cfg.mtp_lambda), 0, 100, NULL,
     "weight of the MTP loss on the sampled completions (0: the MTP module is not trained)",
     NULL, NULL, NULL},
    {"lr", R1_SET_FLOAT, F(cfg.opt.lr), 1e-12, 0.999, NULL, "learning rate", NULL, NULL, NULL},
    {"min_lr", R1_SET_FLOAT, F(cfg.opt.min_lr), -1, 0.999, NULL,
     "floor of the schedule (-1: the same as lr)", NULL, NULL, NULL},
    {"warmup", R1_SET_INT, F(cfg.opt.warmup), 0, 1e8, NULL, "linear warmup steps", NULL, NULL, NULL},
    {"weight_decay", R1_SET_FLOAT, F(cfg.opt.weight_decay), 0, 10, NULL, "AdamW weight decay",
     NULL, NULL, NULL},
    {"clip", R1_SET_FLOAT, F(cfg.opt.clip), 0, 1e9, NULL, "gradient-norm clip (0: off)", NULL, NULL, NULL},
    {"seed", R1_SET_SEED, F(cfg.seed), 0, 0, NULL, "seed of the prompts and the sampling", NULL, NULL, NULL},
    {"save_every", R1_SET_INT, F(save_every), 0, 1e8, NULL,
     "checkpoint every N steps (0: at the end and on a stop)", NULL, NULL, NULL},
    {"eval_n", R1_SET_INT, F(eval_n), 0, R1_SFT_HELDOUT, NULL,
     "r1lab train: held-out problems per task and difficulty, evaluated before and after "
     "(0: none)", NULL, NULL, NULL},
};
#undef F

const r1_settings_table r1_grpo_settings_tbl = {"grpo", grpo_settings,
                                                   sizeof grpo_settings / sizeof *grpo_settings};

const r1_settings_table *r1_grpo_settings_table(void)
{
    return &r1_grpo_settings_tbl;
}

r1_status r1_grpo_settings_validate(r1_grpo_settings *s, r1_error *err)
{
    const r1_settings_table *t = r1_grpo_settings_table();
    for (int i = 0; i < t->n; i++) { /* every number inside its range */
        double v;
        if (r1_settings_number(&t->v[i], s, &v) && t->v[i].type != R1_SET_SEED &&
            !(v >= t->v[i].lo && v <= t->v[i].hi))
            return r1_error_set(err, R1_EINVAL, "%s %g: expected %g..%g", t->v[i].name, v,
                                t->v[i].lo, t->v[i].hi);
    }
    /* the documented ceiling of one step's batch: what the largest settings would otherwise
     * allocate before the first token (the probe's M8: prompts = 1e6 took all the RAM) */
    if ((long)s->cfg.group * s->cfg.prompts > R1_GRPO_MAX_SEQUENCES)
        return r1_error_set(err, R1_EINVAL, "group %d x prompts %d = %ld completions per step, "
                            "above the ceiling of %d", s->cfg.group, s->cfg.prompts,
                            (long)s->cfg.group * s->cfg.prompts, R1_GRPO_MAX_SEQUENCES);
    if (s->ntasks < 1 || s->ntasks > R1_GRPO_MAX_TASKS)
        return r1_error_set(err, R1_EINVAL, "tasks: expected 1..%d entries", R1_GRPO_MAX_TASKS);
    if (s->cfg.nrewards < 1 || s->cfg.nrewards > R1_GRPO_MAX_REWARDS)
        return r1_error_set(err, R1_EINVAL, "rewards: expected 1..%d", R1_GRPO_MAX_REWARDS);
    for (int k = 0; k < s->cfg.nrewards; k++)
        if (!isfinite(s->cfg.reward_weights[k]))
            return r1_error_set(err, R1_EINVAL, "rewards: %s has a weight that is not a finite "
                                "number", s->cfg.reward_names[k]);
    for (int i = 0; i < s->ntasks; i++) {
        int max = r1_task_max_difficulty(s->tasks[i]);
        if (s->dmin[i] == 0) {
            int d = s->difficulty ? s->difficulty : r1_task_train_difficulty(s->tasks[i]);
            if (d > max)
                return r1_error_set(err, R1_EINVAL, "difficulty %d outside 1..%d for task %s", d,
                                    max, r1_task_name(s->tasks[i]));
            s->dmin[i] = s->dmax[i] = d;
        }
    }
    if (s->cfg.opt.min_lr < 0)
        s->cfg.opt.min_lr = s->cfg.opt.lr;
    if (s->cfg.opt.min_lr > s->cfg.opt.lr)
        return r1_error_set(err, R1_EINVAL, "min_lr %g: expected 0..lr (%g)", s->cfg.opt.min_lr,
                            s->cfg.opt.lr);
    return R1_OK;
}

/* ------------------------------------------------------------------ the run */

struct r1_grpo_run {
    r1_grpo_settings s;
    r1_model *m, *m_owned;
    const r1_tokenizer *tok;
    r1_tokenizer *tok_owned;
    r1_grpo *g;
    r1_reward rw[R1_GRPO_MAX_REWARDS];
    r1_length_opts overlong; /* the "overlong" reward's lengths */
    int custom[R1_GRPO_MAX_REWARDS];
    char metrics[R1_GRPO_PATH_MAX], ckpt[R1_GRPO_PATH_MAX], model[R1_GRPO_PATH_MAX];
    char groups[R1_GRPO_PATH_MAX]; /* beside metrics: one sampled group per step ("": none) */
    int64_t group_logged;          /* the step whose group is in it */
    const r1_grpo_hooks *h;
    const r1_observer *o;
    r1_task_sample sample; /* scratch */
    const r1_comm *comm;   /* data parallelism (NULL: one process) */
    char stopped[sizeof ((r1_error *)0)->msg];
    double elapsed_before, t_start;
};


/* Prompt number i (r1_grpo_run.h says how it is drawn). */
static void sample_of(r1_grpo_run *r, int64_t i, r1_task_sample *out)
{
    const r1_grpo_settings *s = &r->s;
    int k = (int)(i % s->ntasks);
    uint64_t seed = 0x5eed0000ull + s->cfg.seed * 1000003ull + (uint64_t)i;
    int d = s->dmin[k];
    if (s->dmax[k] > d) { /* a range: the difficulty is drawn from the prompt's own seed */
        r1_rng g;
        r1_rng_seed(&g, seed ^ 0xd1ff1c017ull);
        d += (int)r1_rng_below(&g, (uint32_t)(s->dmax[k] - d + 1));
    }
    r1_task_generate_phrased(s->tasks[k], seed, d, (r1_lang)(s->lang - 1),
                             r1_phrasing_for(seed, s->typed_frac), out, NULL);
}

static int prompt_fn(void *user, int64_t index, int32_t *ids, int cap)
{
    r1_grpo_run *r = user;
    sample_of(r, index, &r->sample);
    int n = 0;
    if (r1_tokenizer_encode_prompt(r->tok, r->sample.prompt, ids, cap, &n, NULL) != R1_OK)
        return -1;
    return n;
}

static int score_fn(void *user, int64_t index, int j, const int32_t *prompt, int plen,
                    const int32_t *comp, int clen, int finish, double *out)
{
    (void)prompt, (void)plen, (void)finish;
    r1_grpo_run *r = user;
    r1_task_sample *ts = &r->sample;
    sample_of(r, index, ts);
    char *text = NULL;
    if (r1_tokenizer_decode(r->tok, comp, clen, &text, NULL) != R1_OK)
        return 1;
    r1_reward_sample s = {ts->prompt, text, NULL, NULL, ts->answer, ts->task, ts->lang, clen,
                          r->s.cfg.max_new,
                          /* the completion's own coin: seed, prompt number, place in group */
                          (r->s.cfg.seed * 0x9e3779b97f4a7c15ull) ^
                              ((uint64_t)index * 64 + (uint64_t)j) * 0xd6e8feb86659fd93ull};
    int stop = 0;
    for (int k = 0; k < r->s.cfg.nrewards && !stop; k++) {
        if (!r->custom[k])
            out[k] = r->rw[k].fn(&s, r->rw[k].user);
        else
            stop = !r->h || !r->h->reward || r->h->reward(r->h->user, k, index, &s, ts, &out[k]);
    }
    free(text);
    return stop;
}

/* The first group each step samples, for reports: its prompt, completions, rewards and
 * advantages as one JSON line of the groups file. */
static void log_group(r1_grpo_run *r, const r1_grpo_group *g)
{
    int64_t step = r1_grpo_steps(r->g) + 1;
    if (!r->groups[0] || r->group_logged == step || !r1_comm_leads(r->comm))
        return;
    r->group_logged = step;
    json_t *o = json_object(), *cs = json_array();
    char *text = NULL;
    json_object_set_new(o, "step", json_integer(step));
    json_object_set_new(o, "index", json_integer(g->index));
    if (r1_tokenizer_decode(r->tok, g->prompt, g->plen, &text, NULL) == R1_OK)
        json_object_set_new(o, "prompt", json_string(text));
    free(text);
    json_object_set_new(o, "dropped", json_boolean(g->dropped));
    const r1_grpo_cfg *c = &r->s.cfg;
    for (int j = 0; j < g->G; j++) {
        json_t *x = json_object(), *rw = json_object();
        text = NULL;
        if (r1_tokenizer_decode(r->tok, g->completions[j], g->lens[j], &text, NULL) == R1_OK)
            json_object_set_new(x, "text", json_string(text));
        free(text);
        for (int k = 0; k < c->nrewards; k++)
            json_object_set_new(rw, c->reward_names[k],
                                json_real(g->rewards[(size_t)j * c->nrewards + k]));
        json_object_set_new(x, "rewards", rw);
        json_object_set_new(x, "total", json_real(g->totals[j]));
        json_object_set_new(x, "advantage", json_real(g->adv[j]));
        json_array_append_new(cs, x);
    }
    json_object_set_new(o, "completions", cs);
    char *line = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(9));
    json_decref(o);
    if (line) /* a report's sample: a failure to write it does not stop training */
        r1_jsonl_append(r->groups, line, NULL);
    free(line);
}

static int group_fn(void *user, const r1_grpo_group *g)
{
    r1_grpo_run *r = user;
    log_group(r, g);
    if (!r->o || !r->o->group)
        return 0;
    r1_task_sample ts;
    sample_of(r, g->index, &ts);
    return r->o->group(r->o->user, g, &ts);
}

static r1_status set_paths(r1_grpo_run *r, const r1_grpo_paths *p, r1_error *err)
{
    const char *v[3] = {p ? p->metrics : NULL, p ? p->checkpoint : NULL, p ? p->model : NULL};
    char *d[3] = {r->metrics, r->ckpt, r->model};
    for (int i = 0; i < 3; i++) {
        if (v[i] && strlen(v[i]) >= R1_GRPO_PATH_MAX - 64)
            return r1_error_set(err, R1_EINVAL, "%s: the path is too long", v[i]);
        snprintf(d[i], R1_GRPO_PATH_MAX, "%s", v[i] ? v[i] : "");
        /* "ckpt/" names the folder ckpt: the temporary and old names go beside it */
        for (size_t l = strlen(d[i]); i > 0 && l > 1 && d[i][l - 1] == '/'; l--)
            d[i][l - 1] = 0;
    }
    /* groups.jsonl beside metrics.jsonl (METRICS.groups for another name) */
    const char *m = r->metrics, *base = strrchr(m, '/');
    base = base ? base + 1 : m;
    if (!*m)
        r->groups[0] = 0;
    else if (!strcmp(base, "metrics.jsonl"))
        snprintf(r->groups, sizeof r->groups, "%.*sgroups.jsonl", (int)(base - m), m);
    else
        snprintf(r->groups, sizeof r->groups, "%.1000s.groups", m);
    return R1_OK;
}

static r1_status setup(r1_grpo_run *r, const int *custom, const char *resume, r1_error *err)
{
    r1_status st = r1_grpo_settings_validate(&r->s, err);
    for (int k = 0; st == R1_OK && k < r->s.cfg.nrewards; k++) {
        r->custom[k] = custom ? custom[k] : 0;
        if (!r->custom[k] && (st = r1_reward_find(&r->rw[k], r->s.cfg.reward_names[k], err)) !=
                                 R1_OK)
            r1_error_prefix(err, "rewards: %s", r->s.cfg.reward_names[k]);
        if (st == R1_OK && !r->custom[k] && !strcmp(r->s.cfg.reward_names[k], "overlong")) {
            /* DAPO's soft punishment over [max - cache, max] */
            r->overlong.max = r->s.overlong_max ? r->s.overlong_max : r->s.cfg.max_new;
            r->overlong.cache = r->s.overlong_cache ? r->s.overlong_cache : r->overlong.max / 4;
            if (r->overlong.cache > r->overlong.max)
                st = r1_error_set(err, R1_EINVAL, "rewards: overlong: cache %d is longer than "
                                  "max %d", r->overlong.cache, r->overlong.max);
            r->rw[k].user = &r->overlong;
        }
    }
    if (st != R1_OK)
        return st;
    r1_grpo_cfg c = r->s.cfg;
    c.stop_ids[0] = r1_tokenizer_special_id(r->tok, R1_TOK_EOS);
    c.n_stop = 1;
    if ((st = r1_grpo_new(&r->g, r->m, &c, err)) != R1_OK)
        return st;
    if (resume && (st = r1_grpo_resume(r->g, resume, err)) != R1_OK)
        return st;
    if (resume && r->metrics[0])
        st = r1_jsonl_trim(r->metrics, r1_grpo_steps(r->g), err);
    if (st == R1_OK && resume && r->groups[0])
        st = r1_jsonl_trim(r->groups, r1_grpo_steps(r->g), err);
    return st;
}

r1_status r1_grpo_run_new(r1_grpo_run **out, r1_model *m, const r1_tokenizer *tok,
                          const r1_grpo_settings *s, const int *custom, const char *resume,
                          const r1_grpo_paths *paths, r1_error *err)
{
    *out = NULL;
    if (!tok)
        return r1_error_set(err, R1_EINVAL, "GRPO needs the model's tokenizer");
    r1_grpo_run *r = calloc(1, sizeof *r);
    if (!r)
        return r1_error_set(err, R1_ENOMEM, "out of memory");
    r->s = *s;
    r->m = m;
    r->tok = tok;
    r1_status st = set_paths(r, paths, err);
    if (st == R1_OK)
        st = setup(r, custom, resume, err);
    if (st != R1_OK) {
        r1_grpo_run_free(r);
        return st;
    }
    *out = r;
    return R1_OK;
}

r1_status r1_grpo_run_resume_dir(r1_grpo_run **out, const char *dir, r1_error *err)
{
    *out = NULL;
    if (!dir || !*dir || strlen(dir) >= R1_GRPO_PATH_MAX - 64)
        return r1_error_set(err, R1_EINVAL, "resume: expected a run folder");
    char ck[R1_GRPO_PATH_MAX + 16], mp[R1_GRPO_PATH_MAX + 16], tp[R1_GRPO_PATH_MAX + 32];
    snprintf(ck, sizeof ck, "%s/checkpoint", dir);
    snprintf(mp, sizeof mp, "%s/metrics.jsonl", dir);
    snprintf(tp, sizeof tp, "%s/tokenizer.json", ck);
    r1_grpo_run *r = calloc(1, sizeof *r);
    if (!r)
        return r1_error_set(err, R1_ENOMEM, "out of memory");
    r1_train_state ts;
    char *sj = NULL;
    r1_status st = r1_ckpt_load(ck, &r->m_owned, NULL, &ts, &sj, err);
    r->m = r->m_owned;
    if (st == R1_OK && strcmp(ts.stage, "grpo") != 0)
        st = r1_error_set(err, R1_EINVAL, "%s: a %s checkpoint, not a GRPO one", ck, ts.stage);
    if (st == R1_OK && !sj)
        st = r1_error_set(err, R1_EFORMAT, "%s/trainer_state.json: no \"settings\": this GRPO "
                          "checkpoint was written by r1.grpo; resume it there (resume = DIR)",
                          ck);
    r->s = r1_grpo_settings_defaults();
    /* ref_reset: what checkpoints before the TR-DPO sync wrote; N > 0 is a sync every N steps
     * with alpha 1 */
    static const char *const extra[] = {"elapsed", "ref_reset", NULL};
    if (st == R1_OK)
        st = r1_settings_parse_json(r1_grpo_settings_table(), &r->s, sj, extra, ck, err);
    if (st == R1_OK) {
        json_t *j = json_loads(sj, 0, NULL);
        json_t *e = j ? json_object_get(j, "elapsed") : NULL;
        r->elapsed_before = json_is_number(e) ? json_number_value(e) : 0;
        json_t *rr = j ? json_object_get(j, "ref_reset") : NULL;
        json_int_t n = json_is_integer(rr) ? json_integer_value(rr) : 0;
        if (n > 0 && n <= 100000000) {
            r->s.cfg.sync_ref = 1;
            r->s.cfg.ref_sync_steps = (int)n;
            r->s.cfg.ref_mixup_alpha = 1;
        }
        json_decref(j);
    }
    free(sj);
    if (st == R1_OK)
        st = r1_tokenizer_load(&r->tok_owned, tp, err);
    r->tok = r->tok_owned;
    r1_grpo_paths p = {mp, ck, dir};
    if (st == R1_OK)
        st = set_paths(r, &p, err);
    if (st == R1_OK)
        st = setup(r, NULL, ck, err);
    if (st != R1_OK) {
        r1_grpo_run_free(r);
        return st;
    }
    *out = r;
    return R1_OK;
}

double r1_grpo_run_elapsed(const r1_grpo_run *r)
{
    return r->elapsed_before + (r->t_start > 0 ? r1_now() - r->t_start : 0);
}

static r1_status save(r1_grpo_run *r, r1_error *err)
{
    r1_status st = R1_OK;
    if (!r1_comm_leads(r->comm)) /* rank 0 writes the run's files */
        return R1_OK;
    if (r->ckpt[0]) {
        char *sj = r1_settings_json(r1_grpo_settings_table(), &r->s);
        json_t *j = sj ? json_loads(sj, 0, NULL) : NULL;
        free(sj);
        if (!j)
            return r1_error_set(err, R1_ENOMEM, "out of memory");
        json_object_set_new(j, "elapsed", json_real(r1_grpo_run_elapsed(r)));
        sj = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(17));
        json_decref(j);
        if (!sj)
            return r1_error_set(err, R1_ENOMEM, "out of memory");
        st = r1_grpo_save_run(r->g, r->ckpt, sj, r->tok, err);
        free(sj);
    }
    if (st == R1_OK && r->model[0])
        st = r1_model_save(r->m, r->model, R1_DT_F32, err);
    if (st == R1_OK && r->model[0])
        st = r1_tokenizer_save(r->tok, r->model, err);
    return st;
}

static void num(json_t *o, const char *k, double v)
{
    json_object_set_new(o, k, isfinite(v) ? json_real(v) : json_null());
}

static r1_status log_step(r1_grpo_run *r, const r1_grpo_stats *st, r1_error *err)
{
    if (!r->metrics[0])
        return R1_OK;
    json_t *o = json_object();
    json_object_set_new(o, "stage", json_string("grpo"));
    json_object_set_new(o, "step", json_integer(st->step));
    /* TRL's GRPOTrainer names where it has the same measure (README: "Metrics"), so that
     * plots and trackers made for TRL runs read r1lab's */
    num(o, "reward", st->total_mean);
    num(o, "reward_std", st->total_std);
    for (int k = 0; k < r->s.cfg.nrewards; k++) {
        char key[64];
        snprintf(key, sizeof key, "rewards/%s/mean", r->s.cfg.reward_names[k]);
        num(o, key, st->reward_mean[k]);
        snprintf(key, sizeof key, "rewards/%s/std", r->s.cfg.reward_names[k]);
        num(o, key, st->reward_std[k]);
    }
    num(o, "frac_reward_zero_std", st->zero_var_share);
    num(o, "completions/mean_length", st->len_mean);
    num(o, "completions/min_length", st->len_min);
    num(o, "completions/max_length", st->len_max);
    num(o, "completions/clipped_ratio", st->clipped_ratio);
    num(o, "kl", st->kl);
    num(o, "entropy", st->entropy);
    num(o, "clip_ratio/region_mean", st->clip_frac);
    num(o, "grad_norm", st->grad_norm);
    num(o, "learning_rate", st->lr);
    num(o, "sampling/sampling_logp_difference/mean", st->logprob_mismatch);
    if (r->s.cfg.mtp_lambda > 0)
        num(o, "mtp_loss", st->mtp_loss);
    if (r->s.cfg.top_entropy_quantile < 1)
        num(o, "entropy_kept", st->entropy_kept);
    if (r->s.cfg.off_policy_mask > 0)
        num(o, "off_policy_masked", st->off_policy_masked);
    if (st->n_moe > 0) { /* the router-flip share per MoE layer: rollout against training */
        json_t *a = json_array();
        for (int j = 0; j < st->n_moe && j < R1_GRPO_MAX_MOE; j++)
            json_array_append_new(a, json_real(st->route_flip[j]));
        json_object_set_new(o, "route_flip", a);
        num(o, "route_flip_mean", st->route_flip_mean);
        a = json_array(); /* DeepSeek-V3's balance measure, per MoE layer */
        for (int j = 0; j < st->n_moe && j < R1_GRPO_MAX_MOE; j++)
            json_array_append_new(a, json_real(st->maxvio[j]));
        json_object_set_new(o, "maxvio", a);
        num(o, "maxvio_mean", st->maxvio_mean);
        if (st->expert_load) { /* [MoE layer][expert]: each expert's share of the step */
            a = json_array();
            for (int j = 0; j < st->n_moe; j++) {
                json_t *row = json_array();
                for (int e = 0; e < st->n_experts; e++)
                    json_array_append_new(row, json_real(st->expert_load[(size_t)j *
                                                                         st->n_experts + e]));
                json_array_append_new(a, row);
            }
            json_object_set_new(o, "expert_load", a);
        }
    }
    num(o, "t_sample", st->t_sample);
    num(o, "t_score", st->t_score);
    num(o, "t_train", st->t_train);
    num(o, "tokens_per_s", st->tokens_per_s);
    num(o, "gen_tokens_per_s", st->gen_tokens_per_s);
    json_object_set_new(o, "groups", json_integer(st->groups_used));
    num(o, "elapsed", r1_grpo_run_elapsed(r));
    char *line = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(9));
    json_decref(o);
    if (!line)
        return r1_error_set(err, R1_ENOMEM, "out of memory");
    r1_status s = r1_comm_leads(r->comm) ? r1_jsonl_append(r->metrics, line, err) : R1_OK;
    free(line);
    return s;
}

r1_status r1_grpo_run_go(r1_grpo_run *r, const r1_grpo_hooks *h, const r1_observer *o,
                         r1_grpo_stats *last, r1_error *err)
{
    r->h = h;
    r->o = o;
    r->stopped[0] = 0;
    r->t_start = r1_now();
    int ran = 0;
    r1_status st = R1_OK;
    if (last)
        memset(last, 0, sizeof *last);
    int dp = r->comm && r->comm->size > 1, asked = 0;
    while (r1_grpo_steps(r->g) < r->s.steps) {
        if (dp) { /* with ranks, all stop after the same step: a stop anywhere is summed */
            double f = r1_interrupted() || asked;
            if ((st = r1_comm_sum_f64(r->comm, &f, 1, err)) != R1_OK)
                break;
            if (f > 0) {
                if (asked)
                    break; /* r->stopped says by whom */
                st = r1_error_set(err, R1_ECANCELED, "grpo: interrupted");
                break;
            }
        }
        r1_grpo_stats s;
        st = r1_grpo_step(r->g, prompt_fn, score_fn, group_fn, r, &s, err);
        if (st == R1_ECANCELED && ran && r1_grpo_exhausted(r->g) && !r1_interrupted()) {
            /* every group scored the same even after the refills: nothing left to learn */
            snprintf(r->stopped, sizeof r->stopped, "%s", err->msg);
            st = R1_OK;
            break;
        }
        if (st != R1_OK)
            break;
        ran = 1;
        if (last)
            *last = s;
        if ((st = log_step(r, &s, err)) != R1_OK)
            break;
        if (r->s.save_every > 0 && s.step % r->s.save_every == 0 &&
            r1_grpo_steps(r->g) < r->s.steps && (st = save(r, err)) != R1_OK)
            break;
        r1_step_report rep = {"grpo", s.step, r->s.steps, r1_grpo_run_elapsed(r),
                              NULL, &s, NULL, NULL};
        if (o && o->step && o->step(o->user, &rep)) {
            snprintf(r->stopped, sizeof r->stopped, "stopped by the observer after step %lld",
                     (long long)s.step);
            if (!dp)
                break;
            asked = 1;
        }
    }
    if (st == R1_OK || st == R1_ECANCELED) { /* the last finished step is kept */
        r1_error e2 = {0};
        r1_status s2 = save(r, &e2);
        if (s2 != R1_OK) {
            *err = e2;
            st = s2;
        }
    }
    r->elapsed_before = r1_grpo_run_elapsed(r);
    r->t_start = 0;
    return st;
}

r1_status r1_grpo_run_set_comm(r1_grpo_run *r, const r1_comm *c, r1_error *err)
{
    r1_status st = r1_grpo_set_comm(r->g, c, err);
    if (st == R1_OK)
        r->comm = c;
    return st;
}

const char *r1_grpo_run_stopped(const r1_grpo_run *r)
{
    return r->stopped[0] ? r->stopped : NULL;
}

int64_t r1_grpo_run_step(const r1_grpo_run *r)
{
    return r1_grpo_steps(r->g);
}

const r1_grpo_settings *r1_grpo_run_settings(const r1_grpo_run *r)
{
    return &r->s;
}

r1_model *r1_grpo_run_model(r1_grpo_run *r)
{
    return r->m;
}

const r1_tokenizer *r1_grpo_run_tokenizer(const r1_grpo_run *r)
{
    return r->tok;
}

void r1_grpo_run_free(r1_grpo_run *r)
{
    if (!r)
        return;
    r1_grpo_free(r->g);
    r1_model_free(r->m_owned);
    r1_tokenizer_free(r->tok_owned);
    free(r);
}
