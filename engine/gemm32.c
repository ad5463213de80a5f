/* gemm32.c — r1__gemm32 (contract in r1_gemm16.h): C = or += A·B in fp32, for fp32 training's
 * linear layers on CPUs with AVX-512 (the avx512bf16 and amx kernel paths, isa.c).
 *
 * Why not OpenBLAS, as before.  Two reasons, both measured.  Speed: Debian's OpenBLAS 0.3.21
 * picks its kernels at load time from the CPU or from OPENBLAS_CORETYPE, and on a Zen 5 whose
 * environment names Haswell it ran training's products at 89-101 GFLOP/s, 42-48% of one core's
 * AVX-512 fp32 peak, where this blocked product on 512-bit FMAs runs them at 159-201 (75-96%;
 * on a busy machine 116-199, 55-94%: README, "Performance") whatever the environment names.
 * Bits: sgemm gives a row other bits by its place in the product and the product's size (the
 * micro-kernel's rows on Haswell, a small-matrix kernel by size on SkylakeX and Cooperlake),
 * so a token's logits, and a near-tied routing after them, changed with the batch around it:
 * a data-parallel run matched one process only to ulps.
 * Here every output is one chain of fused multiply-adds over k in order, starting from 0 (or
 * from C when accumulating), rounded once per step as fmaf does: the bits depend on the
 * operands alone — not on M, N, the cut into pieces, the thread count or the blocking — and a
 * C loop of fmaf gives them too (t_gemm32 checks both).  Other CPUs keep sgemm (returns 0).
 *
 * Design, as gemm16.c and the BLIS family arrange a GEMM: K in blocks of KC; each block of B
 * is packed into panels of NR = 32 columns (all of a piece's columns at once when the heap has
 * room, else NC at a time on the stack), each block of MC = 32 rows of A into panels of MR = 8
 * rows, and an 8×32 micro-kernel keeps 16 registers of 16 sums while it walks one A panel
 * against one B panel, loading C first after the first block (so each output's chain simply
 * continues) and storing it back.  Packing is a copy here — fp32 stays fp32 — laid out to read
 * the source contiguously; A that runs along k is not packed at all but read in place, the
 * micro-kernel taking its row stride.  Never fails: without the heap, NC columns at a time
 * from about 100 KB of stack. */
#include <config.h>

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "parallel.h"
#include "r1.h"
#include "r1_gemm16.h"

/* A test build (t_gemm32_noheap) compiles this file with its allocations failing on demand,
 * so that the stack path is checked too. */
#ifdef R1_GEMM32_TEST_MALLOC
void *r1_test_malloc(size_t n);
#define malloc r1_test_malloc
#endif

#if (defined(__x86_64__) || defined(__i386__)) && defined(HAVE_AVX512BF16_INTRIN)
#include <immintrin.h>
#define GEMM32 1
#define SIMD __attribute__((target("avx512f")))
#endif

#ifdef GEMM32

#define MR 8
#define NR 32
/* MC: 32 rows against 16, 64 and 128, training's 13 shapes on one thread of a Zen 5, the
 * variants alternating: 191-194 GFLOP/s (geometric mean) against 157-184 */
#define MC 32
#define NC 64
#define KC 256

typedef struct {
    int kc;
    const float *a; /* A (r, p) at a[r*ars + p*aks] */
    long ars, aks;
    const float *b; /* B (p, c) at b[p*NR + c] */
    float *c;
    int ldc, mr, nr; /* the valid part of the 8×32 tile */
    int load;        /* the chains continue from C (else from 0) */
} tile;

static inline __mmask16 lanes(int n)
{
    return n >= 16 ? 0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1);
}

/* R (1-8, the tile's mr) rows × 32 columns in 2R registers; columns past nr are zero in the
 * packed B. */
static inline __attribute__((always_inline)) SIMD void uk_rows(const tile *t, const int R)
{
    __m512 s[MR][2];
    __mmask16 m0 = lanes(t->nr), m1 = lanes(t->nr - 16);
    /* C asked for ahead: the tile's own, which it stores after the k loop, or, when it
     * loads its own now, the next tile's (the rows below: the caller walks a panel's row
     * groups in order; past the matrix, a prefetch does not fault).  C is a step's
     * activations or gradients, cold.  Alternating medians, 2 threads, Zen 5: fp32 small
     * 1871 -> 2008 tokens/s, tiny 9753 -> 10284. */
    const float *cn = t->c + (t->load ? (long)MR * t->ldc : 0);
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        const float *cr = cn + (long)r * t->ldc;
        __builtin_prefetch(cr, 1, 3);
        __builtin_prefetch(cr + 16, 1, 3);
        __builtin_prefetch(cr + 31, 1, 3); /* a row of 32 floats may straddle three lines */
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        if (t->load && r < t->mr) {
            const float *cr = t->c + (long)r * t->ldc;
            s[r][0] = _mm512_maskz_loadu_ps(m0, cr);
            s[r][1] = _mm512_maskz_loadu_ps(m1, cr + 16);
        } else {
            s[r][0] = s[r][1] = _mm512_setzero_ps();
        }
    }
    const float *a = t->a;
    long ars = t->ars, aks = t->aks;
    for (int p = 0; p < t->kc; p++) {
        const float *bp = t->b + (long)p * NR;
        __m512 b0 = _mm512_loadu_ps(bp), b1 = _mm512_loadu_ps(bp + 16);
        const float *ap = a + p * aks;
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            __m512 x = _mm512_set1_ps(ap[r * ars]);
            s[r][0] = _mm512_fmadd_ps(x, b0, s[r][0]);
            s[r][1] = _mm512_fmadd_ps(x, b1, s[r][1]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        if (r >= t->mr)
            break;
        float *cr = t->c + (long)r * t->ldc;
        _mm512_mask_storeu_ps(cr, m0, s[r][0]);
        _mm512_mask_storeu_ps(cr + 16, m1, s[r][1]);
    }
}

/* As many rows as the tile has: A may be read in place, where no zero rows follow. */
static SIMD void uk(const tile *t)
{
    switch (t->mr) {
    case 8: uk_rows(t, 8); break;
    case 7: uk_rows(t, 7); break;
    case 6: uk_rows(t, 6); break;
    case 5: uk_rows(t, 5); break;
    case 4: uk_rows(t, 4); break;
    case 3: uk_rows(t, 3); break;
    case 2: uk_rows(t, 2); break;
    default: uk_rows(t, 1); break;
    }
}

/* ------------------------------------------------------------------ packing */

/* Element (i, k) of an operand seen as rows i along k: A(m,k), or B(k,n) as i = n. */
typedef struct {
    const float *f;
    long ld;
    int kmajor; /* (i, k) at f[k*ld + i], else f[i*ld + k] */
} view;

static view view_of(r1_gop o, int is_b)
{
    view v = {o.p, o.ld, is_b ? !o.trans : o.trans};
    return v;
}

#define PF_ROWS 4

/* x[i] (row i, 16 columns) becomes column i: a 16×16 transposition in three steps, pairs
 * within 128-bit lanes, then quads, then the lanes themselves (a gather a column had cost
 * 9.6% of a batch-1 decoding of the built-in model, in its 16-token prompt). */
static inline __attribute__((always_inline)) SIMD void transpose16(__m512 *x)
{
    __m512 t[16], u[16];
#pragma GCC unroll 8
    for (int m = 0; m < 8; m++) {
        t[2 * m] = _mm512_unpacklo_ps(x[2 * m], x[2 * m + 1]);
        t[2 * m + 1] = _mm512_unpackhi_ps(x[2 * m], x[2 * m + 1]);
    }
    /* u[4g + j], lane L: column 4L + j of rows 4g .. 4g + 3 */
#pragma GCC unroll 4
    for (int g = 0; g < 4; g++) {
        u[4 * g] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
        u[4 * g + 1] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0xee);
        u[4 * g + 2] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
        u[4 * g + 3] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xee);
    }
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        __m512 v0 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88);
        __m512 v1 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xdd);
        __m512 w0 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88);
        __m512 w1 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xdd);
        x[j] = _mm512_shuffle_f32x4(v0, w0, 0x88);
        x[8 + j] = _mm512_shuffle_f32x4(v0, w0, 0xdd);
        x[4 + j] = _mm512_shuffle_f32x4(v1, w1, 0x88);
        x[12 + j] = _mm512_shuffle_f32x4(v1, w1, 0xdd);
    }
}

/* Rows [i0, i0+n) × k [k0, k0+kc) of v into the panels of width w (MR or NR) that they fill:
 * row i's k at dst[(i / w) * w * kc + p * w + i % w] (k by k); rows past n, to the last
 * panel's edge, zero. */
static SIMD void pack(float *dst, int w, const view *v, long i0, int n, long k0, int kc)
{
    int width = (n + w - 1) / w * w;
    long pstride = (long)w * kc;
    if (v->kmajor) { /* one sweep over the source's rows k: 16 of its rows i at a time */
        for (int p = 0; p < kc; p++) {
            const float *s = v->f + (k0 + p) * v->ld + i0;
            /* the row PF_ROWS ahead, asked for now: each row is a short piece of a long row of
             * activations, cold, which the hardware prefetcher does not follow (gemm16.c) */
            if (p + PF_ROWS < kc)
                for (long at = 0; at < (long)n; at += 16)
                    _mm_prefetch((const char *)(s + PF_ROWS * v->ld + at), _MM_HINT_T0);
            for (int r = 0; r < width; r += 16) {
                __m512 x = _mm512_maskz_loadu_ps(lanes(n - r), s + r);
                if (w == NR) {
                    _mm512_mask_storeu_ps(dst + (r / NR) * pstride + (long)p * NR + r % NR,
                                          lanes(width - r), x);
                } else { /* 16 rows over two panels of 8 */
                    float *d = dst + (r / MR) * pstride + (long)p * MR;
                    _mm256_storeu_ps(d, _mm512_castps512_ps256(x));
                    if (r + MR < width)
                        _mm256_storeu_ps(d + pstride, _mm256_castpd_ps(_mm512_extractf64x4_pd(
                                                          _mm512_castps_pd(x), 1)));
                }
            }
        }
        return;
    }
    /* rows along k into k-by-k panels (B = W^T, a weight's rows): 16 rows × 16 k at a time,
     * turned in registers (transpose16) */
    for (int q = 0; q < width; q += w)
        for (int r = q; r < q + w; r += 16) {
            float *d = dst + (r / w) * pstride + r % w;
            int nr = n - r < 16 ? (n - r > 0 ? n - r : 0) : 16;
            for (int p = 0; p < kc; p += 16) {
                __mmask16 mk = lanes(kc - p);
                __m512 x[16];
#pragma GCC unroll 16
                for (int i = 0; i < 16; i++)
                    x[i] = i < nr ? _mm512_maskz_loadu_ps(mk, v->f + (i0 + r + i) * v->ld + k0 + p)
                                  : _mm512_setzero_ps();
                transpose16(x);
                int np = kc - p < 16 ? kc - p : 16;
                for (int kk = 0; kk < np; kk++)
                    _mm512_mask_storeu_ps(d + (long)(p + kk) * w, lanes(w - r % w), x[kk]);
            }
        }
}

/* ------------------------------------------------------------------ the blocked product */

typedef struct {
    float *C;
    int ldc, M, N, K, acc;
    view a, b;
    int cut_rows, parts;
    /* B packed once for every piece (pieces cut by rows): block kb of K at bpre + kb * bstride,
     * all N columns' panels; NULL: each piece packs B itself */
    float *bpre;
    long bstride;
    int wide;
} job;

static SIMD void block(const job *j, int m0, int m1, int n0, int n1)
{
    float bstack[KC * NC], apack[MC * KC];
    size_t wide = (size_t)(n1 - n0 + NR - 1) / NR * NR;
    int pre = j->bpre != NULL;
    float *bheap = !pre && wide > NC ? malloc(sizeof(float) * KC * wide) : NULL;
    float *bpack = bheap ? bheap : bstack;
    int ncb = pre || bheap ? n1 - n0 : NC;
    /* A from a source along k is read in place, its rows ld apart (a copy of each block had
     * cost 3.6% of a `tiny` fp32 step in memcpy); k-major A is packed into panels of MR */
    int direct = !j->a.kmajor;
    for (int jc = n0; jc < n1; jc += ncb) {
        int nc = n1 - jc < ncb ? n1 - jc : ncb;
        for (int pc = 0; pc < j->K; pc += KC) {
            int kc = j->K - pc < KC ? j->K - pc : KC;
            if (pre)
                bpack = j->bpre + (long)(pc / KC) * j->bstride + (long)jc * kc;
            else
                pack(bpack, NR, &j->b, jc, nc, pc, kc);
            for (int ic = m0; ic < m1; ic += MC) {
                int mc = m1 - ic < MC ? m1 - ic : MC;
                const float *ab = apack;
                long ars = 1, aks = MR, rstep = kc; /* a panel of MR rows: MR·kc floats */
                if (direct)
                    ab = j->a.f + (long)ic * j->a.ld + pc, ars = rstep = j->a.ld, aks = 1;
                else
                    pack(apack, MR, &j->a, ic, mc, pc, kc);
                for (int q = 0; q < nc; q += NR)
                    for (int r = 0; r < mc; r += MR) {
                        tile t = {kc, ab + (long)r * rstep, ars, aks, bpack + (long)q * kc,
                                  j->C + (long)(ic + r) * j->ldc + jc + q, j->ldc,
                                  mc - r < MR ? mc - r : MR, nc - q < NR ? nc - q : NR,
                                  pc > 0 || j->acc};
                        uk(&t);
                    }
            }
        }
    }
    free(bheap);
}

static void piece(void *ctx, int i, int tid)
{
    (void)tid;
    const job *j = ctx;
    int lo, hi;
    r1__piece(j->cut_rows ? j->M : j->N, j->parts, i, j->cut_rows ? MR : NR, &lo, &hi);
    if (hi <= lo)
        return;
    if (j->cut_rows)
        block(j, lo, hi, 0, j->N);
    else
        block(j, 0, j->M, lo, hi);
}

/* Item i of packing B once for every piece: panels [q0, q0 + BGROUP panels) of K block
 * i / groups. */
#define BGROUP 8

static void pack_b_item(void *ctx, int i, int tid)
{
    (void)tid;
    const job *j = ctx;
    int groups = (j->wide / NR + BGROUP - 1) / BGROUP;
    int pc = i / groups * KC, q0 = i % groups * BGROUP * NR;
    int q1 = q0 + BGROUP * NR < j->N ? q0 + BGROUP * NR : j->N;
    int kc = j->K - pc < KC ? j->K - pc : KC;
    pack(j->bpre + (long)(pc / KC) * j->bstride + (long)q0 * kc, NR, &j->b, q0, q1 - q0, pc,
         kc);
}

#endif /* GEMM32 */

int r1__gemm32_available(void)
{
#ifdef GEMM32
    return r1_isa_active() >= R1_ISA_AVX512BF16;
#else
    return 0;
#endif
}

const char *r1_isa_fp32_gemm(void) { return r1__gemm32_available() ? "r1lab" : "OpenBLAS"; }

int r1__gemm32(float *C, int ldc, int M, int N, int K, r1_gop A, r1_gop B, int accumulate)
{
    assert(!A.bf16 && !B.bf16); /* a caller's bug: bf16 operands go to r1__gemm16 */
    if (!r1__gemm32_available())
        return 0;
#ifdef GEMM32
    if (M <= 0 || N <= 0)
        return 1;
    if (K <= 0) {
        if (!accumulate)
            for (int m = 0; m < M; m++)
                memset(C + (long)m * ldc, 0, sizeof(float) * (size_t)N);
        return 1;
    }
    job j = {.C = C, .ldc = ldc, .M = M, .N = N, .K = K, .acc = accumulate, .a = view_of(A, 0),
             .b = view_of(B, 1), .cut_rows = 1, .parts = 1};
    /* the sums do not depend on the cut, so the product is cut by the threads there are */
    long work = (long)M * N * K;
    j.parts = r1__gemm_cut(work, M, N, &j.cut_rows);
    j.wide = (N + NR - 1) / NR * NR;
    j.bstride = (long)KC * j.wide;
    if (j.parts > 1 && j.cut_rows) { /* B packed once, side by side, for all the pieces */
        int blocks = (K + KC - 1) / KC, groups = (j.wide / NR + BGROUP - 1) / BGROUP;
        j.bpre = malloc(sizeof(float) * (size_t)j.bstride * (size_t)blocks);
        if (j.bpre)
            r1__parallel_for_work(work, blocks * groups, pack_b_item, &j);
    }
    if (j.parts > 1)
        r1__parallel_for_work(work, j.parts, piece, &j);
    else
        block(&j, 0, M, 0, N);
    free(j.bpre);
#endif
    return 1;
}
