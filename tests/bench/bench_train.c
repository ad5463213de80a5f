/* bench_train.c — training and sgemm throughput of libr1, for `make bench` (a benchmark, not a
 * test: it asserts nothing and its numbers depend on the machine).
 *
 *   bench_train sgemm [--threads N]
 *   bench_train train --preset tiny|small --batch B --seq T [--steps N] [--threads N]
 *
 * `train` times full steps: forward + backward (main + 0.3·MTP loss) + AdamW, after 2 warm-up
 * steps, and prints one line: "r1lab tokens/s=… step_ms=… gflops=…". */
#include <config.h>

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_train sgemm|train [options]\n");
        return 2;
    }
    int threads = atoi(arg(argc, argv, "--threads", "2"));
    if (!strcmp(argv[1], "sgemm")) {
        sgemm_bench(threads);
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
