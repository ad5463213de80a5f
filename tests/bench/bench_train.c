/* bench_train.c — training and sgemm throughput of libr1, for `make bench` (a benchmark, not a
 * test: it asserts nothing and its numbers depend on the machine).
 *
 *   bench_train sgemm [--threads N]
 *   bench_train train --preset tiny|small --batch B --seq T [--steps N] [--threads N]
 *   bench_train cut
 *
 * `train` times full steps: forward + backward (main + 0.3·MTP loss) + AdamW, after 2 warm-up
 * steps, and prints one line: "r1lab tokens/s=… step_ms=… gflops=…". */
#include <config.h>

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "r1_kernels.h"
#include "r1_fp8.h"
#include "r1_model.h"
#include "r1_optim.h"
#include "r1_rng.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static const char *arg(int argc, char **argv, const char *name, const char *def)
{
    for (int i = 0; i + 1 < argc; i++)
        if (!strcmp(argv[i], name))
            return argv[i + 1];
    return def;
}

static void sgemm_bench(int threads)
{
    r1_set_threads(threads);
    int shapes[][3] = {{1024, 1024, 1024}, {2048, 192, 512}, {64, 192, 64}, {2048, 512, 1408}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int M = shapes[s][0], K = shapes[s][1], N = shapes[s][2];
        float *a = calloc((size_t)M * K, 4), *b = calloc((size_t)K * N, 4);
        float *c = calloc((size_t)M * N, 4);
        for (size_t i = 0; i < (size_t)M * K; i++)
            a[i] = (float)(i % 7) * 0.1f;
        for (size_t i = 0; i < (size_t)K * N; i++)
            b[i] = (float)(i % 5) * 0.1f;
        int reps = 0;
        double t0 = now(), t;
        do {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1, a, K, b, N, 0, c,
                        N);
            reps++;
            t = now() - t0;
        } while (t < 0.3);
        printf("sgemm %dx%dx%d threads=%d gflops=%.1f\n", M, K, N, threads,
               2.0 * M * N * K * reps / t * 1e-9);
        free(a), free(b), free(c);
    }
}

/* Seconds per call of fn, over at least 0.1 s. */
static double per_call(void (*fn)(void *), void *ctx)
{
    int reps = 0;
    double t0 = now(), t;
    do {
        fn(ctx);
        reps++;
        t = now() - t0;
    } while (t < 0.1);
    return t / reps;
}

/* The best of 7 alternating rounds of a and b (a shared, noisy machine slows some rounds). */
static void best_of(void (*a)(void *), void (*b)(void *), void *ctx, double *ta, double *tb)
{
    *ta = *tb = 1e30;
    for (int r = 0; r < 7; r++) {
        double x = per_call(a, ctx), y = per_call(b, ctx);
        *ta = x < *ta ? x : *ta;
        *tb = y < *tb ? y : *tb;
    }
}

typedef struct {
    float *in, *w, *out, *dout, *din, *dw;
    int N, Ci, Co;
} cut_job;

static void engine_fb(void *p) /* the engine's products: r1__gemm32, or sgemm cut by shape */
{
    cut_job *j = p;
    r1_matmul_fwd(j->out, j->in, j->w, j->N, j->Ci, j->Co, 0);
    r1_matmul_bwd(j->din, j->dw, j->dout, j->in, j->w, j->N, j->Ci, j->Co);
}

static void whole_fb(void *p) /* the same products as one OpenBLAS call each */
{
    cut_job *j = p;
    if (j->N <= 4 && j->Co >= 512)
        for (int n = 0; n < j->N; n++)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, j->Co, j->Ci, 1, j->w, j->Ci,
                        j->in + (size_t)n * j->Ci, 1, 0, j->out + (size_t)n * j->Co, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->N, j->Co, j->Ci, 1, j->in, j->Ci,
                    j->w, j->Ci, 0, j->out, j->Co);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, j->N, j->Ci, j->Co, 1, j->dout, j->Co,
                j->w, j->Ci, 1, j->din, j->Ci);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, j->Co, j->Ci, j->N, 1, j->dout, j->Co,
                j->in, j->Ci, 1, j->dw, j->Ci);
}

/* The engine's linear layer on one thread — r1lab's fp32 GEMM on the AVX-512 paths, else
 * sgemm cut into pieces by shape (so that results do not depend on the thread count) — against
 * one OpenBLAS call per product: forward + backward at the training shapes of the tiny and
 * small presets, and at 1 and 4 rows (an expert that got few tokens; decoding itself runs on
 * the dot products, not here). */
static void cut_bench(void)
{
    r1_set_threads(1);
    int shapes[][3] = {{4096, 192, 512}, {4096, 512, 192}, {4096, 192, 192}, {2048, 512, 1408},
                       {1, 192, 512}, {1, 512, 1408}, {4, 512, 1408}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        cut_job j = {0};
        j.N = shapes[s][0], j.Ci = shapes[s][1], j.Co = shapes[s][2];
        size_t ni = (size_t)j.N * j.Ci, nw = (size_t)j.Co * j.Ci, no = (size_t)j.N * j.Co;
        j.in = calloc(ni, 4), j.din = calloc(ni, 4), j.w = calloc(nw, 4), j.dw = calloc(nw, 4);
        j.out = calloc(no, 4), j.dout = calloc(no, 4);
        for (size_t i = 0; i < ni; i++)
            j.in[i] = (float)(i % 7) * 0.1f;
        for (size_t i = 0; i < nw; i++)
            j.w[i] = (float)(i % 5) * 0.1f;
        for (size_t i = 0; i < no; i++)
            j.dout[i] = (float)(i % 3) * 0.1f;
        double a, b;
        best_of(engine_fb, whole_fb, &j, &a, &b);
        double fl = 6.0 * j.N * j.Ci * j.Co;
        printf("linear %dx%dx%d cut_gflops=%.1f whole_gflops=%.1f cut/whole=%.2f\n", j.N, j.Ci,
               j.Co, fl / a * 1e-9, fl / b * 1e-9, b / a);
        free(j.in), free(j.din), free(j.w), free(j.dw), free(j.out), free(j.dout);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_train sgemm|cut|train [options]\n");
        return 2;
    }
    int threads = atoi(arg(argc, argv, "--threads", "2"));
    if (!strcmp(argv[1], "sgemm")) {
        sgemm_bench(threads);
        return 0;
    }
    if (!strcmp(argv[1], "cut")) {
        cut_bench();
        return 0;
    }
    const char *preset = arg(argc, argv, "--preset", "tiny");
    int B = atoi(arg(argc, argv, "--batch", "16")), T = atoi(arg(argc, argv, "--seq", "128"));
    int steps = atoi(arg(argc, argv, "--steps", "5"));
    r1_set_threads(threads);
    r1_error err = {0};
    r1_config c;
    r1_model *m;
    r1_adamw *o;
    if (r1_config_preset(&c, preset, &err) || r1_model_new(&m, &c, &err) ||
        r1_adamw_new(&o, m, NULL, &err)) {
        fprintf(stderr, "bench_train: %s\n", err.msg);
        return 1;
    }
    r1_model_init(m, 1);
    const char *prec = arg(argc, argv, "--precision", "fp32");
    if (!strcmp(prec, "bf16"))
        r1_model_set_precision(m, R1_PREC_BF16);
    else if (!strcmp(prec, "fp8") || !strcmp(prec, "fp8-emulated"))
        r1_model_set_precision(m, R1_PREC_FP8);
    else if (strcmp(prec, "fp32")) {
        fprintf(stderr, "bench_train: --precision %s: expected fp32, bf16, fp8 or fp8-emulated\n",
                prec);
        return 2;
    }
    r1_model_set_fp8_emulation(m, !strcmp(prec, "fp8-emulated"));
    int32_t *tok = malloc(sizeof(int32_t) * B * T);
    r1_rng r;
    r1_rng_seed(&r, 2);
    for (int i = 0; i < B * T; i++)
        tok[i] = (int32_t)r1_rng_below(&r, c.vocab_size);
    double t0 = 0;
    for (int s = 0; s < steps + 2; s++) {
        if (s == 2)
            t0 = now();
        r1_model_zero_grad(m);
        if (r1_model_forward(m, tok, B, T, NULL, NULL, &err) || r1_model_backward(m, &err)) {
            fprintf(stderr, "bench_train: %s\n", err.msg);
            return 1;
        }
        r1_adamw_step(o, m, NULL);
    }
    double dt = now() - t0;
    double tps = (double)B * T * steps / dt;
    printf("r1lab tokens/s=%.1f step_ms=%.2f gflops=%.1f\n", tps, dt / steps * 1e3,
           3 * r1_model_flops_per_token(m, T) * tps * 1e-9);
    free(tok);
    r1_adamw_free(o);
    r1_model_free(m);
    return 0;
}
