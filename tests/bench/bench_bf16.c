/* bench_bf16.c — r1_matmul_bf16 (bf16 weights) beside OpenBLAS sgemm (fp32 weights) on the
 * shapes of generation, one thread each, for `make bench` (a benchmark, not a test: it asserts
 * nothing and its numbers depend on the machine and on what else runs on it).
 *
 *   bench_bf16 [--time SECONDS]
 *
 * For N in {1, 16} tokens and four (Ci, Co) layer shapes it prints one row: GFLOP/s of sgemm,
 * of r1_matmul_bf16 on its default path, their ratio, and of the portable path; for N = 1 also
 * sgemv, since OpenBLAS's sgemm with one row is not always its best matrix-vector product.
 * sgemm and r1_matmul_bf16 are timed in two alternating rounds of SECONDS/2 (default 0.2 s in
 * all) and keep their best round, so a burst of load from elsewhere hurts both alike. */
#include <config.h>

#include <cblas.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "r1.h"
#include "r1_bf16.h"
#include "r1_rng.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

typedef struct {
    int N, Ci, Co;
    const float *x, *wf;
    const uint16_t *wb;
    float *out;
} job;

/* kind 0: sgemm, 1: r1_matmul_bf16, 2: sgemv (N = 1) */
static void run(const job *j, int kind)
{
    if (kind == 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->N, j->Co, j->Ci, 1, j->x, j->Ci,
                    j->wf, j->Ci, 0, j->out, j->Co);
    else if (kind == 1)
        r1_matmul_bf16(j->out, j->x, j->wb, j->N, j->Ci, j->Co, 0);
    else
        cblas_sgemv(CblasRowMajor, CblasNoTrans, j->Co, j->Ci, 1, j->wf, j->Ci, j->x, 1, 0, j->out,
                    1);
}

/* GFLOP/s of `kind` over `secs` seconds (at least one call). */
static double rate(const job *j, int kind, double secs)
{
    long reps = 0;
    double t0 = now(), t;
    do {
        run(j, kind);
        reps++;
        t = now() - t0;
    } while (t < secs);
    return 2.0 * j->N * j->Ci * j->Co * reps / t * 1e-9;
}

int main(int argc, char **argv)
{
    double secs = 0.2;
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--time"))
            secs = atof(argv[i + 1]);
    openblas_set_num_threads(1);
    r1_set_threads(1); /* r1_matmul_bf16 cuts larger products into pieces side by side */
    int simd = r1_bf16_set_simd(1);
    printf("r1_matmul_bf16 path: %s\n", simd ? "AVX-512 BF16 (vdpbf16ps)" : "portable C");
    printf("%-4s %-10s %8s %8s %8s %8s %9s\n", "N", "Ci x Co", "sgemm", "bf16", "ratio", "sgemv",
           "portable");

    static const int Ns[] = {1, 16},
                     shapes[][2] = {{192, 512}, {512, 1408}, {1408, 512}, {192, 64}};
    r1_rng rng;
    r1_rng_seed(&rng, 1);
    for (size_t a = 0; a < sizeof Ns / sizeof *Ns; a++)
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
            int N = Ns[a], Ci = shapes[s][0], Co = shapes[s][1];
            float *x = malloc(sizeof(float) * N * Ci), *wf = malloc(sizeof(float) * Co * Ci);
            float *out = malloc(sizeof(float) * N * Co);
            uint16_t *wb = malloc(sizeof(uint16_t) * Co * Ci);
            if (!x || !wf || !out || !wb) {
                fprintf(stderr, "bench_bf16: out of memory\n");
                return 1;
            }
            for (int i = 0; i < N * Ci; i++)
                x[i] = (float)(r1_rng_uniform(&rng) - 0.5);
            for (int i = 0; i < Co * Ci; i++)
                wf[i] = (float)(r1_rng_uniform(&rng) - 0.5) * 0.1f;
            r1_bf16_from_f32(wb, wf, (size_t)Co * Ci);
            job j = {N, Ci, Co, x, wf, wb, out};
            double best[2] = {0, 0};
            run(&j, 0), run(&j, 1); /* warm the caches and OpenBLAS's buffers */
            for (int round = 0; round < 2; round++)
                for (int kind = 0; kind < 2; kind++) {
                    double g = rate(&j, kind, secs / 2);
                    best[kind] = g > best[kind] ? g : best[kind];
                }
            char gemv[16] = "-", shape[32];
            if (N == 1)
                snprintf(gemv, sizeof gemv, "%.1f", rate(&j, 2, secs / 2));
            r1_bf16_set_simd(0);
            double port = rate(&j, 1, secs / 2);
            r1_bf16_set_simd(1);
            snprintf(shape, sizeof shape, "%dx%d", Ci, Co);
            printf("%-4d %-10s %8.1f %8.1f %7.2fx %8s %9.1f\n", N, shape, best[0], best[1],
                   best[1] / best[0], gemv, port);
            fflush(stdout);
            free(x), free(wf), free(out), free(wb);
        }
    return 0;
}
