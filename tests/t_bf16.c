/* t_bf16.c — r1_matmul_bf16 and the bulk bf16 conversions (r1_bf16.h).
 *
 * The matmul is checked on both code paths (AVX-512 BF16 when this CPU has it, and the forced
 * portable path) against two double-precision references: sum bf16(x)·w, which it must match
 * to fp32 summation error, and sum x·w with fp32 activations, which it must match to the
 * documented 2^-8 activation rounding.  Bounds are relative to S = sum |x|·|w| (+ |out| before
 * an accumulating call).  Shapes cover every tail: N not a multiple of 4, Ci not a multiple of
 * 16 or 32 or larger than one 1024-column chunk, Co not a multiple of 4, 8 or 16.  All
 * pointers are deliberately misaligned, guard elements around out must stay untouched, and
 * arrays that end against an inaccessible page catch any read or write past their end.
 * Also: batch invariance, degenerate sizes, NaN confinement, and the conversions on edge
 * cases, random bit patterns, every bf16 value and every tail length. */
#include <config.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "r1.h"
#include "r1_bf16.h"
#include "r1_rng.h"
#include "r1_safetensors.h"
#include "tap.h"

#define GUARD 8
#define CANARY (-12345.0f)

static r1_rng rng;

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Uniform in ±[0, 1) times 2^e, e in [-3, 3]: signs and magnitudes that make cancellation. */
static float rnd(void)
{
    int e = (int)r1_rng_below(&rng, 7) - 3;
    return (float)ldexp(2 * r1_rng_uniform(&rng) - 1, e);
}

/* (Ci/16 + 40) · 2^-24, the fp32 summation bound of r1_bf16.h. */
static double sum_bound(int Ci)
{
    return (Ci / 16.0 + 40) * ldexp(1, -24);
}

typedef struct {
    double err_bf, err_32; /* worst error / S against each reference */
    int guards_ok, finite;
} result;

/* One call on one shape; buffers are misaligned by one element from malloc's alignment. */
static void run_shape(int N, int Ci, int Co, int acc, result *res)
{
    size_t nx = (size_t)N * Ci, nw = (size_t)Co * Ci, no = (size_t)N * Co;
    float *xbuf = malloc(sizeof(float) * (nx + 1)), *x = xbuf + 1;
    uint16_t *wbuf = malloc(sizeof(uint16_t) * (nw + 1)), *w = wbuf + 1;
    float *obuf = malloc(sizeof(float) * (no + 2 * GUARD + 1)), *out = obuf + GUARD + 1;
    float *out0 = malloc(sizeof(float) * (no + 1));
    for (size_t i = 0; i < nx; i++)
        x[i] = rnd();
    for (size_t i = 0; i < nw; i++)
        w[i] = r1_f32_to_bf16(rnd());
    for (size_t i = 0; i < no + 2 * GUARD + 1; i++)
        obuf[i] = CANARY;
    for (size_t i = 0; i < no; i++)
        out[i] = out0[i] = acc ? rnd() : CANARY; /* without acc, the old values must not count */

    r1_matmul_bf16(out, x, w, N, Ci, Co, acc);

    for (int n = 0; n < N; n++)
        for (int o = 0; o < Co; o++) {
            double ref_bf = 0, ref_32 = 0, s_bf = 0, s_32 = 0;
            for (int k = 0; k < Ci; k++) {
                double xv = x[(size_t)n * Ci + k], wv = r1_bf16_to_f32(w[(size_t)o * Ci + k]);
                double xb = r1_bf16_to_f32(r1_f32_to_bf16((float)xv));
                ref_bf += xb * wv, s_bf += fabs(xb * wv);
                ref_32 += xv * wv, s_32 += fabs(xv * wv);
            }
            if (acc) {
                double o0 = out0[(size_t)n * Co + o];
                ref_bf += o0, ref_32 += o0, s_bf += fabs(o0), s_32 += fabs(o0);
            }
            double got = out[(size_t)n * Co + o];
            if (!isfinite(got))
                res->finite = 0;
            double e_bf = s_bf > 0 ? fabs(got - ref_bf) / s_bf : fabs(got);
            double e_32 = s_32 > 0 ? fabs(got - ref_32) / s_32 : fabs(got);
            res->err_bf = e_bf > res->err_bf ? e_bf : res->err_bf;
            res->err_32 = e_32 > res->err_32 ? e_32 : res->err_32;
        }
    for (int g = 0; g < GUARD; g++)
        if (obuf[1 + g] != CANARY || out[no + g] != CANARY)
            res->guards_ok = 0;
    free(xbuf), free(wbuf), free(obuf), free(out0);
}

static void check_shapes(const char *path, const int *Ns, int nN, const int *Cis, int nCi,
                         const int *Cos, int nCo)
{
    for (int a = 0; a < nN; a++)
        for (int b = 0; b < nCi; b++) {
            int N = Ns[a], Ci = Cis[b];
            result r = {0, 0, 1, 1};
            for (int c = 0; c < nCo; c++)
                for (int acc = 0; acc <= 1; acc++)
                    run_shape(N, Ci, Cos[c], acc, &r);
            double bb = sum_bound(Ci), b32 = ldexp(1, -8) + bb;
            ok(r.finite && r.guards_ok && r.err_bf <= bb,
               "%s N=%d Ci=%d (Co %d..%d, = and +=): within %.2e of sum bf16(x)·w (worst %.2e), "
               "nothing written outside out",
               path, N, Ci, Cos[0], Cos[nCo - 1], bb, r.err_bf);
            if (!r.guards_ok)
                diag("  a guard element around out was overwritten");
            ok(r.finite && r.err_32 <= b32,
               "%s N=%d Ci=%d: within %.2e of sum x·w with fp32 x (worst %.2e)", path, N, Ci, b32,
               r.err_32);
        }
}

/* `bytes` of memory that end where an inaccessible page begins, so that touching anything
 * past the end faults (the test then dies and fails).  munmap(*base, *len) releases it. */
static void *fenced(size_t bytes, void **base, size_t *len)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE), body = (bytes + pg - 1) / pg * pg;
    char *p = mmap(NULL, body + pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    if (mprotect(p + body, pg, PROT_NONE) != 0) {
        munmap(p, body + pg);
        return NULL;
    }
    *base = p, *len = body + pg;
    return p + body - bytes;
}

/* in, w and out each end against a fence: tails must be masked, not over-read. */
static void check_fenced(const char *path)
{
    static const int shapes[][3] = {{3, 17, 5},    {1, 15, 130}, {2, 33, 9},
                                    {7, 1100, 37}, {16, 64, 3},  {33, 1, 1}};
    int done = 0, total = (int)(sizeof shapes / sizeof *shapes);
    for (int s = 0; s < total; s++) {
        int N = shapes[s][0], Ci = shapes[s][1], Co = shapes[s][2];
        size_t nc = (size_t)(s + 1) * 7; /* conversion lengths 7..42 */
        void *base[5] = {0};
        size_t len[5] = {0};
        float *x = fenced(sizeof(float) * N * Ci, &base[0], &len[0]);
        uint16_t *w = fenced(sizeof(uint16_t) * Co * Ci, &base[1], &len[1]);
        float *out = fenced(sizeof(float) * N * Co, &base[2], &len[2]);
        float *f = fenced(sizeof(float) * nc, &base[3], &len[3]);
        uint16_t *h = fenced(sizeof(uint16_t) * nc, &base[4], &len[4]);
        if (x && w && out && f && h) {
            for (int i = 0; i < N * Ci; i++)
                x[i] = rnd();
            for (int i = 0; i < Co * Ci; i++)
                w[i] = r1_f32_to_bf16(rnd());
            r1_matmul_bf16(out, x, w, N, Ci, Co, 0);
            r1_matmul_bf16(out, x, w, N, Ci, Co, 1);
            for (size_t i = 0; i < nc; i++)
                f[i] = rnd();
            r1_bf16_from_f32(h, f, nc);
            r1_bf16_to_f32_n(f, h, nc);
            done++;
        }
        for (int i = 0; i < 5; i++)
            if (base[i])
                munmap(base[i], len[i]);
    }
    ok(done == total,
       "%s: %d shapes with in, w, out and conversion buffers ending at an "
       "inaccessible page run without touching it",
       path, total);
}

/* Each output row depends on its own input row only: the batch gives bit-identical rows. */
static void check_batch_invariance(const char *path, int N, int Ci, int Co)
{
    float *x = malloc(sizeof(float) * N * Ci), *all = malloc(sizeof(float) * N * Co);
    float *one = malloc(sizeof(float) * Co);
    uint16_t *w = malloc(sizeof(uint16_t) * Co * Ci);
    for (int i = 0; i < N * Ci; i++)
        x[i] = rnd();
    for (int i = 0; i < Co * Ci; i++)
        w[i] = r1_f32_to_bf16(rnd());
    r1_matmul_bf16(all, x, w, N, Ci, Co, 0);
    int same = 1;
    for (int n = 0; n < N; n++) {
        r1_matmul_bf16(one, x + (size_t)n * Ci, w, 1, Ci, Co, 0);
        same &= memcmp(one, all + (size_t)n * Co, sizeof(float) * Co) == 0;
    }
    ok(same, "%s: each row of an N=%d batch (Ci=%d, Co=%d) is bit-identical to that row alone",
       path, N, Ci, Co);
    free(x), free(all), free(one), free(w);
}

static void check_degenerate(const char *path)
{
    float x[4] = {1, 2, 3, 4}, out[6];
    uint16_t w[8];
    for (int i = 0; i < 8; i++)
        w[i] = r1_f32_to_bf16(1.0f);
    for (int i = 0; i < 6; i++)
        out[i] = 7;
    r1_matmul_bf16(out, x, w, 2, 0, 3, 0);
    int zeros = 1;
    for (int i = 0; i < 6; i++)
        zeros &= out[i] == 0;
    ok(zeros, "%s: Ci=0 writes zeros", path);
    for (int i = 0; i < 6; i++)
        out[i] = 7;
    r1_matmul_bf16(out, x, w, 2, 0, 3, 1);
    r1_matmul_bf16(out, x, w, 0, 4, 3, 0);
    r1_matmul_bf16(out, x, w, 2, 4, 0, 0);
    int kept = 1;
    for (int i = 0; i < 6; i++)
        kept &= out[i] == 7;
    ok(kept, "%s: Ci=0 with accumulate, N=0 and Co=0 leave out unchanged", path);
}

/* A NaN activation makes its own row NaN and no other. */
static void check_nan(const char *path)
{
    int N = 6, Ci = 40, Co = 20;
    float x[6 * 40], out[6 * 20];
    uint16_t w[20 * 40];
    for (int i = 0; i < N * Ci; i++)
        x[i] = rnd();
    for (int i = 0; i < Co * Ci; i++)
        w[i] = r1_f32_to_bf16(rnd());
    x[1 * Ci + 37] = NAN;
    r1_matmul_bf16(out, x, w, N, Ci, Co, 0);
    int good = 1;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < Co; o++)
            good &= n == 1 ? isnan(out[n * Co + o]) : isfinite(out[n * Co + o]);
    ok(good, "%s: a NaN activation turns its own row to NaN and leaves the others finite", path);
}

/* ------------------------------------------------------------------ conversions */

static const struct {
    uint32_t f;
    uint16_t h;
} edges[] = {
    {0x00000000u, 0x0000}, /* +0 */
    {0x80000000u, 0x8000}, /* -0 */
    {0x3f800000u, 0x3f80}, /* 1 */
    {0x3f808000u, 0x3f80}, /* halfway, rounds to the even 0x3f80 */
    {0x3f818000u, 0x3f82}, /* halfway, rounds to the even 0x3f82 */
    {0x3f808001u, 0x3f81}, /* just above halfway */
    {0x3f807fffu, 0x3f80}, /* just below halfway */
    {0xbf818000u, 0xbf82}, /* negative halfway */
    {0x7f7fffffu, 0x7f80}, /* FLT_MAX overflows to +inf */
    {0xff7fffffu, 0xff80}, /* -FLT_MAX to -inf */
    {0x7f7f7fffu, 0x7f7f}, /* the largest bf16 stays */
    {0x7f800000u, 0x7f80}, /* +inf */
    {0xff800000u, 0xff80}, /* -inf */
    {0x7fc00000u, 0x7fc0}, /* quiet NaN */
    {0xffc00000u, 0xffc0}, /* negative quiet NaN */
    {0x7f800001u, 0x7fc0}, /* signalling NaN with its payload in the low bits: still NaN */
    {0xff80ffffu, 0xffc0}, /* the same, negative */
    {0x7fa00000u, 0x7fe0}, /* signalling NaN keeps its top payload, gains the quiet bit */
    {0x00000001u, 0x0000}, /* the smallest denormal rounds to 0 */
    {0x00008000u, 0x0000}, /* halfway denormal to the even 0 */
    {0x00018000u, 0x0002}, /* halfway denormal to the even 2 */
    {0x00010000u, 0x0001}, /* the smallest bf16 denormal is kept */
    {0x007fffffu, 0x0080}, /* the largest denormal rounds up to the smallest normal */
    {0x80010000u, 0x8001}, /* negative denormal */
};

static void check_conversions(const char *path)
{
    size_t ne = sizeof edges / sizeof *edges;
    float src[sizeof edges / sizeof *edges];
    uint16_t dst[sizeof edges / sizeof *edges];
    for (size_t i = 0; i < ne; i++)
        src[i] = from_bits(edges[i].f);
    r1_bf16_from_f32(dst, src, ne);
    int good = 1;
    for (size_t i = 0; i < ne; i++)
        if (dst[i] != edges[i].h) {
            good = 0;
            diag("  0x%08x -> 0x%04x, expected 0x%04x", (unsigned)edges[i].f, dst[i], edges[i].h);
        }
    ok(good, "%s: from_f32 rounds %zu edge cases (ties, overflow, NaN, denormals) as expected",
       path, ne);

    /* random bit patterns, unaligned, against the scalar conversion */
    size_t n = 1 << 16;
    uint32_t *u = malloc(sizeof(uint32_t) * (n + 1));
    uint16_t *h = malloc(sizeof(uint16_t) * (n + 1));
    float *f = (float *)(u + 1);
    for (size_t i = 0; i < n; i++)
        u[i + 1] = (uint32_t)r1_rng_u64(&rng);
    r1_bf16_from_f32(h + 1, f, n);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += h[i + 1] != r1_f32_to_bf16(f[i]);
    ok(bad == 0, "%s: from_f32 equals r1_f32_to_bf16 on %zu random bit patterns (%zu differ)", path,
       n, bad);
    free(u), free(h);

    /* every bf16 value: widening is exact, and converting back gives it again (NaN: quieted) */
    uint16_t *all = malloc(sizeof(uint16_t) * 65537), *back = malloc(sizeof(uint16_t) * 65537);
    float *wide = malloc(sizeof(float) * 65537);
    for (uint32_t i = 0; i < 65536; i++)
        all[i + 1] = (uint16_t)i;
    r1_bf16_to_f32_n(wide + 1, all + 1, 65536);
    r1_bf16_from_f32(back + 1, wide + 1, 65536);
    size_t bad_wide = 0, bad_back = 0;
    for (uint32_t i = 0; i < 65536; i++) {
        bad_wide += bits(wide[i + 1]) != i << 16;
        int nan = (i & 0x7fffu) > 0x7f80u;
        bad_back += back[i + 1] != (nan ? (i | 0x40u) : i);
    }
    ok(bad_wide == 0, "%s: to_f32_n widens all 65536 bf16 values exactly (%zu differ)", path,
       bad_wide);
    ok(bad_back == 0, "%s: from_f32(to_f32_n(h)) == h for all h, NaNs quieted (%zu differ)", path,
       bad_back);
    free(all), free(back), free(wide);

    /* every tail length, unaligned, with nothing written past the end */
    int tails = 1;
    for (size_t len = 0; len <= 40; len++) {
        float fs[48], fd[48];
        uint16_t hs[48], hd[48];
        for (size_t i = 0; i < 48; i++) {
            fs[i] = rnd(), hs[i] = r1_f32_to_bf16(rnd());
            fd[i] = CANARY, hd[i] = 0xdead;
        }
        r1_bf16_from_f32(hd + 1, fs + 1, len);
        r1_bf16_to_f32_n(fd + 1, hs + 1, len);
        for (size_t i = 0; i < 48; i++) {
            int in = i >= 1 && i < len + 1;
            tails &= in ? hd[i] == r1_f32_to_bf16(fs[i]) : hd[i] == 0xdead;
            tails &= in ? bits(fd[i]) == (uint32_t)hs[i] << 16 : fd[i] == CANARY;
        }
    }
    ok(tails, "%s: both conversions are right for lengths 0..40 and write nothing past n", path);
}

int main(void)
{
    r1_rng_seed(&rng, 20240611);
    static const int Ns[] = {1, 2, 3, 7, 16, 33}, Cis[] = {1, 15, 16, 17, 64, 192, 513};
    static const int Cos[] = {1, 5, 64, 130};
    static const int bigN[] = {1, 5}, bigCi[] = {1100, 2100}, bigCo[] = {3, 37};

    int simd = r1_bf16_set_simd(1);
    if (!simd)
        diag("no AVX-512 BF16 on this machine: the \"simd\" runs use the portable path too");
    for (int p = 0; p < 2; p++) {
        const char *path = p == 0 ? "simd" : "portable";
        if (p == 1)
            ok(r1_bf16_set_simd(0) == 0, "r1_bf16_set_simd(0) selects the portable path");
        check_shapes(path, Ns, 6, Cis, 7, Cos, 4);
        check_shapes(path, bigN, 2, bigCi, 2, bigCo, 2);
        check_batch_invariance(path, 16, 192, 130);
        check_batch_invariance(path, 7, 1100, 37);
        r1_set_threads(2); /* cut side by side: the batch by rows, a row alone by outputs */
        check_batch_invariance(path, 70, 512, 301);
        r1_set_threads(1);
        check_fenced(path);
        check_degenerate(path);
        check_nan(path);
        check_conversions(path);
    }
    ok(r1_bf16_set_simd(1) == simd, "r1_bf16_set_simd(1) restores the path chosen at start");
    return done_testing();
}
