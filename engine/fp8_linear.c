/* fp8_linear.c — the precision of the model's linear layers: the one entry point of every
 * linear layer's GEMMs (r1__mm forward, r1__linear_bwd backward), the BF16 and FP8 training
 * they switch on (r1_model_set_precision, r1_model_set_fp8), and the block-quantised E4M3 copy
 * of the linear weights that decoding (r1_decoder_set_fp8) and FP8 checkpoints (r1_model_save
 * with R1_DT_F8_E4M3) use.
 *
 * Dispatch of r1__mm, first match wins:
 *   - a BF16 decoder is stepping (m->w16): r1__gemm16_packed on the weights packed once per
 *     change of the weights (r1__wpack), prompts and single tokens alike, so that a row's bits
 *     depend on nothing but its own input (and are a BF16 forward's); without the memory for
 *     that, r1__gemm16 packing the weight per call (the same bits);
 *   - an FP8 decoder is stepping (m->w8) and w is one of its matrices: r1_matmul_fp8;
 *   - r1_model_forward runs in BF16 (m->bf16_fwd): r1__gemm16 on the bf16 copy m->wt16
 *     (r1__wt16: converted when stale, else as AdamW left it), packing each weight per call
 *     (packed once, as the decoder does, measured no faster: a step's GEMM reads its weight
 *     right after packing it, from cache);
 *   - r1_model_forward runs with an FP8 mode: the codes and scales of both operands through
 *     r1__gemm16, or (m->fp8_emulate) quantise-dequantise both, then r1_matmul_fwd's fp32 product;
 *   - otherwise r1_matmul_fwd itself, so with FP8 off every product is the very call it was
 *     before this file existed (bit-identical results).
 * r1__linear_bwd does the same for the backward with the precision of the last forward.
 *
 * Memory: FP8 quantises into buffers malloc'd per call (a GEMM costs far more);
 * when one cannot be had the call falls back to the fp32 product and sets m->fp8_oom, which
 * r1_model_forward turns into R1_ENOMEM.  Calls run side by side for the experts (parallel.c),
 * hence the atomic store.  The weight copy (r1__fp8w) is owned by its creator. */
#include <config.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"
#include "r1_bf16.h"
#include "r1_fp8.h"
#include "parallel.h"
#include "r1_gemm16.h"
#include "r1_kernels.h"

#define BLK R1_FP8_BLOCK

/* ------------------------------------------------------------------ the switch */

void r1_model_set_fp8(r1_model *m, r1_fp8_mode mode)
{
    m->fp8 = mode == R1_FP8_TILES || mode == R1_FP8_TENSOR ? (int)mode : R1_FP8_OFF;
}

r1_fp8_mode r1_model_fp8(const r1_model *m)
{
    return (r1_fp8_mode)m->fp8;
}

void r1_model_set_fp8_emulation(r1_model *m, int on)
{
    m->fp8_emulate = on != 0;
}

void r1_model_set_precision(r1_model *m, r1_precision p)
{
    m->fp8 = p == R1_PREC_FP8 ? R1_FP8_TILES : p == R1_PREC_FP8_TENSOR ? R1_FP8_TENSOR : R1_FP8_OFF;
    m->bf16 = p == R1_PREC_BF16;
}

r1_precision r1_model_precision(const r1_model *m)
{
    return m->fp8 == R1_FP8_TENSOR ? R1_PREC_FP8_TENSOR
           : m->fp8                ? R1_PREC_FP8
           : m->bf16               ? R1_PREC_BF16
                                   : R1_PREC_FP32;
}

const char *r1_precision_name(r1_precision p)
{
    switch (p) {
    case R1_PREC_BF16: return "bf16";
    case R1_PREC_FP8: return "fp8";
    case R1_PREC_FP8_TENSOR: return "fp8-tensor";
    default: return "fp32";
    }
}

/* The whole parameter array, embedding and heads included (they are a small part, and one
 * pass over one array beats a walk over the linear layers), in pieces side by side. */
typedef struct {
    uint16_t *dst;
    const float *src;
    size_t n, step;
} conv_job;

static void conv_piece(void *ctx, int i, int tid)
{
    (void)tid;
    conv_job *j = ctx;
    size_t lo = (size_t)i * j->step, hi = lo + j->step < j->n ? lo + j->step : j->n;
    if (lo < hi)
        r1_bf16_from_f32(j->dst + lo, j->src + lo, hi - lo);
}

const uint16_t *r1__wt16(r1_model *m)
{
    size_t n = m->numel;
    if (m->wt16_ok)
        return m->wt16;
    if (!m->wt16 && !(m->wt16 = malloc(sizeof(uint16_t) * (n ? n : 1))))
        return NULL;
    int parts = n >= ((size_t)1 << 20) ? R1_MAX_WORKERS : 1;
    conv_job j = {m->wt16, m->params, n, (n + parts - 1) / parts};
    r1__parallel_for(parts, conv_piece, &j);
    m->wt16_ok = 1;
    m->wt16_gen++;
    return m->wt16;
}

float *r1__params_update(r1_model *m, uint16_t **wt16)
{
    *wt16 = m->wt16_ok ? m->wt16 : NULL;
    m->wt16_gen++; /* the caller writes the copy */
    return m->params;
}

/* ------------------------------------------------------------------ packed weights */

struct r1__wpk {
    size_t off; /* the weight's offset in m->params */
    int N, K;
    size_t at;  /* its packed words at m->wpk_mem + at */
};

/* Calls fn on every linear weight a decoding step multiplies by through r1__mm (the router
 * and heads stay fp32; kv_b is absorbed into the query and output on fp32 sgemm, decode.c). */
static void each_linear(r1_model *m, void (*fn)(r1_model *, const float *, int, int, void *),
                        void *ctx)
{
    const r1_config *c = &m->cfg;
    int C = c->hidden_size, H = c->num_attention_heads, qr = c->q_lora_rank;
    int kvr = c->kv_lora_rank, dr = c->qk_rope_head_dim;
    int dv = c->v_head_dim, I = c->intermediate_size, Ie = c->moe_intermediate_size;
    int E = c->n_routed_experts, dq = m->dq, Is = m->Is;
    for (int l = 0; l < m->Ltot; l++) {
        layer_w *w = &m->layers[l];
        const struct {
            const float *p;
            int N, K;
        } mats[] = {{w->eh_proj, C, 2 * C}, {w->q_a, qr, C},    {w->q_b, H * dq, qr},
                    {w->q_proj, H * dq, C}, {w->kv_a, kvr + dr, C}, {w->o_proj, C, H * dv},
                    {w->gate, I, C},        {w->up, I, C},         {w->down, C, I},
                    {w->sg, Is, C},         {w->su, Is, C},        {w->sd, C, Is}};
        for (size_t i = 0; i < sizeof mats / sizeof *mats; i++)
            if (mats[i].p && mats[i].N > 0 && mats[i].K > 0)
                fn(m, mats[i].p, mats[i].N, mats[i].K, ctx);
        for (int e = 0; w->moe && w->eg && e < E; e++) {
            fn(m, w->eg + (size_t)e * Ie * C, Ie, C, ctx);
            fn(m, w->eu + (size_t)e * Ie * C, Ie, C, ctx);
            fn(m, w->ed + (size_t)e * C * Ie, C, Ie, ctx);
        }
    }
}

static void count_linear(r1_model *m, const float *w, int N, int K, void *ctx)
{
    (void)m, (void)w;
    size_t *n = ctx;
    n[0]++;
    n[1] += r1__gemm16_packed_words(N, K);
}

static void list_linear(r1_model *m, const float *w, int N, int K, void *ctx)
{
    size_t *at = ctx;
    struct r1__wpk *e = &m->wpk[m->nwpk++];
    e->off = (size_t)(w - m->params), e->N = N, e->K = K, e->at = *at;
    *at += r1__gemm16_packed_words(N, K);
}

static void pack_linear(void *ctx, int i, int tid)
{
    (void)tid;
    r1_model *m = ctx;
    const struct r1__wpk *e = &m->wpk[i];
    r1__gemm16_pack_wt(m->wpk_mem + e->at, m->wt16 + e->off, e->N, e->K);
}

static int by_off(const void *a, const void *b)
{
    const struct r1__wpk *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

int r1__wpack(r1_model *m)
{
    int layout = r1__gemm16_layout();
    if (!r1__wt16(m))
        return 0;
    if (m->wpk && m->wpk_gen == m->wt16_gen && m->wpk_layout == layout)
        return 1;
    if (!m->wpk) {
        size_t n[2] = {0, 0};
        each_linear(m, count_linear, n);
        m->wpk = malloc(sizeof(struct r1__wpk) * (n[0] ? n[0] : 1));
        m->wpk_mem = malloc(sizeof(uint32_t) * (n[1] ? n[1] : 1));
        if (!m->wpk || !m->wpk_mem) {
            free(m->wpk), free(m->wpk_mem);
            m->wpk = NULL, m->wpk_mem = NULL;
            return 0;
        }
        m->wpk_words = n[1];
    }
    size_t at = 0;
    m->nwpk = 0;
    each_linear(m, list_linear, &at);
    r1__parallel_for_work((long)at, m->nwpk, pack_linear, m); /* the weights side by side */
    qsort(m->wpk, (size_t)m->nwpk, sizeof *m->wpk, by_off);
    m->wpk_gen = m->wt16_gen, m->wpk_layout = layout;
    return 1;
}

const uint32_t *r1__wpacked(const r1_model *m, const float *w, int N, int K)
{
    if (!m->wpk || m->wpk_gen != m->wt16_gen || !m->wt16_ok ||
        m->wpk_layout != r1__gemm16_layout())
        return NULL;
    size_t off = (size_t)(w - m->params);
    int lo = 0, hi = m->nwpk - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const struct r1__wpk *e = &m->wpk[mid];
        if (e->off == off)
            return e->N == N && e->K == K ? m->wpk_mem + e->at : NULL;
        if (e->off < off)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}

const char *r1_fp8_mode_name(r1_fp8_mode mode)
{
    switch (mode) {
    case R1_FP8_OFF: return "off";
    case R1_FP8_TILES: return "tiles";
    case R1_FP8_TENSOR: return "tensor";
    }
    return "?";
}

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), k = strlen(tail);
    return n >= k && strcmp(s + n - k, tail) == 0;
}

int r1_fp8_is_stored(const char *name)
{
    /* DeepSeek-V3's release: every nn.Linear of attention and of the MLPs / experts is
     * F8_E4M3 with a weight_scale_inv; the router (mlp.gate.weight, a plain parameter there),
     * eh_proj, the norms, the embedding and the head are BF16. */
    static const char *const fp8[] = {
        ".self_attn.q_a_proj.weight", ".self_attn.q_b_proj.weight", ".self_attn.q_proj.weight",
        ".self_attn.kv_a_proj_with_mqa.weight", ".self_attn.kv_b_proj.weight",
        ".self_attn.o_proj.weight", ".gate_proj.weight", ".up_proj.weight", ".down_proj.weight",
    };
    for (size_t i = 0; i < sizeof fp8 / sizeof fp8[0]; i++)
        if (ends_with(name, fp8[i]))
            return 1;
    return 0;
}

/* ------------------------------------------------------------------ emulation */

static void oom(r1_model *m)
{
    __atomic_store_n(&m->fp8_oom, 1, __ATOMIC_RELAXED);
}

/* dst = Q(src) for a GEMM operand x[N,K]: how = 'r' 1×128 tiles, 'c' 128×1 tiles, 'b' blocks;
 * per tensor whatever how says when mode is R1_FP8_TENSOR. */
static void quant(int mode, char how, float *dst, const float *src, int N, int K)
{
    if (mode == R1_FP8_TENSOR)
        r1_fp8_qdq_tensor(dst, src, (size_t)N * K);
    else if (how == 'r')
        r1_fp8_qdq_tiles(dst, src, N, K);
    else if (how == 'c')
        r1_fp8_qdq_coltiles(dst, src, N, K);
    else
        r1_fp8_qdq_blocks(dst, src, N, K);
}

static float *fbuf(size_t n)
{
    return malloc(sizeof(float) * (n ? n : 1));
}

/* ------------------------------------------------------------------ FP8 weight copy */

struct r1__fp8w {
    int n;          /* matrices */
    size_t *off;    /* [n] offset into the parameter block, ascending */
    int *rows;      /* [n] Co */
    int *cols;      /* [n] Ci */
    size_t *coff;   /* [n] first code */
    size_t *soff;   /* [n] first scale */
    uint8_t *codes; /* [ncodes] E4M3, each matrix [rows, cols] */
    float *scales;  /* [nscales] each matrix [ceil(rows/128), ceil(cols/128)] */
    size_t ncodes, nscales;
};

/* Index of the matrix at parameter offset off, or -1. */
static int fp8w_find(const r1__fp8w *q, size_t off)
{
    int lo = 0, hi = q->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (q->off[mid] == off)
            return mid;
        if (q->off[mid] < off)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

void r1__fp8w_free(r1__fp8w *q)
{
    if (!q)
        return;
    free(q->off);
    free(q->rows);
    free(q->cols);
    free(q->coff);
    free(q->soff);
    free(q->codes);
    free(q->scales);
    free(q);
}

r1_status r1__fp8w_new(r1__fp8w **out, const r1_model *m, int finite_only, r1_error *err)
{
    *out = NULL;
    r1__fp8w *q = calloc(1, sizeof *q);
    if (!q)
        return r1_error_set(err, R1_ENOMEM, "out of memory for the fp8 weights");
    for (int i = 0; i < m->nparams; i++) {
        const r1_param *p = &m->ptab[i];
        if (p->ndim != 2 || !r1_fp8_is_stored(p->name))
            continue;
        q->n++;
        q->ncodes += p->numel;
        q->nscales += (size_t)((p->shape[0] + BLK - 1) / BLK) * ((p->shape[1] + BLK - 1) / BLK);
    }
    size_t n = q->n ? (size_t)q->n : 1;
    q->off = malloc(sizeof(size_t) * n), q->coff = malloc(sizeof(size_t) * n);
    q->soff = malloc(sizeof(size_t) * n);
    q->rows = malloc(sizeof(int) * n), q->cols = malloc(sizeof(int) * n);
    q->codes = malloc(q->ncodes ? q->ncodes : 1);
    q->scales = malloc(sizeof(float) * (q->nscales ? q->nscales : 1));
    if (!q->off || !q->coff || !q->soff || !q->rows || !q->cols || !q->codes || !q->scales) {
        r1__fp8w_free(q);
        return r1_error_set(err, R1_ENOMEM, "out of memory for the fp8 weights");
    }
    size_t co = 0, so = 0;
    int j = 0;
    for (int i = 0; i < m->nparams; i++) {
        const r1_param *p = &m->ptab[i];
        if (p->ndim != 2 || !r1_fp8_is_stored(p->name))
            continue;
        const float *w = m->params + p->offset;
        if (finite_only)
            for (size_t k = 0; k < p->numel; k++)
                if (!isfinite(w[k])) {
                    r1__fp8w_free(q);
                    return r1_error_set(err, R1_EINVAL,
                                        "fp8 weights: %s holds a non-finite value at element "
                                        "%zu",
                                        p->name, k);
                }
        int R = (int)p->shape[0], C = (int)p->shape[1];
        q->off[j] = p->offset, q->rows[j] = R, q->cols[j] = C, q->coff[j] = co, q->soff[j] = so;
        r1_fp8_quantize_blocks(q->codes + co, q->scales + so, w, R, C);
        co += p->numel;
        so += (size_t)((R + BLK - 1) / BLK) * ((C + BLK - 1) / BLK);
        j++;
    }
    *out = q;
    return R1_OK;
}

size_t r1__fp8w_bytes(const r1__fp8w *q, size_t *fp32_bytes)
{
    if (fp32_bytes)
        *fp32_bytes = q ? q->ncodes * sizeof(float) : 0;
    return q ? q->ncodes + q->nscales * sizeof(float) : 0;
}

int r1__fp8w_get(const r1__fp8w *q, const r1_model *m, const float *w, const uint8_t **codes,
                 const float **scale_inv)
{
    int i = q ? fp8w_find(q, (size_t)(w - m->params)) : -1;
    if (i < 0)
        return 0;
    *codes = q->codes + q->coff[i];
    *scale_inv = q->scales + q->soff[i];
    return 1;
}

/* ------------------------------------------------------------------ FP8 through BF16 */

/* Every E4M3 value is exact in bf16 and the product of two is exact in fp32, so the GEMM on
 * the codes' values, with the scales applied to each block's fp32 sum (r1_gemm16.h), is the
 * FP8 GEMM DeepSeek-V3 describes, run on the BF16 units.  It differs from the emulation
 * below (dequantised operands through the fp32 product) by the order and rounding of fp32 sums
 * alone. */

/* The codes and scales of operand x[N,K]: how = 'r' 1×128 tiles, 'c' 128×1, 'b' 128×128;
 * with R1_FP8_TENSOR one scale whatever how says.  The scale of (n, k) is then sc[...] with
 * the strides set in *ns (per n), *ks (per 128 of k) and *nblk (n's per scale). */
static void quant16(int mode, char how, float *codes, float *sc, const float *x, int N, int K,
                    long *ns, long *ks, int *nblk)
{
    int nk = (K + BLK - 1) / BLK;
    *nblk = 1;
    if (mode == R1_FP8_TENSOR) {
        sc[0] = r1_fp8_q_tensor(codes, x, (size_t)N * K);
        *ns = *ks = 0;
    } else if (how == 'r') {
        r1_fp8_q_tiles(codes, sc, x, N, K);
        *ns = nk, *ks = 1;
    } else if (how == 'c') { /* tiles run down the columns: here "n" is the column */
        r1_fp8_q_coltiles(codes, sc, x, N, K);
        *ns = 1, *ks = K;
    } else {
        r1_fp8_q_blocks(codes, sc, x, N, K);
        *ns = nk, *ks = 1, *nblk = BLK;
    }
}

static size_t nscales(int N, int K)
{
    return ((size_t)N + BLK) * (((size_t)K + BLK - 1) / BLK) + (size_t)K + 1;
}

/* With 1x128 tiles (R1_FP8_TILES) the activations and gradients are quantised by r1__gemm16
 * itself as it packs them (r1_gscale's aq, bq: the same codes and scales, so the same bits);
 * only the weights' 128x128 blocks are quantised here.  With one scale a tensor
 * (R1_FP8_TENSOR) every operand is quantised here first. */
static void fp8_fwd16(r1_model *m, float *out, const float *in, const float *w, int N, int Ci,
                      int Co, int accumulate)
{
    int own = m->fp8_fwd != R1_FP8_TENSOR; /* r1__gemm16 quantises the activations */
    float *qx = own ? NULL : fbuf((size_t)N * Ci), *qw = fbuf((size_t)Co * Ci);
    float *sx = own ? NULL : fbuf(nscales(N, Ci)), *sw = fbuf(nscales(Co, Ci));
    if ((own || (qx && sx)) && qw && sw) {
        r1_gscale sc = {.aq = own};
        if (!own)
            quant16(m->fp8_fwd, 'r', qx, sx, in, N, Ci, &sc.am, &sc.ak, &sc.ablk);
        sc.a = sx;
        quant16(m->fp8_fwd, 'b', qw, sw, w, Co, Ci, &sc.bn, &sc.bk, &sc.bblk);
        sc.b = sw;
        r1_gop A = {own ? in : qx, Ci, 0, 0}, B = {qw, Ci, 1, 0};
        r1__gemm16(out, Co, N, Co, Ci, A, B, accumulate, &sc);
    } else {
        oom(m);
        r1_matmul_fwd(out, in, w, N, Ci, Co, accumulate);
    }
    free(qx), free(qw), free(sx), free(sw);
}

static void fp8_bwd16(r1_model *m, float *din, float *dw, const float *dout, const float *in,
                      const float *w, int N, int Ci, int Co)
{
    int mode = m->fp8_last, own = mode != R1_FP8_TENSOR;
    if (din) { /* din += Q(dout)·Q(W): dout's 1×128 tiles run along Co, the inner dimension;
                * W's blocks are (co, ci): per 128 of k = co and per 128 columns ci */
        float *qd = own ? NULL : fbuf((size_t)N * Co), *qw = fbuf((size_t)Co * Ci);
        float *sd = own ? NULL : fbuf(nscales(N, Co)), *sw = fbuf(nscales(Co, Ci));
        if ((own || (qd && sd)) && qw && sw) {
            r1_gscale sc = {.aq = own};
            if (!own)
                quant16(mode, 'r', qd, sd, dout, N, Co, &sc.am, &sc.ak, &sc.ablk);
            sc.a = sd;
            long rs, cs;
            int blk;
            quant16(mode, 'b', qw, sw, w, Co, Ci, &rs, &cs, &blk);
            sc.b = sw, sc.bk = rs, sc.bn = cs, sc.bblk = blk; /* rows of W are this K */
            r1_gop A = {own ? dout : qd, Co, 0, 0}, B = {qw, Ci, 0, 0};
            r1__gemm16(din, Ci, N, Ci, Co, A, B, 1, &sc);
        } else {
            oom(m);
            r1_matmul_bwd(din, NULL, dout, NULL, w, N, Ci, Co);
        }
        free(qd), free(qw), free(sd), free(sw);
    }
    if (dw) { /* dW += Q'(dout)^T·Q'(x): 128×1 tiles along the tokens, the inner dimension */
        float *qd = NULL, *qx = NULL, *sd = NULL, *sx = NULL;
        if (own) {
            r1_gscale sc = {.aq = 1, .bq = 1};
            r1_gop A = {dout, Co, 1, 0}, B = {in, Ci, 0, 0};
            r1__gemm16(dw, Ci, Co, Ci, N, A, B, 1, &sc);
        } else if ((qd = fbuf((size_t)N * Co)) && (qx = fbuf((size_t)N * Ci)) &&
                   (sd = fbuf(nscales(N, Co))) && (sx = fbuf(nscales(N, Ci)))) {
            r1_gscale sc = {0};
            quant16(mode, 'c', qd, sd, dout, N, Co, &sc.am, &sc.ak, &sc.ablk);
            sc.a = sd;
            quant16(mode, 'c', qx, sx, in, N, Ci, &sc.bn, &sc.bk, &sc.bblk);
            sc.b = sx;
            r1_gop A = {qd, Co, 1, 0}, B = {qx, Ci, 0, 0};
            r1__gemm16(dw, Ci, Co, Ci, N, A, B, 1, &sc);
        } else {
            oom(m);
            r1_matmul_bwd(NULL, dw, dout, in, NULL, N, Ci, Co);
        }
        free(qd), free(qx), free(sd), free(sx);
    }
}

/* ------------------------------------------------------------------ the GEMM entry points */

/* out = in · w16^T (+=) on r1__gemm16, w16 a bf16 copy of the weights [Co, Ci]. */
static void mm16(float *out, const float *in, const uint16_t *w16, int N, int Ci, int Co,
                 int accumulate)
{
    r1_gop A = {in, Ci, 0, 0}, B = {w16, Ci, 1, 1};
    r1__gemm16(out, Co, N, Co, Ci, A, B, accumulate, NULL);
}

void r1__mm(r1_model *m, float *out, const float *in, const float *w, int N, int Ci, int Co,
            int accumulate)
{
    const uint8_t *codes;
    const float *sc;
    if (m->w16) {
        const uint32_t *bp = m->w16 == m->wt16 ? r1__wpacked(m, w, Co, Ci) : NULL;
        if (bp) { /* the weights packed once: every step on the GEMM */
            r1_gop A = {in, Ci, 0, 0};
            r1__gemm16_packed(out, Co, N, Co, Ci, A, bp, accumulate);
        } else /* packing the weight for this call: the same bits, slower */
            mm16(out, in, m->w16 + (w - m->params), N, Ci, Co, accumulate);
        return;
    }
    if (m->w8 && r1__fp8w_get(m->w8, m, w, &codes, &sc)) {
        r1_matmul_fp8(out, in, codes, sc, N, Ci, Co, accumulate);
        return;
    }
    if (m->bf16_fwd) {
        mm16(out, in, m->wt16 + (w - m->params), N, Ci, Co, accumulate);
        return;
    }
    if (m->f32_rows) {
        r1__matmul_fwd_decode(out, in, w, N, Ci, Co, accumulate);
        return;
    }
    if (!m->fp8_fwd || N <= 0 || Co <= 0) {
        r1_matmul_fwd(out, in, w, N, Ci, Co, accumulate);
        return;
    }
    if (!m->fp8_emulate) {
        fp8_fwd16(m, out, in, w, N, Ci, Co, accumulate);
        return;
    }
    /* forward: Q(x) in 1×128 tiles, Q(W) in 128×128 blocks, fp32 accumulation */
    float *qx = fbuf((size_t)N * Ci), *qw = fbuf((size_t)Co * Ci);
    if (qx && qw) {
        quant(m->fp8_fwd, 'r', qx, in, N, Ci);
        quant(m->fp8_fwd, 'b', qw, w, Co, Ci);
        r1_matmul_fwd(out, qx, qw, N, Ci, Co, accumulate);
    } else {
        oom(m);
        r1_matmul_fwd(out, in, w, N, Ci, Co, accumulate);
    }
    free(qx);
    free(qw);
}

void r1__mm2(r1_model *m, float *out1, const float *w1, int Co1, float *out2, const float *w2,
             int Co2, const float *in, int N, int Ci)
{
    if (m->w16 && m->w16 == m->wt16) {
        const uint32_t *b1 = r1__wpacked(m, w1, Co1, Ci), *b2 = r1__wpacked(m, w2, Co2, Ci);
        if (b1 && b2) { /* perf: packing the activations was a sixth of a bf16 GRPO step */
            r1_gop A = {in, Ci, 0, 0};
            r1__gemm16_packed2(out1, Co1, Co1, b1, out2, Co2, Co2, b2, N, Ci, A);
            return;
        }
    }
    r1__mm(m, out1, in, w1, N, Ci, Co1, 0);
    r1__mm(m, out2, in, w2, N, Ci, Co2, 0);
}

void r1__linear_bwd(r1_model *m, float *din, float *dw, const float *dout, const float *in,
                    const float *w, int N, int Ci, int Co)
{
    int mode = m->fp8_last;
    if (N <= 0)
        return;
    if (m->bf16_last) {
        if (din) {
            r1_gop A = {dout, Co, 0, 0}, B = {m->wt16 + (w - m->params), Ci, 0, 1};
            r1__gemm16(din, Ci, N, Ci, Co, A, B, 1, NULL);
        }
        if (dw) {
            r1_gop A = {dout, Co, 1, 0}, B = {in, Ci, 0, 0};
            r1__gemm16(dw, Ci, Co, Ci, N, A, B, 1, NULL);
        }
        return;
    }
    if (!mode) {
        r1_matmul_bwd(din, dw, dout, in, w, N, Ci, Co);
        return;
    }
    if (!m->fp8_emulate) {
        fp8_bwd16(m, din, dw, dout, in, w, N, Ci, Co);
        return;
    }
    if (din) { /* Dgrad: din += Q(dout) · Q(W); dout's tiles run along Co, this GEMM's inner
                * dimension */
        float *qd = fbuf((size_t)N * Co), *qw = fbuf((size_t)Co * Ci);
        if (qd && qw) {
            quant(mode, 'r', qd, dout, N, Co);
            quant(mode, 'b', qw, w, Co, Ci);
            r1_matmul_bwd(din, NULL, qd, NULL, qw, N, Ci, Co);
        } else {
            oom(m);
            r1_matmul_bwd(din, NULL, dout, NULL, w, N, Ci, Co);
        }
        free(qd);
        free(qw);
    }
    if (dw) { /* Wgrad: dW += Q(dout)^T · Q(x), the inner dimension is the tokens: 128×1 */
        float *qd = fbuf((size_t)N * Co), *qx = fbuf((size_t)N * Ci);
        if (qd && qx) {
            quant(mode, 'c', qd, dout, N, Co);
            quant(mode, 'c', qx, in, N, Ci);
            r1_matmul_bwd(NULL, dw, qd, qx, NULL, N, Ci, Co);
        } else {
            oom(m);
            r1_matmul_bwd(NULL, dw, dout, in, NULL, N, Ci, Co);
        }
        free(qd);
        free(qx);
    }
}

void r1__linear_bwd2(r1_model *m, float *din, float *dw1, const float *dout1, const float *w1,
                     float *dw2, const float *dout2, const float *w2, const float *in, int N,
                     int Ci, int Co)
{
    if (!m->bf16_last || !dw1 || !dw2 || N <= 0) {
        r1__linear_bwd(m, din, dw1, dout1, in, w1, N, Ci, Co);
        r1__linear_bwd(m, din, dw2, dout2, in, w2, N, Ci, Co);
        return;
    }
    r1__linear_bwd(m, din, NULL, dout1, in, w1, N, Ci, Co); /* din: w1's term, then w2's */
    r1__linear_bwd(m, din, NULL, dout2, in, w2, N, Ci, Co);
    r1_gop A1 = {dout1, Co, 1, 0}, A2 = {dout2, Co, 1, 0}, B = {in, Ci, 0, 0};
    r1__gemm16_pair(dw1, Ci, A1, dw2, Ci, A2, Co, Ci, N, B, 1);
}
