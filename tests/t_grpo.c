/* t_grpo.c — GRPO: the per-token gradient of the clipped objective with the k3 KL on
 * hand-computed cases, advantages (zero variance, std scaling), the objective's parameter
 * gradient against finite differences for each aggregation, beta = 0 loading no reference,
 * a real run raising a reward, dynamic sampling, and exact resume. */
#include <config.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "r1_grpo.h"
#include "tap.h"

static r1_model *small_model(uint64_t seed)
{
    r1_config c;
    r1_config_preset(&c, "tiny", NULL);
    c.num_hidden_layers = 2;
    c.hidden_size = 64, c.q_lora_rank = 32, c.kv_lora_rank = 32, c.num_attention_heads = 2;
    c.qk_nope_head_dim = 16, c.qk_rope_head_dim = 8, c.v_head_dim = 16;
    c.n_routed_experts = 8, c.num_experts_per_tok = 2, c.n_group = 2, c.topk_group = 1;
    c.moe_intermediate_size = 32, c.intermediate_size = 128, c.vocab_size = 32;
    c.bos_token_id = 1, c.eos_token_id = 2;
    c.initializer_range = 0.2f;
    r1_model *m;
    r1_model_new(&m, &c, NULL);
    r1_model_init(m, seed);
    return m;
}

/* ---- a toy task: the reward is the share of completion tokens equal to 7 */
typedef struct {
    int calls;
    int constant;
} toy;

static int toy_prompt(void *user, int64_t index, int32_t *ids, int cap)
{
    (void)user;
    (void)cap;
    ids[0] = 1;
    ids[1] = 3 + (int)(index % 5);
    ids[2] = 4;
    return 3;
}

static int toy_score(void *user, int64_t index, int j, const int32_t *prompt, int plen,
                     const int32_t *comp, int clen, int finish, double *r)
{
    (void)index, (void)j, (void)prompt, (void)plen, (void)finish;
    toy *t = user;
    t->calls++;
    int hits = 0;
    for (int i = 0; i < clen; i++)
        hits += comp[i] == 7;
    r[0] = t->constant ? 1.0 : (double)hits / (clen ? clen : 1);
    return 0;
}

static r1_grpo_cfg toy_cfg(void)
{
    r1_grpo_cfg c = r1_grpo_defaults();
    c.group = 8, c.prompts = 4, c.max_new = 8, c.beta = 0.0f, c.micro = 8, c.seed = 5;
    c.opt.lr = 3e-3f, c.opt.min_lr = 3e-3f;
    c.nrewards = 1;
    snprintf(c.reward_names[0], sizeof c.reward_names[0], "sevens");
    c.reward_weights[0] = 1;
    return c;
}

/* J(theta) for the FD check (the gradient accumulates into a scratch we ignore) */
static double objective_at(r1_model *m, const r1_grpo_cfg *c, const r1_grpo_batch *b,
                           const float *old, const float *ref)
{
    r1_grpo_obj o;
    r1_model_zero_grad(m);
    r1_grpo_objective(m, c, b, old, ref, NULL, &o, NULL);
    return o.objective - c->mtp_lambda * o.mtp_loss; /* minus the loss that is minimised */
}

static void check_objective_gradient(void)
{
    r1_model *m = small_model(3);
    int32_t s0[7] = {1, 5, 6, 9, 10, 11, 12}, s1[5] = {1, 5, 8, 13, 14}, s2[6] = {1, 3, 3, 20, 21, 22};
    const int32_t *seqs[3] = {s0, s1, s2};
    int plens[3] = {3, 2, 3}, lens[3] = {7, 5, 6};
    double adv[3] = {1.3, -0.7, 0.4};
    r1_grpo_batch b = {3, seqs, plens, lens, adv, NULL, 0, NULL, NULL, 0, 0};
    /* old and reference log-probs away from the current ones, so that clipping and the KL act */
    float now[16], old[16], ref[16];
    r1_grpo_logprobs(m, &b, 2, now, NULL);
    int ntok = 4 + 3 + 3;
    for (int i = 0; i < ntok; i++) {
        old[i] = now[i] + (i % 3 == 0 ? 0.4f : i % 3 == 1 ? -0.3f : 0.05f);
        ref[i] = now[i] - 0.2f + 0.05f * i;
    }
    /* the sampler's log-probs for the off-policy mask: sequence 1 (A < 0) far from now */
    float samp[16];
    for (int i = 0; i < ntok; i++)
        samp[i] = now[i] + (i >= 4 && i < 7 ? 0.5f : 0.02f);
    const char *names[9] = {"sequence mean", "token mean", "constant (Dr. GRPO)",
                            "sequence mean + MTP loss", "GSPO + bias-corrected KL",
                            "CISPO + bias-corrected KL", "entropy selection + bonus",
                            "off-policy mask", "CISPO at sequence level"};
    for (int run = 0; run < 9; run++) {
        int agg = run % 3;
        r1_grpo_cfg c = r1_grpo_defaults();
        c.agg = (r1_grpo_agg)agg, c.beta = 0.1f, c.eps_low = 0.2f, c.eps_high = 0.28f;
        c.micro = 2, c.max_new = 6;
        c.mtp_lambda = run == 3 ? 0.3f : 0;
        b.lp_samp = NULL;
        switch (run) {
        case 4: /* GSPO's ranges are narrow: a completion's mean log-ratio moves little */
            c.agg = R1_GRPO_SEQ_MEAN, c.is_level = 1, c.bias_correction_kl = 1;
            c.eps_low = c.eps_high = 0.02f;
            break;
        case 5: c.agg = R1_GRPO_CISPO, c.eps_high = 1.2f, c.bias_correction_kl = 1; break;
        case 6: c.top_entropy_quantile = 0.5f, c.entropy_coef = 0.05f; break;
        case 7: c.off_policy_mask = 0.2f, b.lp_samp = samp; break;
        case 8: c.agg = R1_GRPO_CISPO, c.eps_high = 1.1f, c.is_level = 1; break;
        }
        /* CISPO's weight is a stopped gradient, so J's own derivative is its gradient only
         * where the weight does not move: old log-probs 1 below, every weight at its cap (the
         * PyTorch reference checks both sides of the cap) */
        float far[16];
        for (int i = 0; i < ntok; i++)
            far[i] = now[i] - 1.0f;
        const float *o_lp = c.agg == R1_GRPO_CISPO ? far : old;
        r1_grpo_obj o;
        r1_model_zero_grad(m);
        r1_grpo_objective(m, &c, &b, o_lp, ref, NULL, &o, NULL);
        if (run == 3)
            ok(o.mtp_loss > 0, "the MTP loss on the completions is reported (%.3f)", o.mtp_loss);
        if (run == 0 || run == 4)
            ok(o.clip_frac > 0 && o.clip_frac < 1, "%s: some tokens are clipped (%.2f)",
               names[run], o.clip_frac);
        if (run == 5 || run == 8)
            ok(o.clip_frac == 1, "%s: every weight at its cap", names[run]);
        if (run == 6)
            ok(o.entropy_kept > 0.3 && o.entropy_kept < 1, "the entropy selection keeps %.2f "
               "of the tokens", o.entropy_kept);
        if (run == 7)
            ok(fabs(o.masked - 1.0 / 3) < 1e-9, "the off-policy mask takes out the one "
               "completion with A < 0 that the sampler found likelier (%.2f)", o.masked);
        size_t n = r1_model_numel(m);
        float *g = malloc(sizeof(float) * n);
        memcpy(g, r1_model_grads(m), sizeof(float) * n);
        /* central differences on the 24 largest-gradient parameters (float model) */
        float *p = r1_model_params(m);
        double worst = 0, gmax = 0;
        for (int pick = 0; pick < 24; pick++) {
            size_t best = 0;
            for (size_t i = 0; i < n; i++)
                if (fabsf(g[i]) > fabsf(g[best]))
                    best = i;
            float keep = p[best], h = 2e-3f;
            gmax = fabs(g[best]) > gmax ? fabs(g[best]) : gmax;
            p[best] = keep + h;
            double jp = objective_at(m, &c, &b, o_lp, ref);
            p[best] = keep - h;
            double jm = objective_at(m, &c, &b, o_lp, ref);
            p[best] = keep;
            double num = -(jp - jm) / (2 * h); /* the gradient is of loss = -J */
            double e = fabs(num - g[best]) / fmax(fabs(num), 1e-3);
            worst = e > worst ? e : worst;
            g[best] = 0; /* next pick */
        }
        ok(worst < 0.03 && gmax > 1e-3,
           "%s: the loss gradient matches central differences (worst rel %.2e, |grad| up to %.3f)",
           names[run], worst, gmax);
        free(g);
    }
    r1_model_free(m);
}

/* The mismatch meter and routing replay: one step from the same seeded model per setting;
 * flips are 0 with an fp32 sampler (the same engine) and with replay, and not 0 with an fp8
 * sampler; with replay at fp32 the training log-probs are the sampler's. */
static void check_mismatch(void)
{
    r1_grpo_stats st[4];
    const int dtype[4] = {0, 2, 2, 0}, replay[4] = {0, 0, 1, 1};
    int runs_ok = 1;
    for (int k = 0; k < 4; k++) {
        r1_model *m = small_model(11);
        r1_grpo_cfg c = toy_cfg();
        c.max_new = 16, c.temperature = 1, c.rollout_dtype = dtype[k];
        c.routing_replay = replay[k];
        r1_grpo *g;
        r1_error err = {0};
        toy t = {0, 0};
        runs_ok &= r1_grpo_new(&g, m, &c, &err) == R1_OK &&
                   r1_grpo_step(g, toy_prompt, toy_score, NULL, &t, &st[k], &err) == R1_OK;
        if (!runs_ok)
            diag("setting %d: %s", k, err.msg);
        r1_grpo_free(g);
        r1_model_free(m);
    }
    ok(runs_ok, "GRPO steps with fp32 and fp8 samplers, with and without routing replay");
    is_int(st[0].n_moe, 1, "the meter covers the MoE layer");
    ok(st[0].route_flip[0] == 0,
       "an fp32 sampler routes every completion token as the training forward does");
    ok(st[0].logprob_mismatch < 1e-5, "and gives the same log-probs (%.2g)",
       st[0].logprob_mismatch);
    ok(st[1].route_flip_mean > 0, "an fp8 sampler routes some tokens differently (%.3f)",
       st[1].route_flip[0]);
    ok(st[2].route_flip[0] == 0, "with routing replay no token is routed differently");
    ok(st[2].logprob_mismatch <= st[1].logprob_mismatch, "and the log-prob mismatch falls to "
       "the precision difference alone (%.3g, without replay %.3g)", st[2].logprob_mismatch,
       st[1].logprob_mismatch);
    ok(st[3].logprob_mismatch < 1e-5 && st[3].route_flip_mean == 0,
       "replay at the sampler's own precision: the training log-probs are the rollout's (%.2g)",
       st[3].logprob_mismatch);
}

/* TR-DPO's reference sync: unchanged between syncs, then alpha policy + (1 - alpha) reference,
 * to the bit; GDPO's advantages over a step's batch: mean 0, std 1; a second reward that
 * counts 9s joins the 7s. */
static int toy_score2(void *user, int64_t index, int j, const int32_t *prompt, int plen,
                      const int32_t *comp, int clen, int finish, double *r)
{
    toy_score(user, index, j, prompt, plen, comp, clen, finish, r);
    int nines = 0;
    for (int i = 0; i < clen; i++)
        nines += comp[i] == 9;
    r[1] = nines > 0 ? 1 : 0;
    return 0;
}

typedef struct {
    double sum, sq;
    int n;
} adv_sum;

static int sum_adv(void *user, const r1_grpo_group *g)
{
    adv_sum *a = user;
    for (int j = 0; j < g->G; j++)
        a->sum += g->adv[j], a->sq += g->adv[j] * g->adv[j], a->n++;
    return 0;
}

typedef struct {
    toy t;
    adv_sum a;
} toy_adv;

static int group_adv(void *user, const r1_grpo_group *g)
{
    return sum_adv(&((toy_adv *)user)->a, g);
}

static void check_sync_and_gdpo(void)
{
    r1_model *m = small_model(11);
    r1_grpo_cfg c = toy_cfg();
    c.beta = 0.04f, c.sync_ref = 1, c.ref_sync_steps = 2, c.ref_mixup_alpha = 0.6f;
    r1_grpo *g;
    r1_error err = {0};
    toy t = {0, 0};
    r1_grpo_stats st;
    ok(r1_grpo_new(&g, m, &c, &err) == R1_OK, "a trainer with a synced reference");
    size_t n = r1_model_numel(m);
    float *r0 = malloc(sizeof(float) * n), *want = malloc(sizeof(float) * n);
    memcpy(r0, r1_model_params((r1_model *)r1_grpo_reference(g)), sizeof(float) * n);
    r1_grpo_step(g, toy_prompt, toy_score, NULL, &t, &st, &err);
    const float *ref = r1_model_params((r1_model *)r1_grpo_reference(g));
    ok(!memcmp(ref, r0, sizeof(float) * n), "step 1: the reference has not moved");
    r1_grpo_step(g, toy_prompt, toy_score, NULL, &t, &st, &err);
    const float *pol = r1_model_params(m);
    for (size_t i = 0; i < n; i++)
        want[i] = 0.6f * pol[i] + (1 - 0.6f) * r0[i];
    ok(!memcmp(ref, want, sizeof(float) * n) && memcmp(ref, pol, sizeof(float) * n) != 0,
       "step 2: the reference is 0.6 policy + 0.4 reference, to the bit");
    free(r0), free(want);
    r1_grpo_free(g);
    c.ref_mixup_alpha = 0.6f, c.ref_sync_steps = 0;
    is_int(r1_grpo_new(&g, m, &c, &err), R1_EINVAL, "ref_model_sync_steps 0 is refused");
    c = toy_cfg();
    c.agg = R1_GRPO_CISPO;
    is_int(r1_grpo_new(&g, m, &c, &err), R1_EINVAL, "cispo with eps_high 0.2 is refused");
    like(err.msg, "cap on the importance weight", "and says what eps_high means for it");

    /* GDPO over a step */
    c = toy_cfg();
    c.nrewards = 2, c.multi_objective = 1, c.reward_weights[1] = 0.5;
    snprintf(c.reward_names[1], sizeof c.reward_names[1], "nines");
    toy_adv ta = {{0, 0}, {0, 0, 0}};
    err.msg[0] = 0;
    ok(r1_grpo_new(&g, m, &c, &err) == R1_OK, "a GDPO trainer (%s)", err.msg);
    int okrun = r1_grpo_step(g, toy_prompt, toy_score2, group_adv, &ta, &st, &err) == R1_OK;
    double mean = ta.a.sum / ta.a.n, sd = sqrt((ta.a.sq - ta.a.n * mean * mean) / (ta.a.n - 1));
    ok(okrun && ta.a.n == c.prompts * c.group && fabs(mean) < 1e-9 && fabs(sd - 1) < 1e-3,
       "GDPO: the groups the callback sees carry the batch-normalised advantages (mean %.1e, "
       "std %.4f over %d)", mean, sd, ta.a.n);
    r1_grpo_free(g);
    r1_model_free(m);
}

int main(void)
{
    r1_set_threads(1);
    r1_grpo_cfg c = r1_grpo_defaults();
    c.beta = 0, c.eps_low = 0.2f, c.eps_high = 0.2f;
    int clipped;
    is_float(r1_grpo_token_grad(&c, -1, -1, 0, 1.0, &clipped), 1.0, 1e-12,
             "rho = 1: dJ/dlogp = A");
    ok(!clipped, "and nothing is clipped");
    is_float(r1_grpo_token_grad(&c, log(1.5), 0, 0, 1.0, &clipped), 0.0, 0,
             "A > 0 and rho = 1.5 > 1 + eps: no gradient");
    ok(clipped, "and the token counts as clipped");
    is_float(r1_grpo_token_grad(&c, log(0.5), 0, 0, -1.0, &clipped), 0.0, 0,
             "A < 0 and rho = 0.5 < 1 - eps: no gradient");
    is_float(r1_grpo_token_grad(&c, log(1.5), 0, 0, -1.0, &clipped), -1.5, 1e-12,
             "A < 0 and rho = 1.5: the unclipped branch, A rho");
    c.eps_high = 0.6f;
    is_float(r1_grpo_token_grad(&c, log(1.5), 0, 0, 1.0, &clipped), 1.5, 1e-12,
             "clip-higher: eps_high 0.6 lets rho = 1.5 through");
    c.beta = 0.1f;
    is_float(r1_grpo_token_grad(&c, -1, -1, -2, 1.0, &clipped), 1.0 - (double)0.1f * (1 - exp(-1.0)),
             1e-12, "k3 KL: dJ/dlogp = A - beta (1 - pi_ref/pi)");

    double adv[4], same[4] = {0.5, 0.5, 0.5, 0.5}, r[4] = {1, 0, 0, 1};
    c = r1_grpo_defaults();
    ok(r1_grpo_advantages(&c, same, 4, adv) == 1 && adv[0] == 0 && adv[3] == 0,
       "a zero-variance group has zero advantages and is flagged");
    ok(r1_grpo_advantages(&c, r, 4, adv) == 0, "a mixed group is not flagged");
    is_float(adv[0], 0.5 / (sqrt(1.0 / 3) + 1e-4), 1e-9, "advantage = (r - mean) / (std + eps)");
    c.std_scale = 0;
    r1_grpo_advantages(&c, r, 4, adv);
    is_float(adv[1], -0.5, 1e-12, "without std scaling (Dr. GRPO): r - mean");

    check_objective_gradient();
    check_mismatch();
    check_sync_and_gdpo();

    /* beta = 0 loads no reference; beta > 0 does */
    r1_model *m = small_model(1);
    r1_grpo *g;
    r1_grpo_cfg tc = toy_cfg();
    r1_error err = {0};
    ok(r1_grpo_new(&g, m, &tc, &err) == R1_OK, "a trainer");
    ok(r1_grpo_reference(g) == NULL, "beta = 0 loads no reference model");
    r1_grpo_free(g);
    tc.beta = 0.04f;
    r1_grpo_new(&g, m, &tc, &err);
    ok(r1_grpo_reference(g) != NULL, "beta > 0 keeps a frozen reference");
    r1_grpo_free(g);

    /* a real run: the reward (share of token 7) rises */
    tc = toy_cfg();
    r1_grpo_new(&g, m, &tc, &err);
    toy t = {0, 0};
    r1_grpo_stats st;
    double first = -1, last = 0;
    int okrun = 1;
    for (int i = 0; i < 25; i++) {
        okrun &= r1_grpo_step(g, toy_prompt, toy_score, NULL, &t, &st, &err) == R1_OK;
        if (first < 0)
            first = st.reward_mean[0];
        if (i >= 20)
            last += st.reward_mean[0] / 5;
    }
    ok(okrun, "25 GRPO steps run (%s)", err.msg);
    diag("share of 7s: %.3f -> %.3f; mismatch of log-probs %.2e", first, last,
         st.logprob_mismatch);
    ok(last > first + 0.2, "GRPO raises the reward (%.3f -> %.3f)", first, last);
    ok(st.logprob_mismatch < 1e-4, "sampling and training log-probs agree (%.1e)",
       st.logprob_mismatch);
    ok(st.n_moe == 1 && st.expert_load != NULL, "expert load is reported per MoE layer");
    is_int(t.calls, 25 * 4 * 8, "every completion was scored");
    is_int(r1_grpo_exhausted(g), 0, "a step that trained is not exhausted");
    r1_grpo_free(g);
    r1_model_free(m);

    /* dynamic sampling with a constant reward: nothing to learn, a clear error */
    m = small_model(2);
    tc = toy_cfg();
    tc.dynamic_sampling = 1, tc.max_refill = 1;
    r1_grpo_new(&g, m, &tc, &err);
    t.constant = 1;
    is_int(r1_grpo_step(g, toy_prompt, toy_score, NULL, &t, &st, &err), R1_ECANCELED,
           "dynamic sampling drops every zero-variance group");
    like(err.msg, "equal rewards", "and says why");
    is_int(r1_grpo_exhausted(g), 1, "r1_grpo_exhausted tells that case apart");
    r1_grpo_free(g);
    r1_model_free(m);

    /* exact resume: 4 steps straight, or 2 + save + resume + 2 */
    char tmp[] = "/tmp/r1-grpo-XXXXXX";
    mkdtemp(tmp);
    char dir[256];
    snprintf(dir, sizeof dir, "%s/ckpt", tmp);
    double straight[4], resumed[4];
    m = small_model(4);
    tc = toy_cfg();
    tc.beta = 0.04f;
    r1_grpo_new(&g, m, &tc, &err);
    t.constant = 0;
    for (int i = 0; i < 4; i++) {
        r1_grpo_step(g, toy_prompt, toy_score, NULL, &t, &st, &err);
        straight[i] = st.grad_norm + st.total_mean * 1e3;
        if (i == 1)
            ok(r1_grpo_save(g, dir, &err) == R1_OK, "checkpoint after step 2 (%s)", err.msg);
    }
    r1_grpo_free(g);
    r1_model_free(m);
    m = small_model(99); /* other weights: the checkpoint must restore everything */
    r1_grpo_new(&g, m, &tc, &err);
    ok(r1_grpo_resume(g, dir, &err) == R1_OK, "resume (%s)", err.msg);
    for (int i = 2; i < 4; i++) {
        r1_grpo_step(g, toy_prompt, toy_score, NULL, &t, &st, &err);
        resumed[i] = st.grad_norm + st.total_mean * 1e3;
    }
    ok(straight[2] == resumed[2] && straight[3] == resumed[3],
       "a resumed run repeats the uninterrupted one exactly (%.9g/%.9g, %.9g/%.9g)", straight[2],
       resumed[2], straight[3], resumed[3]);
    r1_grpo_free(g);
    r1_model_free(m);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    ok(system(cmd) == 0, "clean up");
    return done_testing();
}
