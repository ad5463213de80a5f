/* forward.c — the model's forward and backward passes (r1_model_forward / _backward) and the
 * activation buffers they share.  Each decoder layer has a layer_forward / layer_backward pair
 * that follows the maths step by step; the MoE feed-forward lives in moe.c.
 *
 * Buffers: sized for B·T tokens at the first forward of that size and reused; freed on resize
 * and by r1_model_free.  The only failures are bad tokens (R1_EINVAL) and R1_ENOMEM. */
#include <config.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "model_internal.h"
#include "parallel.h"
#include "r1_gemm16.h"
#include "r1_kernels.h"

/* ------------------------------------------------------------------ buffers */

/* The large buffers come from chunks of at least 32 MB mapped for them, whose pages the
 * kernel may back with 2 MB huge pages (madvise; this machine's transparent huge pages are
 * "madvise"): a GRPO step's activations, several hundred MB, otherwise take a page fault per
 * 4 KB on first use (127k faults for a tiny training run against 35k) and a TLB entry per 4 KB
 * while the step streams through them.  Fresh mappings are zero, as calloc's are. */
struct r1__arena {
    r1__arena *next;
    size_t cap, used; /* bytes of the mapping, and handed out (the header included) */
};

#define ARENA_MIN ((size_t)64 << 10) /* smaller buffers: calloc */
#define ARENA_CHUNK ((size_t)32 << 20)
#define HUGE_PAGE ((size_t)2 << 20)

static void *arena_take(r1_model *m, size_t bytes)
{
    bytes = (bytes + 63) & ~(size_t)63;
    r1__arena *a = m->arena;
    if (!a || a->cap - a->used < bytes) {
        size_t cap = bytes + 64 > ARENA_CHUNK ? bytes + 64 : ARENA_CHUNK;
        cap = (cap + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
        void *p = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return NULL;
#ifdef MADV_HUGEPAGE
        madvise(p, cap, MADV_HUGEPAGE); /* a hint: without huge pages, 4 KB ones */
#endif
        a = p;
        a->next = m->arena, a->cap = cap, a->used = 64;
        m->arena = a;
    }
    void *p = (char *)a + a->used;
    a->used += bytes;
    return p;
}

static void *take(r1_model *m, size_t bytes)
{
#ifndef __SANITIZE_ADDRESS__ /* under ASan every buffer is calloc'd, with its red zones */
    if (bytes >= ARENA_MIN)
        return arena_take(m, bytes);
#endif
    if (m->nallocs == m->capallocs) {
        int cap = m->capallocs ? m->capallocs * 2 : 256;
        void **p = realloc(m->allocs, sizeof(void *) * cap);
        if (!p)
            return NULL;
        m->allocs = p;
        m->capallocs = cap;
    }
    void *p = calloc(1, bytes ? bytes : 1);
    if (p)
        m->allocs[m->nallocs++] = p;
    return p;
}

#define TAKEF(n) ((float *)take(m, sizeof(float) * (size_t)(n)))
#define TAKEI(n) ((int32_t *)take(m, sizeof(int32_t) * (size_t)(n)))

void r1__free_acts(r1_model *m)
{
    for (int i = 0; i < m->nallocs; i++)
        free(m->allocs[i]);
    free(m->allocs);
    while (m->arena) {
        r1__arena *next = m->arena->next;
        munmap(m->arena, m->arena->cap);
        m->arena = next;
    }
    m->allocs = NULL;
    m->nallocs = m->capallocs = 0;
    free(m->acts);
    free(m->macts);
    free(m->resid);
    m->acts = NULL;
    m->macts = NULL;
    m->resid = NULL;
    m->cap_B = m->cap_T = 0;
    m->have_fwd = 0;
}

/* A layer's buffers, sized for more, used for B sequences of T tokens. */
static void layer_shape(layer_act *a, int B, int T)
{
    a->B = B, a->T = T, a->N = B * T;
    for (int n = 0; n < a->N; n++)
        a->pos[n] = n % T;
}

/* Buffers of one decoder layer for B sequences of T tokens. Returns 0 when out of memory. */
static int alloc_layer(r1_model *m, int l, layer_act *a, int B, int T)
{
    const r1_config *c = &m->cfg;
    int N = B * T, C = c->hidden_size, H = c->num_attention_heads;
    int dn = c->qk_nope_head_dim, dr = c->qk_rope_head_dim, dv = c->v_head_dim;
    int kvr = c->kv_lora_rank, qr = c->q_lora_rank;
    a->pos = (int *)TAKEI(N);
    if (!a->pos)
        return 0;
    layer_shape(a, B, T);
    a->x = TAKEF((size_t)N * C), a->xn = TAKEF((size_t)N * C), a->rstd1 = TAKEF(N);
    if (qr) {
        a->qa = TAKEF((size_t)N * qr), a->qan = TAKEF((size_t)N * qr);
        a->qa_rstd = TAKEF(N);
        if (!a->qa || !a->qan || !a->qa_rstd)
            return 0;
    }
    a->q = TAKEF((size_t)N * H * m->dq);
    a->kva = TAKEF((size_t)N * (kvr + dr));
    a->ckv = TAKEF((size_t)N * kvr), a->kvn = TAKEF((size_t)N * kvr), a->kv_rstd = TAKEF(N);
    a->kv = TAKEF((size_t)N * H * (dn + dv));
    a->k = TAKEF((size_t)N * H * m->dq);
    a->v = TAKEF((size_t)N * H * dv);
    a->P = TAKEF((size_t)B * H * T * T);
    a->ao = TAKEF((size_t)N * H * dv);
    a->h = TAKEF((size_t)N * C), a->hn = TAKEF((size_t)N * C), a->rstd2 = TAKEF(N);
    if (!a->x || !a->xn || !a->rstd1 || !a->q || !a->kva || !a->ckv || !a->kvn || !a->kv_rstd ||
        !a->kv || !a->k || !a->v || !a->P || !a->ao || !a->h || !a->hn || !a->rstd2)
        return 0;
    if (!m->layers[l].moe) {
        int I = c->intermediate_size;
        a->g = TAKEF((size_t)N * I), a->u = TAKEF((size_t)N * I), a->a = TAKEF((size_t)N * I);
        return a->g && a->u && a->a;
    }
    int E = c->n_routed_experts, K = c->num_experts_per_tok, Ie = c->moe_intermediate_size;
    size_t NK = (size_t)N * K;
    a->s = TAKEF((size_t)N * E);
    a->sel = TAKEI(NK), a->wts = TAKEF(NK);
    a->cnt = TAKEI(E), a->off = TAKEI(E + 1);
    a->slot_tok = TAKEI(NK), a->slot_k = TAKEI(NK);
    a->xe = TAKEF(NK * C), a->eo = TAKEF(NK * C);
    a->eg = TAKEF(NK * Ie), a->eu = TAKEF(NK * Ie), a->ea = TAKEF(NK * Ie);
    if (m->Is) {
        a->sgo = TAKEF((size_t)N * m->Is), a->suo = TAKEF((size_t)N * m->Is);
        a->sa = TAKEF((size_t)N * m->Is);
        if (!a->sgo || !a->suo || !a->sa)
            return 0;
    }
    return a->s && a->sel && a->wts && a->cnt && a->off && a->slot_tok && a->slot_k && a->xe &&
           a->eo && a->eg && a->eu && a->ea;
}

/* The MTP depths' sequences: T - k tokens (at least 1, unused then: keeps the sizes positive) */
static int mtp_len(int T, int k) { return T - k < 1 ? 1 : T - k; }

/* Memory of the buffers for B x T, roughly: per token, and the attention's T x T per sequence. */
static double acts_cost(int B, int T) { return (double)B * T * (T + 256.0); }

static int alloc_acts(r1_model *m, int B, int T);

/* Buffers for a forward of B sequences of T tokens.  Buffers sized for at least B sequences
 * of at least T tokens are used as they are (GRPO's and rejection sampling's batches change
 * length from one forward to the next: reallocating each time cost a tenth of a GRPO step in
 * fresh, zeroed pages); else they are reallocated, for the larger of both shapes when that
 * costs at most twice the larger of the two alone, else for B x T.  have_fwd drops: the
 * buffers now belong to this forward. */
int r1__alloc_acts(r1_model *m, int B, int T)
{
    m->have_fwd = 0;
    if (!m->acts || B > m->cap_B || T > m->cap_T) {
        int cb = m->acts && m->cap_B > B ? m->cap_B : B;
        int ct = m->acts && m->cap_T > T ? m->cap_T : T;
        double big = acts_cost(B, T), have = m->acts ? acts_cost(m->cap_B, m->cap_T) : 0;
        if (acts_cost(cb, ct) > 2 * (big > have ? big : have))
            cb = B, ct = T;
        if (!alloc_acts(m, cb, ct))
            return 0;
    }
    for (int l = 0; l < m->L; l++)
        layer_shape(&m->acts[l], B, T);
    for (int k = 1; k <= m->D; k++) {
        mtp_act *ma = &m->macts[k - 1];
        ma->B = B, ma->T = mtp_len(T, k), ma->N = B * ma->T;
        layer_shape(&m->acts[m->L + k - 1], B, ma->T);
    }
    return 1;
}

static int alloc_acts(r1_model *m, int B, int T)
{
    r1__free_acts(m);
    const r1_config *c = &m->cfg;
    int N = B * T, C = c->hidden_size, H = c->num_attention_heads, V = c->vocab_size;
    int dn = c->qk_nope_head_dim, dr = c->qk_rope_head_dim, dv = c->v_head_dim;
    int kvr = c->kv_lora_rank, qr = c->q_lora_rank;
    m->acts = calloc(m->Ltot, sizeof(layer_act));
    m->macts = calloc(m->D ? m->D : 1, sizeof(mtp_act));
    m->resid = calloc(m->L + 1, sizeof(float *));
    if (!m->acts || !m->macts || !m->resid)
        goto oom;
    m->tokens = TAKEI(N), m->targets = TAKEI(N), m->tw = TAKEF(N);
    m->pos = (int *)TAKEI(N);
    m->x_final = TAKEF((size_t)N * C), m->hf = TAKEF((size_t)N * C), m->hf_rstd = TAKEF(N);
    m->logits = TAKEF((size_t)N * V), m->dlogits = TAKEF((size_t)N * V);
    if (!m->tokens || !m->targets || !m->tw || !m->pos || !m->x_final || !m->hf ||
        !m->hf_rstd || !m->logits || !m->dlogits)
        goto oom;
    for (int l = 0; l < m->L; l++)
        if (!alloc_layer(m, l, &m->acts[l], B, T))
            goto oom;
    for (int k = 1; k <= m->D; k++) {
        int Tk = mtp_len(T, k), Nk = B * Tk;
        mtp_act *ma = &m->macts[k - 1];
        ma->B = B, ma->T = Tk, ma->N = Nk;
        ma->tok = TAKEI(Nk);
        ma->emb = TAKEF((size_t)Nk * C), ma->en = TAKEF((size_t)Nk * C), ma->en_rstd = TAKEF(Nk);
        ma->prev = TAKEF((size_t)Nk * C), ma->pn = TAKEF((size_t)Nk * C), ma->pn_rstd = TAKEF(Nk);
        ma->cat = TAKEF((size_t)Nk * 2 * C), ma->x1 = TAKEF((size_t)Nk * C);
        ma->hk = TAKEF((size_t)Nk * C), ma->hk_rstd = TAKEF(Nk);
        ma->logits = TAKEF((size_t)Nk * V), ma->dlogits = TAKEF((size_t)Nk * V);
        if (!ma->tok || !ma->emb || !ma->en || !ma->en_rstd || !ma->prev || !ma->pn ||
            !ma->pn_rstd || !ma->cat || !ma->x1 || !ma->hk || !ma->hk_rstd || !ma->logits ||
            !ma->dlogits)
            goto oom;
        if (!alloc_layer(m, m->L + k - 1, &m->acts[m->L + k - 1], B, Tk))
            goto oom;
    }
    /* backward workspace */
    grad_scratch *g = &m->gs;
    size_t NC = (size_t)N * C;
    g->dh = TAKEF(NC), g->dhn = TAKEF(NC), g->dxn = TAKEF(NC), g->tmp = TAKEF(NC);
    g->dao = TAKEF((size_t)N * H * dv), g->dv = TAKEF((size_t)N * H * dv);
    g->dq = TAKEF((size_t)N * H * m->dq), g->dk = TAKEF((size_t)N * H * m->dq);
    g->dP = TAKEF((size_t)R1_MAX_WORKERS * T * T); /* one [T,T] scratch per pool thread */
    g->dkv = TAKEF((size_t)N * H * (dn + dv)), g->dkva = TAKEF((size_t)N * (kvr + dr));
    g->dkvn = TAKEF((size_t)N * kvr), g->dckv = TAKEF((size_t)N * kvr);
    g->dqan = TAKEF((size_t)N * (qr ? qr : 1)), g->dqa = TAKEF((size_t)N * (qr ? qr : 1));
    g->dres[0] = TAKEF(NC), g->dres[1] = TAKEF(NC), g->dhf = TAKEF(NC);
    g->dmtp[0] = TAKEF(NC), g->dmtp[1] = TAKEF(NC), g->dcat = TAKEF(2 * NC), g->dx0 = TAKEF(NC);
    if (!g->dh || !g->dhn || !g->dxn || !g->tmp || !g->dao || !g->dv || !g->dq || !g->dk ||
        !g->dP || !g->dkv || !g->dkva || !g->dkvn || !g->dckv || !g->dqan || !g->dqa ||
        !g->dres[0] || !g->dres[1] || !g->dhf || !g->dmtp[0] || !g->dmtp[1] || !g->dcat ||
        !g->dx0)
        goto oom;
    int I = c->intermediate_size;
    g->dg = TAKEF((size_t)N * I), g->du = TAKEF((size_t)N * I), g->da = TAKEF((size_t)N * I);
    if (!g->dg || !g->du || !g->da)
        goto oom;
    if (c->n_routed_experts > 0) {
        int E = c->n_routed_experts, K = c->num_experts_per_tok, Ie = c->moe_intermediate_size;
        size_t NK = (size_t)N * K;
        g->dwts = TAKEF(NK), g->ds = TAKEF((size_t)N * E);
        g->deo = TAKEF(NK * C), g->dxe = TAKEF(NK * C);
        g->deg = TAKEF(NK * Ie), g->deu = TAKEF(NK * Ie), g->dea = TAKEF(NK * Ie);
        size_t nis = (size_t)N * (m->Is ? m->Is : 1);
        g->dsg = TAKEF(nis), g->dsu = TAKEF(nis), g->dsa = TAKEF(nis);
        if (!g->dwts || !g->ds || !g->deo || !g->dxe || !g->deg || !g->deu || !g->dea ||
            !g->dsg || !g->dsu || !g->dsa)
            goto oom;
    }
    m->cap_B = B;
    m->cap_T = T;
    return 1;
oom:
    r1__free_acts(m);
    return 0;
}

/* ------------------------------------------------------------------ one decoder layer */

/* out[N,C] = layer_l(x[N,C]) for a->B sequences of a->T tokens at positions 0..T-1. */
void r1__layer_forward(r1_model *m, int l, layer_act *a, const float *x, float *out)
{
    const r1_config *c = &m->cfg;
    const layer_w *w = &m->layers[l];
    int N = a->N, B = a->B, T = a->T, C = c->hidden_size, H = c->num_attention_heads;
    int dn = c->qk_nope_head_dim, dr = c->qk_rope_head_dim, dv = c->v_head_dim;
    int dq = m->dq, kvr = c->kv_lora_rank, qr = c->q_lora_rank;
    float eps = c->rms_norm_eps;

    if (a->x != x)
        memcpy(a->x, x, sizeof(float) * N * C);
    r1_rmsnorm_fwd(a->xn, a->rstd1, x, w->attn_norm, N, C, eps);

    /* queries: q = q_b(norm(q_a(xn))) or q_proj(xn); per head [q_nope | q_pe] */
    /* DESIGN: kv_a_proj_with_mqa output is [c_kv | k_pe]; k_pe is shared by all heads.  q_a
     * and kv_a read the same input: one product of it (r1__mm2) */
    if (qr) {
        r1__mm2(m, a->qa, w->q_a, qr, a->kva, w->kv_a, kvr + dr, a->xn, N, C);
        r1_rmsnorm_fwd(a->qan, a->qa_rstd, a->qa, w->q_a_norm, N, qr, eps);
        r1__mm(m, a->q, a->qan, w->q_b, N, qr, H * dq, 0);
    } else {
        r1__mm(m, a->q, a->xn, w->q_proj, N, C, H * dq, 0);
        r1__mm(m, a->kva, a->xn, w->kv_a, N, C, kvr + dr, 0);
    }
    for (int n = 0; n < N; n++)
        memcpy(a->ckv + (size_t)n * kvr, a->kva + (size_t)n * (kvr + dr), sizeof(float) * kvr);
    r1_rmsnorm_fwd(a->kvn, a->kv_rstd, a->ckv, w->kv_a_norm, N, kvr, eps);
    /* DESIGN: kv_b_proj per head is [k_nope | v] */
    r1__mm(m, a->kv, a->kvn, w->kv_b, N, kvr, H * (dn + dv), 0);

    /* RoPE on q_pe (every head) and on the shared k_pe */
    const int *pos = a->pos;
    r1_rope(a->q + dn, N, H, H * dq, dq, dr, pos, m->rope_cos, m->rope_sin, 0);
    r1_rope(a->kva + kvr, N, 1, kvr + dr, 0, dr, pos, m->rope_cos, m->rope_sin, 0);

    /* keys [k_nope | k_pe] and values, per head */
    for (int n = 0; n < N; n++) {
        const float *kvrow = a->kv + (size_t)n * H * (dn + dv);
        const float *kpe = a->kva + (size_t)n * (kvr + dr) + kvr;
        for (int h = 0; h < H; h++) {
            float *kh = a->k + ((size_t)n * H + h) * dq;
            memcpy(kh, kvrow + h * (dn + dv), sizeof(float) * dn);
            memcpy(kh + dn, kpe, sizeof(float) * dr);
            memcpy(a->v + ((size_t)n * H + h) * dv, kvrow + h * (dn + dv) + dn,
                   sizeof(float) * dv);
        }
    }
    /* DESIGN: softmax scale (qk_nope_head_dim + qk_rope_head_dim)^-0.5 */
    float scale = 1.0f / sqrtf((float)dq);
    /* attention's products in bf16 under BF16 and under FP8, whose linear layers alone take
     * E4M3: DeepSeek-V3 keeps attention in BF16 beside its FP8 GEMMs */
    r1__attention_fwd_seqs(m->bf16_fwd || m->fp8_fwd, a->ao, a->P, a->q, H * dq, a->k, H * dq,
                           a->v, H * dv, B, T, H, dq, dv, scale);
    /* h = x + o_proj(attention) */
    memcpy(a->h, x, sizeof(float) * N * C);
    r1__mm(m, a->h, a->ao, w->o_proj, N, H * dv, C, 1);

    /* out = h + ffn(norm(h)) */
    r1_rmsnorm_fwd(a->hn, a->rstd2, a->h, w->ffn_norm, N, C, eps);
    if (w->moe) {
        r1__moe_forward(m, l, a, out);
    } else {
        int I = c->intermediate_size;
        r1__mm2(m, a->g, w->gate, I, a->u, w->up, I, a->hn, N, C);
        r1_swiglu_fwd(a->a, a->g, a->u, N * I);
        r1__mm(m, out, a->a, w->down, N, I, C, 0);
    }
    for (size_t i = 0; i < (size_t)N * C; i++)
        out[i] += a->h[i];
}

/* dx[N,C] (overwritten) = d loss / d x, given dout[N,C]; parameter gradients accumulate. */
void r1__layer_backward(r1_model *m, int l, layer_act *a, const float *dout, float *dx)
{
    const r1_config *c = &m->cfg;
    layer_w *w = &m->layers[l];
    grad_scratch *g = &m->gs;
    int N = a->N, B = a->B, T = a->T, C = c->hidden_size, H = c->num_attention_heads;
    int dn = c->qk_nope_head_dim, dr = c->qk_rope_head_dim, dv = c->v_head_dim;
    int dq = m->dq, kvr = c->kv_lora_rank, qr = c->q_lora_rank;
    size_t NC = (size_t)N * C;

    /* ---- feed-forward: out = h + ffn(norm(h)) */
    memcpy(g->dh, dout, sizeof(float) * NC);
    r1__zero(g->dhn, NC);
    if (w->moe) {
        r1__moe_backward(m, l, a, dout, g->dhn);
    } else {
        int I = c->intermediate_size;
        size_t NI = (size_t)N * I;
        r1__zero(g->da, NI);
        r1__linear_bwd(m, g->da, r1__grad(m, w->down), dout, a->a, w->down, N, I, C);
        r1__zero(g->dg, NI);
        r1__zero(g->du, NI);
        r1_swiglu_bwd(g->dg, g->du, g->da, a->g, a->u, N * I);
        r1__linear_bwd2(m, g->dhn, r1__grad(m, w->gate), g->dg, w->gate, r1__grad(m, w->up),
                        g->du, w->up, a->hn, N, C, I);
    }
    r1_rmsnorm_bwd(g->dh, r1__grad(m, w->ffn_norm), g->dhn, a->h, w->ffn_norm, a->rstd2, N, C);

    /* ---- attention: h = x + o_proj(ao) */
    r1__zero(g->dao, (size_t)N * H * dv);
    r1__linear_bwd(m, g->dao, r1__grad(m, w->o_proj), g->dh, a->ao, w->o_proj, N, H * dv, C);
    r1__zero(g->dq, (size_t)N * H * dq);
    r1__zero(g->dk, (size_t)N * H * dq);
    r1__zero(g->dv, (size_t)N * H * dv);
    float scale = 1.0f / sqrtf((float)dq);
    r1__attention_bwd_seqs(m->bf16_last || m->fp8_last, g->dq, g->dk, g->dv, g->dP, g->dao, a->P,
                           a->q, H * dq, a->k, H * dq, a->v, H * dv, B, T, H, dq, dv, scale);
    /* scatter dk, dv back into kv_b's output layout; k_pe's gradient sums over heads */
    r1__zero(g->dkva, (size_t)N * (kvr + dr));
    for (int n = 0; n < N; n++) {
        float *dkvrow = g->dkv + (size_t)n * H * (dn + dv);
        float *dkpe = g->dkva + (size_t)n * (kvr + dr) + kvr;
        for (int h = 0; h < H; h++) {
            const float *dkh = g->dk + ((size_t)n * H + h) * dq;
            memcpy(dkvrow + h * (dn + dv), dkh, sizeof(float) * dn);
            memcpy(dkvrow + h * (dn + dv) + dn, g->dv + ((size_t)n * H + h) * dv,
                   sizeof(float) * dv);
            for (int i = 0; i < dr; i++)
                dkpe[i] += dkh[dn + i];
        }
    }
    /* RoPE backward: rotate the gradients back */
    r1_rope(g->dq + dn, N, H, H * dq, dq, dr, a->pos, m->rope_cos, m->rope_sin, 1);
    r1_rope(g->dkva + kvr, N, 1, kvr + dr, 0, dr, a->pos, m->rope_cos, m->rope_sin, 1);

    /* kv = kv_b(norm(c_kv)) */
    r1__zero(g->dkvn, (size_t)N * kvr);
    r1__linear_bwd(m, g->dkvn, r1__grad(m, w->kv_b), g->dkv, a->kvn, w->kv_b, N, kvr,
                   H * (dn + dv));
    r1__zero(g->dckv, (size_t)N * kvr);
    r1_rmsnorm_bwd(g->dckv, r1__grad(m, w->kv_a_norm), g->dkvn, a->ckv, w->kv_a_norm,
                   a->kv_rstd, N, kvr);
    for (int n = 0; n < N; n++)
        memcpy(g->dkva + (size_t)n * (kvr + dr), g->dckv + (size_t)n * kvr, sizeof(float) * kvr);

    /* the two projections of xn */
    r1__zero(g->dxn, NC);
    r1__linear_bwd(m, g->dxn, r1__grad(m, w->kv_a), g->dkva, a->xn, w->kv_a, N, C, kvr + dr);
    if (qr) {
        r1__zero(g->dqan, (size_t)N * qr);
        r1__linear_bwd(m, g->dqan, r1__grad(m, w->q_b), g->dq, a->qan, w->q_b, N, qr, H * dq);
        r1__zero(g->dqa, (size_t)N * qr);
        r1_rmsnorm_bwd(g->dqa, r1__grad(m, w->q_a_norm), g->dqan, a->qa, w->q_a_norm, a->qa_rstd,
                       N, qr);
        r1__linear_bwd(m, g->dxn, r1__grad(m, w->q_a), g->dqa, a->xn, w->q_a, N, C, qr);
    } else {
        r1__linear_bwd(m, g->dxn, r1__grad(m, w->q_proj), g->dq, a->xn, w->q_proj, N, C, H * dq);
    }
    /* x: the residual path plus the input norm */
    memcpy(dx, g->dh, sizeof(float) * NC);
    r1_rmsnorm_bwd(dx, r1__grad(m, w->attn_norm), g->dxn, a->x, w->attn_norm, a->rstd1, N, C);
}

/* ------------------------------------------------------------------ the whole model */

r1_fwd_opts r1_fwd_defaults(void)
{
    r1_fwd_opts o;
    memset(&o, 0, sizeof o);
    o.mtp_lambda = 0.3f; /* DESIGN: λ = 0.3 by default */
    return o;
}

/* Embedding rows of tok[N] into out[N,C]. */
static void embed_rows(const r1_model *m, const int32_t *tok, int N, float *out)
{
    int C = m->cfg.hidden_size;
    for (int n = 0; n < N; n++)
        memcpy(out + (size_t)n * C, m->embed + (size_t)tok[n] * C, sizeof(float) * C);
}

/* Cross-entropy of logits[B,Tl,V] whose row i predicts token t[i + shift]; weights lw[B,T]
 * (NULL: 1) at that target position.  Writes dlogits scaled by coef / D and returns the
 * weighted sum over D (0 when no row counts), where D is `over` when > 0, else Σw; *denom gets
 * Σw. */
static double seq_xent(r1_model *m, const float *lw, double over, const float *logits,
                       float *dlogits, int B, int T, int Tl, int shift, double coef,
                       double *denom)
{
    int N = B * Tl, V = m->cfg.vocab_size;
    double W = 0;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < Tl; i++) {
            int tpos = i + shift, n = b * Tl + i;
            if (tpos < T) {
                m->targets[n] = m->tokens[(size_t)b * T + tpos];
                m->tw[n] = lw ? lw[(size_t)b * T + tpos] : 1.0f;
            } else {
                m->targets[n] = -1;
                m->tw[n] = 0;
            }
            W += m->tw[n];
        }
    *denom = W;
    if (over > 0)
        W = over;
    if (W <= 0) {
        memset(dlogits, 0, sizeof(float) * (size_t)N * V);
        return 0;
    }
    double sum = r1_xent_fwd_bwd(dlogits, logits, m->targets, m->tw, N, V, (float)(coef / W));
    return sum / W;
}

/* Activation patching (inspect.c): overwrites the patched rows' residual x[B,T,C] at `site`. */
static void apply_patch(r1_model *m, int site, float *x, int B, int T)
{
    const r1__patch *p = m->patch;
    int C = m->cfg.hidden_size;
    if (!p || p->site != site)
        return;
    for (int b = 0; b < B; b++)
        if (p->pos[b] >= 0 && p->pos[b] < T)
            memcpy(x + ((size_t)b * T + p->pos[b]) * C, p->vec + (size_t)b * C,
                   sizeof(float) * C);
}

r1_status r1_model_forward(r1_model *m, const int32_t *tokens, int B, int T,
                           const r1_fwd_opts *opts, r1_loss *loss, r1_error *err)
{
    const r1_config *c = &m->cfg;
    int C = c->hidden_size, V = c->vocab_size;
    m->have_fwd = 0;
    if (B < 1 || T < 1)
        return r1_error_set(err, R1_EINVAL, "forward: batch %d x %d tokens; both must be >= 1",
                            B, T);
    if (T > c->max_position_embeddings)
        return r1_error_set(err, R1_EINVAL,
                            "forward: %d tokens per row exceed max_position_embeddings (%d)", T,
                            c->max_position_embeddings);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            int32_t id = tokens[(size_t)b * T + t];
            if (id < 0 || id >= V)
                return r1_error_set(err, R1_EINVAL,
                                    "forward: token %d of row %d is %d; expected 0..%d "
                                    "(vocab_size %d)",
                                    t, b, (int)id, V - 1, V);
        }
    for (int l = 0; l < m->L; l++)
        if (m->layers[l].forced && m->layers[l].forced_n != B * T)
            return r1_error_set(err, R1_EINVAL, "forward: the forced routing of layer %d holds "
                                "%d tokens; this forward has %d x %d", l,
                                m->layers[l].forced_n, B, T);
    if (!r1__alloc_acts(m, B, T))
        return r1_error_set(err, R1_ENOMEM, "forward: out of memory for %d x %d tokens", B, T);
    m->opts = opts ? *opts : r1_fwd_defaults();
    m->fp8_fwd = m->fp8_last = m->fp8; /* the linear layers' GEMMs (fp8_linear.c) */
    m->fp8_oom = 0;
    m->bf16_fwd = m->bf16_last = m->bf16 && !m->fp8;
    if (m->bf16_fwd && !r1__wt16(m)) {
        m->bf16_fwd = m->bf16_last = 0;
        return r1_error_set(err, R1_ENOMEM, "forward: out of memory for the bf16 weights");
    }
    int N = B * T;
    memcpy(m->tokens, tokens, sizeof(int32_t) * N);

    /* main model */
    m->forcing = 1; /* routing replay applies to the main layers of this forward only */
    float *x = m->L ? m->acts[0].x : m->x_final;
    int l0 = 0;
    if (m->patch && m->patch->base) { /* start at the patched site from its given residual */
        l0 = m->patch->site;
        float *at = l0 < m->L ? m->acts[l0].x : m->x_final;
        for (int b = 0; b < B; b++)
            memcpy(at + (size_t)b * T * C, m->patch->base, sizeof(float) * T * C);
    } else {
        embed_rows(m, m->tokens, N, x);
    }
    apply_patch(m, l0, l0 < m->L ? m->acts[l0].x : m->x_final, B, T);
    for (int l = l0; l < m->L; l++) {
        float *out = l + 1 < m->L ? m->acts[l + 1].x : m->x_final;
        r1__layer_forward(m, l, &m->acts[l], m->acts[l].x, out);
        apply_patch(m, l + 1, out, B, T);
    }
    m->forcing = 0;
    r1_rmsnorm_fwd(m->hf, m->hf_rstd, m->x_final, m->final_norm, N, C, c->rms_norm_eps);
    r1_matmul_fwd(m->logits, m->hf, m->head, N, C, V, 0);
    r1_loss L = {0};
    L.main = seq_xent(m, m->opts.loss_weights, m->opts.main_denom, m->logits, m->dlogits, B, T,
                      T, 1, 1.0, &m->denom_main);
    L.weight_main = m->denom_main;

    /* MTP depths: depth k reads embed(t[i+k]) and the previous depth's hidden state */
    m->opts.no_mtp = m->opts.no_mtp || m->D == 0;
    for (int k = 1; k <= m->D && !m->opts.no_mtp; k++) {
        mtp_act *ma = &m->macts[k - 1];
        m->denom_mtp[k - 1] = 0;
        if (T - k < 1)
            break;
        int Tk = T - k, Nk = B * Tk;
        const layer_w *w = &m->layers[m->L + k - 1];
        const float *src = k == 1 ? m->hf : m->macts[k - 2].hk;
        int srcT = T - k + 1;
        for (int b = 0; b < B; b++)
            for (int i = 0; i < Tk; i++) {
                int n = b * Tk + i;
                ma->tok[n] = m->tokens[(size_t)b * T + i + k];
                memcpy(ma->prev + (size_t)n * C, src + ((size_t)b * srcT + i) * C,
                       sizeof(float) * C);
            }
        embed_rows(m, ma->tok, Nk, ma->emb);
        r1_rmsnorm_fwd(ma->en, ma->en_rstd, ma->emb, w->enorm, Nk, C, c->rms_norm_eps);
        r1_rmsnorm_fwd(ma->pn, ma->pn_rstd, ma->prev, w->hnorm, Nk, C, c->rms_norm_eps);
        /* DESIGN: eh_proj input = concat[enorm(embedding), hnorm(hidden)], embedding first */
        for (int n = 0; n < Nk; n++) {
            memcpy(ma->cat + (size_t)n * 2 * C, ma->en + (size_t)n * C, sizeof(float) * C);
            memcpy(ma->cat + (size_t)n * 2 * C + C, ma->pn + (size_t)n * C, sizeof(float) * C);
        }
        layer_act *a = &m->acts[m->L + k - 1];
        r1__mm(m, a->x, ma->cat, w->eh_proj, Nk, 2 * C, C, 0);
        r1__layer_forward(m, m->L + k - 1, a, a->x, ma->x1);
        r1_rmsnorm_fwd(ma->hk, ma->hk_rstd, ma->x1, w->head_norm, Nk, C, c->rms_norm_eps);
        r1_matmul_fwd(ma->logits, ma->hk, m->head, Nk, C, V, 0);
        double coef = (double)m->opts.mtp_lambda / m->D;
        const float *mw = m->opts.mtp_weights ? m->opts.mtp_weights : m->opts.loss_weights;
        double over = m->opts.mtp_denoms ? m->opts.mtp_denoms[k - 1] : m->opts.mtp_denom;
        double ce = seq_xent(m, mw, over, ma->logits, ma->dlogits, B, T, Tk, k + 1, coef,
                             &m->denom_mtp[k - 1]);
        L.mtp += coef * ce;
    }
    if (m->opts.balance_alpha > 0)
        for (int l = 0; l < m->Ltot; l++) {
            if (!m->layers[l].moe || (l >= m->L && (m->opts.no_mtp || T - (l - m->L + 1) < 1)))
                continue;
            L.balance += m->opts.balance_alpha * r1__moe_balance(m, l, &m->acts[l]);
        }
    L.loss = L.main + L.mtp + L.balance;
    m->fp8_fwd = 0;
    m->bf16_fwd = 0;
    if (m->fp8_oom)
        return r1_error_set(err, R1_ENOMEM, "forward: out of memory for the fp8 emulation");
    if (r1__blas_status(err) != R1_OK)
        return R1_ENOMEM;
    if (loss)
        *loss = L;
    m->B = B;
    m->T = T;
    m->have_fwd = 1;
    return R1_OK;
}

r1_status r1_model_backward(r1_model *m, r1_error *err)
{
    if (!m->have_fwd)
        return r1_error_set(err, R1_EINVAL, "backward: no forward pass to differentiate");
    const r1_config *c = &m->cfg;
    grad_scratch *g = &m->gs;
    int B = m->B, T = m->T, N = B * T, C = c->hidden_size, V = c->vocab_size;
    float *dembed = r1__grad(m, m->embed), *dhead = r1__grad(m, m->head);
    r1__zero(g->dhf, (size_t)N * C);

    /* MTP depths, deepest first: each hands the gradient of its `prev` to the depth below */
    int Drun = 0;
    for (int k = 1; k <= m->D && !m->opts.no_mtp && T - k >= 1; k++)
        Drun = k;
    for (int k = Drun; k >= 1; k--) {
        mtp_act *ma = &m->macts[k - 1];
        layer_w *w = &m->layers[m->L + k - 1];
        layer_act *a = &m->acts[m->L + k - 1];
        int Tk = T - k, Nk = B * Tk;
        size_t NC = (size_t)Nk * C;
        float *dhk = g->dres[0], *dx1 = g->dres[1];
        r1__zero(dhk, NC);
        r1_matmul_bwd(dhk, dhead, ma->dlogits, ma->hk, m->head, Nk, C, V);
        if (k < Drun) { /* depth k+1 read hk rows (b, i < T-k-1) */
            const float *dn = g->dmtp[(k + 1) & 1];
            for (int b = 0; b < B; b++)
                for (int i = 0; i < Tk - 1; i++) {
                    float *dst = dhk + ((size_t)b * Tk + i) * C;
                    const float *s = dn + ((size_t)b * (Tk - 1) + i) * C;
                    for (int j = 0; j < C; j++)
                        dst[j] += s[j];
                }
        }
        r1__zero(dx1, NC);
        r1_rmsnorm_bwd(dx1, r1__grad(m, w->head_norm), dhk, ma->x1, w->head_norm, ma->hk_rstd,
                       Nk, C);
        r1__layer_backward(m, m->L + k - 1, a, dx1, g->dx0);
        r1__zero(g->dcat, (size_t)2 * NC);
        r1__linear_bwd(m, g->dcat, r1__grad(m, w->eh_proj), g->dx0, ma->cat, w->eh_proj, Nk,
                       2 * C, C);
        /* split [d enorm(emb) | d hnorm(prev)] */
        float *den = g->tmp, *dpn = g->dres[0], *demb = g->dres[1];
        for (int n = 0; n < Nk; n++) {
            memcpy(den + (size_t)n * C, g->dcat + (size_t)n * 2 * C, sizeof(float) * C);
            memcpy(dpn + (size_t)n * C, g->dcat + (size_t)n * 2 * C + C, sizeof(float) * C);
        }
        r1__zero(demb, NC);
        r1_rmsnorm_bwd(demb, r1__grad(m, w->enorm), den, ma->emb, w->enorm, ma->en_rstd, Nk, C);
        for (int n = 0; n < Nk; n++) {
            float *dst = dembed + (size_t)ma->tok[n] * C;
            const float *s = demb + (size_t)n * C;
            for (int j = 0; j < C; j++)
                dst[j] += s[j];
        }
        float *dprev = g->dmtp[k & 1];
        r1__zero(dprev, NC);
        r1_rmsnorm_bwd(dprev, r1__grad(m, w->hnorm), dpn, ma->prev, w->hnorm, ma->pn_rstd, Nk, C);
        if (k == 1) /* prev rows (b, i) were hf rows (b, i) */
            for (int b = 0; b < B; b++)
                for (int i = 0; i < Tk; i++) {
                    float *dst = g->dhf + ((size_t)b * T + i) * C;
                    const float *s = dprev + ((size_t)b * Tk + i) * C;
                    for (int j = 0; j < C; j++)
                        dst[j] += s[j];
                }
    }

    /* head and final norm */
    r1_matmul_bwd(g->dhf, dhead, m->dlogits, m->hf, m->head, N, C, V);
    float *dx = g->dres[0], *dnext = g->dres[1];
    r1__zero(dx, (size_t)N * C);
    r1_rmsnorm_bwd(dx, r1__grad(m, m->final_norm), g->dhf, m->x_final, m->final_norm, m->hf_rstd,
                   N, C);
    for (int l = m->L - 1; l >= 0; l--) {
        r1__layer_backward(m, l, &m->acts[l], dx, dnext);
        float *t = dx;
        dx = dnext;
        dnext = t;
    }
    for (int n = 0; n < N; n++) {
        float *dst = dembed + (size_t)m->tokens[n] * C;
        const float *s = dx + (size_t)n * C;
        for (int j = 0; j < C; j++)
            dst[j] += s[j];
    }
    return r1__blas_status(err);
}

const float *r1_model_logits(const r1_model *m) { return m->have_fwd ? m->logits : NULL; }

const float *r1_model_mtp_logits(const r1_model *m, int k)
{
    if (!m->have_fwd || k < 1 || k > m->D || m->opts.no_mtp || m->T - k < 1)
        return NULL;
    return m->macts[k - 1].logits;
}

r1_status r1_model_force_routing(r1_model *m, int l, const int32_t *experts, int N,
                                 r1_error *err)
{
    const r1_config *c = &m->cfg;
    int E = c->n_routed_experts, K = c->num_experts_per_tok;
    if (l < 0 || l >= m->L || !m->layers[l].moe)
        return r1_error_set(err, R1_EINVAL, "force routing: layer %d is not a MoE layer of the "
                            "main model", l);
    if (experts) {
        if (N < 1)
            return r1_error_set(err, R1_EINVAL, "force routing: %d tokens", N);
        for (int n = 0; n < N; n++)
            for (int k = 0; k < K; k++) {
                int32_t e = experts[(size_t)n * K + k];
                if (e < 0 || e >= E || (k && e <= experts[(size_t)n * K + k - 1]))
                    return r1_error_set(err, R1_EINVAL, "force routing: layer %d, token %d: "
                                        "expected %d distinct experts in ascending order, in "
                                        "0..%d", l, n, K, E - 1);
            }
    }
    m->layers[l].forced = experts;
    m->layers[l].forced_n = experts ? N : 0;
    return R1_OK;
}

int r1_model_routing(const r1_model *m, int l, int32_t *experts, float *weights)
{
    if (!m->have_fwd || l < 0 || l >= m->Ltot || !m->layers[l].moe)
        return -1;
    int len = m->T;
    if (l >= m->L) {
        len = m->T - (l - m->L + 1);
        if (m->opts.no_mtp || len < 1)
            return -1;
    }
    const layer_act *a = &m->acts[l];
    size_t n = (size_t)m->B * len * m->cfg.num_experts_per_tok;
    if (experts)
        memcpy(experts, a->sel, sizeof(int32_t) * n);
    if (weights)
        memcpy(weights, a->wts, sizeof(float) * n);
    return len;
}

r1_status r1_model_backward_logits(r1_model *m, const float *dlogits, r1_error *err)
{
    if (!m->have_fwd)
        return r1_error_set(err, R1_EINVAL, "backward: no forward pass to differentiate");
    size_t n = (size_t)m->B * m->T * m->cfg.vocab_size;
    memcpy(m->dlogits, dlogits, sizeof(float) * n);
    return r1_model_backward(m, err);
}
