/* moe.c — the DeepSeekMoE feed-forward: router, group-limited top-k selection, routed experts
 * run on the tokens grouped per expert, shared experts, and the backward of all of it.
 *
 * Grouping: after routing, every (token, choice) pair becomes a "slot"; slots are ordered by
 * expert (tokens ascending within an expert), the expert inputs are gathered into one
 * contiguous block, and each expert runs three GEMMs over its rows.  No allocation: the
 * buffers come from layer_act / grad_scratch. */
#include <config.h>

#include <math.h>
#include <string.h>

#include "model_internal.h"
#include "parallel.h"
#include "r1_gemm16.h"
#include "r1_kernels.h"

/* Chooses the K experts of one token from its scores s[E] and the selection bias b[E].
 * DESIGN (official DeepSeek-V3 code): biased = s + b for selection only; a group scores the
 * sum of its two best biased scores; experts outside the best topk_group groups are masked to
 * -inf (HF masks to 0, which can select a masked expert when biased scores are negative);
 * then the top-K by biased score.  Ties go to the lower index.  sel[K] comes out ascending. */
static void select_experts(const r1_config *c, const float *s, const float *b, int32_t *sel)
{
    int E = c->n_routed_experts, K = c->num_experts_per_tok, G = c->n_group;
    float biased[E];
    for (int e = 0; e < E; e++)
        biased[e] = s[e] + b[e];
    if (G > 1 && c->topk_group < G) {
        int per = E / G;
        float gscore[G];
        for (int gi = 0; gi < G; gi++) {
            float b1 = -INFINITY, b2 = -INFINITY;
            for (int j = 0; j < per; j++) {
                float v = biased[gi * per + j];
                if (v > b1) {
                    b2 = b1;
                    b1 = v;
                } else if (v > b2) {
                    b2 = v;
                }
            }
            gscore[gi] = b1 + b2;
        }
        char keep[G];
        memset(keep, 0, sizeof keep);
        for (int r = 0; r < c->topk_group; r++) {
            int best = -1;
            for (int gi = 0; gi < G; gi++)
                if (!keep[gi] && (best < 0 || gscore[gi] > gscore[best]))
                    best = gi;
            keep[best] = 1;
        }
        for (int e = 0; e < E; e++)
            if (!keep[e / per])
                biased[e] = -INFINITY;
    }
    char taken[E];
    memset(taken, 0, sizeof taken);
    for (int k = 0; k < K; k++) {
        int best = -1;
        for (int e = 0; e < E; e++)
            if (!taken[e] && (best < 0 || biased[e] > biased[best]))
                best = e;
        taken[best] = 1;
    }
    int k = 0;
    for (int e = 0; e < E && k < K; e++)
        if (taken[e])
            sel[k++] = e;
}

typedef struct {
    r1_model *m;
    layer_w *w;
    layer_act *a;
    grad_scratch *g;
    const int32_t *order; /* [E]: iteration i runs expert order[i] */
} moe_job;

/* The experts by their rows, most first (ties by index): the loop hands out iterations in
 * order, so the long ones start first and the short ones fill in at the end, instead of a
 * large expert late in the list keeping one thread busy alone.  Each expert's work is its own,
 * so the order changes no bit. */
static void by_load(int32_t *order, const int32_t *cnt, int E)
{
    for (int e = 0; e < E; e++) {
        int at = e;
        for (; at > 0 && cnt[order[at - 1]] < cnt[e]; at--) /* stable: ties keep index order */
            order[at] = order[at - 1];
        order[at] = e;
    }
}

/* Expert e over its rows: eo = down(silu(gate(x)) * up(x)). */
static void expert_fwd(void *ctx, int i, int tid)
{
    (void)tid;
    moe_job *j = ctx;
    int e = j->order[i];
    const r1_config *c = &j->m->cfg;
    layer_act *a = j->a;
    int n0 = a->off[e], ne = a->cnt[e], C = c->hidden_size, Ie = c->moe_intermediate_size;
    if (!ne)
        return;
    const float *Wg = j->w->eg + (size_t)e * Ie * C, *Wu = j->w->eu + (size_t)e * Ie * C;
    const float *Wd = j->w->ed + (size_t)e * C * Ie;
    float *xe = a->xe + (size_t)n0 * C;
    float *eg = a->eg + (size_t)n0 * Ie, *eu = a->eu + (size_t)n0 * Ie;
    float *ea = a->ea + (size_t)n0 * Ie;
    r1__mm2(j->m, eg, Wg, Ie, eu, Wu, Ie, xe, ne, C);
    r1_swiglu_fwd(ea, eg, eu, ne * Ie);
    r1__mm(j->m, a->eo + (size_t)n0 * C, ea, Wd, ne, Ie, C, 0);
}

/* Expert e's backward over its rows; its weight gradients are its own, its rows too. */
static void expert_bwd(void *ctx, int i, int tid)
{
    (void)tid;
    moe_job *j = ctx;
    int e = j->order[i];
    r1_model *m = j->m;
    const r1_config *c = &m->cfg;
    layer_act *a = j->a;
    grad_scratch *g = j->g;
    int n0 = a->off[e], ne = a->cnt[e], C = c->hidden_size, Ie = c->moe_intermediate_size;
    if (!ne)
        return;
    const float *Wg = j->w->eg + (size_t)e * Ie * C, *Wu = j->w->eu + (size_t)e * Ie * C;
    const float *Wd = j->w->ed + (size_t)e * C * Ie;
    size_t rI = (size_t)n0 * Ie, rC = (size_t)n0 * C;
    memset(g->dea + rI, 0, sizeof(float) * ne * Ie); /* in the experts' loop: one thread */
    memset(g->deg + rI, 0, sizeof(float) * ne * Ie);
    memset(g->deu + rI, 0, sizeof(float) * ne * Ie);
    memset(g->dxe + rC, 0, sizeof(float) * ne * C);
    r1__linear_bwd(m, g->dea + rI, r1__grad(m, Wd), g->deo + rC, a->ea + rI, Wd, ne, Ie, C);
    r1_swiglu_bwd(g->deg + rI, g->deu + rI, g->dea + rI, a->eg + rI, a->eu + rI, ne * Ie);
    r1__linear_bwd2(m, g->dxe + rC, r1__grad(m, Wg), g->deg + rI, Wg, r1__grad(m, Wu),
                    g->deu + rI, Wu, a->xe + rC, ne, C, Ie);
}

/* The slot loops outside the experts, in SLOT_PIECES pieces side by side when the layer is
 * large: the weighted sum of a token's expert outputs (forward) or of its input gradients
 * (backward) by token ranges, each piece walking every slot in order and taking its own
 * tokens, so that a token's sum keeps the slots' order; and the backward's per-slot products
 * by slot ranges, four slots' double sums side by side, each in its own order.  The same bits
 * as the one loop on one thread (t_model, t_determinism).  perf had these loops, on the
 * calling thread alone, at 4% of a small training step. */
#define SLOT_PIECES 16

/* Gathering the experts' inputs, by ranges of slots: slot s holds token slot_tok[s]'s row. */
/* Routing token by token (each token's alone), by token ranges side by side: the sigmoid
 * scores, the experts (unless replayed) and their weights.  About 140 ns a token here, as long
 * as a few thousand multiply-adds: ROUTE_COST per score is its weight in a loop's work.  A
 * GRPO micro-batch's routing had run on one core, 1.4% of the step. */
#define ROUTE_COST 64

typedef struct {
    const r1_config *c;
    layer_act *a;
    const float *bias;
    int forced;
    int N;
} route_job;

static void route_piece(void *ctx, int i, int tid)
{
    (void)tid;
    const route_job *j = ctx;
    const r1_config *c = j->c;
    layer_act *a = j->a;
    int E = c->n_routed_experts, K = c->num_experts_per_tok;
    int n0 = (int)((long)j->N * i / SLOT_PIECES), n1 = (int)((long)j->N * (i + 1) / SLOT_PIECES);
    for (size_t x = (size_t)n0 * E; x < (size_t)n1 * E; x++)
        a->s[x] = 1.0f / (1.0f + expf(-a->s[x]));
    for (int n = n0; n < n1 && !j->forced; n++)
        select_experts(c, a->s + (size_t)n * E, j->bias, a->sel + (size_t)n * K);
    r1_moe_weights_fwd(a->wts + (size_t)n0 * K, a->s + (size_t)n0 * E, a->sel + (size_t)n0 * K,
                       n1 - n0, E, K, c->norm_topk_prob, c->routed_scaling_factor);
}

typedef struct {
    layer_act *a;
    long NK;
    int C;
} gather_job;

static void gather_piece(void *ctx, int i, int tid)
{
    (void)tid;
    const gather_job *j = ctx;
    long lo = j->NK * i / SLOT_PIECES, hi = j->NK * (i + 1) / SLOT_PIECES;
    for (long s = lo; s < hi; s++)
        memcpy(j->a->xe + s * j->C, j->a->hn + (size_t)j->a->slot_tok[s] * j->C,
               sizeof(float) * j->C);
}

typedef struct {
    const layer_act *a;
    float *dst;        /* [N, C]: f (forward) or dhn (backward) */
    const float *src;  /* [NK, C]: eo or dxe */
    int weighted;      /* dst_n += wt(slot) · src_slot, else += src_slot (wt = 1) */
    const float *df;   /* backward per slot: d wt and d eo from df */
    float *deo, *dwts;
    int N, C, K;
} slot_job;

/* d[c] += wt · s[c], four lanes at a time: each lane's operations are the scalar loop's, so
 * the bits are too (and with wt = 1 those of d[c] += s[c]: 1 · s is s exactly). */
typedef float v4f __attribute__((vector_size(16)));

static void add_row(float *restrict d, const float *restrict s, float wt, int C)
{
    v4f w = {wt, wt, wt, wt};
    int c = 0;
    for (; c + 4 <= C; c += 4) {
        v4f x, y;
        memcpy(&x, s + c, sizeof x);
        memcpy(&y, d + c, sizeof y);
        y = y + w * x;
        memcpy(d + c, &y, sizeof y);
    }
    for (; c < C; c++)
        d[c] += wt * s[c];
}

static void slot_sum_piece(void *ctx, int i, int tid)
{
    (void)tid;
    const slot_job *j = ctx;
    const layer_act *a = j->a;
    int n0 = (int)((long)j->N * i / SLOT_PIECES), n1 = (int)((long)j->N * (i + 1) / SLOT_PIECES);
    size_t NK = (size_t)j->N * j->K;
    for (size_t slot = 0; slot < NK; slot++) {
        int n = a->slot_tok[slot];
        if (n < n0 || n >= n1)
            continue;
        float wt = j->weighted ? a->wts[(size_t)n * j->K + a->slot_k[slot]] : 1;
        add_row(j->dst + (size_t)n * j->C, j->src + slot * j->C, wt, j->C);
    }
}

/* f_n += wt · eo_slot:  d wt = <df_n, eo_slot>,  d eo_slot = wt · df_n */
static void slot_bwd_piece(void *ctx, int i, int tid)
{
    (void)tid;
    const slot_job *j = ctx;
    const layer_act *a = j->a;
    size_t NK = (size_t)j->N * j->K, C = (size_t)j->C;
    size_t s0 = NK * (size_t)i / SLOT_PIECES, s1 = NK * (size_t)(i + 1) / SLOT_PIECES;
    for (size_t slot = s0; slot < s1; slot += 4) {
        int q = s1 - slot < 4 ? (int)(s1 - slot) : 4;
        const float *dfn[4], *eo[4];
        double dot[4];
        for (int r = 0; r < q; r++) {
            size_t sl = slot + (size_t)r;
            dfn[r] = j->df + (size_t)a->slot_tok[sl] * C;
            eo[r] = a->eo + sl * C;
        }
        r1_dots(dot, q, dfn, eo, NULL, (int)C); /* 8 lanes a row, then in pairs */
        for (int r = 0; r < q; r++) {
            size_t sl = slot + (size_t)r;
            int n = a->slot_tok[sl], k = a->slot_k[sl];
            float wt = a->wts[(size_t)n * j->K + k];
            float *deo = j->deo + sl * C;
            for (size_t c = 0; c < C; c++)
                deo[c] = wt * dfn[r][c];
            j->dwts[(size_t)n * j->K + k] = (float)dot[r];
        }
    }
}

void r1__moe_forward(r1_model *m, int l, layer_act *a, float *f)
{
    const r1_config *c = &m->cfg;
    layer_w *w = &m->layers[l];
    int N = a->N, C = c->hidden_size, E = c->n_routed_experts, K = c->num_experts_per_tok;
    int Is = m->Is;

    /* router: fp32 weights and sigmoid scores, also in BF16 decoding (DeepSeek-V3 keeps the
     * gating in higher precision).  Decoding runs it on the row kernels: on sgemm a token's
     * scores had depended on the rows beside it (OpenBLAS rounds a row by its place in the
     * product and the product's size), and a near-tie in the top-k with them (t_decode) */
    (m->decoding ? r1__matmul_fwd_decode : r1_matmul_fwd)(a->s, a->hn, w->router, N, C, E, 0);
    int forced = m->forcing && w->forced;
    if (forced) /* routing replay: the given experts, gates from the scores */
        memcpy(a->sel, w->forced, sizeof(int32_t) * N * K);
    route_job rj = {c, a, w->bias, forced, N};
    r1__parallel_for_work((long)N * E * ROUTE_COST, SLOT_PIECES, route_piece, &rj);

    /* group the slots by expert */
    memset(a->cnt, 0, sizeof(int32_t) * E);
    for (size_t i = 0; i < (size_t)N * K; i++)
        a->cnt[a->sel[i]]++;
    a->off[0] = 0;
    for (int e = 0; e < E; e++)
        a->off[e + 1] = a->off[e] + a->cnt[e];
    int32_t fill[E];
    memcpy(fill, a->off, sizeof(int32_t) * E);
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++) {
            int e = a->sel[(size_t)n * K + k];
            int slot = fill[e]++;
            a->slot_tok[slot] = n;
            a->slot_k[slot] = k;
        }
    gather_job gj = {a, (long)N * K, C};
    /* a copy costs about what the weighted sums' multiply-add does (N·K·C·4 below) */
    r1__parallel_for_work((long)N * K * C * 4, SLOT_PIECES, gather_piece, &gj);
    if (!m->no_load_count) {
        for (int e = 0; e < E; e++)
            w->load[e] += a->cnt[e];
        w->load_tokens += N;
    }

    /* every expert over its rows, experts side by side on the cores; a step this small (a
     * few tokens being decoded) runs on this thread: waking the others costs more than it
     * saves, and each expert's rows are its own, so the result is the same either way */
    int32_t order[E];
    by_load(order, a->cnt, E);
    moe_job job = {m, w, a, NULL, order};
    r1__parallel_for_work((long)N * K * 3 * C * c->moe_intermediate_size, E, expert_fwd, &job);

    /* shared experts over every token, then the weighted routed outputs */
    if (Is) {
        r1__mm2(m, a->sgo, w->sg, Is, a->suo, w->su, Is, a->hn, N, C);
        r1_swiglu_fwd(a->sa, a->sgo, a->suo, N * Is);
        r1__mm(m, f, a->sa, w->sd, N, Is, C, 0);
    } else {
        memset(f, 0, sizeof(float) * N * C);
    }
    slot_job sj = {a, f, a->eo, 1, NULL, NULL, NULL, N, C, K};
    r1__parallel_for_work((long)N * K * C * 4, SLOT_PIECES, slot_sum_piece, &sj);
}

double r1__moe_balance(r1_model *m, int l, layer_act *a)
{
    (void)l;
    const r1_config *c = &m->cfg;
    int E = c->n_routed_experts, K = c->num_experts_per_tok;
    double sum = 0;
    for (int b = 0; b < a->B; b++) {
        size_t t0 = (size_t)b * a->T;
        sum += r1_balance_fwd(a->s + t0 * E, a->sel + t0 * K, a->T, E, K);
    }
    return sum / (m->opts.balance_rows > 0 ? m->opts.balance_rows : a->B);
}

void r1__moe_backward(r1_model *m, int l, layer_act *a, const float *df, float *dhn)
{
    const r1_config *c = &m->cfg;
    layer_w *w = &m->layers[l];
    grad_scratch *g = &m->gs;
    int N = a->N, C = c->hidden_size, E = c->n_routed_experts, K = c->num_experts_per_tok;
    int Is = m->Is;
    size_t NK = (size_t)N * K;

    /* shared experts */
    if (Is) {
        size_t NI = (size_t)N * Is;
        r1__zero(g->dsa, NI);
        r1__linear_bwd(m, g->dsa, r1__grad(m, w->sd), df, a->sa, w->sd, N, Is, C);
        r1__zero(g->dsg, NI);
        r1__zero(g->dsu, NI);
        r1_swiglu_bwd(g->dsg, g->dsu, g->dsa, a->sgo, a->suo, N * Is);
        r1__linear_bwd2(m, dhn, r1__grad(m, w->sg), g->dsg, w->sg, r1__grad(m, w->su), g->dsu,
                        w->su, a->hn, N, C, Is);
    }

    slot_job sj = {a, NULL, NULL, 0, df, g->deo, g->dwts, N, C, K};
    r1__parallel_for_work((long)NK * C * 4, SLOT_PIECES, slot_bwd_piece, &sj);

    /* the experts, each over its rows, side by side on the cores */
    int32_t order[E];
    by_load(order, a->cnt, E);
    moe_job job = {m, w, a, g, order};
    r1__parallel_for(E, expert_bwd, &job);
    slot_job sd = {a, dhn, g->dxe, 0, NULL, NULL, NULL, N, C, K};
    r1__parallel_for_work((long)NK * C * 4, SLOT_PIECES, slot_sum_piece, &sd);

    /* router: weights <- scores <- sigmoid <- logits = hn · router^T */
    memset(g->ds, 0, sizeof(float) * N * E);
    r1_moe_weights_bwd(g->ds, g->dwts, a->s, a->sel, N, E, K, c->norm_topk_prob,
                       c->routed_scaling_factor);
    if (m->opts.balance_alpha > 0) {
        float coef = m->opts.balance_alpha /
                     (m->opts.balance_rows > 0 ? m->opts.balance_rows : a->B);
        for (int b = 0; b < a->B; b++) {
            size_t t0 = (size_t)b * a->T;
            r1_balance_bwd(g->ds + t0 * E, a->s + t0 * E, a->sel + t0 * K, a->T, E, K, coef);
        }
    }
    for (size_t i = 0; i < (size_t)N * E; i++)
        g->ds[i] *= a->s[i] * (1 - a->s[i]);
    r1_matmul_bwd(dhn, r1__grad(m, w->router), g->ds, a->hn, w->router, N, C, E);
}
