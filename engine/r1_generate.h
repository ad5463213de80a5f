/* r1_generate.h — generation: the MLA latent KV cache, batched decoding, sampling, streamed
 * tokens with their routing, and speculative decoding with the MTP module.
 *
 * Two levels:
 *  - r1_decoder: the cache and one decoding step for several rows at once.  Per layer and
 *    token it keeps only the normalised compressed kv (kv_lora_rank floats) and the roped k_pe
 *    (qk_rope_head_dim floats); attention runs in the latent space with kv_b_proj absorbed
 *    into the query (W_UK) and output (W_UV) sides, as the DeepSeek-V3 reference does.
 *  - r1_generate: prompts in, completions out, with sampling settings, stop conditions, a
 *    per-token callback and MTP speculation.
 *
 * A decoder borrows its model (which must outlive it) and must not run while the same model
 * trains.  Errors: R1_EINVAL with a message naming the row, the position or the setting;
 * R1_ENOMEM; R1_ECANCELED when the callback or r1_interrupt() stopped the work. */
#ifndef R1_GENERATE_H
#define R1_GENERATE_H

#include "r1_model.h"
#include "r1_observer.h"

/* ------------------------------------------------------------------ the decoder */

typedef struct r1_decoder r1_decoder;

/* A decoder for `rows` sequences of at most max_len tokens each (prompt included). */
r1_status r1_decoder_new(r1_decoder **out, r1_model *m, int rows, int max_len, r1_error *err);
void r1_decoder_free(r1_decoder *d);

/* Feeds n tokens per row (tok[R*n], row-major) to rows[R], at each row's next positions, and
 * writes the logits of every fed token to logits[R*n, V] (may be NULL).  Rows fed n tokens
 * attend causally among them (n > 1 is prefill or speculative verification). */
r1_status r1_decoder_step(r1_decoder *d, const int *rows, int R, const int32_t *tok, int n,
                          float *logits, r1_error *err);

/* The MTP module (depth 1) on the same rows: for each fed pair (h = main hidden state after
 * the final norm at position p, token t[p+1]) the logits predicting t[p+2]; h[R*n, C] and
 * tok[R*n].  Keeps the MTP layer's own latent cache.  R1_EUNSUPPORTED without MTP. */
r1_status r1_decoder_mtp_step(r1_decoder *d, const int *rows, int R, const float *h,
                              const int32_t *tok, int n, float *logits, r1_error *err);

/* Holds the weights of every linear layer as bf16 (round to nearest even) for the steps that
 * follow: products in the CPU's AVX-512 BF16 instructions (portable code elsewhere) with fp32
 * accumulation.  The embedding, the router, the head, kv_b_proj's absorbed halves and the norms
 * stay fp32.  The bf16 weights are the model's own copy, which BF16 training uses too; each
 * step reads it as the fp32 weights are then (converted again only after they changed), so,
 * as in fp32, a step sees the weights of that moment.  R1_ENOMEM. */
r1_status r1_decoder_set_bf16(r1_decoder *d, int on, r1_error *err);

/* Holds the linear weights that DeepSeek-V3 ships as FP8 (r1_fp8_is_stored: attention and
 * MLP / expert projections) as E4M3 with one fp32 scale per 128x128 block, for the steps that
 * follow; each product decodes the weights inside the GEMM (r1_matmul_fp8: AVX-512 where the
 * CPU has it) and keeps the activations and the sums fp32.  Everything else stays fp32, as for
 * bf16 (plus eh_proj, BF16 in DeepSeek's files).  The copy is taken now: call again after the
 * weights change.  Turning FP8 on drops BF16 weights and the other way round.  R1_EINVAL
 * naming the tensor when a weight is NaN or infinite; R1_ENOMEM. */
r1_status r1_decoder_set_fp8(r1_decoder *d, int on, r1_error *err);

/* Bytes of the decoder's low-precision weight copy (bf16 or fp8 codes + scales; 0 for fp32;
 * bf16 counts the copy packed into the GEMM's panels too, once a step has packed it) and, in
 * *fp32_bytes (may be NULL), what the same weights take as fp32. */
size_t r1_decoder_weight_bytes(const r1_decoder *d, size_t *fp32_bytes);

/* The final-normed hidden states of the last r1_decoder_step, [R*n, C] (borrowed until the
 * next step). */
const float *r1_decoder_hidden(const r1_decoder *d);

/* Routing of the last step's token i (0 <= i < R*n) at MoE layer l: K experts (ascending)
 * and weights, borrowed until the next step.  Returns K, or -1 for a dense layer. */
int r1_decoder_routing(const r1_decoder *d, int l, int i, const int32_t **experts,
                       const float **weights);

int r1_decoder_len(const r1_decoder *d, int row);     /* tokens cached for row */
int r1_decoder_mtp_len(const r1_decoder *d, int row); /* MTP positions cached for row */
void r1_decoder_truncate(r1_decoder *d, int row, int len, int mtp_len); /* forget the tail */
void r1_decoder_copy_row(r1_decoder *d, int dst, int src); /* share a prefilled prompt */

/* Cache bytes per token (fp32): MLA's latent cache and, for the same shapes, plain multi-head
 * attention's full keys and values; main layers only. */
size_t r1_cache_bytes_per_token(const r1_config *c);
size_t r1_mha_cache_bytes_per_token(const r1_config *c);

/* ------------------------------------------------------------------ generation */

typedef struct {
    int max_tokens;           /* new tokens per row (default 128) */
    float temperature;        /* 0: greedy (default 0) */
    int top_k;                /* 0: off */
    float top_p;              /* 1: off */
    float min_p;              /* 0: off */
    float repetition_penalty; /* 1: off; > 1 discourages tokens already in the row */
    uint64_t seed;            /* row r samples from stream (seed, row0 + r) */
    int64_t row0;             /* the first row's number in a larger batch that several calls
                               * (data-parallel ranks) share (0) */
    int speculative;          /* draft with the MTP module, verify with the main model */
    int bf16;                 /* hold the weights as bf16 while generating */
    int fp8;                  /* ... or as E4M3 with 128x128 block scales (not both) */
    const int32_t *stop_ids;  /* generation of a row stops after any of these tokens */
    int n_stop_ids;
    const int32_t *const *stop_seqs; /* ... or after any of these token sequences */
    const int *stop_lens;
    int n_stop_seqs;
    /* the microscope (both off by default; each costs the decoding loop a little) */
    int top_n;                /* keep each token's n most likely alternatives (0..R1_TOP_MAX)
                               * and its entropy, under the plain model */
    int mtp_predict;          /* keep the MTP module's prediction for the token after each
                               * generated one (needs an MTP module) */
    int prompt_routing;       /* keep the experts chosen for the prompt's tokens too (GRPO's
                               * routing replay) */
} r1_gen_cfg;

#define R1_TOP_MAX 32

r1_gen_cfg r1_gen_defaults(void);

typedef enum { R1_FINISH_STOP = 0, R1_FINISH_LENGTH = 1, R1_FINISH_CANCEL = 2 } r1_finish;

/* One generated token, as the observer's token slot sees it (pointers borrowed for the call);
 * a non-zero return from it stops the whole generation (R1_ECANCELED, the results so far
 * kept). */
typedef struct r1_token_event {
    int row;
    int index;             /* 0-based index among the row's generated tokens */
    int pos;               /* position in the row (prompt included) */
    int32_t token;
    float logprob;         /* log-probability under the sampling distribution */
    float logprob_model;   /* under the plain model (temperature 1, no filtering) */
    int drafted;           /* 1: an accepted MTP draft */
    int n_moe;             /* MoE layers of the main model */
    const int *moe_layers; /* [n_moe] their indices */
    int K;
    const int32_t *experts; /* [n_moe, K] chosen experts at this token's position */
    const float *weights;   /* [n_moe, K] */
    /* with top_n: the plain model's n most likely tokens at this position (this token among
     * them or not), most likely first, their probabilities, and the entropy in nats */
    int n_top;
    const int32_t *top_ids; /* [n_top] */
    const float *top_p;     /* [n_top] */
    float entropy;          /* NaN without top_n */
    /* with mtp_predict: what the MTP module, reading this token and the main model's hidden
     * state before it, predicts for the next token (argmax, probability); -1 when unknown */
    int32_t mtp_token;
    float mtp_p;
} r1_token_event;


typedef struct {
    int n;                 /* generated tokens */
    int32_t *tokens;       /* [n] */
    float *logprobs;       /* [n] sampling distribution */
    float *logprobs_model; /* [n] plain model */
    int32_t *experts;      /* [n, n_moe, K] */
    float *weights;        /* [n, n_moe, K] */
    int32_t *top_ids;      /* [n, top_n] with top_n (else NULL), as in r1_token_event */
    float *top_p;          /* [n, top_n] */
    float *entropy;        /* [n] */
    int32_t *mtp_ids;      /* [n] with mtp_predict (else NULL); -1 where unknown (the last
                            * token of a speculative row) */
    float *mtp_p;          /* [n] */
    int32_t *prompt_experts; /* [prompt length, n_moe, K] with prompt_routing (else NULL) */
    r1_finish finish;
} r1_gen_row;

typedef struct {
    int rows;
    r1_gen_row *row;       /* [rows] */
    int n_moe, K;
    int *moe_layers;       /* [n_moe] */
    int top_n;             /* alternatives kept per token (cfg.top_n) */
    long drafted, accepted; /* speculative: drafts proposed and accepted */
    long steps;            /* main-model decoding steps */
    double seconds;        /* wall time of the decoding loop (prefill included) */
    size_t weight_bytes;   /* the bf16 / fp8 weight copy (r1_decoder_weight_bytes), 0: fp32 */
    size_t weight_bytes_fp32; /* the same weights in fp32 */
} r1_gen_result;

/* Generates completions for R prompts (prompts[r][0..lens[r])), each prompt >= 1 token.
 * *out (owned by the caller, r1_gen_result_free) holds every row's tokens; on R1_ECANCELED it
 * holds what was generated so far.  o (may be NULL) sees every token. */
/* The token inspector's kernels, for whoever reads logits itself (m:replay): log
 * softmax(logits[V])[t], computed in double; and the n most likely tokens of softmax(logits)
 * (temperature 1, unfiltered), most likely first (ties: the lower id first), their
 * probabilities p[n] and the distribution's entropy in nats (entropy may be NULL), as
 * r1_generate records them with top_n.  Slots beyond V hold id -1 and p 0. */
float r1_log_softmax_at(const float *logits, int V, int t);
void r1_top_tokens(const float *logits, int V, int n, int32_t *ids, float *p, float *entropy);

r1_status r1_generate(r1_model *m, const int32_t *const *prompts, const int *lens, int R,
                      const r1_gen_cfg *cfg, const r1_observer *o, r1_gen_result **out,
                      r1_error *err);
void r1_gen_result_free(r1_gen_result *r);

#endif
