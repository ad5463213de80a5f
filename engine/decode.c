/* decode.c — the MLA latent KV cache and one batched decoding step (r1_decoder, see
 * r1_generate.h).
 *
 * Per layer, row and position the cache holds the normalised c_kv [kvr] and the roped k_pe
 * [dr].  Attention never rebuilds keys or values: with W_UK_h, W_UV_h the key and value
 * blocks of kv_b_proj for head h,
 *     score_h(j) = (q_nope_h W_UK_h) · c_kv(j) + q_pe_h · k_pe(j)
 *     out_h      = W_UV_h (Σ_j p_h(j) c_kv(j))
 * which equals the full computation exactly in real arithmetic.  The workspace grows to the
 * largest step seen; everything is freed by r1_decoder_free. */
#include <config.h>

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"
#include "parallel.h"
#include "r1_generate.h"
#include "r1_gemm16.h"
#include "r1_kernels.h"

struct r1_decoder {
    r1_model *m;
    int rows, max_len;
    int *len, *mlen;      /* [rows] cached positions: main model, MTP module */
    float **ckv, **kpe;   /* [Ltot] -> [rows, max_len, kvr] and [rows, max_len, dr] */
    int cap;              /* tokens one step can hold */
    void **ws;            /* workspace allocations */
    int nws;
    float *x, *xn, *rstd, *qa, *qan, *q, *kva, *cn, *qlat, *olat, *ao, *hn, *f;
    float *g, *u, *a;     /* dense SwiGLU [cap, I] */
    float *hf, *cat, *en, *pn, *sc;
    float *scp;           /* attention scores for each of scp_nw pool threads, or NULL */
    int scp_nw;
    int *pos;             /* [cap] */
    layer_act moe;        /* MoE buffers for cap tokens */
    int32_t **route_e;    /* [Ltot] -> [cap, K] */
    float **route_w;
    int last_n;           /* tokens of the last main step */
    int bf16;             /* linear layers on the model's bf16 copy (r1_decoder_set_bf16) */
    const uint16_t *w16;  /* that copy, fetched (and refreshed when stale) by each step */
    r1__fp8w *w8;         /* E4M3 linear weights (r1_decoder_set_fp8), or NULL */
};

static void free_ws(r1_decoder *d)
{
    for (int i = 0; i < d->nws; i++)
        free(d->ws[i]);
    free(d->ws);
    d->ws = NULL;
    d->nws = 0;
    d->cap = 0;
}

static void *wtake(r1_decoder *d, size_t bytes, int *okp)
{
    void *p = calloc(1, bytes ? bytes : 1);
    void **nw = realloc(d->ws, sizeof(void *) * (d->nws + 1));
    if (!p || !nw) {
        free(p);
        if (nw)
            d->ws = nw;
        *okp = 0;
        return NULL;
    }
    d->ws = nw;
    d->ws[d->nws++] = p;
    return p;
}

/* A prompt's tokens attend ATT_CHUNK at a time, each chunk's scores one product of
 * [ATT_CHUNK·H, len] (layer_step). */
#define ATT_CHUNK 32

/* Makes the workspace hold N tokens.  Returns 0 when out of memory. */
static int ensure_cap(r1_decoder *d, int N)
{
    if (N <= d->cap)
        return 1;
    free_ws(d);
    r1_model *m = d->m;
    const r1_config *c = &m->cfg;
    int C = c->hidden_size, H = c->num_attention_heads, kvr = c->kv_lora_rank;
    int dr = c->qk_rope_head_dim, dv = c->v_head_dim, qr = c->q_lora_rank;
    int Id = c->intermediate_size;
    int ok = 1;
    size_t n = (size_t)N;
#define WF(cnt) ((float *)wtake(d, sizeof(float) * (size_t)(cnt), &ok))
#define WI(cnt) ((int32_t *)wtake(d, sizeof(int32_t) * (size_t)(cnt), &ok))
    d->x = WF(n * C), d->xn = WF(n * C), d->rstd = WF(n);
    d->qa = WF(n * (qr ? qr : 1)), d->qan = WF(n * (qr ? qr : 1));
    d->q = WF(n * H * m->dq), d->kva = WF(n * (kvr + dr)), d->cn = WF(n * kvr);
    d->qlat = WF(n * H * kvr), d->olat = WF(n * H * kvr), d->ao = WF(n * H * dv);
    d->hn = WF(n * C), d->f = WF(n * C);
    d->g = WF(n * Id), d->u = WF(n * Id), d->a = WF(n * Id);
    d->hf = WF(n * C), d->cat = WF(n * 2 * C), d->en = WF(n * C), d->pn = WF(n * C);
    /* attention scores without the pool's: a token's [H, len], a prompt chunk's [ATT_CHUNK·H,
     * len] (a prompt's bits then never depend on whether the pool's scores had the memory) */
    d->sc = WF((size_t)(n >= R1_PREFILL_ROWS ? ATT_CHUNK : 1) * H * d->max_len);
    d->pos = (int *)WI(n);
    if (c->n_routed_experts > 0) {
        int E = c->n_routed_experts, K = c->num_experts_per_tok, Ie = c->moe_intermediate_size;
        layer_act *a = &d->moe;
        memset(a, 0, sizeof *a);
        a->s = WF(n * E), a->sel = WI(n * K), a->wts = WF(n * K);
        a->cnt = WI(E), a->off = WI(E + 1), a->slot_tok = WI(n * K), a->slot_k = WI(n * K);
        a->xe = WF(n * K * C), a->eo = WF(n * K * C);
        a->eg = WF(n * K * Ie), a->eu = WF(n * K * Ie), a->ea = WF(n * K * Ie);
        if (m->Is)
            a->sgo = WF(n * m->Is), a->suo = WF(n * m->Is), a->sa = WF(n * m->Is);
        for (int l = 0; l < m->Ltot; l++)
            if (m->layers[l].moe) {
                d->route_e[l] = WI(n * K);
                d->route_w[l] = WF(n * K);
            }
    }
#undef WF
#undef WI
    if (!ok) {
        free_ws(d);
        return 0;
    }
    d->cap = N;
    return 1;
}

r1_status r1_decoder_new(r1_decoder **out, r1_model *m, int rows, int max_len, r1_error *err)
{
    *out = NULL;
    const r1_config *c = &m->cfg;
    if (rows < 1 || max_len < 1)
        return r1_error_set(err, R1_EINVAL, "decoder: %d rows of %d tokens; both must be >= 1",
                            rows, max_len);
    if (max_len > c->max_position_embeddings)
        return r1_error_set(err, R1_EINVAL,
                            "decoder: %d tokens per row exceed max_position_embeddings (%d)",
                            max_len, c->max_position_embeddings);
    r1_decoder *d = calloc(1, sizeof *d);
    if (!d)
        return r1_error_set(err, R1_ENOMEM, "out of memory");
    d->m = m;
    d->rows = rows;
    d->max_len = max_len;
    d->len = calloc(rows, sizeof(int));
    d->mlen = calloc(rows, sizeof(int));
    d->ckv = calloc(m->Ltot, sizeof(float *));
    d->kpe = calloc(m->Ltot, sizeof(float *));
    d->route_e = calloc(m->Ltot, sizeof(int32_t *));
    d->route_w = calloc(m->Ltot, sizeof(float *));
    int okall = d->len && d->mlen && d->ckv && d->kpe && d->route_e && d->route_w;
    size_t per = (size_t)rows * max_len;
    int Lc = m->Ltot > m->L ? m->L + 1 : m->L; /* the MTP module: depth 1 only */
    for (int l = 0; okall && l < Lc; l++) {
        d->ckv[l] = malloc(sizeof(float) * per * c->kv_lora_rank);
        d->kpe[l] = malloc(sizeof(float) * per * c->qk_rope_head_dim);
        okall = d->ckv[l] && d->kpe[l];
    }
    if (!okall || !ensure_cap(d, rows)) {
        r1_decoder_free(d);
        return r1_error_set(err, R1_ENOMEM, "decoder: out of memory for %d rows x %d tokens",
                            rows, max_len);
    }
    *out = d;
    return R1_OK;
}

/* The model's own bf16 copy (r1__wt16), which BF16 training keeps too: a GRPO step's sampler
 * and its training passes convert the weights once between them, not once each. */
r1_status r1_decoder_set_bf16(r1_decoder *d, int on, r1_error *err)
{
    d->bf16 = 0;
    d->w16 = NULL;
    if (!on)
        return R1_OK;
    r1__fp8w_free(d->w8);
    d->w8 = NULL;
    if (!(d->w16 = r1__wt16(d->m)))
        return r1_error_set(err, R1_ENOMEM, "out of memory for the bf16 weights");
    d->bf16 = 1;
    return R1_OK;
}

/* A step's weights: the bf16 copy of the model's weights as they are now. */
static r1_status step_weights(r1_decoder *d, r1_error *err)
{
    if (d->bf16 && !(d->w16 = r1__wt16(d->m)))
        return r1_error_set(err, R1_ENOMEM, "out of memory for the bf16 weights");
    if (d->bf16)
        r1__wpack(d->m); /* without the memory, each product packs its weight (same bits) */
    return R1_OK;
}

r1_status r1_decoder_set_fp8(r1_decoder *d, int on, r1_error *err)
{
    r1__fp8w_free(d->w8);
    d->w8 = NULL;
    if (!on)
        return R1_OK;
    d->bf16 = 0;
    d->w16 = NULL;
    return r1__fp8w_new(&d->w8, d->m, 1, err);
}

size_t r1_decoder_weight_bytes(const r1_decoder *d, size_t *fp32_bytes)
{
    if (d->w8)
        return r1__fp8w_bytes(d->w8, fp32_bytes);
    size_t n = d->bf16 ? r1_model_numel(d->m) : 0;
    if (fp32_bytes)
        *fp32_bytes = n * sizeof(float);
    /* bf16: the copy, and its panels packed for the GEMM once a step has packed them */
    return n * sizeof(uint16_t) + (n && d->m->wpk ? d->m->wpk_words * sizeof(uint32_t) : 0);
}

void r1_decoder_free(r1_decoder *d)
{
    if (!d)
        return;
    r1__fp8w_free(d->w8);
    free_ws(d);
    for (int l = 0; d->ckv && l < d->m->Ltot; l++) {
        free(d->ckv[l]);
        free(d->kpe[l]);
    }
    free(d->ckv);
    free(d->kpe);
    free(d->route_e);
    free(d->scp);
    free(d->route_w);
    free(d->len);
    free(d->mlen);
    free(d);
}

/* s[0, len) = softmax(s[0, len)) */
static void softmax_row(float *s, int len)
{
    float mx = s[0];
    for (int j = 1; j < len; j++)
        mx = s[j] > mx ? s[j] : mx;
    double sum = 0;
    for (int j = 0; j < len; j++) {
        s[j] = expf(s[j] - mx);
        sum += s[j];
    }
    float inv = (float)(1.0 / sum);
    for (int j = 0; j < len; j++)
        s[j] *= inv;
}

typedef struct {
    r1_decoder *d;
    int l;
    const int *rows;
    int n, per_row; /* tokens a row; chunks a row */
    size_t per;     /* floats of one thread's scores */
    float scale;
    float *one;     /* the scores of every token when threads have none of their own */
} att_job;

/* A decoding step's scores for token t0 (one query a head) as dot products along the cache
 * rows (r1__matmul_f32_rows): OpenBLAS copied the row's whole cache into its panels for these
 * 1-query products (sgemm_incopy, with its kernel ~7% of a tiny GRPO step's CPU time).
 * sc[h, t] = scale · (<qlat_h, ckv_t> + <qpe_h, kpe_t>).  0 when the heads' rope part does not
 * fit its buffer (the caller runs sgemm). */
static int scores_rows(const att_job *j, int t0, const float *Cr, const float *Kr, int len,
                       float *sc)
{
    r1_decoder *d = j->d;
    const r1_config *c = &d->m->cfg;
    int H = c->num_attention_heads, kvr = c->kv_lora_rank, dr = c->qk_rope_head_dim;
    int dn = c->qk_nope_head_dim, dq = d->m->dq;
    float qpe[1024];
    if (H * dr > 1024)
        return 0;
    r1__matmul_f32_rows(sc, len, d->qlat + (size_t)t0 * H * kvr, Cr, H, kvr, len, 0);
    for (int h = 0; h < H; h++)
        memcpy(qpe + h * dr, d->q + ((size_t)t0 * H + h) * dq + dn, sizeof(float) * dr);
    r1__matmul_f32_rows(sc, len, qpe, Kr, H, dr, len, 1);
    for (size_t i = 0; i < (size_t)H * len; i++)
        sc[i] *= j->scale;
    return 1;
}

/* Tokens [t0, t0 + tc) of row r (layer_step) attend to the cache up to the last one, the tc·H
 * query rows in one product of [tc·H, len], each row masked to its own length: S = scale (Qlat
 * C^T + Qpe K^T), softmax, then Olat = P C.  A single token (tc = 1) is its three [H, len]
 * products, masking nothing, the two of its scores on scores_rows and Olat on r1__pv_rows. */
static void attend(const att_job *j, int r, int t0, int tc, float *sc)
{
    r1_decoder *d = j->d;
    const r1_config *c = &d->m->cfg;
    int H = c->num_attention_heads, kvr = c->kv_lora_rank, dr = c->qk_rope_head_dim;
    int dn = c->qk_nope_head_dim, dq = d->m->dq;
    int len = d->pos[t0 + tc - 1] + 1;
    size_t row0 = (size_t)j->rows[r] * d->max_len;
    const float *Cr = d->ckv[j->l] + row0 * kvr, *Kr = d->kpe[j->l] + row0 * dr;
    if (!(tc == 1 && scores_rows(j, t0, Cr, Kr, len, sc))) {
        R1_BLAS(cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, tc * H, len, kvr, j->scale,
                            d->qlat + (size_t)t0 * H * kvr, kvr, Cr, kvr, 0, sc, len));
        R1_BLAS(cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, tc * H, len, dr, j->scale,
                            d->q + (size_t)t0 * H * dq + dn, dq, Kr, dr, 1, sc, len));
    }
    for (int k = 0; k < tc; k++)
        for (int h = 0; h < H; h++) {
            float *s = sc + ((size_t)k * H + h) * len;
            int own = d->pos[t0 + k] + 1;
            softmax_row(s, own);
            memset(s + own, 0, sizeof(float) * (size_t)(len - own));
        }
    if (tc == 1)
        r1__pv_rows(d->olat + (size_t)t0 * H * kvr, kvr, sc, len, Cr, kvr, H, len, kvr);
    else
        R1_BLAS(cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, tc * H, kvr, len, 1, sc,
                            len, Cr, kvr, 0, d->olat + (size_t)t0 * H * kvr, kvr));
}

/* The scores of pool thread tid, or the one buffer when threads have none of their own. */
static float *scores(const att_job *j, int tid)
{
    return j->one ? j->one : j->d->scp + (size_t)tid * j->per;
}

/* Token t's attention (a decoding step). */
static void att_token(void *ctx, int t, int tid)
{
    const att_job *j = ctx;
    attend(j, t / j->n, t, 1, scores(j, tid));
}

/* Chunk i of a prompt's attention: up to ATT_CHUNK tokens of one row. */
static void att_chunk(void *ctx, int i, int tid)
{
    const att_job *j = ctx;
    int n = j->n, r = i / j->per_row, t0 = r * n + i % j->per_row * ATT_CHUNK;
    attend(j, r, t0, (r + 1) * n - t0 < ATT_CHUNK ? (r + 1) * n - t0 : ATT_CHUNK, scores(j, tid));
}

/* The decoder's products for a step of n tokens a row, from here to products_off: the
 * matrices read their bf16 / fp8 copies; in fp32, a prompt (n tokens a row, not a few drafted
 * or sampled ones) goes through the training GEMM, many times faster on many rows, and
 * anything else through the row kernels.  By n, not by R·n: a token's bits then depend on
 * whether it came in a prompt, never on how many rows decode beside it.  (BF16 runs every
 * product on the GEMM, whose bits depend on neither.) */
static void products_on(r1_decoder *d, int n)
{
    r1_model *m = d->m;
    m->w16 = d->w16;
    m->w8 = d->w8;
    m->f32_rows = !d->w16 && !d->w8 && n < R1_PREFILL_ROWS;
    m->decoding = 1;
}

static void products_off(r1_model *m)
{
    m->w16 = NULL;
    m->w8 = NULL;
    m->f32_rows = 0;
    m->decoding = 0;
}

/* One decoder layer over N = R·n new tokens, in place on d->x.  base[r] is row rows[r]'s
 * cache length before these tokens; the new entries are written at base[r] + i. */
static void layer_step(r1_decoder *d, int l, const int *rows, int R, int n, const int *base)
{
    r1_model *m = d->m;
    products_on(d, n);
    const r1_config *c = &m->cfg;
    const layer_w *w = &m->layers[l];
    int N = R * n, C = c->hidden_size, H = c->num_attention_heads, dq = m->dq;
    int dn = c->qk_nope_head_dim, dr = c->qk_rope_head_dim, dv = c->v_head_dim;
    int kvr = c->kv_lora_rank, qr = c->q_lora_rank;
    float eps = c->rms_norm_eps;

    r1_rmsnorm_fwd(d->xn, d->rstd, d->x, w->attn_norm, N, C, eps);
    if (qr) { /* q_a and kv_a read the same input: one product of it (r1__mm2) */
        r1__mm2(m, d->qa, w->q_a, qr, d->kva, w->kv_a, kvr + dr, d->xn, N, C);
        r1_rmsnorm_fwd(d->qan, d->rstd, d->qa, w->q_a_norm, N, qr, eps);
        r1__mm(m, d->q, d->qan, w->q_b, N, qr, H * dq, 0);
    } else {
        r1__mm(m, d->q, d->xn, w->q_proj, N, C, H * dq, 0);
        r1__mm(m, d->kva, d->xn, w->kv_a, N, C, kvr + dr, 0);
    }
    for (int t = 0; t < N; t++)
        d->pos[t] = base[t / n] + t % n;
    r1_rope(d->q + dn, N, H, H * dq, dq, dr, d->pos, m->rope_cos, m->rope_sin, 0);
    r1_rope(d->kva + kvr, N, 1, kvr + dr, 0, dr, d->pos, m->rope_cos, m->rope_sin, 0);
    /* the cache: normalised c_kv and the roped k_pe */
    for (int t = 0; t < N; t++)
        memcpy(d->cn + (size_t)t * kvr, d->kva + (size_t)t * (kvr + dr), sizeof(float) * kvr);
    r1_rmsnorm_fwd(d->cn, d->rstd, d->cn, w->kv_a_norm, N, kvr, eps);
    for (int t = 0; t < N; t++) {
        size_t at = (size_t)rows[t / n] * d->max_len + d->pos[t];
        memcpy(d->ckv[l] + at * kvr, d->cn + (size_t)t * kvr, sizeof(float) * kvr);
        memcpy(d->kpe[l] + at * dr, d->kva + (size_t)t * (kvr + dr) + kvr, sizeof(float) * dr);
    }
    /* absorb W_UK into the query: qlat_h = q_nope_h · W_UK_h  ([N, dn] x [dn, kvr]).  Both
     * absorbing products run on r1lab's row kernels (every path has them), each output one
     * FMA chain, so that a row's bits never depend on the rows beside it: OpenBLAS's own
     * kernels for AVX-512 CPUs (SkylakeX, Cooperlake) take a small-matrix kernel for some
     * sizes, which sums in another order (a prompt beside another had other logits, t_decode) */
    for (int h = 0; h < H; h++)
        r1__pv_rows(d->qlat + h * kvr, H * kvr, d->q + h * dq, H * dq,
                    w->kv_b + (size_t)h * (dn + dv) * kvr, kvr, N, dn, kvr);
    float scale = 1.0f / sqrtf((float)dq); /* DESIGN: (nope + rope)^-0.5 */
    /* The queries attend side by side on the pool, each thread with its own scores (allocated
     * on first use; without the memory, one after the other in d->sc, the same bits).  A
     * prompt: ATT_CHUNK tokens of a row at a time, their H query rows each against the cache up
     * to the chunk's last token, each row masked to its own length: three products a chunk
     * instead of three a token (the per-token products were most of a prefill).  Else token by
     * token. */
    int nw = r1__nworkers(), prompt = n >= R1_PREFILL_ROWS;
    size_t per = (size_t)ATT_CHUNK * H * d->max_len;
    if (d->scp_nw < nw) {
        float *p = realloc(d->scp, sizeof(float) * per * (size_t)nw);
        if (p)
            d->scp = p, d->scp_nw = nw;
    }
    att_job j = {d, l, rows, n, (n + ATT_CHUNK - 1) / ATT_CHUNK, per, scale, d->sc};
    long work = 0;
    for (int r = 0; r < R; r++)
        work += (long)n * (d->pos[r * n + n - 1] + 1) * H * (2 * kvr + dr);
    if (d->scp_nw >= nw) {
        j.one = NULL;
        r1__parallel_for_work(work, prompt ? R * j.per_row : N, prompt ? att_chunk : att_token,
                              &j);
    } else {
        for (int i = 0; i < (prompt ? R * j.per_row : N); i++)
            (prompt ? att_chunk : att_token)(&j, i, 0);
    }
    /* absorb W_UV into the output: out_h = olat_h · W_UV_h^T  ([N, kvr] x [kvr, dv]) */
    for (int h = 0; h < H; h++)
        r1__matmul_f32_rows_ld(d->ao + h * dv, H * dv, d->olat + h * kvr, H * kvr,
                               w->kv_b + ((size_t)h * (dn + dv) + dn) * kvr, N, kvr, dv, 0);
    r1__mm(m, d->x, d->ao, w->o_proj, N, H * dv, C, 1);

    r1_rmsnorm_fwd(d->hn, d->rstd, d->x, w->ffn_norm, N, C, eps);
    if (w->moe) {
        layer_act *a = &d->moe;
        a->N = N, a->B = 1, a->T = N;
        a->hn = d->hn;
        m->no_load_count = 1;
        r1__moe_forward(m, l, a, d->f);
        m->no_load_count = 0;
        int K = c->num_experts_per_tok;
        memcpy(d->route_e[l], a->sel, sizeof(int32_t) * N * K);
        memcpy(d->route_w[l], a->wts, sizeof(float) * N * K);
    } else {
        int Id = c->intermediate_size; /* not I: <complex.h> (through cblas.h) owns that name */
        r1__mm2(m, d->g, w->gate, Id, d->u, w->up, Id, d->hn, N, C);
        r1_swiglu_fwd(d->a, d->g, d->u, N * Id);
        r1__mm(m, d->f, d->a, w->down, N, Id, C, 0);
    }
    for (size_t i = 0; i < (size_t)N * C; i++)
        d->x[i] += d->f[i];
    products_off(m);
}

/* Checks rows[R] (distinct, in range) and room for n more tokens in cache `len`. */
static r1_status check_rows(const r1_decoder *d, const int *rows, int R, int n, const int *len,
                            r1_error *err)
{
    if (R < 1 || n < 1)
        return r1_error_set(err, R1_EINVAL, "decoder: %d rows x %d tokens; both must be >= 1",
                            R, n);
    for (int r = 0; r < R; r++) {
        if (rows[r] < 0 || rows[r] >= d->rows)
            return r1_error_set(err, R1_EINVAL, "decoder: row %d outside 0..%d", rows[r],
                                d->rows - 1);
        for (int s = 0; s < r; s++)
            if (rows[s] == rows[r])
                return r1_error_set(err, R1_EINVAL, "decoder: row %d given twice", rows[r]);
        if (len[rows[r]] + n > d->max_len)
            return r1_error_set(err, R1_EINVAL,
                                "decoder: row %d would reach %d tokens; the decoder holds %d "
                                "(max_position_embeddings %d)",
                                rows[r], len[rows[r]] + n, d->max_len,
                                d->m->cfg.max_position_embeddings);
    }
    return R1_OK;
}

static r1_status check_tokens(const r1_decoder *d, const int32_t *tok, int N, r1_error *err)
{
    int V = d->m->cfg.vocab_size;
    for (int t = 0; t < N; t++)
        if (tok[t] < 0 || tok[t] >= V)
            return r1_error_set(err, R1_EINVAL, "decoder: token %d is %d; expected 0..%d", t,
                                (int)tok[t], V - 1);
    return R1_OK;
}

r1_status r1_decoder_step(r1_decoder *d, const int *rows, int R, const int32_t *tok, int n,
                          float *logits, r1_error *err)
{
    r1_model *m = d->m;
    const r1_config *c = &m->cfg;
    r1_status s = check_rows(d, rows, R, n, d->len, err);
    if (s == R1_OK)
        s = check_tokens(d, tok, R * n, err);
    if (s == R1_OK)
        s = step_weights(d, err);
    if (s != R1_OK)
        return s;
    int N = R * n, C = c->hidden_size;
    if (!ensure_cap(d, N))
        return r1_error_set(err, R1_ENOMEM, "decoder: out of memory for a %d-token step", N);
    for (int t = 0; t < N; t++)
        memcpy(d->x + (size_t)t * C, m->embed + (size_t)tok[t] * C, sizeof(float) * C);
    int base[R];
    for (int r = 0; r < R; r++)
        base[r] = d->len[rows[r]];
    for (int l = 0; l < m->L; l++)
        layer_step(d, l, rows, R, n, base);
    r1_rmsnorm_fwd(d->hf, d->rstd, d->x, m->final_norm, N, C, c->rms_norm_eps);
    if (logits)
        (n < R1_PREFILL_ROWS ? r1__matmul_fwd_decode : r1_matmul_fwd)(logits, d->hf, m->head, N, C,
                                                                     c->vocab_size, 0);
    for (int r = 0; r < R; r++)
        d->len[rows[r]] += n;
    d->last_n = N;
    return r1__blas_status(err);
}

r1_status r1_decoder_mtp_step(r1_decoder *d, const int *rows, int R, const float *h,
                              const int32_t *tok, int n, float *logits, r1_error *err)
{
    r1_model *m = d->m;
    const r1_config *c = &m->cfg;
    if (m->D < 1)
        return r1_error_set(err, R1_EUNSUPPORTED,
                            "this checkpoint has no MTP module (num_nextn_predict_layers is 0)");
    r1_status s = check_rows(d, rows, R, n, d->mlen, err);
    if (s == R1_OK)
        s = check_tokens(d, tok, R * n, err);
    if (s == R1_OK)
        s = step_weights(d, err);
    if (s != R1_OK)
        return s;
    int N = R * n, C = c->hidden_size, l = m->L;
    if (!ensure_cap(d, N))
        return r1_error_set(err, R1_ENOMEM, "decoder: out of memory for a %d-token step", N);
    const layer_w *w = &m->layers[l];
    float eps = c->rms_norm_eps;
    /* the MTP layer overwrites the routing buffers of its own layer index only */
    for (int t = 0; t < N; t++)
        memcpy(d->x + (size_t)t * C, m->embed + (size_t)tok[t] * C, sizeof(float) * C);
    r1_rmsnorm_fwd(d->en, d->rstd, d->x, w->enorm, N, C, eps);
    r1_rmsnorm_fwd(d->pn, d->rstd, h, w->hnorm, N, C, eps);
    for (int t = 0; t < N; t++) { /* DESIGN: [enorm(embedding) | hnorm(hidden)] */
        memcpy(d->cat + (size_t)t * 2 * C, d->en + (size_t)t * C, sizeof(float) * C);
        memcpy(d->cat + (size_t)t * 2 * C + C, d->pn + (size_t)t * C, sizeof(float) * C);
    }
    /* as the layers' products: eh_proj had run on fp32 sgemm in every decoder (BF16's too),
     * OpenBLAS copying all of it for a token or two, and its rows' bits depending on the
     * rows beside them (t_decode) */
    products_on(d, n);
    r1__mm(m, d->x, d->cat, w->eh_proj, N, 2 * C, C, 0);
    products_off(m);
    int base[R];
    memset(base, 0, sizeof base); /* (R >= 1 here; keeps -Wmaybe-uninitialized quiet) */
    for (int r = 0; r < R; r++)
        base[r] = d->mlen[rows[r]];
    layer_step(d, l, rows, R, n, base);
    r1_rmsnorm_fwd(d->en, d->rstd, d->x, w->head_norm, N, C, eps);
    if (logits)
        (n < R1_PREFILL_ROWS ? r1__matmul_fwd_decode : r1_matmul_fwd)(logits, d->en, m->head, N, C,
                                                                     c->vocab_size, 0);
    for (int r = 0; r < R; r++)
        d->mlen[rows[r]] += n;
    return r1__blas_status(err);
}

const float *r1_decoder_hidden(const r1_decoder *d) { return d->hf; }

int r1_decoder_routing(const r1_decoder *d, int l, int i, const int32_t **experts,
                       const float **weights)
{
    const r1_model *m = d->m;
    if (l < 0 || l >= m->Ltot || !m->layers[l].moe || !d->route_e[l] || i < 0 || i >= d->cap)
        return -1;
    int K = m->cfg.num_experts_per_tok;
    if (experts)
        *experts = d->route_e[l] + (size_t)i * K;
    if (weights)
        *weights = d->route_w[l] + (size_t)i * K;
    return K;
}

int r1_decoder_len(const r1_decoder *d, int row) { return d->len[row]; }
int r1_decoder_mtp_len(const r1_decoder *d, int row) { return d->mlen[row]; }

void r1_decoder_truncate(r1_decoder *d, int row, int len, int mtp_len)
{
    if (len >= 0 && len < d->len[row])
        d->len[row] = len;
    if (mtp_len >= 0 && mtp_len < d->mlen[row])
        d->mlen[row] = mtp_len;
}

void r1_decoder_copy_row(r1_decoder *d, int dst, int src)
{
    const r1_config *c = &d->m->cfg;
    int Lc = d->m->Ltot > d->m->L ? d->m->L + 1 : d->m->L;
    size_t n = (size_t)(d->len[src] > d->mlen[src] ? d->len[src] : d->mlen[src]);
    for (int l = 0; l < Lc; l++) {
        size_t kv = c->kv_lora_rank, dr = c->qk_rope_head_dim;
        memcpy(d->ckv[l] + (size_t)dst * d->max_len * kv, d->ckv[l] + (size_t)src * d->max_len * kv,
               sizeof(float) * n * kv);
        memcpy(d->kpe[l] + (size_t)dst * d->max_len * dr, d->kpe[l] + (size_t)src * d->max_len * dr,
               sizeof(float) * n * dr);
    }
    d->len[dst] = d->len[src];
    d->mlen[dst] = d->mlen[src];
}

size_t r1_cache_bytes_per_token(const r1_config *c)
{
    return sizeof(float) * (size_t)c->num_hidden_layers * (c->kv_lora_rank + c->qk_rope_head_dim);
}

size_t r1_mha_cache_bytes_per_token(const r1_config *c)
{
    size_t H = c->num_attention_heads;
    return sizeof(float) * (size_t)c->num_hidden_layers *
           (H * (c->qk_nope_head_dim + c->qk_rope_head_dim) + H * c->v_head_dim);
}
