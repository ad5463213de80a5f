/* t_model.c — the whole model against the independent PyTorch implementation (tests/ref/):
 * for each fixture under tests/data/, load the checkpoint, run forward and backward on the
 * fixture's tokens and compare logits, MTP logits, losses, routing and every gradient.
 * Also: save -> load round trips (F32 bit-identical, BF16 within bf16 precision), and the
 * checkpoint errors that belong to the model (missing, unexpected and mismatched tensors). */
#include <config.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "r1_model.h"
#include "tap.h"
#include "testutil.h"

static char srcdir[2048];

/* max |a - b| / max(1, max |b|) */
static double rel_err(const float *a, const float *b, size_t n)
{
    double mx = 0, scale = 1;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        mx = d > mx ? d : mx;
        scale = fabs(b[i]) > scale ? fabs(b[i]) : scale;
    }
    return mx / scale;
}

static float *read_all(const r1_st *st, const char *name, size_t *n)
{
    r1_dtype dt;
    int nd;
    int64_t sh[R1_ST_MAXDIM];
    if (r1_st_info(st, name, &dt, &nd, sh, NULL) != R1_OK)
        return NULL;
    size_t total = 1;
    for (int i = 0; i < nd; i++)
        total *= sh[i];
    float *p = malloc(sizeof(float) * total);
    if (r1_st_read_f32(st, name, p, nd, sh, NULL) != R1_OK) {
        free(p);
        return NULL;
    }
    *n = total;
    return p;
}

static void check_fixture(const char *fx)
{
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s/tests/data/%s", srcdir, fx);
    snprintf(path, sizeof path, "%s/expected.safetensors", dir);
    r1_error err = {0};
    r1_model *m = NULL;
    r1_st *ex = NULL;
    if (!ok(r1_model_load(&m, dir, &err) == R1_OK, "%s: checkpoint loads", fx)) {
        diag("%s", err.msg);
        return;
    }
    if (!ok(r1_st_open(&ex, path, &err) == R1_OK, "%s: expected values open", fx)) {
        diag("%s", err.msg);
        r1_model_free(m);
        return;
    }
    const r1_config *c = r1_model_config(m);
    int B = 2, T = 7, V = c->vocab_size, K = c->num_experts_per_tok;
    int32_t tokens[14];
    int64_t tsh[2] = {B, T};
    r1_st_read_i32(ex, "tokens", tokens, 2, tsh, NULL);

    r1_loss loss;
    r1_fwd_opts o = r1_fwd_defaults();
    ok(r1_model_forward(m, tokens, B, T, &o, &loss, &err) == R1_OK, "%s: forward runs", fx);
    size_t n;
    float *want = read_all(ex, "logits", &n);
    ok(n == (size_t)B * T * V, "%s: logits shape", fx);
    double e = rel_err(r1_model_logits(m), want, n);
    ok(e < 1e-5, "%s: logits match PyTorch (max rel err %.2e)", fx, e);
    free(want);
    for (int k = 1; k <= c->num_nextn_predict_layers; k++) {
        char name[64];
        snprintf(name, sizeof name, k == 1 ? "mtp_logits" : "mtp_logits.%d", k);
        want = read_all(ex, name, &n);
        e = want ? rel_err(r1_model_mtp_logits(m, k), want, n) : 1;
        ok(want && n == (size_t)B * (T - k) * V && e < 1e-5,
           "%s: MTP depth %d logits match (max rel err %.2e)", fx, k, e);
        free(want);
    }
    float *lv = read_all(ex, "loss", &n);
    is_float(loss.loss, lv[0], 1e-5, "%s: total loss %.6f", fx, loss.loss);
    free(lv);
    lv = read_all(ex, "loss_main", &n);
    is_float(loss.main, lv[0], 1e-5, "%s: main loss", fx);
    free(lv);
    lv = read_all(ex, "loss_mtp", &n);
    is_float(loss.mtp, lv[0], 1e-5, "%s: MTP loss", fx);
    free(lv);

    /* routing of every MoE layer, MTP included */
    int nmoe = 0, same = 1;
    double we = 0;
    for (int l = 0; l < r1_model_nlayers_total(m); l++) {
        char en[64], wn[64];
        snprintf(en, sizeof en, "routing.%d.experts", l);
        snprintf(wn, sizeof wn, "routing.%d.weights", l);
        int has = r1_st_find(ex, en) >= 0;
        int32_t got_e[14 * 8];
        float got_w[14 * 8];
        int len = r1_model_routing(m, l, got_e, got_w);
        if (!has) {
            if (len >= 0)
                same = 0;
            continue;
        }
        nmoe++;
        int32_t want_e[14 * 8];
        int64_t sh[3] = {B, len, K};
        if (len < 0 || r1_st_read_i32(ex, en, want_e, 3, sh, NULL) != R1_OK) {
            same = 0;
            continue;
        }
        float *want_w = read_all(ex, wn, &n);
        for (size_t i = 0; i < (size_t)B * len * K; i++)
            same &= got_e[i] == want_e[i];
        double ew = rel_err(got_w, want_w, n);
        we = ew > we ? ew : we;
        free(want_w);
    }
    ok(same, "%s: the same experts in %d MoE layers", fx, nmoe);
    ok(we < 1e-5, "%s: routing weights match (max rel err %.2e)", fx, we);

    /* every gradient */
    r1_model_zero_grad(m);
    ok(r1_model_backward(m, &err) == R1_OK, "%s: backward runs", fx);
    int missing = 0, bad = 0;
    double worst = 0;
    const char *worst_name = "";
    for (int i = 0; i < r1_model_nparams(m); i++) {
        const r1_param *p = r1_model_param(m, i);
        char name[300];
        snprintf(name, sizeof name, "grad.%s", p->name);
        float *g = read_all(ex, name, &n);
        if (!g || n != p->numel) {
            missing++;
            free(g);
            continue;
        }
        double eg = rel_err(r1_model_grads(m) + p->offset, g, n);
        if (eg > worst) {
            worst = eg;
            worst_name = p->name;
        }
        bad += eg > 1e-4;
        free(g);
    }
    ok(missing == 0, "%s: a reference gradient for each of %d tensors", fx, r1_model_nparams(m));
    ok(bad == 0, "%s: every gradient matches (worst %.2e at %s)", fx, worst, worst_name);
    r1_st_close(ex);
    r1_model_free(m);
}

static void check_roundtrip(void)
{
    char dir[4096], tmp[] = "/tmp/r1-model-XXXXXX";
    snprintf(dir, sizeof dir, "%s/tests/data/tiny_moe", srcdir);
    r1_error err = {0};
    r1_model *a = NULL, *b = NULL, *c = NULL;
    r1_model_load(&a, dir, &err);
    float *bias = r1_model_router_bias(a, 1);
    bias[3] = 0.125f; /* make sure the biases travel too */
    ok(mkdtemp(tmp) != NULL, "temp folder");
    char f32[4200], bf16[4200];
    snprintf(f32, sizeof f32, "%s/f32", tmp);
    snprintf(bf16, sizeof bf16, "%s/bf16", tmp);
    ok(r1_model_save(a, f32, R1_DT_F32, &err) == R1_OK, "save F32");
    ok(r1_model_load(&b, f32, &err) == R1_OK, "load it back");
    ok(b && memcmp(r1_model_params(a), r1_model_params(b),
                   sizeof(float) * r1_model_numel(a)) == 0,
       "F32 round trip is bit-identical");
    ok(b && r1_model_router_bias(b, 1)[3] == 0.125f, "router biases round trip");
    ok(r1_model_save(a, bf16, R1_DT_BF16, &err) == R1_OK, "save BF16");
    ok(r1_model_load(&c, bf16, &err) == R1_OK, "load BF16");
    double worst = 0;
    if (c) {
        const float *pa = r1_model_params(a), *pc = r1_model_params(c);
        for (size_t i = 0; i < r1_model_numel(a); i++) {
            double d = fabs(pa[i] - pc[i]) / fmax(fabs(pa[i]), 1e-30);
            worst = d > worst ? d : worst;
        }
    }
    ok(c && worst <= 1.0 / 256, "BF16 round trip within bf16 precision (worst rel %.2e)", worst);
    char cfg[4300], *text = NULL;
    snprintf(cfg, sizeof cfg, "%s/config.json", f32);
    like(text = tu_slurp(cfg), "\"torch_dtype\": \"float32\"", "an F32 folder says float32");
    free(text);
    snprintf(cfg, sizeof cfg, "%s/config.json", bf16);
    like(text = tu_slurp(cfg), "\"torch_dtype\": \"bfloat16\"", "a BF16 folder says bfloat16");
    free(text);
    r1_model_free(a);
    r1_model_free(b);
    r1_model_free(c);
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    ok(system(cmd) == 0, "clean up");
}

/* Writes dir/config.json and a model.safetensors holding m's tensors, except that `drop` is left
 * out, `reshape` gets one element fewer, `extra` is added and the MTP embedding copy is
 * perturbed when `bad_copy`. */
static void write_variant(r1_model *m, const char *dir, const char *drop, const char *reshape,
                          const char *extra, int bad_copy)
{
    r1_model_save(m, dir, R1_DT_F32, NULL);
    r1_st_writer *w = r1_st_writer_new();
    static float perturbed[40 * 32];
    for (int i = 0; i < r1_model_nparams(m); i++) {
        const r1_param *p = r1_model_param(m, i);
        if (drop && !strcmp(p->name, drop))
            continue;
        int64_t sh[2] = {p->shape[0], p->shape[1]};
        if (reshape && !strcmp(p->name, reshape))
            sh[p->ndim - 1]--;
        r1_st_writer_add(w, p->name, R1_DT_F32, R1_DT_F32, r1_model_params(m) + p->offset,
                         p->ndim, sh, NULL);
    }
    for (int l = 1; l <= 3; l++) {
        char name[128];
        int64_t e[1] = {8};
        snprintf(name, sizeof name, "model.layers.%d.mlp.gate.e_score_correction_bias", l);
        r1_st_writer_add(w, name, R1_DT_F32, R1_DT_F32, r1_model_router_bias(m, l), 1, e, NULL);
    }
    memcpy(perturbed, r1_model_params(m), sizeof perturbed); /* the embedding comes first */
    if (bad_copy)
        perturbed[5] += 1;
    int64_t vc[2] = {40, 32};
    r1_st_writer_add(w, "model.layers.3.embed_tokens.weight", R1_DT_F32, R1_DT_F32, perturbed, 2,
                     vc, NULL);
    if (extra)
        r1_st_writer_add(w, extra, R1_DT_F32, R1_DT_F32, perturbed, 2, vc, NULL);
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    r1_st_writer_write(w, path, NULL);
    r1_st_writer_free(w);
}

/* A config promising MTP layers over weights without them (a Hugging Face fine-tune's
 * folder): the model loads without MTP, says so, and computes what the full one does. */
static void check_mtp_missing(void)
{
    char dir[4096], tmp[] = "/tmp/r1-nomtp-XXXXXX";
    snprintf(dir, sizeof dir, "%s/tests/data/tiny_moe", srcdir);
    r1_model *m = NULL, *x = NULL;
    r1_model_load(&m, dir, NULL);
    mkdtemp(tmp);
    r1_model_save(m, tmp, R1_DT_F32, NULL); /* config.json: num_nextn_predict_layers 1 */
    int L = r1_model_config(m)->num_hidden_layers;
    char pre[64], path[4200];
    snprintf(pre, sizeof pre, "model.layers.%d.", L);
    r1_st_writer *w = r1_st_writer_new();
    for (int i = 0; i < r1_model_nparams(m); i++) {
        const r1_param *p = r1_model_param(m, i);
        if (strncmp(p->name, pre, strlen(pre)) != 0)
            r1_st_writer_add(w, p->name, R1_DT_F32, R1_DT_F32, r1_model_params(m) + p->offset,
                             p->ndim, p->shape, NULL);
    }
    for (int l = 0; l < L; l++) {
        char name[128];
        int64_t e[1] = {r1_model_config(m)->n_routed_experts};
        snprintf(name, sizeof name, "model.layers.%d.mlp.gate.e_score_correction_bias", l);
        if (r1_model_router_bias(m, l))
            r1_st_writer_add(w, name, R1_DT_F32, R1_DT_F32, r1_model_router_bias(m, l), 1, e,
                             NULL);
    }
    snprintf(path, sizeof path, "%s/model.safetensors", tmp);
    r1_st_writer_write(w, path, NULL);
    r1_st_writer_free(w);
    r1_error err = {0};
    ok(r1_model_load(&x, tmp, &err) == R1_OK, "MTP promised, no MTP tensors: it loads");
    if (x) {
        is_int(r1_model_config(x)->num_nextn_predict_layers, 0, "... without MTP");
        like(r1_model_notice(x), "num_nextn_predict_layers is 1 but the weights have no MTP "
             "layer", "... and says so");
        int32_t tok[5] = {1, 7, 3, 9, 2};
        r1_fwd_opts o = r1_fwd_defaults();
        o.no_mtp = 1;
        r1_model_forward(m, tok, 1, 5, &o, NULL, NULL);
        size_t n = 5 * (size_t)r1_model_config(m)->vocab_size;
        float *want = malloc(sizeof(float) * n);
        memcpy(want, r1_model_logits(m), sizeof(float) * n);
        r1_model_forward(x, tok, 1, 5, NULL, NULL, NULL);
        ok(memcmp(want, r1_model_logits(x), sizeof(float) * n) == 0,
           "... with the full model's logits, bit for bit");
        free(want);
    }
    is_str(r1_model_notice(m), "", "a complete folder loads without a notice");
    r1_model_free(x);
    r1_model_free(m);
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    system(cmd);
}

static void check_bad_checkpoints(void)
{
    char dir[4096], tmp[] = "/tmp/r1-bad-XXXXXX";
    snprintf(dir, sizeof dir, "%s/tests/data/tiny_moe", srcdir);
    r1_model *m = NULL, *x = NULL;
    r1_model_load(&m, dir, NULL);
    mkdtemp(tmp);
    r1_error err = {0};

    write_variant(m, tmp, NULL, NULL, NULL, 0);
    ok(r1_model_load(&x, tmp, &err) == R1_OK, "the unmodified variant loads");
    r1_model_free(x);
    x = NULL;

    write_variant(m, tmp, "model.layers.2.mlp.experts.5.up_proj.weight", NULL, NULL, 0);
    is_int(r1_model_load(&x, tmp, &err), R1_EFORMAT, "a missing tensor is refused");
    like(err.msg, "model.layers.2.mlp.experts.5.up_proj.weight", "the message names it");
    like(err.msg, "missing", "and says it is missing");

    write_variant(m, tmp, NULL, "model.layers.1.self_attn.kv_b_proj.weight", NULL, 0);
    is_int(r1_model_load(&x, tmp, &err), R1_EFORMAT, "a shape that disagrees with the config");
    like(err.msg, "model.layers.1.self_attn.kv_b_proj.weight", "the message names the tensor");
    like(err.msg, "[32, 16]", "and the expected shape");

    write_variant(m, tmp, NULL, NULL, "model.layers.0.mlp.experts.0.gate_proj.weight", 0);
    is_int(r1_model_load(&x, tmp, &err), R1_EFORMAT, "an unexpected tensor is refused");
    like(err.msg, "unexpected tensor model.layers.0.mlp.experts.0.gate_proj.weight",
         "the message names it");

    write_variant(m, tmp, NULL, NULL, NULL, 1);
    is_int(r1_model_load(&x, tmp, &err), R1_EFORMAT, "an MTP copy that differs is refused");
    like(err.msg, "model.layers.3.embed_tokens.weight", "the message names the copy");

    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", tmp);
    FILE *f = fopen(path, "r+b");
    ftruncate(fileno(f), 1000);
    fclose(f);
    is_int(r1_model_load(&x, tmp, &err), R1_EFORMAT, "a truncated checkpoint is refused");
    like(err.msg, "model.safetensors", "the message names the file");

    int32_t bad[3] = {1, 40, 2};
    is_int(r1_model_forward(m, bad, 1, 3, NULL, NULL, &err), R1_EINVAL,
           "a token id out of range is refused");
    like(err.msg, "token 1 of row 0 is 40", "the message names the position and the id");
    is_int(r1_model_backward(m, &err), R1_EINVAL, "backward without a forward is refused");
    ok(x == NULL, "failed loads return no model");
    r1_model_free(m);
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    system(cmd);
}

/* Forwards of changing shapes reuse the buffers of a larger one (r1__alloc_acts): a forward
 * and backward after others, larger, smaller, longer or wider, gives the bits of the same
 * forward and backward on a fresh model, the MTP depth included. */
static void check_shapes(void)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/data/tiny_moe", srcdir);
    r1_model *m = NULL;
    r1_error err = {0};
    if (r1_model_load(&m, dir, &err) != R1_OK) {
        ok(0, "tiny_moe loads: %s", err.msg);
        return;
    }
    int V = r1_model_config(m)->vocab_size;
    int32_t tok[4 * 24];
    for (int i = 0; i < 4 * 24; i++)
        tok[i] = (i * 7 + 3) % V;
    /* B x T in order: wider and longer first, then smaller (reused), longer (grown), wider */
    static const int shapes[][2] = {{3, 12}, {2, 9}, {1, 20}, {2, 7}, {4, 6}, {2, 9}};
    size_t np = r1_model_numel(m);
    float *g = malloc(sizeof(float) * np);
    int same = 1;
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        int B = shapes[i][0], T = shapes[i][1];
        r1_loss l1 = {0}, l2 = {0};
        r1_model *f = NULL;
        r1_model_load(&f, dir, NULL);
        r1_model_zero_grad(m);
        r1_model_zero_grad(f);
        int run = r1_model_forward(m, tok, B, T, NULL, &l1, &err) == R1_OK &&
                  r1_model_forward(f, tok, B, T, NULL, &l2, &err) == R1_OK;
        size_t nl = (size_t)B * T * V;
        int eq = run && l1.loss == l2.loss && l1.mtp == l2.mtp &&
                 !memcmp(r1_model_logits(m), r1_model_logits(f), sizeof(float) * nl);
        run = run && r1_model_backward(m, &err) == R1_OK && r1_model_backward(f, &err) == R1_OK;
        memcpy(g, r1_model_grads(f), sizeof(float) * np);
        eq = eq && run && !memcmp(g, r1_model_grads(m), sizeof(float) * np);
        if (!eq)
            diag("%d x %d after the shapes before it: differs from a fresh model (%s)", B, T,
                 run ? "loss, logits or gradients" : err.msg);
        same &= eq;
        r1_model_free(f);
    }
    ok(same, "forwards of 3x12, 2x9, 1x20, 2x7, 4x6, 2x9 in a row: each one's loss, logits "
       "and gradients equal a fresh model's, bit for bit");
    free(g);
    r1_model_free(m);
}

int main(void)
{
    const char *s = getenv("top_srcdir");
    snprintf(srcdir, sizeof srcdir, "%s", s ? s : ".");
    check_fixture("tiny_moe");
    check_fixture("tiny_variant");
    check_fixture("tiny_dense");
    check_mtp_missing();
    check_roundtrip();
    check_bad_checkpoints();
    check_shapes();
    return done_testing();
}
