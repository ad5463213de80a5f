/* r1_grpo.h — Group Relative Policy Optimization (DeepSeekMath, DeepSeek-R1) and its family:
 * DAPO's and Dr. GRPO's switches, GSPO's sequence-level ratio, CISPO's clipped importance
 * weights, high-entropy token selection, an entropy bonus, GDPO's decoupled normalisation of
 * several rewards, DeepSeek-V3.2's off-policy sequence mask and unbiased KL, and TR-DPO's
 * reference sync.  The settings carry TRL's GRPOConfig names (grpo_run.c's table).
 *
 * One step: take prompts from the caller's prompt source, sample a group of G completions per
 * prompt with the batched generator, score each completion with the caller's reward functions
 * (weighted into one reward), give every token of completion i the advantage
 * (r_i - mean(r)) / (std(r) + eps) of its group, and maximise per token
 *     min(rho A, clip(rho, 1 - eps_low, 1 + eps_high) A) - beta KL_k3(pi_theta || pi_ref),
 * rho = pi_theta / pi_old, for mu inner updates of AdamW.  The log-probabilities come from the
 * same engine forward that training uses.
 *
 * Ownership: r1_grpo borrows the policy model (it trains it in place) and owns its reference
 * copy and optimizer.  Callbacks run on the caller's thread; a non-zero return cancels the step
 * (R1_ECANCELED, the model untouched by that step's update). */
#ifndef R1_GRPO_H
#define R1_GRPO_H

#include "r1_generate.h"
#include "r1_optim.h"
#include "r1_train.h"

#define R1_GRPO_MAX_REWARDS 8
#define R1_GRPO_MAX_MOE 64 /* MoE layers the statistics cover */
#define R1_GRPO_MAX_ROUNDS 101 /* sampling rounds of a step: 1 + max_refill (<= 100) */

/* loss_type: the policy term and how the tokens' terms are averaged (TRL's names) */
typedef enum {
    R1_GRPO_SEQ_MEAN = 0,   /* "grpo": mean over each sequence's tokens, then over sequences */
    R1_GRPO_TOKEN_MEAN = 1, /* "dapo": mean over all tokens of the batch */
    R1_GRPO_CONST = 2,      /* "dr_grpo": sum over tokens / (sequences x max_new) */
    R1_GRPO_CISPO = 3       /* "cispo" (MiniMax-M1): sg(min(rho, eps_high)) A log pi on every
                             * token, no min() and no dropped token; token mean as "dapo" */
} r1_grpo_agg;

typedef struct {
    int group;               /* G completions per prompt (8) */
    int prompts;             /* prompts per step (8) */
    int mu;                  /* inner updates per batch (1: rho = 1) */
    float eps_low, eps_high; /* clip range (0.2, 0.2; clip-higher: eps_high 0.28) */
    float beta;              /* KL coefficient (0.04; 0 loads no reference model) */
    float temperature;       /* sampling temperature (1) */
    int top_k;
    float top_p;
    int max_new;             /* completion length limit (64) */
    r1_grpo_agg agg;         /* loss_type */
    int is_level;            /* importance_sampling_level: 0 token, 1 sequence (GSPO: the ratio
                              * exp(mean_t(lp - lp_old)) of the whole completion, clipped once) */
    float top_entropy_quantile; /* rho: the policy term keeps only the tokens of each completion
                                 * whose entropy is at least its (1 - rho) quantile (1: all) */
    float entropy_coef;      /* adds entropy_coef x the policy's entropy (same averaging) to J */
    int multi_objective;     /* 0 "sum_then_normalize": advantages of the weighted sum of the
                              * rewards; 1 "normalize_then_sum" (GDPO): each reward normalised
                              * in its group, the weighted sum normalised over the batch */
    float off_policy_mask;   /* off_policy_mask_threshold delta (0: off): a completion with A < 0
                              * whose mean log(pi_sampler / pi_theta) exceeds delta leaves the
                              * policy term (DeepSeek-V3.2) */
    int bias_correction_kl;  /* use_bias_correction_kl: the k3 term times the importance ratio */
    int std_scale;           /* divide advantages by the group's std (1; Dr. GRPO: 0) */
    int dynamic_sampling;    /* drop groups whose rewards are all equal, refill (DAPO) */
    int max_refill;          /* refill rounds per step (3) */
    int sync_ref;            /* sync_ref_model (TR-DPO): every ref_sync_steps steps the reference
                              * becomes alpha x policy + (1 - alpha) x reference */
    int ref_sync_steps;      /* ref_model_sync_steps (512) */
    float ref_mixup_alpha;   /* ref_model_mixup_alpha (0.6; 1: a copy of the policy) */
    int micro;               /* sequences per forward/backward chunk (16) */
    float balance_gamma;     /* auxiliary-loss-free balancing step (0.001) */
    int precision;           /* r1_precision of the policy's forward and backward passes (fp32) */
    int rollout_dtype;       /* the sampling decoder's weights: 0 fp32, 1 bf16, 2 fp8 (fp32) */
    int routing_replay;      /* 1: the training forward uses the experts the rollout chose
                              * (R3; the gates still come from the router's scores) */
    float mtp_lambda;        /* weight of the MTP loss on the sampled completions (0.1; 0: the
                              * MTP module is not trained, and acceptance drifts) */
    r1_adamw_cfg opt;        /* lr 1e-5-ish for RL; clip 1 */
    uint64_t seed;
    int32_t stop_ids[4];     /* completions end after these (eos, </answer>) */
    int n_stop;
    int nrewards;            /* reward functions, names and weights */
    char reward_names[R1_GRPO_MAX_REWARDS][24];
    double reward_weights[R1_GRPO_MAX_REWARDS];
} r1_grpo_cfg;

r1_grpo_cfg r1_grpo_defaults(void);

/* Fills ids[0..cap) with prompt number `index` (a counter that resumes with the checkpoint)
 * and returns its length, or -1 to cancel. */
typedef int (*r1_grpo_prompt_fn)(void *user, int64_t index, int32_t *ids, int cap);

/* Scores completion j (0..G-1) of prompt number index: rewards[nrewards] in the order of
 * cfg.reward_names.  finish is an r1_finish.  Returns 0, or non-zero to cancel. */
typedef int (*r1_grpo_score_fn)(void *user, int64_t index, int j, const int32_t *prompt,
                                int plen, const int32_t *completion, int clen, int finish,
                                double *rewards);

/* One group as the group callback sees it (borrowed for the call). */
typedef struct r1_grpo_group {
    int64_t index;           /* prompt number */
    const int32_t *prompt;
    int plen;
    int G;
    const int32_t *const *completions; /* [G] */
    const int *lens;         /* [G] */
    const double *rewards;   /* [G, nrewards] */
    const double *totals;    /* [G] weighted sums */
    const double *adv;       /* [G] advantages */
    int dropped;             /* 1: zero variance, dropped by dynamic sampling */
} r1_grpo_group;

typedef int (*r1_grpo_group_fn)(void *user, const r1_grpo_group *g);

typedef struct r1_grpo_stats {
    int64_t step;
    double reward_mean[R1_GRPO_MAX_REWARDS], reward_std[R1_GRPO_MAX_REWARDS];
    double total_mean, total_std;
    double len_mean, len_max, len_min;
    double clipped_ratio;    /* share of the completions cut off by max_new (no stop token) */
    double kl, clip_frac, entropy, grad_norm, lr;
    double mtp_loss;         /* the MTP loss on the completions (mean cross-entropy; 0: off) */
    double zero_var_share;   /* groups with all-equal rewards, before dropping */
    double entropy_kept;     /* share of completion tokens the entropy selection kept (1: off) */
    double off_policy_masked; /* share of completions the off-policy mask took out */
    double logprob_mismatch; /* mean |log p at sampling - log p in training| */
    double route_flip[R1_GRPO_MAX_MOE]; /* per MoE layer (n_moe of them): share of completion
                                         * tokens whose expert set in training differs from
                                         * the rollout's */
    double route_flip_mean;  /* over the MoE layers */
    double maxvio[R1_GRPO_MAX_MOE]; /* per MoE layer: the training forwards' MaxVio */
    double maxvio_mean;
    double t_sample, t_score, t_train;
    double gen_tokens_per_s, tokens_per_s;
    int groups_used, sequences, tokens;
    int n_moe, n_experts;
    const float *expert_load; /* [n_moe, E] share of the step's routed tokens (borrowed) */
    const float *expert_bias; /* [n_moe, E] the balancing bias after the step (borrowed) */
} r1_grpo_stats;

typedef struct r1_grpo r1_grpo;

/* A trainer for policy m (borrowed: it must outlive the trainer).  With beta > 0 a frozen copy
 * of m becomes the reference. */
r1_status r1_grpo_new(r1_grpo **out, r1_model *m, const r1_grpo_cfg *cfg, r1_error *err);
void r1_grpo_free(r1_grpo *g);

/* Runs one step.  group_cb (may be NULL) sees every scored group. */
r1_status r1_grpo_step(r1_grpo *g, r1_grpo_prompt_fn prompts, r1_grpo_score_fn score,
                       r1_grpo_group_fn group_cb, void *user, r1_grpo_stats *stats,
                       r1_error *err);

/* Data parallelism (r1_comm.h; NULL: one process).  Each rank samples, scores and trains its
 * share of every step's prompts (whole groups: advantages need nothing from other ranks); the
 * sampling streams are numbered by the completion's place in the whole step, the averaging
 * divides by the whole step's sequences and tokens, and the gradients, the statistics and the
 * experts' loads are summed over the ranks, so that every rank takes the step one process
 * takes (up to the order of the sums).  With dynamic sampling each rank refills its own share
 * (the refills then differ from one process's) and the prompt counter moves by
 * prompts x (max_refill + 1) per step, the same on every rank.  The group callback sees the
 * rank's own groups.  R1_EINVAL when there are fewer prompts per step than ranks. */
typedef struct r1_comm r1_comm;
r1_status r1_grpo_set_comm(r1_grpo *g, const r1_comm *c, r1_error *err);

/* The per-token gradient of the token-level objective, exposed for tests: given lp, lp_old,
 * lp_ref and the advantage of one token, returns dJ/dlp (policy term and KL) and sets
 * *clipped.  (The sequence-level ratio, the masks and the entropy bonus act on whole
 * completions: r1_grpo_seq_terms.) */
double r1_grpo_token_grad(const r1_grpo_cfg *cfg, double lp, double lp_old, double lp_ref,
                          double adv, int *clipped);

/* One completion's share of J, before the entropy bonus's gradient (which acts on the logits):
 * L tokens with log-probs lp (current), lp_old, lp_ref (NULL when beta = 0), lp_samp (the
 * sampler's, for the off-policy mask; NULL: lp_old) and entropies ent; wt is each token's
 * weight in the aggregation, A the advantage.  d[t] receives dJ/dlp[t]; scratch holds L
 * doubles.  Returns J's share
 * (entropy bonus included); adds the clipped tokens to *clipped, the tokens the entropy
 * selection kept to *kept, and sets *masked when the off-policy mask took the completion out. */
double r1_grpo_seq_terms(const r1_grpo_cfg *cfg, int L, double wt, double A, const double *lp,
                         const double *ent, const float *lp_old, const float *lp_ref,
                         const float *lp_samp, double *d, double *scratch, long *clipped,
                         long *kept, int *masked);

/* Advantages of one group: adv[G] from totals[G]; returns 1 when all rewards are equal. */
int r1_grpo_advantages(const r1_grpo_cfg *cfg, const double *totals, int G, double *adv);

/* GDPO's group part: adv[G] = sum_k w_k (r_k - mean_group r_k) / (std_group r_k + 1e-4) from
 * rewards[G, nr] (std with n - 1; a constant reward contributes 0); returns 1 when they are all
 * equal.  r1_grpo_batch_normalize then makes the whole step's advantages zero-mean,
 * unit-std: (a - mean) / (std + 1e-4) over n values. */
int r1_grpo_advantages_decoupled(const double *rewards, int G, int nr, const double *weights,
                                 double *adv);
void r1_grpo_batch_normalize(double *adv, int n);

/* ---- the objective on a given batch (what a step trains on; exposed for tests and tools) */

typedef struct {
    int nseq;
    const int32_t *const *seqs; /* [nseq] prompt followed by completion */
    const int *plens;           /* [nseq] prompt lengths (>= 1) */
    const int *lens;            /* [nseq] total lengths */
    const double *adv;          /* [nseq] advantages */
    /* the rollout's routing, for the mismatch meter and routing replay (may be NULL): the
     * experts chosen for every token of sequence k, routes[k][lens[k], n_moe, K], the main
     * model's MoE layers in order */
    const int32_t *const *routes;
    int replay;                 /* 1: r1_grpo_objective's forward uses routes */
    long *flips;                /* [n_moe] += completion tokens whose experts in the forward
                                 * differ from routes (may be NULL) */
    const float *lp_samp;       /* [completion tokens] the sampler's log-probs, for the
                                 * off-policy mask (NULL: lp_old's) */
    /* data parallelism: this batch is a rank's share of one of nseq_total sequences and
     * ntok_total completion tokens, which the averaging divides by (0: this batch's own) */
    int nseq_total;
    long ntok_total;
} r1_grpo_batch;

/* Log-probabilities of every completion token under m, in sequence order: lp[sum(lens-plens)].
 * Runs in chunks of `micro` sequences; forward only. */
r1_status r1_grpo_logprobs(r1_model *m, const r1_grpo_batch *b, int micro, float *lp,
                           r1_error *err);

typedef struct {
    double objective;  /* J: the aggregated clipped surrogate minus beta KL */
    double kl, clip_frac, entropy; /* means over completion tokens */
    double entropy_kept;  /* share of tokens the entropy selection kept */
    double masked;        /* share of completions the off-policy mask took out */
    double mtp_loss;   /* the MTP depths' mean cross-entropy on the completions (0: off) */
} r1_grpo_obj;

/* Adds the gradient of loss = -J to m's gradients (callers zero them first).  lp_old (NULL:
 * the current policy, so rho = 1) and lp_ref (NULL when beta = 0) are per completion token;
 * lp_now (may be NULL) receives the current log-probs. */
r1_status r1_grpo_objective(r1_model *m, const r1_grpo_cfg *cfg, const r1_grpo_batch *b,
                            const float *lp_old, const float *lp_ref, float *lp_now,
                            r1_grpo_obj *out, r1_error *err);

/* Checkpoint the trainer (policy, optimizer, step, prompt position, RNG, reference) / resume. */
r1_status r1_grpo_save(r1_grpo *g, const char *dir, r1_error *err);
/* The same with the run's settings (a JSON object text, may be NULL) and tokenizer (may be
 * NULL) in the checkpoint; the reference model is inside the atomic swap either way. */
r1_status r1_grpo_save_run(r1_grpo *g, const char *dir, const char *settings_json,
                           const r1_tokenizer *tok, r1_error *err);
r1_status r1_grpo_resume(r1_grpo *g, const char *dir, r1_error *err);

r1_adamw *r1_grpo_optimizer(r1_grpo *g); /* borrowed */
const r1_model *r1_grpo_reference(const r1_grpo *g); /* borrowed; NULL when beta = 0 */
int64_t r1_grpo_steps(const r1_grpo *g);
/* 1 when the last r1_grpo_step returned R1_ECANCELED because every group it sampled (refills
 * included) scored all-equal rewards: nothing left to learn from on these prompts (a task the
 * policy has mastered, or one it never solves); 0 otherwise. */
int r1_grpo_exhausted(const r1_grpo *g);

#endif
