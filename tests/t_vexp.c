/* t_vexp.c — the float kernels whose exponentials run in 16 lanes on the AVX-512 path
 * (engine/ops.c: SwiGLU forward and backward, the attention softmax) against the same kernels
 * on the portable path (libm's expf): within a few ulp over every tail of 16 lanes, inputs
 * from -120 to 120 (sigmoid saturating to 0 and 1, exp underflowing to 0), NaN kept; the
 * attention's probabilities sum to 1 per row and stay 0 above the diagonal.  Skipped by name
 * where the machine has no AVX-512 path.
 *
 * Also attention with its four products on the bf16 GEMM (r1__attention_fwd16 / bwd16, BF16
 * mixed-precision training) against the fp32 kernels, on every path: outputs and gradients
 * within the rounding of the operands to bf16 (2^-7 of the size of the terms, with margin),
 * rows of P summing to 1 and zero above the diagonal, and the same bits on 1 and 2 threads;
 * and over a batch of sequences in one loop (forward.c's), bit for bit as one at a time; and
 * by causal blocks of rows against whole-T products (bf16: bit for bit).
 *
 * And RMSNorm forward and backward (rows four at a time, 16 lanes on the AVX-512 path) on
 * every path, bit for bit against the plain loops written out here, over every tail of 16
 * columns, of 8 lanes and of four rows, accumulating into dx and dw.
 *
 * And the cross-entropy's rows on 2 threads, bit for bit as one row at a time. */
#include <config.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "r1.h"
#include "r1_gemm16.h"
#include "r1_kernels.h"
#include "r1_rng.h"
#include "tap.h"

/* |a - b| in units of the last place of b (relative, with an absolute floor of 1e-30). */
static double ulps(float a, float b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b) ? 0 : INFINITY;
    if (a == b)
        return 0;
    double d = fabs((double)a - b), u = fmax(fabs((double)b) * 0x1p-23, 1e-30);
    return d / u;
}

static float *randv(r1_rng *rng, int n, double amp)
{
    float *p = malloc(sizeof(float) * (size_t)n);
    for (int i = 0; i < n; i++)
        p[i] = (float)((r1_rng_uniform(rng) * 2 - 1) * amp);
    return p;
}

/* The largest |a - b| over n values, relative to the largest |b|. */
static double rel(const float *a, const float *b, int n)
{
    double d = 0, m = 1e-30;
    for (int i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        m = fmax(m, fabs((double)b[i]));
    }
    return d / m;
}

static void attention16(void)
{
    r1_error err;
    r1_isa best = r1_isa_best();
    r1_rng rng;
    r1_rng_seed(&rng, 11);
    int T = 61, H = 3, dq = 24, dv = 16, nq = T * H * dq, nv = T * H * dv;
    float *q = randv(&rng, nq, 2), *k = randv(&rng, nq, 2), *v = randv(&rng, nv, 1);
    float *dout = randv(&rng, nv, 1), *scratch = malloc(sizeof(float) * 16 * T * T);
    for (int path = R1_ISA_PORTABLE; path <= (int)best; path++) {
        if (r1_isa_set((r1_isa)path, &err) != R1_OK)
            continue;
        float *o[3], *P[3], *g[3][3];
        for (int r = 0; r < 3; r++) { /* fp32; bf16 on 2 threads; bf16 on 1 */
            o[r] = malloc(sizeof(float) * nv);
            P[r] = malloc(sizeof(float) * H * T * T);
            for (int c = 0; c < 3; c++)
                g[r][c] = calloc((size_t)(c < 2 ? nq : nv), sizeof(float));
            r1_set_threads(r == 2 ? 1 : 2);
            (r ? r1__attention_fwd16 : r1_attention_fwd)(o[r], P[r], q, H * dq, k, H * dq, v,
                                                        H * dv, T, H, dq, dv, 0.2f);
            (r ? r1__attention_bwd16 : r1_attention_bwd)(g[r][0], g[r][1], g[r][2], scratch, dout,
                                                        P[r], q, H * dq, k, H * dq, v, H * dv, T,
                                                        H, dq, dv, 0.2f);
        }
        r1_set_threads(2);
        double eo = rel(o[1], o[0], nv), ep = rel(P[1], P[0], H * T * T);
        double eg = fmax(rel(g[1][0], g[0][0], nq), fmax(rel(g[1][1], g[0][1], nq),
                                                          rel(g[1][2], g[0][2], nv)));
        double worst_sum = 0;
        int upper = 0;
        for (int h = 0; h < H; h++)
            for (int i = 0; i < T; i++) {
                double sum = 0;
                for (int c = 0; c < T; c++) {
                    float x = P[1][((size_t)h * T + i) * T + c];
                    sum += x;
                    upper += c > i && x != 0;
                }
                worst_sum = fmax(worst_sum, fabs(sum - 1));
            }
        ok(eo <= 0x1p-5 && ep <= 0x1p-5 && eg <= 0x1p-5,
           "%s: bf16 attention within bf16 rounding of fp32 (out %.2g, P %.2g, grads %.2g of "
           "their largest)", r1_isa_name((r1_isa)path), eo, ep, eg);
        ok(eo > 0 && worst_sum <= 1e-5 && upper == 0,
           "%s: ... its products are bf16 (not fp32's bits), P's rows sum to 1 (off by %.2g), "
           "zero above the diagonal", r1_isa_name((r1_isa)path), worst_sum);
        int same = !memcmp(o[1], o[2], sizeof(float) * nv) &&
                   !memcmp(P[1], P[2], sizeof(float) * H * T * T);
        for (int c = 0; c < 3; c++)
            same &= !memcmp(g[1][c], g[2][c], sizeof(float) * (c < 2 ? nq : nv));
        ok(same, "%s: bf16 attention gives the same bits on 1 and 2 threads",
           r1_isa_name((r1_isa)path));
        for (int r = 0; r < 3; r++) {
            free(o[r]), free(P[r]);
            for (int c = 0; c < 3; c++)
                free(g[r][c]);
        }
    }
    r1_isa_set(best, &err);
    free(q), free(k), free(v), free(dout), free(scratch);
}

/* A row's 8 lanes summed in pairs, as ops.c sums them. */
static double lanes8(const double *v)
{
    return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
}

/* The RMSNorm as its plain loops: each row's sums in double, element i into lane i % 8 in
 * order, the lanes then in pairs. */
static void rms_plain(float *y, float *rstd, float *dx, float *dw, const float *x,
                      const float *w, const float *dy, int N, int C, float eps)
{
    for (int n = 0; n < N; n++) {
        const float *xn = x + (size_t)n * C, *dn = dy + (size_t)n * C;
        double ssl[8] = {0}, dotl[8] = {0};
        for (int i = 0; i < C; i++)
            ssl[i % 8] += (double)xn[i] * xn[i];
        double ss = lanes8(ssl);
        float r = (float)(1.0 / sqrt(ss / C + (double)eps));
        rstd[n] = r;
        for (int i = 0; i < C; i++)
            y[(size_t)n * C + i] = xn[i] * r * w[i];
        for (int i = 0; i < C; i++)
            dotl[i % 8] += (double)dn[i] * w[i] * xn[i];
        float c = (float)(lanes8(dotl) / C) * r * r;
        for (int i = 0; i < C; i++) {
            float t = dn[i] * w[i] - xn[i] * c;
            dx[(size_t)n * C + i] += r * t;
        }
    }
    for (int n = 0; n < N; n++)
        for (int i = 0; i < C; i++) {
            float t = dy[(size_t)n * C + i] * x[(size_t)n * C + i];
            dw[i] += t * rstd[n];
        }
}

/* The sums themselves (r1_dots: the RMSNorm's, the MoE gates' gradients), in double, bit for
 * bit against lanes summed here: 1 to 4 rows, with and without the shared weights, every tail
 * of 8 (the order changes the last bits of a third of such sums, which the float outputs above
 * mostly round away). */
static int rms_sums(int *tried)
{
    r1_rng rng;
    r1_rng_seed(&rng, 13);
    int bad = 0;
    for (int C = 1; C <= 70; C += 3)
        for (int rows = 1; rows <= 4; rows++)
            for (int shared = 0; shared < 2; shared++) {
                float *a = randv(&rng, rows * C, 3), *b = randv(&rng, rows * C, 2);
                float *c = randv(&rng, rows * C, 1);
                double got[4];
                *tried += rows;
                const float *ap[4], *bp[4], *cp[4];
                for (int r = 0; r < rows; r++)
                    ap[r] = a + r * C, bp[r] = shared ? b : b + r * C, cp[r] = c + r * C;
                r1_dots(got, rows, ap, bp, shared ? cp : NULL, C);
                for (int r = 0; r < rows; r++) {
                    double l[8] = {0};
                    for (int i = 0; i < C; i++)
                        l[i % 8] += shared ? (double)a[r * C + i] * b[i] * c[r * C + i]
                                           : (double)a[r * C + i] * b[r * C + i];
                    double want = lanes8(l);
                    bad += memcmp(&got[r], &want, sizeof want) != 0;
                }
                free(a), free(b), free(c);
            }
    return bad;
}

static void rmsnorm(r1_isa best)
{
    r1_error err;
    r1_rng rng;
    r1_rng_seed(&rng, 11);
    static const int shapes[][2] = {{1, 1},  {3, 17},  {4, 16},   {5, 33}, {7, 64},
                                    {9, 70}, {13, 15}, {300, 96}, {61, 512}};
    for (int p = 0; p < 2; p++) {
        r1_isa path = p ? best : R1_ISA_PORTABLE;
        if (p && best == R1_ISA_PORTABLE)
            break;
        r1_isa_set(path, &err);
        int bad = 0, tried = 0;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            int N = shapes[s][0], C = shapes[s][1];
            size_t nc = (size_t)N * C;
            float *x = randv(&rng, (int)nc, 3), *dy = randv(&rng, (int)nc, 1);
            float *w = randv(&rng, C, 2), *dx0 = randv(&rng, (int)nc, 1), *dw0 = randv(&rng, C, 1);
            float *y[2], *rs[2], *dx[2], *dw[2];
            for (int k = 0; k < 2; k++) {
                y[k] = malloc(sizeof(float) * nc);
                rs[k] = malloc(sizeof(float) * (size_t)N);
                dx[k] = malloc(sizeof(float) * nc);
                dw[k] = malloc(sizeof(float) * (size_t)C);
                memcpy(dx[k], dx0, sizeof(float) * nc);
                memcpy(dw[k], dw0, sizeof(float) * (size_t)C);
            }
            rms_plain(y[0], rs[0], dx[0], dw[0], x, w, dy, N, C, 1e-6f);
            r1_rmsnorm_fwd(y[1], rs[1], x, w, N, C, 1e-6f);
            r1_rmsnorm_bwd(dx[1], dw[1], dy, x, w, rs[1], N, C);
            tried++;
            bad += memcmp(y[0], y[1], sizeof(float) * nc) != 0 ||
                   memcmp(rs[0], rs[1], sizeof(float) * (size_t)N) != 0 ||
                   memcmp(dx[0], dx[1], sizeof(float) * nc) != 0 ||
                   memcmp(dw[0], dw[1], sizeof(float) * (size_t)C) != 0;
            for (int k = 0; k < 2; k++)
                free(y[k]), free(rs[k]), free(dx[k]), free(dw[k]);
            free(x), free(dy), free(w), free(dx0), free(dw0);
        }
        ok(bad == 0, "%s: RMSNorm forward and backward give the plain loops' bits (%d of %d "
                     "shapes differ)", r1_isa_name(path), bad, tried);
        int sums_tried = 0, sums = rms_sums(&sums_tried);
        ok(sums == 0, "%s: r1_dots's sums in double give the plain lanes' bits (%d of %d "
                      "differ)", r1_isa_name(path), sums, sums_tried);
    }
    r1_isa_set(best, &err);
}

/* r1__attention_fwd_seqs / bwd_seqs (forward.c's attention over a micro-batch, its B·H heads
 * in one loop) against the one-sequence kernels called sequence by sequence: the same bits, in
 * fp32 and in bf16, on 2 threads, with row strides wider than the heads need (q, k, v inside
 * wider rows) and gradients accumulated onto nonzero values. */
static void attention_seqs(void)
{
    r1_rng rng;
    r1_rng_seed(&rng, 12);
    int B = 5, T = 37, H = 3, dq = 24, dv = 16, ldq = H * dq + 5, ldv = H * dv + 3;
    int nq = B * T * ldq, nv = B * T * ldv, no = B * T * H * dv, np = B * H * T * T;
    float *q = randv(&rng, nq, 2), *k = randv(&rng, nq, 2), *v = randv(&rng, nv, 1);
    float *dout = randv(&rng, no, 1), *g0 = randv(&rng, nq, 1), *gv0 = randv(&rng, nv, 1);
    float *scratch = malloc(sizeof(float) * 16 * T * T);
    r1_set_threads(2);
    for (int bf = 0; bf < 2; bf++) {
        float *o[2], *P[2], *g[2][3];
        for (int r = 0; r < 2; r++) { /* 0: sequence by sequence, 1: all at once */
            o[r] = malloc(sizeof(float) * no);
            P[r] = malloc(sizeof(float) * np);
            for (int c = 0; c < 3; c++) {
                g[r][c] = malloc(sizeof(float) * (c < 2 ? nq : nv));
                memcpy(g[r][c], c < 2 ? g0 : gv0, sizeof(float) * (c < 2 ? nq : nv));
            }
        }
        for (int b = 0; b < B; b++) {
            size_t r0 = (size_t)b * T;
            (bf ? r1__attention_fwd16 : r1_attention_fwd)(
                o[0] + r0 * H * dv, P[0] + (size_t)b * H * T * T, q + r0 * ldq, ldq,
                k + r0 * ldq, ldq, v + r0 * ldv, ldv, T, H, dq, dv, 0.2f);
            (bf ? r1__attention_bwd16 : r1_attention_bwd)(
                g[0][0] + r0 * ldq, g[0][1] + r0 * ldq, g[0][2] + r0 * ldv, scratch,
                dout + r0 * H * dv, P[0] + (size_t)b * H * T * T, q + r0 * ldq, ldq,
                k + r0 * ldq, ldq, v + r0 * ldv, ldv, T, H, dq, dv, 0.2f);
        }
        r1__attention_fwd_seqs(bf, o[1], P[1], q, ldq, k, ldq, v, ldv, B, T, H, dq, dv, 0.2f);
        r1__attention_bwd_seqs(bf, g[1][0], g[1][1], g[1][2], scratch, dout, P[1], q, ldq, k,
                               ldq, v, ldv, B, T, H, dq, dv, 0.2f);
        int same = !memcmp(o[0], o[1], sizeof(float) * no) &&
                   !memcmp(P[0], P[1], sizeof(float) * np);
        ok(same, "%s attention of %d sequences in one loop: the same output and P bits as "
           "sequence by sequence", bf ? "bf16" : "fp32", B);
        same = 1;
        for (int c = 0; c < 3; c++)
            same &= !memcmp(g[0][c], g[1][c], sizeof(float) * (c < 2 ? nq : nv));
        ok(same, "... and the same gradient bits (dq, dk, dv accumulated)");
        for (int r = 0; r < 2; r++) {
            free(o[r]), free(P[r]);
            for (int c = 0; c < 3; c++)
                free(g[r][c]);
        }
    }
    free(q), free(k), free(v), free(dout), free(g0), free(gv0), free(scratch);
}

/* Attention by causal blocks of query rows (ops.c, r1_attention_block) against whole-T
 * products: on the bf16 GEMM (each head's operands packed once, parts of them per block) the
 * same bits on every path, T = 61 and 256 (r1__gemm16's whole block of K; T = 300, past it,
 * runs whole), gradients accumulated onto nonzero values; fp32 on the row kernels (AVX-512)
 * bit for bit too, on sgemm within fp32 rounding (OpenBLAS may sum another shape in another
 * order).  ops.c's own blocks, and blocks of 8 and 24 (no multiple of 8). */
static void attention_blocks(void)
{
    r1_error err;
    r1_isa best = r1_isa_best();
    r1_rng rng;
    r1_rng_seed(&rng, 13);
    const int Ts[3] = {61, 256, 300}, rows[3] = {0, 8, 24};
    int H = 2, dq = 24, dv = 16;
    r1_set_threads(2);
    for (int ti = 0; ti < 3; ti++) {
        int T = Ts[ti], nq = T * H * dq, nv = T * H * dv, np = H * T * T;
        float *q = randv(&rng, nq, 2), *k = randv(&rng, nq, 2), *v = randv(&rng, nv, 1);
        float *dout = randv(&rng, nv, 1), *g0 = randv(&rng, nq, 1), *gv0 = randv(&rng, nv, 1);
        float *scratch = malloc(sizeof(float) * 16 * T * T);
        for (int path = R1_ISA_PORTABLE - 1; path <= (int)best; path++) {
            int bf = path >= R1_ISA_PORTABLE; /* the first round: fp32 (sgemm) */
            if (bf && r1_isa_set((r1_isa)path, &err) != R1_OK)
                continue;
            float *o[2], *P[2], *g[2][3];
            int same = 1;
            double worst = 0;
            for (int b = 0; b < 3; b++) {
                int r = b > 0; /* 0: whole T; 1: this block */
                r1_attention_block(b ? rows[b - 1] : T);
                o[r] = malloc(sizeof(float) * nv);
                P[r] = malloc(sizeof(float) * np);
                for (int c = 0; c < 3; c++) {
                    g[r][c] = malloc(sizeof(float) * (c < 2 ? nq : nv));
                    memcpy(g[r][c], c < 2 ? g0 : gv0, sizeof(float) * (c < 2 ? nq : nv));
                }
                (bf ? r1__attention_fwd16 : r1_attention_fwd)(o[r], P[r], q, H * dq, k, H * dq,
                                                             v, H * dv, T, H, dq, dv, 0.2f);
                (bf ? r1__attention_bwd16 : r1_attention_bwd)(g[r][0], g[r][1], g[r][2], scratch,
                                                             dout, P[r], q, H * dq, k, H * dq, v,
                                                             H * dv, T, H, dq, dv, 0.2f);
                if (!r)
                    continue;
                same &= !memcmp(o[0], o[1], sizeof(float) * nv) &&
                        !memcmp(P[0], P[1], sizeof(float) * np);
                for (int c = 0; c < 3; c++)
                    same &= !memcmp(g[0][c], g[1][c], sizeof(float) * (c < 2 ? nq : nv));
                worst = fmax(worst, fmax(rel(o[1], o[0], nv), rel(P[1], P[0], np)));
                for (int c = 0; c < 3; c++)
                    worst = fmax(worst, rel(g[1][c], g[0][c], c < 2 ? nq : nv));
                free(o[1]), free(P[1]);
                for (int c = 0; c < 3; c++)
                    free(g[1][c]);
            }
            r1_attention_block(0);
            if (bf)
                ok(same, "%s: bf16 attention by causal blocks (its own, 8, 24 rows) gives the "
                   "whole products' bits, T = %d", r1_isa_name((r1_isa)path), T);
            else
                ok(same, "fp32 attention by causal blocks (its own, 8, 24 rows) on the row "
                   "kernels gives the whole products' bits, T = %d (%s)", T,
                   r1_isa_name((r1_isa)path));
            free(o[0]), free(P[0]);
            for (int c = 0; c < 3; c++)
                free(g[0][c]);
        }
        r1_isa_set(best, &err);
        free(q), free(k), free(v), free(dout), free(g0), free(gv0), free(scratch);
    }
}

/* fp32 attention of T tokens padded to Tp (the padding's gradients zero, as a padded batch's
 * are) gives the unpadded rows' bits on the row kernels (ops.c: each sum's order fixed by the
 * head's width or by t), so a data-parallel rank that pads its half of a batch less matches
 * one process.  (sgemm's would not: OpenBLAS's AVX-512 kernels pick a small-matrix kernel by
 * size, which sums in another order.)  Skipped by name where the CPU lacks the path. */
static void attention_padding(r1_isa path)
{
    r1_isa was = r1_isa_active();
    if (r1_isa_set(path, NULL) != R1_OK) {
        skip("fp32 attention padded: this CPU has no path %s", r1_isa_name(path));
        r1_isa_set(was, NULL);
        return;
    }
    r1_rng rng;
    r1_rng_seed(&rng, 14);
    const int T = 100, Tp = 250, H = 2, dq = 48, dv = 32, ldq = H * dq, ldv = H * dv;
    float *q = randv(&rng, Tp * ldq, 2), *k = randv(&rng, Tp * ldq, 2);
    float *v = randv(&rng, Tp * ldv, 1);
    float *dout = randv(&rng, Tp * ldv, 1), *scratch = malloc(sizeof(float) * 16 * Tp * Tp);
    memset(dout + T * ldv, 0, sizeof(float) * (Tp - T) * ldv);
    r1_set_threads(2);
    float *o[2], *P[2], *g[2][3];
    int Ts[2] = {T, Tp};
    for (int r = 0; r < 2; r++) {
        int n = Ts[r];
        o[r] = malloc(sizeof(float) * n * ldv);
        P[r] = malloc(sizeof(float) * H * n * n);
        for (int c = 0; c < 3; c++)
            g[r][c] = calloc((size_t)n * (c < 2 ? ldq : ldv), sizeof(float));
        r1_attention_fwd(o[r], P[r], q, ldq, k, ldq, v, ldv, n, H, dq, dv, 0.2f);
        r1_attention_bwd(g[r][0], g[r][1], g[r][2], scratch, dout, P[r], q, ldq, k, ldq, v, ldv,
                         n, H, dq, dv, 0.2f);
    }
    int same = !memcmp(o[0], o[1], sizeof(float) * T * ldv);
    for (int h = 0; h < H; h++)
        for (int i = 0; i < T; i++)
            same &= !memcmp(P[0] + ((size_t)h * T + i) * T, P[1] + ((size_t)h * Tp + i) * Tp,
                            sizeof(float) * T);
    for (int c = 0; c < 3; c++) {
        same &= !memcmp(g[0][c], g[1][c], sizeof(float) * T * (c < 2 ? ldq : ldv));
    }
    ok(same, "%s: fp32 attention of %d tokens padded to %d: the same output, P and gradient "
       "bits for the %d", r1_isa_name(path), T, Tp, T);
    r1_isa_set(was, NULL);
    for (int r = 0; r < 2; r++) {
        free(o[r]), free(P[r]);
        for (int c = 0; c < 3; c++)
            free(g[r][c]);
    }
    free(q), free(k), free(v), free(dout), free(scratch);
}

/* The cross-entropy's rows side by side on 2 threads: the bits of the rows one by one, their
 * terms added in row order (rows that do not count and rows of weight 0 among them). */
static void xent_threads(void)
{
    enum { N = 300, V = 512 };
    float *z = malloc(sizeof(float) * N * V * 3), *d2 = z + N * V, *d1 = d2 + N * V, wf[N];
    int32_t tt[N];
    for (int i = 0; i < N * V; i++)
        z[i] = (float)(((i * 7919) % 1001) - 500) * 0.01f;
    for (int n = 0; n < N; n++) {
        tt[n] = n % 11 == 0 ? -1 : (n * 37) % V;
        wf[n] = n % 13 == 0 ? 0 : 0.5f + (float)(n % 3);
    }
    r1_set_threads(2);
    double L2 = r1_xent_fwd_bwd(d2, z, tt, wf, N, V, 0.01f);
    r1_set_threads(1);
    double L1 = 0;
    for (int n = 0; n < N; n++)
        L1 += r1_xent_fwd_bwd(d1 + n * V, z + n * V, tt + n, wf + n, 1, V, 0.01f);
    ok(memcmp(&L1, &L2, sizeof L1) == 0 && memcmp(d1, d2, sizeof(float) * N * V) == 0,
       "cross-entropy over %d rows on 2 threads: the bits of the rows one by one (%.17g)", N, L2);
    free(z);
}

int main(void)
{
    r1_error err;
    r1_isa best = r1_isa_best();
    attention16();
    attention_seqs();
    attention_blocks();
    xent_threads();
    attention_padding(best);
    if (best > R1_ISA_AVX2) /* the AVX2 path's row kernels are its own */
        attention_padding(R1_ISA_AVX2);
    rmsnorm(best);
    if (best < R1_ISA_AVX512BF16) {
        skip("the 16-lane exponentials: path %s has none (the portable path is libm's)",
             r1_isa_name(best));
        return done_testing();
    }
    r1_rng rng;
    r1_rng_seed(&rng, 7);
    enum { N = 16 * 37 + 5 };
    float *g = malloc(sizeof(float) * N), *u = malloc(sizeof(float) * N);
    float *da = malloc(sizeof(float) * N), *a[2], *dg[2], *du[2];
    for (int i = 0; i < N; i++) {
        g[i] = (float)((r1_rng_uniform(&rng) * 2 - 1) * (i % 5 == 0 ? 120 : 8));
        u[i] = (float)(r1_rng_uniform(&rng) * 2 - 1);
        da[i] = (float)(r1_rng_uniform(&rng) * 2 - 1);
    }
    g[3] = NAN;
    for (int p = 0; p < 2; p++) {
        a[p] = calloc(N, sizeof(float));
        dg[p] = calloc(N, sizeof(float));
        du[p] = calloc(N, sizeof(float));
        r1_isa_set(p ? best : R1_ISA_PORTABLE, &err);
        for (int n = 1; n <= N; n += n < 40 ? 1 : 97) { /* every tail; the first n elements */
            r1_swiglu_fwd(a[p], g, u, n);
            memset(dg[p], 0, sizeof(float) * N);
            memset(du[p], 0, sizeof(float) * N);
            r1_swiglu_bwd(dg[p], du[p], da, g, u, n);
        }
        r1_swiglu_fwd(a[p], g, u, N);
        memset(dg[p], 0, sizeof(float) * N);
        memset(du[p], 0, sizeof(float) * N);
        r1_swiglu_bwd(dg[p], du[p], da, g, u, N);
    }
    double wa = 0, wg = 0, wu = 0;
    for (int i = 0; i < N; i++) {
        if (i == 3)
            continue;
        wa = fmax(wa, ulps(a[1][i], a[0][i]));
        /* the products below round in the same order; the sigmoid's few ulp carry through,
         * and 1 - sg loses digits where sg is near 1: compare with the terms' size */
        double sg0 = 1 / (1 + exp(-(double)g[i]));
        double scale = fabs((double)da[i] * u[i]) * (1 + fabs((double)g[i]) * (1 - sg0 + 1e-7));
        wg = fmax(wg, fabs((double)dg[1][i] - dg[0][i]) / fmax(scale * 0x1p-23, 1e-30));
        wu = fmax(wu, ulps(du[1][i], du[0][i]));
    }
    ok(wa <= 4 && wu <= 4, "SwiGLU forward and du within 4 ulp of the portable path (%.2g, %.2g)",
       wa, wu);
    ok(wg <= 16, "SwiGLU dg within 16 ulp of its terms' size (%.2g)", wg);
    ok(isnan(a[1][3]) && isnan(dg[1][3]) && isnan(du[1][3]), "a NaN gate stays NaN");

    /* attention: T from 1 to 41, so softmax rows of every length up to 41.  The AVX-512 path
     * also takes fp32 attention's products on r1lab's row kernels (ops.c), which sum the scores
     * in another order than sgemm and scale them after: a score may differ by D = (dq + 1) ·
     * 2^-24 · 0.35 · max Σ|q||k|, a probability then by 2·D (relative, P <= 1) and an output
     * by 2·D plus its own sum's order ((T + 1)·2^-24, Σ P|v| <= 1); on top, the exponentials'
     * 8 and 16 units of 2^-23.  Checked as the worst share of that bound. */
    int H = 2, dq = 8, dv = 4, worst_rows = 0;
    double wp = 0, wo = 0, wsum = 0, sp = 0, so = 0;
    for (int T = 1; T <= 41; T += 4) {
        float *q = malloc(sizeof(float) * T * H * dq), *k = malloc(sizeof(float) * T * H * dq);
        float *v = malloc(sizeof(float) * T * H * dv), *out[2], *P[2];
        for (int i = 0; i < T * H * dq; i++) {
            q[i] = (float)((r1_rng_uniform(&rng) * 2 - 1) * 6);
            k[i] = (float)((r1_rng_uniform(&rng) * 2 - 1) * 6);
        }
        for (int i = 0; i < T * H * dv; i++)
            v[i] = (float)(r1_rng_uniform(&rng) * 2 - 1);
        for (int p = 0; p < 2; p++) {
            out[p] = malloc(sizeof(float) * T * H * dv);
            P[p] = malloc(sizeof(float) * H * T * T);
            r1_isa_set(p ? best : R1_ISA_PORTABLE, &err);
            r1_attention_fwd(out[p], P[p], q, H * dq, k, H * dq, v, H * dv, T, H, dq, dv, 0.35f);
        }
        double mqk = 0; /* max over score entries of Σ|q||k| */
        for (int h = 0; h < H; h++)
            for (int i = 0; i < T; i++)
                for (int c = 0; c <= i; c++) {
                    double sqk = 0;
                    for (int d = 0; d < dq; d++)
                        sqk += fabs(q[(i * H + h) * dq + d] * (double)k[(c * H + h) * dq + d]);
                    mqk = fmax(mqk, sqk);
                }
        double D = (dq + 1) * 0.5 * 0.35 * mqk; /* in units of 2^-23 */
        double bp = 8 + 2 * D, bo = 16 + 2 * D + (T + 1) * 0.5;
        double wp0 = wp, wo0 = wo;
        wp = wo = 0;
        for (int h = 0; h < H; h++)
            for (int i = 0; i < T; i++) {
                double sum = 0;
                for (int c = 0; c < T; c++) {
                    float x = P[1][((size_t)h * T + i) * T + c], y = P[0][((size_t)h * T + i) * T + c];
                    if (c > i)
                        worst_rows += x != 0;
                    sum += x;
                    wp = fmax(wp, fabs((double)x - y) / 0x1p-23); /* P <= 1: absolute, in 2^-23 */
                }
                wsum = fmax(wsum, fabs(sum - 1));
            }
        for (int i = 0; i < T * H * dv; i++)
            wo = fmax(wo, fabs((double)out[1][i] - out[0][i]) / 0x1p-23);
        sp = fmax(sp, wp / bp), so = fmax(so, wo / bo);
        wp = fmax(wp, wp0), wo = fmax(wo, wo0);
        free(q), free(k), free(v);
        for (int p = 0; p < 2; p++)
            free(out[p]), free(P[p]);
    }
    ok(sp <= 1 && so <= 1, "attention: probabilities and outputs within the bound of the "
       "portable path (%.2g and %.2g of it; %.2g and %.2g units of 2^-23)", sp, so, wp, wo);
    ok(wsum <= 1e-5 && worst_rows == 0,
       "attention: every row sums to 1 (off by %.2g at most), zero above the diagonal", wsum);
    r1_isa_set(best, &err);
    for (int p = 0; p < 2; p++)
        free(a[p]), free(dg[p]), free(du[p]);
    free(g), free(u), free(da);
    return done_testing();
}
