/* t_grad.c — finite-difference checks of every backward kernel, in double.
 *
 * This program compiles engine/ops.c a second time with R1_REAL_DOUBLE, so the kernels run
 * in double precision and a central difference with h = 1e-6 checks each analytic gradient
 * to ~1e-8.  Each check forms a scalar L = <r, forward(x)> with a fixed random r, takes the
 * backward of dout = r, and compares every input's gradient with (L(x+h) - L(x-h)) / 2h. */
#include <config.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifndef R1_REAL_DOUBLE
#error "t_grad.c is built with -DR1_REAL_DOUBLE (see Makefile.am)"
#endif
#include "r1_kernels.h"
#include "tap.h"

static uint64_t rng = 88172645463325252ull;
static double urand(void) /* uniform in [-1, 1) */
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / (double)(1ull << 53) * 2 - 1;
}
static double *rnd(size_t n, double amp)
{
    double *p = malloc(sizeof(double) * n);
    for (size_t i = 0; i < n; i++)
        p[i] = urand() * amp;
    return p;
}
static double *zeros(size_t n) { return calloc(n, sizeof(double)); }
static double dotv(const double *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

typedef double (*loss_fn)(void *ctx);

/* Largest |analytic - numeric| / max(1, |numeric|) over the n entries of x. */
static double fd_err(double *x, size_t n, const double *grad, loss_fn f, void *ctx)
{
    const double h = 1e-6;
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double keep = x[i];
        x[i] = keep + h;
        double lp = f(ctx);
        x[i] = keep - h;
        double lm = f(ctx);
        x[i] = keep;
        double num = (lp - lm) / (2 * h);
        double e = fabs(num - grad[i]) / fmax(1.0, fabs(num));
        if (e > worst)
            worst = e;
    }
    return worst;
}

#define TOL 1e-7
#define CHECK(name, x, n, g, f, ctx)                                                               \
    do {                                                                                           \
        double e_ = fd_err(x, n, g, f, ctx);                                                       \
        ok(e_ < TOL, "%s: max relative error %.2e", name, e_);                                     \
    } while (0)

/* ---------------------------------------------------------------- matmul */
struct mm { int N, I, O; double *in, *w, *r, *out; };
static double mm_loss(void *c)
{
    struct mm *m = c;
    r1_matmul_fwd_d(m->out, m->in, m->w, m->N, m->I, m->O, 0);
    return dotv(m->out, m->r, (size_t)m->N * m->O);
}
static void test_matmul(void)
{
    struct mm m = {5, 7, 3, NULL, NULL, NULL, NULL};
    m.in = rnd(35, 1), m.w = rnd(21, 1), m.r = rnd(15, 1), m.out = zeros(15);
    double *din = zeros(35), *dw = zeros(21);
    r1_matmul_bwd_d(din, dw, m.r, m.in, m.w, m.N, m.I, m.O);
    CHECK("matmul d/d input", m.in, 35, din, mm_loss, &m);
    CHECK("matmul d/d weight", m.w, 21, dw, mm_loss, &m);
    free(m.in), free(m.w), free(m.r), free(m.out), free(din), free(dw);
}

/* ---------------------------------------------------------------- rmsnorm */
struct rn { int N, C; double *x, *w, *r, *out, *rstd; };
static double rn_loss(void *c)
{
    struct rn *m = c;
    r1_rmsnorm_fwd_d(m->out, m->rstd, m->x, m->w, m->N, m->C, 1e-6);
    return dotv(m->out, m->r, (size_t)m->N * m->C);
}
static void test_rmsnorm(void)
{
    struct rn m = {4, 9, NULL, NULL, NULL, NULL, NULL};
    m.x = rnd(36, 2), m.w = rnd(9, 1), m.r = rnd(36, 1), m.out = zeros(36), m.rstd = zeros(4);
    rn_loss(&m);
    double *dx = zeros(36), *dw = zeros(9);
    r1_rmsnorm_bwd_d(dx, dw, m.r, m.x, m.w, m.rstd, m.N, m.C);
    CHECK("rmsnorm d/d x", m.x, 36, dx, rn_loss, &m);
    CHECK("rmsnorm d/d weight", m.w, 9, dw, rn_loss, &m);
    free(m.x), free(m.w), free(m.r), free(m.out), free(m.rstd), free(dx), free(dw);
}

/* ---------------------------------------------------------------- rope */
struct rp { int N, nh, ld, dr; double *x, *tmp, *r, *cs, *sn; int *pos; };
static double rp_loss(void *c)
{
    struct rp *m = c;
    size_t n = (size_t)m->N * m->ld;
    memcpy(m->tmp, m->x, n * sizeof(double));
    r1_rope_d(m->tmp + 2, m->N, m->nh, m->ld, 8, m->dr, m->pos, m->cs, m->sn, 0);
    return dotv(m->tmp, m->r, n);
}
static void test_rope(void)
{
    /* 3 tokens, 2 heads of 8 values whose last 6 (from offset 2) are roped: ld = 16 */
    struct rp m = {3, 2, 16, 6, NULL, NULL, NULL, NULL, NULL, NULL};
    int pos[3] = {0, 5, 2};
    m.pos = pos;
    m.x = rnd(48, 1), m.tmp = zeros(48), m.r = rnd(48, 1);
    m.cs = zeros(8 * 3), m.sn = zeros(8 * 3);
    r1_rope_table_d(m.cs, m.sn, 8, 6, 10000.0);
    /* analytic: the gradient is r rotated back (inverse rope) where roped, r elsewhere */
    double *g = malloc(48 * sizeof(double));
    memcpy(g, m.r, 48 * sizeof(double));
    r1_rope_d(g + 2, m.N, m.nh, m.ld, 8, m.dr, m.pos, m.cs, m.sn, 1);
    CHECK("rope (inverse rotation) d/d x", m.x, 48, g, rp_loss, &m);
    /* and the rotation really rotates: position 0 is the identity, others are not */
    double v[16];
    memcpy(v, m.x, sizeof v);
    int p0 = 0;
    r1_rope_d(v + 2, 1, 2, 16, 8, 6, &p0, m.cs, m.sn, 0);
    ok(memcmp(v, m.x, sizeof v) == 0, "rope at position 0 is the identity");
    /* pair (x0, x1) = (1, 0) at position 1, i = 0 rotates by exactly 1 radian */
    double u[6] = {1, 0, 0, 0, 0, 0};
    int p1 = 1;
    r1_rope_d(u, 1, 1, 6, 6, 6, &p1, m.cs, m.sn, 0);
    ok(fabs(u[0] - cos(1.0)) < 1e-15 && fabs(u[1] - sin(1.0)) < 1e-15,
       "rope rotates interleaved pair (0,1) by pos * theta^0");
    free(m.x), free(m.tmp), free(m.r), free(m.cs), free(m.sn), free(g);
}

/* ---------------------------------------------------------------- swiglu */
struct sw { int n; double *g, *u, *r, *a; };
static double sw_loss(void *c)
{
    struct sw *m = c;
    r1_swiglu_fwd_d(m->a, m->g, m->u, m->n);
    return dotv(m->a, m->r, m->n);
}
static void test_swiglu(void)
{
    struct sw m = {17, rnd(17, 3), rnd(17, 1), rnd(17, 1), zeros(17)};
    double *dg = zeros(17), *du = zeros(17);
    r1_swiglu_bwd_d(dg, du, m.r, m.g, m.u, m.n);
    CHECK("swiglu d/d gate", m.g, 17, dg, sw_loss, &m);
    CHECK("swiglu d/d up", m.u, 17, du, sw_loss, &m);
    free(m.g), free(m.u), free(m.r), free(m.a), free(dg), free(du);
}

/* ---------------------------------------------------------------- attention */
struct at { int T, H, dq, dv, ldq, ldk, ldv; double *q, *k, *v, *r, *out, *P; };
static double at_loss(void *c)
{
    struct at *m = c;
    r1_attention_fwd_d(m->out, m->P, m->q, m->ldq, m->k, m->ldk, m->v, m->ldv, m->T, m->H, m->dq,
                       m->dv, 0.37);
    return dotv(m->out, m->r, (size_t)m->T * m->H * m->dv);
}
static void test_attention(int rows)
{
    r1_attention_block_d(rows);
    /* strided layouts as the model uses them: v lives inside a wider kv row */
    struct at m = {5, 2, 4, 3, 8, 8, 2 * (3 + 2), NULL, NULL, NULL, NULL, NULL, NULL};
    size_t nq = 5 * 8, nv = 5 * 10, no = 5 * 6;
    m.q = rnd(nq, 1), m.k = rnd(nq, 1), m.v = rnd(nv, 1), m.r = rnd(no, 1);
    m.out = zeros(no), m.P = zeros(2 * 25);
    at_loss(&m);
    double *dq = zeros(nq), *dk = zeros(nq), *dv = zeros(nv), *dP = zeros(25);
    r1_attention_bwd_d(dq, dk, dv, dP, m.r, m.P, m.q, m.ldq, m.k, m.ldk, m.v, m.ldv, m.T, m.H,
                       m.dq, m.dv, 0.37);
    char name[3][64];
    for (int i = 0; i < 3; i++)
        snprintf(name[i], sizeof name[i], "attention d/d %s (%s)", i == 0 ? "q" : i == 1 ? "k" : "v",
                 rows ? "causal blocks of 2 rows" : "one block");
    CHECK(name[0], m.q, nq, dq, at_loss, &m);
    CHECK(name[1], m.k, nq, dk, at_loss, &m);
    CHECK(name[2], m.v, nv, dv, at_loss, &m);
    /* causality: the first token attends only to itself */
    ok(m.P[0] == 1.0 && m.P[1] == 0.0, "attention is causal");
    free(m.q), free(m.k), free(m.v), free(m.r), free(m.out), free(m.P);
    free(dq), free(dk), free(dv), free(dP);
    r1_attention_block_d(0);
}

/* ---------------------------------------------------------------- cross-entropy */
struct xe { int N, V; double *z, *w; int32_t *t; };
static double xe_loss(void *c)
{
    struct xe *m = c;
    return r1_xent_fwd_bwd_d(NULL, m->z, m->t, m->w, m->N, m->V, 1);
}
static void test_xent(void)
{
    int32_t t[4] = {2, -1, 0, 5};
    double w[4] = {1, 1, 0.5, 2};
    struct xe m = {4, 6, rnd(24, 3), w, t};
    double *dz = zeros(24);
    double L = r1_xent_fwd_bwd_d(dz, m.z, m.t, m.w, m.N, m.V, 1);
    CHECK("cross-entropy d/d logits", m.z, 24, dz, xe_loss, &m);
    /* uniform logits: CE = log V */
    double z0[6] = {0}, one = 1;
    int32_t t0 = 3;
    is_float(r1_xent_fwd_bwd_d(NULL, z0, &t0, &one, 1, 6, 1), log(6.0), 1e-12,
             "cross-entropy of uniform logits is log V");
    ok(L > 0, "weighted cross-entropy is positive");
    free(m.z), free(dz);
}

/* ---------------------------------------------------------------- MoE weights */
struct mw { int N, E, K, norm; double *s, *r, *w; int32_t *sel; };
static double mw_loss(void *c)
{
    struct mw *m = c;
    r1_moe_weights_fwd_d(m->w, m->s, m->sel, m->N, m->E, m->K, m->norm, 2.5);
    return dotv(m->w, m->r, (size_t)m->N * m->K);
}
static void test_moe_weights(void)
{
    int32_t sel[6] = {0, 3, 5, 2, 1, 4};
    for (int norm = 0; norm <= 1; norm++) {
        struct mw m = {2, 6, 3, norm, rnd(12, 0.5), rnd(6, 1), zeros(6), sel};
        for (int i = 0; i < 12; i++)
            m.s[i] += 0.5; /* scores live in (0, 1) */
        double *ds = zeros(12);
        r1_moe_weights_bwd_d(ds, m.r, m.s, m.sel, m.N, m.E, m.K, m.norm, 2.5);
        CHECK(norm ? "moe weights (normalised) d/d scores" : "moe weights (plain) d/d scores",
              m.s, 12, ds, mw_loss, &m);
        if (norm) {
            mw_loss(&m);
            is_float(m.w[0] + m.w[1] + m.w[2], 2.5, 1e-12,
                     "normalised weights sum to routed_scaling_factor");
        }
        free(m.s), free(m.r), free(m.w), free(ds);
    }
}

/* ---------------------------------------------------------------- balance loss */
struct bl { int T, E, K; double *s; int32_t *sel; };
static double bl_loss(void *c)
{
    struct bl *m = c;
    return 0.7 * r1_balance_fwd_d(m->s, m->sel, m->T, m->E, m->K);
}
static void test_balance(void)
{
    int32_t sel[8] = {0, 1, 0, 2, 3, 1, 0, 3};
    struct bl m = {4, 4, 2, rnd(16, 0.4), sel};
    for (int i = 0; i < 16; i++)
        m.s[i] += 0.5;
    double *ds = zeros(16);
    r1_balance_bwd_d(ds, m.s, m.sel, m.T, m.E, m.K, 0.7);
    CHECK("balance loss d/d scores", m.s, 16, ds, bl_loss, &m);
    /* perfectly balanced choices and uniform scores give exactly 1 */
    double u[16];
    for (int i = 0; i < 16; i++)
        u[i] = 0.3;
    int32_t bal[8] = {0, 1, 2, 3, 0, 1, 2, 3};
    is_float(r1_balance_fwd_d(u, bal, 4, 4, 2), 1.0, 1e-12, "balanced routing scores 1");
    free(m.s), free(ds);
}

int main(void)
{
    test_matmul();
    test_rmsnorm();
    test_rope();
    test_swiglu();
    test_attention(0);
    test_attention(2);
    test_xent();
    test_moe_weights();
    test_balance();
    return done_testing();
}
