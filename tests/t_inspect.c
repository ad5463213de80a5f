/* t_inspect.c — the microscope's engine side (r1_inspect.h) against the PyTorch reference
 * (tests/ref/microscope_ref.py writes tests/data/microscope/expected.safetensors for the
 * tiny_moe model): attention weights of every layer (the MTP module's included), the logit
 * lens at every position, activation patching's whole map; then properties that hold for any
 * model (patching the only differing token restores the clean run, positions before it and
 * unscored final positions change nothing), the routing difference, and bad input. */
#include <config.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "r1_inspect.h"
#include "r1_safetensors.h"
#include "tap.h"

#define TOL 1e-5 /* relative to the largest value of each tensor (probabilities, log-probs) */

static double rel_err(const float *a, const float *b, size_t n)
{
    double mx = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        mx = d > mx ? d : mx;
        scale = fabs(b[i]) > scale ? fabs(b[i]) : scale;
    }
    return scale > 0 ? mx / scale : mx;
}

static void *read_tensor(const r1_st *st, const char *name, int i32, size_t *n)
{
    r1_dtype dt;
    int nd;
    int64_t sh[R1_ST_MAXDIM];
    *n = 0;
    if (r1_st_info(st, name, &dt, &nd, sh, NULL) != R1_OK)
        return NULL;
    size_t total = 1;
    for (int i = 0; i < nd; i++)
        total *= sh[i];
    void *p = malloc(4 * (total ? total : 1));
    r1_status s = i32 ? r1_st_read_i32(st, name, p, nd, sh, NULL)
                      : r1_st_read_f32(st, name, p, nd, sh, NULL);
    if (!p || s != R1_OK) {
        free(p);
        return NULL;
    }
    *n = total;
    return p;
}

static int cancel_at_2(void *user, int done, int total)
{
    (void)total;
    *(int *)user = done;
    return done >= 2;
}

int main(void)
{
    r1_set_threads(1);
    const char *src = getenv("top_srcdir");
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s/tests/data/tiny_moe", src ? src : ".");
    snprintf(path, sizeof path, "%s/tests/data/microscope/expected.safetensors",
             src ? src : ".");
    r1_model *m = NULL;
    r1_st *st = NULL;
    r1_error err = {0};
    if (r1_model_load(&m, dir, &err) != R1_OK || r1_st_open(&st, path, &err) != R1_OK) {
        printf("Bail out! %s\n", err.msg);
        return 1;
    }
    const r1_config *c = r1_model_config(m);
    int L = c->num_hidden_layers, H = c->num_attention_heads, V = c->vocab_size;
    int S = r1_inspect_sites(m);
    is_int(S, L + 1, "sites: the embeddings and one after each layer");
    size_t T = 0, n = 0;
    int32_t *tok = read_tensor(st, "tokens", 1, &T);
    ok(tok && T > 2, "the fixture's tokens (%zu)", T);

    /* attention: every main layer and the MTP module's */
    for (int l = 0; l <= L; l++) {
        char name[64];
        snprintf(name, sizeof name, "attn.%d", l);
        float *want = read_tensor(st, name, 0, &n);
        size_t Tl = l < L ? T : T - 1;
        float *got = calloc((size_t)H * Tl * Tl, sizeof(float));
        r1_status s = r1_inspect_attention(m, tok, (int)T, l, got, &err);
        double e = want && n == (size_t)H * Tl * Tl ? rel_err(got, want, n) : 1;
        ok(s == R1_OK && e < TOL, "attention of layer %d%s [%d, %zu, %zu] = the reference "
           "(rel %.2g)", l, l == L ? " (MTP)" : "", H, Tl, Tl, e);
        double rowsum = 0;
        for (size_t t = 0; t < Tl; t++) {
            double r = 0;
            for (size_t u = 0; u < Tl; u++)
                r += got[t * Tl + u];
            rowsum = fmax(rowsum, fabs(r - 1));
        }
        ok(rowsum < 1e-5, "its rows sum to 1 (worst %.2g)", rowsum);
        free(want), free(got);
    }

    /* the logit lens at every position */
    float *lens = read_tensor(st, "lens", 0, &n);
    float *mtp_want = read_tensor(st, "mtp_probs", 0, &n);
    float *probs = malloc(sizeof(float) * S * V), *mtp = malloc(sizeof(float) * V);
    float *want = malloc(sizeof(float) * S * V);
    double worst = 0, worst_mtp = 0, worst_last = 0;
    int has_bad = 0;
    for (size_t pos = 0; lens && mtp_want && pos < T; pos++) {
        int has = -1;
        mtp[0] = -1;
        if (r1_inspect_lens(m, tok, (int)T, (int)pos, probs, mtp, &has, &err) != R1_OK)
            break;
        for (int i = 0; i < S; i++)
            memcpy(want + (size_t)i * V, lens + ((size_t)i * T + pos) * V, sizeof(float) * V);
        worst = fmax(worst, rel_err(probs, want, (size_t)S * V));
        has_bad += has != (pos >= 1);
        if (pos >= 1)
            worst_mtp = fmax(worst_mtp, rel_err(mtp, mtp_want + (pos - 1) * V, V));
        else
            has_bad += mtp[0] != -1; /* untouched without a prediction */
        /* the last site is the model's own next-token distribution */
        r1_model_forward(m, tok, 1, (int)T, NULL, NULL, NULL);
        const float *lo = r1_model_logits(m) + pos * V;
        double mx = lo[0], z = 0;
        for (int v = 1; v < V; v++)
            mx = fmax(mx, lo[v]);
        for (int v = 0; v < V; v++)
            z += exp(lo[v] - mx);
        for (int v = 0; v < V; v++)
            worst_last = fmax(worst_last, fabs(exp(lo[v] - mx) / z - probs[(size_t)L * V + v]));
    }
    ok(lens && worst < TOL, "the lens at every position and site = the reference (rel %.2g)",
       worst);
    ok(mtp_want && worst_mtp < TOL, "the MTP module's distribution = the reference (rel %.2g)",
       worst_mtp);
    ok(!has_bad, "an MTP prediction from position 1 on, none at position 0");
    ok(worst_last < 1e-6, "the last site is softmax(logits) (%.2g)", worst_last);
    free(lens), free(mtp_want), free(probs), free(mtp), free(want);

    /* activation patching: the whole map */
    size_t T2 = 0, n2 = 0;
    int32_t *clean = read_tensor(st, "patch.clean_tokens", 1, &T2);
    int32_t *corrupt = read_tensor(st, "patch.corrupt_tokens", 1, &n2);
    float *map_want = read_tensor(st, "patch.lp", 0, &n);
    size_t one = 0;
    float *lpc = read_tensor(st, "patch.lp_clean", 0, &one);
    float *lpx = read_tensor(st, "patch.lp_corrupt", 0, &one);
    int Tp = map_want ? (int)(n / S) : 0, diff = -1;
    for (int t = 0; clean && corrupt && t < (int)T2; t++)
        if (clean[t] != corrupt[t])
            diff = t;
    float *map = malloc(sizeof(float) * S * (Tp ? Tp : 1));
    double lp_clean = 0, lp_corrupt = 0;
    r1_status s = map_want ? r1_inspect_patch(m, clean, corrupt, (int)T2, Tp, map, &lp_clean,
                                              &lp_corrupt, NULL, NULL, &err)
                           : R1_EINVAL;
    ok(s == R1_OK, "patching runs (%d sites x %d positions): %s", S, Tp, err.msg);
    is_float(lp_clean, lpc ? lpc[0] : NAN, 1e-4, "lp of the clean answer (%.5f)", lp_clean);
    is_float(lp_corrupt, lpx ? lpx[0] : NAN, 1e-4, "lp after the corrupted prompt (%.5f)",
             lp_corrupt);
    double e = s == R1_OK ? rel_err(map, map_want, (size_t)S * Tp) : 1;
    ok(e < TOL, "the layer x position map = the reference (rel %.2g)", e);
    /* properties of any model */
    double before = 0, unscored = 0;
    for (int i = 0; i < S; i++)
        for (int p = 0; p < diff; p++)
            before = fmax(before, fabs(map[i * Tp + p] - lp_corrupt));
    for (int p = 0; p < Tp - 1; p++)
        unscored = fmax(unscored, fabs(map[(S - 1) * Tp + p] - lp_corrupt));
    ok(diff >= 1 && before < 1e-4, "positions before the changed token (%d) change nothing "
       "(%.2g)", diff, before);
    ok(unscored < 1e-4, "the final residual before the last prompt position changes nothing "
       "(%.2g)", unscored);
    is_float(map[diff], lp_clean, 1e-4, "patching the changed token's embedding restores the "
             "clean run");
    int done = 0;
    is_int(r1_inspect_patch(m, clean, corrupt, (int)T2, Tp, map, &lp_clean, &lp_corrupt,
                            cancel_at_2, &done, &err),
           R1_ECANCELED, "a progress callback cancels");
    is_int(done, 2, "after the second site");

    /* patching one MoE layer's experts: the whole [E, Tp] map against the reference */
    size_t ne = 0;
    int32_t *elayer = read_tensor(st, "patch_experts.layer", 1, &one);
    float *emap_want = read_tensor(st, "patch_experts.lp", 0, &ne);
    int E = c->n_routed_experts;
    float *emap = malloc(sizeof(float) * E * Tp);
    double elc = 0, elx = 0;
    err.msg[0] = 0;
    s = elayer ? r1_inspect_patch_experts(m, clean, corrupt, (int)T2, Tp, elayer[0], emap, &elc,
                                          &elx, NULL, NULL, &err)
               : R1_EINVAL;
    ok(s == R1_OK && ne == (size_t)E * Tp, "patching layer %d's %d experts: %s",
       elayer ? elayer[0] : -1, E, err.msg);
    e = s == R1_OK ? rel_err(emap, emap_want, (size_t)E * Tp) : 1;
    ok(e < TOL, "the expert x position map = the reference (rel %.2g)", e);
    ok(fabs(elc - lp_clean) < 1e-6 && fabs(elx - lp_corrupt) < 1e-6, "with the same two runs");
    double same = 0;
    for (int x = 0; x < E; x++)
        for (int p = 0; p < diff; p++)
            same = fmax(same, fabs(emap[x * Tp + p] - lp_corrupt));
    ok(same < 1e-4, "an expert before the changed token changes nothing (%.2g)", same);
    is_int(r1_inspect_patch_experts(m, clean, corrupt, (int)T2, Tp, 0, emap, &elc, &elx, NULL,
                                    NULL, &err),
           R1_EINVAL, "layer 0 is dense");
    like(err.msg, "layer 0 is not a MoE layer of the main model (layers 1..2", "says which are");
    free(elayer), free(emap_want), free(emap);

    /* looking inside is not training: the balancing's expert load stays as it was */
    float load[64];
    long before_n = r1_model_expert_load(m, 1, load);
    r1_inspect_patch(m, clean, corrupt, (int)T2, Tp, map, &lp_clean, &lp_corrupt, NULL, NULL,
                     &err);
    float *att = malloc(sizeof(float) * H * T * T);
    r1_inspect_attention(m, tok, (int)T, 1, att, &err);
    free(att);
    is_int(r1_model_expert_load(m, 1, load), before_n, "inspection adds nothing to the expert "
           "load (%ld tokens counted)", before_n);

    /* bad input */
    is_int(r1_inspect_lens(m, tok, (int)T, (int)T, NULL, NULL, NULL, &err), R1_EINVAL,
           "lens: a position past the end");
    like(err.msg, "position 7 is outside the 7 tokens (0..6)", "names it");
    is_int(r1_inspect_attention(m, tok, (int)T, L + 1, NULL, &err), R1_EINVAL,
           "attention: a layer that does not exist");
    like(err.msg, "layer 4 does not exist; expected 0..3 (the last is the MTP module's)",
         "names the range");
    int32_t badtok[2] = {3, 99};
    is_int(r1_inspect_lens(m, badtok, 2, 0, NULL, NULL, NULL, &err), R1_EINVAL,
           "a token outside the vocabulary");
    like(err.msg, "token 1 is 99; expected 0..39", "names it");
    int32_t other[16];
    memcpy(other, corrupt, sizeof(int32_t) * T2);
    other[T2 - 1] = (other[T2 - 1] + 1) % V;
    is_int(r1_inspect_patch(m, clean, other, (int)T2, Tp, map, &lp_clean, &lp_corrupt, NULL,
                            NULL, &err),
           R1_EINVAL, "patch: answers that differ");
    like(err.msg, "the answers differ at token 9", "names the token");
    is_int(r1_inspect_patch(m, clean, corrupt, (int)T2, (int)T2, map, &lp_clean, &lp_corrupt,
                            NULL, NULL, &err),
           R1_EINVAL, "patch: no answer left");
    like(err.msg, "expected 1..9", "says what fits");

    /* the routing difference */
    double share[8];
    s = r1_inspect_routing_diff(m, m, tok, (int)T, 1, share, 8, &err);
    int zero = s == R1_OK && isnan(share[0]);
    for (int l = 1; l < L; l++)
        zero &= share[l] == 0;
    ok(zero && isnan(share[L]), "a model against itself: no change in MoE layers, NaN for the "
       "dense layer and past the depth");
    r1_model *b = NULL;
    r1_model_load(&b, dir, NULL);
    for (int e2 = 0; e2 < c->n_routed_experts; e2++)
        r1_model_router_bias(b, 1)[e2] += e2 == 0 ? 10.f : 0.f; /* expert 0 always chosen */
    s = r1_inspect_routing_diff(m, b, tok, (int)T, 0, share, 8, &err);
    ok(s == R1_OK && share[1] > 0.5, "a router biased towards expert 0 changes layer 1's sets "
       "(%.2f of the tokens)", share[1]);
    r1_model_free(b);
    r1_config c2 = *c;
    c2.vocab_size = V + 1;
    r1_model_new(&b, &c2, NULL);
    is_int(r1_inspect_routing_diff(m, b, tok, (int)T, 0, share, 8, &err), R1_EINVAL,
           "models with different vocabularies");
    like(err.msg, "vocabularies differ (40 and 41 tokens)", "says so");
    r1_model_free(b);
    free(tok), free(clean), free(corrupt), free(map_want), free(lpc), free(lpx), free(map);
    r1_st_close(st);
    r1_model_free(m);
    return done_testing();
}
