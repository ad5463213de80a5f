/* bench_decode.c — decoding throughput of libr1 for `make bench` (a benchmark, not a test).
 *
 *   bench_decode --preset tiny|small --batch B [--prompt 16] [--new 128] [--threads N]
 *                [--speculative] [--bf16 | --fp8] [--model DIR]
 *
 * Prefills B random 16-token prompts and decodes 128 new tokens per row, greedy, with no stop
 * token; prints one line "r1lab decode tokens/s=… accept=…" (tokens/s = B·new / seconds,
 * prefill included, as the PyTorch script counts). --model uses a trained checkpoint instead of
 * random weights (the MTP acceptance only means something there). */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "r1_generate.h"
#include "r1_rng.h"

static const char *arg(int argc, char **argv, const char *name, const char *def)
{
    for (int i = 0; i + 1 < argc; i++)
        if (!strcmp(argv[i], name))
            return argv[i + 1];
    return def;
}

static int flag(int argc, char **argv, const char *name)
{
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], name))
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    const char *preset = arg(argc, argv, "--preset", "tiny"), *dir = arg(argc, argv, "--model", 0);
    int B = atoi(arg(argc, argv, "--batch", "1")), P = atoi(arg(argc, argv, "--prompt", "16"));
    int NEW = atoi(arg(argc, argv, "--new", "128"));
    r1_set_threads(atoi(arg(argc, argv, "--threads", "2")));
    r1_error err = {0};
    r1_model *m = NULL;
    if (dir) {
        if (r1_model_load(&m, dir, &err)) {
            fprintf(stderr, "bench_decode: %s\n", err.msg);
            return 1;
        }
    } else {
        r1_config c;
        if (r1_config_preset(&c, preset, &err) || r1_model_new(&m, &c, &err)) {
            fprintf(stderr, "bench_decode: %s\n", err.msg);
            return 1;
        }
        r1_model_init(m, 1);
    }
    int V = r1_model_config(m)->vocab_size;
    int32_t *tok = malloc(sizeof(int32_t) * B * P);
    const int32_t **ps = malloc(sizeof(int32_t *) * B);
    int *lens = malloc(sizeof(int) * B);
    r1_rng r;
    r1_rng_seed(&r, 3);
    for (int i = 0; i < B * P; i++)
        tok[i] = (int32_t)r1_rng_below(&r, V);
    for (int b = 0; b < B; b++)
        ps[b] = tok + b * P, lens[b] = P;
    r1_gen_cfg cfg = r1_gen_defaults();
    cfg.max_tokens = NEW;
    cfg.speculative = flag(argc, argv, "--speculative");
    cfg.bf16 = flag(argc, argv, "--bf16");
    cfg.fp8 = flag(argc, argv, "--fp8");
    r1_gen_result *res = NULL;
    double best = 0, acc = 0;
    for (int rep = 0; rep < 2; rep++) { /* the first run warms the caches */
        if (r1_generate(m, ps, lens, B, &cfg, NULL, NULL, &res, &err)) {
            fprintf(stderr, "bench_decode: %s\n", err.msg);
            return 1;
        }
        long n = 0;
        for (int b = 0; b < B; b++)
            n += res->row[b].n;
        best = rep ? n / res->seconds : 0;
        acc = res->drafted ? (double)res->accepted / res->drafted : 0;
        r1_gen_result_free(res);
    }
    printf("r1lab decode tokens/s=%.1f accept=%.3f\n", best, acc);
    free(tok), free(ps), free(lens);
    r1_model_free(m);
    return 0;
}
