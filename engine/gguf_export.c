/* SPDX-License-Identifier: GPL-3.0-or-later */
/* gguf_export.c — r1_gguf_save: an r1lab model and its tokenizer as a llama.cpp `deepseek2`
 * GGUF, so that llama.cpp (and Ollama, which runs llama.cpp's loader) can run it.
 *
 * The key and tensor names are llama.cpp's, as of ggml-org/llama.cpp commit 34af94cd9ab2
 * (2026-08-17): gguf-py/gguf/constants.py (MODEL_ARCH.DEEPSEEK2, TENSOR_NAMES, Keys),
 * conversion/deepseek.py (DeepseekV2Model: what convert_hf_to_gguf.py writes for a Hugging
 * Face deepseek_v3 folder) and src/models/deepseek2.cpp (what the loader reads).  Checked by
 * hand against that commit's llama-simple: same greedy tokens as r1lab (README, "Running an
 * r1lab model in llama.cpp").  The choices, each the converter's unless said otherwise:
 *
 *   - MLA as llama.cpp runs it since 2025: head_count_kv 1, key_length kv_lora_rank +
 *     qk_rope_head_dim and value_length kv_lora_rank (the latent cache), key_length_mla and
 *     value_length_mla the per-head sizes; kv_b_proj split per head into attn_k_b (the k_nope
 *     rows, transposed: [H, kv_lora_rank, qk_nope] -> ne {qk_nope, kv_lora_rank, H}) and
 *     attn_v_b ([H, v_head_dim, kv_lora_rank] -> ne {kv_lora_rank, v_head_dim, H}).
 *   - RoPE: llama.cpp's deepseek2 uses its "normal" RoPE on consecutive pairs, which is
 *     r1lab's interleaved (2i, 2i+1) RoPE; no tensor is permuted.
 *   - Routed experts stacked per layer ([E, rows, cols] -> ne {cols, rows, E}); the router
 *     (ffn_gate_inp) and the selection bias (exp_probs_b.bias) F32; sigmoid gating (2); groups
 *     (expert_group_count / _used_count, masked to -inf as r1lab does) when they select.
 *   - The MTP layers follow the main layers as blk.L.. with their decoder tensors and
 *     nextn.eh_proj / enorm / hnorm / shared_head_norm (the converter drops MTP for deepseek2
 *     but the loader reads these names, deepseek32's converter writes them); nextn_predict_layers
 *     D and block_count L + D.  Their embedding and head are the main model's, which llama.cpp
 *     falls back to when nextn.embed_tokens / shared_head_head are absent, so no copies.
 *     Without them (opts->mtp 0) the file is the main model alone, as the converter writes it:
 *     llama.cpp builds whose deepseek2 does not yet load nextn tensors (May 2026's 0253fb21f)
 *     refuse a file that has them ("wrong number of tensors").
 *   - Vocabulary: tokenizer.ggml.model "gpt2" (byte-level BPE) with no merges and the "default"
 *     pre-tokenizer: each character of a text becomes its byte-level symbol (' ' is U+0120 "Ġ",
 *     '\n' U+010A "Ċ", the other printable ASCII characters themselves) and, with nothing to
 *     merge, the token of that symbol, so llama.cpp's tokenizer gives r1lab's ids one per
 *     character; the special tokens are control tokens (type 3), which llama.cpp matches whole
 *     in text when asked to parse special tokens and writes back as their text.  Ids past the
 *     tokenizer's are "[PADn]" of type unused (5), as the converter pads.
 *
 * Ownership: nothing outlives the call.  Errors: see r1_gguf.h. */
#include <config.h>

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "r1_gguf.h"

#define ARCH "deepseek2"

/* llama.cpp's token types and gating function ids (gguf-py constants.py) */
enum { TOK_NORMAL = 1, TOK_CONTROL = 3, TOK_UNUSED = 5 };
enum { GATING_SIGMOID = 2 };
/* general.file_type: LlamaFileType ALL_F32, MOSTLY_F16, MOSTLY_BF16 */
enum { FTYPE_F32 = 0, FTYPE_F16 = 1, FTYPE_BF16 = 32 };

r1_gguf_opts r1_gguf_defaults(void)
{
    r1_gguf_opts o = {R1_DT_F32, NULL, 1};
    return o;
}

/* ------------------------------------------------------------------ tensor sources */

typedef enum {
    SRC_COPY,    /* a parameter as it is */
    SRC_BIAS,    /* the router bias of layer l */
    SRC_STACK,   /* experts 0..E-1 of projection `proj` of layer l, one after the other */
    SRC_K_B,     /* kv_b_proj's k_nope rows of each head, transposed */
    SRC_V_B,     /* kv_b_proj's v rows of each head */
    SRC_ZERO     /* zeros (a shared expert llama.cpp requires and the model lacks) */
} src_kind;

typedef struct {
    r1_model *m; /* read only: the accessors below take a non-const model */
    src_kind kind;
    int l;
    const char *proj; /* "gate_proj", "up_proj", "down_proj" */
    const r1_param *p;
} src;

/* The values of parameter `name` (borrowed from the model), or NULL. */
static const float *param(r1_model *m, const char *name, const r1_param **pp)
{
    const r1_param *p = r1_model_param_find(m, name);
    if (pp)
        *pp = p;
    return p ? r1_model_params(m) + p->offset : NULL;
}

static int fill(void *user, float *dst, size_t n)
{
    const src *s = user;
    const r1_config *c = r1_model_config(s->m);
    char name[160];
    if (s->kind == SRC_ZERO) {
        memset(dst, 0, sizeof(float) * n);
    } else if (s->kind == SRC_BIAS) {
        memcpy(dst, r1_model_router_bias(s->m, s->l), sizeof(float) * n);
    } else if (s->kind == SRC_STACK) {
        size_t per = n / (size_t)c->n_routed_experts;
        for (int e = 0; e < c->n_routed_experts; e++) {
            snprintf(name, sizeof name, "model.layers.%d.mlp.experts.%d.%s.weight", s->l, e,
                     s->proj);
            const float *x = param(s->m, name, NULL);
            if (!x)
                return -1;
            memcpy(dst + (size_t)e * per, x, sizeof(float) * per);
        }
    } else if (s->kind == SRC_K_B || s->kind == SRC_V_B) {
        /* kv_b [H * (dn + dv), r] row-major: head h's rows are [k_nope (dn) | v (dv)] */
        int H = c->num_attention_heads, dn = c->qk_nope_head_dim, dv = c->v_head_dim;
        int r = c->kv_lora_rank;
        snprintf(name, sizeof name, "model.layers.%d.self_attn.kv_b_proj.weight", s->l);
        const float *kv = param(s->m, name, NULL);
        if (!kv)
            return -1;
        for (int h = 0; h < H; h++) {
            const float *head = kv + (size_t)h * (dn + dv) * r;
            if (s->kind == SRC_K_B) { /* [H, r, dn]: k_b[h][i][j] = k_nope row j, column i */
                float *o = dst + (size_t)h * r * dn;
                for (int i = 0; i < r; i++)
                    for (int j = 0; j < dn; j++)
                        o[(size_t)i * dn + j] = head[(size_t)j * r + i];
            } else { /* [H, dv, r]: the v rows as they are */
                memcpy(dst + (size_t)h * dv * r, head + (size_t)dn * r, sizeof(float) * dv * r);
            }
        }
    } else {
        memcpy(dst, r1_model_params(s->m) + s->p->offset, sizeof(float) * n);
    }
    return 0;
}

/* ------------------------------------------------------------------ the tensors */

typedef struct {
    r1_gguf_writer *w;
    r1_model *m;
    uint32_t mat; /* the matrices' type */
    src *srcs;    /* one per tensor, alive until the write */
    int n, cap;
    r1_error *err;
    int D; /* the MTP layers written (0: the main model alone) */
} ctx;

/* Adds GGUF tensor gname (type F32 when f32, else the matrices' type) of shape ne[ndim] from
 * source s (kind, layer, projection; the parameter hf for SRC_COPY). */
static r1_status add(ctx *x, const char *gname, int f32, int ndim, const uint64_t *ne, src s,
                     const char *hf)
{
    if (s.kind == SRC_COPY && !param(x->m, hf, &s.p))
        return r1_error_set(x->err, R1_EINVAL, "gguf export: the model has no tensor \"%s\"",
                            hf);
    s.m = x->m;
    assert(x->n < x->cap);
    x->srcs[x->n] = s;
    r1_status st = r1_gguf_writer_tensor(x->w, gname, f32 ? R1_GGML_F32 : x->mat, ndim, ne,
                                         NULL, fill, &x->srcs[x->n], x->err);
    x->n++;
    return st;
}

/* One parameter copied: gname from HF name hf (printf-style with the layer). */
#define COPY(gfmt, f32, ndim, ne, hffmt)                                                       \
    do {                                                                                       \
        snprintf(g, sizeof g, gfmt, l);                                                        \
        snprintf(h, sizeof h, hffmt, l);                                                       \
        if ((st = add(x, g, f32, ndim, ne, (src){.kind = SRC_COPY}, h)) != R1_OK)             \
            return st;                                                                         \
    } while (0)

static r1_status add_layer(ctx *x, int l)
{
    const r1_config *c = r1_model_config(x->m);
    uint64_t C = (uint64_t)c->hidden_size, H = (uint64_t)c->num_attention_heads;
    uint64_t dn = (uint64_t)c->qk_nope_head_dim, dr = (uint64_t)c->qk_rope_head_dim;
    uint64_t dv = (uint64_t)c->v_head_dim, qr = (uint64_t)c->q_lora_rank;
    uint64_t kvr = (uint64_t)c->kv_lora_rank, dq = dn + dr;
    char g[96], h[160];
    r1_status st;
    if (l >= c->num_hidden_layers) {
        COPY("blk.%d.nextn.eh_proj.weight", 0, 2, ((uint64_t[]){2 * C, C}),
             "model.layers.%d.eh_proj.weight");
        COPY("blk.%d.nextn.enorm.weight", 1, 1, ((uint64_t[]){C}), "model.layers.%d.enorm.weight");
        COPY("blk.%d.nextn.hnorm.weight", 1, 1, ((uint64_t[]){C}), "model.layers.%d.hnorm.weight");
        COPY("blk.%d.nextn.shared_head_norm.weight", 1, 1, ((uint64_t[]){C}),
             "model.layers.%d.shared_head.norm.weight");
    }
    COPY("blk.%d.attn_norm.weight", 1, 1, ((uint64_t[]){C}),
         "model.layers.%d.input_layernorm.weight");
    if (qr) {
        COPY("blk.%d.attn_q_a.weight", 0, 2, ((uint64_t[]){C, qr}),
             "model.layers.%d.self_attn.q_a_proj.weight");
        COPY("blk.%d.attn_q_a_norm.weight", 1, 1, ((uint64_t[]){qr}),
             "model.layers.%d.self_attn.q_a_layernorm.weight");
        COPY("blk.%d.attn_q_b.weight", 0, 2, ((uint64_t[]){qr, H * dq}),
             "model.layers.%d.self_attn.q_b_proj.weight");
    } else {
        COPY("blk.%d.attn_q.weight", 0, 2, ((uint64_t[]){C, H * dq}),
             "model.layers.%d.self_attn.q_proj.weight");
    }
    COPY("blk.%d.attn_kv_a_mqa.weight", 0, 2, ((uint64_t[]){C, kvr + dr}),
         "model.layers.%d.self_attn.kv_a_proj_with_mqa.weight");
    COPY("blk.%d.attn_kv_a_norm.weight", 1, 1, ((uint64_t[]){kvr}),
         "model.layers.%d.self_attn.kv_a_layernorm.weight");
    snprintf(g, sizeof g, "blk.%d.attn_k_b.weight", l);
    if ((st = add(x, g, 0, 3, (uint64_t[]){dn, kvr, H}, (src){.kind = SRC_K_B, .l = l}, NULL)))
        return st;
    snprintf(g, sizeof g, "blk.%d.attn_v_b.weight", l);
    if ((st = add(x, g, 0, 3, (uint64_t[]){kvr, dv, H}, (src){.kind = SRC_V_B, .l = l}, NULL)))
        return st;
    COPY("blk.%d.attn_output.weight", 0, 2, ((uint64_t[]){H * dv, C}),
         "model.layers.%d.self_attn.o_proj.weight");
    COPY("blk.%d.ffn_norm.weight", 1, 1, ((uint64_t[]){C}),
         "model.layers.%d.post_attention_layernorm.weight");
    if (!r1_config_is_moe(c, l)) {
        uint64_t I = (uint64_t)c->intermediate_size;
        COPY("blk.%d.ffn_gate.weight", 0, 2, ((uint64_t[]){C, I}),
             "model.layers.%d.mlp.gate_proj.weight");
        COPY("blk.%d.ffn_up.weight", 0, 2, ((uint64_t[]){C, I}),
             "model.layers.%d.mlp.up_proj.weight");
        COPY("blk.%d.ffn_down.weight", 0, 2, ((uint64_t[]){I, C}),
             "model.layers.%d.mlp.down_proj.weight");
        return R1_OK;
    }
    uint64_t E = (uint64_t)c->n_routed_experts, Ie = (uint64_t)c->moe_intermediate_size;
    COPY("blk.%d.ffn_gate_inp.weight", 1, 2, ((uint64_t[]){C, E}),
         "model.layers.%d.mlp.gate.weight");
    snprintf(g, sizeof g, "blk.%d.exp_probs_b.bias", l);
    if ((st = add(x, g, 1, 1, (uint64_t[]){E}, (src){.kind = SRC_BIAS, .l = l}, NULL)))
        return st;
    static const char *const proj[3] = {"gate_proj", "up_proj", "down_proj"};
    static const char *const gexp[3] = {"gate", "up", "down"};
    for (int k = 0; k < 3; k++) {
        uint64_t ne[3] = {k < 2 ? C : Ie, k < 2 ? Ie : C, E};
        snprintf(g, sizeof g, "blk.%d.ffn_%s_exps.weight", l, gexp[k]);
        if ((st = add(x, g, 0, 3, ne, (src){.kind = SRC_STACK, .l = l, .proj = proj[k]}, NULL)))
            return st;
    }
    /* llama.cpp's deepseek2 always runs a shared expert: a model without one gets a zero
     * expert of one expert's width (silu(0) * 0 = 0, so it adds exactly nothing) */
    int zero = c->n_shared_experts == 0;
    uint64_t Is = Ie * (uint64_t)(zero ? 1 : c->n_shared_experts);
    for (int k = 0; k < 3; k++) {
        uint64_t ne[2] = {k < 2 ? C : Is, k < 2 ? Is : C};
        snprintf(g, sizeof g, "blk.%d.ffn_%s_shexp.weight", l, gexp[k]);
        snprintf(h, sizeof h, "model.layers.%d.mlp.shared_experts.%s.weight", l, proj[k]);
        if ((st = add(x, g, 0, 2, ne, (src){.kind = zero ? SRC_ZERO : SRC_COPY}, h)))
            return st;
    }
    return R1_OK;
}

static r1_status add_tensors(ctx *x)
{
    const r1_config *c = r1_model_config(x->m);
    uint64_t C = (uint64_t)c->hidden_size, V = (uint64_t)c->vocab_size;
    r1_status st = add(x, "token_embd.weight", 0, 2, (uint64_t[]){C, V},
                       (src){.kind = SRC_COPY}, "model.embed_tokens.weight");
    if (st == R1_OK)
        st = add(x, "output_norm.weight", 1, 1, (uint64_t[]){C}, (src){.kind = SRC_COPY},
                 "model.norm.weight");
    /* tied embeddings: llama.cpp uses token_embd when output is absent */
    if (st == R1_OK && !c->tie_word_embeddings)
        st = add(x, "output.weight", 0, 2, (uint64_t[]){C, V}, (src){.kind = SRC_COPY},
                 "lm_head.weight");
    for (int l = 0; l < c->num_hidden_layers + x->D && st == R1_OK; l++)
        st = add_layer(x, l);
    return st;
}

/* ------------------------------------------------------------------ hyper-parameters */

#define U32(k, v)                                                                              \
    if (s == R1_OK)                                                                            \
    s = r1_gguf_writer_u32(w, ARCH "." k, (uint32_t)(v), err)
#define F32(k, v)                                                                              \
    if (s == R1_OK)                                                                            \
    s = r1_gguf_writer_f32(w, ARCH "." k, (float)(v), err)

/* What llama.cpp cannot run, named; R1_OK otherwise. */
static r1_status check_config(const r1_config *c, r1_error *err)
{
    /* llama.cpp's deepseek2 takes 26 or 27 layers for a "lite" model (DeepSeek-V2-Lite) and
     * then ignores q_lora_rank and expects a plain attn_q */
    if (c->q_lora_rank && (c->num_hidden_layers == 26 || c->num_hidden_layers == 27 ||
                           (c->num_hidden_layers == 48 && c->vocab_size == 128256)))
        return r1_error_set(err, R1_EUNSUPPORTED,
                            "gguf export: llama.cpp reads a deepseek2 model of %d layers as "
                            "DeepSeek-V2-Lite, which has no q_lora_rank (this one has %d)",
                            c->num_hidden_layers, c->q_lora_rank);
    if (c->qk_nope_head_dim < 1)
        return r1_error_set(err, R1_EUNSUPPORTED,
                            "gguf export: llama.cpp needs qk_nope_head_dim >= 1");
    return R1_OK;
}

static r1_status add_hparams(r1_gguf_writer *w, const r1_config *c, int D, r1_error *err)
{
    int L = c->num_hidden_layers, moe = c->n_routed_experts > 0;
    r1_status s = R1_OK;
    U32("block_count", L + D);
    U32("context_length", c->max_position_embeddings);
    U32("embedding_length", c->hidden_size);
    U32("feed_forward_length", c->intermediate_size);
    U32("vocab_size", c->vocab_size);
    U32("attention.head_count", c->num_attention_heads);
    U32("attention.head_count_kv", 1); /* MLA runs as MQA over the latent cache */
    F32("attention.layer_norm_rms_epsilon", c->rms_norm_eps);
    U32("attention.q_lora_rank", c->q_lora_rank);
    U32("attention.kv_lora_rank", c->kv_lora_rank);
    U32("attention.key_length", c->kv_lora_rank + c->qk_rope_head_dim);
    U32("attention.value_length", c->kv_lora_rank);
    U32("attention.key_length_mla", c->qk_nope_head_dim + c->qk_rope_head_dim);
    U32("attention.value_length_mla", c->v_head_dim);
    U32("rope.dimension_count", c->qk_rope_head_dim);
    F32("rope.freq_base", c->rope_theta);
    /* a dense model: every layer, the MTP layers included, is a leading dense block */
    U32("leading_dense_block_count", moe ? c->first_k_dense_replace : L + D);
    U32("expert_feed_forward_length",
        c->moe_intermediate_size ? c->moe_intermediate_size : c->intermediate_size);
    U32("expert_shared_count", moe && !c->n_shared_experts ? 1 : c->n_shared_experts);
    if (moe) {
        U32("expert_count", c->n_routed_experts);
        U32("expert_used_count", c->num_experts_per_tok);
        F32("expert_weights_scale", c->routed_scaling_factor);
        if (s == R1_OK)
            s = r1_gguf_writer_bool(w, ARCH ".expert_weights_norm", c->norm_topk_prob, err);
        U32("expert_gating_func", GATING_SIGMOID);
        /* llama.cpp groups only when n_group > 1 and refuses topk_group >= n_group, where
         * grouping selects nothing anyway */
        if (c->n_group > 1 && c->topk_group < c->n_group) {
            U32("expert_group_count", c->n_group);
            U32("expert_group_used_count", c->topk_group);
        }
    }
    if (D > 0)
        U32("nextn_predict_layers", D);
    return s;
}

/* ------------------------------------------------------------------ the vocabulary */

/* GPT-2's byte-level alphabet: printable bytes stand for themselves, the others (controls,
 * space, DEL, ...) for U+0100 + their rank among them.  Writes the UTF-8 of byte b's symbol. */
static void byte_symbol(unsigned char b, char out[4])
{
    unsigned cp;
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) {
        cp = b;
    } else {
        unsigned rank = 0;
        for (unsigned k = 0; k < b; k++)
            if (!((k >= 33 && k <= 126) || (k >= 161 && k <= 172) || k >= 174))
                rank++;
        cp = 256 + rank;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        out[2] = 0;
    }
}

static r1_status add_vocab(r1_gguf_writer *w, const r1_tokenizer *tok, int V, r1_error *err)
{
    int TV = r1_tokenizer_vocab_size(tok);
    if (TV > V)
        return r1_error_set(err, R1_EINVAL,
                            "gguf export: the tokenizer has %d tokens, the model's vocab_size "
                            "only %d",
                            TV, V);
    char **text = calloc((size_t)V, sizeof *text);
    int32_t *type = calloc((size_t)V, sizeof *type);
    r1_status s = text && type ? R1_OK : r1_error_set(err, R1_ENOMEM, "out of memory");
    for (int id = 0; id < V && s == R1_OK; id++) {
        const char *t = id < TV ? r1_tokenizer_token(tok, id) : NULL;
        char buf[24];
        if (!t) {
            snprintf(buf, sizeof buf, "[PAD%d]", id);
            type[id] = TOK_UNUSED;
        } else if (r1_tokenizer_is_special(tok, id)) {
            type[id] = TOK_CONTROL;
        } else if (strlen(t) == 1) {
            byte_symbol((unsigned char)t[0], buf);
            type[id] = TOK_NORMAL;
        } else {
            s = r1_error_set(err, R1_EINVAL,
                             "gguf export: token %d \"%s\" is neither one character nor special",
                             id, t);
            break;
        }
        if (!(text[id] = strdup(type[id] == TOK_CONTROL ? t : buf)))
            s = r1_error_set(err, R1_ENOMEM, "out of memory");
    }
    int bos = r1_tokenizer_special_id(tok, R1_TOK_BOS);
    int eos = r1_tokenizer_special_id(tok, R1_TOK_EOS);
    int pad = r1_tokenizer_special_id(tok, R1_TOK_PAD);
    if (s == R1_OK)
        s = r1_gguf_writer_str(w, "tokenizer.ggml.model", "gpt2", err);
    if (s == R1_OK)
        s = r1_gguf_writer_str(w, "tokenizer.ggml.pre", "default", err);
    if (s == R1_OK)
        s = r1_gguf_writer_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)text,
                                   (uint64_t)V, err);
    if (s == R1_OK)
        s = r1_gguf_writer_arr_i32(w, "tokenizer.ggml.token_type", type, (uint64_t)V, err);
    if (s == R1_OK) /* required by llama.cpp's BPE loader; none: one token per character */
        s = r1_gguf_writer_arr_str(w, "tokenizer.ggml.merges", NULL, 0, err);
    if (s == R1_OK)
        s = r1_gguf_writer_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)bos, err);
    if (s == R1_OK)
        s = r1_gguf_writer_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eos, err);
    if (s == R1_OK)
        s = r1_gguf_writer_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)pad, err);
    /* the chat format spells <|bos|> itself, as r1lab's prompts do */
    if (s == R1_OK)
        s = r1_gguf_writer_bool(w, "tokenizer.ggml.add_bos_token", 0, err);
    if (s == R1_OK)
        s = r1_gguf_writer_bool(w, "tokenizer.ggml.add_eos_token", 0, err);
    if (s == R1_OK)
        s = r1_gguf_writer_str(w, "tokenizer.chat_template", r1_tokenizer_chat_template(), err);
    for (int id = 0; text && id < V; id++)
        free(text[id]);
    free(text);
    free(type);
    return s;
}

/* ------------------------------------------------------------------ the file */

r1_status r1_gguf_save(const r1_model *m, const r1_tokenizer *tok, const char *path,
                       const r1_gguf_opts *opts, r1_error *err)
{
    r1_gguf_opts o = opts ? *opts : r1_gguf_defaults();
    uint32_t mat, ftype;
    if (o.dtype == R1_DT_F32)
        mat = R1_GGML_F32, ftype = FTYPE_F32;
    else if (o.dtype == R1_DT_BF16)
        mat = R1_GGML_BF16, ftype = FTYPE_BF16;
    else if (o.dtype == R1_DT_F16)
        mat = R1_GGML_F16, ftype = FTYPE_F16;
    else
        return r1_error_set(err, R1_EINVAL, "gguf export: dtype %s: expected F32, BF16 or F16",
                            r1_dtype_name(o.dtype));
    if (!tok)
        return r1_error_set(err, R1_EINVAL, "gguf export: a GGUF needs the model's tokenizer");
    const r1_config *c = r1_model_config(m);
    r1_status s = check_config(c, err);
    if (s != R1_OK)
        return s;
    r1_gguf_writer *w = r1_gguf_writer_new();
    /* at most 4 + 25 tensors per layer */
    int cap = 4 + 25 * r1_model_nlayers_total(m);
    ctx x = {w, (r1_model *)m, mat, calloc((size_t)cap, sizeof(src)), 0, cap, err, 0};
    if (!w || !x.srcs) {
        r1_gguf_writer_free(w);
        free(x.srcs);
        return r1_error_set(err, R1_ENOMEM, "out of memory");
    }
    int D = o.mtp ? r1_model_nlayers_total(m) - c->num_hidden_layers : 0;
    x.D = D;
    s = r1_gguf_writer_str(w, "general.architecture", ARCH, err);
    if (s == R1_OK)
        s = r1_gguf_writer_str(w, "general.name", o.name ? o.name : "r1lab", err);
    if (s == R1_OK)
        s = r1_gguf_writer_u32(w, "general.alignment", R1_GGUF_ALIGNMENT, err);
    if (s == R1_OK)
        s = r1_gguf_writer_u32(w, "general.file_type", ftype, err);
    if (s == R1_OK)
        s = add_hparams(w, c, D, err);
    if (s == R1_OK)
        s = add_vocab(w, tok, c->vocab_size, err);
    if (s == R1_OK)
        s = add_tensors(&x);
    if (s == R1_OK)
        s = r1_gguf_writer_write(w, path, err);
    r1_gguf_writer_free(w);
    free(x.srcs);
    return s;
}
