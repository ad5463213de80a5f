/* gemm16.c — r1__gemm16 (contract in r1_gemm16.h): C = A·B on bf16 operands with fp32
 * accumulation, one micro-kernel per kernel path (isa.c): AMX tiles, AVX-512 BF16, AVX2 + FMA,
 * portable C.  (AMX takes 32x32 tiles of C, A packed row by row and K padded to 16 pairs; see
 * uk_amx.)
 *
 * Design, as the BLIS family of libraries arranges a GEMM.  The product is walked in blocks:
 * NC = 128 columns of B at a time; for each, K in blocks of KC = 256 (128 with FP8 scales,
 * one scale block); B's KC×NC block is packed once into panels of NR = 32 columns, then A in
 * blocks of MC = 64 rows, packed into panels of MR = 8 rows; an 8×32 micro-kernel multiplies
 * one A panel by one B panel into 16 registers of 16 fp32 (AVX-512) and adds them into C.
 * When it can have the memory (malloc, else the stack), all of a piece's columns are packed at
 * once instead of NC, so that A is read and packed once per block of K.  When B is packed for
 * all of K beforehand (a weight packed once, a B shared by the pieces, or a product in one
 * piece of more than one block of K and more rows than a chunk), the rows go in chunks of
 * about 256 KB of C, all of K for each chunk, so that C stays in cache from one block of K to
 * the next.
 * Packing rounds fp32 to bf16 (or copies bf16) and pairs neighbouring k: every element of a
 * panel is a 32-bit pair (even k in the low half), the operand layout of vdpbf16ps.  A panel
 * is stored pair-major or row-major, whichever reads the source contiguously; the micro-kernel
 * takes the two strides.  A source stored along K (both operands of dW, fp32; dX's weight,
 * bf16) is packed for all of a block's panels in one sweep of its rows (pack_kmajor_wide).
 * Packed operands go to the heap when it has room, else to about 120 KB of stack (and 64 KB
 * more for the AVX2 kernel's widened A, always on the stack), so a product never fails.
 *
 * The same order of sums everywhere (r1_gemm16.h): the AVX2 and portable kernels widen each
 * bf16 to fp32 (a shift or a mask), add the odd k's product and then the even k's, as
 * vdpbf16ps does; with exact products, an FMA and a multiply-then-add round the same.  The
 * epilogue (scales, store or add) rounds the scale product, the scaling and the sum one by
 * one on every path: epilogue() for the portable and AMX kernels, kept out of line so that
 * no path contracts it into an FMA, and the same steps in registers in the AVX-512 and AVX2
 * kernels. */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "parallel.h"
#include "r1.h"
#include "r1_gemm16.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define X86 1
#define AVX2 __attribute__((target("avx2,fma")))
#if defined(HAVE_AVX512BF16_INTRIN)
#define SIMD512 __attribute__((target("avx512f,avx512bf16,avx512bw,avx512vl")))
#include "bf16_simd.h"
#include "fp8_simd.h"
#endif
#endif

/* AMX (tdpbf16ps on tiles of 16 rows x 64 bytes), when the compiler has its intrinsics.  A
 * test build (t_gemm16_amx, R1_AMX_EMULATE) runs the same kernel with the tile operations
 * written in C, so that its blocking and packing are checked on machines without AMX. */
#if defined(SIMD512) && (defined(HAVE_AMX_INTRIN) || defined(R1_AMX_EMULATE))
#define AMX_PATH 1
#ifdef R1_AMX_EMULATE
#define AMXT
#else
#define AMXT __attribute__((target("amx-tile,amx-bf16")))
#endif
#endif

#define MR 8
#define NR 32
#define MC 64
#define NC 128
#define KC R1_GEMM16_KC
#define AMR 32 /* AMX: rows of C per micro-kernel call, two A tiles of 16 */

typedef struct {
    int kp;              /* pairs of k */
    const uint32_t *a;   /* A pair (r, p) at a[r*ars + p*aks] */
    long ars, aks;
    const uint32_t *b;   /* B pair (p, c) at b[p*NR + c] */
    float *c;
    int ldc, mr, nr;     /* the valid part of the 8×32 tile */
    int store;           /* C = result (else C += result) */
    const float *sa;     /* FP8: result = sum · sa[r] · sb[c] */
    const float *sb;
} tile;

/* ------------------------------------------------------------------ the shared pieces */

static inline float lo_f(uint32_t p) /* the even k's bf16 as fp32 */
{
    uint32_t u = p << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline float hi_f(uint32_t p) /* the odd k's */
{
    uint32_t u = p & 0xffff0000u;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* fp32 to bf16, nearest even; a NaN stays a quiet NaN (as r1_f32_to_bf16). */
static inline uint32_t to16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    return (u & 0x7fffffffu) > 0x7f800000u ? (u >> 16) | 0x40u : r;
}

/* Never contracted into FMAs, whatever the build flags: the AVX-512 epilogue below rounds the
 * product and the sum separately too. */
__attribute__((noinline, optimize("-ffp-contract=off"))) static void epilogue(const tile *t,
                                                                            float acc[MR][NR])
{
    for (int r = 0; r < t->mr; r++) {
        float *cr = t->c + (long)r * t->ldc;
        if (t->sa) {
            for (int c = 0; c < t->nr; c++) {
                float s = t->sa[r] * t->sb[c], v = acc[r][c] * s;
                cr[c] = t->store ? v : cr[c] + v;
            }
        } else if (t->store) {
            memcpy(cr, acc[r], sizeof(float) * (size_t)t->nr);
        } else {
            for (int c = 0; c < t->nr; c++)
                cr[c] += acc[r][c];
        }
    }
}

/* ------------------------------------------------------------------ micro-kernels */

static void uk_portable(const tile *t)
{
    float acc[MR][NR];
    memset(acc, 0, sizeof acc);
    for (int p = 0; p < t->kp; p++) {
        const uint32_t *bp = t->b + (long)p * NR;
        float bo[NR], be[NR];
        for (int c = 0; c < NR; c++) {
            bo[c] = hi_f(bp[c]);
            be[c] = lo_f(bp[c]);
        }
        for (int r = 0; r < t->mr; r++) {
            uint32_t ap = t->a[r * t->ars + p * t->aks];
            float ao = hi_f(ap), ae = lo_f(ap);
            for (int c = 0; c < NR; c++) {
                float s = acc[r][c] + ao * bo[c];
                acc[r][c] = s + ae * be[c];
            }
        }
    }
    epilogue(t, acc);
}

#ifdef X86
/* The AVX2 path: no bf16 arithmetic, so each pair is widened to two fp32 and multiplied with
 * FMAs, the odd k first, as the portable kernel does.  A is widened once, as block() packs it
 * (widen_a: a pair as two floats, the odd k's first); B's pair in the loop (a mask for the odd
 * k, a shift for the even).  Each output's sum is one chain of FMAs, 2 a pair in the portable
 * order, so the chains are what the two FMA pipes overlap: the 8 x 32 tile goes as 6 rows x 16
 * columns twice (12 chains) and its last 2 rows x 32 columns (8); each pair in two passes, the
 * odd k's products of every chain and then the even k's, so that 12 accumulators, a half of
 * B's pair, A's broadcast and the mask fit in the 16 registers.  On Zen 3, one thread, against
 * the kernel before (4 rows x 16 columns, both halves at once, A's pair widened in the loop:
 * 12 integer operations to 16 FMAs), alternating in one process: 1.13-1.36x on training's
 * shapes; the 6-row tiles alone, A still widened in the loop, 1.00-1.08x: the integer
 * operations, not the chains, had held it. */
/* The mask of the odd k's halves, read by the kernels' loops into their 16th register */
static const __m256i hi_mask = {(long long)0xffff0000ffff0000ull, (long long)0xffff0000ffff0000ull,
                                (long long)0xffff0000ffff0000ull, (long long)0xffff0000ffff0000ull};

/* 8 outputs of row r at column c from v, as epilogue() rounds them: the scale product, then
 * the scaling, then the sum, each rounded (the empty asm keeps the compiler from fusing the
 * scaling and the sum into one FMA). */
static inline __attribute__((always_inline)) AVX2 void put8(const tile *t, int r, int c, __m256 v)
{
    int n = t->nr - c;
    if (n <= 0 || r >= t->mr)
        return;
    float *cr = t->c + (long)r * t->ldc + c;
    __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    if (t->sa) {
        __m256 sb = n >= 8 ? _mm256_loadu_ps(t->sb + c) : _mm256_maskload_ps(t->sb + c, m);
        __m256 s = _mm256_mul_ps(_mm256_set1_ps(t->sa[r]), sb);
        __asm__("" : "+x"(s));
        v = _mm256_mul_ps(v, s);
        __asm__("" : "+x"(v));
    }
    if (n >= 8) {
        if (!t->store)
            v = _mm256_add_ps(_mm256_loadu_ps(cr), v);
        _mm256_storeu_ps(cr, v);
    } else {
        if (!t->store)
            v = _mm256_add_ps(_mm256_maskload_ps(cr, m), v);
        _mm256_maskstore_ps(cr, m, v);
    }
}

/* The sums of rows [r0, r0 + rows) x blocks of 8 columns from c0, row by row at s: out of line,
 * so that the epilogue's constants are not kept in registers the kernels' loops need */
static __attribute__((noinline)) AVX2 void put_rows(const tile *t, int r0, int c0, int rows,
                                                    int blocks, const __m256 *s)
{
    for (int r = 0; r < rows; r++)
        for (int b = 0; b < blocks; b++)
            put8(t, r0 + r, c0 + 8 * b, s[r * blocks + b]);
}

/* The kernels' loops are written in assembly: in C, GCC kept the 12 accumulators, the two
 * halves of B, A's broadcast and the mask in the 16 registers only by spilling some of them
 * (it reused A's broadcasts across the two passes).  One row's pass: A's pair broadcast, its
 * half taken (the mask, or a shift), then an FMA into each accumulator of the row, the products
 * in the portable kernel's order. */
#define ODD_A(at, y0, y1, s0, s1)                                                               \
    "vbroadcastss " at ", %%ymm14\n\t"                                                         \
    "vfmadd231ps %%ymm" y0 ", %%ymm14, %[" s0 "]\n\t"                                          \
    "vfmadd231ps %%ymm" y1 ", %%ymm14, %[" s1 "]\n\t"
#define ZERO(s) "vxorps %[" s "], %[" s "], %[" s "]\n\t"
#define EVEN_A(at, y0, y1, s0, s1)                                                              \
    "vbroadcastss 4" at ", %%ymm14\n\t"                                                        \
    "vfmadd231ps %%ymm" y0 ", %%ymm14, %[" s0 "]\n\t"                                          \
    "vfmadd231ps %%ymm" y1 ", %%ymm14, %[" s1 "]\n\t"

/* A row's pass (ODD_A or EVEN_A) for each of the 6 rows, rows 3-5 from a3 */
#define SIX(F)                                                                                 \
    F("(%[a])", "12", "13", "s00", "s01")                                                      \
    F("(%[a],%[ra])", "12", "13", "s10", "s11")                                                \
    F("(%[a],%[ra],2)", "12", "13", "s20", "s21")                                              \
    F("(%[a3])", "12", "13", "s30", "s31")                                                     \
    F("(%[a3],%[ra])", "12", "13", "s40", "s41")                                               \
    F("(%[a3],%[ra],2)", "12", "13", "s50", "s51")

/* Rows r0 .. r0+5 x columns c0 .. c0+15: 12 chains. */
static inline __attribute__((always_inline)) AVX2 void rows6(const tile *t, int r0, int c0)
{
    __m256 s00, s01, s10, s11, s20, s21, s30, s31, s40, s41, s50, s51;
    const uint32_t *a = t->a + 2 * r0 * t->ars, *a3 = a + 6 * t->ars, *b = t->b + c0;
    long ra = t->ars * 8, st = t->aks * 8, n = t->kp; /* bytes between rows, between pairs */
    __asm__(ZERO("s00") ZERO("s01") ZERO("s10") ZERO("s11") ZERO("s20") ZERO("s21")
            ZERO("s30") ZERO("s31") ZERO("s40") ZERO("s41") ZERO("s50") ZERO("s51")
            "vmovdqa %[hm], %%ymm15\n\t"
            "test %[n], %[n]\n\t"
            "jle 2f\n\t"
            "1:\n\t"
                "vpand (%[b]), %%ymm15, %%ymm12\n\t"
                "vpand 32(%[b]), %%ymm15, %%ymm13\n\t"
                SIX(ODD_A)
                "vmovdqu (%[b]), %%ymm12\n\t"
                "vmovdqu 32(%[b]), %%ymm13\n\t"
                "vpslld $16, %%ymm12, %%ymm12\n\t"
                "vpslld $16, %%ymm13, %%ymm13\n\t"
                SIX(EVEN_A)
                "add %[st], %[a]\n\t"
                "add %[st], %[a3]\n\t"
                "sub $-128, %[b]\n\t"
                "dec %[n]\n\t"
                "jnz 1b\n\t"
                "2:"
                : [s00] "=&x"(s00), [s01] "=&x"(s01), [s10] "=&x"(s10), [s11] "=&x"(s11),
                  [s20] "=&x"(s20), [s21] "=&x"(s21), [s30] "=&x"(s30), [s31] "=&x"(s31),
                  [s40] "=&x"(s40), [s41] "=&x"(s41), [s50] "=&x"(s50), [s51] "=&x"(s51),
                  [a] "+r"(a), [a3] "+r"(a3), [b] "+r"(b), [n] "+r"(n)
                : [ra] "r"(ra), [st] "r"(st), [hm] "m"(hi_mask)
                : "xmm12", "xmm13", "xmm14", "xmm15", "cc", "memory");
    __m256 s[12] = {s00, s01, s10, s11, s20, s21, s30, s31, s40, s41, s50, s51};
    put_rows(t, r0, c0, 6, 2, s);
}

/* A row's pass for each of the 2 rows, B's 4 blocks of 8 columns in ymm10-13 */
#define TWO(F)                                                                                 \
    F("(%[a])", "10", "11", "s00", "s01")                                                      \
    "vfmadd231ps %%ymm12, %%ymm14, %[s02]\n\t"                                                 \
    "vfmadd231ps %%ymm13, %%ymm14, %[s03]\n\t"                                                 \
    F("(%[a],%[ra])", "10", "11", "s10", "s11")                                                \
    "vfmadd231ps %%ymm12, %%ymm14, %[s12]\n\t"                                                 \
    "vfmadd231ps %%ymm13, %%ymm14, %[s13]\n\t"

/* Rows r0 and r0+1 x all 32 columns: 8 chains. */
static inline __attribute__((always_inline)) AVX2 void rows2(const tile *t, int r0)
{
    __m256 s00, s01, s02, s03, s10, s11, s12, s13;
    const uint32_t *a = t->a + 2 * r0 * t->ars, *b = t->b;
    long ra = t->ars * 8, st = t->aks * 8, n = t->kp;
    __asm__(ZERO("s00") ZERO("s01") ZERO("s02") ZERO("s03") ZERO("s10") ZERO("s11")
            ZERO("s12") ZERO("s13")
            "vmovdqa %[hm], %%ymm15\n\t"
            "test %[n], %[n]\n\t"
            "jle 2f\n\t"
            "1:\n\t"
                "vpand (%[b]), %%ymm15, %%ymm10\n\t"
                "vpand 32(%[b]), %%ymm15, %%ymm11\n\t"
                "vpand 64(%[b]), %%ymm15, %%ymm12\n\t"
                "vpand 96(%[b]), %%ymm15, %%ymm13\n\t"
                TWO(ODD_A)
                "vmovdqu (%[b]), %%ymm10\n\t"
                "vmovdqu 32(%[b]), %%ymm11\n\t"
                "vmovdqu 64(%[b]), %%ymm12\n\t"
                "vmovdqu 96(%[b]), %%ymm13\n\t"
                "vpslld $16, %%ymm10, %%ymm10\n\t"
                "vpslld $16, %%ymm11, %%ymm11\n\t"
                "vpslld $16, %%ymm12, %%ymm12\n\t"
                "vpslld $16, %%ymm13, %%ymm13\n\t"
                TWO(EVEN_A)
                "add %[st], %[a]\n\t"
                "sub $-128, %[b]\n\t"
                "dec %[n]\n\t"
                "jnz 1b\n\t"
                "2:"
                : [s00] "=&x"(s00), [s01] "=&x"(s01), [s02] "=&x"(s02), [s03] "=&x"(s03),
                  [s10] "=&x"(s10), [s11] "=&x"(s11), [s12] "=&x"(s12), [s13] "=&x"(s13),
                  [a] "+r"(a), [b] "+r"(b), [n] "+r"(n)
                : [ra] "r"(ra), [st] "r"(st), [hm] "m"(hi_mask)
                : "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "cc", "memory");
    __m256 s[8] = {s00, s01, s02, s03, s10, s11, s12, s13};
    put_rows(t, r0, 0, 2, 4, s);
}
#undef TWO
#undef SIX
#undef ZERO
#undef ODD_A
#undef EVEN_A

/* The pairs of a packed A as two fp32 each, the odd k's first: the AVX2 kernel's A. */
static AVX2 void widen_a(float *dst, const uint32_t *src, long n)
{
    const __m256i hi = _mm256_set1_epi32((int)0xffff0000u);
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i x = _mm256_loadu_si256((const __m256i *)(src + i));
        __m256 o = _mm256_castsi256_ps(_mm256_and_si256(x, hi));
        __m256 e = _mm256_castsi256_ps(_mm256_slli_epi32(x, 16));
        __m256 l = _mm256_unpacklo_ps(o, e), h = _mm256_unpackhi_ps(o, e);
        _mm256_storeu_ps(dst + 2 * i, _mm256_permute2f128_ps(l, h, 0x20));
        _mm256_storeu_ps(dst + 2 * i + 8, _mm256_permute2f128_ps(l, h, 0x31));
    }
    for (; i < n; i++) {
        dst[2 * i] = hi_f(src[i]);
        dst[2 * i + 1] = lo_f(src[i]);
    }
}

static AVX2 void uk_avx2(const tile *t)
{
    for (int r = 0; r < t->mr; r++) { /* C, cold, asked for now (as uk_rows does) */
        const float *cr = t->c + (long)r * t->ldc;
        __builtin_prefetch(cr, 1, 3);
        __builtin_prefetch(cr + 16, 1, 3);
        __builtin_prefetch(cr + 31, 1, 3);
    }
    if (t->mr > 4) { /* rows past mr are zero in the panel: their sums are not stored */
        rows6(t, 0, 0);
        if (t->nr > 16)
            rows6(t, 0, 16);
        if (t->mr > 6)
            rows2(t, 6);
    } else {
        rows2(t, 0);
        if (t->mr > 2)
            rows2(t, 2);
    }
}
#endif

#ifdef SIMD512
/* The mask of the first n of 16 lanes (n clamped to 0..16). */
static inline __mmask16 lanes(int n)
{
    return n >= 16 ? 0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1);
}

/* R (8, 4, 2 or 1) rows × 32 columns: 2R accumulators; each A pair is broadcast from memory.
 * A tile of few rows (a decoding step of one token) takes the narrow form: each output's sum
 * is its own, so the bits are the same. */
static inline __attribute__((always_inline)) SIMD512 void uk_rows(const tile *t, const int R)
{
    __m512 s[MR][2];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
        s[r][0] = s[r][1] = _mm512_setzero_ps();
    const uint32_t *a = t->a;
    long ars = t->ars, aks = t->aks;
    /* The tile's C is asked for now and stored (or added to) only after the k loop: C is
     * the activations or gradients of a step, 4-11 MB, cold, and its lines had come in one
     * miss at a time in the epilogue.  Alternating medians, 2 threads, Zen 5: bf16 small
     * 2461 -> 2732 tokens/s, tiny 11506 -> 13404, fp8 small 2006 -> 2161. */
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        if (r >= t->mr)
            break;
        const float *cr = t->c + (long)r * t->ldc;
        __builtin_prefetch(cr, 1, 3);
        __builtin_prefetch(cr + 16, 1, 3);
        __builtin_prefetch(cr + 31, 1, 3); /* a row of 32 floats may straddle three lines */
    }
    for (int p = 0; p < t->kp; p++) {
        const uint32_t *bp = t->b + (long)p * NR;
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(bp);
        __m512bh b1 = (__m512bh)_mm512_loadu_si512(bp + 16);
        const uint32_t *ap = a + p * aks;
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            __m512bh x = (__m512bh)_mm512_set1_epi32((int)ap[r * ars]);
            s[r][0] = _mm512_dpbf16_ps(s[r][0], x, b0);
            s[r][1] = _mm512_dpbf16_ps(s[r][1], x, b1);
        }
    }
    /* the epilogue's arithmetic in registers, rounding as epilogue() does */
    const int rn = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    __mmask16 m0 = lanes(t->nr), m1 = lanes(t->nr - 16);
    __m512 sb0 = _mm512_setzero_ps(), sb1 = sb0;
    if (t->sa) {
        sb0 = _mm512_maskz_loadu_ps(m0, t->sb);
        sb1 = _mm512_maskz_loadu_ps(m1, t->sb + 16);
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        if (r >= t->mr)
            break;
        float *cr = t->c + (long)r * t->ldc;
        __m512 v0 = s[r][0], v1 = s[r][1];
        if (t->sa) {
            __m512 sr = _mm512_set1_ps(t->sa[r]);
            v0 = _mm512_mul_round_ps(v0, _mm512_mul_round_ps(sr, sb0, rn), rn);
            v1 = _mm512_mul_round_ps(v1, _mm512_mul_round_ps(sr, sb1, rn), rn);
        }
        if (!t->store) {
            v0 = _mm512_add_round_ps(_mm512_maskz_loadu_ps(m0, cr), v0, rn);
            v1 = _mm512_add_round_ps(_mm512_maskz_loadu_ps(m1, cr + 16), v1, rn);
        }
        _mm512_mask_storeu_ps(cr, m0, v0);
        _mm512_mask_storeu_ps(cr + 16, m1, v1);
    }
}

static SIMD512 void uk_avx512(const tile *t)
{
    if (t->mr > 4)
        uk_rows(t, 8);
    else if (t->mr > 2)
        uk_rows(t, 4);
    else if (t->mr > 1)
        uk_rows(t, 2);
    else
        uk_rows(t, 1);
}
#endif

#ifdef AMX_PATH
/* 32 rows x 32 columns of C in four tiles (0-3), A in two tiles of 16 rows (4, 5), B in two
 * of 16 columns (6, 7); each tile 16 rows of 64 bytes, 16 pairs of k a row.  A is packed row
 * by row (pair (r, p) at a[r * ars + p]), B's panel is pair-major as for every path (pair
 * (p, c) at b[p * NR + c]): exactly the tiles' layout, rows 64 and 128 bytes apart.  t->kp is
 * a multiple of 16 here, the pairs past the block's zero in both operands.  Rows of A past
 * t->mr may hold anything: their outputs are never stored.
 *
 * The order of sums is the hardware's (the SDM leaves it open within one tdpbf16ps: 16 pairs,
 * even and odd products), so this path's bits differ from the others' in the last places,
 * within the same bound (r1_gemm16.h); it still depends on K alone, never on the cut. */
#ifdef R1_AMX_EMULATE
/* The tiles of this thread, and the instructions as the SDM describes them: each pair's even
 * product then its odd one added to the fp32 sum, rounded each time (the products are exact). */
static __thread uint32_t emu[8][16][16];

static void tile_zero(int i) { memset(emu[i], 0, sizeof emu[i]); }

static void tile_load(int i, const void *p, long stride)
{
    for (int r = 0; r < 16; r++)
        memcpy(emu[i][r], (const char *)p + r * stride, 64);
}

static void tile_store(int i, void *p, long stride)
{
    for (int r = 0; r < 16; r++)
        memcpy((char *)p + r * stride, emu[i][r], 64);
}

static void tile_dp(int c, int a, int b)
{
    for (int m = 0; m < 16; m++)
        for (int n = 0; n < 16; n++) {
            float acc;
            memcpy(&acc, &emu[c][m][n], 4);
            for (int k = 0; k < 16; k++) {
                acc += lo_f(emu[a][m][k]) * lo_f(emu[b][k][n]);
                acc += hi_f(emu[a][m][k]) * hi_f(emu[b][k][n]);
            }
            memcpy(&emu[c][m][n], &acc, 4);
        }
}
#define TILE_ZERO(i) tile_zero(i)
#define TILE_LOAD(i, p, s) tile_load(i, p, s)
#define TILE_STORE(i, p, s) tile_store(i, p, s)
#define TILE_DP(c, a, b) tile_dp(c, a, b)
#define TILE_CONFIG(cfg) ((void)(cfg))
#define TILE_RELEASE() ((void)0)
#else
#define TILE_ZERO(i) _tile_zero(i)
#define TILE_LOAD(i, p, s) _tile_loadd(i, p, s)
#define TILE_STORE(i, p, s) _tile_stored(i, p, s)
#define TILE_DP(c, a, b) _tile_dpbf16ps(c, a, b)
#define TILE_CONFIG(cfg) _tile_loadconfig(cfg)
#define TILE_RELEASE() _tile_release()
#endif

/* The tile configuration (palette 1): the eight tiles above, each 16 rows of 64 bytes.  It is
 * per thread, so each piece of a product loads it (block()). */
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tilecfg;

static AMXT void amx_begin(void)
{
    _Alignas(64) tilecfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int i = 0; i < 8; i++) {
        cfg.colsb[i] = 64;
        cfg.rows[i] = 16;
    }
    TILE_CONFIG(&cfg);
}

static AMXT void amx_end(void) { TILE_RELEASE(); }

static AMXT void uk_amx(const tile *t)
{
    long as = t->ars * (long)sizeof(uint32_t), bs = NR * (long)sizeof(uint32_t);
    TILE_ZERO(0);
    TILE_ZERO(1);
    TILE_ZERO(2);
    TILE_ZERO(3);
    for (int p = 0; p < t->kp; p += 16) {
        TILE_LOAD(4, t->a + p, as);
        TILE_LOAD(5, t->a + 16 * t->ars + p, as);
        TILE_LOAD(6, t->b + (long)p * NR, bs);
        TILE_LOAD(7, t->b + (long)p * NR + 16, bs);
        TILE_DP(0, 4, 6);
        TILE_DP(1, 4, 7);
        TILE_DP(2, 5, 6);
        TILE_DP(3, 5, 7);
    }
    float acc[AMR][NR];
    TILE_STORE(0, acc[0], bs);
    TILE_STORE(1, acc[0] + 16, bs);
    TILE_STORE(2, acc[16], bs);
    TILE_STORE(3, acc[16] + 16, bs);
    for (int g = 0; g < AMR / MR && g * MR < t->mr; g++) { /* the epilogue by 8 rows */
        tile s = *t;
        s.c = t->c + (long)g * MR * t->ldc;
        s.mr = t->mr - g * MR < MR ? t->mr - g * MR : MR;
        s.sa = t->sa ? t->sa + g * MR : NULL;
        epilogue(&s, acc + g * MR);
    }
}
#endif

typedef void (*ukernel)(const tile *t);

static ukernel pick(void)
{
    r1_isa i = r1_isa_active();
#if defined(AMX_PATH) && defined(R1_AMX_EMULATE)
    if (i >= R1_ISA_AVX512BF16) /* the emulated tiles stand in for the machine's best path */
        return uk_amx;
#elif defined(AMX_PATH)
    if (i >= R1_ISA_AMX)
        return uk_amx;
#endif
#ifdef SIMD512
    if (i >= R1_ISA_AVX512BF16)
        return uk_avx512;
#endif
#ifdef X86
    if (i >= R1_ISA_AVX2)
        return uk_avx2;
#endif
    (void)i;
    return uk_portable;
}

/* ------------------------------------------------------------------ packing */

/* Element (i, k) of an operand seen as rows i along k: A(m,k), or B(k,n) as i = n. */
typedef struct {
    const float *f;
    const uint16_t *h;
    long ld;
    int kmajor; /* (i, k) at p[k*ld + i], else p[i*ld + k] */
} view;

static view view_of(r1_gop o, int is_b)
{
    view v = {o.bf16 ? NULL : o.p, o.bf16 ? o.p : NULL, o.ld, is_b ? !o.trans : o.trans};
    return v;
}

static inline uint32_t get16(const view *v, long at)
{
    return v->h ? v->h[at] : to16(v->f[at]);
}

/* Packs rows [i0, i0+n) × k [k0, k0+kc) of v into pairs: pair (r, p) at dst[r*rs + p*ps];
 * rows past n and the odd k past kc are zero. */
static void pack(uint32_t *dst, long rs, long ps, int rows, const view *v, long i0, int n, long k0,
                 int kc)
{
    int kp = (kc + 1) / 2;
    if (!v->kmajor) {
        for (int r = 0; r < rows; r++) {
            uint32_t *d = dst + r * rs;
            if (r >= n) {
                for (int p = 0; p < kp; p++)
                    d[p * ps] = 0;
                continue;
            }
            long at = (i0 + r) * v->ld + k0;
            int p = 0;
            if (v->h)
                for (; 2 * p + 1 < kc; p++)
                    d[p * ps] = (uint32_t)v->h[at + 2 * p] | (uint32_t)v->h[at + 2 * p + 1] << 16;
            else
                for (; 2 * p + 1 < kc; p++)
                    d[p * ps] = to16(v->f[at + 2 * p]) | to16(v->f[at + 2 * p + 1]) << 16;
            if (p < kp)
                d[p * ps] = get16(v, at + 2 * p);
        }
        return;
    }
    for (int p = 0; p < kp; p++) {
        long k = k0 + 2 * p;
        int odd = 2 * p + 1 < kc;
        const long e = k * v->ld + i0, o = e + v->ld;
        uint32_t *d = dst + p * ps;
        int r = 0;
        if (!v->h && odd)
            for (; r < n; r++)
                d[r * rs] = to16(v->f[e + r]) | to16(v->f[o + r]) << 16;
        for (; r < n; r++)
            d[r * rs] = get16(v, e + r) | (odd ? get16(v, o + r) << 16 : 0);
        for (; r < rows; r++)
            d[r * rs] = 0;
    }
}

/* Packing A's rows along k asks for the row PF_ROWS ahead while it rounds this one: an
 * activation comes cold from memory, and each row is a short stream the hardware prefetcher
 * only catches after its first lines.  A 384x128x512 product with A cold, one thread: 211-245
 * -> 335-354 GFLOP/s.  (Rows past the matrix are asked for too: a prefetch never faults.) */
#define PF_ROWS 4

/* Asks for the kc floats at f (a row PF_ROWS ahead; past the matrix too: a prefetch never
 * faults). */
static inline void ask_ahead(const float *f, int kc)
{
    for (int b = 0; b < kc; b += 16)
        __builtin_prefetch(f + b, 0, 3);
}

#ifdef SIMD512
/* The same packing for the two operand layouts training feeds most (fp32 activations and
 * gradients, bf16 weights), 16 pairs at a time, bit for bit as pack() rounds: integer round
 * to nearest even, a quiet NaN kept (bf16_simd.h).  Full panels only; pack() does the rest.
 * load_round: 16 fp32 (masked) rounded, in the high halves. */
static SIMD512 inline __m512i load_round(const float *f, __mmask16 m)
{
    return bf16_round_hi(_mm512_castps_si512(_mm512_maskz_loadu_ps(m, f)));
}

/* The kc floats at f as (kc + 1) / 2 pairs at d (an odd k past kc: zero): 32 floats give 16
 * pairs. */
static SIMD512 inline void pair_row(uint32_t *d, const float *f, int kc)
{
    const __m512i sel = _mm512_set_epi16(63, 61, 59, 57, 55, 53, 51, 49, 47, 45, 43, 41, 39, 37,
                                         35, 33, 31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7,
                                         5, 3, 1);
    int kp = (kc + 1) / 2;
    for (int p = 0; p < kp; p += 16) {
        int left = kc - 2 * p; /* floats left in this row of the block */
        __mmask16 m0 = lanes(left), m1 = lanes(left - 16);
        __m512i x = _mm512_permutex2var_epi16(load_round(f + 2 * p, m0), sel,
                                              load_round(f + 2 * p + 16, m1));
        int np = kp - p < 16 ? kp - p : 16;
        _mm512_mask_storeu_epi32(d + p, (__mmask16)((1u << np) - 1), x);
    }
}

/* 16 pairs of a k-major source: the even k's row at e (lanes m) in the low halves, the odd
 * k's at o (lanes mo) in the high ones, fp32 rounded; lanes past m zero. */
static SIMD512 inline __m512i pairs16(const view *v, long e, long o, __mmask16 m, __mmask16 mo)
{
    if (v->h) {
        __m512i l = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, v->h + e));
        __m512i h = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mo, v->h + o));
        return _mm512_or_si512(l, _mm512_slli_epi32(h, 16));
    }
    __m512i l = load_round(v->f + e, m), h = load_round(v->f + o, mo);
    __m512i x = _mm512_mask_blend_epi16(0xaaaaaaaau, _mm512_srli_epi32(l, 16), h);
    return _mm512_maskz_mov_epi32(m, x); /* rows past n: zero */
}

static SIMD512 int pack_avx512(uint32_t *dst, long rs, long ps, int rows, const view *v, long i0,
                               int n, long k0, int kc)
{
    int kp = (kc + 1) / 2, odd = kc & 1;
    if (!v->kmajor && ps == 1 && !v->h) { /* A rows along k */
        for (int r = 0; r < rows; r++) {
            uint32_t *d = dst + r * rs;
            ask_ahead(v->f + (i0 + r + PF_ROWS) * v->ld + k0, kc);
            if (r >= n)
                memset(d, 0, sizeof(uint32_t) * (size_t)kp);
            else
                pair_row(d, v->f + (i0 + r) * v->ld + k0, kc);
        }
        return 1;
    }
    if (!v->kmajor && rs == 1 && !v->h && rows <= NR && kp <= KC / 2) {
        /* B from fp32 rows along k (attention's k_h^T and v_h^T): each row's pairs, then the
         * panel's columns written pair by pair */
        uint32_t t[NR][KC / 2];
        for (int r = 0; r < n && r < rows; r++)
            pair_row(t[r], v->f + (i0 + r) * v->ld + k0, kc);
        for (int p = 0; p < kp; p++) {
            uint32_t *d = dst + p * ps;
            int r = 0;
            for (; r < n && r < rows; r++)
                d[r] = t[r][p];
            for (; r < rows; r++)
                d[r] = 0;
        }
        return 1;
    }
    if (!v->kmajor && ps == NR && rs == 1 && v->h && rows == NR && !(v->ld & 1) && !(k0 & 1)) {
        /* B from bf16 rows along k (a weight W[n,k]): each column's pairs are 32-bit words
         * of its row; gather 16 columns' words per pair */
        const uint16_t *base = v->h + i0 * v->ld + k0;
        __m512i off = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5,
                                                          4, 3, 2, 1, 0),
                                         _mm512_set1_epi32((int)(v->ld * 2)));
        __m512i off2 = _mm512_add_epi32(off, _mm512_set1_epi32((int)(v->ld * 2 * 16)));
        __mmask16 lo = lanes(n), hi = lanes(n - 16); /* columns past n: not read, zero */
        for (int p = 0; p < kp; p++) {
            const void *b = base + 2 * p;
            __m512i x0 = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), lo, off, b, 1);
            __m512i x1 = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), hi, off2, b, 1);
            if (odd && p == kp - 1) { /* the pair's odd k lies past the block */
                x0 = _mm512_and_si512(x0, _mm512_set1_epi32(0xffff));
                x1 = _mm512_and_si512(x1, _mm512_set1_epi32(0xffff));
            }
            _mm512_storeu_si512(dst + p * NR, x0);
            _mm512_storeu_si512(dst + p * NR + 16, x1);
        }
        return 1;
    }
    if (v->kmajor && rs == 1) { /* rows 2p and 2p+1 give the low and high halves */
        for (int p = 0; p < kp; p++) {
            long e = (k0 + 2 * p) * v->ld + i0, o = e + v->ld;
            int has_o = !(odd && p == kp - 1);
            uint32_t *d = dst + p * ps;
            if (rows == 8 && n == 8 && has_o && !v->h) { /* a full A panel: 8 rows */
                __m256i l = _mm512_castsi512_si256(bf16_round_hi(
                    _mm512_castsi256_si512(_mm256_loadu_si256((const void *)(v->f + e)))));
                __m256i h = _mm512_castsi512_si256(bf16_round_hi(
                    _mm512_castsi256_si512(_mm256_loadu_si256((const void *)(v->f + o)))));
                _mm256_storeu_si256((void *)d,
                                    _mm256_blend_epi16(_mm256_srli_epi32(l, 16), h, 0xaa));
                continue;
            }
            for (int r = 0; r < rows; r += 16) {
                int left = n - r;
                __mmask16 m = lanes(left);
                __mmask16 mo = has_o ? m : 0;
                __mmask16 st = lanes(rows - r);
                __m512i x = pairs16(v, e + r, o + r, m, mo);
                _mm512_mask_storeu_epi32(d + r, st, x);
            }
        }
        return 1;
    }
    return 0;
}

/* Packs rows [i0, i0+n) × k [k0, k0+kc) of a k-major source (fp32 or bf16) into all the
 * panels of width w (MR for A, NR for B) that they fill at once: row i's pair p at
 * dst[(i / w) * w * kp + p * w + i % w], rows past n to the last panel's edge zero; the same
 * words as pack() gives panel by panel.  One sweep over the source's rows, which are
 * contiguous, instead of one per panel: a panel reads only 32 or 128 bytes of each row (its
 * share of a 768-byte row of activations, say), which the hardware prefetcher does not follow
 * from row to row, while a whole row is a stream it does; the rows PF_PAIRS pairs ahead are
 * asked for too.  dW's products read both operands this way, from activations long out of
 * cache: an expert's dW (64 x 192 over 320 tokens) with its operands cold, one thread, best of
 * 40, alternating: 214-245 -> 289-298 GFLOP/s; a tiny bf16 training step at GRPO's shape
 * (16 x 80 tokens) 7746-8913 -> 9004-9633 tokens/s.  dX's B, a bf16 weight W[k, n], is
 * packed this way too (panel by panel its loads had been 17% of the packing's time, by perf):
 * medians of 6 alternating runs, 2 threads, bf16 small 2577 -> 2725 tokens/s, tiny 13273 ->
 * 14046 (a noisy machine: the best runs equal). */
#define PF_PAIRS 2

static SIMD512 int pack_kmajor_wide(uint32_t *dst, int w, const view *v, long i0, int n, long k0,
                                    int kc, int kps)
{
    if (!v->kmajor || (w != MR && w != NR))
        return 0;
    int kp = (kc + 1) / 2, odd = kc & 1, width = (n + w - 1) / w * w;
    long pstride = (long)w * kps; /* kps >= kp pairs a panel (AMX: a multiple of 16) */
    size_t es = v->h ? sizeof(uint16_t) : sizeof(float);
    for (int p = 0; p < kp; p++) {
        long e = (k0 + 2 * p) * v->ld + i0, o = e + v->ld;
        int has_o = !(odd && p == kp - 1);
        if (p + PF_PAIRS < kp) {
            const char *a = (v->h ? (const char *)v->h : (const char *)v->f) +
                            (e + 2 * PF_PAIRS * v->ld) * (long)es;
            const char *b = a + v->ld * (long)es;
            for (long at = 0; at < (long)(n * es); at += 64) {
                _mm_prefetch(a + at, _MM_HINT_T0);
                _mm_prefetch(b + at, _MM_HINT_T0);
            }
        }
        for (int r = 0; r < width; r += 16) {
            __mmask16 m = lanes(n - r), mo = has_o ? m : 0;
            __m512i x = pairs16(v, e + r, o + r, m, mo); /* bf16: dX's weight W[k, n] */
            if (w == NR) { /* 16 rows within one panel */
                uint32_t *d = dst + (r / NR) * pstride + (long)p * NR + r % NR;
                _mm512_mask_storeu_epi32(d, lanes(width - r), x);
            } else { /* 16 rows over two panels of 8 */
                uint32_t *d = dst + (r / MR) * pstride + (long)p * MR;
                _mm256_storeu_si256((__m256i *)d, _mm512_castsi512_si256(x));
                if (r + MR < width)
                    _mm256_storeu_si256((__m256i *)(d + pstride),
                                        _mm512_extracti64x4_epi64(x, 1));
            }
        }
    }
    return 1;
}

/* FP8 (aq, bq): rows [i0, i0 + n) x k [k0, k0 + kc) of a k-major fp32 operand quantised with a
 * scale per row i (the codes and scales r1__fp8_cols16 gives) straight into the panels
 * pack_kmajor_wide writes, the scales to s[0, n).  First the largest |value| of each row down
 * the block, 256 rows side by side in registers as the source's rows stream by; then the codes
 * of each pair of k, from cache.  (Through a buffer of codes and pack_kmajor_wide, a third
 * pass.) */
static SIMD512 void quant_kmajor_wide(uint32_t *dst, int w, float *s, const view *v, long i0,
                                      int n, long k0, int kc, int kps)
{
    const float *f = v->f;
    long ld = v->ld;
    for (int g = 0; g < n; g += 256) {
        __m512 m[16];
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++)
            m[i] = _mm512_setzero_ps();
        int strips = (n - g < 256 ? n - g + 15 : 256) / 16;
        for (int k = 0; k < kc; k++) {
            const float *x = f + (k0 + k) * ld + i0 + g;
            for (int i = 0; i < strips; i++)
                _mm_prefetch((const char *)(x + PF_PAIRS * 2 * ld + 16 * i), _MM_HINT_T0);
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++)
                if (i < strips)
                    m[i] = fp8_amax_lanes(m[i], _mm512_maskz_loadu_ps(lanes(n - g - 16 * i),
                                                                      x + 16 * i));
        }
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++)
            if (i < strips)
                _mm512_mask_storeu_ps(s + g + 16 * i, lanes(n - g - 16 * i),
                                      fp8_scale_lanes(m[i]));
    }
    int kp = (kc + 1) / 2, odd = kc & 1, width = (n + w - 1) / w * w;
    long pstride = (long)w * kps;
    for (int p = 0; p < kp; p++) {
        const float *e = f + (k0 + 2 * p) * ld + i0, *o = e + ld;
        int has_o = !(odd && p == kp - 1);
        for (int r = 0; r < width; r += 16) {
            __mmask16 m = lanes(n - r);
            /* lanes past n: scale 1 and value 0, so code 0 */
            __m512 sv = _mm512_mask_loadu_ps(_mm512_set1_ps(1.0f), m, s + r);
            __m512i x = fp8_code_bits(_mm512_maskz_loadu_ps(m, e + r), sv);
            if (has_o)
                x = _mm512_or_si512(x, _mm512_slli_epi32(
                                           fp8_code_bits(_mm512_maskz_loadu_ps(m, o + r), sv), 16));
            if (w == NR) {
                uint32_t *d = dst + (r / NR) * pstride + (long)p * NR + r % NR;
                _mm512_mask_storeu_epi32(d, lanes(width - r), x);
            } else {
                uint32_t *d = dst + (r / MR) * pstride + (long)p * MR;
                _mm256_storeu_si256((__m256i *)d, _mm512_castsi512_si256(x));
                if (r + MR < width)
                    _mm256_storeu_si256((__m256i *)(d + pstride),
                                        _mm512_extracti64x4_epi64(x, 1));
            }
        }
    }
}
#endif

#ifdef X86
/* The packing of the AVX2 path for the layouts training feeds (its kernel reads the same
 * panels), bit for bit as pack() rounds, 8 pairs at a time; pack() does the rest of a row.
 * round_hi8: bf16_round_hi on 8 lanes. */
static AVX2 inline __m256i round_hi8(__m256i u)
{
    __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), odd));
    __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)),
                                     _mm256_set1_epi32(0x7f800000));
    return _mm256_blendv_epi8(r, _mm256_or_si256(u, _mm256_set1_epi32(0x400000)), nan);
}

/* 8 pairs from 16 floats along k: the even k's bf16 in the low halves. */
static AVX2 inline __m256i pairs_of16(const float *f)
{
    __m256i l = _mm256_srli_epi32(round_hi8(_mm256_loadu_si256((const __m256i *)f)), 16);
    __m256i h = _mm256_srli_epi32(round_hi8(_mm256_loadu_si256((const __m256i *)(f + 8))), 16);
    return _mm256_permute4x64_epi64(_mm256_packus_epi32(l, h), 0xd8); /* packus: per lane */
}

/* 8 pairs of a k-major source: rows e (even k) and o (odd k; has_o 0: past the block). */
static AVX2 inline __m256i pairs_k8(const view *v, long e, long o, int has_o)
{
    if (v->h) {
        __m256i l = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(v->h + e)));
        if (!has_o)
            return l;
        __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(v->h + o)));
        return _mm256_or_si256(l, _mm256_slli_epi32(h, 16));
    }
    __m256i l = _mm256_srli_epi32(round_hi8(_mm256_loadu_si256((const __m256i *)(v->f + e))), 16);
    if (!has_o)
        return l;
    __m256i h = round_hi8(_mm256_loadu_si256((const __m256i *)(v->f + o)));
    return _mm256_blend_epi16(l, h, 0xaa);
}

/* The 8x8 words at s (rows ls apart) transposed to d (rows ld apart). */
static AVX2 inline void transpose8(uint32_t *d, long ld, const uint32_t *s, long ls)
{
    __m256i r[8], t[8], u[8];
    for (int i = 0; i < 8; i++)
        r[i] = _mm256_loadu_si256((const __m256i *)(s + i * ls));
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_unpacklo_epi64(t[i], t[i + 2]);
        u[i + 1] = _mm256_unpackhi_epi64(t[i], t[i + 2]);
        u[i + 2] = _mm256_unpacklo_epi64(t[i + 1], t[i + 3]);
        u[i + 3] = _mm256_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    for (int i = 0; i < 4; i++) {
        _mm256_storeu_si256((__m256i *)(d + i * ld),
                            _mm256_permute2x128_si256(u[i], u[i + 4], 0x20));
        _mm256_storeu_si256((__m256i *)(d + (i + 4) * ld),
                            _mm256_permute2x128_si256(u[i], u[i + 4], 0x31));
    }
}

static AVX2 int pack_avx2(uint32_t *dst, long rs, long ps, int rows, const view *v, long i0, int n,
                          long k0, int kc)
{
    int kp = (kc + 1) / 2, odd = kc & 1;
    if (!v->kmajor && ps == 1 && !v->h) { /* A rows along k (activations) */
        for (int r = 0; r < rows; r++) {
            uint32_t *d = dst + r * rs;
            ask_ahead(v->f + (i0 + r + PF_ROWS) * v->ld + k0, kc);
            if (r >= n) {
                memset(d, 0, sizeof(uint32_t) * (size_t)kp);
                continue;
            }
            const float *f = v->f + (i0 + r) * v->ld + k0;
            int p = 0;
            for (; 2 * p + 16 <= kc; p += 8)
                _mm256_storeu_si256((__m256i *)(d + p), pairs_of16(f + 2 * p));
            for (; 2 * p + 1 < kc; p++)
                d[p] = to16(f[2 * p]) | to16(f[2 * p + 1]) << 16;
            if (p < kp)
                d[p] = to16(f[2 * p]);
        }
        return 1;
    }
    if (v->kmajor && rs == 1) { /* rows 2p and 2p+1 give the low and high halves */
        for (int p = 0; p < kp; p++) {
            long e = (k0 + 2 * p) * v->ld + i0, o = e + v->ld;
            int has_o = !(odd && p == kp - 1);
            uint32_t *d = dst + p * ps;
            int r = 0;
            for (; r + 8 <= n; r += 8)
                _mm256_storeu_si256((__m256i *)(d + r), pairs_k8(v, e + r, o + r, has_o));
            for (; r < n; r++)
                d[r] = get16(v, e + r) | (has_o ? get16(v, o + r) << 16 : 0);
            for (; r < rows; r++)
                d[r] = 0;
        }
        return 1;
    }
    if (!v->kmajor && rs == 1 && ps == NR && v->h && rows == NR && !(v->ld & 1) && !(k0 & 1)) {
        /* B from bf16 rows along k (a weight W[n, k]): each column's pairs are 32-bit words
         * of its row, so the panel is those words transposed, 8 x 8 at a time */
        const uint32_t *w = (const uint32_t *)(const void *)(v->h + i0 * v->ld + k0);
        long lw = v->ld / 2;
        int full = kc / 2 / 8 * 8, c = 0; /* whole pairs in blocks of 8; full columns */
        for (; c + 8 <= n; c += 8)
            for (int p = 0; p < full; p += 8)
                transpose8(dst + (long)p * NR + c, NR, w + c * lw + p, lw);
        for (int p = 0; p < kp; p++)
            for (int q = p < full ? c : 0; q < NR; q++) {
                uint32_t x = 0;
                if (q < n) {
                    long at = (i0 + q) * v->ld + k0 + 2 * p;
                    x = (uint32_t)v->h[at] | (2 * p + 1 < kc ? (uint32_t)v->h[at + 1] << 16 : 0);
                }
                dst[(long)p * NR + q] = x;
            }
        return 1;
    }
    return 0;
}
#endif

/* pack(), through the vector packer when the path has one. */
static void pack_any(int simd, uint32_t *dst, long rs, long ps, int rows, const view *v, long i0,
                     int n, long k0, int kc)
{
#ifdef SIMD512
    if (simd == 2 && pack_avx512(dst, rs, ps, rows, v, i0, n, k0, kc))
        return;
#endif
#ifdef X86
    if (simd && pack_avx2(dst, rs, ps, rows, v, i0, n, k0, kc))
        return;
#endif
    (void)simd;
    pack(dst, rs, ps, rows, v, i0, n, k0, kc);
}

/* pack_kmajor_wide() when the path has it and the source suits; 0: pack panel by panel. */
static int pack_wide(int simd, uint32_t *dst, int w, const view *v, long i0, int n, long k0,
                     int kc, int kps)
{
#ifdef SIMD512
    if (simd == 2)
        return pack_kmajor_wide(dst, w, v, i0, n, k0, kc, kps);
#endif
    (void)simd, (void)dst, (void)w, (void)v, (void)i0, (void)n, (void)k0, (void)kc, (void)kps;
    return 0;
}

/* AMX: zero pairs [kp, kps) of `count` panels of width w, kps pairs apart (B), or of `count`
 * rows kps pairs apart (A, w = 1). */
static void zero_tail(uint32_t *dst, int count, int w, int kp, int kps)
{
    if (kps > kp)
        for (int i = 0; i < count; i++)
            memset(dst + (long)i * w * kps + (long)kp * w, 0,
                   sizeof(uint32_t) * (size_t)w * (size_t)(kps - kp));
}

/* ------------------------------------------------------------------ the blocked product */

typedef struct {
    float *C;
    int ldc, M, N, K, acc;
    view a, b;
    const r1_gscale *sc;
    ukernel uk;
    int simd; /* the vector packers: 2 AVX-512, 1 AVX2, 0 none */
    int amx;  /* uk_amx: A packed row by row, pairs a panel or row rounded up to 16 */
    int cut_rows, parts;
    long work; /* the multiply-adds, weighed for the pool (r1__weigh_rows) */
    /* B packed once for every piece (pieces cut by rows, r1__gemm16): block kb of K at
     * bpre + kb * bstride, its panels as block() packs all columns at once, then the block's
     * column scales (FP8) as wide floats; NULL: each piece packs B itself */
    uint32_t *bpre;
    long bstride;
    int wide;
    /* a part of a B packed once by r1__gemm16_sub_pack: its panels bkps pairs long (0: the
     * product's own), the product's first pair boff words into each */
    int bkps;
    long boff;
    /* a second product of the same A (r1__gemm16_packed2): C2 (ldc2) = A · the B packed at
     * bpre2, N2 columns, run on each block of A as it is packed (cut by rows only) */
    float *C2;
    int ldc2, N2;
    const uint32_t *bpre2;
    long bstride2;
    /* a second product on the same B (r1__gemm16_pair): Cb (ldcb) = A2 · B, A2 of A's shape,
     * its rows packed and run on each block of B as it is packed */
    float *Cb;
    int ldcb, has_a2;
    view a2;
} job;

/* ------------------------------------------------------------------ FP8: quantised as packed */

/* Rows [i0, i0 + n) x k [k0, k0 + kc) of the fp32 operand v (r1_gscale's aq, bq) as E4M3 codes
 * in bf16 at dst, stored the way v is (row i along k at dst + i * dld; k-major: k's row at
 * dst + k * dld), each row's tile with its own scale, the scales to s[0, n).  Returns the view
 * of them, rows from 0 and k from 0.  A k-major source is read twice, its largest values down
 * the columns and then the codes; the block (at most 128 rows of 64 columns) stays in cache. */
static view quant_view(uint16_t *dst, long dld, float *s, const view *v, long i0, int n, long k0,
                       int kc)
{
    if (!v->kmajor)
        for (int i = 0; i < n; i++)
            s[i] = r1__fp8_tile16(dst + i * dld, v->f + (i0 + i) * v->ld + k0, kc);
    else
        r1__fp8_cols16(dst, dld, s, v->f + k0 * v->ld + i0, v->ld, kc, n);
    view q = {NULL, dst, dld, v->kmajor};
    return q;
}

/* A's rows [ic, ic + mc) x k [pc, pc + kc) quantised (aq) and packed as block() packs A, their
 * scales to sav.  Rows along K packed row by row are their codes in order, two to a pair, so
 * they are written in place. */
static void pack_a_fp8(const job *j, uint32_t *apack, long ars, long aks, int kps, long ic,
                       int mc, long pc, int kc, float *sav)
{
    int kp = (kc + 1) / 2, rows = (mc + MR - 1) / MR * MR;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (!j->a.kmajor && ars == kps && aks == 1) {
        for (int r = 0; r < rows; r++) {
            uint16_t *d = (uint16_t *)(apack + (long)r * kps);
            if (r >= mc) {
                memset(d, 0, sizeof(uint32_t) * (size_t)kp);
                continue;
            }
            const float *x = j->a.f + (ic + r) * j->a.ld + pc;
            for (int at = 0; at < kc; at += 16)
                __builtin_prefetch(x + PF_ROWS * j->a.ld + at, 0, 3);
            sav[r] = r1__fp8_tile16(d, x, kc);
            if (kc & 1)
                d[kc] = 0;
        }
        return;
    }
#endif
#ifdef SIMD512
    if (j->simd == 2 && !j->amx && j->a.kmajor) { /* panels of MR rows, pair-major */
        quant_kmajor_wide(apack, MR, sav, &j->a, ic, mc, pc, kc, kps);
        return;
    }
#endif
    uint16_t t[R1_GEMM16_KBLOCK * MC];
    view q = quant_view(t, j->a.kmajor ? MC : R1_GEMM16_KBLOCK, sav, &j->a, ic, mc, pc, kc);
    if (j->amx || !pack_wide(j->simd, apack, MR, &q, 0, mc, 0, kc, kps))
        for (int r = 0; r < mc; r += MR)
            pack_any(j->simd, apack + (long)r * kps, ars, aks, MR, &q, r,
                     mc - r < MR ? mc - r : MR, 0, kc);
}

/* B's columns [jc, jc + nc) x k [pc, pc + kc) quantised (bq) and packed into panels of kps
 * pairs at dst, their scales to sb[0, nc): QCOLS columns at a time through a buffer on the
 * stack (16 KB) where the path has no vector quantiser for the layout. */
#define QCOLS 64

static void pack_b_fp8(const job *j, uint32_t *dst, long jc, int nc, long pc, int kc, int kps,
                       float *sb)
{
#ifdef SIMD512
    if (j->simd == 2 && j->b.kmajor) {
        quant_kmajor_wide(dst, NR, sb, &j->b, jc, nc, pc, kc, kps);
        return;
    }
#endif
    uint16_t t[R1_GEMM16_KBLOCK * QCOLS];
    for (int g = 0; g < nc; g += QCOLS) {
        int gn = nc - g < QCOLS ? nc - g : QCOLS;
        view q = quant_view(t, j->b.kmajor ? QCOLS : R1_GEMM16_KBLOCK, sb + g, &j->b, jc + g, gn,
                            pc, kc);
        uint32_t *d = dst + (long)g * kps;
        if (!pack_wide(j->simd, d, NR, &q, 0, gn, 0, kc, kps))
            for (int c = 0; c < gn; c += NR)
                pack_any(j->simd, d + (long)c * kps, 1, NR, NR, &q, c, gn - c < NR ? gn - c : NR,
                         0, kc);
    }
}

/* Rows of C a chunk when B is packed for all of K (block()): about C_BYTES of C, in MC rows. */
#define C_BYTES (256 << 10)

static int c_chunk(const job *j, int nc)
{
    long row = (long)nc + (j->bpre2 ? j->N2 : 0) + (j->has_a2 ? nc : 0); /* floats of C a row */
    long rows = C_BYTES / (4 * row) / MC * MC;
    return rows < MC ? MC : (int)rows;
}

static void block(const job *j, int m0, int m1, int n0, int n1)
{
    /* All of the piece's columns at once when the memory is there, so that A is packed once
     * per block of K instead of once per NC columns (A, the activations, is the large operand
     * and is read from memory each time); else NC columns at a time from the stack. */
    uint32_t bstack[KC / 2 * NC], apack[MC * KC / 2];
#ifdef X86
    float awide[MC * KC]; /* the AVX2 kernel's A: apack widened (widen_a) */
#endif
    float sstack[NC], sav[MC];
    size_t wide = (size_t)(n1 - n0 + NR - 1) / NR * NR;
    int pre = j->bpre != NULL; /* B is packed already (all N columns, r1__gemm16_pack_wt) */
    uint32_t *bheap = !pre && wide > NC ? malloc(sizeof(uint32_t) * (KC / 2 + 1) * wide) : NULL;
    uint32_t *bpack = bheap ? bheap : bstack;
    float *sbv = bheap ? (float *)(bheap + KC / 2 * wide) : sstack;
    int ncb = pre ? n1 - n0 : bheap ? (int)wide : NC;
    int kcmax = j->sc ? R1_GEMM16_KBLOCK : KC, step = MR;
#ifdef AMX_PATH
    if (j->amx) {
        amx_begin();
        step = AMR;
    }
#endif
    for (int jc = n0; jc < n1; jc += ncb) {
        int nc = n1 - jc < ncb ? n1 - jc : ncb;
        /* With B packed for every block of K already, the rows are walked in chunks whose C
         * stays in cache while all of K is added into it: block by block over all the rows, a
         * C of 2048 x 1408 (11 MB) came back from memory for each block of K.  That product
         * (small's dense up, forward), one thread, alternating: 310-329 -> 359-379 GFLOP/s;
         * dX and dW about 3% faster; a bf16 training step of small unchanged (its products
         * are cut by rows on two threads, and most have one or two blocks of K). */
        int chunk = pre ? c_chunk(j, nc) : m1 - m0;
        for (int ms = m0; ms < m1; ms += chunk)
        for (int pc = 0; pc < j->K; pc += kcmax) {
            int kc = j->K - pc < kcmax ? j->K - pc : kcmax, kp = (kc + 1) / 2;
            int kps = j->amx ? (kp + 15) / 16 * 16 : kp; /* pairs a panel (or an A row) */
            const r1_gscale *sc = j->sc;
            int pstride = pre && j->bkps ? j->bkps : kps; /* B's pairs a panel */
            if (pre) { /* the piece's columns of the packed block (jc: a whole panel) */
                const uint32_t *blk = j->bpre + (long)(pc / kcmax) * j->bstride;
                bpack = (uint32_t *)blk + (long)jc * pstride + j->boff;
                sbv = (float *)(blk + (long)kcmax / 2 * j->wide) + jc;
            } else {
                if (sc && sc->bq)
                    pack_b_fp8(j, bpack, jc, nc, pc, kc, kps, sbv);
                else if (!pack_wide(j->simd, bpack, NR, &j->b, jc, nc, pc, kc, kps))
                    for (int q = 0; q < nc; q += NR)
                        pack_any(j->simd, bpack + (long)q * kps, 1, NR, NR, &j->b, jc + q,
                                 nc - q < NR ? nc - q : NR, pc, kc);
                zero_tail(bpack, (nc + NR - 1) / NR, NR, kp, kps);
                if (sc && !sc->bq)
                    for (int c = 0; c < nc; c++)
                        sbv[c] = sc->b[(long)(pc / R1_GEMM16_KBLOCK) * sc->bk +
                                       (long)((jc + c) / sc->bblk) * sc->bn];
            }
            int me = m1 - ms < chunk ? m1 : ms + chunk;
            for (int ic = ms; ic < me; ic += MC)
                for (int second = 0; second <= j->has_a2; second++) {
                    int mc = me - ic < MC ? me - ic : MC;
                    const view *av = second ? &j->a2 : &j->a;
                    float *cm = second ? j->Cb : j->C;
                    long ldm = second ? j->ldcb : j->ldc;
                    /* a row-contiguous source packs row-major: pair (r, p) at r*kp + p; AMX
                     * always (tiles load rows) */
                    int rowwise = j->amx || !av->kmajor;
                    long ars = rowwise ? kps : 1, aks = rowwise ? 1 : MR;
                    if (sc && sc->aq)
                        pack_a_fp8(j, apack, ars, aks, kps, ic, mc, pc, kc, sav);
                    else if (j->amx || !pack_wide(j->simd, apack, MR, av, ic, mc, pc, kc, kps))
                        for (int q = 0; q < mc; q += MR)
                            pack_any(j->simd, apack + (long)q * kps, ars, aks, MR, av, ic + q,
                                     mc - q < MR ? mc - q : MR, pc, kc);
                    zero_tail(apack, (mc + MR - 1) / MR * MR, 1, kp, kps);
                    if (sc && !sc->aq)
                        for (int r = 0; r < mc; r++)
                            sav[r] = sc->a[(long)((ic + r) / sc->ablk) * sc->am +
                                           (long)(pc / R1_GEMM16_KBLOCK) * sc->ak];
                    const uint32_t *au = apack; /* the A the kernel reads */
                    long aw = 1;                /* its words a pair */
#ifdef X86
                    if (j->simd == 1) {
                        widen_a(awide, apack, (long)(mc + MR - 1) / MR * MR * kps);
                        au = (const uint32_t *)(const void *)awide;
                        aw = 2;
                    }
#endif
                    for (int q = 0; q < nc; q += NR)
                        for (int r = 0; r < mc; r += step) {
                            tile t = {kps, au + aw * r * kps, ars, aks,
                                      bpack + (long)q * pstride, cm + (long)(ic + r) * ldm + jc + q,
                                      ldm, mc - r < step ? mc - r : step,
                                      nc - q < NR ? nc - q : NR, pc == 0 && !j->acc,
                                      sc ? sav + r : NULL, sc ? sbv + q : NULL};
                            j->uk(&t);
                        }
                    if (j->bpre2) { /* the second product on the same packed rows of A */
                        const uint32_t *b2 = j->bpre2 + (long)(pc / kcmax) * j->bstride2;
                        for (int q = 0; q < j->N2; q += NR)
                            for (int r = 0; r < mc; r += step) {
                                tile t = {kps, au + aw * r * kps, ars, aks, b2 + (long)q * kps,
                                          j->C2 + (long)(ic + r) * j->ldc2 + q, j->ldc2,
                                          mc - r < step ? mc - r : step,
                                          j->N2 - q < NR ? j->N2 - q : NR, pc == 0 && !j->acc, NULL,
                                          NULL};
                                j->uk(&t);
                            }
                    }
                }
        }
    }
#ifdef AMX_PATH
    if (j->amx)
        amx_end();
#endif
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

/* Item i of packing B once for every piece: panels [q, q + BGROUP) of K block i / groups,
 * q = (i % groups) * BGROUP (a k-major fp32 B in one sweep of its rows, pack_wide). */
#define BGROUP 8

static void pack_b_item(void *ctx, int i, int tid)
{
    (void)tid;
    const job *j = ctx;
    int kcmax = j->sc ? R1_GEMM16_KBLOCK : KC, panels = j->wide / NR;
    int groups = (panels + BGROUP - 1) / BGROUP;
    int pc = i / groups * kcmax, q0 = i % groups * BGROUP * NR;
    int q1 = q0 + BGROUP * NR < j->N ? q0 + BGROUP * NR : j->N;
    int kc = j->K - pc < kcmax ? j->K - pc : kcmax, kp = (kc + 1) / 2;
    int kps = j->amx ? (kp + 15) / 16 * 16 : kp;
    uint32_t *blk = j->bpre + (long)(pc / kcmax) * j->bstride;
    const r1_gscale *sc = j->sc;
    float *sbv = (float *)(blk + (long)kcmax / 2 * j->wide);
    if (sc && sc->bq)
        pack_b_fp8(j, blk + (long)q0 * kps, q0, q1 - q0, pc, kc, kps, sbv + q0);
    else if (!pack_wide(j->simd, blk + (long)q0 * kps, NR, &j->b, q0, q1 - q0, pc, kc, kps))
        for (int q = q0; q < q1; q += NR)
            pack_any(j->simd, blk + (long)q * kps, 1, NR, NR, &j->b, q,
                     j->N - q < NR ? j->N - q : NR, pc, kc);
    zero_tail(blk + (long)q0 * kps, (q1 - q0 + NR - 1) / NR, NR, kp, kps);
    if (sc && !sc->bq) {
        for (int c = q0; c < q1; c++)
            sbv[c] = sc->b[(long)(pc / R1_GEMM16_KBLOCK) * sc->bk + (long)(c / sc->bblk) * sc->bn];
    }
}

/* M, N or K <= 0: nothing, except that K <= 0 without accumulate zeroes C; 1 when so. */
static int degenerate(float *C, int ldc, int M, int N, int K, int accumulate)
{
    if (M > 0 && N > 0 && K > 0)
        return 0;
    if (M > 0 && N > 0 && !accumulate)
        for (int m = 0; m < M; m++)
            memset(C + (long)m * ldc, 0, sizeof(float) * (size_t)N);
    return 1;
}

/* A product's job for the kernel path in use, its B packed later (or already: bpre). */
static job new_job(float *C, int ldc, int M, int N, int K, r1_gop A, r1_gop B, int accumulate,
                   const r1_gscale *sc)
{
    ukernel uk = pick();
    int simd = 0, amx = 0;
#ifdef AMX_PATH
    amx = uk == uk_amx;
#endif
#ifdef SIMD512
    simd = uk == uk_avx512 || amx ? 2 : 0; /* an AMX machine has AVX-512 BF16 for them */
#endif
#ifdef X86
    if (uk == uk_avx2)
        simd = 1;
#endif
    job j = {.C = C, .ldc = ldc, .M = M, .N = N, .K = K, .acc = accumulate, .a = view_of(A, 0),
             .b = view_of(B, 1), .sc = sc, .uk = uk, .simd = simd, .amx = amx, .cut_rows = 1,
             .parts = 1};
    /* Unlike OpenBLAS's, these sums do not depend on the cut (r1_gemm16.h), so the product is
     * cut by the threads there are: every piece packs all of B (or A) again. */
    j.work = r1__weigh_rows((long)M * N * K, M);
    j.parts = r1__gemm_cut(j.work, M, N, &j.cut_rows);
    int kcmax = sc ? R1_GEMM16_KBLOCK : KC;
    j.wide = (N + NR - 1) / NR * NR;
    j.bstride = (long)kcmax / 2 * j.wide + j.wide; /* the panels, then the scales */
    return j;
}

/* The job's pieces side by side, or the whole product here. */
static void run(job *j)
{
    if (j->parts > 1)
        r1__parallel_for_work(j->work, j->parts, piece, j);
    else
        block(j, 0, j->M, 0, j->N);
}

/* run(), with B packed once for all the pieces when they are pieces of rows: each would pack
 * all of B (in training, a weight, or the activations of a dW product), so it is packed side
 * by side and shared; and for a product in one piece with more than one block of K and more
 * rows than a chunk, so that block() can walk them in chunks (others keep B on the stack).
 * Same panels, same bits; without the memory, each piece packs its own. */
static void run_sharing_b(job *j)
{
    int kcmax = j->sc ? R1_GEMM16_KBLOCK : KC, blocks = (j->K + kcmax - 1) / kcmax;
    int chunked = j->parts == 1 && blocks > 1 && j->M > c_chunk(j, j->N);
    if ((j->parts > 1 && j->cut_rows) || chunked) {
        j->bpre = malloc(sizeof(uint32_t) * (size_t)j->bstride * (size_t)blocks);
        if (j->bpre)
            r1__parallel_for_work(j->work, blocks * ((j->wide / NR + BGROUP - 1) / BGROUP),
                                  pack_b_item, j);
    }
    run(j);
    free(j->bpre);
    j->bpre = NULL;
}

void r1__gemm16(float *C, int ldc, int M, int N, int K, r1_gop A, r1_gop B, int accumulate,
                const r1_gscale *sc)
{
    if (degenerate(C, ldc, M, N, K, accumulate))
        return;
    job j = new_job(C, ldc, M, N, K, A, B, accumulate, sc);
    run_sharing_b(&j);
}

/* ------------------------------------------------------------------ weights packed once */

int r1__gemm16_layout(void)
{
    int amx = 0;
#ifdef AMX_PATH
    amx = pick() == uk_amx;
#endif
    return amx;
}

size_t r1__gemm16_packed_words(int N, int K)
{
    size_t wide = (size_t)(N + NR - 1) / NR * NR, blocks = (size_t)(K + KC - 1) / KC;
    return blocks * ((size_t)KC / 2 * wide + wide);
}

/* W[N, K] as the B = W^T of a product: the panels r1__gemm16 shares between its pieces. */
void r1__gemm16_pack_wt(uint32_t *dst, const uint16_t *w, int N, int K)
{
    if (N <= 0 || K <= 0)
        return;
    r1_gop none = {NULL, 0, 0, 0}, B = {w, K, 1, 1};
    job j = new_job(NULL, 0, 1, N, K, none, B, 0, NULL);
    j.bpre = dst;
    int items = (K + KC - 1) / KC * ((j.wide / NR + BGROUP - 1) / BGROUP);
    for (int i = 0; i < items; i++)
        pack_b_item(&j, i, 0);
}

void r1__gemm16_packed(float *C, int ldc, int M, int N, int K, r1_gop A, const uint32_t *bp,
                       int accumulate)
{
    if (degenerate(C, ldc, M, N, K, accumulate))
        return;
    r1_gop none = {NULL, K, 1, 1};
    job j = new_job(C, ldc, M, N, K, A, none, accumulate, NULL);
    j.bpre = (uint32_t *)bp;
    run(&j);
}

void r1__gemm16_packed2(float *C1, int ldc1, int N1, const uint32_t *bp1, float *C2, int ldc2,
                        int N2, const uint32_t *bp2, int M, int K, r1_gop A)
{
    r1_gop none = {NULL, K, 1, 1};
    job j = new_job(C1, ldc1, M, N1 + N2, K, A, none, 0, NULL);
    if (M <= 0 || N1 <= 0 || N2 <= 0 || K <= 0 || (j.parts > 1 && !j.cut_rows)) {
        /* an empty product, or pieces of columns: the two one by one */
        r1__gemm16_packed(C1, ldc1, M, N1, K, A, bp1, 0);
        r1__gemm16_packed(C2, ldc2, M, N2, K, A, bp2, 0);
        return;
    }
    /* the first product's own panels and their block stride, then the second's */
    j.N = N1;
    j.wide = (N1 + NR - 1) / NR * NR;
    j.bstride = (long)KC / 2 * j.wide + j.wide;
    j.bpre = (uint32_t *)bp1;
    long wide2 = (N2 + NR - 1) / NR * NR;
    j.C2 = C2, j.ldc2 = ldc2, j.N2 = N2, j.bpre2 = bp2;
    j.bstride2 = (long)KC / 2 * wide2 + wide2;
    run(&j);
}

void r1__gemm16_pair(float *C1, int ldc1, r1_gop A1, float *C2, int ldc2, r1_gop A2, int M, int N,
                     int K, r1_gop B, int accumulate)
{
    if (M <= 0 || N <= 0 || K <= 0) {
        r1__gemm16(C1, ldc1, M, N, K, A1, B, accumulate, NULL);
        r1__gemm16(C2, ldc2, M, N, K, A2, B, accumulate, NULL);
        return;
    }
    job j = new_job(C1, ldc1, M, N, K, A1, B, accumulate, NULL);
    j.Cb = C2, j.ldcb = ldc2, j.has_a2 = 1, j.a2 = view_of(A2, 0);
    run_sharing_b(&j);
}

/* ------------------------------------------------------------------ parts of a packed B */

/* Pairs a panel of a B of K rows packed for parts (AMX: a multiple of 16). */
static int sub_kps(int K, int amx)
{
    int kp = (K + 1) / 2;
    return amx ? (kp + 15) / 16 * 16 : kp;
}

size_t r1__gemm16_sub_words(int N, int K)
{
    if (N <= 0 || K <= 0 || K > KC)
        return 0;
    /* the panels at the widest layout, and 16 pairs of one panel past the end: AMX loads
     * whole tiles of 16 pairs, which for a part starting at an odd 16th reach past the last */
    size_t wide = (size_t)(N + NR - 1) / NR * NR;
    return wide * (size_t)sub_kps(K, 1) + 16 * NR;
}

int r1__gemm16_sub_pack(uint32_t *dst, int N, int K, r1_gop B)
{
    if (N <= 0 || K <= 0 || K > KC)
        return 0;
    r1_gop none = {NULL, 0, 0, 0};
    job j = new_job(NULL, 0, 1, N, K, none, B, 0, NULL);
    int kp = (K + 1) / 2, kps = sub_kps(K, j.amx);
    if (!pack_wide(j.simd, dst, NR, &j.b, 0, N, 0, K, kps))
        for (int q = 0; q < N; q += NR)
            pack_any(j.simd, dst + (long)q * kps, 1, NR, NR, &j.b, q, N - q < NR ? N - q : NR, 0,
                     K);
    zero_tail(dst, j.wide / NR, NR, kp, kps);
    memset(dst + (size_t)j.wide * kps, 0, sizeof(uint32_t) * 16 * NR);
    return kps;
}

void r1__gemm16_sub(float *C, int ldc, int M, int N, int k0, int K, r1_gop A, const uint32_t *bp,
                    int bkps, int accumulate)
{
    if (degenerate(C, ldc, M, N, K, accumulate))
        return;
    r1_gop none = {NULL, K, 1, 1};
    job j = new_job(C, ldc, M, N, K, A, none, accumulate, NULL);
    j.bpre = (uint32_t *)bp;
    j.bkps = bkps;
    j.boff = (long)(k0 / 2) * NR;
    run(&j);
}
