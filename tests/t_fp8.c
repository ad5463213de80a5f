/* t_fp8.c — FP8 (r1_fp8.h): the E4M3 / E5M2 codecs over all 256 codes and hand-picked fp32
 * edge cases, against a brute-force nearest-value reference; tile, column-tile, block and
 * per-tensor scaling; the FP8-weight GEMM and the emulated GEMM against references with error
 * bounds; the training emulation (off is bit-identical, on still learns); FP8 checkpoints in
 * DeepSeek-V3's layout (write -> read, a hand-made file, bad scales); FP8 decode weights. */
#include <config.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "r1_bf16.h"
#include "r1_fp8.h"
#include "r1_generate.h"
#include "r1_optim.h"
#include "r1_rng.h"
#include "r1_safetensors.h"
#include "r1_tokenizer.h"
#include "tap.h"
#include "testutil.h"

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float fbits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ------------------------------------------------------------------ an independent reference */

/* The value of a code from the format's definition (M mantissa bits, bias, IEEE-style
 * infinities or E4M3's single NaN pattern), in double. */
static double ref_value(int c, int M, int bias, int ieee)
{
    int s = c >> 7, e = (c & 0x7f) >> M, m = c & ((1 << M) - 1), emax = (1 << (7 - M)) - 1;
    double v;
    if (ieee && e == emax)
        v = m ? NAN : INFINITY;
    else if (!ieee && e == emax && m == (1 << M) - 1)
        v = NAN;
    else if (e == 0)
        v = ldexp(m, 1 - bias - M);
    else
        v = ldexp((1 << M) + m, e - bias - M);
    return s ? -v : v;
}

/* The nearest finite code to f by scanning every code: ties to the even code, saturating,
 * -1 for NaN. */
static int ref_encode(float f, int M, int bias, int ieee)
{
    if (isnan(f))
        return -1;
    double a = fabs((double)f);
    if (a >= ref_value(ieee ? 0x7b : 0x7e, M, bias, ieee)) /* saturates (infinity too) */
        return (signbit(f) ? 0x80 : 0) | (ieee ? 0x7b : 0x7e);
    int best = 0;
    double bd = INFINITY;
    for (int c = 0; c < 128; c++) {
        double v = ref_value(c, M, bias, ieee);
        if (!isfinite(v))
            continue;
        double d = fabs(v - a);
        if (d < bd || (d == bd && (c & 1) == 0)) {
            bd = d;
            best = c;
        }
    }
    /* past the largest value every input saturates (the scan already gives the largest) */
    return (signbit(f) ? 0x80 : 0) | best;
}

/* ------------------------------------------------------------------ codecs */

static void test_codes(void)
{
    int e4_ok = 1, e5_ok = 1, e4_val = 1, e5_val = 1, e4_mono = 1;
    for (int c = 0; c < 256; c++) {
        float v4 = r1_e4m3_to_f32((uint8_t)c), v5 = r1_e5m2_to_f32((uint8_t)c);
        double r4 = ref_value(c, 3, 7, 0), r5 = ref_value(c, 2, 15, 1);
        if (isnan(r4) ? !isnan(v4) : (double)v4 != r4 || !signbit(v4) != !signbit(r4))
            e4_val = 0;
        if (isnan(r5) ? !isnan(v5) : (double)v5 != r5 || !signbit(v5) != !signbit(r5))
            e5_val = 0;
        /* every code encodes back to itself, but E5M2's infinities (which saturate) and its
         * NaNs (one quiet NaN per sign) */
        uint8_t b4 = r1_f32_to_e4m3(v4), b5 = r1_f32_to_e5m2(v5);
        if (isnan(v4) ? !isnan(r1_e4m3_to_f32(b4)) : b4 != c)
            e4_ok = 0;
        if (isnan(v5) ? !isnan(r1_e5m2_to_f32(b5)) || (b5 & 0x80) != (c & 0x80)
            : isinf(v5) ? b5 != ((c & 0x80) | 0x7b)
                        : b5 != c)
            e5_ok = 0;
        if (c > 0 && c < 0x7f && !(v4 > r1_e4m3_to_f32((uint8_t)(c - 1))))
            e4_mono = 0;
    }
    ok(e4_val, "E4M3: all 256 codes decode to the format's values (NaN at 0x7f / 0xff)");
    ok(e5_val, "E5M2: all 256 codes decode to the format's values (inf and NaN included)");
    ok(e4_ok, "E4M3: all 256 codes round-trip code -> f32 -> code");
    ok(e5_ok, "E5M2: all 256 codes round-trip (infinities saturate to +-57344, NaN stays NaN)");
    ok(e4_mono, "E4M3: codes 0..0x7e increase strictly");
    is_float(r1_e4m3_to_f32(0x7e), 448, 0, "E4M3 largest 448");
    is_float(r1_e4m3_to_f32(0x08), ldexp(1, -6), 0, "E4M3 smallest normal 2^-6");
    is_float(r1_e4m3_to_f32(0x01), ldexp(1, -9), 0, "E4M3 smallest subnormal 2^-9");
    is_float(r1_e4m3_to_f32(0x38), 1, 0, "E4M3 0x38 is 1");
    is_float(r1_e5m2_to_f32(0x7b), 57344, 0, "E5M2 largest 57344");
    is_float(r1_e5m2_to_f32(0x04), ldexp(1, -14), 0, "E5M2 smallest normal 2^-14");
    is_float(r1_e5m2_to_f32(0x01), ldexp(1, -16), 0, "E5M2 smallest subnormal 2^-16");
    ok(isinf(r1_e5m2_to_f32(0xfc)) && r1_e5m2_to_f32(0xfc) < 0, "E5M2 0xfc is -inf");
}

static void test_edges(void)
{
    struct {
        float f;
        uint8_t e4, e5;
        const char *what;
    } cases[] = {
        {0.0f, 0x00, 0x00, "+0"},
        {-0.0f, 0x80, 0x80, "-0 keeps its sign"},
        {1.0f, 0x38, 0x3c, "1"},
        {-2.0f, 0xc0, 0xc0, "-2"},
        {448.0f, 0x7e, 0x5f, "448"},
        {449.0f, 0x7e, 0x5f, "449: E4M3 saturates"},
        {464.0f, 0x7e, 0x5f, "464, the tie towards the missing 480: saturates"},
        {1e6f, 0x7e, 0x7b, "1e6: both saturate"},
        {-1e6f, 0xfe, 0xfb, "-1e6 saturates to the negative largest"},
        {57344.0f, 0x7e, 0x7b, "57344"},
        {61440.0f, 0x7e, 0x7b, "61440, E5M2's tie towards infinity: saturates"},
        {INFINITY, 0x7e, 0x7b, "+inf saturates"},
        {-INFINITY, 0xfe, 0xfb, "-inf saturates"},
        {1.0625f, 0x38, 0x3c, "1 + 1/16: a tie, to even (1)"},
        {1.1875f, 0x3a, 0x3d, "1 + 3/16: a tie, to even (1.25)"},
        {1.0625001f, 0x39, 0x3c, "just past the tie rounds up"},
        {0x1p-9f, 0x01, 0x18, "2^-9, the smallest E4M3 subnormal"},
        {0x1p-10f, 0x00, 0x14, "2^-10: a tie between 0 and 2^-9, to even (0)"},
        {0x1.0002p-10f, 0x01, 0x14, "just past it: 2^-9"},
        {0x3p-10f, 0x02, 0x1a, "3 * 2^-10: a tie, to even (2 * 2^-9)"},
        {0x7p-9f, 0x07, 0x23, "7 * 2^-9, the largest E4M3 subnormal"},
        {0xfp-10f, 0x08, 0x24, "7.5 * 2^-9: a tie, up into the smallest normal"},
        {-0x1p-12f, 0x80, 0x8c, "a tiny negative flushes to -0 in E4M3"},
        {0x1p-16f, 0x00, 0x01, "2^-16, the smallest E5M2 subnormal"},
        {0x1p-17f, 0x00, 0x00, "2^-17: a tie, to even (0)"},
        {0x3p-17f, 0x00, 0x02, "3 * 2^-17: a tie, to even (2 units)"},
        {1e-45f, 0x00, 0x00, "an fp32 subnormal flushes to +0"},
        {-1e-45f, 0x80, 0x80, "... and to -0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        is_int(r1_f32_to_e4m3(cases[i].f), cases[i].e4, "E4M3 of %s", cases[i].what);
        is_int(r1_f32_to_e5m2(cases[i].f), cases[i].e5, "E5M2 of %s", cases[i].what);
    }
    is_int(r1_f32_to_e4m3(NAN), 0x7f, "E4M3 NaN stays NaN (0x7f)");
    is_int(r1_f32_to_e4m3(-NAN), 0xff, "E4M3 -NaN keeps its sign (0xff)");
    ok(isnan(r1_e5m2_to_f32(r1_f32_to_e5m2(NAN))), "E5M2 NaN stays NaN");
    ok(isnan(r1_e4m3_to_f32(r1_f32_to_e4m3(fbits(0x7f800001u)))),
       "a signalling NaN with a low payload stays NaN");

    /* against the brute-force reference: random values of every magnitude and a stride over
     * all fp32 bit patterns */
    r1_rng r;
    r1_rng_seed(&r, 1);
    long bad4 = 0, bad5 = 0, n = 0;
    for (uint64_t u = 0; u < 0x100000000ull; u += 65537 * 31) {
        float f = fbits((uint32_t)u);
        int w4 = ref_encode(f, 3, 7, 0), w5 = ref_encode(f, 2, 15, 1);
        uint8_t g4 = r1_f32_to_e4m3(f), g5 = r1_f32_to_e5m2(f);
        bad4 += w4 < 0 ? !isnan(r1_e4m3_to_f32(g4)) : g4 != w4;
        bad5 += w5 < 0 ? !isnan(r1_e5m2_to_f32(g5)) : g5 != w5;
        n++;
    }
    for (int i = 0; i < 200000; i++) {
        float f = (float)((r1_rng_uniform(&r) - 0.5) * ldexp(1, (int)r1_rng_below(&r, 40) - 22));
        int w4 = ref_encode(f, 3, 7, 0), w5 = ref_encode(f, 2, 15, 1);
        bad4 += r1_f32_to_e4m3(f) != w4;
        bad5 += r1_f32_to_e5m2(f) != w5;
        n++;
    }
    ok(bad4 == 0, "E4M3 encoding is the nearest value (ties to even, saturating) for %ld "
                  "inputs (%ld differ)",
       n, bad4);
    ok(bad5 == 0, "E5M2 encoding likewise (%ld differ)", bad5);
}

/* The emulation's fast rounding (inside r1_fp8_qdq_*) equals decode(encode(x)): groups whose
 * largest magnitude is 448 have scale 1. */
/* The quantisers on every kernel path this machine has: the same bits as the portable one. */
static void test_qdq_paths(void)
{
    enum { N = 2100, K = 333 }; /* 17 row blocks: past 16 pieces, a piece takes two */
    r1_rng r;
    r1_rng_seed(&r, 4);
    float *x = malloc(sizeof(float) * N * K), *ref[4], *got = malloc(sizeof(float) * N * K);
    static float sref[4][8000], sgot[8000];
    for (int i = 0; i < N * K; i++)
        x[i] = (float)r1_rng_normal(&r) * (i % 101 == 0 ? 30 : 1);
    r1_error err;
    r1_isa best = r1_isa_best();
    /* the portable path on 1 thread; every path, then the best one alone, on 2 (groups side
     * by side: N·K·16 is past the pool's threshold) */
    for (int p = R1_ISA_PORTABLE; p <= (int)best + 1; p++) {
        r1_isa_set((r1_isa)(p <= (int)best ? p : (int)best), &err);
        r1_set_threads(p == R1_ISA_PORTABLE || p > (int)best ? 1 : 2);
        int same = 1;
        for (int g = 0; g < 4; g++) {
            float *dst = p == R1_ISA_PORTABLE ? (ref[g] = malloc(sizeof(float) * N * K)) : got;
            float *sc = p == R1_ISA_PORTABLE ? sref[g] : sgot;
            size_t nb = (N + 127) / 128, nk = (K + 127) / 128;
            size_t ns = g == 0 ? N * nk : g == 1 ? nb * K : g == 2 ? nb * nk : 1;
            if (g == 0)
                r1_fp8_q_tiles(dst, sc, x, N, K);
            else if (g == 1)
                r1_fp8_q_coltiles(dst, sc, x, N, K);
            else if (g == 2)
                r1_fp8_q_blocks(dst, sc, x, N, K);
            else
                sc[0] = r1_fp8_q_tensor(dst, x, (size_t)N * K);
            if (p != R1_ISA_PORTABLE)
                same &= !memcmp(dst, ref[g], sizeof(float) * N * K) &&
                        !memcmp(sc, sref[g], sizeof(float) * ns);
        }
        if (p > (int)best)
            ok(same, "FP8 quantisers on the %s path, 1 thread: the same codes and scales",
               r1_isa_name(best));
        else if (p != R1_ISA_PORTABLE)
            ok(same, "FP8 quantisers on the %s path, 2 threads: the portable path's codes and "
               "scales, bit for bit", r1_isa_name((r1_isa)p));
    }
    r1_set_threads(1);
    r1_isa_set(best, &err);
    for (int g = 0; g < 4; g++)
        free(ref[g]);
    free(x), free(got);
}

static void test_fast_qdq(void)
{
    enum { G = 128 };
    float src[G], dst[G];
    long bad = 0, n = 0;
    for (uint64_t u = 0; u < 0x100000000ull; u += 4099 * 3) {
        float f = fbits((uint32_t)u);
        if (!(fabsf(f) <= 448.0f))
            continue;
        src[n % G ? n % G : 1] = f;
        n++;
        if (n % G == 0 || u + 4099 * 3 >= 0x100000000ull) {
            src[0] = 448.0f;
            int len = (int)(n % G ? n % G : G);
            r1_fp8_qdq_tensor(dst, src, (size_t)len);
            for (int i = 1; i < len; i++)
                bad += bits(dst[i]) != bits(r1_e4m3_to_f32(r1_f32_to_e4m3(src[i])));
        }
    }
    ok(bad == 0, "the emulation's rounding equals decode(encode(x)) bit for bit over %ld values "
                 "(%ld differ)",
       n, bad);
    float z[4] = {0, -0.0f, 0, 0}, q[4];
    r1_fp8_qdq_tensor(q, z, 4);
    ok(q[0] == 0 && signbit(q[1]) && !signbit(q[0]), "an all-zero group stays zero (and -0)");
    is_float(r1_fp8_scale(0), 1, 0, "the scale of an all-zero group is 1");
    is_float(r1_fp8_scale(896), 2, 0, "the scale is amax / 448");
}

/* ------------------------------------------------------------------ scaling */

static void fill(r1_rng *r, float *x, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)r1_rng_normal(r) * scale;
}

/* max over groups of max |q - x| / (2^-4 |x| + s 2^-10), s the group's scale from its amax:
 * <= 1 when every value is within E4M3's half step of its group. */
static double group_err(const float *q, const float *x, int N, int K, int gr, int gc)
{
    double worst = 0;
    for (int r0 = 0; r0 < N; r0 += gr)
        for (int c0 = 0; c0 < K; c0 += gc) {
            float amax = 0;
            for (int r = r0; r < N && r < r0 + gr; r++)
                for (int c = c0; c < K && c < c0 + gc; c++)
                    amax = fmaxf(amax, fabsf(x[(size_t)r * K + c]));
            double s = amax / 448.0;
            for (int r = r0; r < N && r < r0 + gr; r++)
                for (int c = c0; c < K && c < c0 + gc; c++) {
                    size_t i = (size_t)r * K + c;
                    double e = fabs((double)q[i] - x[i]) / (ldexp(fabs(x[i]), -4) + s / 1024 +
                                                            1e-30);
                    worst = e > worst ? e : worst;
                }
        }
    return worst;
}

static void test_scaling(void)
{
    r1_rng r;
    r1_rng_seed(&r, 2);
    enum { N = 200, K = 300 };
    float *x = malloc(sizeof(float) * N * K), *q = malloc(sizeof(float) * N * K);
    fill(&r, x, (size_t)N * K, 1);
    for (int i = 0; i < 40; i++) /* outliers, as in real activations */
        x[r1_rng_below(&r, N * K)] *= 1000;
    for (int n = 0; n < N; n++) /* one scale per row first: the outliers' rows lose */
        r1_fp8_qdq_tensor(q + (size_t)n * K, x + (size_t)n * K, K);
    double e = group_err(q, x, N, K, 1, 128);
    ok(e > 1, "one scale per row: values next to an outlier lose precision (%.1f steps)", e);
    r1_fp8_qdq_tiles(q, x, N, K);
    e = group_err(q, x, N, K, 1, 128);
    ok(e <= 1, "1x128 tiles: every value within half an E4M3 step of its tile (%.3f)", e);
    r1_fp8_qdq_coltiles(q, x, N, K);
    e = group_err(q, x, N, K, 128, 1);
    ok(e <= 1, "128x1 tiles: likewise per column tile (%.3f)", e);
    r1_fp8_qdq_blocks(q, x, N, K);
    e = group_err(q, x, N, K, 128, 128);
    ok(e <= 1, "128x128 blocks: likewise per block, partial edge blocks included (%.3f)", e);
    r1_fp8_qdq_tensor(q, x, (size_t)N * K);
    e = group_err(q, x, N, K, N, K);
    ok(e <= 1, "per tensor: likewise against the one scale (%.3f)", e);

    /* why the tiles matter: a tile next to an outlier keeps its precision */
    float t[256];
    for (int i = 0; i < 256; i++)
        t[i] = 0.001f * (1 + i % 7);
    t[200] = 1000; /* in the second tile */
    float qt[256], qs[256];
    r1_fp8_qdq_tiles(qt, t, 1, 256);
    r1_fp8_qdq_tensor(qs, t, 256);
    double et = 0, es = 0;
    for (int i = 0; i < 128; i++) {
        et = fmax(et, fabs(qt[i] - t[i]) / t[i]);
        es = fmax(es, fabs(qs[i] - t[i]) / t[i]);
    }
    ok(et <= 1.0 / 16, "the first tile ignores the outlier in the second (rel err %.3f)", et);
    ok(es > 0.5, "one scale for the tensor loses the small values (rel err %.3f)", es);

    /* storage: codes + scale_inv, the inverse, and the scale's definition */
    int R = 200, C = 300;
    uint8_t *codes = malloc((size_t)R * C);
    float sc[2 * 3], *w = malloc(sizeof(float) * R * C);
    r1_fp8_quantize_blocks(codes, sc, x, R, C);
    int sok = 1;
    for (int b = 0; b < 6; b++) {
        int r0 = b / 3 * 128, c0 = b % 3 * 128;
        float amax = 0;
        for (int i = r0; i < R && i < r0 + 128; i++)
            for (int j = c0; j < C && j < c0 + 128; j++)
                amax = fmaxf(amax, fabsf(x[(size_t)i * C + j]));
        sok &= sc[b] == amax / 448.0f;
    }
    ok(sok, "scale_inv[2, 3] holds amax / 448 of each 128x128 block (row blocks first)");
    r1_fp8_dequantize_blocks(w, codes, sc, R, C, 0);
    r1_fp8_qdq_blocks(q, x, R, C);
    ok(memcmp(w, q, sizeof(float) * R * C) == 0,
       "dequantised codes equal the emulation's blocks bit for bit");
    free(codes), free(w), free(x), free(q);
}

/* ------------------------------------------------------------------ GEMMs */

/* The FP8-weight GEMM against a double product with the dequantised weights; both paths. */
static void test_gemm(void)
{
    r1_rng r;
    r1_rng_seed(&r, 3);
    int shapes[][3] = {{1, 192, 64}, {3, 300, 130}, {4, 64, 512}, {5, 1408, 512}, {16, 96, 200},
                       {2, 31, 7}};
    int have_simd = r1_fp8_set_simd(1);
    diag("AVX-512 FP8 path %s", have_simd ? "available" : "not available on this CPU");
    for (int path = have_simd ? 1 : 0; path >= 0; path--) {
        r1_fp8_set_simd(path);
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            int N = shapes[s][0], Ci = shapes[s][1], Co = shapes[s][2];
            float *x = malloc(sizeof(float) * N * Ci), *w = malloc(sizeof(float) * Co * Ci);
            float *wq = malloc(sizeof(float) * Co * Ci), *out = malloc(sizeof(float) * N * Co);
            uint8_t *codes = malloc((size_t)Co * Ci);
            int nsc = ((Co + 127) / 128) * ((Ci + 127) / 128);
            float *sc = malloc(sizeof(float) * nsc);
            fill(&r, x, (size_t)N * Ci, 1);
            fill(&r, w, (size_t)Co * Ci, 0.05f);
            r1_fp8_quantize_blocks(codes, sc, w, Co, Ci);
            r1_fp8_dequantize_blocks(wq, codes, sc, Co, Ci, 0);
            for (int i = 0; i < N * Co; i++)
                out[i] = 1.5f;
            int acc = s % 2;
            r1_matmul_fp8(out, x, codes, sc, N, Ci, Co, acc);
            double worst = 0, worst32 = 0;
            for (int n = 0; n < N; n++)
                for (int o = 0; o < Co; o++) {
                    double ref = acc ? 1.5 : 0, ref32 = ref, S = acc ? 1.5 : 0;
                    for (int k = 0; k < Ci; k++) {
                        ref += (double)x[n * Ci + k] * wq[(size_t)o * Ci + k];
                        ref32 += (double)x[n * Ci + k] * w[(size_t)o * Ci + k];
                        S += fabs((double)x[n * Ci + k] * w[(size_t)o * Ci + k]);
                    }
                    double bound = (Ci / 16.0 + 20) * ldexp(1, -24) * S * 1.1;
                    worst = fmax(worst, fabs(out[n * Co + o] - ref) / bound);
                    worst32 = fmax(worst32, fabs(out[n * Co + o] - ref32) / (S / 16));
                }
            ok(worst <= 1, "%s %dx%dx%d%s: within the fp32 summation bound of the dequantised "
                           "product (%.2f of it)",
               path ? "AVX-512" : "portable", N, Ci, Co, acc ? " +=" : "", worst);
            ok(worst32 <= 1, "... and within 2^-4 sum|x w| of the fp32 weights' (%.3f of it)",
               worst32);
            free(x), free(w), free(wq), free(out), free(codes), free(sc);
        }
    }
    r1_fp8_set_simd(1);

    /* the emulated training GEMM: both operands quantised, against fp32 */
    int N = 64, Ci = 192, Co = 320;
    float *x = malloc(sizeof(float) * N * Ci), *w = malloc(sizeof(float) * Co * Ci);
    float *qx = malloc(sizeof(float) * N * Ci), *qw = malloc(sizeof(float) * Co * Ci);
    fill(&r, x, (size_t)N * Ci, 1);
    fill(&r, w, (size_t)Co * Ci, 0.05f);
    r1_fp8_qdq_tiles(qx, x, N, Ci);
    r1_fp8_qdq_blocks(qw, w, Co, Ci);
    double worst = 0, mean = 0;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < Co; o++) {
            double ref = 0, q = 0, S = 0;
            for (int k = 0; k < Ci; k++) {
                ref += (double)x[n * Ci + k] * w[o * Ci + k];
                q += (double)qx[n * Ci + k] * qw[o * Ci + k];
                S += fabs((double)x[n * Ci + k] * w[o * Ci + k]);
            }
            worst = fmax(worst, fabs(q - ref) / S);
            mean += fabs(q - ref) / S / (N * Co);
        }
    ok(worst <= 2.0 / 16 + 1.0 / 256, "Q(x) Q(W)^T within (2^-4 + 2^-4 + 2^-8) sum|x w| of x W^T "
                                      "(worst %.4f, mean %.5f)",
       worst, mean);
    free(x), free(w), free(qx), free(qw);
}

/* ------------------------------------------------------------------ the model */

static r1_model *tiny(int layers, uint64_t seed)
{
    r1_config c;
    r1_config_preset(&c, "tiny", NULL);
    if (layers > 0)
        c.num_hidden_layers = layers;
    if (layers < 0) /* dense: no routing flips between runs */
        c.n_routed_experts = 0;
    r1_model *m = NULL;
    r1_model_new(&m, &c, NULL);
    r1_model_init(m, seed);
    return m;
}

static void fwd_bwd(r1_model *m, const int32_t *tok, int B, int T, r1_loss *L)
{
    r1_model_zero_grad(m);
    r1_model_forward(m, tok, B, T, NULL, L, NULL);
    r1_model_backward(m, NULL);
}

static void test_switch(void)
{
    r1_model *a = tiny(0, 5), *b = tiny(0, 5);
    const r1_config *c = r1_model_config(a);
    enum { B = 2, T = 40 };
    int32_t tok[B * T];
    for (int i = 0; i < B * T; i++)
        tok[i] = (int32_t)((i * 37 + 11) % c->vocab_size);
    size_t nl = (size_t)B * T * c->vocab_size, np = r1_model_numel(a);
    r1_loss la, lb;
    is_int(r1_model_fp8(a), R1_FP8_OFF, "FP8 emulation is off by default");
    fwd_bwd(a, tok, B, T, &la);
    float *logits = malloc(sizeof(float) * nl), *grads = malloc(sizeof(float) * np);
    memcpy(logits, r1_model_logits(a), sizeof(float) * nl);
    memcpy(grads, r1_model_grads(a), sizeof(float) * np);

    r1_model_set_fp8(b, R1_FP8_TILES);
    is_int(r1_model_fp8(b), R1_FP8_TILES, "r1_model_set_fp8 switches it on");
    fwd_bwd(b, tok, B, T, &lb);
    double dl = fabs(lb.loss - la.loss) / la.loss;
    ok(lb.loss != la.loss && dl < 2e-3, "fine-grained FP8: the loss moves, by %.2e relative", dl);
    { /* the gradients of a dense model (a MoE one also flips routing): E4M3's 2^-4 steps
       * through ~20 chained GEMMs, about 15% relative L2 at this init */
        r1_model *d0 = tiny(-1, 5), *d1 = tiny(-1, 5);
        r1_model_set_fp8(d1, R1_FP8_TILES);
        fwd_bwd(d0, tok, B, T, NULL);
        fwd_bwd(d1, tok, B, T, NULL);
        double dg = 0, gn = 0;
        const float *g0 = r1_model_grads(d0), *g1 = r1_model_grads(d1);
        for (size_t i = 0; i < r1_model_numel(d0); i++) {
            dg += ((double)g1[i] - g0[i]) * ((double)g1[i] - g0[i]);
            gn += (double)g0[i] * g0[i];
        }
        dg = sqrt(dg / gn);
        ok(dg > 0 && dg < 0.25, "... and a dense model's gradient by %.3f (relative L2)", dg);
        r1_model_free(d0);
        r1_model_free(d1);
    }
    float *g_tiles = malloc(sizeof(float) * np);
    memcpy(g_tiles, r1_model_grads(b), sizeof(float) * np);

    /* a backward uses the mode of its forward */
    r1_model_zero_grad(b);
    r1_model_forward(b, tok, B, T, NULL, NULL, NULL);
    r1_model_set_fp8(b, R1_FP8_OFF);
    r1_model_backward(b, NULL);
    ok(memcmp(r1_model_grads(b), g_tiles, sizeof(float) * np) == 0,
       "a backward differentiates its forward's FP8 mode, whatever the switch says since");

    /* off again: bit-identical to a model that never used it */
    fwd_bwd(b, tok, B, T, &lb);
    ok(memcmp(r1_model_logits(b), logits, sizeof(float) * nl) == 0 && lb.loss == la.loss,
       "FP8 off again: logits and loss bit-identical to the plain path");
    ok(memcmp(r1_model_grads(b), grads, sizeof(float) * np) == 0,
       "... and every gradient bit-identical");

    r1_model_set_fp8(b, R1_FP8_TENSOR);
    fwd_bwd(b, tok, B, T, &lb);
    ok(lb.loss != la.loss, "per-tensor FP8 also changes the loss (by %.2e relative)",
       fabs(lb.loss - la.loss) / la.loss);
    r1_model_set_fp8(b, (r1_fp8_mode)7);
    is_int(r1_model_fp8(b), R1_FP8_OFF, "an unknown mode means off");
    is_str(r1_fp8_mode_name(R1_FP8_TILES), "tiles", "mode names");
    free(logits), free(grads), free(g_tiles);
    r1_model_free(a);
    r1_model_free(b);
}

static double rel_l2(const float *a, const float *b, size_t n)
{
    double d = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        s += (double)b[i] * b[i];
    }
    return sqrt(d / s);
}

/* FP8 through BF16 against the emulation, and BF16 mixed precision against fp32, on whole
 * models: dense (no routing flips) for the gradients. */
static void test_precision(void)
{
    enum { B = 2, T = 40 };
    int32_t tok[B * T];
    for (int i = 0; i < B * T; i++)
        tok[i] = (int32_t)((i * 37 + 11) % R1_TOK_VOCAB);
    is_str(r1_precision_name(R1_PREC_BF16), "bf16", "precision names");
    r1_model *f = tiny(-1, 5), *e = tiny(-1, 5), *t = tiny(-1, 5), *h = tiny(-1, 5);
    size_t np = r1_model_numel(f), nl = (size_t)B * T * R1_TOK_VOCAB;
    is_int(r1_model_precision(f), R1_PREC_FP32, "fp32 by default");
    r1_model_set_precision(h, R1_PREC_BF16);
    is_int(r1_model_precision(h), R1_PREC_BF16, "r1_model_set_precision(bf16)");
    r1_model_set_precision(e, R1_PREC_FP8);
    is_int(r1_model_fp8(e), R1_FP8_TILES, "precision fp8 is DeepSeek-V3's fine-grained FP8");
    r1_model_set_fp8_emulation(e, 1);
    r1_model_set_fp8(t, R1_FP8_TILES);
    r1_loss lf, le, lt, lh;
    fwd_bwd(f, tok, B, T, &lf);
    fwd_bwd(e, tok, B, T, &le);
    fwd_bwd(t, tok, B, T, &lt);
    fwd_bwd(h, tok, B, T, &lh);
    /* Through BF16 against the emulation: each GEMM agrees to fp32 summation error
     * (t_gemm16), but a model in FP8 is chaotic at that scale: a last-bit change upstream moves
     * an activation across an E4M3 rounding boundary now and then (a 2^-4 step), and the steps
     * add up.  So the yardstick is the emulation against itself with a third of its weights
     * moved by one ulp: through BF16 must stay within twice that.  One such draw is a noisy
     * scale, so there are four: every third weight moved, starting at weight 0, 1 and 2, and
     * the emulation on the next lower kernel path (its products on sgemm instead of
     * r1__gemm32 on AVX-512 machines: only the order of fp32 sums changes).  The losses of the
     * emulation and its four draws scatter as one cloud (on a Zen 5: 6.35720-6.35796 with the
     * emulation at 6.35786, and through BF16 at 6.35721), and through BF16 against the
     * emulation is a distance between two members of such a cloud, so the loss's yardstick is
     * the cloud's widest distance; the gradients' is the draws' largest from the emulation. */
    double fl = 0, fg = 0, draws[5] = {le.loss};
    r1_error err;
    r1_isa best = r1_isa_best();
    for (int off = 0; off < 4; off++) {
        r1_model *ep = tiny(-1, 5);
        float *pp = r1_model_params(ep);
        if (off < 3)
            for (size_t i = (size_t)off; i < np; i += 3)
                pp[i] = nextafterf(pp[i], 2 * pp[i] + 1);
        else if (best > R1_ISA_PORTABLE)
            r1_isa_set(best - 1, &err);
        r1_model_set_fp8(ep, R1_FP8_TILES);
        r1_model_set_fp8_emulation(ep, 1);
        r1_loss lp;
        fwd_bwd(ep, tok, B, T, &lp);
        r1_isa_set(best, &err);
        draws[off + 1] = lp.loss;
        double g = rel_l2(r1_model_grads(ep), r1_model_grads(e), np);
        fg = g > fg ? g : fg;
        r1_model_free(ep);
    }
    for (int i = 0; i < 5; i++)
        for (int k = 0; k < i; k++) {
            double l = fabs(draws[i] - draws[k]) / le.loss;
            fl = l > fl ? l : fl;
        }
    double dl = fabs(lt.loss - le.loss) / le.loss;
    double dg = rel_l2(r1_model_grads(t), r1_model_grads(e), np);
    ok(dl <= 2 * fl + 1e-7, "FP8 through BF16: loss within %.2e of the emulation's (relative; "
       "one-ulp weights and another path scatter the emulation over %.2e)", dl, fl);
    ok(fg > 0 && dg <= 2 * fg, "... gradients within %.3f (relative L2; the same draws: up to "
       "%.3f; FP8 against fp32: %.3f)", dg, fg, rel_l2(r1_model_grads(e), r1_model_grads(f), np));
    /* BF16 against fp32: bf16 operands carry 2^-9 relative rounding */
    dl = fabs(lh.loss - lf.loss) / lf.loss;
    dg = rel_l2(r1_model_grads(h), r1_model_grads(f), np);
    double dlog = rel_l2(r1_model_logits(h), r1_model_logits(f), nl);
    ok(lh.loss != lf.loss && dl < 2e-3, "BF16: the loss moves, by %.2e relative", dl);
    ok(dlog < 1e-2, "... logits within %.2e of fp32's (relative L2)", dlog);
    ok(dg > 0 && dg < 0.05, "... gradients within %.3f (relative L2)", dg);
    float *gh = malloc(sizeof(float) * np);
    memcpy(gh, r1_model_grads(h), sizeof(float) * np);
    r1_model_zero_grad(h);
    r1_model_forward(h, tok, B, T, NULL, NULL, NULL);
    r1_model_set_precision(h, R1_PREC_FP32);
    r1_model_backward(h, NULL);
    ok(!memcmp(r1_model_grads(h), gh, sizeof(float) * np),
       "a backward differentiates its forward's precision, whatever the switch says since");
    fwd_bwd(h, tok, B, T, &lh);
    ok(lh.loss == lf.loss && !memcmp(r1_model_grads(h), r1_model_grads(f), sizeof(float) * np),
       "fp32 again: loss and gradients bit-identical to a model that never used bf16");
    free(gh);
    r1_model_free(f), r1_model_free(e), r1_model_free(t), r1_model_free(h);
}

const uint16_t *r1__wt16(r1_model *m); /* libr1's bf16 copy of the weights (model_internal.h) */

/* AdamW's AVX-512 norm and update (clipping inside it), with the bf16 copy kept fresh,
 * against the portable loops (the kernel path at the step alone differs; the forward and
 * backward run on the best path for both): the same norm, weights, clipped gradients and bf16
 * copy, bit for bit, and the copy is the weights' bf16.  (Writing the copy in the update's
 * pass too measured slower, in two stops: engine/optim.c.) */
static void test_adamw_paths(void)
{
    enum { B = 2, T = 24 };
    int32_t tok[B * T];
    for (int i = 0; i < B * T; i++)
        tok[i] = (int32_t)((i * 31 + 3) % R1_TOK_VOCAB);
    r1_isa best = r1_isa_best();
    if (best < R1_ISA_AVX512BF16) {
        skip("AdamW's AVX-512 pass: not on this CPU");
        return;
    }
    r1_model *m[2] = {tiny(2, 13), tiny(2, 13)};
    size_t np = r1_model_numel(m[0]);
    const float *w[2] = {r1_model_params(m[0]), r1_model_params(m[1])}; /* held: see below */
    r1_adamw_cfg oc = r1_adamw_defaults();
    oc.lr = 1e-2f, oc.warmup = 0, oc.clip = 0.05f; /* every step clips */
    r1_adamw *o[2];
    r1_error err;
    double gn = 0;
    for (int i = 0; i < 2; i++) {
        r1_model_set_precision(m[i], R1_PREC_BF16);
        r1_adamw_new(&o[i], m[i], &oc, NULL);
    }
    int same = 1;
    double gn0 = 0;
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < 2; i++) {
            r1_loss L;
            r1_isa_set(best, &err);
            fwd_bwd(m[i], tok, B, T, &L);
            r1_isa_set(i ? best : R1_ISA_PORTABLE, &err);
            r1_adamw_step(o[i], m[i], i ? &gn : &gn0);
            r1_isa_set(best, &err);
            if (i) /* the norm (its 8 lanes in one register on AVX-512) too */
                same &= !memcmp(w[0], w[1], sizeof(float) * np) &&
                        !memcmp(r1_model_grads(m[0]), r1_model_grads(m[1]), sizeof(float) * np) &&
                        !memcmp(&gn0, &gn, sizeof gn);
        }
    /* the copies AdamW kept (r1_model_params was not called since: it would mark them stale) */
    const uint16_t *h0 = r1__wt16(m[0]), *h1 = r1__wt16(m[1]);
    uint16_t *fresh = malloc(sizeof(uint16_t) * np);
    r1_bf16_from_f32(fresh, w[1], np);
    ok(same && gn > oc.clip, "AdamW on avx512bf16 and portable: the same gradient norm, weights "
       "and clipped gradients, bit for bit, over 3 clipped steps (norm %.3g > %.3g)", gn, oc.clip);
    ok(!memcmp(h0, h1, sizeof(uint16_t) * np) && !memcmp(h1, fresh, sizeof(uint16_t) * np),
       "... and the same bf16 copy, the weights' own");
    free(fresh);
    for (int i = 0; i < 2; i++)
        r1_adamw_free(o[i]), r1_model_free(m[i]);
}

/* BF16's copy of the weights: converted once, kept fresh by AdamW as it updates them (so not
 * converted per forward), converted again after a write through r1_model_params; a BF16
 * decoder reads the same copy, as the weights are at each step. */
static void test_bf16_copy(void)
{
    enum { B = 2, T = 24 };
    int32_t tok[B * T];
    for (int i = 0; i < B * T; i++)
        tok[i] = (int32_t)((i * 29 + 7) % R1_TOK_VOCAB);
    r1_model *h = tiny(2, 9), *g = tiny(2, 9);
    size_t np = r1_model_numel(h);
    r1_model_set_precision(h, R1_PREC_BF16);
    r1_model_set_precision(g, R1_PREC_BF16);
    r1_adamw_cfg oc = r1_adamw_defaults();
    oc.lr = 1e-2f, oc.warmup = 0;
    r1_adamw *o;
    r1_adamw_new(&o, h, &oc, NULL);
    r1_loss L, Lg;
    int same = 1;
    const float *hp = r1_model_params(h); /* to read them: writers call it for each round */
    for (int s = 0; s < 3; s++) {
        fwd_bwd(h, tok, B, T, &L);
        r1_adamw_step(o, h, NULL);
        /* g: the same weights, its copy converted from them afresh */
        memcpy(r1_model_params(g), hp, sizeof(float) * np);
        r1_model_forward(g, tok, B, T, NULL, &Lg, NULL);
        r1_model_forward(h, tok, B, T, NULL, &L, NULL);
        same &= L.loss == Lg.loss;
    }
    ok(same, "after each AdamW step the bf16 forward gives the bits of a copy converted afresh "
       "(loss %.9g)", L.loss);
    /* h's copy is now the one AdamW kept: a write behind r1_model_params' back (through a
     * pointer taken before the last conversion) is not seen, which shows no forward converts
     * again; a write after calling it is */
    float *held = r1_model_params(h);
    r1_model_forward(h, tok, B, T, NULL, &L, NULL); /* converts: held is now "before" */
    size_t at = r1_model_param_find(h, "model.layers.1.self_attn.o_proj.weight")->offset + 3;
    float was = held[at];
    held[at] = was + 1.0f;
    r1_loss L2;
    r1_model_forward(h, tok, B, T, NULL, &L2, NULL);
    ok(L2.loss == L.loss, "the copy is not converted per forward (a write behind the accessor's "
       "back is not seen)");
    r1_model_params(h)[at] = was + 1.0f;
    r1_model_forward(h, tok, B, T, NULL, &L2, NULL);
    memcpy(r1_model_params(g), hp, sizeof(float) * np);
    r1_model_forward(g, tok, B, T, NULL, &Lg, NULL);
    ok(L2.loss != L.loss && L2.loss == Lg.loss,
       "after r1_model_params the next forward converts again (%.6f -> %.6f)", L.loss, L2.loss);
    /* the decoder: the same copy, as the weights are at each step */
    r1_decoder *d;
    r1_error err = {0};
    size_t nl = (size_t)T * R1_TOK_VOCAB;
    float *l1 = malloc(sizeof(float) * nl), *l2 = malloc(sizeof(float) * nl);
    float *l3 = malloc(sizeof(float) * nl);
    r1_decoder_new(&d, h, 2, T, NULL);
    r1_status st = r1_decoder_set_bf16(d, 1, &err);
    size_t wb = r1_decoder_weight_bytes(d, NULL);
    ok(st == R1_OK && wb == 2 * np, "a BF16 decoder on the model's copy (%zu bytes)", wb);
    int row = 0, row1 = 1;
    r1_decoder_step(d, &row, 1, tok, T, l1, NULL);
    r1_model_params(h)[at] = was - 1.0f;
    r1_decoder_step(d, &row1, 1, tok, T, l2, NULL);
    r1_decoder *d2;
    r1_decoder_new(&d2, h, 1, T, NULL);
    r1_decoder_set_bf16(d2, 1, NULL);
    r1_decoder_step(d2, &row, 1, tok, T, l3, NULL);
    ok(memcmp(l1, l2, sizeof(float) * nl) && !memcmp(l2, l3, sizeof(float) * nl),
       "... whose next step reads the weights as they are then, as a new decoder does");
    size_t wb2 = r1_decoder_weight_bytes(d, NULL);
    ok(wb2 > 2 * np * 2 - np / 2 && wb2 < 2 * np * 3,
       "... and once it has stepped, its weight memory counts the packed panels too (%zu bytes)",
       wb2);
    free(l3);
    r1_decoder_free(d), r1_decoder_free(d2);
    free(l1), free(l2);
    r1_adamw_free(o);
    r1_model_free(h), r1_model_free(g);
}

/* t_train's task: arithmetic sequences mod 16 */
static double train(int mode, int bf16_moments, int steps, int *moments_bf16)
{
    r1_model *m = tiny(2, 7);
    if (mode == -1)
        r1_model_set_precision(m, R1_PREC_BF16);
    else
        r1_model_set_fp8(m, (r1_fp8_mode)mode);
    r1_adamw_cfg oc = r1_adamw_defaults();
    oc.lr = 3e-3f, oc.warmup = 10, oc.total = steps;
    oc.bf16_moments = bf16_moments;
    r1_adamw *o;
    r1_adamw_new(&o, m, &oc, NULL);
    r1_rng r;
    r1_rng_seed(&r, 8);
    enum { B = 8, T = 16 };
    int32_t tok[B * T];
    double last = 0;
    for (int s = 0; s < steps; s++) {
        for (int b = 0; b < B; b++) {
            int x = (int)r1_rng_below(&r, 16), d = 1 + (int)r1_rng_below(&r, 3);
            for (int t = 0; t < T; t++)
                tok[b * T + t] = 3 + (x + d * t) % 16;
        }
        r1_loss L;
        fwd_bwd(m, tok, B, T, &L);
        r1_adamw_step(o, m, NULL);
        r1_model_balance_update(m, 1e-3f);
        if (s >= steps - 10)
            last += L.main / 10;
    }
    if (moments_bf16) { /* every moment a bf16 value */
        *moments_bf16 = 1;
        for (size_t i = 0; i < r1_model_numel(m); i++) {
            float a = r1_adamw_m(o)[i], b = r1_adamw_v(o)[i];
            *moments_bf16 &= a == r1_bf16_to_f32(r1_f32_to_bf16(a)) &&
                             b == r1_bf16_to_f32(r1_f32_to_bf16(b));
        }
    }
    r1_adamw_free(o);
    r1_model_free(m);
    return last;
}

static void test_learns(void)
{
    double l8 = train(R1_FP8_TILES, 0, 150, NULL);
    ok(l8 < 0.5, "with fine-grained FP8 the tiny model still learns the sequences (loss %.3f)",
       l8);
    int b16 = 0, f32m = 0;
    double lb = train(R1_FP8_TILES, 1, 150, &b16);
    ok(lb < 0.5 && lb != l8, "... and with AdamW's moments in bf16 too (loss %.4f against %.4f)",
       lb, l8);
    ok(b16, "... which are bf16 values after every step");
    double l16 = train(-1, 0, 150, NULL);
    ok(l16 < 0.5, "in BF16 mixed precision it learns them too (loss %.3f)", l16);
    train(R1_FP8_OFF, 0, 3, &f32m);
    ok(!f32m, "fp32 moments are not (the option is off by default)");
}

/* ------------------------------------------------------------------ checkpoints */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void test_checkpoint(void)
{
    r1_error err = {0};
    r1_model *m = tiny(2, 9);
    const char *dir = tu_at("fp8ckpt");
    if (!ok(r1_model_save(m, dir, R1_DT_F8_E4M3, &err) == R1_OK, "save as F8_E4M3"))
        diag("%s", err.msg);
    char cfgp[600];
    snprintf(cfgp, sizeof cfgp, "%s/config.json", dir);
    FILE *f = fopen(cfgp, "r");
    char text[8192] = {0};
    if (f) {
        size_t n = fread(text, 1, sizeof text - 1, f);
        text[n] = 0;
        fclose(f);
    }
    like(text, "\"quantization_config\"", "config.json has quantization_config");
    like(text, "\"quant_method\": \"fp8\"", "... quant_method fp8");
    like(text, "\"fmt\": \"e4m3\"", "... fmt e4m3");

    r1_st *st = NULL;
    r1_st_open(&st, dir, NULL);
    r1_dtype dt;
    int nd;
    int64_t sh[R1_ST_MAXDIM];
    r1_st_info(st, "model.layers.1.self_attn.q_b_proj.weight", &dt, &nd, sh, NULL);
    ok(dt == R1_DT_F8_E4M3 && nd == 2 && sh[0] == 288 && sh[1] == 96, "q_b_proj is F8_E4M3");
    r1_st_info(st, "model.layers.1.self_attn.q_b_proj.weight_scale_inv", &dt, &nd, sh, NULL);
    ok(dt == R1_DT_F32 && nd == 2 && sh[0] == 3 && sh[1] == 1,
       "... with weight_scale_inv F32 [3, 1]: one per 128x128 block");
    r1_st_info(st, "model.layers.1.mlp.experts.3.down_proj.weight", &dt, NULL, NULL, NULL);
    ok(dt == R1_DT_F8_E4M3, "expert weights are F8_E4M3");
    r1_st_info(st, "model.layers.1.mlp.gate.weight", &dt, NULL, NULL, NULL);
    ok(dt == R1_DT_BF16, "the router stays BF16, as in DeepSeek-V3's files");
    r1_st_info(st, "model.embed_tokens.weight", &dt, NULL, NULL, NULL);
    ok(dt == R1_DT_BF16, "the embedding BF16");
    r1_st_info(st, "model.layers.2.eh_proj.weight", &dt, NULL, NULL, NULL);
    ok(dt == R1_DT_BF16, "MTP's eh_proj BF16");
    r1_st_info(st, "model.layers.1.mlp.gate.e_score_correction_bias", &dt, NULL, NULL, NULL);
    ok(dt == R1_DT_F32, "the router bias F32");
    ok(r1_st_find(st, "model.norm.weight_scale_inv") < 0, "norms carry no scales");
    r1_st_close(st);

    r1_model *b = NULL;
    if (!ok(r1_model_load(&b, dir, &err) == R1_OK, "the FP8 checkpoint loads"))
        diag("%s", err.msg);
    else {
        int fp8ok = 1, bfok = 1, nfp8 = 0;
        for (int i = 0; i < r1_model_nparams(m); i++) {
            const r1_param *p = r1_model_param(m, i);
            const float *x = r1_model_params(m) + p->offset, *y = r1_model_params(b) + p->offset;
            if (r1_fp8_is_stored(p->name)) {
                nfp8++;
                float *q = malloc(sizeof(float) * p->numel);
                r1_fp8_qdq_blocks(q, x, (int)p->shape[0], (int)p->shape[1]);
                fp8ok &= memcmp(q, y, sizeof(float) * p->numel) == 0;
                free(q);
            } else {
                for (size_t k = 0; k < p->numel; k++)
                    bfok &= fabsf(y[k] - x[k]) <= fabsf(x[k]) / 256;
            }
        }
        ok(fp8ok, "the %d FP8 weights read back as their 128x128-block E4M3 values exactly",
           nfp8);
        ok(bfok, "the other tensors within bf16 precision");
        /* FP8 -> fp32 -> FP8 keeps every code */
        const char *dir2 = tu_at("fp8again");
        r1_model_save(b, dir2, R1_DT_F8_E4M3, NULL);
        r1_st *s1 = NULL, *s2 = NULL;
        r1_st_open(&s1, dir, NULL);
        r1_st_open(&s2, dir2, NULL);
        int same = s1 && s2;
        for (int i = 0; same && i < r1_model_nparams(m); i++) {
            const r1_param *p = r1_model_param(m, i);
            if (!r1_fp8_is_stored(p->name))
                continue;
            uint8_t *c1 = malloc(p->numel), *c2 = malloc(p->numel);
            same = r1_st_read_raw(s1, p->name, c1, p->numel, NULL) == R1_OK &&
                   r1_st_read_raw(s2, p->name, c2, p->numel, NULL) == R1_OK &&
                   memcmp(c1, c2, p->numel) == 0;
            free(c1), free(c2);
        }
        ok(same, "saving the loaded FP8 checkpoint as FP8 again gives the same codes");
        r1_st_close(s1);
        r1_st_close(s2);
        r1_model_free(b);
    }

    /* a hand-made file in DeepSeek-V3's layout: codes and scales chosen here, the value of each
     * weight computed from the format's definition */
    const char *hd = tu_at("handmade");
    r1_model_save(m, hd, R1_DT_F32, NULL);
    char p2[600];
    snprintf(p2, sizeof p2, "%s/config.json", hd);
    r1_config_save_fp8(r1_model_config(m), p2, NULL);
    r1_st_writer *w = r1_st_writer_new();
    const char *target = "model.layers.0.mlp.gate_proj.weight"; /* [512, 192]: 4 x 2 blocks */
    uint8_t *codes = malloc(512 * 192);
    float scales[8] = {0.5f, 0.25f, 2.0f, 1e-3f, 3.0f, 0.125f, 7.0f, 0.01f};
    for (int i = 0; i < 512 * 192; i++)
        codes[i] = (uint8_t)((i * 7 + i / 192) % 256);
    for (int i = 0; i < 512 * 192; i++)
        if ((codes[i] & 0x7f) == 0x7f)
            codes[i] = 0x3f; /* no NaN codes */
    for (int i = 0; i < r1_model_nparams(m); i++) {
        const r1_param *p = r1_model_param(m, i);
        if (!strcmp(p->name, target)) {
            r1_st_writer_add(w, p->name, R1_DT_F8_E4M3, R1_DT_F8_E4M3, codes, 2, p->shape, NULL);
            int64_t s2[2] = {4, 2};
            r1_st_writer_add(w, "model.layers.0.mlp.gate_proj.weight_scale_inv", R1_DT_F32,
                             R1_DT_F32, scales, 2, s2, NULL);
        } else {
            r1_st_writer_add(w, p->name, R1_DT_F32, R1_DT_F32, r1_model_params(m) + p->offset,
                             p->ndim, p->shape, NULL);
        }
    }
    float *bias = r1_model_router_bias(m, 1);
    int64_t e16[1] = {16};
    r1_st_writer_add(w, "model.layers.1.mlp.gate.e_score_correction_bias", R1_DT_F32, R1_DT_F32,
                     bias, 1, e16, NULL);
    r1_st_writer_add(w, "model.layers.2.mlp.gate.e_score_correction_bias", R1_DT_F32, R1_DT_F32,
                     r1_model_router_bias(m, 2), 1, e16, NULL);
    snprintf(p2, sizeof p2, "%s/model.safetensors", hd);
    r1_st_writer_write(w, p2, NULL);
    r1_st_writer_free(w);
    if (!ok(r1_model_load(&b, hd, &err) == R1_OK, "a hand-made DeepSeek-style FP8 file loads"))
        diag("%s", err.msg);
    else {
        const float *y = r1_model_params(b) + r1_model_param_find(b, target)->offset;
        int same = 1;
        for (int i = 0; i < 512 * 192; i++) {
            int r = i / 192, c = i % 192;
            double want = ref_value(codes[i], 3, 7, 0) * scales[(r / 128) * 2 + c / 128];
            same &= y[i] == (float)want; /* the exact product, rounded once to fp32 */
        }
        ok(same, "every weight is decode(code) x the scale of its 128x128 block");
        r1_model_free(b);
    }

    /* bad scales: missing, wrong block count, beside a tensor that is not FP8 */
    struct {
        const char *scale_name;
        int64_t s0, s1;
        r1_dtype wdt;
        const char *needle, *what;
    } bad[] = {
        {NULL, 0, 0, R1_DT_F8_E4M3, "gate_proj.weight_scale_inv", "a missing scale tensor"},
        {"model.layers.0.mlp.gate_proj.weight_scale_inv", 2, 2, R1_DT_F8_E4M3, "expected shape "
                                                                               "[4, 2]",
         "a scale with the wrong block count"},
        {"model.layers.0.mlp.up_proj.weight_scale_inv", 4, 2, R1_DT_F32, "not FP8",
         "a scale beside an F32 tensor"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        w = r1_st_writer_new();
        for (int i = 0; i < r1_model_nparams(m); i++) {
            const r1_param *p = r1_model_param(m, i);
            if (!strcmp(p->name, target) && bad[k].wdt == R1_DT_F8_E4M3)
                r1_st_writer_add(w, p->name, R1_DT_F8_E4M3, R1_DT_F8_E4M3, codes, 2, p->shape,
                                 NULL);
            else
                r1_st_writer_add(w, p->name, R1_DT_F32, R1_DT_F32,
                                 r1_model_params(m) + p->offset, p->ndim, p->shape, NULL);
        }
        r1_st_writer_add(w, "model.layers.1.mlp.gate.e_score_correction_bias", R1_DT_F32,
                         R1_DT_F32, bias, 1, e16, NULL);
        r1_st_writer_add(w, "model.layers.2.mlp.gate.e_score_correction_bias", R1_DT_F32,
                         R1_DT_F32, r1_model_router_bias(m, 2), 1, e16, NULL);
        if (bad[k].scale_name) {
            int64_t s2[2] = {bad[k].s0, bad[k].s1};
            r1_st_writer_add(w, bad[k].scale_name, R1_DT_F32, R1_DT_F32, scales, 2, s2, NULL);
        }
        r1_st_writer_write(w, p2, NULL);
        r1_st_writer_free(w);
        b = NULL;
        memset(&err, 0, sizeof err);
        ok(r1_model_load(&b, hd, &err) == R1_EFORMAT && !b, "%s is refused", bad[k].what);
        like(err.msg, bad[k].needle, "... saying so");
        like(err.msg, bad[k].wdt == R1_DT_F32 ? "up_proj.weight" : "gate_proj.weight",
             "... naming the tensor");
        r1_model_free(b);
    }
    free(codes);

    /* a quantization_config r1lab does not read */
    write_file(tu_at("q.json"), "{\"model_type\": \"deepseek_v3\", \"quantization_config\": "
                             "{\"quant_method\": \"gptq\"}}");
    r1_config cc;
    ok(r1_config_load(&cc, tu_at("q.json"), &err) == R1_EUNSUPPORTED, "GPTQ is refused");
    like(err.msg, "quantization_config", "... naming the key");
    r1_model_free(m);
}

/* ------------------------------------------------------------------ generation */

static void test_decode(void)
{
    r1_model *m = tiny(0, 11);
    int32_t tok[24];
    for (int t = 0; t < 24; t++)
        tok[t] = (t * 37 + 5) % 128;
    r1_model_forward(m, tok, 1, 24, NULL, NULL, NULL);
    float *full = malloc(sizeof(float) * 24 * 128), *got = malloc(sizeof(float) * 24 * 128);
    memcpy(full, r1_model_logits(m), sizeof(float) * 24 * 128);
    r1_decoder *d;
    r1_decoder_new(&d, m, 1, 24, NULL);
    r1_error err = {0};
    ok(r1_decoder_set_fp8(d, 1, &err) == R1_OK, "fp8 weights for decoding");
    size_t f32 = 0, b8 = r1_decoder_weight_bytes(d, &f32);
    ok(b8 > 0 && b8 * 3.9 < f32 && b8 * 4 > f32,
       "they take %zu bytes against %zu in fp32 (codes plus one scale per 128x128 block)", b8,
       f32);
    int row = 0;
    r1_decoder_step(d, &row, 1, tok, 24, got, NULL);
    double e = 0, mx = 0;
    for (int i = 0; i < 24 * 128; i++) {
        e = fmax(e, fabs(got[i] - full[i]));
        mx = fmax(mx, fabs(full[i]));
    }
    e /= mx;
    /* E4M3's steps are 16x bf16's; t_decode bounds bf16 by 2e-2 */
    ok(e > 0 && e < 0.25, "fp8 decode logits deviate from fp32 by %.2e of the largest", e);
    r1_decoder_free(d);

    r1_gen_cfg gc = r1_gen_defaults();
    gc.max_tokens = 8;
    gc.fp8 = 1;
    const int32_t *pp = tok;
    int len = 4;
    r1_gen_result *res = NULL;
    ok(r1_generate(m, &pp, &len, 1, &gc, NULL, &res, &err) == R1_OK && res->row[0].n == 8,
       "r1_generate with fp8 weights");
    ok(res && res->weight_bytes == b8 && res->weight_bytes_fp32 == f32,
       "... reports their memory");
    r1_gen_result_free(res);
    gc.bf16 = 1;
    res = NULL;
    ok(r1_generate(m, &pp, &len, 1, &gc, NULL, &res, &err) == R1_EINVAL,
       "bf16 and fp8 together are refused");
    r1_gen_result_free(res);

    r1_model_params(m)[r1_model_param_find(m, "model.layers.0.self_attn.o_proj.weight")->offset +
                       5] = NAN;
    r1_decoder_new(&d, m, 1, 24, NULL);
    ok(r1_decoder_set_fp8(d, 1, &err) == R1_EINVAL, "a NaN weight is refused");
    like(err.msg, "o_proj", "... naming the tensor");
    r1_decoder_free(d);
    free(full), free(got);
    r1_model_free(m);
}

int main(void)
{
    r1_set_threads(1);
    tu_tmpdir("t_fp8");
    test_codes();
    test_edges();
    test_fast_qdq();
    test_scaling();
    test_gemm();
    test_switch();
    test_precision();
    test_bf16_copy();
    test_adamw_paths();
    test_qdq_paths();
    test_learns();
    test_checkpoint();
    test_decode();
    tu_rm(tu_dir);
    return done_testing();
}
