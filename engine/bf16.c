/* bf16.c — r1_matmul_bf16 and the bulk bf16 conversions (contracts in r1_bf16.h): an AVX-512
 * BF16 path, used when the engine's kernel path (isa.c, R1_ISA) is avx512bf16 or better, and a
 * portable C path for the others.
 *
 * Ownership and errors: nothing here allocates (the matmul keeps one chunk of activations,
 * at most 8 KB, on the stack), fails, prints or keeps state.
 *
 * Design.  The weights w[Co,Ci] stay in the caller's layout, so every output is a dot product
 * along Ci.  The activations of up to 4 tokens are converted once per chunk of KC columns to
 * bf16 pairs, zero-padded to a multiple of 32; then a block of R weight rows × T tokens
 * (R·T = 16, T = 1, 2 or 4 by how many tokens are left) keeps 16 accumulators of 16 fp32
 * lanes in registers and does one vdpbf16ps (32 multiply-adds) per row, token and 32 columns.
 * The 16 accumulators are summed across lanes together by a 4-level shuffle tree (45
 * instructions instead of 16 separate horizontal sums), which leaves the 16 dot products in
 * one vector: R outputs for each of the T tokens, stored with masks.  Row and column tails
 * are masked loads and stores; a partial block re-reads its last row and throws it away.
 *
 * Why bf16 activations.  Measured on this Zen 4 (one core, GFLOP/s at N = 1 / N = 16), with
 * the alternatives written the same way: widening the bf16 weights to fp32 with a shift and
 * an AND (even/odd lanes against de-interleaved fp32 activations) and FMA, which makes every
 * product exact; and splitting each activation into two bf16 halves x = hi + lo, two
 * vdpbf16ps.  The error column is the worst |error| / sum |x|·|w| against fp32 activations.
 *
 *     Ci×Co        bf16 x (this)   fp32 x, FMA   hi+lo bf16 x   sgemm, fp32 weights
 *     192×512         70 / 185       66 /  95      75 /  95        43 / 65
 *     512×1408        64 / 171       48 /  94      65 /  94         7 / 56
 *     1408×512        72 / 201       57 /  94      77 /  95        38 / 61
 *     192×64          67 / 161       62 /  87      77 /  88        43 / 99
 *     error           6e-4           5e-8          8e-7
 *
 * At N = 1 all three are bound by streaming the weights and by the reductions; from N = 2 on
 * the single vdpbf16ps per pair of columns is twice as fast as the others.  Using hi+lo only
 * for N = 1 would be free, but then a token's outputs would depend on the batch it is in.  So
 * the activations are rounded to bf16, and the bound in r1_bf16.h says so: 2^-8 relative to
 * sum |x|·|w|, the size of the rounding already in the bf16 weights.
 *
 * The portable path sums the same way in 16 lanes with GNU C vectors (SSE2 on plain x86-64),
 * two weight rows at a time, each 8 bf16 weights widened by the shift and AND above against
 * activations stored even columns first: about 25 GFLOP/s here, a third of sgemm's.
 *
 * The order of every sum depends only on Ci (per lane: the 32-column steps of each chunk in
 * order; across lanes: the fixed tree; across chunks: in order), so an output does not depend
 * on N or on where its token sits in the batch. */
#include <config.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(HAVE_AVX512BF16_INTRIN) && (defined(__x86_64__) || defined(__i386__))
#define BF16_SIMD 1
#include <immintrin.h>
#else
#define BF16_SIMD 0
#endif

#include "parallel.h"
#include "r1.h"
#include "r1_bf16.h"
#include "r1_gemm16.h"

/* Columns of activations converted at a time: a multiple of 32; 4 tokens × KC bf16 = 8 KB. */
#define KC 1024

/* ------------------------------------------------------------------ scalar conversions */

float r1_bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t r1_f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    /* A NaN whose payload sits only in the low 16 bits would round to infinity: keep the
     * top bits and force the quiet bit instead. */
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x0040u);
    /* Round to nearest even; a carry out of the mantissa correctly bumps the exponent, up to
     * infinity for values past the largest bf16. */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* ------------------------------------------------------------------ portable path */

static inline float widen(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* GNU C vectors: the compiler maps them to the SIMD the build targets (SSE2 on plain x86-64,
 * NEON on arm64) or to scalar code. */
typedef float v4f __attribute__((vector_size(16)));
typedef uint32_t v4u __attribute__((vector_size(16)));

/* Eight bf16 weights load as four uint32 pairs; `pair << 16` widens the half that sits low in
 * the uint32 and `pair & 0xffff0000` the high one, with no shuffles.  On little-endian CPUs
 * the low half is the even column, so the activation buffer holds each group of 8 columns as
 * its 4 even columns, then its 4 odd ones (the other way round on big-endian CPUs). */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define LOW_HALF 1
#else
#define LOW_HALF 0
#endif

static inline v4f load4(const float *p)
{
    v4f v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline v4f bits4(v4u u)
{
    v4f f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* s[r] = sum_k x[k] · wr[r][k] over n columns for ROWS rows; x is packed as above and
 * zero-padded to a multiple of 16.  Each of 16 lanes (four vectors) sums one column of every
 * 16 in order, then the lanes are summed by a pairwise tree: the depth of sums of the AVX-512
 * path. */
#define ROWS 2
static void dot_rows(float *s, const float *x, const uint16_t *const *wr, int n)
{
    const v4u high = {0xffff0000u, 0xffff0000u, 0xffff0000u, 0xffff0000u};
    v4f a[ROWS][4] = {0};
    uint16_t tail[ROWS][16] = {0};
    for (int k = 0; k < n; k += 16) {
        const uint16_t *wk[ROWS];
        for (int r = 0; r < ROWS; r++) {
            wk[r] = wr[r] + k;
            if (n - k < 16) { /* the last columns, through a zeroed copy: no reads past a row */
                memcpy(tail[r], wk[r], sizeof(uint16_t) * (size_t)(n - k));
                wk[r] = tail[r];
            }
        }
        v4f xv[4] = {load4(x + k), load4(x + k + 4), load4(x + k + 8), load4(x + k + 12)};
#pragma GCC unroll 4
        for (int r = 0; r < ROWS; r++)
#pragma GCC unroll 2
            for (int g = 0; g < 2; g++) {
                v4u u;
                memcpy(&u, wk[r] + 8 * g, sizeof u);
                a[r][2 * g] += xv[2 * g] * bits4(u << 16);
                a[r][2 * g + 1] += xv[2 * g + 1] * bits4(u & high);
            }
    }
    for (int r = 0; r < ROWS; r++) {
        v4f v = (a[r][0] + a[r][2]) + (a[r][1] + a[r][3]);
        s[r] = (v[0] + v[2]) + (v[1] + v[3]);
    }
}

static void matmul_portable(float *out, int ldo, const float *in, const uint16_t *w, int N, int Ci,
                            int Co, int accumulate)
{
    float xb[KC]; /* [kc] one token's chunk of activations, rounded to bf16, packed, padded */
    for (int n = 0; n < N; n++) {
        const float *xn = in + (size_t)n * Ci;
        float *on = out + (size_t)n * ldo;
        for (int k0 = 0; k0 < Ci; k0 += KC) {
            int kc = Ci - k0 < KC ? Ci - k0 : KC, add = accumulate || k0 > 0;
            int ld = (kc + 15) & ~15;
            for (int k = 0; k < ld; k++) { /* column k of the group of 8 at k & ~7 */
                int g = k & ~7, j = k & 7, c = g + 2 * (j & 3) + ((j >> 2) ^ LOW_HALF);
                xb[k] = c < kc ? widen(r1_f32_to_bf16(xn[k0 + c])) : 0;
            }
            for (int o = 0; o < Co; o += ROWS) {
                const uint16_t *wr[ROWS];
                float s[ROWS];
                for (int r = 0; r < ROWS; r++) /* past Co: repeat the last row, drop it */
                    wr[r] = w + (size_t)(o + r < Co ? o + r : Co - 1) * Ci + k0;
                dot_rows(s, xb, wr, kc);
                for (int r = 0; r < ROWS && o + r < Co; r++)
                    on[o + r] = add ? on[o + r] + s[r] : s[r];
            }
        }
    }
}

static void from_f32_portable(uint16_t *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = r1_f32_to_bf16(src[i]);
}

static void to_f32_portable(float *dst, const uint16_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = widen(src[i]);
}

/* ------------------------------------------------------------------ AVX-512 BF16 path */
#if BF16_SIMD
#include "bf16_simd.h"

#define SIMD __attribute__((target("avx512f,avx512bf16,avx512bw,avx512vl")))
/* The block kernels are written with loops over R and T; inlined with constant R and T and
 * fully unrolled (the pragmas: -O2 alone leaves the loops and spills the accumulators), their
 * accumulators live in registers. */
#define SIMD_INLINE static inline __attribute__((always_inline)) SIMD

/* Lanes [0, rem) of 16 (rem may be <= 0 or >= 16). */
static inline __mmask16 mask16(int rem)
{
    return rem >= 16 ? (__mmask16)0xffff : rem <= 0 ? 0 : (__mmask16)((1u << rem) - 1);
}

/* xb[T][ld]: tokens x[0..nt) (row stride ldx floats), columns [0, kc), rounded to bf16 (RNE)
 * and zero-padded to ld (a multiple of 32); rows nt..T-1 are zero. */
static SIMD void pack_bf16(uint16_t *xb, int ld, const float *x, int ldx, int nt, int T, int kc)
{
    for (int t = 0; t < T; t++) {
        const float *xt = x + (size_t)t * ldx;
        uint16_t *d = xb + (size_t)t * ld;
        for (int k = 0; k < ld; k += 32) {
            int rem = t < nt ? kc - k : 0;
            __m512 a = _mm512_maskz_loadu_ps(mask16(rem), xt + k);
            __m512 b = _mm512_maskz_loadu_ps(mask16(rem - 16), xt + k + 16);
            _mm512_store_si512(d + k, (__m512i)_mm512_cvtne2ps_pbh(b, a));
        }
    }
}

/* The lane sums of 16 vectors: lane p of the result is the sum of the lanes of acc[p].
 * Each level adds two halves of every partial sum (256-bit halves, 128-bit quarters, then
 * pairs and single lanes inside 128-bit lanes), the same way for every p.  The tree leaves
 * the sum of a[q] in lane 4·(q%4) + q/4, hence a[q] = acc[4·(q%4) + q/4]. */
SIMD_INLINE __m512 hsum16(const __m512 *acc)
{
    __m512 a[16], b[8], c[4], d[2];
#pragma GCC unroll 16
    for (int q = 0; q < 16; q++)
        a[q] = acc[4 * (q % 4) + q / 4];
#pragma GCC unroll 16
    for (int i = 0; i < 8; i++)
        b[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0x44),
                             _mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0xee));
#pragma GCC unroll 16
    for (int i = 0; i < 4; i++)
        c[i] = _mm512_add_ps(_mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], 0x88),
                             _mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], 0xdd));
#pragma GCC unroll 16
    for (int i = 0; i < 2; i++)
        d[i] = _mm512_add_ps(_mm512_shuffle_ps(c[2 * i], c[2 * i + 1], 0x44),
                             _mm512_shuffle_ps(c[2 * i], c[2 * i + 1], 0xee));
    return _mm512_add_ps(_mm512_shuffle_ps(d[0], d[1], 0x88), _mm512_shuffle_ps(d[0], d[1], 0xdd));
}

/* The block's epilogue: the 16 accumulators' sums, R outputs for each of the T tokens, stored
 * (or added, when add) for tokens t < nt and rows r < nr. */
SIMD_INLINE void store_sums(float *out, int ldo, const __m512 *acc, int nr, int nt, int add,
                            const int R, const int T)
{
    __m512 s = hsum16(acc);
    __mmask16 m = mask16(nr);
    const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
#pragma GCC unroll 16
    for (int t = 0; t < T; t++) {
        if (t >= nt)
            break;
        __m512 v =
            t ? _mm512_permutexvar_ps(_mm512_add_epi32(lane, _mm512_set1_epi32(t * R)), s) : s;
        float *ot = out + (size_t)t * ldo;
        if (add)
            v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, ot), v);
        _mm512_mask_storeu_ps(ot, m, v);
    }
}

/* One block: out[t, r] (=, or += when add) for tokens t < nt and rows r < nr, where
 * out is [.., ldo], xb[T][ldx] the packed activations, w[R rows, ldw] the weights at the chunk's
 * first column, kc the chunk's width.  Accumulator t·R + r holds token t, row r. */
SIMD_INLINE void block(float *out, int ldo, const uint16_t *xb, int ldx, const uint16_t *w, int ldw,
                       int kc, int nr, int nt, int add, const int R, const int T)
{
    __m512 acc[16];
    const uint16_t *wr[16];
#pragma GCC unroll 16
    for (int r = 0; r < R; r++)
        wr[r] = w + (size_t)(r < nr ? r : nr - 1) * ldw;
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++)
        acc[i] = _mm512_setzero_ps();
    int k = 0;
    for (; k + 32 <= kc; k += 32) {
        __m512bh x[4];
#pragma GCC unroll 16
        for (int t = 0; t < T; t++)
            x[t] = (__m512bh)_mm512_load_si512(xb + (size_t)t * ldx + k);
#pragma GCC unroll 16
        for (int r = 0; r < R; r++) {
            __m512bh wv = (__m512bh)_mm512_loadu_si512(wr[r] + k);
#pragma GCC unroll 16
            for (int t = 0; t < T; t++)
                acc[t * R + r] = _mm512_dpbf16_ps(acc[t * R + r], wv, x[t]);
        }
    }
    if (k < kc) { /* the last columns: weights past kc read as zero, xb is zero-padded */
        __mmask32 m = (__mmask32)((1u << (kc - k)) - 1);
        __m512bh x[4];
#pragma GCC unroll 16
        for (int t = 0; t < T; t++)
            x[t] = (__m512bh)_mm512_load_si512(xb + (size_t)t * ldx + k);
#pragma GCC unroll 16
        for (int r = 0; r < R; r++) {
            __m512bh wv = (__m512bh)_mm512_maskz_loadu_epi16(m, wr[r] + k);
#pragma GCC unroll 16
            for (int t = 0; t < T; t++)
                acc[t * R + r] = _mm512_dpbf16_ps(acc[t * R + r], wv, x[t]);
        }
    }
    store_sums(out, ldo, acc, nr, nt, add, R, T);
}

/* All Co rows for one group of tokens and one chunk of columns, in blocks of R rows. */
SIMD_INLINE void sweep(float *out, int ldo, int Co, const uint16_t *xb, int ld, const uint16_t *w,
                       int Ci, int kc, int nt, int add, const int R, const int T)
{
    for (int o = 0; o < Co; o += R)
        block(out + o, ldo, xb, ld, w + (size_t)o * Ci, Ci, kc, Co - o < R ? Co - o : R, nt, add,
              R, T);
}

static SIMD void matmul_avx512(float *out, int ldo, const float *in, const uint16_t *w, int N,
                               int Ci, int Co, int accumulate)
{
    _Alignas(64) uint16_t xb[4 * KC]; /* [T][ld] packed activations */
    for (int n = 0; n < N;) {
        /* 4 tokens at a time; 3 left run as 4 with an empty row, 2 and 1 as themselves. */
        int left = N - n, T = left >= 3 ? 4 : left, nt = left < T ? left : T;
        for (int k0 = 0; k0 < Ci; k0 += KC) {
            int kc = Ci - k0 < KC ? Ci - k0 : KC, ld = (kc + 31) & ~31;
            int add = accumulate || k0 > 0;
            float *on = out + (size_t)n * ldo;
            pack_bf16(xb, ld, in + (size_t)n * Ci + k0, Ci, nt, T, kc);
            if (T == 1)
                sweep(on, ldo, Co, xb, ld, w + k0, Ci, kc, nt, add, 16, 1);
            else if (T == 2)
                sweep(on, ldo, Co, xb, ld, w + k0, Ci, kc, nt, add, 8, 2);
            else
                sweep(on, ldo, Co, xb, ld, w + k0, Ci, kc, nt, add, 4, 4);
        }
        n += nt;
    }
}

/* fp32 weights, a decoding step's rows (r1__matmul_f32_rows, r1_gemm16.h): the blocks above
 * with an fp32 FMA per 16 columns, the activations read in place.  For those rows OpenBLAS
 * 0.3.21 copies the whole weight matrix into its panels on every call (sgemm_incopy was 41% of
 * a batch-1 decoding of the built-in model on Zen 4, and its kernel 24%), which this does not:
 * each weight is read once per group of 4 tokens, from the caches after the first.  Measured
 * side by side on the built-in model (Zen 4, 2 threads): batch 1 1508 -> 3466 tokens/s,
 * batch 16 3724/3349 -> 4803/5453, batch 64 within noise (5829/7680 -> 5887/8101).  Token rows
 * past nt re-read the last one and are not stored. */
SIMD_INLINE void block32(float *out, int ldo, const float *x, int ldx, const float *w, int ldw,
                         int kc, int nr, int nt, int add, const int R, const int T)
{
    __m512 acc[16];
    const float *wr[16], *xt[4];
#pragma GCC unroll 16
    for (int r = 0; r < R; r++)
        wr[r] = w + (size_t)(r < nr ? r : nr - 1) * ldw;
#pragma GCC unroll 4
    for (int t = 0; t < T; t++)
        xt[t] = x + (size_t)(t < nt ? t : nt - 1) * ldx;
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++)
        acc[i] = _mm512_setzero_ps();
    for (int k = 0; k < kc; k += 16) {
        __mmask16 m = mask16(kc - k);
        __m512 xv[4];
#pragma GCC unroll 4
        for (int t = 0; t < T; t++)
            xv[t] = _mm512_maskz_loadu_ps(m, xt[t] + k);
#pragma GCC unroll 16
        for (int r = 0; r < R; r++) {
            /* the next block's rows, asked for a block ahead: R rows read side by side are R
             * short streams (a row of the built-in model is 12 lines), which the hardware
             * prefetcher hardly follows.  Batch-1 decoding of the built-in model, 1 thread:
             * 4077 -> 4714 tokens/s (medians of 5 alternating runs, Zen 5).  Past the weight's
             * end it asks for lines it will not read (a prefetch never faults). */
            _mm_prefetch((const char *)(wr[r] + (size_t)R * ldw + k), _MM_HINT_T0);
            __m512 wv = _mm512_maskz_loadu_ps(m, wr[r] + k);
#pragma GCC unroll 4
            for (int t = 0; t < T; t++)
                acc[t * R + r] = _mm512_fmadd_ps(wv, xv[t], acc[t * R + r]);
        }
    }
    store_sums(out, ldo, acc, nr, nt, add, R, T);
}

SIMD_INLINE void sweep32(float *out, int ldo, const float *x, int ldx, const float *w, int Ci,
                         int Co, int nt, int add, const int R, const int T)
{
    for (int o = 0; o < Co; o += R)
        block32(out + o, ldo, x, ldx, w + (size_t)o * Ci, Ci, Ci, Co - o < R ? Co - o : R, nt,
                add, R, T);
}

static SIMD void matmul_f32_avx512(float *out, int ldo, const float *in, int ldi, const float *w,
                                   int N, int Ci, int Co, int accumulate)
{
    for (int n = 0; n < N;) {
        int left = N - n, T = left >= 3 ? 4 : left, nt = left < T ? left : T;
        float *on = out + (size_t)n * ldo;
        const float *x = in + (size_t)n * ldi;
        if (T == 1)
            sweep32(on, ldo, x, ldi, w, Ci, Co, nt, accumulate, 16, 1);
        else if (T == 2)
            sweep32(on, ldo, x, ldi, w, Ci, Co, nt, accumulate, 8, 2);
        else
            sweep32(on, ldo, x, ldi, w, Ci, Co, nt, accumulate, 4, 4);
        n += nt;
    }
}

/* out[r, c] = sum over t of p[r, t] · v[t, c] for rows r < R (a compile-time group of at
 * most 6) and columns [c0, c0 + 16·Q) (Q, compile-time, at most 4: R·Q accumulators): each
 * output one chain of FMAs in t order, so its bits depend on n alone.  Q is the block's width
 * in vectors: with 4 always, a head of `tiny` (v_head_dim 32, 48 for q and k) had spent half
 * or a quarter of its FMAs on masked-off lanes, and P·V was 11% of a `tiny` training step. */
SIMD_INLINE void pv_group(float *out, int ldo, const float *p, long prs, long pts, const float *v,
                          int ldv, int n, int c0, int nc, int add, const int R, const int Q)
{
    __m512 acc[6][4];
    __mmask16 m[4];
#pragma GCC unroll 4
    for (int q = 0; q < Q; q++)
        m[q] = mask16(nc - c0 - 16 * q);
#pragma GCC unroll 6
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int q = 0; q < Q; q++)
            acc[r][q] = _mm512_setzero_ps();
    for (int t = 0; t < n; t++) {
        const float *vt = v + (size_t)t * ldv + c0;
        __m512 x[4];
#pragma GCC unroll 4
        for (int q = 0; q < Q; q++)
            x[q] = _mm512_maskz_loadu_ps(m[q], vt + 16 * q);
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) {
            __m512 b = _mm512_set1_ps(p[r * prs + t * pts]);
#pragma GCC unroll 4
            for (int q = 0; q < Q; q++)
                acc[r][q] = _mm512_fmadd_ps(b, x[q], acc[r][q]);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int q = 0; q < Q; q++) {
            float *o = out + (size_t)r * ldo + c0 + 16 * q;
            __m512 x = acc[r][q];
            if (add) /* the chain first, then one rounded add */
                x = _mm512_add_ps(_mm512_maskz_loadu_ps(m[q], o), x);
            _mm512_mask_storeu_ps(o, m[q], x);
        }
}

/* One group of g rows (1-6) over the column block at c0, in Q column vectors (1-4). */
#define PV_GROUPS(Q)                                                                               \
    switch (g) {                                                                                   \
    case 1: pv_group(o, ldo, pr, prs, pts, v, ldv, n, c0, nc, add, 1, Q); break;                  \
    case 2: pv_group(o, ldo, pr, prs, pts, v, ldv, n, c0, nc, add, 2, Q); break;                  \
    case 3: pv_group(o, ldo, pr, prs, pts, v, ldv, n, c0, nc, add, 3, Q); break;                  \
    case 4: pv_group(o, ldo, pr, prs, pts, v, ldv, n, c0, nc, add, 4, Q); break;                  \
    case 5: pv_group(o, ldo, pr, prs, pts, v, ldv, n, c0, nc, add, 5, Q); break;                  \
    default: pv_group(o, ldo, pr, prs, pts, v, ldv, n, c0, nc, add, 6, Q); break;                 \
    }

static SIMD void pv_avx512(float *out, int ldo, const float *p, long prs, long pts,
                           const float *v, int ldv, int rows, int n, int nc, int add)
{
    for (int r0 = 0; r0 < rows; r0 += 6) {
        int g = rows - r0 < 6 ? rows - r0 : 6;
        float *o = out + (size_t)r0 * ldo;
        const float *pr = p + r0 * prs;
        for (int c0 = 0; c0 < nc; c0 += 64) {
            int w = nc - c0 < 64 ? nc - c0 : 64;
            if (w > 48)
                PV_GROUPS(4)
            else if (w > 32)
                PV_GROUPS(3)
            else if (w > 16)
                PV_GROUPS(2)
            else
                PV_GROUPS(1)
        }
    }
}

/* r1_f32_to_bf16 sixteen at a time, with the same integer steps. */
static SIMD void from_f32_avx512(uint16_t *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = mask16(n - i > 16 ? 16 : (int)(n - i));
        _mm256_mask_storeu_epi16(dst + i, m, bf16_round16(_mm512_maskz_loadu_ps(m, src + i)));
    }
}

static SIMD void to_f32_avx512(float *dst, const uint16_t *src, size_t n)
{
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = mask16(n - i > 16 ? 16 : (int)(n - i));
        __m512i h = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, src + i));
        _mm512_mask_storeu_ps(dst + i, m, _mm512_castsi512_ps(_mm512_slli_epi32(h, 16)));
    }
}

#endif

/* ------------------------------------------------------------------ AVX2 + FMA: fp32 rows */
/* The two fp32 row kernels for a CPU without AVX-512 BF16 (the AVX2 path: Zen 2 and 3, and
 * the AVX-512 CPUs without BF16 — Skylake-SP, Cascade Lake, Ice Lake — for which OpenBLAS
 * picks its SkylakeX kernels, whose small-matrix kernel sums in an order that depends on the
 * product's size: without these, a token's logits would depend on the rows decoded beside it
 * and a data-parallel rank's attention on its padding there, as they did on this project's
 * Zen 4 before its AVX-512 row kernels).  P·V gives the AVX-512 kernel's bits (each output
 * the same FMA chain in t order); the rows product sums each output in 8 lanes along Ci (lane
 * l: k = l mod 8) and then the lanes in a fixed tree, so its bits depend on Ci alone. */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define ROWS_AVX2 1
#define AVX2F __attribute__((target("avx2,fma")))
#define AVX2F_INLINE static inline __attribute__((always_inline)) AVX2F

/* Lanes [0, rem) of 8, for maskload and maskstore (which touch no masked-off lane). */
AVX2F_INLINE __m256i mask8(int rem)
{
    int r = rem < 0 ? 0 : rem > 8 ? 8 : rem;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(r), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* Rows r < R of out[r, c] (+)= sum over t of p[r·prs + t·pts] · v[t, c], columns [c0, c0+16). */
AVX2F_INLINE void pv2_group(float *out, int ldo, const float *p, long prs, long pts,
                            const float *v, int ldv, int n, int c0, int nc, int add, const int R)
{
    __m256 acc[4][2];
    __m256i m0 = mask8(nc - c0), m1 = mask8(nc - c0 - 8);
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
        acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (int t = 0; t < n; t++) {
        const float *vt = v + (size_t)t * ldv + c0;
        __m256 x0 = _mm256_maskload_ps(vt, m0), x1 = _mm256_maskload_ps(vt + 8, m1);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m256 b = _mm256_set1_ps(p[r * prs + t * pts]);
            acc[r][0] = _mm256_fmadd_ps(b, x0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(b, x1, acc[r][1]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
        float *o = out + (size_t)r * ldo + c0;
        __m256 y0 = acc[r][0], y1 = acc[r][1];
        if (add) { /* the chain first, then one rounded add, as the AVX-512 kernel */
            y0 = _mm256_add_ps(_mm256_maskload_ps(o, m0), y0);
            y1 = _mm256_add_ps(_mm256_maskload_ps(o + 8, m1), y1);
        }
        _mm256_maskstore_ps(o, m0, y0);
        _mm256_maskstore_ps(o + 8, m1, y1);
    }
}

static AVX2F void pv_avx2(float *out, int ldo, const float *p, long prs, long pts,
                          const float *v, int ldv, int rows, int n, int nc, int add)
{
    for (int r0 = 0; r0 < rows; r0 += 4) {
        int g = rows - r0 < 4 ? rows - r0 : 4;
        float *o = out + (size_t)r0 * ldo;
        const float *pr = p + r0 * prs;
        for (int c0 = 0; c0 < nc; c0 += 16)
            switch (g) {
            case 1: pv2_group(o, ldo, pr, prs, pts, v, ldv, n, c0, nc, add, 1); break;
            case 2: pv2_group(o, ldo, pr, prs, pts, v, ldv, n, c0, nc, add, 2); break;
            case 3: pv2_group(o, ldo, pr, prs, pts, v, ldv, n, c0, nc, add, 3); break;
            default: pv2_group(o, ldo, pr, prs, pts, v, ldv, n, c0, nc, add, 4); break;
            }
    }
}

/* The 8 lanes of a sum in a fixed tree: (l, l+4) in pairs, then (0, 2) and (1, 3), then the
 * two. */
AVX2F_INLINE float lanes8_sum(__m256 a)
{
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    return _mm_cvtss_f32(q) + _mm_cvtss_f32(_mm_shuffle_ps(q, q, 1));
}

/* out[n, o] (+)= sum over k of in[n·ldi + k] · w[o·Ci + k], 4 outputs of a token at a time. */
static AVX2F void matmul_f32_avx2(float *out, int ldo, const float *in, int ldi, const float *w,
                                  int N, int Ci, int Co, int add)
{
    for (int n = 0; n < N; n++) {
        const float *x = in + (size_t)n * ldi;
        float *on = out + (size_t)n * ldo;
        for (int o0 = 0; o0 < Co; o0 += 4) {
            int g = Co - o0 < 4 ? Co - o0 : 4;
            const float *wr[4];
            __m256 acc[4];
#pragma GCC unroll 4
            for (int r = 0; r < 4; r++) { /* past g: the last row again, its sum unused */
                wr[r] = w + (size_t)(o0 + (r < g ? r : g - 1)) * Ci;
                acc[r] = _mm256_setzero_ps();
            }
            for (int k = 0; k < Ci; k += 8) {
                __m256i m = mask8(Ci - k);
                __m256 xv = _mm256_maskload_ps(x + k, m);
#pragma GCC unroll 4
                for (int r = 0; r < 4; r++)
                    acc[r] = _mm256_fmadd_ps(_mm256_maskload_ps(wr[r] + k, m), xv, acc[r]);
            }
            for (int r = 0; r < g; r++) {
                float sum = lanes8_sum(acc[r]);
                on[o0 + r] = add ? on[o0 + r] + sum : sum;
            }
        }
    }
}
#else
#define ROWS_AVX2 0
#endif

/* ------------------------------------------------------------------ portable: fp32 rows */
/* The two fp32 row kernels in C, for the portable path, with the AVX2 path's bits (fmaf is one
 * rounding, as the vector FMAs): without them that path ran these products on sgemm, and a
 * decoding step's row had other bits beside other rows than alone (t_decode under
 * R1_ISA=portable). */
static void pv_portable(float *out, int ldo, const float *p, long prs, long pts, const float *v,
                        int ldv, int rows, int n, int nc, int add)
{
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < nc; c++) {
            float acc = 0;
            for (int t = 0; t < n; t++)
                acc = fmaf(p[r * prs + t * pts], v[(size_t)t * ldv + c], acc);
            float *o = out + (size_t)r * ldo + c;
            *o = add ? *o + acc : acc;
        }
}

/* 8 lanes (lane l: k = l mod 8, the columns past Ci adding 0 · 0 as the masked loads do),
 * then lanes8_sum's tree. */
static void matmul_f32_portable(float *out, int ldo, const float *in, int ldi, const float *w,
                                int N, int Ci, int Co, int add)
{
    for (int n = 0; n < N; n++) {
        const float *x = in + (size_t)n * ldi;
        for (int o = 0; o < Co; o++) {
            const float *wr = w + (size_t)o * Ci;
            float a[8] = {0};
            for (int k0 = 0; k0 < Ci; k0 += 8)
                for (int l = 0; l < 8; l++)
                    a[l] = k0 + l < Ci ? fmaf(wr[k0 + l], x[k0 + l], a[l]) : fmaf(0, 0, a[l]);
            float q0 = a[0] + a[4], q1 = a[1] + a[5], q2 = a[2] + a[6], q3 = a[3] + a[7];
            float sum = (q0 + q2) + (q1 + q3);
            float *on = out + (size_t)n * ldo + o;
            *on = add ? *on + sum : sum;
        }
    }
}

/* ------------------------------------------------------------------ dispatch */

/* The path follows the engine's (isa.c): AVX-512 BF16 when it is in use. */
static int use_simd(void)
{
    return BF16_SIMD && r1_isa_active() >= R1_ISA_AVX512BF16;
}

/* The fp32 row kernels' path: 1 AVX-512 (as use_simd), 2 AVX2 + FMA, 3 portable C. */
static int rows_path(void)
{
    if (use_simd())
        return 1;
    return ROWS_AVX2 && r1_isa_active() >= R1_ISA_AVX2 ? 2 : 3;
}

int r1_bf16_set_simd(int on)
{
    r1_error err;
    r1_isa_set(on ? r1_isa_best() : R1_ISA_PORTABLE, &err);
    return use_simd();
}

const char *r1_bf16_path(void)
{
#if BF16_SIMD
    if (use_simd())
        return "avx512-bf16";
#endif
    return "portable";
}

/* Pieces side by side: of rows (whole groups of 4 tokens), or, for one group alone (batch-1
 * decoding), of outputs (whole blocks of 16).  An output's sum does not depend on the rows or
 * the outputs beside it (each one chain along Ci), so neither on the cut.  A decoding step of
 * a GRPO group (64 rows) had run its attention projections and dense MLPs on one core, and a
 * batch-1 step every product (one group of rows: one piece).  Both weight types: bf16
 * (r1_matmul_bf16) and fp32 (r1__matmul_f32_rows). */
typedef struct {
    float *out;
    const float *in;
    const uint16_t *w16; /* else w32 */
    const float *w32;
    int ldo, N, Ci, Co, acc, parts, simd; /* simd: 1 AVX-512, 2 AVX2, 3 C (fp32 weights) */
    int ldi; /* the input's row stride (fp32 weights; bf16: Ci) */
    int cols; /* the pieces cut the outputs (else the rows) */
} rows_job;

static void rows_piece(void *ctx, int i, int tid)
{
    (void)tid;
    const rows_job *j = ctx;
    int lo = 0, hi = j->N, c0 = 0, c1 = j->Co;
    if (j->cols)
        r1__piece(j->Co, j->parts, i, 16, &c0, &c1);
    else
        r1__piece(j->N, j->parts, i, 4, &lo, &hi);
    if (lo >= hi || c0 >= c1)
        return;
    float *o = j->out + (size_t)lo * j->ldo + c0;
    const float *x = j->in + (size_t)lo * j->ldi;
    const float *w32 = j->w32 ? j->w32 + (size_t)c0 * j->Ci : NULL;
    const uint16_t *w16 = j->w16 ? j->w16 + (size_t)c0 * j->Ci : NULL;
    int n = hi - lo, co = c1 - c0;
    if (!w16 && j->simd == 3) {
        matmul_f32_portable(o, j->ldo, x, j->ldi, w32, n, j->Ci, co, j->acc);
        return;
    }
#if ROWS_AVX2
    if (j->simd == 2 && !w16) {
        matmul_f32_avx2(o, j->ldo, x, j->ldi, w32, n, j->Ci, co, j->acc);
        return;
    }
#endif
#if BF16_SIMD
    if (j->simd == 1 && !w16) {
        matmul_f32_avx512(o, j->ldo, x, j->ldi, w32, n, j->Ci, co, j->acc);
        return;
    }
    if (j->simd) {
        matmul_avx512(o, j->ldo, x, w16, n, j->Ci, co, j->acc);
        return;
    }
#endif
    matmul_portable(o, j->ldo, x, w16, n, j->Ci, co, j->acc);
}

static void rows_run(rows_job *j)
{
    int groups = (j->N + 3) / 4, blocks = (j->Co + 15) / 16;
    j->cols = groups == 1;
    j->parts = j->cols ? blocks / 4 : groups; /* output pieces of at least 64 */
    j->parts = j->parts < 1 ? 1 : j->parts < R1_MAX_WORKERS ? j->parts : R1_MAX_WORKERS;
    r1__parallel_for_work(r1__weigh_rows((long)j->N * j->Ci * j->Co, j->N), j->parts, rows_piece,
                          j);
}

void r1_matmul_bf16(float *out, const float *in, const uint16_t *w, int N, int Ci, int Co,
                    int accumulate)
{
    if (N <= 0 || Co <= 0)
        return;
    if (Ci <= 0) {
        if (!accumulate)
            memset(out, 0, sizeof *out * (size_t)N * Co);
        return;
    }
    rows_job j = {out, in, w, NULL, Co, N, Ci, Co, accumulate, 0, 0, Ci, 0};
#if BF16_SIMD
    j.simd = use_simd();
#endif
    rows_run(&j);
}

int r1__matmul_f32_rows_ld(float *out, int ldo, const float *in, int ldi, const float *w, int N,
                           int Ci, int Co, int accumulate)
{
    int path = rows_path();
    if (path && N > 0 && Ci > 0 && Co > 0) {
        rows_job j = {out, in, NULL, w, ldo, N, Ci, Co, accumulate, 0, path, ldi, 0};
        rows_run(&j);
        return 1;
    }
    return 0;
}

int r1__matmul_f32_rows(float *out, int ldo, const float *in, const float *w, int N, int Ci,
                        int Co, int accumulate)
{
    return r1__matmul_f32_rows_ld(out, ldo, in, Ci, w, N, Ci, Co, accumulate);
}


/* P·V on the row kernel of the path in use, stored or added; 0 (nothing written) without. */
static int pv_rows_any(float *out, int ldo, const float *p, long prs, long pts, const float *v,
                       int ldv, int rows, int n, int nc, int add)
{
    int path = rows_path();
    if (!path || rows <= 0 || n <= 0 || nc <= 0)
        return 0;
#if BF16_SIMD
    if (path == 1) {
        pv_avx512(out, ldo, p, prs, pts, v, ldv, rows, n, nc, add);
        return 1;
    }
#endif
#if ROWS_AVX2
    if (path == 2) {
        pv_avx2(out, ldo, p, prs, pts, v, ldv, rows, n, nc, add);
        return 1;
    }
#endif
    pv_portable(out, ldo, p, prs, pts, v, ldv, rows, n, nc, add);
    return 1;
}

int r1__pv_rows(float *out, int ldo, const float *p, int ldp, const float *v, int ldv, int rows,
                int n, int nc)
{
    return pv_rows_any(out, ldo, p, ldp, 1, v, ldv, rows, n, nc, 0);
}

int r1__pv_rows_add(float *out, int ldo, const float *p, long prs, long pts, const float *v,
                    int ldv, int rows, int n, int nc)
{
    return pv_rows_any(out, ldo, p, prs, pts, v, ldv, rows, n, nc, 1);
}

void r1_bf16_from_f32(uint16_t *dst, const float *src, size_t n)
{
#if BF16_SIMD
    if (use_simd()) {
        from_f32_avx512(dst, src, n);
        return;
    }
#endif
    from_f32_portable(dst, src, n);
}

void r1_bf16_to_f32_n(float *dst, const uint16_t *src, size_t n)
{
#if BF16_SIMD
    if (use_simd()) {
        to_f32_avx512(dst, src, n);
        return;
    }
#endif
    to_f32_portable(dst, src, n);
}
