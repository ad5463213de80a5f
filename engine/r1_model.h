/* r1_model.h — the miniature DeepSeek-V3: parameters, forward, backward, checkpoints.
 *
 * An r1_model holds a configuration, every trainable parameter in ONE contiguous fp32 block,
 * their gradients in a second block of the same layout, the non-trainable router biases
 * (e_score_correction_bias) apart, and the activations the last forward saved for backward.
 *
 * The maths follows DESIGN.md ("The model") to the letter: MLA with interleaved RoPE and the
 * shared k_pe; DeepSeekMoE with sigmoid scores, the selection bias, group-limited top-k and
 * normalised, scaled weights; dense SwiGLU layers first; MTP modules at layer indices
 * L .. L+D-1 fed with [enorm(embed(t[i+k])) | hnorm(h)].
 *
 * Threading: matrix products run on OpenBLAS with r1_threads() threads.  A model is not
 * thread-safe; use one model per thread. */
#ifndef R1_MODEL_H
#define R1_MODEL_H

#include "r1.h"
#include "r1_config.h"
#include "r1_safetensors.h"

typedef struct r1_model r1_model;

/* One trainable tensor (borrowed from the model; valid until r1_model_free). */
typedef struct {
    const char *name; /* Hugging Face name, e.g. "model.layers.1.mlp.gate.weight" */
    int ndim;
    int64_t shape[3];
    size_t numel;
    size_t offset; /* into r1_model_params() / r1_model_grads() */
    int decay;     /* 1: AdamW weight decay applies (matrices), 0: norms */
} r1_param;

/* A new model for config c with every parameter zero (router biases zero).  The config is
 * validated first.  *out is owned by the caller. */
r1_status r1_model_new(r1_model **out, const r1_config *c, r1_error *err);
void r1_model_free(r1_model *m);

/* Random initialisation from seed: matrices and embeddings normal(0, initializer_range),
 * norm weights 1, router biases 0.  The same seed gives the same parameters. */
void r1_model_init(r1_model *m, uint64_t seed);

/* Loads a Hugging Face deepseek_v3 folder (config.json + model.safetensors or a sharded
 * index).  Errors name the file and the tensor.  *out is owned by the caller. */
r1_status r1_model_load(r1_model **out, const char *dir, r1_error *err);

/* What loading changed about what the folder promised, for the user to be told (the engine
 * does not print): "" normally; a config promising MTP layers over weights without any (what
 * a Hugging Face fine-tune saves) loads with MTP off and says so here.  Borrowed. */
const char *r1_model_notice(const r1_model *m);

/* Writes config.json and model.safetensors into dir (created if missing), tensors stored as
 * dtype (R1_DT_F32 or R1_DT_BF16), with the MTP layers' copies of the embedding and head.
 * R1_DT_F8_E4M3 writes DeepSeek-V3's FP8 layout (r1_fp8.h): the linear weights as E4M3 with
 * "<name>_scale_inv" block scales, the other tensors BF16, and quantization_config in
 * config.json.  r1_model_load reads all three back (FP8 dequantised to fp32).
 * FP8 training: r1_model_set_fp8 in r1_fp8.h. */
r1_status r1_model_save(const r1_model *m, const char *dir, r1_dtype dtype, r1_error *err);

/* The precision of training's linear layers (every r1_model_forward and its backward):
 *   R1_PREC_FP32  fp32 GEMMs through OpenBLAS (the default);
 *   R1_PREC_BF16  DeepSeek-V3's split: the attention projections, dense and expert MLPs and
 *                 MTP's projection multiply bf16 operands with fp32 accumulation (forward, dX
 *                 and dW; r1_gemm16.h, on the CPU's BF16 units where it has them), and so do
 *                 attention's products (q·k^T, P·V and their backward).  The weights are
 *                 rounded to bf16 once per optimizer step, not per forward: r1_adamw_step
 *                 rounds each weight as it updates it, into the copy a BF16 decoder reads too
 *                 (r1_model_params marks the copy stale).  The master weights,
 *                 gradients, optimizer, norms, router, softmax and its scale, embedding and
 *                 heads stay fp32;
 *   R1_PREC_FP8   r1_model_set_fp8(m, R1_FP8_TILES) (r1_fp8.h).
 * Generation is not affected.  A forward in BF16 may fail with R1_ENOMEM (the bf16 copy). */
typedef enum {
    R1_PREC_FP32 = 0,
    R1_PREC_BF16 = 1,
    R1_PREC_FP8 = 2,
    R1_PREC_FP8_TENSOR = 3 /* r1_model_set_fp8(m, R1_FP8_TENSOR): one scale per operand */
} r1_precision;
/* The settings' choice text, in enum order, for the stages' "precision" setting. */
#define R1_PRECISION_CHOICES "fp32|bf16|fp8|fp8-tensor"
void r1_model_set_precision(r1_model *m, r1_precision p);
r1_precision r1_model_precision(const r1_model *m);
const char *r1_precision_name(r1_precision p); /* "fp32", "bf16", "fp8", "fp8-tensor" */

const r1_config *r1_model_config(const r1_model *m); /* borrowed */
const char *r1_model_errmsg(const r1_model *m);      /* the last error on this handle */

int r1_model_nparams(const r1_model *m);                  /* number of trainable tensors */
const r1_param *r1_model_param(const r1_model *m, int i); /* i in [0, nparams) */
const r1_param *r1_model_param_find(const r1_model *m, const char *name); /* NULL if absent */
size_t r1_model_numel(const r1_model *m); /* total trainable scalars */
/* The parameters, [numel] borrowed, to read or write.  BF16 training and decoding read a bf16
 * copy of them, converted again only after a call to this (or to init, mix or copy) and kept
 * up to date by r1_adamw_step: call it again for each round of writes, not once for good. */
float *r1_model_params(r1_model *m);
float *r1_model_grads(r1_model *m);       /* [numel] borrowed */
void r1_model_zero_grad(r1_model *m);

/* The router bias of MoE layer l ([E] floats, borrowed), or NULL for a dense layer. */
float *r1_model_router_bias(r1_model *m, int l);
/* MoE layer l's routed-token counts since the last balance update ([E] doubles, borrowed and
 * writable: data parallelism sums them over the ranks before the update) and, in *tokens (may
 * be NULL), its token count; NULL for a dense layer. */
double *r1_model_load_counts(r1_model *m, int l, long **tokens);
int r1_model_nlayers_total(const r1_model *m); /* L + D */

/* ------------------------------------------------------------------ forward / backward */

typedef struct {
    float mtp_lambda;          /* weight of the MTP loss (DESIGN: 0.3) */
    float balance_alpha;       /* sequence-wise balance loss coefficient (0: off) */
    const float *loss_weights; /* [B,T] weight of predicting token t (t >= 1); NULL: all 1 */
    const float *mtp_weights;  /* [B,T] the same for the MTP depths; NULL: loss_weights */
    double mtp_denom;          /* > 0: each MTP depth's cross-entropy is its weighted sum over
                                * this (a normaliser shared by micro-batches); 0: over the
                                * sum of its own weights */
    int no_mtp;                /* 1: skip the MTP modules (inference) */
    /* data parallelism: a rank's forward over its share of a batch normalises as the whole
     * batch would, so that the ranks' gradients sum to the whole batch's */
    double main_denom;         /* > 0: the main cross-entropy's normaliser (0: its Σw) */
    const double *mtp_denoms;  /* [D] > 0: each MTP depth's normaliser (NULL: mtp_denom) */
    int balance_rows;          /* > 0: the balance loss averages over this many rows (0: B) */
} r1_fwd_opts;

/* The defaults: lambda 0.3, alpha 0, no weights, MTP on. */
r1_fwd_opts r1_fwd_defaults(void);

typedef struct {
    double loss;        /* main + mtp + balance */
    double main;        /* weighted mean next-token cross-entropy */
    double mtp;         /* (lambda / D) · sum_k mean CE_k */
    double balance;     /* alpha · sum over MoE layers of the mean per-sequence balance loss */
    double weight_main; /* sum of the loss weights of the main term (the denominator) */
} r1_loss;

/* Runs the model on tokens[B,T] (ids in [0, vocab)), computing logits, MTP logits, routing and
 * the losses, and keeps the activations for r1_model_backward.  loss may be NULL.
 * R1_EINVAL (message names the position) for an out-of-range token or T beyond
 * max_position_embeddings; R1_ENOMEM. */
r1_status r1_model_forward(r1_model *m, const int32_t *tokens, int B, int T,
                           const r1_fwd_opts *opts, r1_loss *loss, r1_error *err);

/* Adds the gradient of the last forward's total loss to the gradient block.  R1_EINVAL when
 * there was no forward. */
r1_status r1_model_backward(r1_model *m, r1_error *err);

/* Like r1_model_backward, but with the caller's gradient of the loss with respect to the main
 * logits, dlogits[B,T,V], in place of the cross-entropy's (used by RL objectives).  The MTP
 * depths add the gradient of their own loss as in r1_model_backward (GRPO's MTP loss on the
 * sampled completions); run the forward with no_mtp to leave them out. */
r1_status r1_model_backward_logits(r1_model *m, const float *dlogits, r1_error *err);

/* dst = alpha src + (1 - alpha) dst, parameter by parameter and for the routing biases (TR-DPO's
 * reference update; float arithmetic, so alpha 1 copies exactly).  Same config required. */
r1_status r1_model_mix_params(r1_model *dst, const r1_model *src, float alpha, r1_error *err);

/* Copies every parameter and router bias of src into dst (same config). */
r1_status r1_model_copy_params(r1_model *dst, const r1_model *src, r1_error *err);

/* Outputs of the last forward (borrowed until the next forward):
 * logits [B,T,V]; MTP logits of depth k (1-based) [B,T-k,V] (NULL when absent). */
const float *r1_model_logits(const r1_model *m);
const float *r1_model_mtp_logits(const r1_model *m, int k);

/* Routing of the last forward at MoE layer l: experts[B,len,K] in ascending order and the
 * matching weights[B,len,K] (len = T for main layers, T-k for MTP depth k).  Returns len, or
 * -1 when l is not a MoE layer or there was no forward. */
int r1_model_routing(const r1_model *m, int l, int32_t *experts, float *weights);

/* Routing replay: the forwards that follow use experts[N, K] at MoE layer l of the main model
 * (one row per token of the forward, N = B·T; each row ascending, distinct, in 0..E-1) instead
 * of the router's top-k.  The gate weights are still computed from the router's scores over
 * those experts (normalised and scaled as usual), so the router keeps its gradient, and the
 * backward follows the given experts.  experts is borrowed until the call that clears it
 * (experts NULL).  R1_EINVAL naming the row for a bad row, or l not a MoE layer of the main
 * model; a forward of another size than N fails naming the layer.  Generation ignores it. */
r1_status r1_model_force_routing(r1_model *m, int l, const int32_t *experts, int N,
                                 r1_error *err);

/* Expert load of MoE layer l accumulated since the last r1_model_balance_update: tokens routed
 * to each expert, load[E].  Returns the number of tokens counted, or -1 for a dense layer. */
long r1_model_expert_load(const r1_model *m, int l, float *load);

/* How evenly a layer's load[E] (tokens per expert, any scale) is spread: MaxVio, DeepSeek-V3's
 * balance measure, max load / mean load - 1 (0: perfectly even; E - 1: one expert takes all);
 * and Jain's fairness index (sum load)^2 / (E sum load^2), in 1/E..1 (1: even).  Both 0 when
 * nothing was routed. */
double r1_load_maxvio(const float *load, int E);
double r1_load_jain(const float *load, int E);

/* Auxiliary-loss-free balancing: for every MoE layer, bias_e += gamma · sign(mean load −
 * load_e) over the load accumulated since the last call, then resets the counts. */
void r1_model_balance_update(r1_model *m, float gamma);

/* Forward FLOPs per token for sequences of T tokens (matrix products and attention, MTP
 * included); a training step costs about three times this. */
double r1_model_flops_per_token(const r1_model *m, int T);

#endif
