/* r1_optim.h — AdamW over a model's parameter block, global-norm gradient clipping and the
 * warmup + cosine learning-rate schedule.
 *
 * The optimizer keeps both moments as one contiguous block each, in the parameter block's
 * layout, so that checkpoints can save and restore them exactly.  Weight decay applies to
 * matrices and embeddings only (r1_param.decay), not to norm weights. */
#ifndef R1_OPTIM_H
#define R1_OPTIM_H

#include "r1_model.h"

typedef struct {
    float lr;     /* peak learning rate */
    float min_lr; /* floor of the cosine */
    int warmup;   /* linear warmup steps (from lr/warmup up to lr) */
    int total;    /* steps of the schedule; 0: constant lr after warmup */
    float beta1, beta2, eps;
    float weight_decay;
    float clip; /* clip the global gradient norm to this (0: off) */
    int bf16_moments; /* 1: keep both moments at bf16 precision (rounded to nearest even after
                       * every update), as DeepSeek-V3 stores them; emulated in the fp32 blocks,
                       * so checkpoints and r1_adamw_m / _v are unchanged (0: fp32) */
} r1_adamw_cfg;

/* lr 1e-3, min_lr 1e-4, warmup 0, total 0, betas (0.9, 0.95), eps 1e-8, wd 0.1, clip 1,
 * fp32 moments. */
r1_adamw_cfg r1_adamw_defaults(void);

/* The learning rate at step (0-based) under cfg's schedule. */
float r1_lr_at(const r1_adamw_cfg *cfg, int step);

typedef struct r1_adamw r1_adamw;

/* Moments for m's parameters, zero.  *out owned by the caller. */
r1_status r1_adamw_new(r1_adamw **out, const r1_model *m, const r1_adamw_cfg *cfg, r1_error *err);
void r1_adamw_free(r1_adamw *o);

/* Global L2 norm of m's gradients. */
double r1_grad_norm(r1_model *m);

/* One AdamW update of m's parameters from m's gradients (clipped first); returns the
 * learning rate used.  *gnorm (may be NULL) gets the norm before clipping.  The gradients are
 * left as they were (scaled when clipped).  A gradient that is not finite (NaN or inf
 * anywhere, so a norm that is not finite) changes nothing, neither the weights nor the moments
 * nor the step count: the caller sees it in *gnorm and stops its run with an error. */
float r1_adamw_step(r1_adamw *o, r1_model *m, double *gnorm);

int r1_adamw_steps(const r1_adamw *o); /* updates done so far */
void r1_adamw_set_steps(r1_adamw *o, int t);
float *r1_adamw_m(r1_adamw *o);             /* [numel] first moments, borrowed */
float *r1_adamw_v(r1_adamw *o);             /* [numel] second moments, borrowed */
r1_adamw_cfg *r1_adamw_config(r1_adamw *o); /* borrowed, may be edited between steps */

#endif
