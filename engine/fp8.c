/* fp8.c — E4M3 / E5M2 conversions, fine-grained scaling (tiles, blocks, per tensor) and the GEMM
 * with FP8 weights (contracts in r1_fp8.h).
 *
 * Ownership and errors: nothing here allocates, fails, prints or keeps state, except the
 * one-time choice of the GEMM's code path in `simd_mode`, an atomic int.  The quantisers run
 * their groups side by side on the engine's pool (parallel.h).
 *
 * Two ways to round to E4M3.  The codec (r1_f32_to_e4m3) works on the bits of the fp32 and
 * handles every input.  The training emulation only needs decode(encode(y)) as an fp32 for
 * |y| <= 448 (y is already divided by its group's scale), millions of times per step, so
 * qdq_e4m3 below rounds the fp32 in place: for normal E4M3 results it rounds the 23-bit
 * mantissa to 3 bits with the usual add-and-mask (ties to even), for subnormal ones it rounds
 * y · 2^9 to an integer with the 2^23 trick.  A test checks it against the codec over a
 * stride of all fp32 bit patterns.
 *
 * The FP8 GEMM (r1_matmul_fp8) keeps the weights in their [Co, Ci] layout, so each output is
 * a dot product along Ci, cut into the 128-column blocks of the scales: per block the exact
 * products x · decode(w) are summed in fp32 lanes, the lanes are multiplied by the block's
 * scale and added to the row's accumulator, and the accumulator's lanes are summed at the end.
 * AVX-512: 32 codes at a time become fp16 bit patterns with three integer operations (the
 * E4M3 value times 2^-8 — E4M3 is a slice of fp16: 4 exponent bits under fp16's 5, bias 7
 * under 15) and vcvtph2ps widens them exactly; the 2^8 goes into the block scale.  A block of
 * four (row, token) pairs — 4 rows x 1 token, 2 x 2 or 1 x 4 — runs at once with two
 * accumulators each, so that eight independent FMA chains hide the FMA latency, and up to four
 * tokens share each decoded vector.  Measured on this Zen 4 (one core, GFLOP/s, N = 1 / 16):
 * 18-20 / 30-36 against sgemm's 5-32 / 41-49 with fp32 weights and 45-65 / 125-150 for
 * r1_matmul_bf16, which needs one vdpbf16ps per 32 products where this needs about eight
 * instructions to decode 32 weights. */
#include <config.h>

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#if defined(HAVE_AVX512BF16_INTRIN) && (defined(__x86_64__) || defined(__i386__))
/* configure's AVX-512 BF16 probe also tells that the compiler knows AVX512F and BW */
#define FP8_SIMD 1
#include <immintrin.h>
#else
#define FP8_SIMD 0
#endif

#include "parallel.h"
#include "r1.h"
#include "r1_fp8.h"
#include "r1_gemm16.h"

#define BLK R1_FP8_BLOCK

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float float_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ------------------------------------------------------------------ the codec */

/* Encodes f with M mantissa bits and the given bias; maxc is the code of the largest finite
 * value (without sign), nanc a NaN code.  Round to nearest even on the bits. */
static uint8_t encode(float f, int M, int bias, uint8_t maxc, uint8_t nanc)
{
    uint32_t u = bits_of(f);
    uint8_t sign = (uint8_t)((u >> 24) & 0x80u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u)
        return sign | nanc;
    if (a == 0x7f800000u)
        return sign | maxc; /* saturating: infinity becomes the largest finite value */
    uint32_t e32 = a >> 23;
    if ((int)e32 >= 128 - bias) { /* >= 2^(1 - bias): a normal result (or overflow) */
        int sh = 23 - M;
        uint32_t r = a + ((1u << (sh - 1)) - 1) + ((a >> sh) & 1u);
        r >>= sh; /* exponent and M mantissa bits, the carry already in the exponent */
        uint32_t code = r - ((uint32_t)(127 - bias) << M);
        return sign | (uint8_t)(code > maxc ? maxc : code);
    }
    /* subnormal result: count units of 2^(1 - bias - M) */
    uint32_t mant = e32 ? (a & 0x7fffffu) | 0x800000u : a & 0x7fffffu;
    int eff = e32 ? (int)e32 : 1; /* value = mant · 2^(eff - 150) */
    int sh = 150 + 1 - bias - M - eff;
    if (sh > 25) /* below half the smallest subnormal */
        return sign;
    uint32_t q = mant >> sh, rem = mant & ((1u << sh) - 1), half = 1u << (sh - 1);
    if (rem > half || (rem == half && (q & 1u)))
        q++; /* q == 2^M is the smallest normal's code, as it should be */
    return sign | (uint8_t)q;
}

static float decode(uint8_t c, int M, int bias, int has_inf)
{
    int sign = c & 0x80, e = (c & 0x7f) >> M, m = c & ((1 << M) - 1);
    int emax = (1 << (7 - M)) - 1;
    float v;
    if (e == emax && (has_inf || m == (1 << M) - 1)) {
        if (has_inf && m == 0)
            v = INFINITY;
        else
            v = NAN;
    } else if (e == 0) {
        v = ldexpf((float)m, 1 - bias - M);
    } else {
        v = ldexpf((float)((1 << M) | m), e - bias - M);
    }
    return sign ? -v : v;
}

uint8_t r1_f32_to_e4m3(float f) { return encode(f, 3, 7, 0x7e, 0x7f); }
uint8_t r1_f32_to_e5m2(float f) { return encode(f, 2, 15, 0x7b, 0x7e); }
float r1_e4m3_to_f32(uint8_t c) { return decode(c, 3, 7, 0); }
float r1_e5m2_to_f32(uint8_t c) { return decode(c, 2, 15, 1); }

/* ------------------------------------------------------------------ scaling */

float r1_fp8_scale(float amax)
{
    float s = amax / R1_E4M3_MAX;
    return s > 0 ? s : 1.0f; /* an all-zero group (or one that underflows): any scale works */
}

/* decode(e4m3(y)) for y with |y| <= 448 (a scaled value), or NaN; see the file comment. */
static inline float qdq_e4m3(float y)
{
    uint32_t u = bits_of(y), sign = u & 0x80000000u, a = u & 0x7fffffffu;
    if (a >= 0x3c800000u) { /* |y| >= 2^-6 */
        if (a > 0x7f800000u)
            return y;
        uint32_t r = (a + 0x7ffffu + ((a >> 20) & 1u)) & ~0xfffffu;
        if (r > 0x43e00000u) /* past 448 (only by rounding of y / s, or infinity) */
            r = 0x43e00000u;
        return float_of(sign | r);
    }
    float t = float_of(a) * 512.0f; /* exact; < 8 */
    t = (t + 8388608.0f) - 8388608.0f; /* to an integer, ties to even */
    return float_of(sign | bits_of(t * (1.0f / 512.0f)));
}

/* The same four at a time with GNU C vectors (SSE2 / NEON, or what the build targets), both
 * roundings computed and the right one selected per lane by masks. */
typedef float v4f __attribute__((vector_size(16)));
typedef uint32_t v4u __attribute__((vector_size(16)));

static inline v4f load4(const float *p)
{
    v4f v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void store4(float *p, v4f v)
{
    memcpy(p, &v, sizeof v);
}

/* mask ? x : y, lane by lane (mask lanes all ones or zero) */
static inline v4u pick(v4u mask, v4u x, v4u y)
{
    return (x & mask) | (y & ~mask);
}

/* qdq_e4m3 on four floats, both roundings computed and the right one picked per lane. */
static inline v4f qdq4(v4f y)
{
    v4u u = (v4u)y, sign = u & 0x80000000u, a = u & 0x7fffffffu;
    v4u r = (a + 0x7ffffu + ((a >> 20) & 1u)) & ~0xfffffu;
    r = pick((v4u)(r > 0x43e00000u), (v4u){0} + 0x43e00000u, r);
    v4f t = (v4f)a * 512.0f;
    t = (t + 8388608.0f) - 8388608.0f;
    v4u sub = (v4u)(t * (1.0f / 512.0f));
    r = pick((v4u)(a >= 0x3c800000u), r, sub);
    r = pick((v4u)(a > 0x7f800000u), a, r); /* NaN */
    return (v4f)(r | sign);
}

#if FP8_SIMD
#include "fp8_simd.h" /* fp8_qdq16: qdq_e4m3 on 16 lanes, the same bits */
#define WIDE FP8_WIDE
#define qdq16 fp8_qdq16

/* Each returns how many leading elements it did (a multiple of 16); the caller does the rest. */
static WIDE size_t amax16(float *m, const float *x, size_t n)
{
    __m512 vm = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        vm = fp8_amax_lanes(vm, _mm512_loadu_ps(x + i));
    float l[16];
    _mm512_storeu_ps(l, vm);
    for (int k = 0; k < 16; k++)
        *m = l[k] > *m ? l[k] : *m;
    return i;
}

static WIDE size_t qdq16_run(float *dst, const float *src, size_t n, float s, float mul)
{
    size_t i = 0;
    __m512 vs = _mm512_set1_ps(s), vmul = _mm512_set1_ps(mul);
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(dst + i,
                         _mm512_mul_ps(qdq16(_mm512_div_ps(_mm512_loadu_ps(src + i), vs)), vmul));
    return i;
}

static WIDE int col_amax16(float *amax, const float *x, int kc)
{
    int k = 0;
    for (; k + 16 <= kc; k += 16) {
        __m512 m = fp8_amax_lanes(_mm512_loadu_ps(amax + k), _mm512_loadu_ps(x + k));
        _mm512_storeu_ps(amax + k, m);
    }
    return k;
}

static WIDE int col_qdq16(float *y, const float *x, const float *sc, int kc, int keep)
{
    int k = 0;
    for (; k + 16 <= kc; k += 16) {
        __m512 s16 = _mm512_loadu_ps(sc + k);
        __m512 v = qdq16(_mm512_div_ps(_mm512_loadu_ps(x + k), s16));
        _mm512_storeu_ps(y + k, keep ? v : _mm512_mul_ps(v, s16));
    }
    return k;
}

static inline __mmask16 lanes16(int n) /* the first n of 16 lanes, n clamped to 0..16 */
{
    return n >= 16 ? 0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1);
}

static WIDE inline __m256i code16_lanes(__m512 x, __m512 s) /* the codes as 16 bf16 */
{
    return _mm512_cvtepi32_epi16(fp8_code_bits(x, s));
}

/* r1__fp8_tile16: the tile (n <= 128) held in eight registers, read once. */
static WIDE float tile16_wide(uint16_t *dst, const float *x, int n)
{
    __m512 v[8], m = _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        v[i] = _mm512_maskz_loadu_ps(lanes16(n - 16 * i), x + 16 * i);
        m = fp8_amax_lanes(m, v[i]);
    }
    float s = r1_fp8_scale(_mm512_reduce_max_ps(m));
    __m512 vs = _mm512_set1_ps(s);
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++)
        if (16 * i < n)
            _mm256_mask_storeu_epi16(dst + 16 * i, lanes16(n - 16 * i), code16_lanes(v[i], vs));
    return s;
}

/* r1__fp8_cols16 (the AMX path's A stored along k; the other paths quantise that into their
 * panels in gemm16.c): 64 columns at a time, their running maxima in four registers while the
 * rows stream by, then the codes from the block again (in cache: at most 128 rows of 256
 * bytes). */
static WIDE void cols16_wide(uint16_t *dst, long dld, float *s, const float *x, long ld, int kc,
                             int n)
{
    for (int c0 = 0; c0 < n; c0 += 64) {
        __mmask16 mk[4];
        __m512 m[4], sv[4];
        for (int i = 0; i < 4; i++) {
            mk[i] = lanes16(n - c0 - 16 * i);
            m[i] = _mm512_setzero_ps();
        }
        for (int k = 0; k < kc; k++) {
            const float *r = x + k * ld + c0;
            for (int i = 0; i < 4; i++)
                __builtin_prefetch(r + 4 * ld + 16 * i, 0, 3);
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++)
                m[i] = fp8_amax_lanes(m[i], _mm512_maskz_loadu_ps(mk[i], r + 16 * i));
        }
        for (int i = 0; i < 4; i++) {
            sv[i] = fp8_scale_lanes(m[i]);
            _mm512_mask_storeu_ps(s + c0 + 16 * i, mk[i], sv[i]);
        }
        for (int k = 0; k < kc; k++) {
            const float *r = x + k * ld + c0;
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++)
                _mm256_mask_storeu_epi16(dst + k * dld + c0 + 16 * i, mk[i],
                                         code16_lanes(_mm512_maskz_loadu_ps(mk[i], r + 16 * i),
                                                      sv[i]));
        }
    }
}

static int wide(void)
{
    return r1_isa_active() >= R1_ISA_AVX512BF16;
}
#else
static size_t amax16(float *m, const float *x, size_t n) { (void)m, (void)x, (void)n; return 0; }
static size_t qdq16_run(float *d, const float *x, size_t n, float s, float mul)
{
    (void)d, (void)x, (void)n, (void)s, (void)mul;
    return 0;
}
static int col_amax16(float *a, const float *x, int kc) { (void)a, (void)x, (void)kc; return 0; }
static int col_qdq16(float *y, const float *x, const float *sc, int kc, int keep)
{
    (void)y, (void)x, (void)sc, (void)kc, (void)keep;
    return 0;
}
static float tile16_wide(uint16_t *d, const float *x, int n)
{
    (void)d, (void)x, (void)n;
    return 0;
}
static void cols16_wide(uint16_t *d, long dld, float *s, const float *x, long ld, int kc, int n)
{
    (void)d, (void)dld, (void)s, (void)x, (void)ld, (void)kc, (void)n;
}
static int wide(void) { return 0; }
#endif

/* The same on the avx2 kernel path (a CPU without AVX-512), 8 lanes at a time. */
#if defined(__x86_64__) || defined(__i386__)
#include "fp8_avx2.h"
#define NARROW FP8_AVX2

static NARROW size_t amax8_run(float *m, const float *x, size_t n)
{
    __m256 vm = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        vm = fp8_amax8(vm, _mm256_loadu_ps(x + i));
    float l[8];
    _mm256_storeu_ps(l, vm);
    for (int k = 0; k < 8; k++)
        *m = l[k] > *m ? l[k] : *m;
    return i;
}

static NARROW size_t qdq8_run(float *dst, const float *src, size_t n, float s, float mul)
{
    size_t i = 0;
    __m256 vs = _mm256_set1_ps(s), vmul = _mm256_set1_ps(mul);
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_mul_ps(fp8_qdq8(_mm256_div_ps(_mm256_loadu_ps(src + i),
                                                                       vs)),
                                                vmul));
    return i;
}

static NARROW int col_amax8(float *amax, const float *x, int kc)
{
    int k = 0;
    for (; k + 8 <= kc; k += 8)
        _mm256_storeu_ps(amax + k, fp8_amax8(_mm256_loadu_ps(amax + k), _mm256_loadu_ps(x + k)));
    return k;
}

static NARROW int col_qdq8(float *y, const float *x, const float *sc, int kc, int keep)
{
    int k = 0;
    for (; k + 8 <= kc; k += 8) {
        __m256 s8 = _mm256_loadu_ps(sc + k);
        __m256 v = fp8_qdq8(_mm256_div_ps(_mm256_loadu_ps(x + k), s8));
        _mm256_storeu_ps(y + k, keep ? v : _mm256_mul_ps(v, s8));
    }
    return k;
}

/* 8 codes as bf16 to d */
static NARROW inline void put_codes8(uint16_t *d, __m256 x, __m256 s)
{
    __m256i c = fp8_code_bits8(x, s); /* each lane below 2^16 */
    __m128i h = _mm_packus_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
    _mm_storeu_si128((__m128i *)d, h);
}

/* r1__fp8_tile16's codes with the scale s: the first multiple of 8 of the n values (returned). */
static NARROW int codes8_run(uint16_t *dst, const float *x, int n, float s)
{
    __m256 vs = _mm256_set1_ps(s);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        put_codes8(dst + i, _mm256_loadu_ps(x + i), vs);
    return i;
}

/* r1__fp8_cols16: 32 columns at a time, their maxima in four registers as the rows stream
 * by, then the codes from the block again (in cache). */
static NARROW int cols8_run(uint16_t *dst, long dld, float *s, const float *x, long ld, int kc,
                            int n)
{
    int c0 = 0;
    for (; c0 + 32 <= n; c0 += 32) {
        __m256 m[4], sv[4];
        for (int i = 0; i < 4; i++)
            m[i] = _mm256_setzero_ps();
        for (int k = 0; k < kc; k++) {
            const float *r = x + k * ld + c0;
            for (int i = 0; i < 4; i++)
                m[i] = fp8_amax8(m[i], _mm256_loadu_ps(r + 8 * i));
        }
        for (int i = 0; i < 4; i++) {
            sv[i] = fp8_scale8(m[i]);
            _mm256_storeu_ps(s + c0 + 8 * i, sv[i]);
        }
        for (int k = 0; k < kc; k++) {
            const float *r = x + k * ld + c0;
            for (int i = 0; i < 4; i++)
                put_codes8(dst + k * dld + c0 + 8 * i, _mm256_loadu_ps(r + 8 * i), sv[i]);
        }
    }
    return c0;
}

static int narrow(void)
{
    return r1_isa_active() >= R1_ISA_AVX2;
}
#else
static size_t amax8_run(float *m, const float *x, size_t n) { (void)m, (void)x, (void)n; return 0; }
static size_t qdq8_run(float *d, const float *x, size_t n, float s, float mul)
{
    (void)d, (void)x, (void)n, (void)s, (void)mul;
    return 0;
}
static int col_amax8(float *a, const float *x, int kc) { (void)a, (void)x, (void)kc; return 0; }
static int col_qdq8(float *y, const float *x, const float *sc, int kc, int keep)
{
    (void)y, (void)x, (void)sc, (void)kc, (void)keep;
    return 0;
}
static int codes8_run(uint16_t *d, const float *x, int n, float s)
{
    (void)d, (void)x, (void)n, (void)s;
    return 0;
}
static int cols8_run(uint16_t *d, long dld, float *s, const float *x, long ld, int kc, int n)
{
    (void)d, (void)dld, (void)s, (void)x, (void)ld, (void)kc, (void)n;
    return 0;
}
static int narrow(void) { return 0; }
#endif

static float amax_of(const float *x, size_t n, size_t stride)
{
    float m = 0;
    size_t i = 0;
    if (stride == 1 && (wide() || narrow())) {
        i = wide() ? amax16(&m, x, n) : amax8_run(&m, x, n);
        x += i, n -= i, i = 0;
    }
    if (stride == 1 && n >= 4) {
        v4f vm = {0};
        for (; i + 4 <= n; i += 4) {
            v4f v = (v4f)((v4u)load4(x + i) & 0x7fffffffu);
            vm = (v4f)pick((v4u)(v > vm), (v4u)v, (v4u)vm); /* NaN never wins; it shows anyway */
        }
        for (int k = 0; k < 4; k++)
            m = vm[k] > m ? vm[k] : m;
    }
    for (; i < n; i++) {
        float v = fabsf(x[i * stride]);
        m = v > m ? v : m;
    }
    return m;
}

/* dst = decode(e4m3(src / s)) · mul, where mul is s (quantise-dequantise) or 1 (the codes'
 * values, which the FP8 GEMMs through BF16 multiply; exact in bf16). */
static void qdq_run(float *dst, const float *src, size_t n, size_t stride, float s, float mul)
{
    size_t i = 0;
    if (stride == 1 && wide())
        i = qdq16_run(dst, src, n, s, mul);
    else if (stride == 1 && narrow())
        i = qdq8_run(dst, src, n, s, mul);
    if (stride == 1)
        for (; i + 4 <= n; i += 4)
            store4(dst + i, qdq4(load4(src + i) / s) * mul);
    for (; i < n; i++)
        dst[i * stride] = qdq_e4m3(src[i * stride] / s) * mul;
}

/* The four groupings, each either dequantised (sc NULL) or as codes with their scales.  The
 * groups are independent, so pieces of them run side by side (r1__parallel_for_work): a
 * product's quantisation had run on the calling thread while the other core waited. */
typedef struct {
    float *dst, *sc;
    const float *src;
    int N, K, parts;
} qjob;

/* An element weighs QUANT_COST multiply-adds for the pool's thresholds (a division and some
 * twenty operations a lane).  fp8 `tiny` step, medians of 5 alternating runs (Zen 5, 2
 * threads): serial 6845 tokens/s, side by side at 4 7897 (8562 in a later run), at 16 9012;
 * 64 the same as 16. */
#define QUANT_COST 16

static void quant_run(qjob *j, int items, void (*fn)(void *, int, int))
{
    j->parts = items < 1 ? 1 : items < R1_MAX_WORKERS ? items : R1_MAX_WORKERS;
    r1__parallel_for_work((long)j->N * j->K * QUANT_COST, j->parts, fn, j);
}

static void tiles_piece(void *ctx, int i, int tid)
{
    (void)tid;
    const qjob *j = ctx;
    int K = j->K, nk = (K + BLK - 1) / BLK, lo, hi;
    r1__piece(j->N, j->parts, i, 1, &lo, &hi);
    for (int n = lo; n < hi; n++)
        for (int k0 = 0; k0 < K; k0 += BLK) {
            size_t at = (size_t)n * K + k0, len = K - k0 < BLK ? K - k0 : BLK;
            float s = r1_fp8_scale(amax_of(j->src + at, len, 1));
            qdq_run(j->dst + at, j->src + at, len, 1, s, j->sc ? 1.0f : s);
            if (j->sc)
                j->sc[(size_t)n * nk + k0 / BLK] = s;
        }
}

static void tiles(float *dst, float *sc, const float *src, int N, int K)
{
    qjob j = {dst, sc, src, N, K, 0};
    quant_run(&j, N / 16, tiles_piece); /* pieces of at least 16 rows */
}

void r1_fp8_qdq_tiles(float *dst, const float *src, int N, int K)
{
    tiles(dst, NULL, src, N, K);
}

void r1_fp8_q_tiles(float *codes, float *scales, const float *src, int N, int K)
{
    tiles(codes, scales, src, N, K);
}

/* Item i: the rows of column tile i / chunks (128 rows), columns of chunk i % chunks (512). */
static void coltiles_item(const qjob *j, int i)
{
    int N = j->N, K = j->K, chunks = (K + 511) / 512;
    float *sc = j->sc;
    int n0 = i / chunks * BLK, k0 = i % chunks * 512;
    if (n0 >= N)
        return;
    int rows = N - n0 < BLK ? N - n0 : BLK;
    const float *sb = j->src + (size_t)n0 * K;
    float *db = j->dst + (size_t)n0 * K;
    /* column amax row by row (streaming along memory), then scale row by row */
    float amax[512];
    int kc = K - k0 < 512 ? K - k0 : 512;
    memset(amax, 0, sizeof(float) * kc);
    int w = wide(), w8 = !w && narrow();
    for (int r = 0; r < rows; r++) {
        const float *x = sb + (size_t)r * K + k0;
        for (int k = w ? col_amax16(amax, x, kc) : w8 ? col_amax8(amax, x, kc) : 0; k < kc; k++) {
            float v = fabsf(x[k]);
            amax[k] = v > amax[k] ? v : amax[k];
        }
    }
    for (int k = 0; k < kc; k++)
        amax[k] = r1_fp8_scale(amax[k]);
    if (sc)
        memcpy(sc + (size_t)(n0 / BLK) * K + k0, amax, sizeof(float) * kc);
    for (int r = 0; r < rows; r++) {
        const float *x = sb + (size_t)r * K + k0;
        float *y = db + (size_t)r * K + k0;
        int k = w    ? col_qdq16(y, x, amax, kc, sc != NULL)
                : w8 ? col_qdq8(y, x, amax, kc, sc != NULL)
                     : 0;
        for (; k + 4 <= kc; k += 4) {
            v4f s4 = load4(amax + k);
            store4(y + k, sc ? qdq4(load4(x + k) / s4) : qdq4(load4(x + k) / s4) * s4);
        }
        for (; k < kc; k++)
            y[k] = qdq_e4m3(x[k] / amax[k]) * (sc ? 1.0f : amax[k]);
    }
}

/* Piece i: every parts-th item from i. */
static void coltiles_piece(void *ctx, int i, int tid)
{
    (void)tid;
    const qjob *j = ctx;
    int items = (j->N + BLK - 1) / BLK * ((j->K + 511) / 512);
    for (int it = i; it < items; it += j->parts)
        coltiles_item(j, it);
}

static void coltiles(float *dst, float *sc, const float *src, int N, int K)
{
    qjob j = {dst, sc, src, N, K, 0};
    quant_run(&j, (N + BLK - 1) / BLK * ((K + 511) / 512), coltiles_piece);
}

void r1_fp8_qdq_coltiles(float *dst, const float *src, int N, int K)
{
    coltiles(dst, NULL, src, N, K);
}

void r1_fp8_q_coltiles(float *codes, float *scales, const float *src, int N, int K)
{
    coltiles(codes, scales, src, N, K);
}

/* The scale of block (rb, cb) of x[R,C]. */
static float block_scale(const float *x, int R, int C, int r0, int c0)
{
    int rows = R - r0 < BLK ? R - r0 : BLK, cols = C - c0 < BLK ? C - c0 : BLK;
    float m = 0;
    for (int r = 0; r < rows; r++) {
        float v = amax_of(x + (size_t)(r0 + r) * C + c0, (size_t)cols, 1);
        m = v > m ? v : m;
    }
    return r1_fp8_scale(m);
}

/* Piece i: every parts-th row block (128 rows) from i. */
static void blocks_piece(void *ctx, int i, int tid)
{
    (void)tid;
    const qjob *j = ctx;
    int N = j->N, K = j->K, nk = (K + BLK - 1) / BLK;
    for (int r0 = i * BLK; r0 < N; r0 += j->parts * BLK)
        for (int c0 = 0; c0 < K; c0 += BLK) {
            float s = block_scale(j->src, N, K, r0, c0);
            int rows = N - r0 < BLK ? N - r0 : BLK, cols = K - c0 < BLK ? K - c0 : BLK;
            for (int r = 0; r < rows; r++) {
                size_t at = (size_t)(r0 + r) * K + c0;
                qdq_run(j->dst + at, j->src + at, (size_t)cols, 1, s, j->sc ? 1.0f : s);
            }
            if (j->sc)
                j->sc[(size_t)(r0 / BLK) * nk + c0 / BLK] = s;
        }
}

static void blocks(float *dst, float *sc, const float *src, int N, int K)
{
    qjob j = {dst, sc, src, N, K, 0};
    quant_run(&j, (N + BLK - 1) / BLK, blocks_piece);
}

void r1_fp8_qdq_blocks(float *dst, const float *src, int N, int K)
{
    blocks(dst, NULL, src, N, K);
}

void r1_fp8_q_blocks(float *codes, float *scales, const float *src, int N, int K)
{
    blocks(codes, scales, src, N, K);
}

void r1_fp8_qdq_tensor(float *dst, const float *src, size_t n)
{
    float s = r1_fp8_scale(amax_of(src, n, 1));
    qdq_run(dst, src, n, 1, s, s);
}

float r1_fp8_q_tensor(float *codes, const float *src, size_t n)
{
    float s = r1_fp8_scale(amax_of(src, n, 1));
    qdq_run(codes, src, n, 1, s, 1.0f);
    return s;
}

/* ------------------------------------------------------------------ codes for gemm16's packing */

/* A code's value as bf16: exact (E4M3 has 3 bits of mantissa), a NaN quiet (as gemm16's
 * rounding to bf16 leaves it). */
static uint16_t half_of(float c)
{
    uint32_t u = bits_of(c);
    uint16_t h = (uint16_t)(u >> 16);
    return (u & 0x7fffffffu) > 0x7f800000u ? (uint16_t)(h | 0x40u) : h;
}

/* The codes of x[0, n) with the scale of the values' own tile, x / s rounded as qdq_e4m3 does
 * (qdq4's bits) and written as bf16. */
static void codes_of(uint16_t *dst, const float *x, int n, float s)
{
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        v4f c = qdq4(load4(x + i) / s);
        for (int l = 0; l < 4; l++)
            dst[i + l] = half_of(c[l]);
    }
    for (; i < n; i++)
        dst[i] = half_of(qdq_e4m3(x[i] / s));
}

float r1__fp8_tile16(uint16_t *dst, const float *x, int n)
{
    if (n <= 128 && wide())
        return tile16_wide(dst, x, n);
    float s = r1_fp8_scale(amax_of(x, n > 0 ? (size_t)n : 0, 1));
    int i = narrow() ? codes8_run(dst, x, n, s) : 0;
    codes_of(dst + i, x + i, n - i, s);
    return s;
}

void r1__fp8_cols16(uint16_t *dst, long dld, float *s, const float *x, long ld, int kc, int n)
{
    if (wide()) {
        cols16_wide(dst, dld, s, x, ld, kc, n);
        return;
    }
    int c0 = narrow() ? cols8_run(dst, dld, s, x, ld, kc, n) : 0; /* the columns done */
    for (int i = c0; i < n; i++)
        s[i] = 0;
    for (int k = 0; k < kc; k++)
        for (int i = c0; i < n; i++) {
            float v = fabsf(x[k * ld + i]);
            s[i] = v > s[i] ? v : s[i]; /* a NaN never wins */
        }
    for (int i = c0; i < n; i++)
        s[i] = r1_fp8_scale(s[i]);
    for (int k = 0; k < kc; k++)
        for (int i = c0; i < n; i++)
            dst[k * dld + i] = half_of(qdq_e4m3(x[k * ld + i] / s[i]));
}

void r1_fp8_quantize_blocks(uint8_t *codes, float *scale_inv, const float *w, int R, int C)
{
    int nc = (C + BLK - 1) / BLK;
    for (int r0 = 0; r0 < R; r0 += BLK)
        for (int c0 = 0; c0 < C; c0 += BLK) {
            float s = block_scale(w, R, C, r0, c0);
            scale_inv[(r0 / BLK) * nc + c0 / BLK] = s;
            int rows = R - r0 < BLK ? R - r0 : BLK, cols = C - c0 < BLK ? C - c0 : BLK;
            for (int r = 0; r < rows; r++) {
                size_t at = (size_t)(r0 + r) * C + c0;
                for (int c = 0; c < cols; c++)
                    codes[at + c] = r1_f32_to_e4m3(w[at + c] / s);
            }
        }
}

void r1_fp8_dequantize_blocks(float *w, const uint8_t *codes, const float *scale_inv, int R,
                              int C, int e5m2)
{
    float lut[256];
    for (int i = 0; i < 256; i++)
        lut[i] = e5m2 ? r1_e5m2_to_f32((uint8_t)i) : r1_e4m3_to_f32((uint8_t)i);
    int nc = (C + BLK - 1) / BLK;
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) {
            size_t at = (size_t)r * C + c;
            w[at] = lut[codes[at]] * scale_inv[(r / BLK) * nc + c / BLK];
        }
}

/* ------------------------------------------------------------------ the GEMM: portable */

/* -1: not chosen yet; 0: portable; 1: AVX-512.  Racing first calls store the same value. */
static atomic_int simd_mode = -1;

/* Columns of one weight row decoded at a time: 8 blocks, 4 KB on the stack. */
#define PKC (8 * BLK)

static void matmul_portable(float *out, const float *in, const uint8_t *w, const float *sc,
                            int N, int Ci, int Co, int accumulate)
{
    float lut[256];
    for (int i = 0; i < 256; i++)
        lut[i] = r1_e4m3_to_f32((uint8_t)i);
    int nc = (Ci + BLK - 1) / BLK;
    _Alignas(16) float wb[PKC]; /* a chunk of one row, decoded (unscaled) once for all tokens */
    for (int o = 0; o < Co; o++) {
        const uint8_t *wr = w + (size_t)o * Ci;
        const float *so = sc + (size_t)(o / BLK) * nc;
        for (int c0 = 0; c0 < Ci; c0 += PKC) {
            int cc = Ci - c0 < PKC ? Ci - c0 : PKC;
            for (int j = 0; j < cc; j++)
                wb[j] = lut[wr[c0 + j]];
            for (int n = 0; n < N; n++) {
                const float *x = in + (size_t)n * Ci + c0;
                v4f acc = {0};
                for (int k0 = 0; k0 < cc; k0 += BLK) { /* one block: partial sum, then scale */
                    int kc = cc - k0 < BLK ? cc - k0 : BLK, k = k0;
                    v4f part[2] = {{0}, {0}};
                    for (; k + 8 <= k0 + kc; k += 8) {
                        part[0] += load4(x + k) * load4(wb + k);
                        part[1] += load4(x + k + 4) * load4(wb + k + 4);
                    }
                    for (; k < k0 + kc; k++)
                        part[0][0] += x[k] * wb[k];
                    acc += (part[0] + part[1]) * so[(c0 + k0) / BLK];
                }
                float y = (acc[0] + acc[2]) + (acc[1] + acc[3]);
                float *on = out + (size_t)n * Co + o;
                *on = accumulate || c0 > 0 ? *on + y : y;
            }
        }
    }
}

/* ------------------------------------------------------------------ the GEMM: AVX-512 */
#if FP8_SIMD

#define SIMD __attribute__((target("avx512f,avx512bw,avx512vl")))

/* 32 E4M3 codes (m masks the valid ones; the rest read as 0) as two vectors of fp32, each
 * value times 2^-8: the code's 7 magnitude bits shifted into fp16's exponent and mantissa
 * and its sign moved up one bit ((c + (c & 0x80)) << 7), widened exactly by vcvtph2ps. */
static inline SIMD void decode32(const uint8_t *p, __mmask32 m, __m512 *lo, __m512 *hi)
{
    __m512i c = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, p));
    __m512i sign = _mm512_and_si512(c, _mm512_set1_epi16(0x80));
    __m512i h = _mm512_slli_epi16(_mm512_add_epi16(c, sign), 7);
    *lo = _mm512_cvtph_ps(_mm512_castsi512_si256(h));
    *hi = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(h, 1));
}

/* R rows o0.. (nr valid; the rest repeat the last row and are dropped) of out[T, ldo] for the
 * T tokens in[T, Ci], R·T = 4.  Each (row, token) keeps two accumulators (the two halves of
 * each 32 decoded weights) so that eight independent FMA chains hide the FMA latency. */
static inline __attribute__((always_inline)) SIMD void
block_RT(float *out, const float *in, const uint8_t *w, const float *sc, int o0, int nr, int Ci,
         int ldo, int accumulate, const int R, const int T)
{
    int nc = (Ci + BLK - 1) / BLK;
    const uint8_t *wr[4];
    const float *so[4];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
        int o = o0 + (r < nr ? r : nr - 1);
        wr[r] = w + (size_t)o * Ci;
        so[r] = sc + (size_t)(o / BLK) * nc;
    }
    __m512 acc[4];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++)
        acc[i] = _mm512_setzero_ps();
    for (int k0 = 0; k0 < Ci; k0 += BLK) {
        int kc = Ci - k0 < BLK ? Ci - k0 : BLK;
        __m512 plo[4], phi[4];
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++)
            plo[i] = phi[i] = _mm512_setzero_ps();
        for (int k = 0; k < kc; k += 32) {
            int rem = kc - k;
            __mmask32 m = rem >= 32 ? (__mmask32)0xffffffffu : (__mmask32)((1u << rem) - 1);
            __mmask16 m0 = (__mmask16)m, m1 = (__mmask16)(m >> 16);
            __m512 xl[4], xh[4];
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) {
                const float *x = in + (size_t)t * Ci + k0 + k;
                xl[t] = _mm512_maskz_loadu_ps(m0, x);
                xh[t] = _mm512_maskz_loadu_ps(m1, x + 16);
            }
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                __m512 lo, hi;
                decode32(wr[r] + k0 + k, m, &lo, &hi);
#pragma GCC unroll 4
                for (int t = 0; t < T; t++) {
                    plo[r * T + t] = _mm512_fmadd_ps(lo, xl[t], plo[r * T + t]);
                    phi[r * T + t] = _mm512_fmadd_ps(hi, xh[t], phi[r * T + t]);
                }
            }
        }
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m512 s = _mm512_set1_ps(so[r][k0 / BLK] * 256.0f);
#pragma GCC unroll 4
            for (int t = 0; t < T; t++)
                acc[r * T + t] = _mm512_fmadd_ps(_mm512_add_ps(plo[r * T + t], phi[r * T + t]),
                                                 s, acc[r * T + t]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
        if (r >= nr)
            break;
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            float y = _mm512_reduce_add_ps(acc[r * T + t]);
            float *on = out + (size_t)t * ldo + o0 + r;
            *on = accumulate ? *on + y : y;
        }
    }
}

static SIMD void matmul_avx512(float *out, const float *in, const uint8_t *w, const float *sc,
                               int N, int Ci, int Co, int accumulate)
{
    for (int n = 0; n < N;) {
        int left = N - n, T = left >= 4 ? 4 : left >= 2 ? 2 : 1;
        float *on = out + (size_t)n * Co;
        const float *x = in + (size_t)n * Ci;
        int R = 4 / T;
        for (int o = 0; o < Co; o += R) {
            int nr = Co - o < R ? Co - o : R;
            if (T == 4)
                block_RT(on, x, w, sc, o, nr, Ci, Co, accumulate, 1, 4);
            else if (T == 2)
                block_RT(on, x, w, sc, o, nr, Ci, Co, accumulate, 2, 2);
            else
                block_RT(on, x, w, sc, o, nr, Ci, Co, accumulate, 4, 1);
        }
        n += T;
    }
}

static int cpu_has_simd(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
}

/* Also off when the kernel path (R1_ISA) was lowered below what this CPU offers. */
static int use_simd(void)
{
    int m = atomic_load_explicit(&simd_mode, memory_order_relaxed);
    if (m < 0) {
        m = cpu_has_simd();
        atomic_store_explicit(&simd_mode, m, memory_order_relaxed);
    }
    return m && (r1_isa_active() >= R1_ISA_AVX512BF16 || r1_isa_active() == r1_isa_best());
}

#else /* !FP8_SIMD */

static int cpu_has_simd(void)
{
    return 0;
}

#endif

int r1_fp8_set_simd(int on)
{
    int m = on ? cpu_has_simd() : 0;
    atomic_store_explicit(&simd_mode, m, memory_order_relaxed);
    return m;
}

void r1_matmul_fp8(float *out, const float *in, const uint8_t *w, const float *scale_inv, int N,
                   int Ci, int Co, int accumulate)
{
    if (N <= 0 || Co <= 0)
        return;
    if (Ci <= 0) {
        if (!accumulate)
            memset(out, 0, sizeof *out * (size_t)N * Co);
        return;
    }
#if FP8_SIMD
    if (use_simd()) {
        matmul_avx512(out, in, w, scale_inv, N, Ci, Co, accumulate);
        return;
    }
#endif
    matmul_portable(out, in, w, scale_inv, N, Ci, Co, accumulate);
}
