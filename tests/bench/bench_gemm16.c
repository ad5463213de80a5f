/* bench_gemm16.c — this core's arithmetic peaks, and the GEMMs of BF16 training against them,
 * for `make bench` (a benchmark, not a test: it asserts nothing and its numbers depend on the
 * machine and on what else runs on it).
 *
 *   bench_gemm16 peak     one line: peak_fp32=GFLOP/s peak_bf16=GFLOP/s|- peak_amx=GFLOP/s|-
 *   bench_gemm16 gemm     per training shape: sgemm, r1lab's fp32 GEMM (r1__gemm32, "-" where
 *                         the path has none) and r1__gemm16 on every kernel path
 *   bench_gemm16 gemm-tiny   the same for tiny's shapes in a GRPO step (64 sequences of ~85
 *                         tokens in micro-batches of 16: 1360 tokens, 340 per routed expert)
 *
 * The peaks are what one core's vector units do on independent chains of multiply-adds with
 * no memory traffic: FMA on the widest fp32 vectors the CPU has (AVX-512 or AVX2), and
 * vdpbf16ps (32 bf16 products per instruction) where it has AVX-512 BF16, and tdpbf16ps on
 * tiles already loaded (16x16 outputs over 32 k each) where Linux grants AMX.  GEMM rows time
 * each product in alternating rounds and keep the best, so a burst of load from elsewhere
 * hurts all alike. */
#include <config.h>

#include <cblas.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "r1.h"
#include "r1_bf16.h"
#include "r1_gemm16.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define X86 1
#endif

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static volatile float sink;

#define CHAINS 16 /* enough independent chains for 2 pipes x 6-cycle latency */
#ifdef X86
__attribute__((target("avx512f"))) static void fma512(long n)
{
    __m512 a[CHAINS], x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
    for (int k = 0; k < CHAINS; k++)
        a[k] = _mm512_set1_ps((float)k);
    for (long i = 0; i < n; i++) {
#pragma GCC unroll 16
        for (int k = 0; k < CHAINS; k++)
            a[k] = _mm512_fmadd_ps(a[k], x, y);
    }
    for (int k = 0; k < CHAINS; k++)
        sink += _mm512_reduce_add_ps(a[k]);
}

__attribute__((target("avx2,fma"))) static void fma256(long n)
{
    __m256 a[12], x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
    for (int k = 0; k < 12; k++)
        a[k] = _mm256_set1_ps((float)k);
    for (long i = 0; i < n; i++) {
#pragma GCC unroll 12
        for (int k = 0; k < 12; k++)
            a[k] = _mm256_fmadd_ps(a[k], x, y);
    }
    float o[8];
    for (int k = 0; k < 12; k++) {
        _mm256_storeu_ps(o, a[k]);
        sink += o[0];
    }
}

#ifdef HAVE_AVX512BF16_INTRIN
__attribute__((target("avx512f,avx512bf16"))) static void dot512(long n)
{
    __m512 a[CHAINS];
    __m512bh x = (__m512bh)_mm512_set1_epi32(0x3f803f80), y = (__m512bh)_mm512_set1_epi32(0x33d633d6);
    for (int k = 0; k < CHAINS; k++)
        a[k] = _mm512_set1_ps((float)k);
    for (long i = 0; i < n; i++) {
#pragma GCC unroll 16
        for (int k = 0; k < CHAINS; k++)
            a[k] = _mm512_dpbf16_ps(a[k], x, y);
    }
    for (int k = 0; k < CHAINS; k++)
        sink += _mm512_reduce_add_ps(a[k]);
}
#endif
#endif

/* GFLOP/s of fn(n), best of 5 rounds of about 0.05 s; flops_per = flops per unit of n. */
#ifdef HAVE_AMX_INTRIN
/* tdpbf16ps on tiles already loaded: four independent 16x16 sums over 32 k each (16384 flops
 * an instruction), tiles 0-3 += 4-5 x 6-7, no memory traffic in the loop. */
__attribute__((target("amx-tile,amx-bf16"))) static void amx_tiles(long n)
{
    _Alignas(64) unsigned char cfg[64];
    static _Alignas(64) uint32_t ones[16 * 16];
    memset(cfg, 0, sizeof cfg);
    cfg[0] = 1; /* palette 1: 8 tiles of 16 rows x 64 bytes */
    for (int i = 0; i < 8; i++) {
        cfg[16 + 2 * i] = 64;
        cfg[48 + i] = 16;
    }
    for (int i = 0; i < 16 * 16; i++)
        ones[i] = 0x3f803f80u; /* (1, 1) */
    _tile_loadconfig(cfg);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_loadd(4, ones, 64);
    _tile_loadd(5, ones, 64);
    _tile_loadd(6, ones, 64);
    _tile_loadd(7, ones, 64);
    for (long i = 0; i < n; i++) {
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    static float out[16 * 16];
    _tile_stored(0, out, 64);
    _tile_release();
    sink = out[0];
}
#endif

static double rate(void (*fn)(long), double flops_per)
{
    long n = 1 << 16;
    double best = 0;
    for (int r = 0; r < 7; r++) {
        double t0 = now();
        fn(n);
        double dt = now() - t0;
        if (dt < 0.02) {
            n *= 4;
            r--;
            continue;
        }
        double g = n * flops_per / dt * 1e-9;
        best = g > best ? g : best;
    }
    return best;
}

static void peak(void)
{
    double f32 = 0, bf = 0;
    const char *how = "portable";
#ifdef X86
    if (r1_isa_cpu_has(R1_ISA_AVX512BF16) || __builtin_cpu_supports("avx512f")) {
        f32 = rate(fma512, CHAINS * 32.0);
        how = "avx512";
    } else if (r1_isa_cpu_has(R1_ISA_AVX2)) {
        f32 = rate(fma256, 12 * 16.0); /* 16 registers: 12 chains */
        how = "avx2";
    }
#ifdef HAVE_AVX512BF16_INTRIN
    if (r1_isa_cpu_has(R1_ISA_AVX512BF16))
        bf = rate(dot512, CHAINS * 64.0);
#endif
#endif
    printf("peak_fp32=%.1f (%s FMA) peak_bf16=", f32, how);
    if (bf > 0)
        printf("%.1f", bf);
    else
        printf("-");
    printf(" peak_amx=");
#ifdef HAVE_AMX_INTRIN
    if (r1_isa_cpu_has(R1_ISA_AMX)) {
        printf("%.1f\n", rate(amx_tiles, 4 * 16384.0));
        return;
    }
#endif
    printf("- (%s)\n", r1_isa_cpu_has(R1_ISA_AMX) ? "no kernels in this build" : "not in this CPU");
}

typedef struct {
    const char *name;
    int M, N, K, ta, tb; /* C[M,N] = A·B, A^T / B^T stored when ta / tb */
    int w16;             /* B is a weight: bf16, as training keeps it (else fp32 activations) */
} shape;

static void gemm(double seconds, int tiny)
{
    /* the linear layers of `small` (hidden 512, dense MLP 1408, 2048 tokens a step) and one
     * routed expert (128 wide, about 256 tokens) */
    static const shape small[] = {
        {"dense up, forward", 2048, 1408, 512, 0, 1, 1}, {"dense up, dX", 2048, 512, 1408, 0, 0, 1},
        {"dense up, dW", 1408, 512, 2048, 1, 0, 0},      {"q_b, forward", 2048, 512, 256, 0, 1, 1},
        {"expert up, forward", 256, 128, 512, 0, 1, 1},  {"expert up, dW", 128, 512, 256, 1, 0, 0},
        {NULL, 0, 0, 0, 0, 0, 0},
    };
    /* tiny's (hidden 192, dense MLP 512, experts 64 wide) at a GRPO micro-batch */
    static const shape tinys[] = {
        {"dense up, forward", 1360, 512, 192, 0, 1, 1}, {"dense up, dX", 1360, 192, 512, 0, 0, 1},
        {"dense up, dW", 512, 192, 1360, 1, 0, 0},      {"q_a, forward", 1360, 96, 192, 0, 1, 1},
        {"expert up, forward", 340, 64, 192, 0, 1, 1},  {"expert up, dX", 340, 192, 64, 0, 0, 1},
        {"expert up, dW", 64, 192, 340, 1, 0, 0},       {NULL, 0, 0, 0, 0, 0, 0},
    };
    const shape *shapes = tiny ? tinys : small;
    r1_isa best = r1_isa_best();
    printf("%-20s %16s %9s %11s", "product", "M x N x K", "sgemm", "r1lab_fp32");
    for (int p = best; p >= 0; p--)
        printf(" %11s", r1_isa_name((r1_isa)p));
    printf("\n");
    for (size_t s = 0; shapes[s].name; s++) {
        const shape *h = &shapes[s];
        size_t na = (size_t)h->M * h->K, nb = (size_t)h->K * h->N;
        float *a = malloc(sizeof(float) * na), *b = malloc(sizeof(float) * nb);
        float *c = malloc(sizeof(float) * (size_t)h->M * h->N);
        uint16_t *bh = malloc(2 * nb);
        for (size_t i = 0; i < na; i++)
            a[i] = (float)((i * 7919) % 1000) * 1e-3f - 0.5f;
        for (size_t i = 0; i < nb; i++)
            b[i] = (float)((i * 104729) % 1000) * 1e-3f - 0.5f;
        r1_bf16_from_f32(bh, b, nb);
        int lda = h->ta ? h->M : h->K, ldb = h->tb ? h->K : h->N;
        double flops = 2.0 * h->M * h->N * h->K, g[R1_ISA_COUNT + 2] = {0};
        for (int round = 0; round < 2; round++)
            for (int p = -2; p <= (int)best; p++) { /* -2: r1__gemm32, -1: sgemm */
                r1_error err;
                r1_isa_set(p >= 0 ? (r1_isa)p : best, &err);
                r1_gop A = {a, lda, h->ta, 0};
                if (p == -2 && !r1__gemm32_available())
                    continue;
                double t0 = now(), dt;
                int n = 0;
                do {
                    if (p == -2)
                        r1__gemm32(c, h->N, h->M, h->N, h->K, A, (r1_gop){b, ldb, h->tb, 0}, 0);
                    else if (p < 0)
                        cblas_sgemm(CblasRowMajor, h->ta ? CblasTrans : CblasNoTrans,
                                    h->tb ? CblasTrans : CblasNoTrans, h->M, h->N, h->K, 1, a,
                                    lda, b, ldb, 0, c, h->N);
                    else {
                        r1_gop B = {h->w16 ? (const void *)bh : b, ldb, h->tb, h->w16};
                        r1__gemm16(c, h->N, h->M, h->N, h->K, A, B, 0, NULL);
                    }
                    n++;
                } while ((dt = now() - t0) < seconds / 2 / (best + 3));
                double v = flops * n / dt * 1e-9;
                g[p + 2] = v > g[p + 2] ? v : g[p + 2];
            }
        r1_error err;
        r1_isa_set(best, &err);
        printf("%-20s %5d x%5d x%5d %9.1f", h->name, h->M, h->N, h->K, g[1]);
        if (g[0] > 0)
            printf(" %11.1f", g[0]);
        else
            printf(" %11s", "-");
        for (int p = best; p >= 0; p--)
            printf(" %11.1f", g[p + 2]);
        printf("\n");
        free(a), free(b), free(c), free(bh);
    }
}

int main(int argc, char **argv)
{
    r1_set_threads(1);
    if (argc >= 2 && !strcmp(argv[1], "peak")) {
        peak();
        return 0;
    }
    if (argc >= 2 && (!strcmp(argv[1], "gemm") || !strcmp(argv[1], "gemm-tiny"))) {
        gemm(argc >= 3 ? atof(argv[2]) : 1.0, !strcmp(argv[1], "gemm-tiny"));
        return 0;
    }
    fprintf(stderr, "usage: bench_gemm16 peak|gemm|gemm-tiny [SECONDS]\n");
    return 2;
}
