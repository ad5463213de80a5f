/* bench_fp8.c — BF16 and FP8 training against fp32, for `make bench` (evidence, not a test: it
 * asserts nothing).  The same seeded pretraining run — same initial weights, same batches, same
 * optimizer — once per mode: fp32, BF16 mixed precision, fine-grained FP8 (1x128 tiles, 128x128
 * blocks, as in DeepSeek-V3; "emulated": by quantise-dequantise-sgemm instead of through BF16)
 * and per-tensor FP8 — plus fp32 from another initial seed, which shows how far
 * two fp32 runs drift apart by chance, and fp32 from the same weights each moved by one ulp
 * ("ulp"), which shows how far rounding alone moves a run: the differences BF16 and FP8
 * make are roundings too, so a distance below that one is not a difference a run can show.  Prints the training loss every N steps side by side,
 * then the relative difference of the final and of the mean loss against fp32 (DeepSeek-V3
 * reports < 0.25% for fine-grained FP8 against BF16), and the time per step.  "bf16m" adds
 * fine-grained FP8 with AdamW's moments kept in bf16, as DeepSeek-V3 keeps them.
 *
 *   bench_fp8 [--preset tiny|small] [--task add|seq] [--steps N] [--batch B] [--seq T]
 *             [--every N] [--lr X] [--seed S] [--threads N]
 *             [--modes off,bf16,tiles,tensor,seed,ulp[,emulated,bf16m]]
 *   bench_fp8 outliers
 *   bench_fp8 gemm
 *
 * `outliers` is the tensor-level view: the quantisation error of activations [256, 512] with
 * outliers of growing size, 1x128 tiles against one scale per tensor.  `gemm` times the GEMM
 * with FP8 weights that decoding uses (r1_matmul_fp8) beside sgemm (fp32 weights) and
 * r1_matmul_bf16 on the generation shapes, one thread, best of two rounds, GFLOP/s.
 *
 * Tasks: "add" is pretraining text — worked additions (r1_tasks.h, difficulty 1, English and
 * Spanish) in the chat format, concatenated and cut into windows of T tokens; "seq" is
 * t_train's arithmetic sequences mod 16.  "final" is the mean of the last 10 steps' losses
 * (one step's loss is one batch's, which is noisy), "mean" the mean over all steps. */
#include <config.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "r1_bf16.h"
#include "r1_fp8.h"
#include "r1_optim.h"
#include "r1_rng.h"
#include "r1_tasks.h"
#include "r1_tokenizer.h"

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

/* A deterministic token stream. */
typedef struct {
    int task_add; /* 1: worked additions; 0: arithmetic sequences */
    r1_rng rng;
    uint64_t next_seed;
    const r1_task *add;
    r1_tokenizer *tok;
    int32_t buf[1024];
    int len, at;
} stream;

static void stream_init(stream *s, int task_add, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    s->task_add = task_add;
    r1_rng_seed(&s->rng, seed);
    s->next_seed = seed * 1000003u;
    if (task_add) {
        r1_task_find(&s->add, "add", NULL);
        s->tok = r1_tokenizer_new_builtin();
    }
}

static int32_t stream_next(stream *s)
{
    while (s->at == s->len) {
        r1_task_sample smp;
        r1_lang lang = r1_rng_below(&s->rng, 2) ? R1_LANG_ES : R1_LANG_EN;
        r1_task_generate(s->add, s->next_seed++, 1, lang, &smp, NULL);
        int n = 0, a = 0;
        r1_tokenizer_encode_chat(s->tok, smp.prompt, smp.reasoning, smp.answer, s->buf,
                                 (int)(sizeof s->buf / sizeof s->buf[0]), &n, &a, NULL);
        s->len = n;
        s->at = 0;
    }
    return s->buf[s->at++];
}

static void batch(stream *s, int32_t *tok, int B, int T)
{
    for (int b = 0; b < B; b++) {
        if (s->task_add) {
            for (int t = 0; t < T; t++)
                tok[b * T + t] = stream_next(s);
        } else {
            int x = (int)r1_rng_below(&s->rng, 16), d = 1 + (int)r1_rng_below(&s->rng, 3);
            for (int t = 0; t < T; t++)
                tok[b * T + t] = 3 + (x + d * t) % 16;
        }
    }
}

/* One run: losses[steps] of the total loss (main + 0.3 MTP); returns seconds per step. */
static double run(const char *preset, r1_precision prec, int emulate, int bf16m, int nudge,
                  int task_add, int steps, int B, int T, float lr, uint64_t seed,
                  uint64_t data_seed, double *losses)
{
    r1_config c;
    r1_model *m;
    r1_adamw *o;
    r1_error err = {0};
    if (r1_config_preset(&c, preset, &err) || r1_model_new(&m, &c, &err)) {
        fprintf(stderr, "bench_fp8: %s\n", err.msg);
        exit(1);
    }
    r1_model_init(m, seed);
    if (nudge) { /* every weight one ulp away, up and down in turn */
        float *w = r1_model_params(m);
        for (int i = 0; i < r1_model_nparams(m); i++) {
            const r1_param *p = r1_model_param(m, i);
            for (size_t k = 0; k < p->numel; k++)
                w[p->offset + k] = nextafterf(w[p->offset + k], k & 1 ? INFINITY : -INFINITY);
        }
    }
    r1_model_set_precision(m, prec);
    r1_model_set_fp8_emulation(m, emulate);
    r1_adamw_cfg oc = r1_adamw_defaults();
    oc.lr = lr;
    oc.warmup = steps / 10;
    oc.total = steps;
    oc.bf16_moments = bf16m;
    r1_adamw_new(&o, m, &oc, NULL);
    stream s;
    stream_init(&s, task_add, data_seed + 1);
    int32_t *tok = malloc(sizeof(int32_t) * B * T);
    double t0 = now();
    for (int i = 0; i < steps; i++) {
        batch(&s, tok, B, T);
        r1_loss L;
        r1_model_zero_grad(m);
        if (r1_model_forward(m, tok, B, T, NULL, &L, &err) || r1_model_backward(m, &err)) {
            fprintf(stderr, "bench_fp8: %s\n", err.msg);
            exit(1);
        }
        r1_adamw_step(o, m, NULL);
        r1_model_balance_update(m, 1e-3f);
        losses[i] = L.loss;
    }
    double dt = (now() - t0) / steps;
    free(tok);
    r1_tokenizer_free(s.tok);
    r1_adamw_free(o);
    r1_model_free(m);
    return dt;
}

/* x[256, 512], normal with std 1, where the outliers (channels 5, 40, 90 — all in the first
 * 128-channel tile — or tokens 7, 100, 200) are multiplied by X; out[2] gets the relative RMS
 * error of Q(x) over the ordinary values, with 1x128 tiles and with one scale per tensor. */
static void outlier_err(double X, int tokens, float *x, float *q, double *out)
{
    enum { N = 256, K = 512 };
    r1_rng r;
    r1_rng_seed(&r, 3);
    for (int i = 0; i < N * K; i++)
        x[i] = (float)r1_rng_normal(&r);
    static const int which[3][2] = {{5, 7}, {40, 100}, {90, 200}};
    for (int j = 0; j < 3; j++)
        for (int i = 0; i < (tokens ? K : N); i++)
            x[tokens ? which[j][1] * K + i : i * K + which[j][0]] *= (float)X;
    for (int mode = 0; mode < 2; mode++) {
        if (mode == 0)
            r1_fp8_qdq_tiles(q, x, N, K);
        else
            r1_fp8_qdq_tensor(q, x, (size_t)N * K);
        double d = 0, s = 0;
        for (int n = 0; n < N; n++)
            for (int c = 0; c < K; c++) {
                int odd = tokens ? n == 7 || n == 100 || n == 200 : c == 5 || c == 40 || c == 90;
                double v = x[n * K + c], e = q[n * K + c] - v;
                if (!odd)
                    d += e * e, s += v * v;
            }
        out[mode] = sqrt(d / s);
    }
}

static void outliers(void)
{
    float *x = malloc(sizeof(float) * 256 * 512), *q = malloc(sizeof(float) * 256 * 512);
    printf("activations [256 tokens, 512 channels], normal; the relative RMS error of the "
           "ordinary values\n");
    printf("%10s | %11s %11s | %11s %11s\n", "", "3 channels", "x X", "3 tokens", "x X");
    printf("%10s | %11s %11s | %11s %11s\n", "X", "1x128 tiles", "per tensor", "1x128 tiles",
           "per tensor");
    for (double X = 1; X <= 1e6; X *= 10) {
        double c[2], t[2];
        outlier_err(X, 0, x, q, c);
        outlier_err(X, 1, x, q, t);
        printf("%10.0e | %10.2f%% %10.2f%% | %10.2f%% %10.2f%%\n", X, 100 * c[0], 100 * c[1],
               100 * t[0], 100 * t[1]);
    }
    printf("(E4M3's 3 mantissa bits alone give about 2.6%%; E4M3 spans 2^-9 .. 448)\n");
    free(x);
    free(q);
}

/* kind 0: sgemm (fp32 weights), 1: r1_matmul_bf16, 2: r1_matmul_fp8; GFLOP/s over secs. */
static double gemm_rate(int kind, int N, int Ci, int Co, const float *x, const float *wf,
                        const uint16_t *wb, const uint8_t *w8, const float *sc, float *out,
                        double secs)
{
    long reps = 0;
    double t0 = now(), t;
    do {
        if (kind == 0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, Co, Ci, 1, x, Ci, wf, Ci, 0,
                        out, Co);
        else if (kind == 1)
            r1_matmul_bf16(out, x, wb, N, Ci, Co, 0);
        else
            r1_matmul_fp8(out, x, w8, sc, N, Ci, Co, 0);
        reps++;
        t = now() - t0;
    } while (t < secs);
    return 2.0 * N * Ci * Co * reps / t * 1e-9;
}

static void gemm(void)
{
    openblas_set_num_threads(1);
    r1_set_threads(1); /* r1_matmul_bf16 cuts larger products into pieces side by side */
    int simd = r1_fp8_set_simd(1);
    printf("r1_matmul_fp8 path: %s\n", simd ? "AVX-512 (vcvtph2ps + FMA)" : "portable C");
    printf("%-4s %-10s %8s %8s %8s %8s %9s\n", "N", "Ci x Co", "sgemm", "bf16", "fp8",
           "fp8/f32", "portable");
    static const int Ns[] = {1, 16},
                     shapes[][2] = {{192, 512}, {512, 1408}, {1408, 512}, {192, 64}};
    r1_rng rng;
    r1_rng_seed(&rng, 1);
    for (size_t a = 0; a < 2; a++)
        for (size_t k = 0; k < 4; k++) {
            int N = Ns[a], Ci = shapes[k][0], Co = shapes[k][1];
            int nsc = ((Co + 127) / 128) * ((Ci + 127) / 128);
            float *x = malloc(sizeof(float) * N * Ci), *wf = malloc(sizeof(float) * Co * Ci);
            float *out = malloc(sizeof(float) * N * Co), *sc = malloc(sizeof(float) * nsc);
            uint16_t *wb = malloc(sizeof(uint16_t) * Co * Ci);
            uint8_t *w8 = malloc((size_t)Co * Ci);
            for (int i = 0; i < N * Ci; i++)
                x[i] = (float)(r1_rng_uniform(&rng) - 0.5);
            for (int i = 0; i < Co * Ci; i++)
                wf[i] = (float)(r1_rng_uniform(&rng) - 0.5) * 0.1f;
            r1_bf16_from_f32(wb, wf, (size_t)Co * Ci);
            r1_fp8_quantize_blocks(w8, sc, wf, Co, Ci);
            double best[3] = {0, 0, 0};
            for (int round = 0; round < 2; round++)
                for (int kind = 0; kind < 3; kind++) {
                    double g = gemm_rate(kind, N, Ci, Co, x, wf, wb, w8, sc, out, 0.1);
                    best[kind] = g > best[kind] ? g : best[kind];
                }
            r1_fp8_set_simd(0);
            double port = gemm_rate(2, N, Ci, Co, x, wf, wb, w8, sc, out, 0.1);
            r1_fp8_set_simd(1);
            char shape[32];
            snprintf(shape, sizeof shape, "%dx%d", Ci, Co);
            printf("%-4d %-10s %8.1f %8.1f %8.1f %7.2fx %9.1f\n", N, shape, best[0], best[1],
                   best[2], best[2] / best[0], port);
            fflush(stdout);
            free(x), free(wf), free(out), free(sc), free(wb), free(w8);
        }
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "outliers")) {
        outliers();
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "gemm")) {
        gemm();
        return 0;
    }
    const char *preset = arg(argc, argv, "--preset", "tiny");
    const char *task = arg(argc, argv, "--task", "add");
    int steps = atoi(arg(argc, argv, "--steps", "200"));
    int B = atoi(arg(argc, argv, "--batch", "8")), T = atoi(arg(argc, argv, "--seq", "128"));
    int every = atoi(arg(argc, argv, "--every", "20"));
    float lr = (float)atof(arg(argc, argv, "--lr", "2e-3"));
    uint64_t seed = (uint64_t)atol(arg(argc, argv, "--seed", "1"));
    const char *modes_s = arg(argc, argv, "--modes", "off,bf16,tiles,tensor,seed,ulp");
    r1_set_threads(atoi(arg(argc, argv, "--threads", "2")));
    if (steps < 1 || B < 1 || T < 2 || every < 1) {
        fprintf(stderr, "bench_fp8: bad sizes\n");
        return 2;
    }
    /* the runs: mode, init seed offset, name */
    enum { NRUNS = 8 };
    struct {
        r1_precision prec;
        int emulate, dseed, bf16m, nudge;
        const char *name;
    } runs[NRUNS], all[NRUNS] = {{R1_PREC_FP32, 0, 0, 0, 0, "fp32"},
                                 {R1_PREC_BF16, 0, 0, 0, 0, "bf16"},
                                 {R1_PREC_FP8, 0, 0, 0, 0, "fp8 tiles"},
                                 {R1_PREC_FP8, 1, 0, 0, 0, "fp8 emulated"},
                                 {R1_PREC_FP8_TENSOR, 0, 0, 0, 0, "fp8 tensor"},
                                 {R1_PREC_FP32, 0, 1, 0, 0, "fp32 seed+1"},
                                 {R1_PREC_FP32, 0, 0, 0, 1, "fp32 1 ulp"},
                                 {R1_PREC_FP8, 0, 0, 1, 0, "fp8+bf16 m,v"}};
    const char *keys[NRUNS] = {"off",  "bf16", "tiles", "emulated",
                               "tensor", "seed", "ulp", "bf16m"};
    int nm = 0;
    for (int k = 0; k < NRUNS; k++) { /* whole words of the comma list */
        size_t n = strlen(keys[k]);
        for (const char *p = modes_s; (p = strstr(p, keys[k])); p += n)
            if ((p == modes_s || p[-1] == ',') && (p[n] == ',' || !p[n])) {
                runs[nm++] = all[k];
                break;
            }
    }
    double *loss[NRUNS], sec[NRUNS];
    for (int k = 0; k < nm; k++) {
        loss[k] = malloc(sizeof(double) * steps);
        /* the data stream stays the same: only the model's initial weights move */
        sec[k] = run(preset, runs[k].prec, runs[k].emulate, runs[k].bf16m, runs[k].nudge,
                     !strcmp(task, "add"), steps, B, T, lr, seed + (uint64_t)runs[k].dseed * 7919,
                     seed, loss[k]);
    }
    printf("preset %s, task %s, %d steps of %dx%d tokens, lr %g, seed %llu\n", preset, task,
           steps, B, T, (double)lr, (unsigned long long)seed);
    printf("%6s", "step");
    for (int k = 0; k < nm; k++)
        printf(" %12s", runs[k].name);
    printf("\n");
    for (int i = 0; i < steps; i++) {
        if (i % every && i != steps - 1)
            continue;
        printf("%6d", i + 1);
        for (int k = 0; k < nm; k++)
            printf(" %12.4f", loss[k][i]);
        printf("\n");
    }
    double fin[NRUNS], mean[NRUNS];
    for (int k = 0; k < nm; k++) {
        int last = steps < 10 ? steps : 10;
        fin[k] = mean[k] = 0;
        for (int i = steps - last; i < steps; i++)
            fin[k] += loss[k][i] / last;
        for (int i = 0; i < steps; i++)
            mean[k] += loss[k][i] / steps;
    }
    printf("%-12s %10s %10s %12s %12s %10s\n", "mode", "final", "mean", "final vs fp32",
           "mean vs fp32", "s/step");
    for (int k = 0; k < nm; k++) {
        const char *name = runs[k].name;
        if (runs[0].prec == R1_PREC_FP32 && !runs[0].dseed && !runs[0].nudge && k > 0)
            printf("%-12s %10.4f %10.4f %+11.3f%% %+11.3f%% %10.3f\n", name, fin[k], mean[k],
                   100 * (fin[k] - fin[0]) / fin[0], 100 * (mean[k] - mean[0]) / mean[0], sec[k]);
        else
            printf("%-12s %10.4f %10.4f %12s %12s %10.3f\n", name, fin[k], mean[k], "", "",
                   sec[k]);
    }
    for (int k = 0; k < nm; k++)
        free(loss[k]);
    return 0;
}
