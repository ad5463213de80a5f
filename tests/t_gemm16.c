/* t_gemm16.c — the bf16 GEMM of training (r1__gemm16, engine/r1_gemm16.h) on every kernel path
 * this machine has, and the kernel-path switch (r1_isa_*, R1_ISA).
 *
 * Each path is checked against a double-precision sum of the same bf16 products (with the FP8
 * block scales when given), within the documented bound (K/2 + 2)·2^-24·S, S = sum |A|·|B|
 * (+ |C| when accumulating), and against the portable path bit for bit (the data has no
 * denormals, the one place paths may differ).  Against OpenBLAS sgemm on the unrounded fp32
 * operands the error is the bf16 rounding of both: at most 2^-7·S plus the same summation
 * term.  Shapes cover every tail of the 8×32 tiles, of the 64-row and 128-column blocks and of
 * the 256 (and 128) blocks of K, odd K, both storage orders of both operands, fp32 and bf16
 * sources, accumulation, and leading dimensions wider than the matrix with canaries between
 * rows.  A product cut into pieces on 2 threads must equal the one on 1 thread.
 *
 * Also the fp32 rows product of decoding (r1__matmul_f32_rows): within (Ci/16 + 40)·2^-24·S
 * of a double sum, every token's outputs the same bits alone or among others (up to 70 rows),
 * the row stride and accumulation kept, and declined (0, nothing written) on the portable
 * path.  And decoding's attention output (r1__pv_rows): bit for bit the fp32 FMA chain.  Both
 * on the best path and on AVX2, which has kernels of its own.
 *
 * The AMX path sums in the hardware's order, so it is held to the bound, not to the portable
 * path's bits.  Built as t_gemm16_amx (R1_AMX_EMULATE, with engine/gemm16.c compiled in), the
 * whole test runs the AMX kernel with its tile operations emulated in C in place of the
 * machine's AVX-512 BF16 path: the tiles' layout, the padding of K to 16 pairs, the 32-row
 * tiles and their epilogue are checked on any machine with AVX-512 BF16. */
#include <config.h>

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "r1.h"
#include "r1_bf16.h"
#include "r1_fp8.h"
#include "r1_gemm16.h"
#include "r1_rng.h"
#include "tap.h"

/* the paths whose kernel is uk_amx: the real one, or the emulated tiles standing in for the
 * machine's best */
#ifdef R1_AMX_EMULATE
#define AMX_KERNEL(p) ((p) >= R1_ISA_AVX512BF16)
#else
#define AMX_KERNEL(p) ((p) == R1_ISA_AMX)
#endif

#define CANARY (-12345.0f)
#define MAXROWS 70

static r1_rng rng;

static float unif(void) { return (float)(r1_rng_uniform(&rng) * 2 - 1); }

static float rb(float f) { return r1_bf16_to_f32(r1_f32_to_bf16(f)); }

typedef struct {
    int M, N, K, ta, tb, a16, b16, acc, scaled;
} shape;

typedef struct {
    float *a, *b;        /* fp32 sources */
    uint16_t *ah, *bh;   /* bf16 copies */
    float *sa, *sb;      /* FP8-style scales: per (row, kb) and per (kb, 128-column block) */
    float *c0;           /* C before the call (ldc = N + 3) */
    int lda, ldb, ldc, nkb;
} data;

static double A_(const shape *s, const data *d, int m, int k)
{
    float v = s->ta ? d->a[(long)k * d->lda + m] : d->a[(long)m * d->lda + k];
    return rb(v);
}

static double B_(const shape *s, const data *d, int k, int n)
{
    float v = s->tb ? d->b[(long)n * d->ldb + k] : d->b[(long)k * d->ldb + n];
    return rb(v);
}

static void make(const shape *s, data *d)
{
    d->lda = (s->ta ? s->M : s->K) + 1;
    d->ldb = s->tb ? s->K + 2 + (s->K & 1) : s->N + 2; /* even: the AVX-512 gather packer */
    d->ldc = s->N + 3;
    /* one stored row more than the operand has, and the columns past it: NaN, so that a
     * packer reading outside the operand (the row past an odd K, say) spoils the result */
    int ra = s->ta ? s->K : s->M, rb_ = s->tb ? s->N : s->K;
    int wa = s->ta ? s->M : s->K, wb = s->tb ? s->K : s->N;
    long na = (long)d->lda * (ra + 1), nb = (long)d->ldb * (rb_ + 1);
    d->a = malloc(sizeof(float) * na);
    d->b = malloc(sizeof(float) * nb);
    d->ah = malloc(2 * na);
    d->bh = malloc(2 * nb);
    for (long i = 0; i < na; i++)
        d->a[i] = i / d->lda < ra && i % d->lda < wa ? unif() * (s->scaled ? 16 : 1) : NAN;
    for (long i = 0; i < nb; i++)
        d->b[i] = i / d->ldb < rb_ && i % d->ldb < wb ? unif() : NAN;
    if (s->scaled) { /* FP8 codes are small integers times powers of two: make them so */
        for (long i = 0; i < na; i++)
            d->a[i] = roundf(d->a[i]);
        for (long i = 0; i < nb; i++)
            d->b[i] = roundf(d->b[i] * 8) / 8;
    }
    r1_bf16_from_f32(d->ah, d->a, na);
    r1_bf16_from_f32(d->bh, d->b, nb);
    d->nkb = (s->K + 127) / 128;
    d->sa = malloc(sizeof(float) * s->M * d->nkb);
    d->sb = malloc(sizeof(float) * d->nkb * ((s->N + 127) / 128));
    for (long i = 0; i < (long)s->M * d->nkb; i++)
        d->sa[i] = 0.5f + (float)r1_rng_uniform(&rng);
    for (long i = 0; i < (long)d->nkb * ((s->N + 127) / 128); i++)
        d->sb[i] = 0.25f + (float)r1_rng_uniform(&rng);
    d->c0 = malloc(sizeof(float) * (long)s->M * d->ldc);
    for (long i = 0; i < (long)s->M * d->ldc; i++)
        d->c0[i] = i % d->ldc >= s->N ? CANARY : unif();
}

static void drop(data *d)
{
    free(d->a), free(d->b), free(d->ah), free(d->bh), free(d->sa), free(d->sb), free(d->c0);
}

static float *run(const shape *s, const data *d)
{
    float *c = malloc(sizeof(float) * (long)s->M * d->ldc);
    memcpy(c, d->c0, sizeof(float) * (long)s->M * d->ldc);
    r1_gop A = {s->a16 ? (const void *)d->ah : d->a, d->lda, s->ta, s->a16};
    r1_gop B = {s->b16 ? (const void *)d->bh : d->b, d->ldb, s->tb, s->b16};
    int nbc = (s->N + 127) / 128;
    r1_gscale sc = {d->sa, d->nkb, 1, 1, d->sb, nbc, 1, 128, 0, 0};
    r1__gemm16(c, d->ldc, s->M, s->N, s->K, A, B, s->acc, s->scaled ? &sc : NULL);
    return c;
}

/* The worst error against the double reference, in units of the bound; and against sgemm. */
static void errors(const shape *s, const data *d, const float *c, double *vs_ref, double *vs_f32,
                   int *canary)
{
    float *f = malloc(sizeof(float) * (long)s->M * s->N);
    if (!s->scaled)
        cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans,
                    s->tb ? CblasTrans : CblasNoTrans, s->M, s->N, s->K, 1, d->a, d->lda, d->b,
                    d->ldb, 0, f, s->N);
    *vs_ref = *vs_f32 = 0;
    *canary = 1;
    for (int m = 0; m < s->M; m++)
        for (int n = 0; n < s->N; n++) {
            double sum = 0, S = 0, sum32 = 0;
            for (int kb = 0; kb * 128 < s->K; kb++) {
                double part = 0, ps = 0, sc = 1;
                if (s->scaled)
                    sc = (double)d->sa[(long)m * d->nkb + kb] *
                         d->sb[(long)kb * ((s->N + 127) / 128) + n / 128];
                for (int k = kb * 128; k < s->K && k < kb * 128 + 128; k++) {
                    double x = A_(s, d, m, k), y = B_(s, d, k, n);
                    part += x * y;
                    ps += fabs(x * y);
                }
                sum += part * sc;
                S += ps * sc;
            }
            double before = s->acc ? d->c0[(long)m * d->ldc + n] : 0;
            S += fabs(before);
            sum += before;
            sum32 = s->scaled ? 0 : f[(long)m * s->N + n] + before;
            double got = c[(long)m * d->ldc + n];
            double bound = (s->K / 2.0 + 2) * ldexp(1, -24) * S + 1e-30;
            double e = fabs(got - sum) / bound;
            *vs_ref = e <= *vs_ref ? *vs_ref : e; /* a NaN stays, and fails */
            if (!s->scaled) {
                double e2 = fabs(got - sum32) / (ldexp(1, -7) * S + bound);
                *vs_f32 = e2 <= *vs_f32 ? *vs_f32 : e2;
            }
        }
    for (int m = 0; m < s->M; m++)
        for (int n = s->N; n < d->ldc; n++)
            if (c[(long)m * d->ldc + n] != CANARY)
                *canary = 0;
    free(f);
}

int main(void)
{
    r1_rng_seed(&rng, 7);
    r1_set_threads(1);
    r1_error err = {0};
    r1_isa best = r1_isa_best();

    /* the switch */
    char desc[256];
    r1_isa_describe(desc, sizeof desc);
    diag("kernel paths: %s", desc);
    ok(r1_isa_active() == best || getenv("R1_ISA"), "the best path is in use at start");
    ok(r1_isa_set(R1_ISA_PORTABLE, &err) == R1_OK && r1_isa_active() == R1_ISA_PORTABLE,
       "r1_isa_set lowers the path to portable");
#ifdef R1_AMX_EMULATE
    diag("AMX emulated: the AMX kernel, its tiles in C, in place of %s",
         best >= R1_ISA_AVX512BF16 ? "avx512bf16" : "nothing (no AVX-512 BF16 here)");
    if (best < R1_ISA_AVX512BF16) {
        skip("the emulated AMX kernel: this machine has no AVX-512 BF16 for it to stand in for");
        return done_testing();
    }
#endif
    if (best == R1_ISA_AMX) {
        ok(r1_isa_set(R1_ISA_AMX, &err) == R1_OK && r1_isa_active() == R1_ISA_AMX,
           "r1_isa_set raises the path to amx");
        r1_isa_set(R1_ISA_PORTABLE, &err);
    } else
        ok(r1_isa_set(R1_ISA_AMX, &err) == R1_EINVAL && strstr(err.msg, "amx"),
           "r1_isa_set refuses amx here, naming it: %s", err.msg);
    ok(r1_isa_active() == R1_ISA_PORTABLE, "a refused r1_isa_set leaves the path as it was");
    ok(!strcmp(r1_isa_name(R1_ISA_AVX512BF16), "avx512bf16") && !strcmp(r1_isa_name(99),
       "unknown"), "r1_isa_name");

    static const shape shapes[] = {
        {1, 1, 1, 0, 1, 0, 0, 0, 0},       {7, 33, 3, 0, 1, 0, 1, 0, 0},
        {9, 31, 2, 1, 0, 0, 0, 1, 0},      {65, 129, 257, 0, 1, 0, 1, 0, 0},
        {130, 200, 600, 0, 0, 0, 0, 1, 0}, {64, 128, 256, 1, 0, 0, 0, 1, 0},
        {70, 40, 513, 1, 1, 1, 0, 0, 0},   {3, 300, 100, 0, 1, 1, 1, 1, 0},
        {33, 70, 384, 0, 1, 0, 0, 0, 1},   {20, 260, 300, 1, 0, 0, 0, 1, 1},
        {129, 65, 129, 0, 0, 0, 0, 0, 1},  {8, 32, 255, 1, 1, 0, 0, 1, 1},
        {17, 45, 301, 0, 1, 0, 1, 1, 0},   {40, 64, 77, 1, 0, 1, 1, 0, 0},
        {45, 70, 333, 1, 0, 0, 0, 1, 0}, /* dW's: both fp32 along K, odd K past a block */
        /* rows in chunks of 64 (block(): a C row of 4000 bytes) over three blocks of K */
        {300, 1000, 520, 0, 1, 0, 1, 1, 0},
        {150, 70, 600, 0, 0, 1, 0, 0, 0}, /* A bf16 along K over three blocks of K */
        {50, 300, 301, 0, 0, 0, 1, 1, 0},  /* dX's: B a bf16 weight along N, odd K */
    };
    int nshapes = sizeof shapes / sizeof *shapes;
    float *port[sizeof shapes / sizeof *shapes];
    data dd[sizeof shapes / sizeof *shapes];
    for (int i = 0; i < nshapes; i++)
        make(&shapes[i], &dd[i]);

    for (int p = R1_ISA_PORTABLE; p <= R1_ISA_AMX; p++) {
        if (!r1_isa_cpu_has(p) || p > (int)best) {
            skip("path %s: %s", r1_isa_name(p),
                 r1_isa_cpu_has(p) ? "no kernels in this build" : "not in this CPU");
            continue;
        }
        r1_isa_set(p, &err);
        for (int i = 0; i < nshapes; i++) {
            const shape *s = &shapes[i];
            float *c = run(s, &dd[i]);
            double e1, e2;
            int can;
            errors(s, &dd[i], c, &e1, &e2, &can);
            ok(e1 <= 1 && can,
               "%s: %dx%dx%d%s%s%s%s%s%s within the bound of the bf16 products (%.3g of it)%s",
               r1_isa_name(p), s->M, s->N, s->K, s->ta ? " A^T" : "", s->tb ? " B^T" : "",
               s->a16 ? " A bf16" : "", s->b16 ? " B bf16" : "", s->acc ? " +=" : "",
               s->scaled ? " scaled" : "", e1, can ? "" : "; a canary changed");
            if (!s->scaled)
                ok(e2 <= 1, "%s: %dx%dx%d within bf16 rounding of fp32 sgemm (%.3g of it)",
                   r1_isa_name(p), s->M, s->N, s->K, e2);
            if (p == R1_ISA_PORTABLE) {
                port[i] = c;
                continue;
            }
            if (AMX_KERNEL(p)) { /* its own order of sums: the bound above, not the bits */
                free(c);
                continue;
            }
            ok(!memcmp(c, port[i], sizeof(float) * (long)s->M * dd[i].ldc),
               "%s: %dx%dx%d equals the portable path bit for bit", r1_isa_name(p), s->M, s->N,
               s->K);
            free(c);
        }
    }

    /* cut into pieces on 2 threads: the same bits.  Pieces of rows share one packing of B
     * (packed side by side first); pieces of columns (few rows) pack their own: both cuts, B
     * either way round, fp32 and bf16, odd K, K past one block, the FP8 scales. */
    r1_isa_set(best, &err);
    static const shape cuts[] = {
        {300, 700, 512, 0, 1, 0, 1, 1, 0}, {257, 45, 301, 1, 0, 0, 0, 0, 0},
        {260, 200, 385, 0, 1, 0, 0, 1, 1}, {140, 70, 1000, 1, 1, 1, 1, 0, 0},
        {200, 129, 700, 0, 0, 0, 0, 1, 1}, {40, 1000, 300, 0, 1, 0, 1, 0, 0},
        {300, 600, 301, 1, 0, 0, 0, 1, 0}, /* dW's: B along K in groups of 8 panels */
    };
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        const shape *s = &cuts[i];
        data d;
        make(s, &d);
        r1_set_threads(1);
        float *one = run(s, &d);
        r1_set_threads(2);
        float *two = run(s, &d);
        ok(!memcmp(one, two, sizeof(float) * (long)s->M * d.ldc),
           "%s: %dx%dx%d%s%s%s%s on 2 threads (cut by %s) equals 1 thread bit for bit",
           r1_isa_name(best), s->M, s->N, s->K, s->tb ? " B^T" : "", s->b16 ? " B bf16" : "",
           s->acc ? " +=" : "", s->scaled ? " scaled" : "", s->M >= 128 ? "rows" : "columns");
        free(one), free(two), drop(&d);
    }

    /* FP8 through BF16 against the emulation (quantise-dequantise, then sgemm), for the three
     * GEMMs of a linear layer with DeepSeek-V3's groupings.  Both compute sum_k (ca·sa)(cb·sb)
     * from the same codes ca, cb and scales: the emulation rounds each dequantised operand
     * (2^-24 relative each) and sums K products in fp32; through BF16 the products of codes are
     * exact, each 128-block's sum is within (64 + 2)·2^-24 of its magnitudes, the scale
     * product and the scaling round twice more, and the blocks are added in fp32.  So the two
     * differ by at most (K + 2·64 + 8)·2^-24·S, S = sum |dequantised a|·|dequantised b|. */
    {
        enum { NT = 201, CI = 300, CO = 260 }; /* odd NT: dW's last block of K is odd */
        float *x = malloc(sizeof(float) * NT * CI), *w = malloc(sizeof(float) * CO * CI);
        float *dy = malloc(sizeof(float) * NT * CO);
        for (int i = 0; i < NT * CI; i++)
            x[i] = unif() * (i % 97 == 0 ? 40 : 1); /* outliers, as activations have */
        for (int i = 0; i < CO * CI; i++)
            w[i] = unif() * 0.05f;
        for (int i = 0; i < NT * CO; i++)
            dy[i] = unif() * 1e-3f;
        const char *what[3] = {"forward x·W^T", "dX = dY·W", "dW = dY^T·x"};
        for (int g = 0; g < 3; g++) {
            /* operands as (M,K) and (K,N) views; qa, qb dequantised; ca, cb codes + scales */
            int M = g == 2 ? CO : NT, N = g == 0 ? CO : CI, K = g == 0 ? CI : g == 1 ? CO : NT;
            const float *a = g == 0 ? x : dy;
            int la = g == 0 ? CI : CO, lb = g == 0 ? CI : CI;
            long na = (long)NT * la, nb = g == 2 ? (long)NT * CI : (long)CO * CI;
            float *qa = malloc(sizeof(float) * na), *qb = malloc(sizeof(float) * nb);
            float *ca = malloc(sizeof(float) * na), *cb = malloc(sizeof(float) * nb);
            float *sa = malloc(sizeof(float) * 4096), *sb = malloc(sizeof(float) * 4096);
            r1_gscale sc = {0};
            int ta = g == 2, tb = g == 0;
            if (g < 2) { /* A: 1×128 tiles along its rows (K) */
                r1_fp8_qdq_tiles(qa, a, NT, la);
                r1_fp8_q_tiles(ca, sa, a, NT, la);
                sc.a = sa, sc.am = (la + 127) / 128, sc.ak = 1, sc.ablk = 1;
                r1_fp8_qdq_blocks(qb, w, CO, CI);
                r1_fp8_q_blocks(cb, sb, w, CO, CI);
                sc.b = sb, sc.bblk = 128;
                if (g == 0) /* B(k = ci, n = co) */
                    sc.bn = (CI + 127) / 128, sc.bk = 1;
                else /* B(k = co, n = ci) */
                    sc.bk = (CI + 127) / 128, sc.bn = 1;
            } else { /* 128×1 tiles down the tokens (K) for both */
                r1_fp8_qdq_coltiles(qa, dy, NT, CO);
                r1_fp8_q_coltiles(ca, sa, dy, NT, CO);
                sc.a = sa, sc.am = 1, sc.ak = CO, sc.ablk = 1;
                r1_fp8_qdq_coltiles(qb, x, NT, CI);
                r1_fp8_q_coltiles(cb, sb, x, NT, CI);
                sc.b = sb, sc.bn = 1, sc.bk = CI, sc.bblk = 1;
            }
            float *emu = malloc(sizeof(float) * M * N), *thr = malloc(sizeof(float) * M * N);
            cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
                        tb ? CblasTrans : CblasNoTrans, M, N, K, 1, qa, la, qb, lb, 0, emu, N);
            r1_gop A = {ca, la, ta, 0}, B = {cb, lb, tb, 0};
            r1__gemm16(thr, N, M, N, K, A, B, 0, &sc);
            double worst = 0;
            for (int m = 0; m < M; m++)
                for (int n = 0; n < N; n++) {
                    double S = 0;
                    for (int k = 0; k < K; k++) {
                        double u = ta ? qa[(long)k * la + m] : qa[(long)m * la + k];
                        double v = tb ? qb[(long)n * lb + k] : qb[(long)k * lb + n];
                        S += fabs(u * v);
                    }
                    double e = fabs((double)emu[(long)m * N + n] - thr[(long)m * N + n]) /
                               ((K + 2 * 64 + 8) * ldexp(1, -24) * S + 1e-37);
                    worst = e > worst ? e : worst;
                }
            ok(worst <= 1, "FP8 through BF16 (%s): %s, within the bound of the emulation's "
               "result (%.3g of it)", r1_isa_name(best), what[g], worst);
            /* Quantised as packed (aq; bq for dW's x): the codes and scales above, so the
             * product from them bit for bit, on every path, one thread and two (two cut dW by
             * rows, its B packed once and shared), added into C as the backward does. */
            r1_gscale fq = sc;
            fq.aq = 1, fq.bq = g == 2;
            r1_gop FA = {a, la, ta, 0}, FB = g == 2 ? (r1_gop){x, lb, tb, 0} : B;
            for (r1_isa p = R1_ISA_PORTABLE; p <= best; p++) {
                if (r1_isa_set(p, &err) != R1_OK)
                    continue;
                int same = 1;
                for (int th = 1; th <= 2; th++) {
                    r1_set_threads(th);
                    for (int i = 0; i < M * N; i++)
                        emu[i] = thr[i] = g ? 0.25f * (float)(i % 13) : 0;
                    r1__gemm16(emu, N, M, N, K, A, B, g > 0, &sc);
                    r1__gemm16(thr, N, M, N, K, FA, FB, g > 0, &fq);
                    same &= !memcmp(emu, thr, sizeof(float) * M * N);
                }
                ok(same, "FP8 quantised as packed (%s): %s, the product of the codes bit for bit",
                   r1_isa_name(p), what[g]);
            }
            r1_isa_set(best, &err);
            r1_set_threads(1);
            free(qa), free(qb), free(ca), free(cb), free(sa), free(sb), free(emu), free(thr);
        }
        free(x), free(w), free(dy);
    }

    /* the fp32 few-rows product of decoding, on the best path, on AVX2 (its own kernel) and on
     * the portable path (C, with the AVX2 kernel's bits) */
    for (int pi = 0; pi < 3; pi++) {
        static const int cis[] = {1, 15, 16, 17, 96, 192, 1408}, cos_[] = {1, 5, 16, 17, 64, 129};
        r1_isa rp = pi == 0 ? best : pi == 1 ? R1_ISA_AVX2 : R1_ISA_PORTABLE;
        if (pi > 0 && best <= rp)
            continue;
        r1_isa_set(rp, &err);
        r1_set_threads(2); /* the larger ones side by side: by rows, a token alone by outputs */
        int can = r1_isa_active() == rp;
        float *x = malloc(sizeof(float) * MAXROWS * 1408);
        float *w = malloc(sizeof(float) * 129 * 1408);
        float *one = malloc(sizeof(float) * 140);
        float *many = malloc(sizeof(float) * MAXROWS * 140);
        for (int i = 0; i < MAXROWS * 1408; i++)
            x[i] = unif();
        for (int i = 0; i < 129 * 1408; i++)
            w[i] = unif();
        double worst = 0;
        int same = 1, tail = 1, nsh = 0;
        for (int a = 0; can && a < (int)(sizeof cis / sizeof *cis); a++)
            for (int b = 0; b < (int)(sizeof cos_ / sizeof *cos_); b++) {
                int Ci = cis[a], Co = cos_[b], ldo = Co + 3;
                static const int ns[] = {1, 2, 3, 4, 5, 7, 8, 16, 17, 33, 64, MAXROWS};
                for (int ni = 0; ni < (int)(sizeof ns / sizeof *ns); ni++) {
                    int N = ns[ni], acc = N == 3; /* one size accumulates onto 0.5 */
                    for (int i = 0; i < MAXROWS * 140; i++)
                        many[i] = acc ? 0.5f : CANARY;
                    r1__matmul_f32_rows(many, ldo, x, w, N, Ci, Co, acc);
                    for (int n = 0; n < N; n++) {
                        for (int i = 0; i < 140; i++)
                            one[i] = acc ? 0.5f : CANARY;
                        r1__matmul_f32_rows(one, ldo, x + (long)n * Ci, w, 1, Ci, Co, acc);
                        same &= !memcmp(one, many + (long)n * ldo, sizeof(float) * Co);
                        for (int o = 0; o < Co; o++) {
                            double ref = acc ? 0.5 : 0, S = acc ? 0.5 : 0;
                            for (int k = 0; k < Ci; k++) {
                                ref += (double)x[(long)n * Ci + k] * w[(long)o * Ci + k];
                                S += fabs((double)x[(long)n * Ci + k] * w[(long)o * Ci + k]);
                            }
                            double e = fabs(many[(long)n * ldo + o] - ref) /
                                       ((Ci / 16.0 + 40) * 0x1p-24 * S);
                            worst = e > worst ? e : worst;
                        }
                        for (int o = Co; o < ldo; o++) /* between the rows: untouched */
                            tail &= many[(long)n * ldo + o] == (acc ? 0.5f : CANARY);
                    }
                    nsh++;
                }
            }
        if (can) {
            ok(nsh == 7 * 6 * 12 && worst <= 1,
               "fp32 rows, %s: %d shapes within (Ci/16 + 40)·2^-24·S of a double sum (%.3g of "
               "it)", r1_isa_name(rp), nsh, worst);
            ok(same, "fp32 rows, %s: a token's outputs are the same bits alone or among up to %d",
               r1_isa_name(rp), MAXROWS);
            ok(tail, "fp32 rows, %s: the row stride is kept (nothing written between rows)",
               r1_isa_name(rp));
        } else
            skip("fp32 rows: path %s has no few-rows kernel", r1_isa_name(rp));
        if (rp == R1_ISA_PORTABLE && best >= R1_ISA_AVX2) { /* the AVX2 kernel's bits */
            r1__matmul_f32_rows(many, 140, x, w, 7, 1408, 129, 0);
            r1_isa_set(R1_ISA_AVX2, &err);
            r1__matmul_f32_rows(one, 140, x + 3 * 1408, w, 1, 1408, 129, 0);
            ok(!memcmp(one, many + 3 * 140, sizeof(float) * 129),
               "fp32 rows: the portable path gives the AVX2 kernel's bits");
        }
        r1_isa_set(best, &err);
        free(x), free(w), free(one), free(many);
    }

    /* weights packed once (r1__gemm16_pack_wt) and products on them (r1__gemm16_packed): the
     * same bits as r1__gemm16 packing W^T itself, on every path this machine has, for few rows
     * (1-5: the narrow micro-kernels, and pieces by columns on 2 threads) and many (pieces by
     * rows), N past a panel and K past a block, storing and accumulating */
    {
        static const int Ms[] = {1, 2, 3, 5, 13, 200}, Ns[] = {1, 33, 300}, Ks[] = {17, 300};
        int same = 1, cases = 0;
        float *x = malloc(sizeof(float) * 200 * 300), *c1 = malloc(sizeof(float) * 200 * 300);
        float *c2 = malloc(sizeof(float) * 200 * 300);
        uint16_t *w = malloc(sizeof(uint16_t) * 300 * 300);
        for (int i = 0; i < 200 * 300; i++)
            x[i] = unif();
        for (int i = 0; i < 300 * 300; i++)
            w[i] = r1_f32_to_bf16(unif());
        for (int p = R1_ISA_PORTABLE; p <= (int)best; p++) {
            if (r1_isa_set(p, &err) != R1_OK)
                continue;
            for (int ni = 0; ni < 3; ni++)
                for (int ki = 0; ki < 2; ki++) {
                    int N = Ns[ni], K = Ks[ki];
                    uint32_t *bp = malloc(sizeof(uint32_t) * r1__gemm16_packed_words(N, K));
                    r1__gemm16_pack_wt(bp, w, N, K);
                    for (int mi = 0; mi < 6; mi++)
                        for (int th = 1; th <= 2; th++) {
                            int M = Ms[mi], acc = (mi + th) & 1;
                            r1_set_threads(th);
                            for (int i = 0; i < M * N; i++)
                                c1[i] = c2[i] = acc ? 0.25f : CANARY;
                            r1_gop A = {x, K, 0, 0}, B = {w, K, 1, 1};
                            r1__gemm16(c1, N, M, N, K, A, B, acc, NULL);
                            r1__gemm16_packed(c2, N, M, N, K, A, bp, acc);
                            same &= !memcmp(c1, c2, sizeof(float) * M * N);
                            cases++;
                        }
                    free(bp);
                }
        }
        r1_set_threads(1);
        r1_isa_set(best, &err);
        ok(same && cases > 0, "packed weights: %d products (paths up to %s, 1-200 rows, 1 and 2 "
           "threads) equal r1__gemm16's bits", cases, r1_isa_name(best));
        free(x), free(c1), free(c2), free(w);
    }

    /* two products of one A on two packed weights (r1__gemm16_packed2: a SwiGLU's gate and up,
     * q_a and kv_a): the bits of two r1__gemm16_packed calls, on every path, for 1 to 700 rows
     * on 1 and 2 threads (pieces by rows; few rows and wide products cut by columns run as two
     * calls), widths apart and past a panel, K past a block */
    {
        static const int Ms[] = {1, 5, 13, 200, 700}, Ks[] = {17, 300};
        static const int Ns[][2] = {{33, 33}, {1, 300}, {300, 33}, {300, 300}};
        int same = 1, cases = 0;
        float *x = malloc(sizeof(float) * 700 * 300);
        float *c[4];
        for (int i = 0; i < 4; i++)
            c[i] = malloc(sizeof(float) * 700 * 300);
        uint16_t *w = malloc(sizeof(uint16_t) * 600 * 300);
        for (int i = 0; i < 700 * 300; i++)
            x[i] = unif();
        for (int i = 0; i < 600 * 300; i++)
            w[i] = r1_f32_to_bf16(unif());
        for (int p = R1_ISA_PORTABLE; p <= (int)best; p++) {
            if (r1_isa_set(p, &err) != R1_OK)
                continue;
            for (int ni = 0; ni < 4; ni++)
                for (int ki = 0; ki < 2; ki++) {
                    int N1 = Ns[ni][0], N2 = Ns[ni][1], K = Ks[ki];
                    uint32_t *b1 = malloc(sizeof(uint32_t) * r1__gemm16_packed_words(N1, K));
                    uint32_t *b2 = malloc(sizeof(uint32_t) * r1__gemm16_packed_words(N2, K));
                    r1__gemm16_pack_wt(b1, w, N1, K);
                    r1__gemm16_pack_wt(b2, w + (size_t)300 * K, N2, K);
                    for (int mi = 0; mi < 5; mi++)
                        for (int th = 1; th <= 2; th++) {
                            int M = Ms[mi];
                            r1_set_threads(th);
                            for (int i = 0; i < 4; i++)
                                for (int e = 0; e < M * 300; e++)
                                    c[i][e] = CANARY;
                            r1_gop A = {x, K, 0, 0};
                            r1__gemm16_packed(c[0], N1, M, N1, K, A, b1, 0);
                            r1__gemm16_packed(c[1], N2, M, N2, K, A, b2, 0);
                            r1__gemm16_packed2(c[2], N1, N1, b1, c[3], N2, N2, b2, M, K, A);
                            same &= !memcmp(c[0], c[2], sizeof(float) * M * 300) &&
                                    !memcmp(c[1], c[3], sizeof(float) * M * 300);
                            cases++;
                        }
                    free(b1), free(b2);
                }
        }
        r1_set_threads(1);
        r1_isa_set(best, &err);
        ok(same && cases > 0, "two products of one A on packed weights: %d pairs (paths up to %s, "
           "1-700 rows, 1 and 2 threads) equal two r1__gemm16_packed calls bit for bit",
           cases, r1_isa_name(best));
        free(x), free(w);
        for (int i = 0; i < 4; i++)
            free(c[i]);
    }

    /* two products on one B (r1__gemm16_pair: the weight gradients of gate and up, A the
     * transposed output gradients, B the input): the bits of two r1__gemm16 calls on every
     * path, both storage orders of A and B, storing and accumulating, few rows (pieces by
     * columns on 2 threads) and many (pieces by rows, B packed once for them), K past a block */
    {
        static const int Ms[] = {1, 7, 64, 300}, Ns[] = {33, 300}, Ks[] = {40, 340};
        int same = 1, cases = 0;
        float *a1 = malloc(sizeof(float) * 300 * 340), *a2 = malloc(sizeof(float) * 300 * 340);
        float *b = malloc(sizeof(float) * 340 * 300), *c[4];
        for (int i = 0; i < 4; i++)
            c[i] = malloc(sizeof(float) * 300 * 300);
        for (int i = 0; i < 300 * 340; i++)
            a1[i] = unif(), a2[i] = unif(), b[i] = unif();
        for (int p = R1_ISA_PORTABLE; p <= (int)best; p++) {
            if (r1_isa_set(p, &err) != R1_OK)
                continue;
            for (int mi = 0; mi < 4; mi++)
                for (int ni = 0; ni < 2; ni++)
                    for (int ki = 0; ki < 2; ki++)
                        for (int v = 0; v < 8; v++) {
                            int M = Ms[mi], N = Ns[ni], K = Ks[ki], ta = v & 1, tb = v >> 1 & 1;
                            int acc = v >> 2 & 1, th = 1 + ((mi + ni + ki + v) & 1);
                            r1_set_threads(th);
                            for (int i = 0; i < 4; i++)
                                for (int e = 0; e < M * N; e++)
                                    c[i][e] = acc ? 0.5f - (float)(e % 3) : CANARY;
                            r1_gop A1 = {a1, ta ? M : K, ta, 0}, A2 = {a2, ta ? M : K, ta, 0};
                            r1_gop B = {b, tb ? K : N, tb, 0};
                            r1__gemm16(c[0], N, M, N, K, A1, B, acc, NULL);
                            r1__gemm16(c[1], N, M, N, K, A2, B, acc, NULL);
                            r1__gemm16_pair(c[2], N, A1, c[3], N, A2, M, N, K, B, acc);
                            same &= !memcmp(c[0], c[2], sizeof(float) * M * N) &&
                                    !memcmp(c[1], c[3], sizeof(float) * M * N);
                            cases++;
                        }
        }
        r1_set_threads(1);
        r1_isa_set(best, &err);
        ok(same && cases > 0, "two products on one B: %d pairs (paths up to %s, 1-300 rows, 1 and "
           "2 threads, both storage orders) equal two r1__gemm16 calls bit for bit", cases,
           r1_isa_name(best));
        free(a1), free(a2), free(b);
        for (int i = 0; i < 4; i++)
            free(c[i]);
    }

    /* products on parts of a B packed once (r1__gemm16_sub_pack / r1__gemm16_sub, attention's
     * causal blocks): rows [k0, k0 + K') and columns [0, N') of B, both storage orders, fp32
     * A in both orders, K up to a whole block of K (256), equal to r1__gemm16 on that part's
     * own operands, bit for bit, on every path; and K past the block declined */
    {
        static const int Ks[] = {17, 80, 256}, Ns[] = {5, 32, 80};
        int same = 1, cases = 0;
        float *a = malloc(sizeof(float) * 256 * 260), *b = malloc(sizeof(float) * 260 * 260);
        float *c1 = malloc(sizeof(float) * 40 * 90), *c2 = malloc(sizeof(float) * 40 * 90);
        for (int i = 0; i < 256 * 260; i++)
            a[i] = unif();
        for (int i = 0; i < 260 * 260; i++)
            b[i] = unif();
        for (int p = R1_ISA_PORTABLE; p <= (int)best; p++) {
            if (r1_isa_set(p, &err) != R1_OK)
                continue;
            for (int ki = 0; ki < 3; ki++)
                for (int ni = 0; ni < 3; ni++)
                    for (int tb = 0; tb < 2; tb++) {
                        int K = Ks[ki], N = Ns[ni], ldb = 260;
                        r1_gop B = {b, ldb, tb, 0};
                        uint32_t *bp = malloc(sizeof(uint32_t) * r1__gemm16_sub_words(N, K));
                        int kps = r1__gemm16_sub_pack(bp, N, K, B);
                        for (int k0 = 0; k0 < K; k0 += 24) {
                            for (int part = 0; part < 2; part++) {
                                int Kp = part ? (K - k0 + 1) / 2 : K - k0;
                                int Np = part ? (N + 1) / 2 : N, M = 3 + 13 * part + k0 % 5;
                                int ta = (k0 / 24 + part) & 1, acc = part;
                                r1_gop A = {a, ta ? M : Kp, ta, 0};
                                r1_gop Bp = {tb ? b + k0 : b + (long)k0 * ldb, ldb, tb, 0};
                                for (int i = 0; i < 40 * 90; i++)
                                    c1[i] = c2[i] = acc ? 0.5f : CANARY;
                                r1__gemm16(c1, 90, M, Np, Kp, A, Bp, acc, NULL);
                                r1__gemm16_sub(c2, 90, M, Np, k0, Kp, A, bp, kps, acc);
                                same &= !memcmp(c1, c2, sizeof(float) * 40 * 90);
                                cases++;
                            }
                        }
                        free(bp);
                    }
        }
        r1_isa_set(best, &err);
        ok(same && cases > 0, "parts of a packed B: %d products (paths up to %s) equal "
           "r1__gemm16's bits on the parts", cases, r1_isa_name(best));
        r1_gop B = {b, 260, 0, 0};
        ok(r1__gemm16_sub_words(8, 257) == 0 && r1__gemm16_sub_pack((uint32_t *)c1, 8, 257, B) == 0,
           "a B past one block of K (257 rows) is declined");
        free(a), free(b), free(c1), free(c2);
    }

    /* a decoding step's attention output P·V (r1__pv_rows): each output the chain of fp32
     * FMAs in t order, bit for bit (fmaf here), over groups of rows past 6 and column tails
     * past 64 and of 32 or fewer; row strides kept; on every path, the portable one too */
    for (int pi = 0; pi < 3; pi++) {
        static const int rs[] = {1, 5, 6, 7, 13}, ns[] = {1, 17, 100};
        static const int ncs[] = {1, 15, 17, 32, 33, 48, 49, 64, 65, 130}; /* 1-4 vectors */
        r1_isa rp = pi == 0 ? best : pi == 1 ? R1_ISA_AVX2 : R1_ISA_PORTABLE;
        if (pi > 0 && best <= rp)
            continue;
        r1_isa_set(rp, &err);
        int can = r1_isa_active() == rp, exact = 1, tail = 1, cases = 0;
        int ldp = 103, ldv = 133, ldo = 140;
        float *p = malloc(sizeof(float) * 13 * ldp), *v = malloc(sizeof(float) * 100 * ldv);
        float *o = malloc(sizeof(float) * 13 * ldo);
        for (int i = 0; i < 13 * ldp; i++)
            p[i] = unif();
        for (int i = 0; i < 100 * ldv; i++)
            v[i] = unif();
        for (int a = 0; can && a < 5; a++)
            for (int b = 0; b < 3; b++)
                for (int c = 0; c < 10; c++) {
                    int R = rs[a], n = ns[b], nc = ncs[c];
                    for (int i = 0; i < 13 * ldo; i++)
                        o[i] = CANARY;
                    r1__pv_rows(o, ldo, p, ldp, v, ldv, R, n, nc);
                    for (int r = 0; r < R; r++) {
                        for (int q = 0; q < nc; q++) {
                            float acc = 0;
                            for (int t = 0; t < n; t++)
                                acc = fmaf(p[r * ldp + t], v[t * ldv + q], acc);
                            exact &= o[r * ldo + q] == acc;
                        }
                        for (int q = nc; q < ldo; q++)
                            tail &= o[r * ldo + q] == CANARY;
                    }
                    for (int i = R * ldo; i < 13 * ldo; i++)
                        tail &= o[i] == CANARY;
                    cases++;
                }
        if (can) {
            ok(cases == 150 && exact, "P·V rows, %s: %d shapes, each output the fp32 FMA chain in "
               "t order, bit for bit", r1_isa_name(rp), cases);
            ok(tail, "P·V rows, %s: nothing written past the columns or the rows",
               r1_isa_name(rp));
        } else
            skip("P·V rows: path %s has no kernel for them", r1_isa_name(rp));
        r1_isa_set(best, &err);
        free(p), free(v), free(o);
    }

    /* degenerate sizes */
    float c[4] = {1, 2, 3, 4};
    r1_gop z = {c, 1, 0, 0};
    r1__gemm16(c, 2, 2, 2, 0, z, z, 1, NULL);
    ok(c[0] == 1 && c[3] == 4, "K = 0 accumulating leaves C alone");
    r1__gemm16(c, 2, 2, 2, 0, z, z, 0, NULL);
    ok(c[0] == 0 && c[1] == 0 && c[2] == 0 && c[3] == 0, "K = 0 storing zeroes C");

    for (int i = 0; i < nshapes; i++) {
        free(port[i]);
        drop(&dd[i]);
    }
    return done_testing();
}
