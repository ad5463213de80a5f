/* SPDX-License-Identifier: GPL-3.0-or-later */
/* t_gguf.c — GGUF export and reading (r1_gguf.h).
 *
 * Round trip: models of three shapes (MoE with groups, shared experts, q_lora and two MTP
 * layers and a vocabulary padded past the tokenizer's; dense with a plain q_proj and tied
 * embeddings; MoE without shared experts or groups) are written as F32, BF16 and F16 and read
 * back through the reader: every key with its type and value, every tensor's name, shape, type
 * and bytes against what the model holds, mapped here independently of gguf_export.c (the
 * bf16 / f16 bytes are the engine's own r1_f32_to_bf16 / r1_f32_to_f16 of the fp32 values).
 * Malformed files: truncated at many points, a bad magic, other versions, hand-made headers
 * with a bad value type, a bad bool, a misaligned tensor, a duplicate key; each error's status
 * and message (offset, field, what was expected).  Writer and export argument errors. */
#include <config.h>

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "r1_bf16.h"
#include "r1_gguf.h"
#include "r1_rng.h"
#include "tap.h"
#include "testutil.h"

/* ------------------------------------------------------------------ the models */

static r1_config base_config(void)
{
    r1_config c;
    r1_config_preset(&c, "tiny", NULL);
    c.vocab_size = 140; /* 12 ids past the built-in tokenizer's 128 */
    c.hidden_size = 32;
    c.intermediate_size = 48;
    c.moe_intermediate_size = 16;
    c.num_hidden_layers = 3;
    c.num_attention_heads = 2;
    c.first_k_dense_replace = 1;
    c.q_lora_rank = 24;
    c.kv_lora_rank = 16;
    c.qk_nope_head_dim = 8;
    c.qk_rope_head_dim = 4;
    c.v_head_dim = 6;
    c.n_routed_experts = 8;
    c.n_shared_experts = 2;
    c.num_experts_per_tok = 2;
    c.n_group = 4;
    c.topk_group = 2;
    c.num_nextn_predict_layers = 2;
    c.max_position_embeddings = 64;
    c.rope_theta = 5000.0f;
    c.rms_norm_eps = 1e-5f;
    c.routed_scaling_factor = 1.75f;
    return c;
}

/* A model of config c with random weights and random router biases. */
static r1_model *make_model(const r1_config *c, uint64_t seed)
{
    r1_model *m = NULL;
    r1_error err = {0};
    if (r1_model_new(&m, c, &err) != R1_OK) {
        printf("Bail out! %s\n", err.msg);
        exit(1);
    }
    r1_model_init(m, seed);
    r1_rng rng;
    r1_rng_seed(&rng, seed + 7);
    for (int l = 0; l < r1_model_nlayers_total(m); l++) {
        float *b = r1_model_router_bias(m, l);
        for (int e = 0; b && e < c->n_routed_experts; e++)
            b[e] = (float)r1_rng_normal(&rng) * 0.1f;
    }
    return m;
}

/* ------------------------------------------------------------------ what the file must hold */

typedef struct {
    char name[64];
    int ndim;
    uint64_t ne[4];
    int f32; /* always F32 (norms, biases, the router) */
    float *v; /* owned, numel(ne) values in the file's order */
} want_tensor;

typedef struct {
    want_tensor t[512];
    int n;
} want_list;

/* The values of the model's tensor named by fmt, ... (borrowed); bails out when absent. */
static const float *P(r1_model *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const float *P(r1_model *m, const char *fmt, ...)
{
    char name[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    const r1_param *p = r1_model_param_find(m, name);
    if (!p) {
        printf("Bail out! the model has no %s\n", name);
        exit(1);
    }
    return r1_model_params(m) + p->offset;
}

static want_tensor *want(want_list *w, const char *name, int l, int f32, int ndim, uint64_t a,
                         uint64_t b, uint64_t c)
{
    want_tensor *t = &w->t[w->n++];
    snprintf(t->name, sizeof t->name, name, l);
    t->ndim = ndim;
    t->ne[0] = a, t->ne[1] = ndim > 1 ? b : 1, t->ne[2] = ndim > 2 ? c : 1, t->ne[3] = 1;
    t->f32 = f32;
    size_t n = (size_t)a * (ndim > 1 ? b : 1) * (ndim > 2 ? c : 1);
    t->v = malloc(sizeof(float) * n);
    return t;
}

/* A plain copy of HF tensor "model.layers.<l>.<hf>" (or hf itself when l < 0) as GGUF
 * tensor name (formatted with l). */
static void copy(want_list *w, r1_model *m, const char *name, int l, int f32, int ndim,
                 uint64_t a, uint64_t b, const char *hf)
{
    want_tensor *t = want(w, name, l, f32, ndim, a, b, 1);
    const float *v = l < 0 ? P(m, "%s", hf) : P(m, "model.layers.%d.%s", l, hf);
    memcpy(t->v, v, sizeof(float) * a * (ndim > 1 ? b : 1));
}

static void want_layer(want_list *w, r1_model *m, int l)
{
    const r1_config *c = r1_model_config(m);
    uint64_t C = c->hidden_size, H = c->num_attention_heads, dn = c->qk_nope_head_dim;
    uint64_t dr = c->qk_rope_head_dim, dv = c->v_head_dim, qr = c->q_lora_rank;
    uint64_t r = c->kv_lora_rank;
    if (l >= c->num_hidden_layers) {
        copy(w, m, "blk.%d.nextn.eh_proj.weight", l, 0, 2, 2 * C, C, "eh_proj.weight");
        copy(w, m, "blk.%d.nextn.enorm.weight", l, 1, 1, C, 0, "enorm.weight");
        copy(w, m, "blk.%d.nextn.hnorm.weight", l, 1, 1, C, 0, "hnorm.weight");
        copy(w, m, "blk.%d.nextn.shared_head_norm.weight", l, 1, 1, C, 0,
             "shared_head.norm.weight");
    }
    copy(w, m, "blk.%d.attn_norm.weight", l, 1, 1, C, 0, "input_layernorm.weight");
    if (qr) {
        copy(w, m, "blk.%d.attn_q_a.weight", l, 0, 2, C, qr, "self_attn.q_a_proj.weight");
        copy(w, m, "blk.%d.attn_q_a_norm.weight", l, 1, 1, qr, 0,
             "self_attn.q_a_layernorm.weight");
        copy(w, m, "blk.%d.attn_q_b.weight", l, 0, 2, qr, H * (dn + dr),
             "self_attn.q_b_proj.weight");
    } else {
        copy(w, m, "blk.%d.attn_q.weight", l, 0, 2, C, H * (dn + dr),
             "self_attn.q_proj.weight");
    }
    copy(w, m, "blk.%d.attn_kv_a_mqa.weight", l, 0, 2, C, r + dr,
         "self_attn.kv_a_proj_with_mqa.weight");
    copy(w, m, "blk.%d.attn_kv_a_norm.weight", l, 1, 1, r, 0,
         "self_attn.kv_a_layernorm.weight");
    /* kv_b_proj [H (dn + dv), r]: k_b[h][i][j] = kv_b[h (dn + dv) + j][i], v_b[h][j][i] =
     * kv_b[h (dn + dv) + dn + j][i] */
    const float *kv = P(m, "model.layers.%d.self_attn.kv_b_proj.weight", l);
    want_tensor *kb = want(w, "blk.%d.attn_k_b.weight", l, 0, 3, dn, r, H);
    want_tensor *vb = want(w, "blk.%d.attn_v_b.weight", l, 0, 3, r, dv, H);
    for (uint64_t h = 0; h < H; h++)
        for (uint64_t i = 0; i < r; i++) {
            for (uint64_t j = 0; j < dn; j++)
                kb->v[(h * r + i) * dn + j] = kv[(h * (dn + dv) + j) * r + i];
            for (uint64_t j = 0; j < dv; j++)
                vb->v[(h * dv + j) * r + i] = kv[(h * (dn + dv) + dn + j) * r + i];
        }
    copy(w, m, "blk.%d.attn_output.weight", l, 0, 2, H * dv, C, "self_attn.o_proj.weight");
    copy(w, m, "blk.%d.ffn_norm.weight", l, 1, 1, C, 0, "post_attention_layernorm.weight");
    if (!r1_config_is_moe(c, l)) {
        uint64_t I = c->intermediate_size;
        copy(w, m, "blk.%d.ffn_gate.weight", l, 0, 2, C, I, "mlp.gate_proj.weight");
        copy(w, m, "blk.%d.ffn_up.weight", l, 0, 2, C, I, "mlp.up_proj.weight");
        copy(w, m, "blk.%d.ffn_down.weight", l, 0, 2, I, C, "mlp.down_proj.weight");
        return;
    }
    uint64_t E = c->n_routed_experts, Ie = c->moe_intermediate_size;
    copy(w, m, "blk.%d.ffn_gate_inp.weight", l, 1, 2, C, E, "mlp.gate.weight");
    want_tensor *b = want(w, "blk.%d.exp_probs_b.bias", l, 1, 1, E, 1, 1);
    memcpy(b->v, r1_model_router_bias(m, l), sizeof(float) * E);
    static const char *const proj[3] = {"gate_proj", "up_proj", "down_proj"};
    static const char *const gname[3] = {"blk.%d.ffn_gate_exps.weight", "blk.%d.ffn_up_exps.weight",
                                         "blk.%d.ffn_down_exps.weight"};
    for (int k = 0; k < 3; k++) {
        want_tensor *t = want(w, gname[k], l, 0, 3, k < 2 ? C : Ie, k < 2 ? Ie : C, E);
        for (uint64_t e = 0; e < E; e++)
            memcpy(t->v + e * C * Ie,
                   P(m, "model.layers.%d.mlp.experts.%d.%s.weight", l, (int)e, proj[k]),
                   sizeof(float) * C * Ie);
    }
    static const char *const sname[3] = {"blk.%d.ffn_gate_shexp.weight",
                                         "blk.%d.ffn_up_shexp.weight",
                                         "blk.%d.ffn_down_shexp.weight"};
    uint64_t S = c->n_shared_experts ? c->n_shared_experts : 1, Is = Ie * S;
    for (int k = 0; k < 3; k++) {
        want_tensor *t = want(w, sname[k], l, 0, 2, k < 2 ? C : Is, k < 2 ? Is : C, 1);
        if (c->n_shared_experts)
            memcpy(t->v, P(m, "model.layers.%d.mlp.shared_experts.%s.weight", l, proj[k]),
                   sizeof(float) * C * Is);
        else /* zeros stand in for the shared expert llama.cpp requires */
            memset(t->v, 0, sizeof(float) * C * Is);
    }
}

static void want_tensors(want_list *w, r1_model *m)
{
    const r1_config *c = r1_model_config(m);
    uint64_t C = c->hidden_size, V = c->vocab_size;
    w->n = 0;
    copy(w, m, "token_embd.weight", -1, 0, 2, C, V, "model.embed_tokens.weight");
    copy(w, m, "output_norm.weight", -1, 1, 1, C, 0, "model.norm.weight");
    if (!c->tie_word_embeddings)
        copy(w, m, "output.weight", -1, 0, 2, C, V, "lm_head.weight");
    for (int l = 0; l < r1_model_nlayers_total(m); l++)
        want_layer(w, m, l);
}

static void free_want(want_list *w)
{
    for (int i = 0; i < w->n; i++)
        free(w->t[i].v);
    w->n = 0;
}

/* ------------------------------------------------------------------ checking a file */

/* The tensors of the file against w: every wanted one present with its shape, type and bytes,
 * and nothing else. */
static void check_tensors(const r1_gguf *g, const want_list *w, r1_dtype dtype, const char *what)
{
    uint32_t mat = dtype == R1_DT_F32 ? R1_GGML_F32 : dtype == R1_DT_BF16 ? R1_GGML_BF16
                                                                          : R1_GGML_F16;
    int bad = 0;
    for (int i = 0; i < w->n && bad < 5; i++) {
        const want_tensor *t = &w->t[i];
        int k = r1_gguf_tensor_find(g, t->name);
        const r1_gguf_tensor *gt = r1_gguf_tensor_at(g, k);
        uint32_t type = t->f32 ? R1_GGML_F32 : mat;
        int same = gt && gt->ndim == t->ndim && gt->type == type;
        for (int d = 0; same && d < 4; d++)
            same = gt->ne[d] == t->ne[d];
        if (!same) {
            diag("%s: tensor %s: %s", what, t->name, gt ? "shape or type differs" : "missing");
            bad++;
            continue;
        }
        size_t n = (size_t)(t->ne[0] * t->ne[1] * t->ne[2]);
        size_t es = type == R1_GGML_F32 ? 4 : 2;
        unsigned char *got = malloc(n * es), *exp = malloc(n * es);
        r1_error err = {0};
        if (r1_gguf_read_tensor(g, k, got, n * es, &err) != R1_OK) {
            diag("%s: %s", what, err.msg);
            bad++;
        } else {
            for (size_t j = 0; j < n; j++) {
                uint16_t h = type == R1_GGML_BF16 ? r1_f32_to_bf16(t->v[j])
                                                  : r1_f32_to_f16(t->v[j]);
                memcpy(exp + j * es, type == R1_GGML_F32 ? (const void *)&t->v[j] : &h, es);
            }
            if (memcmp(got, exp, n * es) != 0) {
                diag("%s: tensor %s: the bytes differ", what, t->name);
                bad++;
            }
        }
        free(got);
        free(exp);
    }
    ok(!bad, "%s: all %d tensors with their names, shapes, types and bytes", what, w->n);
    is_int(r1_gguf_tensor_count(g), w->n, "%s: no other tensor", what);
}

typedef struct {
    const char *key;
    r1_gguf_type type;
    double v; /* numbers and bools */
    const char *s;
} want_kv;

/* Every key of the file: the ones in kv[n] with their types and values, the vocabulary's
 * (checked against the tokenizer) and nothing else. */
static void check_kvs(const r1_gguf *g, const want_kv *kv, int n, const r1_tokenizer *tok, int V,
                      const char *what)
{
    int bad = 0;
    for (int i = 0; i < n; i++) {
        const r1_gguf_kv *k = r1_gguf_kv_find(g, kv[i].key);
        int same = k && k->type == kv[i].type;
        if (same && k->type == R1_GGUF_STRING)
            same = !strcmp(k->str, kv[i].s);
        else if (same && k->type == R1_GGUF_F32)
            same = (float)k->f == (float)kv[i].v;
        else if (same)
            same = (double)k->u == kv[i].v;
        if (!same) {
            diag("%s: key %s: %s", what, kv[i].key, k ? "type or value differs" : "missing");
            bad++;
        }
    }
    ok(!bad, "%s: the %d hyper-parameter and general keys", what, n);
    const r1_gguf_kv *toks = r1_gguf_kv_find(g, "tokenizer.ggml.tokens");
    const r1_gguf_kv *types = r1_gguf_kv_find(g, "tokenizer.ggml.token_type");
    const r1_gguf_kv *merges = r1_gguf_kv_find(g, "tokenizer.ggml.merges");
    ok(toks && toks->arr_type == R1_GGUF_STRING && toks->n == (uint64_t)V && types &&
           types->arr_type == R1_GGUF_I32 && types->n == (uint64_t)V,
       "%s: tokens and token types, one per id of the model", what);
    ok(merges && merges->type == R1_GGUF_ARRAY && merges->arr_type == R1_GGUF_STRING &&
           merges->n == 0,
       "%s: no merges", what);
    bad = 0;
    int TV = r1_tokenizer_vocab_size(tok);
    for (int id = 0; toks && types && toks->n == (uint64_t)V && id < V; id++) {
        const char *t = id < TV ? r1_tokenizer_token(tok, id) : NULL;
        char expect[32];
        int32_t type = ((const int32_t *)types->data)[id], want_type;
        if (!t)
            snprintf(expect, sizeof expect, "[PAD%d]", id), want_type = 5;
        else if (r1_tokenizer_is_special(tok, id))
            snprintf(expect, sizeof expect, "%s", t), want_type = 3;
        else if (t[0] == ' ')
            snprintf(expect, sizeof expect, "\xc4\xa0"), want_type = 1; /* U+0120 */
        else if (t[0] == '\n')
            snprintf(expect, sizeof expect, "\xc4\x8a"), want_type = 1; /* U+010A */
        else
            snprintf(expect, sizeof expect, "%s", t), want_type = 1;
        const char *got = r1_gguf_arr_str(toks, (uint64_t)id, NULL);
        if (strcmp(got, expect) || type != want_type) {
            if (bad++ < 3)
                diag("%s: token %d: \"%s\" type %d, expected \"%s\" type %d", what, id, got,
                     type, expect, want_type);
        }
    }
    ok(!bad, "%s: each token's byte-level text and type (control for the special ones)", what);
    /* and the three arrays: tokens, types, merges */
    is_int(r1_gguf_kv_count(g), n + 3, "%s: no other key", what);
}

/* The keys a model of config c must carry. */
static int wanted_kvs(const r1_config *c, const r1_tokenizer *tok, r1_dtype dt, want_kv *kv)
{
    int n = 0, L = c->num_hidden_layers, D = c->num_nextn_predict_layers;
    int moe = c->n_routed_experts > 0;
#define K(k, t, v) kv[n++] = (want_kv){k, t, (double)(v), NULL}
#define S(k, s) kv[n++] = (want_kv){k, R1_GGUF_STRING, 0, s}
    S("general.architecture", "deepseek2");
    S("general.name", "t_gguf");
    K("general.alignment", R1_GGUF_U32, 32);
    K("general.file_type", R1_GGUF_U32, dt == R1_DT_F32 ? 0 : dt == R1_DT_F16 ? 1 : 32);
    K("deepseek2.block_count", R1_GGUF_U32, L + D);
    K("deepseek2.context_length", R1_GGUF_U32, c->max_position_embeddings);
    K("deepseek2.embedding_length", R1_GGUF_U32, c->hidden_size);
    K("deepseek2.feed_forward_length", R1_GGUF_U32, c->intermediate_size);
    K("deepseek2.vocab_size", R1_GGUF_U32, c->vocab_size);
    K("deepseek2.attention.head_count", R1_GGUF_U32, c->num_attention_heads);
    K("deepseek2.attention.head_count_kv", R1_GGUF_U32, 1);
    K("deepseek2.attention.layer_norm_rms_epsilon", R1_GGUF_F32, c->rms_norm_eps);
    K("deepseek2.attention.q_lora_rank", R1_GGUF_U32, c->q_lora_rank);
    K("deepseek2.attention.kv_lora_rank", R1_GGUF_U32, c->kv_lora_rank);
    K("deepseek2.attention.key_length", R1_GGUF_U32, c->kv_lora_rank + c->qk_rope_head_dim);
    K("deepseek2.attention.value_length", R1_GGUF_U32, c->kv_lora_rank);
    K("deepseek2.attention.key_length_mla", R1_GGUF_U32,
      c->qk_nope_head_dim + c->qk_rope_head_dim);
    K("deepseek2.attention.value_length_mla", R1_GGUF_U32, c->v_head_dim);
    K("deepseek2.rope.dimension_count", R1_GGUF_U32, c->qk_rope_head_dim);
    K("deepseek2.rope.freq_base", R1_GGUF_F32, c->rope_theta);
    K("deepseek2.leading_dense_block_count", R1_GGUF_U32, moe ? c->first_k_dense_replace : L + D);
    K("deepseek2.expert_feed_forward_length", R1_GGUF_U32, c->moe_intermediate_size);
    K("deepseek2.expert_shared_count", R1_GGUF_U32,
      moe && !c->n_shared_experts ? 1 : c->n_shared_experts);
    if (moe) {
        K("deepseek2.expert_count", R1_GGUF_U32, c->n_routed_experts);
        K("deepseek2.expert_used_count", R1_GGUF_U32, c->num_experts_per_tok);
        K("deepseek2.expert_weights_scale", R1_GGUF_F32, c->routed_scaling_factor);
        K("deepseek2.expert_weights_norm", R1_GGUF_BOOL, c->norm_topk_prob);
        K("deepseek2.expert_gating_func", R1_GGUF_U32, 2);
        if (c->n_group > 1 && c->topk_group < c->n_group) {
            K("deepseek2.expert_group_count", R1_GGUF_U32, c->n_group);
            K("deepseek2.expert_group_used_count", R1_GGUF_U32, c->topk_group);
        }
    }
    if (D)
        K("deepseek2.nextn_predict_layers", R1_GGUF_U32, D);
    S("tokenizer.ggml.model", "gpt2");
    S("tokenizer.ggml.pre", "default");
    K("tokenizer.ggml.bos_token_id", R1_GGUF_U32, r1_tokenizer_special_id(tok, R1_TOK_BOS));
    K("tokenizer.ggml.eos_token_id", R1_GGUF_U32, r1_tokenizer_special_id(tok, R1_TOK_EOS));
    K("tokenizer.ggml.padding_token_id", R1_GGUF_U32, r1_tokenizer_special_id(tok, R1_TOK_PAD));
    K("tokenizer.ggml.add_bos_token", R1_GGUF_BOOL, 0);
    K("tokenizer.ggml.add_eos_token", R1_GGUF_BOOL, 0);
    S("tokenizer.chat_template", r1_tokenizer_chat_template());
#undef K
#undef S
    return n;
}

/* Writes m as dtype and checks the file through the reader. */
static void round_trip(r1_model *m, const r1_tokenizer *tok, r1_dtype dt, const char *what)
{
    r1_gguf_opts o = r1_gguf_defaults();
    o.dtype = dt;
    o.name = "t_gguf";
    r1_error err = {0};
    const char *path = tu_at("model.gguf");
    if (!ok(r1_gguf_save(m, tok, path, &o, &err) == R1_OK, "%s: r1_gguf_save", what)) {
        diag("%s", err.msg);
        return;
    }
    r1_gguf *g = NULL;
    if (!ok(r1_gguf_open(&g, path, &err) == R1_OK, "%s: the reader opens it", what)) {
        diag("%s", err.msg);
        return;
    }
    ok(r1_gguf_version(g) == 3 && r1_gguf_alignment(g) == 32 && r1_gguf_data_offset(g) % 32 == 0,
       "%s: version 3, alignment 32, the data section aligned", what);
    want_kv kv[64];
    int n = wanted_kvs(r1_model_config(m), tok, dt, kv);
    check_kvs(g, kv, n, tok, r1_model_config(m)->vocab_size, what);
    want_list *w = calloc(1, sizeof *w);
    want_tensors(w, m);
    check_tensors(g, w, dt, what);
    free_want(w);
    free(w);
    r1_gguf_close(g);
}

/* ------------------------------------------------------------------ malformed files */

static unsigned char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    struct stat sb;
    if (!f || fstat(fileno(f), &sb) != 0) {
        printf("Bail out! cannot read %s\n", path);
        exit(1);
    }
    unsigned char *p = malloc((size_t)sb.st_size);
    *n = fread(p, 1, (size_t)sb.st_size, f);
    fclose(f);
    return p;
}

static void write_all(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        printf("Bail out! cannot write %s\n", path);
        exit(1);
    }
}

/* Opens bytes p[n] as a file; returns the status and leaves the message in err. */
static r1_status open_bytes(const void *p, size_t n, r1_error *err)
{
    const char *path = tu_at("bad.gguf");
    write_all(path, p, n);
    r1_gguf *g = NULL;
    r1_status s = r1_gguf_open(&g, path, err);
    ok(s == R1_OK || g == NULL, "a failed open returns no handle");
    r1_gguf_close(g);
    return s;
}

/* A small header built by hand: magic, version, counts, then whatever the test appends. */
typedef struct {
    unsigned char b[512];
    size_t n;
} hand;

static void h_put(hand *h, const void *p, size_t n)
{
    memcpy(h->b + h->n, p, n);
    h->n += n;
}

static void h_u32(hand *h, uint32_t v)
{
    h_put(h, &v, 4);
}

static void h_u64(hand *h, uint64_t v)
{
    h_put(h, &v, 8);
}

static void h_str(hand *h, const char *s)
{
    h_u64(h, strlen(s));
    h_put(h, s, strlen(s));
}

static hand h_start(uint64_t nt, uint64_t nkv)
{
    hand h = {{0}, 0};
    h_put(&h, "GGUF", 4);
    h_u32(&h, 3);
    h_u64(&h, nt);
    h_u64(&h, nkv);
    return h;
}

static void malformed(void)
{
    r1_model *m;
    r1_config c = base_config();
    m = make_model(&c, 5);
    r1_tokenizer *tok = r1_tokenizer_new_builtin();
    r1_error err = {0};
    r1_gguf_opts o = r1_gguf_defaults();
    r1_gguf_save(m, tok, tu_at("good.gguf"), &o, &err);
    size_t n;
    unsigned char *good = read_all(tu_at("good.gguf"), &n);
    unsigned char *b = malloc(n);

    /* truncated anywhere: in the header, the keys, the tensor infos, the data */
    static const double cuts[] = {0.0, 0.00001, 0.0001, 0.001, 0.003, 0.01, 0.3, 0.999999};
    int all_format = 1;
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        size_t cut = (size_t)(cuts[i] * (double)n) + (i == 0 ? 3 : 0);
        r1_status s = open_bytes(good, cut, &err);
        if (s != R1_EFORMAT) {
            diag("cut at %zu of %zu: status %d (%s)", cut, n, s, err.msg);
            all_format = 0;
        }
    }
    ok(all_format, "a file cut short anywhere is R1_EFORMAT");
    open_bytes(good, 20, &err);
    like(err.msg, "offset 16: truncated: the key/value count needs 8 bytes but the file ends at 20",
         "a cut in the header names the offset and the field");
    open_bytes(good, 100, &err);
    like(err.msg, "truncated or corrupt: 96 tensors and 42 key/value pairs cannot fit",
         "a cut that leaves too little for the counts says so");
    r1_gguf *g = NULL;
    size_t data_off = 0;
    if (r1_gguf_open(&g, tu_at("good.gguf"), &err) == R1_OK)
        data_off = (size_t)r1_gguf_data_offset(g);
    r1_gguf_close(g);
    open_bytes(good, data_off - 40, &err); /* inside the last tensor info */
    like(err.msg, "truncated: a tensor dimension needs 8 bytes but the file ends at",
         "a cut in the tensor infos names the field");
    open_bytes(good, n - 1, &err);
    like(err.msg, "beyond the end of the file", "a cut in the data names the tensor past the end");
    like(err.msg, "bad.gguf", "... and the file");

    memcpy(b, good, n);
    memcpy(b, "GGUX", 4);
    is_int(open_bytes(b, n, &err), R1_EFORMAT, "a bad magic is R1_EFORMAT");
    like(err.msg, "offset 0: bad magic 47 47 55 58: expected \"GGUF\"", "... naming what it found");
    for (uint32_t v = 1; v <= 4; v += 3) {
        memcpy(b, good, n);
        memcpy(b + 4, &v, 4);
        is_int(open_bytes(b, n, &err), R1_EUNSUPPORTED, "version %u is R1_EUNSUPPORTED",
               (unsigned)v);
        char want_msg[64];
        snprintf(want_msg, sizeof want_msg, "offset 4: GGUF version %u: r1lab reads versions 2 "
                 "and 3", (unsigned)v);
        like(err.msg, want_msg, "... with the version and the ones read");
    }

    hand h = h_start(0, 1); /* an unknown value type */
    h_str(&h, "general.x");
    h_u32(&h, 99);
    is_int(open_bytes(h.b, h.n, &err), R1_EFORMAT, "an unknown value type is R1_EFORMAT");
    like(err.msg, "offset 41: key \"general.x\": unknown value type 99 (expected 0..12)",
         "... naming the offset, the key and the range");
    h = h_start(0, 1); /* a bool of 2 */
    h_str(&h, "general.flag");
    h_u32(&h, R1_GGUF_BOOL);
    h.b[h.n++] = 2;
    is_int(open_bytes(h.b, h.n, &err), R1_EFORMAT, "a bool other than 0 or 1 is R1_EFORMAT");
    like(err.msg, "key \"general.flag\": a bool must be 0 or 1, found 2", "... naming the key");
    h = h_start(0, 2); /* the same key twice */
    for (int i = 0; i < 2; i++) {
        h_str(&h, "general.n");
        h_u32(&h, R1_GGUF_U32);
        h_u32(&h, 7);
    }
    is_int(open_bytes(h.b, h.n, &err), R1_EFORMAT, "a key given twice is R1_EFORMAT");
    like(err.msg, "key \"general.n\" appears twice", "... naming it");
    h = h_start(0, 1); /* a string longer than the file */
    h_str(&h, "general.name");
    h_u32(&h, R1_GGUF_STRING);
    h_u64(&h, 1000);
    is_int(open_bytes(h.b, h.n, &err), R1_EFORMAT, "a string running past the end is R1_EFORMAT");
    like(err.msg, "length 1000 runs past the end of the file", "... with its length");
    h = h_start(0, 1); /* nested arrays */
    h_str(&h, "general.nested");
    h_u32(&h, R1_GGUF_ARRAY);
    h_u32(&h, R1_GGUF_ARRAY);
    h_u64(&h, 0);
    is_int(open_bytes(h.b, h.n, &err), R1_EUNSUPPORTED, "nested arrays are R1_EUNSUPPORTED");
    h = h_start(1, 0); /* a tensor whose offset breaks the alignment */
    h_str(&h, "t");
    h_u32(&h, 1);
    h_u64(&h, 4);
    h_u32(&h, R1_GGML_F32);
    h_u64(&h, 4);
    while (h.n % 32)
        h.b[h.n++] = 0;
    h.n += 64;
    is_int(open_bytes(h.b, h.n, &err), R1_EFORMAT, "a misaligned tensor offset is R1_EFORMAT");
    like(err.msg, "tensor \"t\": data offset 4 is not a multiple of the alignment 32",
         "... naming the tensor and the alignment");
    h = h_start(0, 1); /* general.alignment not a power of two */
    h_str(&h, "general.alignment");
    h_u32(&h, R1_GGUF_U32);
    h_u32(&h, 48);
    is_int(open_bytes(h.b, h.n, &err), R1_EFORMAT, "an alignment of 48 is R1_EFORMAT");
    like(err.msg, "general.alignment\": expected a u32 power of two", "... naming the key");
    h = h_start(UINT64_MAX / 2, 0); /* counts no file could hold */
    is_int(open_bytes(h.b, h.n, &err), R1_EFORMAT, "an absurd tensor count is R1_EFORMAT");

    is_int(r1_gguf_open(&g, tu_at("absent.gguf"), &err), R1_ENOTFOUND, "a missing file");
    is_int(r1_gguf_open(&g, tu_dir, &err), R1_EIO, "a folder is not a GGUF");
    if (r1_gguf_open(&g, tu_at("good.gguf"), &err) == R1_OK) {
        float x;
        is_int(r1_gguf_read_tensor(g, 0, &x, sizeof x, &err), R1_EINVAL,
               "reading into a buffer of the wrong size is R1_EINVAL");
        is_int(r1_gguf_read_tensor(g, 9999, &x, sizeof x, &err), R1_EINVAL,
               "reading a tensor that does not exist is R1_EINVAL");
        r1_gguf_close(g);
    }
    free(b);
    free(good);
    r1_tokenizer_free(tok);
    r1_model_free(m);
}

/* ------------------------------------------------------------------ argument errors */

static void bad_arguments(void)
{
    r1_error err = {0};
    r1_gguf_writer *w = r1_gguf_writer_new();
    is_int(r1_gguf_writer_u32(w, "a.b", 1, &err), R1_OK, "writer: a key");
    is_int(r1_gguf_writer_u32(w, "a.b", 2, &err), R1_EINVAL, "writer: the same key again");
    like(err.msg, "\"a.b\" was already added", "... named");
    is_int(r1_gguf_writer_str(w, "", "x", &err), R1_EINVAL, "writer: an empty key");
    is_int(r1_gguf_writer_str(w, "has space", "x", &err), R1_EINVAL, "writer: a key with a space");
    float v[4] = {1, 2, 3, 4};
    uint64_t ne[1] = {4};
    char longname[80];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    is_int(r1_gguf_writer_tensor(w, longname, R1_GGML_F32, 1, ne, v, NULL, NULL, &err), R1_EINVAL,
           "writer: a tensor name past 63 bytes (llama.cpp's limit)");
    is_int(r1_gguf_writer_tensor(w, "t", 7, 1, ne, v, NULL, NULL, &err), R1_EINVAL,
           "writer: a quantised type");
    is_int(r1_gguf_writer_tensor(w, "t", R1_GGML_F32, 5, ne, v, NULL, NULL, &err), R1_EINVAL,
           "writer: rank 5");
    is_int(r1_gguf_writer_tensor(w, "t", R1_GGML_F16, 1, ne, v, NULL, NULL, &err), R1_OK,
           "writer: an F16 tensor");
    is_int(r1_gguf_writer_tensor(w, "t", R1_GGML_F32, 1, ne, v, NULL, NULL, &err), R1_EINVAL,
           "writer: the same tensor again");
    is_int(r1_gguf_writer_write(w, tu_at("w.gguf"), &err), R1_OK, "writer: writes");
    r1_gguf *g = NULL;
    if (ok(r1_gguf_open(&g, tu_at("w.gguf"), &err) == R1_OK, "reader: reads it back")) {
        uint16_t h[4];
        r1_gguf_read_tensor(g, 0, h, sizeof h, &err);
        ok(r1_gguf_kv_find(g, "a.b")->u == 1 && r1_f16_to_f32(h[3]) == 4.0f,
           "reader: its key and its F16 values");
        r1_gguf_close(g);
    }
    is_int(r1_gguf_writer_write(w, tu_at("no/such/folder/w.gguf"), &err), R1_EIO,
           "writer: a path that cannot be written is R1_EIO");
    like(err.msg, "no/such/folder/w.gguf", "... naming it");
    r1_gguf_writer_free(w);

    r1_config c = base_config();
    r1_model *m = make_model(&c, 3);
    r1_tokenizer *tok = r1_tokenizer_new_builtin();
    r1_gguf_opts o = r1_gguf_defaults();
    o.dtype = R1_DT_F8_E4M3;
    is_int(r1_gguf_save(m, tok, tu_at("x.gguf"), &o, &err), R1_EINVAL, "export: dtype FP8");
    like(err.msg, "expected F32, BF16 or F16", "... says which dtypes");
    o.dtype = R1_DT_F32;
    is_int(r1_gguf_save(m, NULL, tu_at("x.gguf"), &o, &err), R1_EINVAL, "export: no tokenizer");
    r1_model_free(m);
    c.vocab_size = 100; /* smaller than the tokenizer */
    m = make_model(&c, 3);
    is_int(r1_gguf_save(m, tok, tu_at("x.gguf"), &o, &err), R1_EINVAL,
           "export: a tokenizer larger than the vocabulary");
    r1_model_free(m);
    c = base_config();
    c.num_hidden_layers = 27; /* what llama.cpp takes for DeepSeek-V2-Lite */
    c.num_nextn_predict_layers = 0;
    m = make_model(&c, 3);
    is_int(r1_gguf_save(m, tok, tu_at("x.gguf"), &o, &err), R1_EUNSUPPORTED,
           "export: 27 layers with q_lora_rank, which llama.cpp would read as V2-Lite");
    like(err.msg, "27 layers", "... says why");
    r1_model_free(m);
    r1_tokenizer_free(tok);
    struct stat sb;
    ok(stat(tu_at("x.gguf"), &sb) != 0, "a refused export leaves no file");
}

int main(void)
{
    tu_tmpdir("t_gguf");
    r1_tokenizer *tok = r1_tokenizer_new_builtin();
    static const r1_dtype dts[3] = {R1_DT_F32, R1_DT_BF16, R1_DT_F16};
    static const char *const dname[3] = {"f32", "bf16", "f16"};
    char what[64];

    r1_config c = base_config();
    r1_model *m = make_model(&c, 11);
    for (int i = 0; i < 3; i++) {
        snprintf(what, sizeof what, "moe+mtp %s", dname[i]);
        round_trip(m, tok, dts[i], what);
    }
    r1_model_free(m);

    c = base_config(); /* dense, plain q_proj, tied embeddings, no MTP */
    c.n_routed_experts = 0;
    c.q_lora_rank = 0;
    c.tie_word_embeddings = 1;
    c.num_nextn_predict_layers = 0;
    c.vocab_size = R1_TOK_VOCAB;
    m = make_model(&c, 12);
    round_trip(m, tok, R1_DT_BF16, "dense bf16");
    r1_model_free(m);

    c = base_config(); /* MoE without shared experts or groups, weights not normalised */
    c.n_shared_experts = 0;
    c.n_group = 1;
    c.topk_group = 1;
    c.norm_topk_prob = 0;
    c.num_nextn_predict_layers = 1;
    m = make_model(&c, 13);
    round_trip(m, tok, R1_DT_F32, "no shared experts");
    r1_model_free(m);
    r1_tokenizer_free(tok);

    malformed();
    bad_arguments();
    tu_rm(tu_dir);
    return done_testing();
}
