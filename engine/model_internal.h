/* model_internal.h — the body of r1_model, shared by model.c (parameters, checkpoints) and
 * forward.c / moe.c (forward and backward).  Not installed. */
#ifndef R1_MODEL_INTERNAL_H
#define R1_MODEL_INTERNAL_H

#include "r1_model.h"

/* The weights of one decoder layer (pointers into the parameter block; NULL when absent).
 * Shapes use C hidden, H heads, dq = dn + dr, qr q_lora_rank, kvr kv_lora_rank, I dense
 * width, E experts, Ie expert width, Is shared width = Ie · n_shared_experts. */
/* Chunks of address space the large activation buffers are carved from (forward.c). */
typedef struct r1__arena r1__arena;

typedef struct {
    int moe; /* routed experts in this layer */
    /* MTP only (layer index >= L) */
    float *enorm;     /* [C] */
    float *hnorm;     /* [C] */
    float *eh_proj;   /* [C, 2C] */
    float *head_norm; /* [C] shared_head.norm */
    /* attention */
    float *attn_norm; /* [C] input_layernorm */
    float *q_a;       /* [qr, C] */
    float *q_a_norm;  /* [qr] */
    float *q_b;       /* [H*dq, qr] */
    float *q_proj;    /* [H*dq, C] when q_lora_rank == 0 */
    float *kv_a;      /* [kvr+dr, C] kv_a_proj_with_mqa: [c_kv | k_pe] */
    float *kv_a_norm; /* [kvr] */
    float *kv_b;      /* [H*(dn+dv), kvr], per head [k_nope | v] */
    float *o_proj;    /* [C, H*dv] */
    float *ffn_norm;  /* [C] post_attention_layernorm */
    /* dense SwiGLU */
    float *gate, *up; /* [I, C] */
    float *down;      /* [C, I] */
    /* MoE */
    float *router;  /* [E, C] mlp.gate.weight */
    float *bias;    /* [E] e_score_correction_bias (not trainable; own allocation) */
    float *eg, *eu; /* [E][Ie, C] routed experts' gate_proj / up_proj, expert-major */
    float *ed;      /* [E][C, Ie] routed experts' down_proj */
    float *sg, *su; /* [Is, C] shared experts */
    float *sd;      /* [C, Is] */
    double *load;   /* [E] tokens routed to each expert since the last balance update */
    long load_tokens;
    const int32_t *forced; /* [forced_n, K] routing replay: the experts r1_model_forward uses
                            * instead of the router's top-k (borrowed), or NULL */
    int forced_n;
} layer_w;

/* What one layer's forward keeps for its backward.  N = B·T tokens of this layer. */
typedef struct {
    int B, T, N;
    int *pos;        /* [N] RoPE positions: token t of every sequence is at t */
    float *x;        /* [N, C] layer input (residual stream) */
    float *xn;       /* [N, C] attn-normed input */
    float *rstd1;    /* [N] */
    float *qa, *qan; /* [N, qr] q_a_proj output, normed */
    float *qa_rstd;  /* [N] */
    float *q;        /* [N, H*dq] queries, q_pe roped */
    float *kva;      /* [N, kvr+dr] kv_a output, k_pe roped */
    float *ckv;      /* [N, kvr] c_kv (contiguous copy) */
    float *kvn;      /* [N, kvr] normed c_kv */
    float *kv_rstd;  /* [N] */
    float *kv;       /* [N, H*(dn+dv)] kv_b output */
    float *k;        /* [N, H*dq] keys [k_nope | k_pe] */
    float *v;        /* [N, H*dv] values */
    float *P;        /* [B, H, T, T] attention probabilities */
    float *ao;       /* [N, H*dv] attention output before o_proj */
    float *h;        /* [N, C] residual after attention */
    float *hn;       /* [N, C] ffn-normed */
    float *rstd2;    /* [N] */
    /* dense */
    float *g, *u, *a; /* [N, I] */
    /* MoE */
    float *s;              /* [N, E] sigmoid scores */
    int32_t *sel;          /* [N, K] chosen experts, ascending */
    float *wts;            /* [N, K] their weights */
    int32_t *cnt;          /* [E] assignments per expert */
    int32_t *off;          /* [E+1] first slot of each expert */
    int32_t *slot_tok;     /* [N*K] token of each slot (slots grouped by expert) */
    int32_t *slot_k;       /* [N*K] which of the token's K choices */
    float *xe;             /* [N*K, C] gathered expert inputs */
    float *eg, *eu, *ea;   /* [N*K, Ie] */
    float *eo;             /* [N*K, C] expert outputs (unweighted) */
    float *sgo, *suo, *sa; /* [N, Is] shared expert */
} layer_act;

/* What an MTP depth keeps in addition to its decoder layer's layer_act. */
typedef struct {
    int B, T, N;    /* T = T_main - k */
    int32_t *tok;   /* [N] input tokens t[i+k] */
    float *emb;     /* [N, C] embedding rows */
    float *en;      /* [N, C] enorm(emb) */
    float *en_rstd; /* [N] */
    float *prev;    /* [N, C] previous hidden (normed main / previous depth) */
    float *pn;      /* [N, C] hnorm(prev) */
    float *pn_rstd; /* [N] */
    float *cat;     /* [N, 2C] */
    float *x1;      /* [N, C] decoder layer output */
    float *hk;      /* [N, C] shared_head.norm(x1) */
    float *hk_rstd; /* [N] */
    float *logits;  /* [N, V] */
    float *dlogits; /* [N, V] */
} mtp_act;

/* Backward workspace, sized for the largest layer (N = B·T tokens); reused by every layer. */
typedef struct {
    float *dh, *dhn, *dxn;  /* [N, C] */
    float *dao;             /* [N, H*dv] */
    float *dq, *dk;         /* [N, H*dq] */
    float *dv;              /* [N, H*dv] */
    float *dP;              /* [T, T] */
    float *dkv;             /* [N, H*(dn+dv)] */
    float *dkva;            /* [N, kvr+dr] */
    float *dkvn, *dckv;     /* [N, kvr] */
    float *dqan, *dqa;      /* [N, qr] */
    float *dg, *du, *da;    /* [N, I] */
    float *dwts;            /* [N, K] */
    float *ds;              /* [N, E] */
    float *deo, *dxe;       /* [N*K, C] */
    float *deg, *deu, *dea; /* [N*K, Ie] */
    float *dsg, *dsu, *dsa; /* [N, Is] */
    float *dres[2];         /* [N, C] the residual stream's gradient, ping-pong */
    float *dhf;             /* [N, C] gradient of the final-normed hidden state */
    float *dmtp[2];         /* [N, C] MTP: gradient flowing to the previous depth */
    float *dcat;            /* [N, 2C] */
    float *dx0;             /* [N, C] */
    float *tmp;             /* [N, C] */
} grad_scratch;

/* An intervention in the residual stream for one forward (activation patching, inspect.c):
 * at site `site` (0: the embeddings entering layer 0; l + 1: the output of decoder layer l),
 * row b's position pos[b] (-1: none) is overwritten with vec[b, C] before the next layer. */
typedef struct {
    int site;
    const int *pos;   /* [B] */
    const float *vec; /* [B, C] */
    const float *base; /* [T, C] or NULL: every row's residual at `site` before the patch, so
                        * that the layers before it are skipped (their activations are then
                        * not kept: no backward) */
} r1__patch;

struct r1_model {
    r1_config cfg;
    char notice[R1_ERRLEN]; /* what r1_model_load changed about the folder's promise ("") */
    int L, D, Ltot; /* main layers, MTP depth, L + D */
    int dq;         /* qk_nope + qk_rope */
    int Is;         /* shared expert width */
    /* parameters */
    size_t numel;
    float *params; /* [numel] */
    float *grads;  /* [numel] */
    int nparams;
    r1_param *ptab;             /* [nparams] */
    char *names;                /* storage of the parameter names */
    float *embed;               /* [V, C] */
    float *final_norm;          /* [C] */
    float *head;                /* [V, C] lm_head (== embed when tied) */
    layer_w *layers;            /* [Ltot] */
    float *rope_cos, *rope_sin; /* [max_pos, dr/2] */
    /* activations of the last forward */
    int have_fwd;
    int B, T;
    int cap_B; /* the buffers hold up to cap_B sequences of cap_T tokens (r1__alloc_acts) */
    int cap_T;
    void **allocs; /* every small activation buffer, freed on resize */
    int nallocs, capallocs;
    r1__arena *arena; /* the large ones (forward.c), freed with them */
    layer_act *acts;  /* [Ltot] */
    mtp_act *macts;   /* [D] */
    int32_t *tokens;  /* [N] */
    int32_t *targets; /* [N] scratch for CE targets */
    float *tw;        /* [N] scratch for CE weights */
    int *pos;         /* [N] positions */
    float *x_final;   /* [N, C] residual after the last layer */
    float *hf;        /* [N, C] final-normed */
    float *hf_rstd;   /* [N] */
    float *logits;    /* [N, V] */
    float *dlogits;   /* [N, V] */
    float **resid;    /* [L+1] residual stream inputs, resid[0] = embeddings */
    r1_fwd_opts opts;
    double denom_main;
    double denom_mtp[8];
    grad_scratch gs;
    int no_load_count;         /* 1 while generating: expert loads count training only */
    const uint16_t *w16;       /* while a BF16 decoder steps: bf16 copies of the parameters,
                                * same layout (borrowed from the decoder) */
    int f32_rows;              /* while an fp32 decoder steps (not a prompt): its products go
                                * to r1__matmul_fwd_decode */
    int decoding;              /* while any decoder steps (prompts too): the router goes to
                                * r1__matmul_fwd_decode, a row's bits its own */
    const struct r1__fp8w *w8; /* while an FP8 decoder steps: its E4M3 linear weights
                                * (borrowed from the decoder) */
    int fp8;                   /* r1_fp8_mode of training (r1_model_set_fp8) */
    int fp8_fwd;               /* the mode while r1_model_forward runs, else 0 */
    int fp8_last;              /* the mode of the last forward, for its backward */
    int fp8_oom;               /* an emulated GEMM ran out of memory (set atomically) */
    int fp8_emulate;           /* FP8 by quantise-dequantise-sgemm, not through BF16 (tests) */
    int bf16;                  /* BF16 mixed precision of training (r1_model_set_precision) */
    int bf16_fwd, bf16_last;   /* as fp8_fwd and fp8_last */
    uint16_t *wt16;            /* bf16(params), same layout: BF16 training's GEMMs and a BF16
                                * decoder read it (r1__wt16) */
    unsigned long wt16_gen;    /* bumped whenever wt16's contents change (r1__wt16 converts,
                                * AdamW writes it) */
    struct r1__wpk *wpk;       /* the linear weights packed for r1__gemm16 (r1__wpack), sorted
                                * by offset; valid while wpk_gen == wt16_gen and the kernel
                                * path's layout is wpk_layout */
    int nwpk, wpk_layout;
    size_t wpk_words;          /* the packed weights' size (uint32_t words) */
    unsigned long wpk_gen;
    uint32_t *wpk_mem;
    int wt16_ok;               /* wt16 holds bf16 of the current params: set by r1__wt16 and
                                * kept by AdamW, which rounds each weight it updates; cleared
                                * by every other writer (r1_model_params, init, load, mix,
                                * copy) */
    const r1__patch *patch;    /* the next forwards' intervention (inspect.c), else NULL */
    int forcing;               /* 1 while r1_model_forward runs: layer_w.forced applies */
    char errmsg[R1_ERRLEN];
};

/* forward.c */
void r1__layer_forward(r1_model *m, int l, layer_act *a, const float *x, float *out);
void r1__layer_backward(r1_model *m, int l, layer_act *a, const float *dout, float *dx);
void r1__free_acts(r1_model *m);
int r1__alloc_acts(r1_model *m, int B, int T);

/* moe.c */
void r1__moe_forward(r1_model *m, int l, layer_act *a, float *f);
void r1__moe_backward(r1_model *m, int l, layer_act *a, const float *df, float *dhn);
double r1__moe_balance(r1_model *m, int l, layer_act *a);

/* fp8_linear.c: every linear layer's GEMMs.  out[N,Co] = in[N,Ci] · w^T (+= when accumulate)
 * with w a parameter matrix: its bf16 copy while a BF16 decoder runs (m->w16), its E4M3 copy
 * while an FP8 decoder runs (m->w8), FP8-emulated during a forward with m->fp8 set, exactly
 * r1_matmul_fwd otherwise. */
void r1__mm(r1_model *m, float *out, const float *in, const float *w, int N, int Ci, int Co,
            int accumulate);
/* out1[N,Co1] = in · w1^T and out2[N,Co2] = in · w2^T (never accumulated): two r1__mm calls,
 * the same bits; on BF16 weights packed once, each block of `in` is packed for both. */
void r1__mm2(r1_model *m, float *out1, const float *w1, int Co1, float *out2, const float *w2,
             int Co2, const float *in, int N, int Ci);
/* The backward of r1__mm: r1_matmul_bwd, FP8-emulated when the last forward was. */
void r1__linear_bwd(r1_model *m, float *din, float *dw, const float *dout, const float *in,
                    const float *w, int N, int Ci, int Co);
/* The backward of r1__mm2 (two weights of one input, Co columns each): r1__linear_bwd for w1,
 * then for w2, the same bits; in bf16, each block of `in` is packed once for both dW. */
void r1__linear_bwd2(r1_model *m, float *din, float *dw1, const float *dout1, const float *w1,
                     float *dw2, const float *dout2, const float *w2, const float *in, int N,
                     int Ci, int Co);

/* Tokens a row from which a BF16 decoder's step counts as a prompt (decode.c). */
#define R1_PREFILL_ROWS 16

/* m->wt16 = bf16(m->params), converted only when a writer has left it stale (so once per
 * optimizer step at most, not per forward), allocated on first use; NULL when out of memory. */
const uint16_t *r1__wt16(r1_model *m);
/* Packs every linear weight of m (from r1__wt16) as r1__gemm16's B = W^T for the kernel path
 * in use, when stale: a BF16 decoder's products then run on r1__gemm16_packed without packing
 * a weight per call, with the bits a prompt's r1__gemm16 gives.  0 when it has no memory (the
 * products then pack as before). */
int r1__wpack(r1_model *m);
/* The packed W^T of weight w (shape [N, K]) when r1__wpack holds it fresh, else NULL. */
const uint32_t *r1__wpacked(const r1_model *m, const float *w, int N, int K);
/* For AdamW, which updates the parameters and keeps the bf16 copy fresh as it goes: the
 * parameters, without marking the copy stale; *wt16 = the copy when it is fresh, else NULL
 * (then the next r1__wt16 converts it). */
float *r1__params_update(r1_model *m, uint16_t **wt16);

/* E4M3 copies (128x128 block scales) of the linear weights r1_fp8_is_stored names.
 * finite_only: refuse (R1_EINVAL naming the tensor) a NaN or infinite weight. */
typedef struct r1__fp8w r1__fp8w;
r1_status r1__fp8w_new(r1__fp8w **out, const r1_model *m, int finite_only, r1_error *err);
void r1__fp8w_free(r1__fp8w *q);
/* Bytes of codes and scales; *fp32_bytes (may be NULL) gets what the same matrices take in
 * fp32. */
size_t r1__fp8w_bytes(const r1__fp8w *q, size_t *fp32_bytes);
/* The codes and scales of parameter matrix w; 0 when w is not in q. */
int r1__fp8w_get(const r1__fp8w *q, const r1_model *m, const float *w, const uint8_t **codes,
                 const float **scale_inv);

/* The gradient that mirrors parameter pointer p. */
static inline float *r1__grad(r1_model *m, const float *p)
{
    return p ? m->grads + (p - m->params) : NULL;
}

#endif
