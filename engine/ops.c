/* ops.c — the model's numerical kernels (see r1_kernels.h for the contract of each).
 *
 * Written over `real` so that the same source builds the float kernels of libr1 and, with
 * R1_REAL_DOUBLE, the double kernels of the finite-difference test.  The matrix products go
 * to OpenBLAS; everything else is plain loops the compiler vectorises.  No allocation. */
#include <config.h>

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "r1_kernels.h"

#ifdef R1_REAL_DOUBLE
#define GEMM cblas_dgemm
#define GEMV cblas_dgemv
#define EXP exp
#define SQRT sqrt
#else
#define GEMM cblas_sgemm
#define GEMV cblas_sgemv
#define EXP expf
#define SQRT sqrtf
#endif

/* ------------------------------------------------------------------ linear */

void R1K(r1_matmul_fwd)(real *out, const real *in, const real *w, int N, int Ci, int Co,
                        int accumulate)
{
    if (N <= 0 || Co <= 0)
        return;
    /* Decoding feeds 1-4 rows.  OpenBLAS 0.3.21's sgemm is erratic there (7 GFLOP/s for one row
     * of 512x1408 against 35 for sgemv, while small outputs are fine), so few rows times a wide
     * output go through gemv. */
    if (N <= 4 && Co >= 512) {
        for (int n = 0; n < N; n++)
            GEMV(CblasRowMajor, CblasNoTrans, Co, Ci, 1, w, Ci, in + (size_t)n * Ci, 1,
                 accumulate ? 1 : 0, out + (size_t)n * Co, 1);
        return;
    }
    GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, N, Co, Ci, 1, in, Ci, w, Ci,
         accumulate ? 1 : 0, out, Co);
}

void R1K(r1_matmul_bwd)(real *din, real *dw, const real *dout, const real *in, const real *w,
                        int N, int Ci, int Co)
{
    if (N <= 0)
        return;
    if (din) /* din[N,Ci] += dout[N,Co] · w[Co,Ci] */
        GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, Ci, Co, 1, dout, Co, w, Ci, 1, din,
             Ci);
    if (dw) /* dw[Co,Ci] += dout^T[Co,N] · in[N,Ci] */
        GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, Co, Ci, N, 1, dout, Co, in, Ci, 1, dw, Ci);
}

/* ------------------------------------------------------------------ RMSNorm */

void R1K(r1_rmsnorm_fwd)(real *out, real *rstd, const real *x, const real *w, int N, int C,
                         real eps)
{
    for (int n = 0; n < N; n++) {
        const real *xn = x + (size_t)n * C;
        real *on = out + (size_t)n * C;
        double ss = 0; /* the mean of squares in double: C is small, the cost is nil */
        for (int i = 0; i < C; i++)
            ss += (double)xn[i] * xn[i];
        real r = (real)(1.0 / sqrt(ss / C + (double)eps));
        for (int i = 0; i < C; i++)
            on[i] = xn[i] * r * w[i];
        if (rstd)
            rstd[n] = r;
    }
}

void R1K(r1_rmsnorm_bwd)(real *dx, real *dw, const real *dout, const real *x, const real *w,
                         const real *rstd, int N, int C)
{
    for (int n = 0; n < N; n++) {
        const real *xn = x + (size_t)n * C, *dn = dout + (size_t)n * C;
        real r = rstd[n];
        /* y = x r w, r = (mean(x^2)+eps)^-1/2:  dx = r (dxhat - x r^2 <dxhat, x> / C) */
        double dot = 0;
        for (int i = 0; i < C; i++)
            dot += (double)dn[i] * w[i] * xn[i];
        real c = (real)(dot / C) * r * r;
        if (dx) {
            real *dxn = dx + (size_t)n * C;
            for (int i = 0; i < C; i++)
                dxn[i] += r * (dn[i] * w[i] - xn[i] * c);
        }
        if (dw)
            for (int i = 0; i < C; i++)
                dw[i] += dn[i] * xn[i] * r;
    }
}

/* ------------------------------------------------------------------ RoPE */

void R1K(r1_rope_table)(real *cs, real *sn, int P, int dr, double theta)
{
    int h = dr / 2;
    for (int i = 0; i < h; i++) {
        double inv = pow(theta, -2.0 * i / dr);
        for (int p = 0; p < P; p++) {
            double a = p * inv;
            cs[(size_t)p * h + i] = (real)cos(a);
            sn[(size_t)p * h + i] = (real)sin(a);
        }
    }
}

/* DESIGN: RoPE rotates interleaved pairs (2i, 2i+1), as DeepSeek's official code and HF's
 * default rope_interleave=True do (HF permutes to halves first; dot products are the same). */
void R1K(r1_rope)(real *x, int N, int nh, int ld, int hs, int dr, const int *pos, const real *cs,
                  const real *sn, int inverse)
{
    int half = dr / 2;
    for (int n = 0; n < N; n++) {
        const real *c = cs + (size_t)pos[n] * half, *s = sn + (size_t)pos[n] * half;
        for (int h = 0; h < nh; h++) {
            real *v = x + (size_t)n * ld + (size_t)h * hs;
            for (int i = 0; i < half; i++) {
                real a = v[2 * i], b = v[2 * i + 1];
                real si = inverse ? -s[i] : s[i];
                v[2 * i] = a * c[i] - b * si;
                v[2 * i + 1] = a * si + b * c[i];
            }
        }
    }
}

/* ------------------------------------------------------------------ SwiGLU */

void R1K(r1_swiglu_fwd)(real *a, const real *g, const real *u, int n)
{
    for (int i = 0; i < n; i++) {
        real sg = 1 / (1 + EXP(-g[i]));
        a[i] = g[i] * sg * u[i];
    }
}

void R1K(r1_swiglu_bwd)(real *dg, real *du, const real *da, const real *g, const real *u, int n)
{
    for (int i = 0; i < n; i++) {
        real sg = 1 / (1 + EXP(-g[i]));
        real silu = g[i] * sg;
        if (dg)
            dg[i] += da[i] * u[i] * sg * (1 + g[i] * (1 - sg));
        if (du)
            du[i] += da[i] * silu;
    }
}

/* ------------------------------------------------------------------ attention */

void R1K(r1_attention_fwd)(real *out, real *P, const real *q, int ldq, const real *k, int ldk,
                           const real *v, int ldv, int T, int H, int dq, int dv, real scale)
{
    for (int h = 0; h < H; h++) {
        real *Ph = P + (size_t)h * T * T;
        /* S[T,T] = scale · q_h k_h^T (the upper triangle is computed and then masked) */
        GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, dq, scale, q + h * dq, ldq,
             k + h * dq, ldk, 0, Ph, T);
        for (int i = 0; i < T; i++) {
            real *row = Ph + (size_t)i * T;
            real mx = row[0];
            for (int j = 1; j <= i; j++)
                mx = row[j] > mx ? row[j] : mx;
            double sum = 0;
            for (int j = 0; j <= i; j++) {
                row[j] = EXP(row[j] - mx);
                sum += row[j];
            }
            real inv = (real)(1.0 / sum);
            for (int j = 0; j <= i; j++)
                row[j] *= inv;
            for (int j = i + 1; j < T; j++)
                row[j] = 0;
        }
        /* out_h[T,dv] = P_h v_h */
        GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, dv, T, 1, Ph, T, v + h * dv, ldv, 0,
             out + h * dv, H * dv);
    }
}

void R1K(r1_attention_bwd)(real *dq, real *dk, real *dv, real *dP, const real *dout,
                           const real *P, const real *q, int ldq, const real *k, int ldk,
                           const real *v, int ldv, int T, int H, int dq_dim, int dv_dim,
                           real scale)
{
    for (int h = 0; h < H; h++) {
        const real *Ph = P + (size_t)h * T * T;
        const real *doh = dout + h * dv_dim;
        int ldo = H * dv_dim;
        /* dv_h[T,dv] += P_h^T · dout_h */
        GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, T, dv_dim, T, 1, Ph, T, doh, ldo, 1,
             dv + h * dv_dim, ldv);
        /* dP[T,T] = dout_h · v_h^T */
        GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, dv_dim, 1, doh, ldo, v + h * dv_dim,
             ldv, 0, dP, T);
        /* dS = P ⊙ (dP − rowsum(P ⊙ dP)); masked entries have P = 0 */
        for (int i = 0; i < T; i++) {
            const real *p = Ph + (size_t)i * T;
            real *d = dP + (size_t)i * T;
            double dot = 0;
            for (int j = 0; j <= i; j++)
                dot += (double)p[j] * d[j];
            for (int j = 0; j <= i; j++)
                d[j] = p[j] * (d[j] - (real)dot);
            for (int j = i + 1; j < T; j++)
                d[j] = 0;
        }
        /* dq_h += scale · dS k_h;  dk_h += scale · dS^T q_h */
        GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, dq_dim, T, scale, dP, T,
             k + h * dq_dim, ldk, 1, dq + h * dq_dim, ldq);
        GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, T, dq_dim, T, scale, dP, T,
             q + h * dq_dim, ldq, 1, dk + h * dq_dim, ldk);
    }
}

/* ------------------------------------------------------------------ cross-entropy */

double R1K(r1_xent_fwd_bwd)(real *dlogits, const real *logits, const int32_t *targets,
                            const real *w, int N, int V, real scale)
{
    double total = 0;
    for (int n = 0; n < N; n++) {
        const real *z = logits + (size_t)n * V;
        real *dz = dlogits ? dlogits + (size_t)n * V : NULL;
        int t = targets[n];
        real wn = w ? w[n] : 1;
        if (t < 0 || wn == 0) {
            if (dz)
                memset(dz, 0, sizeof(real) * V);
            continue;
        }
        real mx = z[0];
        for (int j = 1; j < V; j++)
            mx = z[j] > mx ? z[j] : mx;
        double sum = 0;
        for (int j = 0; j < V; j++)
            sum += exp((double)(z[j] - mx));
        double lse = log(sum) + mx;
        total += wn * (lse - z[t]);
        if (dz) {
            real c = scale * wn;
            for (int j = 0; j < V; j++)
                dz[j] = c * (real)exp((double)z[j] - lse);
            dz[t] -= c;
        }
    }
    return total;
}

/* ------------------------------------------------------------------ MoE gating weights */

void R1K(r1_moe_weights_fwd)(real *wts, const real *s, const int32_t *sel, int N, int E, int K,
                             int norm, real scale)
{
    for (int n = 0; n < N; n++) {
        const real *sn = s + (size_t)n * E;
        const int32_t *e = sel + (size_t)n * K;
        real *w = wts + (size_t)n * K;
        real sum = 0;
        for (int k = 0; k < K; k++)
            sum += sn[e[k]];
        /* DESIGN: weights = unbiased scores / their sum (no epsilon, as the official code),
         * times routed_scaling_factor. */
        real c = norm ? scale / sum : scale;
        for (int k = 0; k < K; k++)
            w[k] = sn[e[k]] * c;
    }
}

void R1K(r1_moe_weights_bwd)(real *ds, const real *dwts, const real *s, const int32_t *sel,
                             int N, int E, int K, int norm, real scale)
{
    for (int n = 0; n < N; n++) {
        const real *sn = s + (size_t)n * E;
        const int32_t *e = sel + (size_t)n * K;
        const real *dw = dwts + (size_t)n * K;
        real *dsn = ds + (size_t)n * E;
        if (!norm) {
            for (int k = 0; k < K; k++)
                dsn[e[k]] += scale * dw[k];
            continue;
        }
        /* w_k = c s_k / S:  ds_j = c/S (dw_j − Σ_k dw_k s_k / S) */
        real S = 0, dot = 0;
        for (int k = 0; k < K; k++) {
            S += sn[e[k]];
            dot += dw[k] * sn[e[k]];
        }
        for (int k = 0; k < K; k++)
            dsn[e[k]] += scale / S * (dw[k] - dot / S);
    }
}

/* ------------------------------------------------------------------ balance loss */

double R1K(r1_balance_fwd)(const real *s, const int32_t *sel, int T, int E, int K)
{
    double loss = 0;
    for (int i = 0; i < E; i++) {
        int cnt = 0;
        double P = 0;
        for (int t = 0; t < T; t++) {
            const real *st = s + (size_t)t * E;
            double tot = 0;
            for (int j = 0; j < E; j++)
                tot += st[j];
            P += st[i] / tot;
            for (int k = 0; k < K; k++)
                cnt += sel[(size_t)t * K + k] == i;
        }
        double f = (double)E / ((double)K * T) * cnt;
        loss += f * (P / T);
    }
    return loss;
}

void R1K(r1_balance_bwd)(real *ds, const real *s, const int32_t *sel, int T, int E, int K,
                         real coef)
{
    /* g_i = coef · f_i / T is dL/ds'_{t,i} for every t; s' = s / Σ s gives
     * ds_{t,j} = (g_j − Σ_i g_i s'_{t,i}) / Σ s_t. */
    double g[E > 0 ? E : 1];
    for (int i = 0; i < E; i++)
        g[i] = 0;
    for (size_t a = 0; a < (size_t)T * K; a++)
        g[sel[a]] += 1;
    for (int i = 0; i < E; i++)
        g[i] = coef * (double)E / ((double)K * T) * g[i] / T;
    for (int t = 0; t < T; t++) {
        const real *st = s + (size_t)t * E;
        double tot = 0, dot = 0;
        for (int j = 0; j < E; j++)
            tot += st[j];
        for (int i = 0; i < E; i++)
            dot += g[i] * st[i] / tot;
        for (int j = 0; j < E; j++)
            ds[(size_t)t * E + j] += (real)((g[j] - dot) / tot);
    }
}
