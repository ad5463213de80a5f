/* grpo.c — GRPO and its family (see r1_grpo.h): sampling groups, advantages (GDPO's decoupled
 * ones too), the clipped objective at token or sequence level or CISPO's, the entropy
 * selection and bonus, the off-policy mask, the k3 KL to a reference (bias-corrected on
 * request, synced TR-DPO's way), mu inner AdamW updates, dynamic sampling, statistics.
 *
 * The training pass packs the step's sequences (prompt + completion, padded at the end) into
 * micro-batches of `micro` rows; padding only ever follows a sequence, so causal attention
 * never sees it.  The gradient of the objective with respect to the logits is built by hand
 * (dJ/dlogp times onehot - softmax) and pushed through r1_model_backward_logits. */
#include <config.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "r1_comm.h"
#include "r1_grpo.h"

struct r1_grpo {
    r1_grpo_cfg cfg;
    r1_model *m;      /* borrowed policy */
    r1_model *ref;    /* owned frozen reference (beta > 0) */
    r1_adamw *opt;
    int64_t step;
    int64_t next_prompt;
    r1_rng rng;
    int n_moe, E;
    int *moe_layers;
    float *load, *bias; /* [n_moe, E] for the stats */
    int exhausted;      /* the last step found no group with unequal rewards */
    const r1_comm *comm; /* data parallelism (NULL: one process) */
};

r1_grpo_cfg r1_grpo_defaults(void)
{
    r1_grpo_cfg c;
    memset(&c, 0, sizeof c);
    c.group = 8;
    c.prompts = 8;
    c.mu = 1;
    c.eps_low = c.eps_high = 0.2f;
    c.beta = 0.04f;
    c.temperature = 1.0f;
    c.top_p = 1.0f;
    c.max_new = 64;
    c.agg = R1_GRPO_SEQ_MEAN;
    c.std_scale = 1;
    c.max_refill = 3;
    c.micro = 16;
    c.balance_gamma = 0.001f;
    c.mtp_lambda = 0.1f; /* DeepSeek-V3's weight late in pretraining */
    c.top_entropy_quantile = 1.0f;
    c.ref_sync_steps = 512; /* TRL's defaults for TR-DPO's sync */
    c.ref_mixup_alpha = 0.6f;
    c.opt = r1_adamw_defaults();
    c.opt.lr = 1e-5f;
    c.opt.min_lr = 1e-5f;
    c.opt.weight_decay = 0.0f;
    return c;
}


r1_status r1_grpo_new(r1_grpo **out, r1_model *m, const r1_grpo_cfg *cfg, r1_error *err)
{
    *out = NULL;
    r1_grpo_cfg c = cfg ? *cfg : r1_grpo_defaults();
    if (c.group < 2 || c.group > 64)
        return r1_error_set(err, R1_EINVAL, "grpo: group is %d; expected 2..64 completions",
                            c.group);
    if (c.prompts < 1 || c.mu < 1 || c.max_new < 1 || c.micro < 1)
        return r1_error_set(err, R1_EINVAL,
                            "grpo: prompts, mu, max_new and micro must be >= 1");
    if (c.eps_low < 0 || c.eps_high < 0 || c.beta < 0)
        return r1_error_set(err, R1_EINVAL, "grpo: eps_low, eps_high and beta must be >= 0");
    if ((int)c.agg < 0 || c.agg > R1_GRPO_CISPO || c.is_level < 0 || c.is_level > 1 ||
        c.multi_objective < 0 || c.multi_objective > 1)
        return r1_error_set(err, R1_EINVAL, "grpo: unknown loss_type, importance_sampling_level "
                            "or multi_objective_aggregation");
    if (c.agg == R1_GRPO_CISPO && c.eps_high < 1)
        return r1_error_set(err, R1_EINVAL, "grpo: loss_type cispo reads eps_high as the cap on "
                            "the importance weight itself (epsilon_max; 5 in ScaleRL, as TRL "
                            "recommends), got %g: a cap below 1 would shrink every token's "
                            "gradient", c.eps_high);
    if (!(c.top_entropy_quantile >= 0 && c.top_entropy_quantile <= 1) ||
        !(c.off_policy_mask >= 0) || !(c.ref_mixup_alpha >= 0 && c.ref_mixup_alpha <= 1) ||
        (c.sync_ref && c.ref_sync_steps < 1))
        return r1_error_set(err, R1_EINVAL, "grpo: top_entropy_quantile and "
                            "ref_model_mixup_alpha must be in 0..1, off_policy_mask_threshold "
                            ">= 0, ref_model_sync_steps >= 1");
    if (c.nrewards < 1 || c.nrewards > R1_GRPO_MAX_REWARDS)
        return r1_error_set(err, R1_EINVAL, "grpo: between 1 and %d reward functions, got %d",
                            R1_GRPO_MAX_REWARDS, c.nrewards);
    r1_grpo *g = calloc(1, sizeof *g);
    if (!g)
        return r1_error_set(err, R1_ENOMEM, "out of memory");
    g->cfg = c;
    g->m = m;
    r1_rng_seed(&g->rng, c.seed);
    r1_status s = r1_adamw_new(&g->opt, m, &c.opt, err);
    if (s == R1_OK && c.beta > 0) {
        /* DeepSeekMath: the reference is the policy at the start (reset periodically) */
        s = r1_model_new(&g->ref, r1_model_config(m), err);
        if (s == R1_OK)
            s = r1_model_copy_params(g->ref, m, err);
    }
    const r1_config *mc = r1_model_config(m);
    g->E = mc->n_routed_experts;
    g->moe_layers = calloc(mc->num_hidden_layers + 1, sizeof(int));
    for (int l = 0; g->moe_layers && l < mc->num_hidden_layers; l++)
        if (r1_model_router_bias(m, l))
            g->moe_layers[g->n_moe++] = l;
    size_t nl = (size_t)(g->n_moe ? g->n_moe : 1) * (g->E ? g->E : 1);
    g->load = calloc(nl, sizeof(float));
    g->bias = calloc(nl, sizeof(float));
    if (s == R1_OK && (!g->moe_layers || !g->load || !g->bias))
        s = r1_error_set(err, R1_ENOMEM, "out of memory");
    if (s != R1_OK) {
        r1_grpo_free(g);
        return s;
    }
    *out = g;
    return R1_OK;
}

void r1_grpo_free(r1_grpo *g)
{
    if (!g)
        return;
    r1_model_free(g->ref);
    r1_adamw_free(g->opt);
    free(g->moe_layers);
    free(g->load);
    free(g->bias);
    free(g);
}

r1_status r1_grpo_set_comm(r1_grpo *g, const r1_comm *c, r1_error *err)
{
    if (c && c->size > g->cfg.prompts)
        return r1_error_set(err, R1_EINVAL, "grpo: %d prompts per step are fewer than the %d "
                            "ranks; each rank needs a group at least", g->cfg.prompts, c->size);
    g->comm = c;
    return R1_OK;
}

r1_adamw *r1_grpo_optimizer(r1_grpo *g) { return g->opt; }
int64_t r1_grpo_steps(const r1_grpo *g) { return g->step; }
int r1_grpo_exhausted(const r1_grpo *g) { return g->exhausted; }
const r1_model *r1_grpo_reference(const r1_grpo *g) { return g->ref; }

int r1_grpo_advantages(const r1_grpo_cfg *cfg, const double *r, int G, double *adv)
{
    double mean = 0, var = 0;
    for (int i = 0; i < G; i++)
        mean += r[i];
    mean /= G;
    for (int i = 0; i < G; i++)
        var += (r[i] - mean) * (r[i] - mean);
    /* the sample standard deviation (n - 1), as TRL and the DeepSeekMath code compute it */
    double sd = G > 1 ? sqrt(var / (G - 1)) : 0;
    int zero = 1;
    for (int i = 0; i < G; i++)
        zero &= r[i] == r[0];
    for (int i = 0; i < G; i++)
        adv[i] = cfg->std_scale ? (r[i] - mean) / (sd + 1e-4) : r[i] - mean;
    return zero;
}

int r1_grpo_advantages_decoupled(const double *r, int G, int nr, const double *wts, double *adv)
{
    double col[64], a[64];
    for (int i = 0; i < G; i++)
        adv[i] = 0;
    r1_grpo_cfg scaled;
    memset(&scaled, 0, sizeof scaled);
    scaled.std_scale = 1; /* GDPO normalises every reward by its own std in the group */
    for (int k = 0; k < nr; k++) {
        for (int i = 0; i < G; i++)
            col[i] = r[(size_t)i * nr + k];
        r1_grpo_advantages(&scaled, col, G, a);
        for (int i = 0; i < G; i++)
            adv[i] += wts[k] * a[i];
    }
    int zero = 1;
    for (int i = 0; i < G; i++)
        zero &= adv[i] == adv[0];
    return zero;
}

void r1_grpo_batch_normalize(double *adv, int n)
{
    double mean = 0, var = 0;
    for (int i = 0; i < n; i++)
        mean += adv[i];
    mean /= n > 0 ? n : 1;
    for (int i = 0; i < n; i++)
        var += (adv[i] - mean) * (adv[i] - mean);
    double sd = n > 1 ? sqrt(var / (n - 1)) : 0; /* n - 1, as torch.std */
    for (int i = 0; i < n; i++)
        adv[i] = (adv[i] - mean) / (sd + 1e-4);
}

/* The policy term of one token (or of a whole completion at sequence level) with importance
 * ratio rho and advantage A: its value per unit of lp for CISPO (whose weight is a constant),
 * else min(rho A, clip(rho) A); *slope gets the derivative with respect to log rho (CISPO: the
 * stopped weight, the derivative with respect to lp), *clipped whether clipping acted. */
static double policy_term(const r1_grpo_cfg *c, double rho, double A, double *slope,
                          int *clipped)
{
    if (c->agg == R1_GRPO_CISPO) {
        double w = rho > c->eps_high ? c->eps_high : rho;
        *clipped = rho > c->eps_high;
        *slope = w * A;
        return w * A; /* times lp, by the caller */
    }
    /* the clipped branch wins (and has no gradient) when A > 0 and rho > 1 + eps_high, or
     * A < 0 and rho < 1 - eps_low */
    int clip = (A > 0 && rho > 1 + c->eps_high) || (A < 0 && rho < 1 - c->eps_low);
    double cl = rho < 1 - c->eps_low ? 1 - c->eps_low : rho > 1 + c->eps_high ? 1 + c->eps_high
                                                                                : rho;
    *clipped = clip;
    *slope = clip ? 0 : A * rho;
    return fmin(rho * A, cl * A);
}

double r1_grpo_token_grad(const r1_grpo_cfg *c, double lp, double lp_old, double lp_ref,
                          double A, int *clipped)
{
    double rho = exp(lp - lp_old), d;
    int clip;
    policy_term(c, rho, A, &d, &clip);
    if (clipped)
        *clipped = clip;
    /* k3: KL = exp(lp_ref - lp) - (lp_ref - lp) - 1;  dKL/dlp = 1 - exp(lp_ref - lp); with the
     * bias correction rho KL, whose derivative is rho KL + rho dKL/dlp */
    if (c->beta > 0) {
        double e = exp(lp_ref - lp), k3 = e - (lp_ref - lp) - 1;
        d -= c->bias_correction_kl ? c->beta * rho * (k3 + 1 - e) : c->beta * (1 - e);
    }
    return d;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double r1_grpo_seq_terms(const r1_grpo_cfg *c, int L, double wt, double A, const double *lp,
                         const double *ent, const float *lp_old, const float *lp_ref,
                         const float *lp_samp, double *d, double *scratch, long *clipped,
                         long *kept, int *masked)
{
#define OLD(t) (lp_old ? (double)lp_old[t] : lp[t])
    double J = 0;
    /* DeepSeek-V3.2's off-policy mask: a completion with a negative advantage that the sampler
     * found much likelier than the policy does now leaves the policy term */
    int off = 0;
    if (c->off_policy_mask > 0 && A < 0 && L > 0) {
        double kl = 0;
        for (int t = 0; t < L; t++)
            kl += (lp_samp ? (double)lp_samp[t] : OLD(t)) - lp[t];
        off = kl / L > c->off_policy_mask;
    }
    *masked = off;
    /* "Beyond the 80/20 rule": the policy term keeps the tokens whose entropy is at least the
     * completion's (1 - rho) quantile (linear interpolation between order statistics, as
     * torch.quantile) */
    double thr = -INFINITY;
    if (c->top_entropy_quantile < 1 && L > 0) {
        memcpy(scratch, ent, sizeof(double) * L);
        qsort(scratch, L, sizeof(double), cmp_double);
        double pos = (1.0 - c->top_entropy_quantile) * (L - 1);
        int lo = (int)floor(pos), hi = lo + 1 < L ? lo + 1 : lo;
        thr = scratch[lo] + (pos - lo) * (scratch[hi] - scratch[lo]);
    }
    double W = 0; /* the weight the policy term carries in this completion */
    for (int t = 0; t < L; t++) {
        int keep = ent[t] >= thr;
        *kept += keep;
        scratch[t] = keep && !off ? wt : 0; /* each token's weight in the policy term */
        W += scratch[t];
        d[t] = 0;
    }
    double s = 1; /* the sequence-level ratio (GSPO), or 1 */
    if (c->is_level == 1 && L > 0) {
        double lr = 0;
        for (int t = 0; t < L; t++)
            lr += lp[t] - OLD(t);
        s = exp(lr / L);
        double slope;
        int clip;
        double f = policy_term(c, s, A, &slope, &clip);
        *clipped += clip ? L : 0;
        for (int t = 0; t < L; t++) {
            if (c->agg == R1_GRPO_CISPO) { /* the weight is stopped: only lp_t moves */
                J += scratch[t] * f * lp[t];
                d[t] += scratch[t] * slope;
            } else { /* d s / d lp_t = s / L for every token */
                J += scratch[t] * f;
                d[t] += W * slope / L;
            }
        }
    } else {
        for (int t = 0; t < L; t++) {
            double slope;
            int clip;
            double f = policy_term(c, exp(lp[t] - OLD(t)), A, &slope, &clip);
            *clipped += clip;
            J += scratch[t] * (c->agg == R1_GRPO_CISPO ? f * lp[t] : f);
            d[t] += scratch[t] * slope;
        }
    }
    /* the KL to the reference, on every token; with the bias correction times the ratio
     * (the token's, or the sequence's at sequence level) */
    if (c->beta > 0 && lp_ref) {
        double sk = 0; /* sum of wt k3 over the tokens, for the sequence ratio's derivative */
        for (int t = 0; t < L; t++) {
            double e = exp(lp_ref[t] - lp[t]), k3 = e - (lp_ref[t] - lp[t]) - 1;
            double r = c->bias_correction_kl ? (c->is_level ? s : exp(lp[t] - OLD(t))) : 1;
            J -= c->beta * wt * r * k3;
            d[t] -= c->beta * wt * r * (1 - e);
            if (c->bias_correction_kl && !c->is_level)
                d[t] -= c->beta * wt * r * k3;
            sk += wt * k3;
        }
        if (c->bias_correction_kl && c->is_level)
            for (int t = 0; t < L; t++)
                d[t] -= c->beta * sk * s / L;
    }
    /* the entropy bonus (its gradient acts on the logits: the caller adds it) */
    for (int t = 0; t < L && c->entropy_coef != 0; t++)
        J += c->entropy_coef * wt * ent[t];
    return J;
#undef OLD
}

/* ------------------------------------------------------------------ one step */

typedef struct {
    int64_t index;
    int32_t *prompt;
    int plen;
    int32_t *comp[64];   /* owned copies */
    int clen[64];
    unsigned char cut[64]; /* 1: the completion ran into max_new (no stop token) */
    float *lps[64];      /* sampling-time log-probs under the plain model */
    int32_t *proute;     /* [plen, n_moe, K] the rollout's experts for the prompt */
    int32_t *croute[64]; /* [clen, n_moe, K] ... and for each completion */
    double *rewards;     /* [G, nr] */
    double totals[64], adv[64];
    int zero;
} group;

/* Frees what groups gs[0..n) own and zeroes them (not the array itself). */
static void clear_groups(group *gs, int n, int G)
{
    for (int i = 0; i < n; i++) {
        free(gs[i].prompt);
        free(gs[i].rewards);
        free(gs[i].proute);
        for (int j = 0; j < G; j++) {
            free(gs[i].comp[j]);
            free(gs[i].lps[j]);
            free(gs[i].croute[j]);
        }
        memset(&gs[i], 0, sizeof gs[i]);
    }
}

/* Hands one group to the caller's group callback. */
static r1_status show_group(r1_grpo *g, const group *gr, r1_grpo_group_fn group_cb, void *user,
                            r1_error *err)
{
    const r1_grpo_cfg *c = &g->cfg;
    r1_grpo_group view = {gr->index,  gr->prompt,   gr->plen, c->group,
                          (const int32_t *const *)gr->comp, gr->clen, gr->rewards,
                          gr->totals, gr->adv,      gr->zero && c->dynamic_sampling};
    return group_cb(user, &view)
               ? r1_error_set(err, R1_ECANCELED, "grpo: the group callback stopped the step")
               : R1_OK;
}

/* Where a sampling round's prompts and streams come from: one process numbers its prompts
 * with the counter and draws the round's seed; a data-parallel rank is given its share */
typedef struct {
    int64_t index0; /* the first prompt's number (-1: the counter, g->next_prompt) */
    int given;      /* 1: seed and row0 below; 0: draw the seed, row0 0 */
    uint64_t seed;
    int64_t row0;
} round_src;

/* Samples and scores `want` new groups into gs[*have ...]. */
static r1_status sample_groups(r1_grpo *g, int want, const round_src *src, group *gs,
                               int *have, r1_grpo_prompt_fn prompts, r1_grpo_score_fn score,
                               r1_grpo_group_fn group_cb, void *user, r1_grpo_stats *st,
                               int *zero_count, int *seen, r1_error *err)
{
    const r1_grpo_cfg *c = &g->cfg;
    int G = c->group, cap = r1_model_config(g->m)->max_position_embeddings;
    int32_t *buf = malloc(sizeof(int32_t) * cap);
    const int32_t **ps = malloc(sizeof(int32_t *) * want * G);
    int *lens = malloc(sizeof(int) * want * G);
    r1_status s = R1_OK;
    if (!buf || !ps || !lens) {
        s = r1_error_set(err, R1_ENOMEM, "out of memory");
        goto out;
    }
    group *ng = gs + *have;
    for (int i = 0; i < want && s == R1_OK; i++) {
        int64_t index = src->index0 >= 0 ? src->index0 + i : g->next_prompt;
        int n = prompts(user, index, buf, cap - c->max_new);
        if (n < 0) {
            s = r1_error_set(err, R1_ECANCELED, "grpo: the prompt source stopped the step");
            break;
        }
        if (n == 0) {
            s = r1_error_set(err, R1_EINVAL, "grpo: prompt %lld is empty", (long long)index);
            break;
        }
        memset(&ng[i], 0, sizeof ng[i]);
        ng[i].index = index;
        if (src->index0 < 0)
            g->next_prompt++;
        ng[i].prompt = malloc(sizeof(int32_t) * n);
        ng[i].rewards = calloc((size_t)G * c->nrewards, sizeof(double));
        if (!ng[i].prompt || !ng[i].rewards) {
            s = r1_error_set(err, R1_ENOMEM, "out of memory");
            break;
        }
        memcpy(ng[i].prompt, buf, sizeof(int32_t) * n);
        ng[i].plen = n;
        for (int j = 0; j < G; j++) {
            ps[i * G + j] = ng[i].prompt;
            lens[i * G + j] = n;
        }
    }
    if (s != R1_OK) {
        clear_groups(ng, want, G);
        goto out;
    }
    /* sampling: every group's G rows in one batched generation */
    double t0 = r1_now();
    r1_gen_cfg gc = r1_gen_defaults();
    gc.max_tokens = c->max_new;
    gc.temperature = c->temperature;
    gc.top_k = c->top_k;
    gc.top_p = c->top_p;
    gc.seed = src->given ? src->seed : r1_rng_u64(&g->rng);
    gc.row0 = src->given ? src->row0 : 0;
    gc.stop_ids = c->stop_ids;
    gc.n_stop_ids = c->n_stop;
    gc.bf16 = c->rollout_dtype == 1; /* a fast low-precision sampler, as RL frameworks run */
    gc.fp8 = c->rollout_dtype == 2;
    gc.prompt_routing = g->n_moe > 0; /* the mismatch meter and routing replay read it */
    r1_gen_result *res = NULL;
    s = r1_generate(g->m, ps, lens, want * G, &gc, NULL, &res, err);
    st->t_sample += r1_now() - t0;
    if (s != R1_OK) {
        r1_gen_result_free(res);
        clear_groups(ng, want, G);
        goto out;
    }
    long gen_tokens = 0;
    t0 = r1_now();
    size_t nk = (size_t)res->n_moe * res->K; /* routing entries per token */
    for (int i = 0; i < want && s == R1_OK; i++) {
        group *gr = &ng[i];
        if (nk && res->row[i * G].prompt_experts) {
            gr->proute = malloc(sizeof(int32_t) * gr->plen * nk);
            if (!gr->proute) {
                s = r1_error_set(err, R1_ENOMEM, "out of memory");
                break;
            }
            memcpy(gr->proute, res->row[i * G].prompt_experts, sizeof(int32_t) * gr->plen * nk);
        }
        for (int j = 0; j < G; j++) {
            r1_gen_row *o = &res->row[i * G + j];
            gr->clen[j] = o->n;
            gr->cut[j] = o->finish == R1_FINISH_LENGTH;
            gen_tokens += o->n;
            gr->comp[j] = malloc(sizeof(int32_t) * (o->n ? o->n : 1));
            gr->lps[j] = malloc(sizeof(float) * (o->n ? o->n : 1));
            gr->croute[j] = malloc(sizeof(int32_t) * (o->n ? o->n : 1) * (nk ? nk : 1));
            if (!gr->comp[j] || !gr->lps[j] || !gr->croute[j]) {
                s = r1_error_set(err, R1_ENOMEM, "out of memory");
                break;
            }
            memcpy(gr->comp[j], o->tokens, sizeof(int32_t) * o->n);
            memcpy(gr->lps[j], o->logprobs_model, sizeof(float) * o->n);
            memcpy(gr->croute[j], o->experts, sizeof(int32_t) * o->n * nk);
            double *rw = gr->rewards + (size_t)j * c->nrewards;
            if (score(user, gr->index, j, gr->prompt, gr->plen, o->tokens, o->n, o->finish,
                      rw)) {
                s = r1_error_set(err, R1_ECANCELED, "grpo: a reward function stopped the step");
                break;
            }
            double tot = 0;
            for (int k = 0; k < c->nrewards && s == R1_OK; k++) {
                tot += c->reward_weights[k] * rw[k];
                if (!isfinite(rw[k]) || !isfinite(tot))
                    s = r1_error_set(err, R1_EINVAL, "grpo: step %lld, prompt %lld, completion "
                                     "%d: reward '%s' is %g%s; a reward must be a finite "
                                     "number (the run stops, the last checkpoint is kept)",
                                     (long long)g->step + 1, (long long)gr->index, j + 1,
                                     c->reward_names[k], rw[k],
                                     isfinite(rw[k]) ? " (its weighted total overflows)" : "");
            }
            gr->totals[j] = tot;
        }
        if (s != R1_OK)
            break;
        gr->zero = c->multi_objective
                       ? r1_grpo_advantages_decoupled(gr->rewards, G, c->nrewards,
                                                      c->reward_weights, gr->adv)
                       : r1_grpo_advantages(c, gr->totals, G, gr->adv);
        for (int j = 0; j < G && s == R1_OK; j++)
            if (!isfinite(gr->adv[j]))
                s = r1_error_set(err, R1_EINVAL, "grpo: step %lld, prompt %lld: the advantage "
                                 "of completion %d is not finite (rewards too large?); the run "
                                 "stops, the last checkpoint is kept",
                                 (long long)g->step + 1, (long long)gr->index, j + 1);
        if (s != R1_OK)
            break;
        *zero_count += gr->zero;
        (*seen)++;
        /* the groups dynamic sampling drops are shown now; the kept ones once the step has
         * their final advantages (GDPO normalises them over the whole batch) */
        if (group_cb && gr->zero && c->dynamic_sampling)
            s = show_group(g, gr, group_cb, user, err);
    }
    st->t_score += r1_now() - t0;
    st->gen_tokens_per_s = gen_tokens; /* tokens for now; turned into a rate by the caller */
    r1_gen_result_free(res);
    if (s != R1_OK) {
        clear_groups(ng, want, G);
        goto out;
    }
    /* dynamic sampling keeps only groups that teach something */
    int kept = 0;
    for (int i = 0; i < want; i++) {
        if (c->dynamic_sampling && ng[i].zero) {
            clear_groups(&ng[i], 1, G);
            continue;
        }
        if (kept != i) {
            ng[kept] = ng[i];
            memset(&ng[i], 0, sizeof ng[i]);
        }
        kept++;
    }
    *have += kept;
out:
    free(buf);
    free(ps);
    free(lens);
    return s;
}

/* ------------------------------------------------------------------ the objective */

/* Packs sequences k0..k0+b of the batch into tok[b, Tc] (padding after each sequence, which
 * causal attention never sees) and returns Tc. */
static int pack(const r1_grpo_batch *bt, int k0, int b, int32_t *tok)
{
    int Tc = 0;
    for (int i = 0; i < b; i++)
        Tc = bt->lens[k0 + i] > Tc ? bt->lens[k0 + i] : Tc;
    for (int i = 0; i < b; i++) {
        int32_t *row = tok + (size_t)i * Tc;
        memcpy(row, bt->seqs[k0 + i], sizeof(int32_t) * bt->lens[k0 + i]);
        for (int t = bt->lens[k0 + i]; t < Tc; t++)
            row[t] = 0;
    }
    return Tc;
}

/* softmax of z[V] into p (may be NULL) and log p[y] */
static double log_softmax(const float *z, int V, int y, float *p)
{
    double mx = z[0], sum = 0;
    for (int v = 1; v < V; v++)
        mx = z[v] > mx ? z[v] : mx;
    for (int v = 0; v < V; v++) {
        double e = exp(z[v] - mx);
        sum += e;
        if (p)
            p[v] = (float)e;
    }
    if (p)
        for (int v = 0; v < V; v++)
            p[v] = (float)(p[v] / sum);
    return z[y] - mx - log(sum);
}

/* softmax of z[V] into p, log p[y] returned, the entropy into *H and log-sum-exp into *lse */
static double softmax_ent(const float *z, int V, int y, float *p, double *H, double *lse)
{
    double mx = z[0], sum = 0, ez = 0;
    for (int v = 1; v < V; v++)
        mx = z[v] > mx ? z[v] : mx;
    for (int v = 0; v < V; v++) {
        double e = exp(z[v] - mx);
        sum += e;
        ez += e * (z[v] - mx);
        p[v] = (float)e;
    }
    for (int v = 0; v < V; v++)
        p[v] = (float)(p[v] / sum);
    double ls = log(sum);
    *H = ls - ez / sum; /* -sum p log p = log S - E[z - mx] */
    *lse = mx + ls;
    return z[y] - mx - ls;
}

typedef struct {
    int M, maxT;
    long ntok;
    double *lpb, *hb, *db, *scr; /* [maxT] one completion's log-probs, entropies, dJ/dlp */
    int32_t *tok;
    float *zw, *dl, *p;
    float *mw;          /* [M * maxT] the MTP loss's weights: 1 on completion tokens */
    int n_moe, K;       /* with routes: the main model's MoE layers, experts per token */
    int moe[R1_GRPO_MAX_MOE];
    int32_t *force;     /* [n_moe, M * maxT, K] routing replay's experts */
    int32_t *sel;       /* [M * maxT, K] the forward's choice, for the flips */
} work;

static r1_status work_new(work *w, r1_model *m, const r1_grpo_batch *b, int micro, int grad,
                          r1_error *err)
{
    memset(w, 0, sizeof *w);
    int V = r1_model_config(m)->vocab_size;
    for (int k = 0; k < b->nseq; k++) {
        if (b->plens[k] < 1 || b->lens[k] < b->plens[k])
            return r1_error_set(err, R1_EINVAL, "grpo: sequence %d: prompt %d of %d tokens", k,
                                b->plens[k], b->lens[k]);
        w->ntok += b->lens[k] - b->plens[k];
        w->maxT = b->lens[k] > w->maxT ? b->lens[k] : w->maxT;
    }
    w->M = micro < b->nseq ? micro : b->nseq;
    if (w->M < 1)
        w->M = 1;
    size_t cells = (size_t)w->M * (w->maxT ? w->maxT : 1);
    w->tok = malloc(sizeof(int32_t) * cells);
    w->zw = calloc(cells, sizeof(float));
    w->p = malloc(sizeof(float) * V);
    w->dl = grad ? malloc(sizeof(float) * cells * V) : NULL;
    w->mw = grad ? malloc(sizeof(float) * cells) : NULL;
    size_t T1 = w->maxT ? w->maxT : 1;
    w->lpb = malloc(sizeof(double) * T1);
    w->hb = malloc(sizeof(double) * T1);
    w->db = malloc(sizeof(double) * T1);
    w->scr = malloc(sizeof(double) * T1);
    if (!w->tok || !w->zw || !w->p || (grad && (!w->dl || !w->mw)) || !w->lpb || !w->hb ||
        !w->db || !w->scr)
        return r1_error_set(err, R1_ENOMEM, "out of memory for the GRPO batch");
    if (b->routes) {
        const r1_config *c = r1_model_config(m);
        w->K = c->num_experts_per_tok;
        for (int l = 0; l < c->num_hidden_layers && w->n_moe < R1_GRPO_MAX_MOE; l++)
            if (r1_model_router_bias(m, l))
                w->moe[w->n_moe++] = l;
        w->force = b->replay ? malloc(sizeof(int32_t) * (w->n_moe ? w->n_moe : 1) * cells * w->K)
                             : NULL;
        w->sel = malloc(sizeof(int32_t) * cells * (w->K ? w->K : 1));
        if ((b->replay && !w->force) || !w->sel)
            return r1_error_set(err, R1_ENOMEM, "out of memory for the GRPO batch");
    }
    return R1_OK;
}

/* Routing replay for sequences k0..k0+n of b packed [n, Tc]: every MoE layer gets the
 * rollout's experts (padding positions, which nothing reads, experts 0..K-1). */
static r1_status force_routes(r1_model *m, const r1_grpo_batch *b, work *w, int k0, int n,
                              int Tc, r1_error *err)
{
    int K = w->K, nm = w->n_moe;
    for (int j = 0; j < nm; j++) {
        int32_t *f = w->force + (size_t)j * w->M * w->maxT * K;
        for (int i = 0; i < n; i++)
            for (int t = 0; t < Tc; t++) {
                int32_t *dst = f + ((size_t)i * Tc + t) * K;
                if (t < b->lens[k0 + i])
                    memcpy(dst, b->routes[k0 + i] + ((size_t)t * nm + j) * K,
                           sizeof(int32_t) * K);
                else
                    for (int k = 0; k < K; k++)
                        dst[k] = k;
            }
        r1_status s = r1_model_force_routing(m, w->moe[j], f, n * Tc, err);
        if (s != R1_OK)
            return s;
    }
    return R1_OK;
}

static void unforce(r1_model *m, work *w)
{
    for (int j = 0; j < w->n_moe && w->force; j++)
        r1_model_force_routing(m, w->moe[j], NULL, 0, NULL);
}

/* The mismatch meter: adds to b->flips[j] the completion tokens of sequences k0..k0+n whose
 * experts in the last forward differ from the rollout's. */
static void count_flips(r1_model *m, const r1_grpo_batch *b, work *w, int k0, int n, int Tc)
{
    int K = w->K, nm = w->n_moe;
    for (int j = 0; j < nm && b->flips; j++) {
        r1_model_routing(m, w->moe[j], w->sel, NULL);
        for (int i = 0; i < n; i++)
            for (int t = b->plens[k0 + i]; t < b->lens[k0 + i]; t++)
                b->flips[j] += memcmp(w->sel + ((size_t)i * Tc + t) * K,
                                      b->routes[k0 + i] + ((size_t)t * nm + j) * K,
                                      sizeof(int32_t) * K) != 0;
    }
}

static void work_free(work *w)
{
    free(w->force);
    free(w->sel);
    free(w->tok);
    free(w->zw);
    free(w->dl);
    free(w->mw);
    free(w->p);
    free(w->lpb);
    free(w->hb);
    free(w->db);
    free(w->scr);
}

r1_status r1_grpo_logprobs(r1_model *m, const r1_grpo_batch *bin, int micro, float *lp,
                           r1_error *err)
{
    r1_grpo_batch bb = *bin; /* the model's own routing: no replay, no meter */
    bb.routes = NULL, bb.replay = 0, bb.flips = NULL;
    const r1_grpo_batch *b = &bb;
    work w;
    int V = r1_model_config(m)->vocab_size;
    r1_status s = work_new(&w, m, b, micro, 0, err);
    r1_fwd_opts fo = r1_fwd_defaults();
    fo.no_mtp = 1;
    fo.loss_weights = w.zw;
    long q = 0;
    for (int k0 = 0; s == R1_OK && k0 < b->nseq; k0 += w.M) {
        int n = b->nseq - k0 < w.M ? b->nseq - k0 : w.M;
        int Tc = pack(b, k0, n, w.tok);
        if ((s = r1_model_forward(m, w.tok, n, Tc, &fo, NULL, err)) != R1_OK)
            break;
        const float *lg = r1_model_logits(m);
        for (int i = 0; i < n; i++)
            for (int t = b->plens[k0 + i]; t < b->lens[k0 + i]; t++)
                lp[q++] = (float)log_softmax(lg + ((size_t)i * Tc + t - 1) * V, V,
                                             b->seqs[k0 + i][t], NULL);
    }
    work_free(&w);
    return s;
}

r1_status r1_grpo_objective(r1_model *m, const r1_grpo_cfg *c, const r1_grpo_batch *b,
                            const float *lp_old, const float *lp_ref, float *lp_now,
                            r1_grpo_obj *out, r1_error *err)
{
    work w;
    int V = r1_model_config(m)->vocab_size, nseq = b->nseq;
    r1_status s = work_new(&w, m, b, c->micro, 1, err);
    r1_fwd_opts fo = r1_fwd_defaults();
    fo.loss_weights = w.zw; /* no cross-entropy: the objective comes in through dlogits */
    /* the MTP loss on the sampled completions: (lambda / D) sum_k of depth k's cross-entropy
     * summed over the completion tokens it predicts, over all the batch's completion tokens */
    int mtp = c->mtp_lambda > 0 && r1_model_config(m)->num_nextn_predict_layers > 0;
    fo.no_mtp = !mtp;
    fo.mtp_lambda = c->mtp_lambda;
    fo.mtp_weights = w.mw;
    /* with ranks, the averages are over the whole step's sequences and tokens */
    long ntok = b->ntok_total > 0 ? b->ntok_total : w.ntok;
    int nall = b->nseq_total > 0 ? b->nseq_total : nseq;
    fo.mtp_denom = (double)(ntok ? ntok : 1);
    double J = 0, kl = 0, ent = 0, mtp_loss = 0;
    long q = 0, clip = 0, nkept = 0, nmasked = 0;
    for (int k0 = 0; s == R1_OK && k0 < nseq; k0 += w.M) {
        if (r1_interrupted()) {
            s = r1_error_set(err, R1_ECANCELED, "grpo: interrupted");
            break;
        }
        int n = nseq - k0 < w.M ? nseq - k0 : w.M;
        int Tc = pack(b, k0, n, w.tok);
        if (w.force && (s = force_routes(m, b, &w, k0, n, Tc, err)) != R1_OK)
            break;
        for (int i = 0; mtp && i < n; i++)
            for (int t = 0; t < Tc; t++)
                w.mw[(size_t)i * Tc + t] = t >= b->plens[k0 + i] && t < b->lens[k0 + i];
        r1_loss lo;
        if ((s = r1_model_forward(m, w.tok, n, Tc, &fo, &lo, err)) != R1_OK)
            break;
        mtp_loss += lo.mtp;
        if (w.sel)
            count_flips(m, b, &w, k0, n, Tc);
        const float *lg = r1_model_logits(m);
        memset(w.dl, 0, sizeof(float) * (size_t)n * Tc * V);
        for (int i = 0; i < n; i++) {
            int k = k0 + i, L = b->lens[k] - b->plens[k];
            /* the aggregation: how much each token of this sequence weighs */
            double wt = c->agg == R1_GRPO_TOKEN_MEAN || c->agg == R1_GRPO_CISPO
                            ? 1.0 / (ntok ? ntok : 1)
                        : c->agg == R1_GRPO_CONST ? 1.0 / ((double)nall * c->max_new)
                                                  : 1.0 / ((double)nall * (L ? L : 1));
            /* first the completion's log-probs and entropies, then its terms, which may
             * depend on all of them (the sequence ratio, the masks), then the logits' gradient */
            for (int t = 0; t < L; t++) {
                size_t at = (size_t)i * Tc + b->plens[k] + t - 1; /* the row predicting it */
                double lse;
                w.lpb[t] = softmax_ent(lg + at * V, V, b->seqs[k][b->plens[k] + t], w.p, &w.hb[t],
                                       &lse);
                if (lp_now)
                    lp_now[q + t] = (float)w.lpb[t];
                ent += w.hb[t];
                if (c->beta > 0 && lp_ref) {
                    double r = lp_ref[q + t] - w.lpb[t];
                    kl += exp(r) - r - 1;
                }
            }
            long kept = 0;
            int off = 0;
            J += r1_grpo_seq_terms(c, L, wt, b->adv[k], w.lpb, w.hb, lp_old ? lp_old + q : NULL,
                                   lp_ref ? lp_ref + q : NULL,
                                   b->lp_samp ? b->lp_samp + q : NULL, w.db, w.scr, &clip, &kept,
                                   &off);
            nkept += kept;
            nmasked += off;
            for (int t = 0; t < L; t++) {
                size_t at = (size_t)i * Tc + b->plens[k] + t - 1;
                int y = b->seqs[k][b->plens[k] + t];
                double H, lse;
                const float *z = lg + at * V;
                softmax_ent(z, V, y, w.p, &H, &lse);
                /* loss = -J:  dloss/dz = -dJ/dlp (onehot - softmax) - coef wt dH/dz, with
                 * dH/dz_v = -p_v (log p_v + H) */
                float *d = w.dl + at * V, f = (float)(-w.db[t]);
                double eb = c->entropy_coef * wt;
                for (int v = 0; v < V; v++)
                    d[v] = (float)(-f * w.p[v] + (eb != 0 ? eb * w.p[v] * (z[v] - lse + H) : 0));
                d[y] += f;
            }
            q += L;
        }
        s = r1_model_backward_logits(m, w.dl, err);
        unforce(m, &w); /* the backward has read the experts; the buffer is reused */
    }
    unforce(m, &w);
    if (out && s == R1_OK) {
        long nt = w.ntok ? w.ntok : 1;
        out->objective = J;
        out->kl = kl / nt;
        out->clip_frac = (double)clip / nt;
        out->entropy = ent / nt;
        out->entropy_kept = (double)nkept / nt;
        out->masked = nseq ? (double)nmasked / nseq : 0;
        out->mtp_loss = mtp ? mtp_loss / c->mtp_lambda : 0;
    }
    work_free(&w);
    return s;
}

/* ------------------------------------------------------------------ the training pass */

typedef struct {
    double kl, clip, ent, mism, mtp, kept, masked;
    long ntok;
    long flips[R1_GRPO_MAX_MOE]; /* per MoE layer: completion tokens routed differently */
    int metered;                 /* flips were counted */
} pass_stats;

/* Runs the mu inner updates over the kept groups. */
static r1_status train_pass(r1_grpo *g, group *gs, int ng, int ng_all, pass_stats *ps,
                            double *gnorm, double *lr, r1_error *err)
{
    int dp = g->comm && g->comm->size > 1;
    const r1_grpo_cfg *c = &g->cfg;
    int G = c->group, nseq = ng * G;
    memset(ps, 0, sizeof *ps);
    const int32_t **seqs = calloc(nseq, sizeof(int32_t *));
    int32_t **own = calloc(nseq, sizeof(int32_t *));
    int *plens = malloc(sizeof(int) * nseq), *lens = malloc(sizeof(int) * nseq);
    double *adv = malloc(sizeof(double) * nseq);
    /* the rollout's routing of each sequence: prompt then completion */
    size_t nk = (size_t)g->n_moe * r1_model_config(g->m)->num_experts_per_tok;
    int metered = nk > 0 && g->n_moe <= R1_GRPO_MAX_MOE;
    int32_t **rts = metered ? calloc(nseq, sizeof(int32_t *)) : NULL;
    r1_status s = R1_OK;
    if (!seqs || !own || !plens || !lens || !adv || (metered && !rts))
        s = r1_error_set(err, R1_ENOMEM, "out of memory");
    for (int k = 0; s == R1_OK && k < nseq; k++) {
        group *gr = &gs[k / G];
        int j = k % G;
        plens[k] = gr->plen;
        lens[k] = gr->plen + gr->clen[j];
        adv[k] = gr->adv[j];
        own[k] = malloc(sizeof(int32_t) * lens[k]);
        if (!own[k]) {
            s = r1_error_set(err, R1_ENOMEM, "out of memory");
            break;
        }
        memcpy(own[k], gr->prompt, sizeof(int32_t) * gr->plen);
        memcpy(own[k] + gr->plen, gr->comp[j], sizeof(int32_t) * gr->clen[j]);
        seqs[k] = own[k];
        ps->ntok += gr->clen[j];
        if (metered && gr->proute && gr->croute[j]) {
            if (!(rts[k] = malloc(sizeof(int32_t) * lens[k] * nk))) {
                s = r1_error_set(err, R1_ENOMEM, "out of memory");
                break;
            }
            memcpy(rts[k], gr->proute, sizeof(int32_t) * gr->plen * nk);
            memcpy(rts[k] + gr->plen * nk, gr->croute[j], sizeof(int32_t) * gr->clen[j] * nk);
        } else {
            metered = 0;
        }
    }
    r1_grpo_batch b = {nseq, seqs, plens, lens, adv, NULL, 0, NULL, NULL, 0, 0};
    /* the sampler's log-probs, for the off-policy mask */
    float *lp_samp = c->off_policy_mask > 0 ? malloc(sizeof(float) * (ps->ntok ? ps->ntok : 1))
                                            : NULL;
    if (s == R1_OK && c->off_policy_mask > 0 && !lp_samp)
        s = r1_error_set(err, R1_ENOMEM, "out of memory");
    for (long k = 0, q = 0; s == R1_OK && lp_samp && k < nseq; k++) {
        memcpy(lp_samp + q, gs[k / G].lps[k % G], sizeof(float) * gs[k / G].clen[k % G]);
        q += gs[k / G].clen[k % G];
    }
    b.lp_samp = lp_samp;
    long ntok_all = ps->ntok;
    if (dp && s == R1_OK) { /* the averages run over every rank's sequences and tokens */
        double nt = (double)ps->ntok;
        s = r1_comm_sum_f64(g->comm, &nt, 1, err);
        ntok_all = (long)nt;
        b.nseq_total = ng_all * G;
        b.ntok_total = ntok_all > 0 ? ntok_all : 1;
    }
    if (metered) {
        b.routes = (const int32_t *const *)rts;
        b.replay = c->routing_replay;
        b.flips = ps->flips;
        ps->metered = 1;
    }
    /* the policy and the reference in the run's precision while they train and score; the
     * sampling before ran on the decoder, which this does not touch */
    r1_precision was = r1_model_precision(g->m), ref_was = R1_PREC_FP32;
    r1_model_set_precision(g->m, (r1_precision)c->precision);
    if (g->ref) {
        ref_was = r1_model_precision(g->ref);
        r1_model_set_precision(g->ref, (r1_precision)c->precision);
    }
    float *lp_ref = NULL, *lp_old = malloc(sizeof(float) * (ps->ntok ? ps->ntok : 1));
    if (s == R1_OK && !lp_old)
        s = r1_error_set(err, R1_ENOMEM, "out of memory");
    if (s == R1_OK && g->ref) {
        lp_ref = malloc(sizeof(float) * (ps->ntok ? ps->ntok : 1));
        s = lp_ref ? r1_grpo_logprobs(g->ref, &b, c->micro, lp_ref, err)
                   : r1_error_set(err, R1_ENOMEM, "out of memory");
    }
    for (int it = 0; it < c->mu && s == R1_OK; it++) {
        r1_model_zero_grad(g->m);
        r1_grpo_obj o;
        /* iteration 0: pi_old is the policy itself (rho = 1), from this very forward */
        if (it == 1)
            b.flips = NULL; /* the meter compares the rollout with the first training forward */
        s = r1_grpo_objective(g->m, c, &b, it ? lp_old : NULL, lp_ref, it ? NULL : lp_old, &o,
                              err);
        if (s != R1_OK)
            break;
        double mism = 0;
        if (it == 0) {
            long q = 0;
            for (int k = 0; k < nseq; k++) { /* sampling-time against training-time log-probs */
                group *gr = &gs[k / G];
                for (int t = 0; t < gr->clen[k % G]; t++, q++)
                    mism += fabs(lp_old[q] - gr->lps[k % G][t]);
            }
        }
        if (dp) { /* the gradient and the statistics of every rank's share: the objective's
                   * terms are already over the whole step, the means are the rank's own */
            double nt = (double)ps->ntok, v[8 + R1_GRPO_MAX_MOE];
            v[0] = o.objective, v[1] = o.kl * nt, v[2] = o.entropy * nt;
            v[3] = o.mtp_loss, v[4] = o.entropy_kept * nt, v[5] = o.masked * nseq;
            v[6] = o.clip_frac * nt, v[7] = mism;
            int nf = ps->metered && it == 0 ? g->n_moe : 0;
            for (int j = 0; j < nf; j++)
                v[8 + j] = (double)ps->flips[j];
            s = r1_comm_sum_f32(g->comm, r1_model_grads(g->m), r1_model_numel(g->m), err);
            if (s == R1_OK)
                s = r1_comm_sum_f64(g->comm, v, 8 + nf, err);
            if (s != R1_OK)
                break;
            double na = ntok_all > 0 ? (double)ntok_all : 1, ns = ng_all > 0 ? ng_all * G : 1;
            o.objective = v[0], o.kl = v[1] / na, o.entropy = v[2] / na, o.mtp_loss = v[3];
            o.entropy_kept = v[4] / na, o.masked = v[5] / ns, o.clip_frac = v[6] / na;
            mism = v[7];
            for (int j = 0; j < nf; j++)
                ps->flips[j] = (long)v[8 + j];
        }
        if (it == 0) {
            ps->kl = o.kl, ps->ent = o.entropy, ps->mtp = o.mtp_loss;
            ps->kept = o.entropy_kept, ps->masked = o.masked, ps->mism = mism;
        }
        ps->clip = o.clip_frac;
        if (!isfinite(o.objective)) {
            s = r1_error_set(err, R1_EINVAL, "grpo: step %lld: the objective is not finite; "
                             "the run stops, the last checkpoint is kept",
                             (long long)g->step + 1);
            break;
        }
        *lr = r1_adamw_step(g->opt, g->m, gnorm);
        if (!isfinite(*gnorm)) { /* the optimizer refused it: the weights are untouched */
            s = r1_error_set(err, R1_EINVAL, "grpo: step %lld: the gradient is not finite; "
                             "the run stops, the last checkpoint is kept",
                             (long long)g->step + 1);
            break;
        }
    }
    r1_model_set_precision(g->m, was);
    if (g->ref)
        r1_model_set_precision(g->ref, ref_was);
    if (dp)
        ps->ntok = ntok_all; /* what the statistics divide by */
    for (int k = 0; own && k < nseq; k++)
        free(own[k]);
    for (int k = 0; rts && k < nseq; k++)
        free(rts[k]);
    free(rts);
    free(own), free(seqs), free(plens), free(lens), free(adv), free(lp_old), free(lp_ref);
    free(lp_samp);
    return s;
}

static r1_status step(r1_grpo *g, r1_grpo_prompt_fn prompts, r1_grpo_score_fn score,
                      r1_grpo_group_fn group_cb, void *user, r1_grpo_stats *st, r1_error *err);

r1_status r1_grpo_step(r1_grpo *g, r1_grpo_prompt_fn prompts, r1_grpo_score_fn score,
                       r1_grpo_group_fn group_cb, void *user, r1_grpo_stats *st, r1_error *err)
{
    /* a step that does not finish consumes no prompts and no random numbers, so that the
     * checkpoint written after it resumes exactly where an uninterrupted run would be */
    int64_t next = g->next_prompt;
    r1_rng rng = g->rng;
    r1_status s = step(g, prompts, score, group_cb, user, st, err);
    if (s != R1_OK) {
        g->next_prompt = next;
        g->rng = rng;
    }
    return s;
}

static r1_status step(r1_grpo *g, r1_grpo_prompt_fn prompts, r1_grpo_score_fn score,
                      r1_grpo_group_fn group_cb, void *user, r1_grpo_stats *st, r1_error *err)
{
    const r1_grpo_cfg *c = &g->cfg;
    int G = c->group, P = c->prompts;
    r1_grpo_stats S;
    memset(&S, 0, sizeof S);
    double t_start = r1_now();
    group *gs = calloc((size_t)P * (c->max_refill + 2), sizeof(group));
    if (!gs)
        return r1_error_set(err, R1_ENOMEM, "out of memory");
    int have = 0, zero = 0, seen = 0;
    long gen_tokens = 0;
    r1_status s = R1_OK;
    /* sampled groups, refilled while dynamic sampling drops the uninformative ones */
    double rsum[R1_GRPO_MAX_REWARDS] = {0}, rsq[R1_GRPO_MAX_REWARDS] = {0};
    double tsum = 0, tsq = 0, lsum = 0, lmax = 0, lmin = 1e300;
    long nsamples = 0, cut = 0;
    /* data parallelism: this rank's share [lo, hi) of the step's prompts; every round's seed
     * drawn up front, the same count on every rank (one process draws per round it runs) */
    int dp = g->comm && g->comm->size > 1, lo = 0, hi = P, rounds = c->dynamic_sampling
                                                                       ? c->max_refill + 1
                                                                       : 1;
    uint64_t seeds[R1_GRPO_MAX_ROUNDS];
    int64_t base = g->next_prompt;
    if (dp) {
        r1_comm_rows(g->comm, P, &lo, &hi);
        for (int r = 0; r < rounds && r < R1_GRPO_MAX_ROUNDS; r++)
            seeds[r] = r1_rng_u64(&g->rng);
    }
    int want = hi - lo;
    for (int round = 0; s == R1_OK && have < want && round < rounds; round++) {
        /* a rank's round r: prompts base + r P + lo + j, streams (seed_r, (lo + j) G + i) */
        round_src src = {-1, 0, 0, 0};
        if (dp)
            src = (round_src){base + (int64_t)round * P + lo, 1,
                              seeds[round < R1_GRPO_MAX_ROUNDS ? round : 0], (int64_t)lo * G};
        s = sample_groups(g, want - have, &src, gs, &have, prompts, score, group_cb, user, &S,
                          &zero, &seen, err);
        gen_tokens += (long)S.gen_tokens_per_s; /* sample_groups leaves its token count here */
    }
    int have_all = have;
    if (dp) { /* every rank learns whether any failed, and how many groups the step has */
        g->next_prompt = base + (int64_t)P * rounds;
        double v[2] = {s != R1_OK, have};
        r1_status cs = r1_comm_sum_f64(g->comm, v, 2, err);
        if (cs != R1_OK) {
            s = cs;
        } else if (s == R1_OK && v[0] > 0) {
            s = r1_error_set(err, R1_ECANCELED, "grpo: step %lld: another rank stopped the "
                             "step (its message says why)", (long long)g->step + 1);
        }
        have_all = (int)v[1];
    }
    g->exhausted = s == R1_OK && have_all == 0;
    if (g->exhausted)
        s = r1_error_set(err, R1_ECANCELED,
                         "grpo: every sampled group had equal rewards after %d refills; nothing "
                         "to learn from (try a harder or easier task, or more samples)",
                         c->max_refill);
    if (s == R1_OK && c->multi_objective && !dp) { /* GDPO: the sums over the batch */
        double *all = malloc(sizeof(double) * have * G);
        if (!all) {
            s = r1_error_set(err, R1_ENOMEM, "out of memory");
        } else {
            for (int i = 0; i < have; i++)
                memcpy(all + (size_t)i * G, gs[i].adv, sizeof(double) * G);
            r1_grpo_batch_normalize(all, have * G);
            for (int i = 0; i < have; i++)
                memcpy(gs[i].adv, all + (size_t)i * G, sizeof(double) * G);
            free(all);
        }
    } else if (s == R1_OK && c->multi_objective) { /* ... over every rank's groups */
        double m[2] = {0, 0};
        for (int i = 0; i < have; i++)
            for (int j = 0; j < G; j++)
                m[0] += gs[i].adv[j];
        s = r1_comm_sum_f64(g->comm, m, 1, err);
        double n = (double)have_all * G, mean = n > 0 ? m[0] / n : 0;
        for (int i = 0; i < have; i++)
            for (int j = 0; j < G; j++)
                m[1] += (gs[i].adv[j] - mean) * (gs[i].adv[j] - mean);
        if (s == R1_OK)
            s = r1_comm_sum_f64(g->comm, m + 1, 1, err);
        double sd = n > 1 ? sqrt(m[1] / (n - 1)) : 0;
        for (int i = 0; s == R1_OK && i < have; i++)
            for (int j = 0; j < G; j++)
                gs[i].adv[j] = (gs[i].adv[j] - mean) / (sd + 1e-4);
    }
    for (int i = 0; s == R1_OK && group_cb && i < have; i++)
        s = show_group(g, &gs[i], group_cb, user, err);
    if (s != R1_OK) {
        clear_groups(gs, have, G);
        free(gs);
        return s;
    }
    for (int i = 0; i < have; i++)
        for (int j = 0; j < G; j++) {
            for (int k = 0; k < c->nrewards; k++) {
                double r = gs[i].rewards[(size_t)j * c->nrewards + k];
                rsum[k] += r;
                rsq[k] += r * r;
            }
            tsum += gs[i].totals[j];
            tsq += gs[i].totals[j] * gs[i].totals[j];
            lsum += gs[i].clen[j];
            lmax = gs[i].clen[j] > lmax ? gs[i].clen[j] : lmax;
            lmin = gs[i].clen[j] < lmin ? gs[i].clen[j] : lmin;
            cut += gs[i].cut[j];
            nsamples++;
        }
    if (dp) { /* the statistics of the whole step: sums, and the extremes of the lengths */
        int K = c->nrewards;
        double v[2 * R1_GRPO_MAX_REWARDS + 8];
        memcpy(v, rsum, sizeof(double) * K);
        memcpy(v + K, rsq, sizeof(double) * K);
        double *w = v + 2 * K;
        w[0] = tsum, w[1] = tsq, w[2] = lsum, w[3] = (double)cut, w[4] = (double)nsamples;
        w[5] = zero, w[6] = seen, w[7] = (double)gen_tokens;
        double ext[2] = {lmax, -lmin};
        s = r1_comm_sum_f64(g->comm, v, 2 * K + 8, err);
        if (s == R1_OK)
            s = r1_comm_max_f64(g->comm, ext, 2, err);
        memcpy(rsum, v, sizeof(double) * K);
        memcpy(rsq, v + K, sizeof(double) * K);
        tsum = w[0], tsq = w[1], lsum = w[2], cut = (long)w[3], nsamples = (long)w[4];
        zero = (int)w[5], seen = (int)w[6], gen_tokens = (long)w[7];
        lmax = ext[0], lmin = -ext[1];
        if (s != R1_OK) {
            clear_groups(gs, have, G);
            free(gs);
            return s;
        }
    }
    /* training */
    double t0 = r1_now();
    pass_stats ps;
    double gnorm = 0, lr = 0;
    s = train_pass(g, gs, have, have_all, &ps, &gnorm, &lr, err);
    S.t_train = r1_now() - t0;
    if (dp && s == R1_OK) /* the loads of every rank */
        s = r1_comm_sum_loads(g->comm, g->m, err);
    if (s == R1_OK) {
        /* expert load of the training forwards, then the balancing update */
        for (int i = 0; i < g->n_moe; i++) {
            float *ld = g->load + (size_t)i * g->E;
            r1_model_expert_load(g->m, g->moe_layers[i], ld);
            double tot = 0;
            for (int e = 0; e < g->E; e++)
                tot += ld[e];
            for (int e = 0; e < g->E; e++)
                ld[e] = tot > 0 ? (float)(ld[e] / tot) : 0;
        }
        r1_model_balance_update(g->m, c->balance_gamma);
        for (int i = 0; i < g->n_moe; i++)
            memcpy(g->bias + (size_t)i * g->E, r1_model_router_bias(g->m, g->moe_layers[i]),
                   sizeof(float) * g->E);
        g->step++;
        if (c->sync_ref && g->ref && g->step % c->ref_sync_steps == 0)
            r1_model_mix_params(g->ref, g->m, c->ref_mixup_alpha, NULL);
    }
    if (st && s == R1_OK) {
        S.step = g->step;
        for (int k = 0; k < c->nrewards; k++) {
            S.reward_mean[k] = rsum[k] / nsamples;
            S.reward_std[k] = sqrt(fmax(0, rsq[k] / nsamples - S.reward_mean[k] * S.reward_mean[k]));
        }
        S.total_mean = tsum / nsamples;
        S.total_std = sqrt(fmax(0, tsq / nsamples - S.total_mean * S.total_mean));
        S.len_mean = lsum / nsamples;
        S.len_max = lmax;
        S.len_min = lmin;
        S.clipped_ratio = (double)cut / nsamples;
        long nt = ps.ntok ? ps.ntok : 1;
        S.kl = ps.kl;
        S.clip_frac = ps.clip;
        S.entropy = ps.ent;
        S.entropy_kept = ps.kept;
        S.off_policy_masked = ps.masked;
        S.mtp_loss = ps.mtp;
        S.logprob_mismatch = ps.mism / nt;
        for (int j = 0; ps.metered && j < g->n_moe && j < R1_GRPO_MAX_MOE; j++) {
            S.route_flip[j] = (double)ps.flips[j] / nt;
            S.route_flip_mean += S.route_flip[j] / g->n_moe;
        }
        S.grad_norm = gnorm;
        S.lr = lr;
        S.zero_var_share = seen ? (double)zero / seen : 0;
        S.groups_used = have_all;
        S.sequences = have_all * G;
        S.tokens = (int)ps.ntok;
        S.gen_tokens_per_s = S.t_sample > 0 ? gen_tokens / S.t_sample : 0;
        double total = r1_now() - t_start;
        S.tokens_per_s = total > 0 ? gen_tokens / total : 0;
        S.n_moe = g->n_moe;
        S.n_experts = g->E;
        for (int j = 0; j < g->n_moe && j < R1_GRPO_MAX_MOE; j++) {
            S.maxvio[j] = r1_load_maxvio(g->load + (size_t)j * g->E, g->E);
            S.maxvio_mean += S.maxvio[j] / g->n_moe;
        }
        S.expert_load = g->load;
        S.expert_bias = g->bias;
        *st = S;
    }
    clear_groups(gs, have, G);
    free(gs);
    return s;
}

/* ------------------------------------------------------------------ checkpoints */

r1_status r1_grpo_save(r1_grpo *g, const char *dir, r1_error *err)
{
    return r1_grpo_save_run(g, dir, NULL, NULL, err);
}

r1_status r1_grpo_save_run(r1_grpo *g, const char *dir, const char *settings_json,
                           const r1_tokenizer *tok, r1_error *err)
{
    r1_train_state ts;
    memset(&ts, 0, sizeof ts);
    snprintf(ts.stage, sizeof ts.stage, "grpo");
    ts.step = g->step;
    ts.data_pos = g->next_prompt;
    ts.rng = g->rng;
    return r1_ckpt_save_ref(dir, g->m, g->opt, &ts, settings_json, tok, g->ref, err);
}

r1_status r1_grpo_resume(r1_grpo *g, const char *dir, r1_error *err)
{
    r1_model *m = NULL;
    r1_adamw *o = NULL;
    r1_train_state ts;
    r1_status s = r1_ckpt_load(dir, &m, &o, &ts, NULL, err);
    if (s == R1_OK && strcmp(ts.stage, "grpo") != 0)
        s = r1_error_set(err, R1_EINVAL, "%s: a %s checkpoint, not a GRPO one", dir, ts.stage);
    if (s == R1_OK)
        s = r1_model_copy_params(g->m, m, err);
    if (s == R1_OK) {
        memcpy(r1_adamw_m(g->opt), r1_adamw_m(o), sizeof(float) * r1_model_numel(m));
        memcpy(r1_adamw_v(g->opt), r1_adamw_v(o), sizeof(float) * r1_model_numel(m));
        r1_adamw_set_steps(g->opt, r1_adamw_steps(o));
        g->step = ts.step;
        g->next_prompt = ts.data_pos;
        g->rng = ts.rng;
    }
    if (s == R1_OK && g->ref) {
        char rdir[4200];
        snprintf(rdir, sizeof rdir, "%s/reference", dir);
        r1_model *r = NULL;
        s = r1_model_load(&r, rdir, err);
        if (s == R1_OK)
            s = r1_model_copy_params(g->ref, r, err);
        r1_model_free(r);
    }
    r1_model_free(m);
    r1_adamw_free(o);
    return s;
}
