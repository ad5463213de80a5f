/* bench_fp8.c — FP8 training emulation against fp32, for `make bench` (evidence, not a test: it
 * asserts nothing).  The same seeded pretraining run — same initial weights, same batches, same
 * optimizer — once per mode: fp32, fine-grained FP8 (1x128 tiles, 128x128 blocks, as in
 * DeepSeek-V3) and per-tensor FP8.  Prints the training loss every N steps side by side, then
 * the relative difference of the final and of the mean loss against fp32 (DeepSeek-V3 reports
 * < 0.25% for fine-grained FP8 against BF16), and the time per step.
 *
 *   bench_fp8 [--preset tiny|small] [--task add|seq] [--steps N] [--batch B] [--seq T]
 *             [--every N] [--lr X] [--seed S] [--threads N] [--modes off,tiles,tensor]
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
static double run(const char *preset, r1_fp8_mode mode, int task_add, int steps, int B, int T,
                  float lr, uint64_t seed, double *losses)
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
    r1_model_set_fp8(m, mode);
    r1_adamw_cfg oc = r1_adamw_defaults();
    oc.lr = lr;
    oc.warmup = steps / 10;
    oc.total = steps;
    r1_adamw_new(&o, m, &oc, NULL);
    stream s;
    stream_init(&s, task_add, seed + 1);
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

int main(int argc, char **argv)
{
    const char *preset = arg(argc, argv, "--preset", "tiny");
    const char *task = arg(argc, argv, "--task", "add");
    int steps = atoi(arg(argc, argv, "--steps", "200"));
    int B = atoi(arg(argc, argv, "--batch", "8")), T = atoi(arg(argc, argv, "--seq", "128"));
    int every = atoi(arg(argc, argv, "--every", "20"));
    float lr = (float)atof(arg(argc, argv, "--lr", "2e-3"));
    uint64_t seed = (uint64_t)atol(arg(argc, argv, "--seed", "1"));
    const char *modes_s = arg(argc, argv, "--modes", "off,tiles,tensor");
    r1_set_threads(atoi(arg(argc, argv, "--threads", "2")));
    if (steps < 1 || B < 1 || T < 2 || every < 1) {
        fprintf(stderr, "bench_fp8: bad sizes\n");
        return 2;
    }
    r1_fp8_mode modes[3];
    int nm = 0;
    if (strstr(modes_s, "off"))
        modes[nm++] = R1_FP8_OFF;
    if (strstr(modes_s, "tiles"))
        modes[nm++] = R1_FP8_TILES;
    if (strstr(modes_s, "tensor"))
        modes[nm++] = R1_FP8_TENSOR;
    double *loss[3], sec[3];
    for (int k = 0; k < nm; k++) {
        loss[k] = malloc(sizeof(double) * steps);
        sec[k] = run(preset, modes[k], !strcmp(task, "add"), steps, B, T, lr, seed, loss[k]);
    }
    printf("preset %s, task %s, %d steps of %dx%d tokens, lr %g, seed %llu\n", preset, task,
           steps, B, T, (double)lr, (unsigned long long)seed);
    printf("%6s", "step");
    for (int k = 0; k < nm; k++)
        printf(" %12s", modes[k] == R1_FP8_OFF ? "fp32" : modes[k] == R1_FP8_TILES
                                                              ? "fp8 tiles"
                                                              : "fp8 tensor");
    printf("\n");
    for (int i = 0; i < steps; i++) {
        if (i % every && i != steps - 1)
            continue;
        printf("%6d", i + 1);
        for (int k = 0; k < nm; k++)
            printf(" %12.4f", loss[k][i]);
        printf("\n");
    }
    double fin[3], mean[3];
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
        const char *name = modes[k] == R1_FP8_OFF     ? "fp32"
                           : modes[k] == R1_FP8_TILES ? "fp8 tiles"
                                                      : "fp8 tensor";
        if (modes[0] == R1_FP8_OFF && k > 0)
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
