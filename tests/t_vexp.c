/* t_vexp.c — the float kernels whose exponentials run in 16 lanes on the AVX-512 path
 * (engine/ops.c: SwiGLU forward and backward, the attention softmax) against the same kernels
 * on the portable path (libm's expf): within a few ulp over every tail of 16 lanes, inputs
 * from -120 to 120 (sigmoid saturating to 0 and 1, exp underflowing to 0), NaN kept; the
 * attention's probabilities sum to 1 per row and stay 0 above the diagonal.  Skipped by name
 * where the machine has no AVX-512 path. */
#include <config.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "r1.h"
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

int main(void)
{
    r1_error err;
    r1_isa best = r1_isa_best();
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

    /* attention: T from 1 to 41, so softmax rows of every length up to 41 */
    int H = 2, dq = 8, dv = 4, worst_rows = 0;
    double wp = 0, wo = 0, wsum = 0;
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
        free(q), free(k), free(v);
        for (int p = 0; p < 2; p++)
            free(out[p]), free(P[p]);
    }
    ok(wp <= 8 && wo <= 16, "attention: probabilities within 8·2^-23 and outputs within 16·2^-23 "
       "of the portable path (%.2g, %.2g)", wp, wo);
    ok(wsum <= 1e-5 && worst_rows == 0,
       "attention: every row sums to 1 (off by %.2g at most), zero above the diagonal", wsum);
    r1_isa_set(best, &err);
    for (int p = 0; p < 2; p++)
        free(a[p]), free(dg[p]), free(du[p]);
    free(g), free(u), free(da);
    return done_testing();
}
