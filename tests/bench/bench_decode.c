/* bench_decode.c — decoding throughput of libr1 for `make bench` (a benchmark, not a test).
 *
 *   bench_decode --preset tiny|small --batch B [--prompt 16] [--new 128] [--threads N]
 *                [--speculative] [--bf16 | --fp8] [--model DIR [--task NAME:D]] [--prefill]
 *                [--inspect] [--reps N]
 *
 * Prefills B random 16-token prompts and decodes 128 new tokens per row, greedy, with no stop
 * token; prints one line "r1lab decode tokens/s=… accept=…" (tokens/s = B·new / seconds,
 * prefill included, as the PyTorch script counts). --model uses a trained checkpoint instead of
 * random weights (the MTP acceptance only means something there); with --task its prompts are
 * that task's questions in the chat format (seeds 1..B) and each row stops at the end of its
 * answer, so the tokens are the ones the model really writes.  --inspect keeps the token
 * inspector's records (top 5, entropy, MTP prediction); --reps N takes the best of N - 1 timed
 * runs after a warm-up (default 2: one timed run).  --prefill times the decoder's
 * step over the prompts alone (no logits, as llama-bench's pp test) and prints "r1lab prefill
 * tokens/s=…" (B·prompt / seconds, best of 3 after a warm-up). */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "r1_generate.h"
#include "r1_rng.h"
#include "r1_tasks.h"
#include "r1_tokenizer.h"

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
    const char *task = dir ? arg(argc, argv, "--task", 0) : NULL;
    int cap = task ? R1_TASK_PROMPT_MAX + 8 : P;
    int32_t *tok = malloc(sizeof(int32_t) * B * cap);
    const int32_t **ps = malloc(sizeof(int32_t *) * B);
    int *lens = malloc(sizeof(int) * B);
    int32_t stops[2];
    r1_rng r;
    r1_rng_seed(&r, 3);
    for (int i = 0; i < B * P && !task; i++)
        tok[i] = (int32_t)r1_rng_below(&r, V);
    for (int b = 0; b < B; b++)
        ps[b] = tok + b * cap, lens[b] = P;
    r1_gen_cfg cfg = r1_gen_defaults();
    if (task) {
        char name[64];
        int d = 1;
        snprintf(name, sizeof name, "%s", task);
        char *colon = strchr(name, ':');
        if (colon)
            *colon = 0, d = atoi(colon + 1);
        char tp[1100];
        snprintf(tp, sizeof tp, "%s/tokenizer.json", dir);
        const r1_task *t = NULL;
        r1_tokenizer *tz = NULL;
        if (r1_task_find(&t, name, &err) || r1_tokenizer_load(&tz, tp, &err)) {
            fprintf(stderr, "bench_decode: %s\n", err.msg);
            return 1;
        }
        for (int b = 0; b < B; b++) {
            r1_task_sample smp;
            if (r1_task_generate(t, (uint64_t)b + 1, d, R1_LANG_AUTO, &smp, &err) ||
                r1_tokenizer_encode_prompt(tz, smp.prompt, tok + b * cap, cap, &lens[b], &err)) {
                fprintf(stderr, "bench_decode: %s\n", err.msg);
                return 1;
            }
        }
        stops[0] = r1_tokenizer_special_id(tz, R1_TOK_EOS);
        stops[1] = r1_tokenizer_special_id(tz, R1_TOK_ANSWER_END);
        cfg.stop_ids = stops;
        cfg.n_stop_ids = 2;
        r1_tokenizer_free(tz);
    }
    cfg.max_tokens = NEW;
    cfg.speculative = flag(argc, argv, "--speculative");
    cfg.bf16 = flag(argc, argv, "--bf16");
    cfg.fp8 = flag(argc, argv, "--fp8");
    if (flag(argc, argv, "--inspect")) { /* the microscope's records, as m:generate keeps them */
        cfg.top_n = 5;
        cfg.mtp_predict = 1;
    }
    if (flag(argc, argv, "--top-only")) /* the parts alone, to see what costs */
        cfg.top_n = 5;
    if (flag(argc, argv, "--mtp-only"))
        cfg.mtp_predict = 1;
    int reps = atoi(arg(argc, argv, "--reps", "2"));
    if (flag(argc, argv, "--prefill")) { /* prompt tokens per second: the step alone */
        r1_decoder *d = NULL;
        int *rows = malloc(sizeof(int) * B);
        int32_t *flat = malloc(sizeof(int32_t) * B * P);
        for (int b = 0; b < B; b++) {
            rows[b] = b;
            memcpy(flat + (size_t)b * P, ps[b], sizeof(int32_t) * P);
        }
        if (r1_decoder_new(&d, m, B, P + 1, &err) ||
            (cfg.bf16 && r1_decoder_set_bf16(d, 1, &err)) ||
            (cfg.fp8 && r1_decoder_set_fp8(d, 1, &err))) {
            fprintf(stderr, "bench_decode: %s\n", err.msg);
            return 1;
        }
        double bestp = 0;
        for (int rep = 0; rep < 4; rep++) { /* the first warms the caches */
            for (int b = 0; b < B; b++)
                r1_decoder_truncate(d, b, 0, 0);
            double t0 = r1_now();
            if (r1_decoder_step(d, rows, B, flat, P, NULL, &err)) {
                fprintf(stderr, "bench_decode: %s\n", err.msg);
                return 1;
            }
            double v = (double)B * P / (r1_now() - t0);
            bestp = rep && v > bestp ? v : bestp;
        }
        printf("r1lab prefill tokens/s=%.1f\n", bestp);
        r1_decoder_free(d);
        free(rows), free(flat), free(tok), free(ps), free(lens);
        r1_model_free(m);
        return 0;
    }
    r1_gen_result *res = NULL;
    double best = 0, acc = 0;
    for (int rep = 0; rep < (reps > 1 ? reps : 2); rep++) { /* the first warms the caches */
        if (r1_generate(m, ps, lens, B, &cfg, NULL, &res, &err)) {
            fprintf(stderr, "bench_decode: %s\n", err.msg);
            return 1;
        }
        long n = 0;
        for (int b = 0; b < B; b++)
            n += res->row[b].n;
        best = rep && n / res->seconds > best ? n / res->seconds : best;
        acc = res->drafted ? (double)res->accepted / res->drafted : 0;
        r1_gen_result_free(res);
    }
    printf("r1lab decode tokens/s=%.1f accept=%.3f\n", best, acc);
    free(tok), free(ps), free(lens);
    r1_model_free(m);
    return 0;
}
