/* ops.c — the model's numerical kernels (see r1_kernels.h for the contract of each).
 *
 * Written over `real` so that the same source builds the float kernels of libr1 and, with
 * R1_REAL_DOUBLE, the double kernels of the finite-difference test.  The matrix products go
 * to OpenBLAS; everything else is plain loops the compiler vectorises.  No allocation, except
 * attention's per-head copies (packed or transposed operands, a few tens of KB), whose absence
 * only sends that head down the plain path. */
#include <config.h>

#include <cblas.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "r1_kernels.h"
#ifndef R1_REAL_DOUBLE
#include "parallel.h"
#include "r1.h"
#include "r1_gemm16.h"
#endif

#ifdef R1_REAL_DOUBLE
#define R1_BLAS(call) call /* the test's double kernels: no address-space guard */
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

/* ------------------------------------------------------------------ exp in 16 lanes */

/* The float kernels' exponentials (SwiGLU's sigmoid, the attention softmax) on AVX-512 when
 * the engine's kernel path has it (R1_ISA avx512bf16 or better): e^x = 2^n · e^r with
 * n = round(x·log2 e), r = x − n·ln 2 in two parts (Cody and Waite), e^r by its Taylor
 * polynomial to degree 7 (|r| <= ln2/2: truncation below 2^-26), then 2^n by vscalefps, which
 * overflows to inf and underflows to 0 as expf does.  Within 2 ulp of the exact value (expf:
 * within 1), so results move in the last bits against the portable path's libm; NaN stays
 * NaN.  perf had expf's calls and the scalar SwiGLU loop at 6% of a small bf16 training step. */
#if !defined(R1_REAL_DOUBLE) && defined(HAVE_AVX512BF16_INTRIN) && defined(__x86_64__)
#include <immintrin.h>
#define VEXP 1
#define V512 __attribute__((target("avx512f")))
/* ... with no product fused into a sum, for code that must round as the scalar loops do */
#define V512X __attribute__((target("avx512f"), optimize("-ffp-contract=off")))

static V512 inline __m512 exp16(__m512 x)
{
    /* max(lo, x) and min(hi, x) return x when it is NaN */
    x = _mm512_min_ps(_mm512_set1_ps(88.8f), _mm512_max_ps(_mm512_set1_ps(-104.0f), x));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145752f), x); /* ln 2, high bits */
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860677e-6f), r);     /* and the rest */
    __m512 p = _mm512_set1_ps(1.0f / 5040);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

static inline __mmask16 first(long n) { return n >= 16 ? 0xffff : (__mmask16)((1u << n) - 1); }

/* 1 / (1 + e^-g) */
static V512 inline __m512 sigmoid16(__m512 g)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    return _mm512_div_ps(one, _mm512_add_ps(one, exp16(_mm512_sub_ps(_mm512_setzero_ps(), g))));
}

static V512 void swiglu_fwd_v(float *a, const float *g, const float *u, long i0, long i1)
{
    for (long i = i0; i < i1; i += 16) {
        __mmask16 m = first(i1 - i);
        __m512 gv = _mm512_maskz_loadu_ps(m, g + i), uv = _mm512_maskz_loadu_ps(m, u + i);
        __m512 sg = sigmoid16(gv);
        _mm512_mask_storeu_ps(a + i, m, _mm512_mul_ps(_mm512_mul_ps(gv, sg), uv));
    }
}

static V512 void swiglu_bwd_v(float *dg, float *du, const float *da, const float *g,
                              const float *u, long i0, long i1)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    for (long i = i0; i < i1; i += 16) {
        __mmask16 m = first(i1 - i);
        __m512 gv = _mm512_maskz_loadu_ps(m, g + i), dav = _mm512_maskz_loadu_ps(m, da + i);
        __m512 sg = sigmoid16(gv);
        if (dg) { /* da u sg (1 + g (1 - sg)), in the scalar loop's order */
            __m512 t = _mm512_mul_ps(_mm512_mul_ps(dav, _mm512_maskz_loadu_ps(m, u + i)), sg);
            t = _mm512_mul_ps(t, _mm512_add_ps(one, _mm512_mul_ps(gv, _mm512_sub_ps(one, sg))));
            _mm512_mask_storeu_ps(dg + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, dg + i), t));
        }
        if (du) {
            __m512 t = _mm512_mul_ps(dav, _mm512_mul_ps(gv, sg));
            _mm512_mask_storeu_ps(du + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, du + i), t));
        }
    }
}

/* row[0..n) = softmax(scale · row[0..n)) in place, the sum in 16 float lanes then a fixed
 * tree.  The scaling rides the pass that finds the largest (it had been a scalar pass of its
 * own): one rounded product, as the scalar path's. */
static V512X void softmax_v(float *row, int n, float scale)
{
    const __m512 sv = _mm512_set1_ps(scale);
    __m512 mx = _mm512_set1_ps(row[0] * scale);
    for (int c = 0; c < n; c += 16) {
        __m512 y = _mm512_mul_ps(_mm512_maskz_loadu_ps(first(n - c), row + c), sv);
        _mm512_mask_storeu_ps(row + c, first(n - c), y);
        mx = _mm512_mask_max_ps(mx, first(n - c), mx, y);
    }
    __m512 mv = _mm512_set1_ps(_mm512_reduce_max_ps(mx)), sum = _mm512_setzero_ps();
    for (int c = 0; c < n; c += 16) {
        __mmask16 m = first(n - c);
        __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, row + c), mv));
        e = _mm512_maskz_mov_ps(m, e);
        sum = _mm512_add_ps(sum, e);
        _mm512_mask_storeu_ps(row + c, m, e);
    }
    __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
    for (int c = 0; c < n; c += 16)
        _mm512_mask_storeu_ps(row + c, first(n - c),
                              _mm512_mul_ps(_mm512_maskz_loadu_ps(first(n - c), row + c), inv));
}

/* d[0..n) = scale · (p · (d − dot)), three rounded operations as the scalar loops do them;
 * d[n..T) = 0. */
static V512X void ds_v(float *d, const float *p, int n, float dot, float scale, int T)
{
    const __m512 dv = _mm512_set1_ps(dot), sv = _mm512_set1_ps(scale);
    for (int c = 0; c < n; c += 16) {
        __mmask16 m = first(n - c);
        __m512 t = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, d + c), dv);
        t = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, p + c), t);
        _mm512_mask_storeu_ps(d + c, m, _mm512_mul_ps(t, sv));
    }
    memset(d + n, 0, sizeof(float) * (size_t)(T - n));
}

static int vexp_on(void) { return r1_isa_active() >= R1_ISA_AVX512BF16; }
#endif

/* ------------------------------------------------------------------ linear */

/* out[N, Co] (row stride ldo) = or += in[N, Ci] · w[Co, Ci]^T, on the calling thread.
 * Decoding feeds 1-4 rows.  OpenBLAS 0.3.21's sgemm is erratic there (7 GFLOP/s for one row of
 * 512x1408 against 35 for sgemv, while small outputs are fine), so few rows times a wide output
 * (wide: the whole product's, decided by the caller, so that every piece of it takes the same
 * path) go through gemv. */
static void mm_serial(real *out, int ldo, const real *in, const real *w, int N, int Ci, int Co,
                      int accumulate, int gemv, int rows)
{
#ifndef R1_REAL_DOUBLE
    /* a decoding step's rows (r1__matmul_fwd_decode): r1lab's dot products, the same bits for
     * a row whatever else is in the batch.  Other products come here only on the paths
     * without r1__gemm32 (avx2, portable), where sgemm gives a row other bits by its place in
     * the product and the product's size (Haswell kernels: the micro-kernel's rows; SkylakeX
     * and Cooperlake: another kernel for small products), so a data-parallel run there matches
     * one process to ulps, not bits (t_mpi.sh) */
    if (rows && r1__matmul_f32_rows(out, ldo, in, w, N, Ci, Co, accumulate))
        return;
#else
    (void)rows;
#endif
    if (gemv) {
        for (int n = 0; n < N; n++)
            R1_BLAS(GEMV(CblasRowMajor, CblasNoTrans, Co, Ci, 1, w, Ci, in + (size_t)n * Ci, 1,
                 accumulate ? 1 : 0, out + (size_t)n * ldo, 1));
        return;
    }
    R1_BLAS(GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, N, Co, Ci, 1, in, Ci, w, Ci,
         accumulate ? 1 : 0, out, ldo));
}

static int wants_gemv(int N, int Co) { return N <= 4 && Co >= 512; }

/* din[N,Ci] += dout[N,Co] · w[Co,Ci] */
static void mm_bwd_in(real *din, const real *dout, const real *w, int N, int Ci, int Co, int ldo)
{
    R1_BLAS(GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, Ci, Co, 1, dout, ldo, w, Ci, 1, din,
         Ci));
}

/* dw[Co,Ci] += dout^T[Co,N] · in[N,Ci] (dout's rows ldo apart) */
static void mm_bwd_w(real *dw, const real *dout, const real *in, int N, int Ci, int Co, int ldo)
{
    R1_BLAS(GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, Co, Ci, N, 1, dout, ldo, in, Ci, 1, dw,
         Ci));
}

#ifndef R1_REAL_DOUBLE
typedef struct {
    real *out, *din, *dw;
    const real *in, *w, *dout;
    int N, Ci, Co, acc, gemv, rows;
    int pa, pb; /* pieces: forward (rows or outputs); backward din rows and dw rows */
} mm_job;

static void fwd_rows(void *ctx, int i, int tid)
{
    (void)tid;
    mm_job *j = ctx;
    int lo, hi;
    r1__piece(j->N, j->pa, i, 1, &lo, &hi);
    if (hi > lo)
        mm_serial(j->out + (size_t)lo * j->Co, j->Co, j->in + (size_t)lo * j->Ci, j->w, hi - lo,
                  j->Ci, j->Co, j->acc, j->gemv, j->rows);
}

static void fwd_cols(void *ctx, int i, int tid)
{
    (void)tid;
    mm_job *j = ctx;
    int lo, hi;
    r1__piece(j->Co, j->pa, i, 16, &lo, &hi);
    if (hi > lo)
        mm_serial(j->out + lo, j->Co, j->in, j->w + (size_t)lo * j->Ci, j->N, j->Ci, hi - lo,
                  j->acc, j->gemv, j->rows);
}

/* items [0, pa): din row pieces; [pa, pa + pb): dw row pieces */
static void bwd_part(void *ctx, int i, int tid)
{
    (void)tid;
    mm_job *j = ctx;
    int lo, hi;
    if (i < j->pa) {
        r1__piece(j->N, j->pa, i, 1, &lo, &hi);
        if (hi > lo)
            mm_bwd_in(j->din + (size_t)lo * j->Ci, j->dout + (size_t)lo * j->Co, j->w, hi - lo,
                      j->Ci, j->Co, j->Co);
        return;
    }
    r1__piece(j->Co, j->pb, i - j->pa, 1, &lo, &hi);
    if (hi > lo)
        mm_bwd_w(j->dw + (size_t)lo * j->Ci, j->dout + lo, j->in, j->N, j->Ci, hi - lo, j->Co);
}
#endif

static void matmul_fwd(real *out, const real *in, const real *w, int N, int Ci, int Co,
                       int accumulate, int dec)
{
    if (N <= 0 || Co <= 0)
        return;
#ifndef R1_REAL_DOUBLE
    /* training's and prompts' rows on r1lab's fp32 GEMM where the path has it (gemm32.c: its
     * rows' bits are their own, and it outruns sgemm there); decoding's few rows on the dot
     * products, which read each weight once per 4 tokens */
    r1_gop A = {in, Ci, 0, 0}, B = {w, Ci, 1, 0};
    if (!dec && r1__gemm32(out, Co, N, Co, Ci, A, B, accumulate))
        return;
#endif
    int gemv = wants_gemv(N, Co);
#ifndef R1_REAL_DOUBLE
    long work = (long)N * Ci * Co;
    int rows = r1__pieces(work, N); /* many rows: cut the rows; few: cut the outputs */
    int parts = rows > 1 ? rows : r1__pieces(work, Co);
    if (parts > 1) {
        mm_job j = {out, NULL, NULL, in, w, NULL, N, Ci, Co, accumulate, gemv, dec, parts, 0};
        r1__parallel_for_work(work, parts, rows > 1 ? fwd_rows : fwd_cols, &j);
        return;
    }
#endif
    mm_serial(out, Co, in, w, N, Ci, Co, accumulate, gemv, dec);
}

void R1K(r1_matmul_fwd)(real *out, const real *in, const real *w, int N, int Ci, int Co,
                        int accumulate)
{
    matmul_fwd(out, in, w, N, Ci, Co, accumulate, 0);
}

#ifndef R1_REAL_DOUBLE
void r1__matmul_fwd_decode(float *out, const float *in, const float *w, int N, int Ci, int Co,
                           int accumulate)
{
    matmul_fwd(out, in, w, N, Ci, Co, accumulate, 1);
}
#endif

void R1K(r1_matmul_bwd)(real *din, real *dw, const real *dout, const real *in, const real *w,
                        int N, int Ci, int Co)
{
    if (N <= 0)
        return;
#ifndef R1_REAL_DOUBLE
    if (r1__gemm32_available()) { /* din[N,Ci] += dout[N,Co] · w[Co,Ci]; dw += dout^T · in */
        r1_gop dy = {dout, Co, 0, 0}, dyt = {dout, Co, 1, 0}, W = {w, Ci, 0, 0}, X = {in, Ci, 0, 0};
        if (din)
            r1__gemm32(din, Ci, N, Ci, Co, dy, W, 1);
        if (dw)
            r1__gemm32(dw, Ci, Co, Ci, N, dyt, X, 1);
        return;
    }
    long work = (long)N * Ci * Co;
    int pa = din ? r1__pieces(work, N) : 0, pb = dw ? r1__pieces(work, Co) : 0;
    if (pa > 1 || pb > 1) {
        mm_job j = {NULL, din, dw, in, w, dout, N, Ci, Co, 0, 0, 0, pa, pb};
        r1__parallel_for_work(work, pa + pb, bwd_part, &j);
        return;
    }
#endif
    if (din)
        mm_bwd_in(din, dout, w, N, Ci, Co, Co);
    if (dw)
        mm_bwd_w(dw, dout, in, N, Ci, Co, Co);
}

/* ------------------------------------------------------------------ RMSNorm */

/* The RMSNorm's sums over a row run in double: element i adds into lane i % 8 of its row, the
 * lanes in order, and the 8 lanes then sum in pairs, ((0+1)+(2+3))+((4+5)+(6+7)); the same
 * order on every path and thread count.  One chain of dependent additions a row (4 cycles each)
 * had been the cost: perf had these sums at 3.3% of a GRPO step of tiny in bf16; 8 chains side
 * by side, rows four at a time, vectorise.  The element-wise loops take 16 lanes on the AVX-512
 * path, with the scalar loops' operations in their order and no contraction into FMAs (the
 * same bits; t_vexp checks).  perf had the scalar backward at 5.7% of a small bf16 training
 * step. */
#define RMS_ROWS 4
#define RMS_LANES 8

/* Rows' sums of products in double, element i into lane i % 8 in order, the 8 lanes then in
 * pairs: out[r] = sum over i < C of a[r][i] · b[r][i] (· c[r][i] when c), r < rows <= 4. */
static void dots_portable(double s[RMS_ROWS][RMS_LANES], int rows, const real *const *a,
                          const real *const *b, const real *const *c, int body)
{
    for (int i = 0; i < body; i += RMS_LANES)
        for (int r = 0; r < rows; r++)
            for (int l = 0; l < RMS_LANES; l++)
                s[r][l] += c ? (double)a[r][i + l] * b[r][i + l] * c[r][i + l]
                             : (double)a[r][i + l] * b[r][i + l];
}

#ifdef VEXP
/* dots_portable with R rows on AVX-512: the same products and sums, lane for lane (each
 * product and sum rounded once, no FMA), so the same bits. */
static inline __attribute__((always_inline, target("avx512f"), optimize("-ffp-contract=off")))
void dots_r(double s[RMS_ROWS][RMS_LANES], const int R, const float *const *a,
            const float *const *b, const float *const *c, int body)
{
    __m512d acc[RMS_ROWS];
    for (int r = 0; r < R; r++)
        acc[r] = _mm512_setzero_pd();
    for (int i = 0; i < body; i += RMS_LANES)
        for (int r = 0; r < R; r++) {
            __m512d p = _mm512_mul_pd(_mm512_cvtps_pd(_mm256_loadu_ps(a[r] + i)),
                                      _mm512_cvtps_pd(_mm256_loadu_ps(b[r] + i)));
            if (c)
                p = _mm512_mul_pd(p, _mm512_cvtps_pd(_mm256_loadu_ps(c[r] + i)));
            acc[r] = _mm512_add_pd(acc[r], p);
        }
    for (int r = 0; r < R; r++)
        _mm512_storeu_pd(s[r], acc[r]);
}

static __attribute__((target("avx512f"))) void dots_v(double s[RMS_ROWS][RMS_LANES], int rows,
                                                      const float *const *a,
                                                      const float *const *b,
                                                      const float *const *c, int body)
{
    switch (rows) {
    case 4: dots_r(s, 4, a, b, c, body); break;
    case 3: dots_r(s, 3, a, b, c, body); break;
    case 2: dots_r(s, 2, a, b, c, body); break;
    default: dots_r(s, 1, a, b, c, body); break;
    }
}
#endif

void R1K(r1_dots)(double *out, int rows, const real *const *a, const real *const *b,
                  const real *const *c, int C)
{
    double s[RMS_ROWS][RMS_LANES] = {{0}};
    int body = C / RMS_LANES * RMS_LANES;
#ifdef VEXP
    if (vexp_on())
        dots_v(s, rows, a, b, c, body);
    else
#endif
        dots_portable(s, rows, a, b, c, body);
    for (int r = 0; r < rows; r++) {
        for (int i = body; i < C; i++)
            s[r][i % RMS_LANES] += c ? (double)a[r][i] * b[r][i] * c[r][i]
                                     : (double)a[r][i] * b[r][i];
        const double *v = s[r];
        out[r] = ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
    }
}

/* The RMSNorm's sums for rows r < rows at a + r·C: with b + r·C (no c), or the shared b (the
 * weights) and c + r·C. */
static void rms_dots(double *out, int rows, const real *a, const real *b, const real *c, int C)
{
    const real *ap[RMS_ROWS], *bp[RMS_ROWS], *cp[RMS_ROWS];
    for (int r = 0; r < rows; r++) {
        ap[r] = a + (size_t)r * C;
        bp[r] = c ? b : b + (size_t)r * C;
        cp[r] = c ? c + (size_t)r * C : NULL;
    }
    R1K(r1_dots)(out, rows, ap, bp, c ? cp : NULL, C);
}

#ifdef VEXP

static V512X void rms_scale_v(float *on, const float *xn, float r, const float *w, int C)
{
    __m512 rv = _mm512_set1_ps(r);
    for (int i = 0; i < C; i += 16) {
        __mmask16 m = first(C - i);
        __m512 t = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, xn + i), rv);
        _mm512_mask_storeu_ps(on + i, m, _mm512_mul_ps(t, _mm512_maskz_loadu_ps(m, w + i)));
    }
}

static V512X void rms_dx_v(float *dxn, const float *dn, const float *w, const float *xn, float r,
                           float c, int C)
{
    __m512 rv = _mm512_set1_ps(r), cv = _mm512_set1_ps(c);
    for (int i = 0; i < C; i += 16) {
        __mmask16 m = first(C - i);
        __m512 t = _mm512_sub_ps(
            _mm512_mul_ps(_mm512_maskz_loadu_ps(m, dn + i), _mm512_maskz_loadu_ps(m, w + i)),
            _mm512_mul_ps(_mm512_maskz_loadu_ps(m, xn + i), cv));
        t = _mm512_mul_ps(rv, t);
        _mm512_mask_storeu_ps(dxn + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, dxn + i), t));
    }
}

/* dw[c0, c1) += sum over rows n in order of dout[n]·x[n]·rstd[n], 64 columns at a time held in
 * registers across the rows. */
static V512X void rms_dw_v(float *dw, const float *dout, const float *x, const float *rstd, int N,
                           int C, int c0, int c1)
{
    for (int c = c0; c < c1; c += 64) {
        __mmask16 m[4];
        __m512 acc[4];
        for (int q = 0; q < 4; q++) {
            m[q] = first(c1 - c - 16 * q > 0 ? c1 - c - 16 * q : 0);
            acc[q] = _mm512_maskz_loadu_ps(m[q], dw + c + 16 * q);
        }
        for (int n = 0; n < N; n++) {
            const float *dn = dout + (size_t)n * C + c, *xn = x + (size_t)n * C + c;
            if (n + 8 < N) /* the row 8 ahead: the hardware does not follow this stride soon */
                for (int b = 0; b < (c1 - c < 64 ? c1 - c : 64); b += 16) {
                    _mm_prefetch((const char *)(dn + 8 * (size_t)C + b), _MM_HINT_T0);
                    _mm_prefetch((const char *)(xn + 8 * (size_t)C + b), _MM_HINT_T0);
                }
            __m512 rv = _mm512_set1_ps(rstd[n]);
            for (int q = 0; q < 4; q++) {
                __m512 t = _mm512_mul_ps(_mm512_maskz_loadu_ps(m[q], dn + 16 * q),
                                         _mm512_maskz_loadu_ps(m[q], xn + 16 * q));
                acc[q] = _mm512_add_ps(acc[q], _mm512_mul_ps(t, rv));
            }
        }
        for (int q = 0; q < 4; q++)
            _mm512_mask_storeu_ps(dw + c + 16 * q, m[q], acc[q]);
    }
}
#endif

/* Rows [n0, n1) of the RMSNorm forward. */
static void rms_fwd_rows(real *out, real *rstd, const real *x, const real *w, int n0, int n1,
                         int C, real eps)
{
    for (int n = n0; n < n1; n += RMS_ROWS) {
        int rows = n1 - n < RMS_ROWS ? n1 - n : RMS_ROWS;
        double ss[RMS_ROWS]; /* the mean of squares in double */
        rms_dots(ss, rows, x + (size_t)n * C, x + (size_t)n * C, NULL, C);
        for (int k = 0; k < rows; k++) {
            const real *xn = x + (size_t)(n + k) * C;
            real *on = out + (size_t)(n + k) * C;
            real r = (real)(1.0 / sqrt(ss[k] / C + (double)eps));
#ifdef VEXP
            if (vexp_on())
                rms_scale_v(on, xn, r, w, C);
            else
#endif
                for (int i = 0; i < C; i++)
                    on[i] = xn[i] * r * w[i];
            if (rstd)
                rstd[n + k] = r;
        }
    }
}

/* dx of rows [n0, n1), and dw of columns [c0, c1) summed over all rows in order. */
static void rms_bwd_part(real *dx, real *dw, const real *dout, const real *x, const real *w,
                         const real *rstd, int N, int C, int n0, int n1, int c0, int c1)
{
    for (int n = n0; dx && n < n1; n += RMS_ROWS) {
        int rows = n1 - n < RMS_ROWS ? n1 - n : RMS_ROWS;
        /* y = x r w, r = (mean(x^2)+eps)^-1/2:  dx = r (dxhat - x r^2 <dxhat, x> / C) */
        double dot[RMS_ROWS];
        rms_dots(dot, rows, dout + (size_t)n * C, w, x + (size_t)n * C, C);
        for (int k = 0; k < rows; k++) {
            const real *xn = x + (size_t)(n + k) * C, *dn = dout + (size_t)(n + k) * C;
            real r = rstd[n + k];
            real c = (real)(dot[k] / C) * r * r;
            real *dxn = dx + (size_t)(n + k) * C;
#ifdef VEXP
            if (vexp_on()) {
                rms_dx_v(dxn, dn, w, xn, r, c, C);
                continue;
            }
#endif
            for (int i = 0; i < C; i++)
                dxn[i] += r * (dn[i] * w[i] - xn[i] * c);
        }
    }
#ifdef VEXP
    if (dw && c0 < c1 && vexp_on()) {
        rms_dw_v(dw, dout, x, rstd, N, C, c0, c1);
        return;
    }
#endif
    for (int n = 0; dw && c0 < c1 && n < N; n++) {
        const real *xn = x + (size_t)n * C, *dn = dout + (size_t)n * C;
        real r = rstd[n];
        for (int i = c0; i < c1; i++)
            dw[i] += dn[i] * xn[i] * r;
    }
}

#ifndef R1_REAL_DOUBLE
/* Rows (and, for dw, columns) in 16 pieces side by side when the tensor is large: every row's
 * and every column's sums keep their order, so the bits do not change. */
#define ELT_PIECES 16
typedef struct {
    real *out, *rstd, *dx, *dw;
    const real *x, *w, *dout, *crstd;
    int N, C;
    real eps;
} rms_job;

static void rms_fwd_piece(void *ctx, int i, int tid)
{
    (void)tid;
    rms_job *j = ctx;
    rms_fwd_rows(j->out, j->rstd, j->x, j->w, (int)((long)j->N * i / ELT_PIECES),
                 (int)((long)j->N * (i + 1) / ELT_PIECES), j->C, j->eps);
}

/* dw's columns go in blocks of at least 64 (16 aligned), at most ELT_PIECES of them: each piece
 * walks every row, and a wide block reads whole cache lines of a row where 16 narrow ones had
 * each read a sliver of every row (the walk waited on memory: 4% of a tiny bf16 step). */
static int rms_dw_col(int C, int i)
{
    int nb = C / 64 < 1 ? 1 : C / 64 > ELT_PIECES ? ELT_PIECES : C / 64;
    if (i >= nb)
        return C;
    int c = ((int)((long)C * i / nb) + 15) / 16 * 16;
    return c < C ? c : C;
}

static void rms_bwd_piece(void *ctx, int i, int tid)
{
    (void)tid;
    rms_job *j = ctx;
    rms_bwd_part(j->dx, j->dw, j->dout, j->x, j->w, j->crstd, j->N, j->C,
                 (int)((long)j->N * i / ELT_PIECES), (int)((long)j->N * (i + 1) / ELT_PIECES),
                 rms_dw_col(j->C, i), rms_dw_col(j->C, i + 1));
}
#endif

void R1K(r1_rmsnorm_fwd)(real *out, real *rstd, const real *x, const real *w, int N, int C,
                         real eps)
{
#ifndef R1_REAL_DOUBLE
    rms_job j = {out, rstd, NULL, NULL, x, w, NULL, NULL, N, C, eps};
    r1__parallel_for_work((long)N * C * 8, ELT_PIECES, rms_fwd_piece, &j);
#else
    rms_fwd_rows(out, rstd, x, w, 0, N, C, eps);
#endif
}

void R1K(r1_rmsnorm_bwd)(real *dx, real *dw, const real *dout, const real *x, const real *w,
                         const real *rstd, int N, int C)
{
#ifndef R1_REAL_DOUBLE
    rms_job j = {NULL, NULL, dx, dw, x, w, dout, rstd, N, C, 0};
    r1__parallel_for_work((long)N * C * 8, ELT_PIECES, rms_bwd_piece, &j);
#else
    rms_bwd_part(dx, dw, dout, x, w, rstd, N, C, 0, N, 0, C);
#endif
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
static void rope_rows(real *x, int n0, int n1, int nh, int ld, int hs, int dr, const int *pos,
                      const real *cs, const real *sn, int inverse)
{
    int half = dr / 2;
    for (int n = n0; n < n1; n++) {
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

#ifndef R1_REAL_DOUBLE
typedef struct {
    real *x;
    int N, nh, ld, hs, dr;
    const int *pos;
    const real *cs, *sn;
    int inverse;
} rope_job;

static void rope_piece(void *ctx, int i, int tid)
{
    (void)tid;
    rope_job *j = ctx;
    rope_rows(j->x, (int)((long)j->N * i / ELT_PIECES), (int)((long)j->N * (i + 1) / ELT_PIECES),
              j->nh, j->ld, j->hs, j->dr, j->pos, j->cs, j->sn, j->inverse);
}
#endif

/* Token ranges side by side: each element is rotated on its own, so the bits do not depend
 * on the cut. */
void R1K(r1_rope)(real *x, int N, int nh, int ld, int hs, int dr, const int *pos, const real *cs,
                  const real *sn, int inverse)
{
#ifndef R1_REAL_DOUBLE
    rope_job j = {x, N, nh, ld, hs, dr, pos, cs, sn, inverse};
    r1__parallel_for_work((long)N * nh * dr * 8, ELT_PIECES, rope_piece, &j);
#else
    rope_rows(x, 0, N, nh, ld, hs, dr, pos, cs, sn, inverse);
#endif
}

/* ------------------------------------------------------------------ SwiGLU */

static void swiglu_fwd_range(real *a, const real *g, const real *u, long i0, long i1)
{
    for (long i = i0; i < i1; i++) {
        real sg = 1 / (1 + EXP(-g[i]));
        a[i] = g[i] * sg * u[i];
    }
}

static void swiglu_bwd_range(real *dg, real *du, const real *da, const real *g, const real *u,
                             long i0, long i1)
{
    for (long i = i0; i < i1; i++) {
        real sg = 1 / (1 + EXP(-g[i]));
        real silu = g[i] * sg;
        if (dg)
            dg[i] += da[i] * u[i] * sg * (1 + g[i] * (1 - sg));
        if (du)
            du[i] += da[i] * silu;
    }
}

#ifndef R1_REAL_DOUBLE
typedef struct {
    real *a, *dg, *du;
    const real *g, *u, *da;
    long n;
} swiglu_job;

static void swiglu_piece(void *ctx, int i, int tid)
{
    (void)tid;
    swiglu_job *j = ctx;
    long i0 = j->n * i / ELT_PIECES, i1 = j->n * (i + 1) / ELT_PIECES;
#ifdef VEXP
    if (vexp_on()) {
        if (j->a)
            swiglu_fwd_v(j->a, j->g, j->u, i0, i1);
        else
            swiglu_bwd_v(j->dg, j->du, j->da, j->g, j->u, i0, i1);
        return;
    }
#endif
    if (j->a)
        swiglu_fwd_range(j->a, j->g, j->u, i0, i1);
    else
        swiglu_bwd_range(j->dg, j->du, j->da, j->g, j->u, i0, i1);
}
#endif

/* Element by element, in 16 pieces side by side when large (the same bits either way). */
void R1K(r1_swiglu_fwd)(real *a, const real *g, const real *u, int n)
{
#ifndef R1_REAL_DOUBLE
    swiglu_job j = {a, NULL, NULL, g, u, NULL, n};
    r1__parallel_for_work((long)n * 16, ELT_PIECES, swiglu_piece, &j);
#else
    swiglu_fwd_range(a, g, u, 0, n);
#endif
}

void R1K(r1_swiglu_bwd)(real *dg, real *du, const real *da, const real *g, const real *u, int n)
{
#ifndef R1_REAL_DOUBLE
    swiglu_job j = {NULL, dg, du, g, u, da, n};
    r1__parallel_for_work((long)n * 16, ELT_PIECES, swiglu_piece, &j);
#else
    swiglu_bwd_range(dg, du, da, g, u, 0, n);
#endif
}

/* ------------------------------------------------------------------ attention */

typedef struct {
    real *out, *P, *dq, *dk, *dv, *dP;
    const real *q, *k, *v, *dout, *Pc;
    int ldq, ldk, ldv, T, H, dqd, dvd;
    real scale;
    int bf16; /* the four products on r1__gemm16 (bf16 operands, fp32 sums) */
    int B;    /* sequences: item i is head i % H of sequence i / H, whose rows start T rows
               * further on in q, k, v, out and their gradients, and H·T·T further on in P */
} att_job;

/* Row i's softmax over its i + 1 scores, scaled first (on every path: the products carry no
 * alpha, r1__gemm16 and the row kernel having none), zeros past them. */
static void att_softmax_row(const att_job *j, real *row, int i, int T)
{
#ifdef VEXP
    if (vexp_on()) {
        softmax_v(row, i + 1, j->scale);
        memset(row + i + 1, 0, sizeof(real) * (size_t)(T - i - 1));
        return;
    }
#endif
    for (int c = 0; c <= i; c++)
        row[c] *= j->scale;
    real mx = row[0];
    for (int c = 1; c <= i; c++)
        mx = row[c] > mx ? row[c] : mx;
    double sum = 0;
    for (int c = 0; c <= i; c++) {
        row[c] = EXP(row[c] - mx);
        sum += row[c];
    }
    real inv = (real)(1.0 / sum);
    for (int c = 0; c <= i; c++)
        row[c] *= inv;
    for (int c = i + 1; c < T; c++)
        row[c] = 0;
}

/* scale · dS, dS = P ⊙ (dP − rowsum(P ⊙ dP)), in place of dP, rows [i0, i1);
 * masked entries have P = 0, and the rest of each row is set to 0. */
static void att_ds_rows(const att_job *j, const real *Ph, real *dP, int i0, int i1)
{
    int T = j->T;
    for (int i = i0; i < i1; i++) {
        const real *p = Ph + (size_t)i * T;
        real *d = dP + (size_t)i * T;
        double dot; /* in 8 lanes (r1_dots): one chain of i additions had been 2% of a step */
        const real *pr[1] = {p}, *dr[1] = {d};
        R1K(r1_dots)(&dot, 1, pr, dr, NULL, i + 1);
#ifdef VEXP
        if (vexp_on()) { /* the loops below in 16 lanes */
            ds_v(d, p, i + 1, (real)dot, j->scale, T);
            continue;
        }
#endif
        for (int c = 0; c <= i; c++)
            d[c] = p[c] * (d[c] - (real)dot);
        for (int c = 0; c <= i; c++)
            d[c] *= j->scale;
        for (int c = i + 1; c < T; c++)
            d[c] = 0;
    }
}

/* C[M,N] (ldc) = op(A)·op(B) (+ C when add) for the attention's products: sgemm, or
 * r1__gemm16 when the job is bf16. */
static void att_gemm(const att_job *j, int ta, int tb, int M, int N, int K, const real *A, int lda,
                     const real *B, int ldb, int add, real *C, int ldc)
{
#ifndef R1_REAL_DOUBLE
    if (j->bf16) {
        r1_gop a = {A, lda, ta, 0}, b = {B, ldb, tb, 0};
        r1__gemm16(C, ldc, M, N, K, a, b, add, NULL);
        return;
    }
#else
    (void)j;
#endif
    R1_BLAS(GEMM(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M,
                 N, K, 1, A, lda, B, ldb, add ? 1 : 0, C, ldc));
}

/* Causal attention by blocks of query rows: block [i0, i1) needs the keys [0, i1) alone, so
 * its scores are [i1 - i0, i1] and its P·V sums i1 terms, not T; the backward's key blocks
 * [c0, c1) need the queries from c0 on.  The masked upper triangle is mostly not multiplied
 * (about 35% fewer multiply-adds at T = 80 and 256), and the dropped terms are zeros (masked
 * probabilities, dS above the diagonal), so the sums are the same up to their order;
 * r1__gemm16's depend on K alone, so on the bf16 path they keep their bits (t_vexp checks
 * both paths against whole-T products; t_grad the blocks' gradients in double).
 *
 * The bf16 path takes blocks of T/4 rows rounded up to 32 (att_fwd_blocks16), for T <= 256;
 * fp32 blocks of 16 rows, on the row kernels (att_fwd_rows32: bits that depend on no block,
 * padding or OpenBLAS kernel), or on sgemm (whose sums may) without the memory for them. */
static int att_rows; /* 0: as above; else the rows of a block (r1_attention_block) */

void R1K(r1_attention_block)(int rows) { att_rows = rows > 0 ? rows : 0; }

static int att_block(const att_job *j)
{
    int T = j->T, rb = att_rows ? att_rows : j->bf16 ? ((T + 3) / 4 + 31) / 32 * 32 : 16;
    return rb < T ? rb : T;
}

#ifndef R1_REAL_DOUBLE
/* The bf16 path's causal blocks: each head's B operands (k^T and v forward; v^T, k, dout and q
 * backward) packed once (r1__gemm16_sub_pack) and each block's products run on parts of them,
 * so that the blocks repack nothing (with r1__gemm16 per block, the repacking had cost more
 * than the masked products saved: T = 80, 1.8 -> 2.3-2.8 ms).  One process alternating step
 * by step with whole-T products: small 8 x 256 0.908-0.986 of the time (blocks of 64, 32,
 * 16), tiny 16 x 80 0.968-0.970 (32); one thread, attention alone at T = 256: forward 16.8 ->
 * 9.7-11.2 ms, backward 31.5 -> 19.1-20.8 ms.  The same bits as whole-T products (single
 * blocks of K, T <= 256; t_vexp).  0 when T is too long or the memory is not there: the
 * caller goes on with whole-T products. */
typedef struct {
    uint32_t *mem, *b[4];
    int kps[4];
} att_packs;

static int att_pack(att_packs *pk, int n, const int *N, const int *K, const r1_gop *B)
{
    size_t words[4], total = 0;
    for (int i = 0; i < n; i++) {
        words[i] = r1__gemm16_sub_words(N[i], K[i]);
        if (!words[i])
            return 0;
        total += words[i];
    }
    pk->mem = malloc(sizeof(uint32_t) * total);
    if (!pk->mem)
        return 0;
    uint32_t *at = pk->mem;
    for (int i = 0; i < n; i++) {
        pk->b[i] = at;
        pk->kps[i] = r1__gemm16_sub_pack(at, N[i], K[i], B[i]);
        at += words[i];
    }
    return 1;
}

static int att_fwd_blocks16(const att_job *j, int h, const real *q, const real *k, const real *v,
                            real *Ph, real *out, int rb)
{
    int T = j->T, dq = j->dqd, dv = j->dvd, ldo = j->H * dv;
    const int N[2] = {T, dv}, K[2] = {dq, T};
    const r1_gop B[2] = {{k + h * dq, j->ldk, 1, 0}, {v + h * dv, j->ldv, 0, 0}};
    att_packs pk;
    if (!att_pack(&pk, 2, N, K, B))
        return 0;
    for (int i0 = 0; i0 < T; i0 += rb) {
        int i1 = T - i0 < rb ? T : i0 + rb;
        r1_gop qa = {q + (size_t)i0 * j->ldq + h * dq, j->ldq, 0, 0};
        r1__gemm16_sub(Ph + (size_t)i0 * T, T, i1 - i0, i1, 0, dq, qa, pk.b[0], pk.kps[0], 0);
        for (int i = i0; i < i1; i++)
            att_softmax_row(j, Ph + (size_t)i * T, i, T);
        r1_gop pa = {Ph + (size_t)i0 * T, T, 0, 0};
        r1__gemm16_sub(out + (size_t)i0 * ldo + h * dv, ldo, i1 - i0, dv, 0, i1, pa, pk.b[1],
                       pk.kps[1], 0);
    }
    free(pk.mem);
    return 1;
}
#endif

#ifndef R1_REAL_DOUBLE
/* dst[c, i] = src[i, c] for c < n, i < m (src's rows lds apart, dst's m) */
static void att_transpose(real *dst, const real *src, int lds, int m, int n)
{
    for (int i = 0; i < m; i++)
        for (int c = 0; c < n; c++)
            dst[(size_t)c * m + i] = src[(size_t)i * lds + c];
}

/* fp32 attention on r1lab's row kernels (r1__pv_rows, on every path: each output one
 * FMA chain, along the head for the scores and dP, through k_h^T and v_h^T copied once a head,
 * and along t for the rest), by the causal blocks: every sum runs in an order fixed by the
 * head's width or by t alone, so its bits depend on neither the rows beside it, nor how far
 * the batch is padded, nor the blocks, nor OpenBLAS's kernels (whose AVX-512 ones pick a
 * small-matrix kernel by size and sum in another order: a data-parallel SFT run, each rank
 * padding its own half of the batch, had lost 1.4e-5 of its losses against one process,
 * t_mpi).  The backward's key blocks sum over the queries from the block on, reading P and
 * dS by columns.  0: no memory for the copies; the caller runs sgemm. */
static int att_fwd_rows32(const att_job *j, int h, const real *q, const real *k, const real *v,
                          real *Ph, real *out, int rb)
{
    int T = j->T, dq = j->dqd, dv = j->dvd, ldo = j->H * dv;
    real *kt = malloc(sizeof(real) * (size_t)dq * T); /* k_h^T: the scores' chains along d */
    if (!kt)
        return 0;
    att_transpose(kt, k + h * dq, j->ldk, T, dq);
    for (int i0 = 0; i0 < T; i0 += rb) {
        int i1 = T - i0 < rb ? T : i0 + rb;
        r1__pv_rows(Ph + (size_t)i0 * T, T, q + (size_t)i0 * j->ldq + h * dq, j->ldq, kt, T,
                    i1 - i0, dq, i1);
        for (int i = i0; i < i1; i++)
            att_softmax_row(j, Ph + (size_t)i * T, i, T);
        r1__pv_rows(out + (size_t)i0 * ldo + h * dv, ldo, Ph + (size_t)i0 * T, T, v + h * dv,
                    j->ldv, i1 - i0, i1, dv);
    }
    free(kt);
    return 1;
}

static int att_bwd_rows32(const att_job *j, int h, const real *Ph, real *dP, const real *doh,
                          int ldo, const real *q, const real *k, const real *v, real *dq,
                          real *dk, real *dv, int rb)
{
    int T = j->T, dqd = j->dqd, dvd = j->dvd;
    real *vt = malloc(sizeof(real) * (size_t)dvd * T);
    if (!vt)
        return 0;
    att_transpose(vt, v + h * dvd, j->ldv, T, dvd); /* v_h^T: dP's chains along d */
    for (int i0 = 0; i0 < T; i0 += rb) {
        int i1 = T - i0 < rb ? T : i0 + rb;
        r1__pv_rows(dP + (size_t)i0 * T, T, doh + (size_t)i0 * ldo, ldo, vt, T, i1 - i0, dvd, i1);
        att_ds_rows(j, Ph, dP, i0, i1);
        r1__pv_rows_add(dq + (size_t)i0 * j->ldq + h * dqd, j->ldq, dP + (size_t)i0 * T, T, 1,
                        k + h * dqd, j->ldk, i1 - i0, i1, dqd);
    }
    for (int c0 = 0; c0 < T; c0 += rb) { /* keys [c0, c1): the queries from c0 on */
        int c1 = T - c0 < rb ? T : c0 + rb, m = T - c0;
        r1__pv_rows_add(dv + (size_t)c0 * j->ldv + h * dvd, j->ldv, Ph + (size_t)c0 * T + c0, 1,
                        T, doh + (size_t)c0 * ldo, ldo, c1 - c0, m, dvd);
        r1__pv_rows_add(dk + (size_t)c0 * j->ldk + h * dqd, j->ldk, dP + (size_t)c0 * T + c0, 1,
                        T, q + (size_t)c0 * j->ldq + h * dqd, j->ldq, c1 - c0, m, dqd);
    }
    free(vt);
    return 1;
}
#endif

static void att_fwd_head(void *ctx, int item, int tid)
{
    (void)tid;
    att_job *j = ctx;
    int T = j->T, dq = j->dqd, dv = j->dvd, h = item % j->H, rb = att_block(j);
    size_t r0 = (size_t)(item / j->H) * T;
    real *Ph = j->P + (size_t)item * T * T;
    const real *q = j->q + r0 * j->ldq, *k = j->k + r0 * j->ldk, *v = j->v + r0 * j->ldv;
    real *out = j->out + r0 * j->H * dv;
#ifndef R1_REAL_DOUBLE
    if (j->bf16 && rb < T && att_fwd_blocks16(j, h, q, k, v, Ph, out, rb))
        return;
    if (!j->bf16 && att_fwd_rows32(j, h, q, k, v, Ph, out, rb))
        return;
    if (j->bf16)
        rb = T;
#endif
    for (int i0 = 0; i0 < T; i0 += rb) {
        int i1 = T - i0 < rb ? T : i0 + rb;
        /* S[i0:i1, 0:i1] = q_h k_h^T (the block's upper triangle computed, masked) */
        att_gemm(j, 0, 1, i1 - i0, i1, dq, q + (size_t)i0 * j->ldq + h * dq, j->ldq, k + h * dq,
                 j->ldk, 0, Ph + (size_t)i0 * T, T);
        for (int i = i0; i < i1; i++)
            att_softmax_row(j, Ph + (size_t)i * T, i, T);
        /* out_h[i0:i1, dv] = P_h[i0:i1, 0:i1] v_h[0:i1] */
        att_gemm(j, 0, 0, i1 - i0, dv, i1, Ph + (size_t)i0 * T, T, v + h * dv, j->ldv, 0,
                 out + (size_t)i0 * j->H * dv + h * dv, j->H * dv);
    }
}

/* The B sequences' heads side by side, in one loop: a loop per sequence of 6 heads had left
 * a core waiting at the end of each (a GRPO micro-batch is 16 sequences of 80 tokens). */
static void attention_fwd(real *out, real *P, const real *q, int ldq, const real *k, int ldk,
                          const real *v, int ldv, int B, int T, int H, int dq, int dv,
                          real scale, int bf16)
{
    att_job j = {out, P, NULL, NULL, NULL, NULL, q, k, v, NULL, NULL, ldq, ldk, ldv, T, H,
                 dq, dv, scale, bf16, B};
#ifndef R1_REAL_DOUBLE
    if ((long)B * T * T * (dq + dv) * H >= R1_PAR_MIN) {
        r1__parallel_for(B * H, att_fwd_head, &j);
        return;
    }
#endif
    for (int i = 0; i < B * H; i++)
        att_fwd_head(&j, i, 0);
}

void R1K(r1_attention_fwd)(real *out, real *P, const real *q, int ldq, const real *k, int ldk,
                           const real *v, int ldv, int T, int H, int dq, int dv, real scale)
{
    attention_fwd(out, P, q, ldq, k, ldk, v, ldv, 1, T, H, dq, dv, scale, 0);
}

#ifndef R1_REAL_DOUBLE
static int att_bwd_blocks16(const att_job *j, int h, const real *Ph, real *dP, const real *doh,
                            int ldo, const real *q, const real *k, const real *v, real *dq,
                            real *dk, real *dv, int rb)
{
    int T = j->T, dqd = j->dqd, dvd = j->dvd;
    const int N[4] = {T, dqd, dvd, dqd}, K[4] = {dvd, T, T, T};
    const r1_gop B[4] = {{v + h * dvd, j->ldv, 1, 0}, /* dP = dout · v^T */
                         {k + h * dqd, j->ldk, 0, 0}, /* dq += dS · k */
                         {doh, ldo, 0, 0},            /* dv += P^T · dout */
                         {q + h * dqd, j->ldq, 0, 0}}; /* dk += dS^T · q */
    att_packs pk;
    if (!att_pack(&pk, 4, N, K, B))
        return 0;
    for (int i0 = 0; i0 < T; i0 += rb) {
        int i1 = T - i0 < rb ? T : i0 + rb;
        r1_gop da = {doh + (size_t)i0 * ldo, ldo, 0, 0};
        r1__gemm16_sub(dP + (size_t)i0 * T, T, i1 - i0, i1, 0, dvd, da, pk.b[0], pk.kps[0], 0);
        att_ds_rows(j, Ph, dP, i0, i1);
        r1_gop sa = {dP + (size_t)i0 * T, T, 0, 0};
        r1__gemm16_sub(dq + (size_t)i0 * j->ldq + h * dqd, j->ldq, i1 - i0, dqd, 0, i1, sa,
                       pk.b[1], pk.kps[1], 1);
    }
    for (int c0 = 0; c0 < T; c0 += rb) { /* keys [c0, c1): the queries from c0 on */
        int c1 = T - c0 < rb ? T : c0 + rb;
        r1_gop pa = {Ph + (size_t)c0 * T + c0, T, 1, 0}, sa = {dP + (size_t)c0 * T + c0, T, 1, 0};
        r1__gemm16_sub(dv + (size_t)c0 * j->ldv + h * dvd, j->ldv, c1 - c0, dvd, c0, T - c0, pa,
                       pk.b[2], pk.kps[2], 1);
        r1__gemm16_sub(dk + (size_t)c0 * j->ldk + h * dqd, j->ldk, c1 - c0, dqd, c0, T - c0, sa,
                       pk.b[3], pk.kps[3], 1);
    }
    free(pk.mem);
    return 1;
}
#endif

static void att_bwd_head(void *ctx, int item, int tid)
{
    att_job *j = ctx;
    int T = j->T, dq_dim = j->dqd, dv_dim = j->dvd, h = item % j->H, rb = att_block(j);
    size_t r0 = (size_t)(item / j->H) * T;
    real *dP = j->dP + (size_t)tid * T * T; /* one scratch per thread */
    const real *Ph = j->Pc + (size_t)item * T * T;
    int ldo = j->H * dv_dim;
    const real *doh = j->dout + r0 * ldo + h * dv_dim;
    const real *q = j->q + r0 * j->ldq, *k = j->k + r0 * j->ldk, *v = j->v + r0 * j->ldv;
    real *dq = j->dq + r0 * j->ldq, *dk = j->dk + r0 * j->ldk, *dv = j->dv + r0 * j->ldv;
#ifndef R1_REAL_DOUBLE
    if (j->bf16 && rb < T &&
        att_bwd_blocks16(j, h, Ph, dP, doh, ldo, q, k, v, dq, dk, dv, rb))
        return;
    if (!j->bf16 && att_bwd_rows32(j, h, Ph, dP, doh, ldo, q, k, v, dq, dk, dv, rb))
        return;
    if (j->bf16)
        rb = T;
#endif
    for (int i0 = 0; i0 < T; i0 += rb) {
        int i1 = T - i0 < rb ? T : i0 + rb;
        /* dP[i0:i1, 0:i1] = dout_h[i0:i1] · v_h[0:i1]^T */
        att_gemm(j, 0, 1, i1 - i0, i1, dv_dim, doh + (size_t)i0 * ldo, ldo, v + h * dv_dim,
                 j->ldv, 0, dP + (size_t)i0 * T, T);
        att_ds_rows(j, Ph, dP, i0, i1);
        /* dq_h[i0:i1] += (scale · dS)[i0:i1, 0:i1] k_h[0:i1] */
        att_gemm(j, 0, 0, i1 - i0, dq_dim, i1, dP + (size_t)i0 * T, T, k + h * dq_dim, j->ldk, 1,
                 dq + (size_t)i0 * j->ldq + h * dq_dim, j->ldq);
    }
    /* by blocks of key rows [c0, c1): only the queries from c0 on see them */
    for (int c0 = 0; c0 < T; c0 += rb) {
        int c1 = T - c0 < rb ? T : c0 + rb;
        /* dv_h[c0:c1] += P_h[c0:T, c0:c1]^T · dout_h[c0:T] */
        att_gemm(j, 1, 0, c1 - c0, dv_dim, T - c0, Ph + (size_t)c0 * T + c0, T,
                 doh + (size_t)c0 * ldo, ldo, 1, dv + (size_t)c0 * j->ldv + h * dv_dim, j->ldv);
        /* dk_h[c0:c1] += (scale · dS)[c0:T, c0:c1]^T q_h[c0:T] */
        att_gemm(j, 1, 0, c1 - c0, dq_dim, T - c0, dP + (size_t)c0 * T + c0, T,
                 q + (size_t)c0 * j->ldq + h * dq_dim, j->ldq, 1,
                 dk + (size_t)c0 * j->ldk + h * dq_dim, j->ldk);
    }
}

static void attention_bwd(real *dq, real *dk, real *dv, real *dP, const real *dout,
                          const real *P, const real *q, int ldq, const real *k, int ldk,
                          const real *v, int ldv, int B, int T, int H, int dq_dim,
                          int dv_dim, real scale, int bf16)
{
    att_job j = {NULL, NULL, dq, dk, dv, dP, q, k, v, dout, P, ldq, ldk, ldv, T, H,
                 dq_dim, dv_dim, scale, bf16, B};
#ifndef R1_REAL_DOUBLE
    if ((long)B * T * T * (dq_dim + dv_dim) * H >= R1_PAR_MIN) {
        r1__parallel_for(B * H, att_bwd_head, &j);
        return;
    }
#endif
    for (int i = 0; i < B * H; i++)
        att_bwd_head(&j, i, 0);
}

void R1K(r1_attention_bwd)(real *dq, real *dk, real *dv, real *dP, const real *dout,
                           const real *P, const real *q, int ldq, const real *k, int ldk,
                           const real *v, int ldv, int T, int H, int dq_dim, int dv_dim,
                           real scale)
{
    attention_bwd(dq, dk, dv, dP, dout, P, q, ldq, k, ldk, v, ldv, 1, T, H, dq_dim, dv_dim, scale,
                  0);
}

#ifndef R1_REAL_DOUBLE
void r1__attention_fwd16(float *out, float *P, const float *q, int ldq, const float *k, int ldk,
                         const float *v, int ldv, int T, int H, int dq, int dv, float scale)
{
    attention_fwd(out, P, q, ldq, k, ldk, v, ldv, 1, T, H, dq, dv, scale, 1);
}

void r1__attention_bwd16(float *dq, float *dk, float *dv, float *dP, const float *dout,
                         const float *P, const float *q, int ldq, const float *k, int ldk,
                         const float *v, int ldv, int T, int H, int dq_dim, int dv_dim,
                         float scale)
{
    attention_bwd(dq, dk, dv, dP, dout, P, q, ldq, k, ldk, v, ldv, 1, T, H, dq_dim, dv_dim, scale,
                  1);
}

void r1__attention_fwd_seqs(int bf16, float *out, float *P, const float *q, int ldq,
                            const float *k, int ldk, const float *v, int ldv, int B, int T, int H,
                            int dq, int dv, float scale)
{
    attention_fwd(out, P, q, ldq, k, ldk, v, ldv, B, T, H, dq, dv, scale, bf16);
}

void r1__attention_bwd_seqs(int bf16, float *dq, float *dk, float *dv, float *dP,
                            const float *dout, const float *P, const float *q, int ldq,
                            const float *k, int ldk, const float *v, int ldv, int B, int T, int H,
                            int dq_dim, int dv_dim, float scale)
{
    attention_bwd(dq, dk, dv, dP, dout, P, q, ldq, k, ldk, v, ldv, B, T, H, dq_dim, dv_dim, scale,
                  bf16);
}
#endif

/* ------------------------------------------------------------------ cross-entropy */

/* Rows [n0, n1): each row's weighted loss term into part[n - n0] (0 for a row that does not
 * count), its gradient into dlogits. */
static void xent_rows(real *dlogits, const real *logits, const int32_t *targets, const real *w,
                      int V, real scale, int n0, int n1, double *part)
{
    for (int n = n0; n < n1; n++) {
        const real *z = logits + (size_t)n * V;
        real *dz = dlogits ? dlogits + (size_t)n * V : NULL;
        int t = targets[n];
        real wn = w ? w[n] : 1;
        part[n - n0] = 0;
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
        part[n - n0] = wn * (lse - z[t]);
        if (dz) {
            real c = scale * wn;
            for (int j = 0; j < V; j++)
                dz[j] = c * (real)exp((double)z[j] - lse);
            dz[t] -= c;
        }
    }
}

#ifndef R1_REAL_DOUBLE
#define XENT_PIECES 16

typedef struct {
    real *dlogits;
    const real *logits, *w;
    const int32_t *targets;
    int N, V;
    real scale;
    double *part; /* [N] */
} xent_job;

static void xent_piece(void *ctx, int i, int tid)
{
    (void)tid;
    const xent_job *j = ctx;
    int n0 = (int)((long)j->N * i / XENT_PIECES), n1 = (int)((long)j->N * (i + 1) / XENT_PIECES);
    xent_rows(j->dlogits, j->logits, j->targets, j->w, j->V, j->scale, n0, n1, j->part + n0);
}
#endif

/* The rows side by side when large (each row's arithmetic alone), their terms then added in
 * row order on this thread, so the bits depend on neither the threads nor the pieces.  On one
 * thread, with two exp() a logit, it had left the other core waiting for 1.5% of a bf16 step
 * of small (2 × 2048 rows of 512). */
double R1K(r1_xent_fwd_bwd)(real *dlogits, const real *logits, const int32_t *targets,
                            const real *w, int N, int V, real scale)
{
    double total = 0, one;
#ifndef R1_REAL_DOUBLE
    double *part = N > 1 ? malloc(sizeof(double) * (size_t)N) : NULL;
    if (part) {
        xent_job j = {dlogits, logits, w, targets, N, V, scale, part};
        r1__parallel_for_work((long)N * V * 16, XENT_PIECES, xent_piece, &j);
        for (int n = 0; n < N; n++)
            total += part[n];
        free(part);
        return total;
    }
#endif
    for (int n = 0; n < N; n++) {
        xent_rows(dlogits, logits, targets, w, V, scale, n, n + 1, &one);
        total += one;
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

#ifndef R1_REAL_DOUBLE
/* ------------------------------------------------------------------ BLAS work buffers
 *
 * OpenBLAS gives every thread that calls it a work buffer of about 128 MiB, allocated on the
 * thread's first call and kept.  When that allocation fails (an address-space limit, ulimit -v)
 * it retries forever: the process spins instead of failing.  So the buffers are taken at start,
 * one per pool thread, while the address space is still free, and a limit too small for them
 * is reported as what it is. */

#define BLAS_BUFFER ((size_t)136 << 20) /* OpenBLAS's buffer and its alignment, rounded up */

static int blas_limited; /* an address-space limit is set: probe before every BLAS call */
static atomic_int blas_oom;
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

static void blas_limit_read(void)
{
    struct rlimit rl;
    blas_limited = getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY;
}

int r1__blas_room(void)
{
    pthread_once(&blas_once, blas_limit_read);
    if (!blas_limited)
        return 1;
    /* a mapping of a work buffer's size, never touched: it fits, or OpenBLAS's would not */
    void *p = mmap(NULL, BLAS_BUFFER, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED) {
        atomic_store(&blas_oom, 1);
        return 0;
    }
    munmap(p, BLAS_BUFFER);
    return !atomic_load(&blas_oom); /* once short, the rest of the pass is skipped too */
}

r1_status r1__blas_status(r1_error *err)
{
    if (!atomic_exchange(&blas_oom, 0))
        return R1_OK;
    return r1_error_set(err, R1_ENOMEM, "out of memory: no room for OpenBLAS's work buffer "
                        "(%zu MiB) under the address-space limit (ulimit -v); raise the limit",
                        BLAS_BUFFER >> 20);
}

static atomic_int warm_started;

static void warm_one(void *ctx, int i, int tid)
{
    (void)i, (void)tid;
    int n = *(int *)ctx;
    /* every thread takes exactly one item: wait (at most ~2 s) until all have one */
    atomic_fetch_add(&warm_started, 1);
    for (int k = 0; k < 2000 && atomic_load(&warm_started) < n; k++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    float a[16] = {0}, b[16] = {0}, c[16];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 4, 4, 4, 1.0f, a, 4, b, 4, 0.0f, c, 4);
}

r1_status r1_blas_reserve(r1_error *err)
{
    int nw = r1__nworkers();
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        size_t used = 0;
        FILE *f = fopen("/proc/self/statm", "r");
        unsigned long pages = 0;
        if (f && fscanf(f, "%lu", &pages) == 1)
            used = pages * (size_t)sysconf(_SC_PAGESIZE);
        if (f)
            fclose(f);
        size_t need = used + (size_t)nw * BLAS_BUFFER + ((size_t)64 << 20);
        if ((size_t)rl.rlim_cur < need)
            return r1_error_set(err, R1_ENOMEM,
                                "out of memory: the address-space limit (ulimit -v %lu KiB) "
                                "leaves too little room for the BLAS work buffers of %d "
                                "thread%s (about %zu MiB beyond the %zu MiB in use); raise the "
                                "limit or use fewer threads",
                                (unsigned long)(rl.rlim_cur >> 10), nw, nw == 1 ? "" : "s",
                                (need - used) >> 20, used >> 20);
    }
    atomic_store(&warm_started, 0);
    r1__parallel_for(nw, warm_one, &nw);
    return R1_OK;
}
#endif
