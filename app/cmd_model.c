/* cmd_model.c — the model subcommands of r1lab, used by tests and by people comparing r1lab
 * with other frameworks:
 *
 *   r1lab init --config FILE.json|tiny|small --out DIR [--seed N] [--dtype f32|bf16|fp8]
 *   r1lab forward --model DIR --tokens "1 2 3;4 5 6" --out OUT.safetensors
 *                 [--mtp-lambda X] [--grads GRADS.safetensors]
 *
 * Each prints one line naming what went wrong and returns non-zero on failure. */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "r1_tokenizer.h"
#include "r1_model.h"

static const char *opt(int argc, char **argv, const char *name)
{
    for (int i = 0; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return NULL;
}

/* Every argument must be a known option followed by a value. */
static int check_opts(const char *cmd, int argc, char **argv, const char *const *known)
{
    for (int i = 0; i < argc; i += 2) {
        int found = 0;
        for (const char *const *k = known; *k; k++)
            found |= strcmp(argv[i], *k) == 0;
        if (!found) {
            fprintf(stderr, "r1lab %s: unknown option '%s'\n", cmd, argv[i]);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "r1lab %s: option %s needs a value\n", cmd, argv[i]);
            return 0;
        }
    }
    return 1;
}

int cmd_init(int argc, char **argv)
{
    static const char *const known[] = {"--config", "--out", "--seed", "--dtype", NULL};
    if (!check_opts("init", argc, argv, known))
        return 2;
    const char *cfg = opt(argc, argv, "--config"), *out = opt(argc, argv, "--out");
    const char *seed_s = opt(argc, argv, "--seed"), *dt = opt(argc, argv, "--dtype");
    if (!cfg || !out) {
        fprintf(stderr, "usage: r1lab init --config FILE.json|tiny|small --out DIR [--seed N] "
                        "[--dtype f32|bf16|fp8]\n");
        return 2;
    }
    r1_error err = {0};
    r1_config c;
    r1_status s = r1_config_preset(&c, cfg, NULL);
    if (s != R1_OK && (s = r1_config_load(&c, cfg, &err)) != R1_OK) {
        fprintf(stderr, "r1lab init: %s\n", err.msg);
        return 1;
    }
    unsigned long long seed = 1234;
    if (seed_s) {
        char *end;
        errno = 0;
        seed = strtoull(seed_s, &end, 10);
        if (errno || *end || !*seed_s) {
            fprintf(stderr, "r1lab init: --seed expects a non-negative integer, got '%s'\n",
                    seed_s);
            return 2;
        }
    }
    r1_dtype dtype = R1_DT_F32;
    if (dt && strcmp(dt, "bf16") == 0)
        dtype = R1_DT_BF16;
    else if (dt && strcmp(dt, "fp8") == 0) /* DeepSeek-V3's layout: E4M3 + weight_scale_inv */
        dtype = R1_DT_F8_E4M3;
    else if (dt && strcmp(dt, "f32") != 0) {
        fprintf(stderr, "r1lab init: --dtype expects f32, bf16 or fp8, got '%s'\n", dt);
        return 2;
    }
    r1_model *m;
    if ((s = r1_model_new(&m, &c, &err)) != R1_OK) {
        fprintf(stderr, "r1lab init: %s\n", err.msg);
        return 1;
    }
    r1_model_init(m, seed);
    s = r1_model_save(m, out, dtype, &err);
    if (s == R1_OK && c.vocab_size == R1_TOK_VOCAB) { /* as r1.init: the built-in tokenizer
                                                        * fits, so the folder takes text */
        r1_tokenizer *tok = r1_tokenizer_new_builtin();
        char path[4200];
        snprintf(path, sizeof path, "%s/tokenizer.json", out);
        s = tok ? r1_tokenizer_save(tok, path, &err)
                : r1_error_set(&err, R1_ENOMEM, "out of memory");
        r1_tokenizer_free(tok);
    }
    if (s == R1_OK)
        printf("wrote %s: %zu parameters, seed %llu\n", out, r1_model_numel(m), seed);
    else
        fprintf(stderr, "r1lab init: %s\n", err.msg);
    r1_model_free(m);
    return s == R1_OK ? 0 : 1;
}

/* Parses "1 2 3;4 5 6" into rows of equal length.  Returns a malloc'd array or NULL. */
static int32_t *parse_tokens(const char *s, int *B, int *T)
{
    int cap = 64, n = 0, rows = 1, cols = -1, cur = 0;
    int32_t *v = malloc(sizeof(int32_t) * cap);
    const char *p = s;
    while (v) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == ';' || *p == '\0') {
            if (cur == 0 || (cols >= 0 && cur != cols)) {
                fprintf(stderr,
                        "r1lab forward: --tokens row %d has %d tokens; every row needs the same "
                        "number (%d), at least 1\n",
                        rows, cur, cols < 0 ? cur : cols);
                free(v);
                return NULL;
            }
            cols = cur;
            cur = 0;
            if (*p == '\0')
                break;
            rows++;
            p++;
            continue;
        }
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || errno || x < 0 || x > 2147483647L) {
            fprintf(stderr, "r1lab forward: --tokens: expected a token id at '%.12s'\n", p);
            free(v);
            return NULL;
        }
        p = end;
        if (n == cap) {
            int32_t *nv = realloc(v, sizeof(int32_t) * (cap *= 2));
            if (!nv) {
                free(v);
                return NULL;
            }
            v = nv;
        }
        v[n++] = (int32_t)x;
        cur++;
    }
    *B = rows;
    *T = cols;
    return v;
}

int cmd_forward(int argc, char **argv)
{
    static const char *const known[] = {"--model", "--tokens", "--out", "--mtp-lambda",
                                        "--grads", NULL};
    if (!check_opts("forward", argc, argv, known))
        return 2;
    const char *dir = opt(argc, argv, "--model"), *toks = opt(argc, argv, "--tokens");
    const char *out = opt(argc, argv, "--out"), *lam = opt(argc, argv, "--mtp-lambda");
    const char *grads = opt(argc, argv, "--grads");
    if (!dir || !toks || !out) {
        fprintf(stderr, "usage: r1lab forward --model DIR --tokens \"1 2 3;4 5 6\" --out "
                        "OUT.safetensors [--mtp-lambda X] [--grads GRADS.safetensors]\n");
        return 2;
    }
    r1_fwd_opts fo = r1_fwd_defaults();
    if (lam) {
        char *end;
        fo.mtp_lambda = strtof(lam, &end);
        if (*end || !*lam || fo.mtp_lambda < 0) {
            fprintf(stderr, "r1lab forward: --mtp-lambda expects a number >= 0, got '%s'\n",
                    lam);
            return 2;
        }
    }
    int B, T;
    int32_t *tok = parse_tokens(toks, &B, &T);
    if (!tok)
        return 2;
    r1_error err = {0};
    r1_model *m = NULL;
    r1_st_writer *w = NULL;
    int rc = 1;
    r1_loss L;
    if (r1_model_load(&m, dir, &err) != R1_OK ||
        r1_model_forward(m, tok, B, T, &fo, &L, &err) != R1_OK)
        goto fail;
    const r1_config *c = r1_model_config(m);
    int V = c->vocab_size, K = c->num_experts_per_tok;
    w = r1_st_writer_new();
    if (!w) {
        r1_error_set(&err, R1_ENOMEM, "out of memory");
        goto fail;
    }
    int64_t lsh[3] = {B, T, V};
    if (r1_st_writer_add(w, "logits", R1_DT_F32, R1_DT_F32, r1_model_logits(m), 3, lsh, &err))
        goto fail;
    for (int k = 1; k <= c->num_nextn_predict_layers; k++) {
        const float *ml = r1_model_mtp_logits(m, k);
        if (!ml)
            continue;
        char name[64];
        snprintf(name, sizeof name, k == 1 ? "mtp_logits" : "mtp_logits.%d", k);
        int64_t msh[3] = {B, T - k, V};
        if (r1_st_writer_add(w, name, R1_DT_F32, R1_DT_F32, ml, 3, msh, &err))
            goto fail;
    }
    float lossv = (float)L.loss;
    int64_t one[1] = {1};
    if (r1_st_writer_add(w, "loss", R1_DT_F32, R1_DT_F32, &lossv, 1, one, &err))
        goto fail;
    /* the routing arrays must outlive the writer: one allocation per layer */
    int nl = r1_model_nlayers_total(m);
    void **keep = calloc(2 * (size_t)nl, sizeof(void *));
    for (int l = 0; keep && l < nl; l++) {
        int len = r1_model_routing(m, l, NULL, NULL);
        if (len < 0)
            continue;
        int32_t *e = malloc(sizeof(int32_t) * (size_t)B * len * K);
        float *wt = malloc(sizeof(float) * (size_t)B * len * K);
        keep[2 * l] = e, keep[2 * l + 1] = wt;
        if (!e || !wt)
            break;
        r1_model_routing(m, l, e, wt);
        char en[64], wn[64];
        snprintf(en, sizeof en, "routing.%d.experts", l);
        snprintf(wn, sizeof wn, "routing.%d.weights", l);
        int64_t rsh[3] = {B, len, K};
        r1_st_writer_add(w, en, R1_DT_I32, R1_DT_I32, e, 3, rsh, &err);
        r1_st_writer_add(w, wn, R1_DT_F32, R1_DT_F32, wt, 3, rsh, &err);
    }
    r1_status s = keep ? r1_st_writer_write(w, out, &err) : R1_ENOMEM;
    for (int i = 0; keep && i < 2 * nl; i++)
        free(keep[i]);
    free(keep);
    if (s != R1_OK)
        goto fail;
    if (grads) {
        r1_model_zero_grad(m);
        if (r1_model_backward(m, &err) != R1_OK)
            goto fail;
        r1_st_writer_free(w);
        w = r1_st_writer_new();
        for (int i = 0; w && i < r1_model_nparams(m); i++) {
            const r1_param *p = r1_model_param(m, i);
            if (r1_st_writer_add(w, p->name, R1_DT_F32, R1_DT_F32, r1_model_grads(m) + p->offset,
                                 p->ndim, p->shape, &err))
                goto fail;
        }
        if (!w || r1_st_writer_write(w, grads, &err) != R1_OK)
            goto fail;
    }
    printf("loss %.6f (main %.6f, mtp %.6f) over %d x %d tokens\n", L.loss, L.main, L.mtp, B, T);
    rc = 0;
fail:
    if (rc)
        fprintf(stderr, "r1lab forward: %s\n", err.msg[0] ? err.msg : "failed");
    free(tok);
    r1_st_writer_free(w);
    r1_model_free(m);
    return rc;
}
