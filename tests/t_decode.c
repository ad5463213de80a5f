/* t_decode.c — the MLA latent cache: decoding token by token (and in 2- and 3-token steps,
 * several rows at once) gives the full forward pass's logits at every position, for the MoE,
 * q_lora_rank = null and dense fixtures and for random tiny and small models; the MTP step
 * gives the full pass's MTP logits; bad input is refused. */
#include <config.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "r1_bf16.h"
#include "r1_generate.h"
#include "r1_rng.h"
#include "tap.h"

static double max_rel(const float *a, const float *b, size_t n)
{
    double mx = 0, sc = 1;
    for (size_t i = 0; i < n; i++) {
        mx = fmax(mx, fabs((double)a[i] - b[i]));
        sc = fmax(sc, fabs(b[i]));
    }
    return mx / sc;
}

/* Two rows (lengths T and T-3) decoded together in uneven steps vs the full forward. */
static void check_model(r1_model *m, const char *what, int T)
{
    const r1_config *c = r1_model_config(m);
    int V = c->vocab_size, C = c->hidden_size;
    r1_rng r;
    r1_rng_seed(&r, 99);
    int32_t tok[2][64];
    for (int b = 0; b < 2; b++)
        for (int t = 0; t < T; t++)
            tok[b][t] = (int32_t)r1_rng_below(&r, V);
    int lens[2] = {T, T - 3};
    float *full[2], *mtp_full[2] = {NULL, NULL};
    for (int b = 0; b < 2; b++) {
        r1_model_forward(m, tok[b], 1, lens[b], NULL, NULL, NULL);
        full[b] = malloc(sizeof(float) * lens[b] * V);
        memcpy(full[b], r1_model_logits(m), sizeof(float) * lens[b] * V);
        if (r1_model_mtp_logits(m, 1)) {
            mtp_full[b] = malloc(sizeof(float) * (lens[b] - 1) * V);
            memcpy(mtp_full[b], r1_model_mtp_logits(m, 1), sizeof(float) * (lens[b] - 1) * V);
        }
    }
    r1_decoder *d;
    r1_error err = {0};
    ok(r1_decoder_new(&d, m, 2, T, &err) == R1_OK, "%s: decoder", what);
    float *got[2], *hid[2];
    for (int b = 0; b < 2; b++) {
        got[b] = calloc((size_t)lens[b] * V, sizeof(float));
        hid[b] = calloc((size_t)lens[b] * C, sizeof(float));
    }
    /* prefill 3 tokens of row 0 and 2 of row 1 separately, then steps of 1 and 2 together */
    float *lg = malloc(sizeof(float) * 8 * V);
    int row0 = 0, row1 = 1, both[2] = {0, 1};
    r1_decoder_step(d, &row0, 1, tok[0], 3, got[0], &err);
    memcpy(hid[0], r1_decoder_hidden(d), sizeof(float) * 3 * C);
    r1_decoder_step(d, &row1, 1, tok[1], 2, got[1], &err);
    memcpy(hid[1], r1_decoder_hidden(d), sizeof(float) * 2 * C);
    int p[2] = {3, 2}, status = 1;
    while (p[1] < lens[1]) {
        int n = (p[1] % 2 == 0 && p[1] + 2 <= lens[1]) ? 2 : 1;
        int32_t in[4];
        for (int b = 0; b < 2; b++)
            for (int i = 0; i < n; i++)
                in[b * n + i] = tok[b][p[b] + i];
        status &= r1_decoder_step(d, both, 2, in, n, lg, &err) == R1_OK;
        for (int b = 0; b < 2; b++) {
            memcpy(got[b] + (size_t)p[b] * V, lg + (size_t)b * n * V, sizeof(float) * n * V);
            memcpy(hid[b] + (size_t)p[b] * C, r1_decoder_hidden(d) + (size_t)b * n * C,
                   sizeof(float) * n * C);
            p[b] += n;
        }
    }
    while (p[0] < lens[0]) {
        status &= r1_decoder_step(d, &row0, 1, &tok[0][p[0]], 1, got[0] + (size_t)p[0] * V,
                                  &err) == R1_OK;
        memcpy(hid[0] + (size_t)p[0] * C, r1_decoder_hidden(d), sizeof(float) * C);
        p[0]++;
    }
    ok(status, "%s: every step ran", what);
    double e0 = max_rel(got[0], full[0], (size_t)lens[0] * V);
    double e1 = max_rel(got[1], full[1], (size_t)lens[1] * V);
    ok(e0 < 1e-4 && e1 < 1e-4,
       "%s: cached decode = full forward at all %d + %d positions (max rel err %.1e, %.1e)", what,
       lens[0], lens[1], e0, e1);
    is_int(r1_decoder_len(d, 0), T, "%s: the cache holds every token", what);
    if (mtp_full[0]) {
        /* MTP position i reads (hidden_i, t[i+1]): feed row 0 in one step of T-1 pairs */
        float *ml = malloc(sizeof(float) * (T - 1) * V);
        r1_decoder_mtp_step(d, &row0, 1, hid[0], tok[0] + 1, T - 1, ml, &err);
        double em = max_rel(ml, mtp_full[0], (size_t)(T - 1) * V);
        ok(em < 1e-4, "%s: the MTP step = the full pass's MTP logits (max rel err %.1e)", what,
           em);
        free(ml);
    }
    for (int b = 0; b < 2; b++) {
        free(full[b]), free(mtp_full[b]), free(got[b]), free(hid[b]);
    }
    free(lg);
    r1_decoder_free(d);
}

/* A decoding step's rows are their own: a row's logits and its MTP draft logits are the same
 * alone as beside four other rows, in fp32 and in bf16 (the router, and the MTP step's eh_proj,
 * had run on sgemm, which gives a row other bits in a product of another size); and a bf16
 * decoder reads eh_proj's bf16 copy only (its fp32 weights moved to their own bf16 roundings
 * change nothing).  Returns whether the main step's row 0 matched; takes m's weights. */
static int mtp_logits(r1_model *m, int bf16, const int32_t *tok, float *row0_alone,
                      float *row0_beside)
{
    const r1_config *c = r1_model_config(m);
    int V = c->vocab_size, C = c->hidden_size, rows[5] = {0, 1, 2, 3, 4};
    r1_decoder *d, *d1;
    r1_decoder_new(&d, m, 5, 8, NULL);
    r1_decoder_new(&d1, m, 1, 8, NULL);
    if (bf16) {
        r1_decoder_set_bf16(d, 1, NULL);
        r1_decoder_set_bf16(d1, 1, NULL);
    }
    float *lg = malloc(sizeof(float) * 5 * V), *h = malloc(sizeof(float) * 5 * C);
    float *one = malloc(sizeof(float) * V);
    r1_decoder_step(d1, rows, 1, tok, 1, one, NULL); /* the main step: row 0 alone, then 5 */
    r1_decoder_step(d, rows, 5, tok, 1, lg, NULL);
    int same = !memcmp(one, lg, sizeof(float) * V);
    free(one);
    r1_decoder_free(d1);
    memcpy(h, r1_decoder_hidden(d), sizeof(float) * 5 * C);
    r1_decoder_mtp_step(d, rows, 1, h, tok + 5, 1, lg, NULL);
    memcpy(row0_alone, lg, sizeof(float) * V);
    r1_decoder_truncate(d, 0, -1, 0);
    r1_decoder_mtp_step(d, rows, 5, h, tok + 5, 1, lg, NULL);
    memcpy(row0_beside, lg, sizeof(float) * V);
    free(lg), free(h);
    r1_decoder_free(d);
    return same;
}

static void check_mtp_products(r1_model *m, const int32_t *tok)
{
    int V = r1_model_config(m)->vocab_size;
    float *a = malloc(sizeof(float) * V), *b = malloc(sizeof(float) * V);
    float *c = malloc(sizeof(float) * V), *e = malloc(sizeof(float) * V);
    ok(mtp_logits(m, 0, tok, a, b),
       "an fp32 decoding step gives a row the same logits, bit for bit, beside 4 other rows "
       "(the router on the row kernels)");
    ok(!memcmp(a, b, sizeof(float) * V),
       "an fp32 MTP step gives a row the same draft logits, bit for bit, beside 4 other rows");
    ok(mtp_logits(m, 1, tok, a, b), "... a bf16 decoding step the same logits");
    ok(!memcmp(a, b, sizeof(float) * V), "... and a bf16 MTP step the same draft logits");
    float *w = r1_model_params(m);
    for (int i = 0; i < r1_model_nparams(m); i++) {
        const r1_param *p = r1_model_param(m, i);
        if (strstr(p->name, "eh_proj"))
            for (size_t k = 0; k < p->numel; k++)
                w[p->offset + k] = r1_bf16_to_f32(r1_f32_to_bf16(w[p->offset + k]));
    }
    mtp_logits(m, 1, tok, c, e);
    ok(!memcmp(a, c, sizeof(float) * V) && !memcmp(b, e, sizeof(float) * V),
       "a bf16 MTP step reads eh_proj's bf16 copy: its fp32 weights moved within their bf16 "
       "roundings change no bit");
    free(a), free(b), free(c), free(e);
}

/* A prompt (16 or more tokens a row in one step) attends 32 tokens at a time, each chunk's
 * queries in one product masked to each token's length: two rows stepping 40 tokens at once,
 * one after 5 cached tokens and one from empty (chunks of 32 and 8, in each row), give the full
 * forward's logits. */
static void check_prompt_chunks(r1_model *m, const char *what)
{
    int V = r1_model_config(m)->vocab_size;
    enum { PRE = 5, NP = 40 };
    int32_t tok[2][PRE + NP];
    for (int b = 0; b < 2; b++)
        for (int t = 0; t < PRE + NP; t++)
            tok[b][t] = (int32_t)((t * 13 + b * 29 + 7) % V);
    int lens[2] = {PRE + NP, NP};
    float *full[2], *got[2];
    for (int b = 0; b < 2; b++) {
        r1_model_forward(m, tok[b], 1, lens[b], NULL, NULL, NULL);
        full[b] = malloc(sizeof(float) * lens[b] * V);
        got[b] = malloc(sizeof(float) * lens[b] * V);
        memcpy(full[b], r1_model_logits(m), sizeof(float) * lens[b] * V);
    }
    r1_decoder *d;
    int status = r1_decoder_new(&d, m, 2, PRE + NP, NULL) == R1_OK;
    int row0 = 0, both[2] = {0, 1};
    for (int t = 0; status && t < PRE; t++)
        status = r1_decoder_step(d, &row0, 1, tok[0] + t, 1, got[0] + (size_t)t * V, NULL) == 0;
    int32_t in[2 * NP];
    memcpy(in, tok[0] + PRE, sizeof(int32_t) * NP);
    memcpy(in + NP, tok[1], sizeof(int32_t) * NP);
    float *lg = malloc(sizeof(float) * 2 * NP * V);
    status = status && r1_decoder_step(d, both, 2, in, NP, lg, NULL) == R1_OK;
    memcpy(got[0] + (size_t)PRE * V, lg, sizeof(float) * NP * V);
    memcpy(got[1], lg + (size_t)NP * V, sizeof(float) * NP * V);
    double e0 = status ? max_rel(got[0], full[0], (size_t)lens[0] * V) : 1;
    double e1 = status ? max_rel(got[1], full[1], (size_t)lens[1] * V) : 1;
    ok(e0 < 1e-4 && e1 < 1e-4, "%s: a 40-token prompt in two rows, after 5 cached tokens and "
       "from empty, = full forward (max rel err %.1e, %.1e)", what, e0, e1);
    if (status)
        r1_decoder_free(d);
    free(lg);
    for (int b = 0; b < 2; b++)
        free(full[b]), free(got[b]);
}

int main(void)
{
    char dir[4096];
    const char *src = getenv("top_srcdir");
    const char *fx[] = {"tiny_moe", "tiny_variant", "tiny_dense"};
    for (int i = 0; i < 3; i++) {
        snprintf(dir, sizeof dir, "%s/tests/data/%s", src ? src : ".", fx[i]);
        r1_model *m;
        if (r1_model_load(&m, dir, NULL) != R1_OK) {
            ok(0, "load %s", fx[i]);
            continue;
        }
        check_model(m, fx[i], 20);
        r1_model_free(m);
    }
    const char *presets[] = {"tiny", "small"};
    for (int i = 0; i < 2; i++) {
        r1_config c;
        r1_config_preset(&c, presets[i], NULL);
        c.initializer_range = 0.1f; /* sharper attention and routing than the default init */
        r1_model *m;
        r1_model_new(&m, &c, NULL);
        r1_model_init(m, 5 + i);
        check_model(m, presets[i], 24);
        check_prompt_chunks(m, presets[i]);
        r1_model_free(m);
    }

    /* BF16 weights: the logits stay close to FP32's, and greedy text mostly agrees */
    {
        r1_config c;
        r1_config_preset(&c, "tiny", NULL);
        r1_model *m;
        r1_model_new(&m, &c, NULL);
        r1_model_init(m, 11);
        int32_t tok[24];
        for (int t = 0; t < 24; t++)
            tok[t] = (t * 37 + 5) % 128;
        r1_model_forward(m, tok, 1, 24, NULL, NULL, NULL);
        float *full = malloc(sizeof(float) * 24 * 128), *got = malloc(sizeof(float) * 24 * 128);
        memcpy(full, r1_model_logits(m), sizeof(float) * 24 * 128);
        r1_decoder *d;
        r1_decoder_new(&d, m, 1, 24, NULL);
        ok(r1_decoder_set_bf16(d, 1, NULL) == R1_OK, "bf16 weights for decoding");
        int row = 0;
        r1_decoder_step(d, &row, 1, tok, 24, got, NULL);
        double e = max_rel(got, full, 24 * 128);
        ok(e > 0 && e < 2e-2, "bf16 decode logits deviate from fp32 by %.2e (relative to the "
                              "largest logit)", e);
        diag("weights read per token: fp32 %zu bytes, bf16 %zu bytes",
             r1_model_numel(m) * 4, r1_model_numel(m) * 2);
        /* a prompt (24 tokens in one step) and the same tokens one by one run their linear
         * layers on the same packed GEMM, but attention differs (the prompt's in chunks, a
         * token's on the latent cache), which now and then moves an activation across a bf16
         * rounding (2^-8) downstream; so the two must agree far better than either agrees with
         * fp32 */
        float *one = malloc(sizeof(float) * 24 * 128);
        r1_decoder *d1;
        r1_decoder_new(&d1, m, 2, 24, NULL);
        r1_decoder_set_bf16(d1, 1, NULL);
        for (int t = 0; t < 24; t++)
            r1_decoder_step(d1, &row, 1, tok + t, 1, one + t * 128, NULL);
        double e1 = max_rel(one, got, 24 * 128);
        ok(e1 < 0.5 * e, "a bf16 prompt in one step agrees with the same tokens one by one to "
           "%.2e (bf16 against fp32: %.2e)", e1, e);
        /* and a prompt's bits do not depend on the rows beside it */
        int32_t two[48];
        for (int t = 0; t < 24; t++)
            two[t] = (t * 11 + 3) % 128, two[24 + t] = tok[t];
        float *both = malloc(sizeof(float) * 48 * 128);
        int rows2[2] = {0, 1};
        r1_decoder_truncate(d1, 0, 0, 0);
        r1_decoder_truncate(d1, 1, 0, 0);
        r1_decoder_step(d1, rows2, 2, two, 24, both, NULL);
        ok(!memcmp(both + 24 * 128, got, sizeof(float) * 24 * 128),
           "a bf16 prompt beside another gives the same logits, bit for bit, as alone");
        /* the same on the AVX2 path, whose fp32 row kernels are its own (OpenBLAS's AVX-512
         * kernels sum a product's rows in an order that depends on its size) */
        if (r1_isa_best() > R1_ISA_AVX2) {
            r1_isa was = r1_isa_active();
            r1_isa_set(R1_ISA_AVX2, NULL);
            r1_decoder *d2;
            r1_decoder_new(&d2, m, 2, 24, NULL);
            r1_decoder_set_bf16(d2, 1, NULL);
            int row0 = 0;
            r1_decoder_step(d2, &row0, 1, tok, 24, one, NULL);
            r1_decoder_truncate(d2, 0, 0, 0);
            r1_decoder_step(d2, rows2, 2, two, 24, both, NULL);
            ok(!memcmp(both + 24 * 128, one, sizeof(float) * 24 * 128),
               "... and on the avx2 path");
            r1_decoder_free(d2);
            r1_isa_set(was, NULL);
        } else
            skip("a bf16 prompt beside another on the avx2 path: %s is this CPU's best",
                 r1_isa_name(r1_isa_best()));
        r1_decoder_free(d1);
        free(one), free(both);
        r1_decoder_free(d);
        check_mtp_products(m, tok);
        free(full), free(got);
        r1_model_free(m);
    }

    /* cache sizes: MLA's latent cache against full multi-head keys and values */
    r1_config c;
    r1_config_preset(&c, "tiny", NULL);
    is_int(r1_cache_bytes_per_token(&c), 6 * (64 + 16) * 4, "tiny: latent cache bytes/token");
    is_int(r1_mha_cache_bytes_per_token(&c), 6 * 6 * (48 + 32) * 4, "tiny: MHA bytes/token");
    diag("cache bytes per token, tiny: MLA %zu vs MHA %zu (%.1fx smaller)",
         r1_cache_bytes_per_token(&c), r1_mha_cache_bytes_per_token(&c),
         (double)r1_mha_cache_bytes_per_token(&c) / r1_cache_bytes_per_token(&c));

    /* bad input */
    r1_model *m;
    snprintf(dir, sizeof dir, "%s/tests/data/tiny_dense", src ? src : ".");
    r1_model_load(&m, dir, NULL);
    r1_decoder *d;
    r1_error err = {0};
    is_int(r1_decoder_new(&d, m, 1, 65, &err), R1_EINVAL, "a decoder past max positions");
    like(err.msg, "max_position_embeddings (64)", "names the limit");
    r1_decoder_new(&d, m, 1, 8, &err);
    int row = 0;
    int32_t bad = 40, five[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    is_int(r1_decoder_step(d, &row, 1, &bad, 1, NULL, &err), R1_EINVAL, "a token out of range");
    like(err.msg, "token 0 is 40", "names it");
    is_int(r1_decoder_step(d, &row, 1, five, 9, NULL, &err), R1_EINVAL, "past the cache");
    like(err.msg, "row 0 would reach 9 tokens", "names the row");
    float h[32] = {0};
    is_int(r1_decoder_mtp_step(d, &row, 1, h, five, 1, NULL, &err), R1_EUNSUPPORTED,
           "MTP on a checkpoint without it");
    like(err.msg, "no MTP module", "says so");
    r1_decoder_free(d);
    r1_model_free(m);
    return done_testing();
}
