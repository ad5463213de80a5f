/* r1_config.h — the model configuration: Hugging Face `deepseek_v3` config.json, read and
 * written with jansson.
 *
 * Reading accepts exactly the deepseek_v3 keys r1lab implements (see DESIGN.md) plus the
 * bookkeeping keys HF writes (architectures, torch_dtype, transformers_version, ...).  A key
 * whose value selects behaviour r1lab does not implement (rope_scaling other than null,
 * scoring_func other than "sigmoid", hidden_act other than "silu", attention_bias true, ...)
 * or an unknown key is refused with R1_EUNSUPPORTED and a message naming the file and key.
 * A missing required key or a value of the wrong type or range gives R1_EFORMAT. */
#ifndef R1_CONFIG_H
#define R1_CONFIG_H

#include "r1.h"

typedef struct r1_config {
    int vocab_size;
    int hidden_size;           /* C */
    int intermediate_size;     /* dense SwiGLU width */
    int moe_intermediate_size; /* width of one routed (and one shared) expert */
    int num_hidden_layers;     /* L, not counting the MTP modules */
    int num_attention_heads;   /* H */
    int first_k_dense_replace; /* layers [0, k) are dense */
    int q_lora_rank;           /* 0: plain q_proj (config.json null) */
    int kv_lora_rank;
    int qk_nope_head_dim;
    int qk_rope_head_dim;
    int v_head_dim;
    int n_routed_experts; /* E; 0: a dense model (config.json null) */
    int n_shared_experts;
    int num_experts_per_tok; /* K */
    int n_group;
    int topk_group;
    int norm_topk_prob; /* bool */
    float routed_scaling_factor;
    int num_nextn_predict_layers; /* D, MTP depth (0: none) */
    float rope_theta;
    float rms_norm_eps;
    int max_position_embeddings;
    int tie_word_embeddings; /* bool */
    int bos_token_id;        /* -1 when absent */
    int eos_token_id;        /* -1 when absent */
    float initializer_range; /* std of the random init */
} r1_config;

/* Fills c from the JSON file at path and validates it (r1_config_validate).  Required: the
 * size keys, rms_norm_eps, rope_theta, max_position_embeddings, model_type "deepseek_v3", and
 * q_lora_rank and n_routed_experts, which may be null (0: plain q_proj / a dense model) but not
 * absent, because HF reads an absent key as 1536 / 256 experts; when n_routed_experts > 0 also
 * the MoE keys.  Optional: num_nextn_predict_layers (0), tie_word_embeddings (false),
 * bos/eos_token_id (-1), initializer_range (0.02).  Errors name path and the key: R1_ENOTFOUND
 * or R1_EIO when the file cannot be opened, R1_EFORMAT for bad JSON, a missing key, a wrong
 * type or a value out of range (including a failed validation), R1_EUNSUPPORTED as above.
 * On failure c is left untouched. */
r1_status r1_config_load(r1_config *c, const char *path, r1_error *err);

/* Same from a JSON string; `name` stands for the file in messages. */
r1_status r1_config_parse(r1_config *c, const char *json, const char *name, r1_error *err);

/* Writes c as a HF deepseek_v3 config.json: every key, sorted and indented by 2 as HF writes
 * them, q_lora_rank 0 and n_routed_experts 0 as null, floats in the shortest form that reads
 * back bit-identically.  Temporary file, fsync, rename.  An invalid config is refused with
 * R1_EINVAL (nothing written); file errors are R1_EIO naming path. */
r1_status r1_config_save(const r1_config *c, const char *path, r1_error *err);

/* The same with DeepSeek-V3's FP8 entry, "quantization_config": {"activation_scheme":
 * "dynamic", "fmt": "e4m3", "quant_method": "fp8", "weight_block_size": [128, 128]}, and
 * torch_dtype "bfloat16", for a model.safetensors written by r1_model_save(..., R1_DT_F8_E4M3).
 * Reading accepts exactly that quantization_config (anything else is R1_EUNSUPPORTED naming
 * the entry) and stores nothing of it. */
r1_status r1_config_save_fp8(const r1_config *c, const char *path, r1_error *err);

/* The built-in presets: "tiny" and "small" (see the engine issue).  R1_ENOTFOUND otherwise.
 * Their bos/eos ids are the built-in tokenizer's (R1_TOK_BOS 1, R1_TOK_EOS 2, r1_tokenizer.h);
 * tiny's vocab_size is its 128 ids. */
r1_status r1_config_preset(r1_config *c, const char *name, r1_error *err);

/* Checks sizes and relations (heads > 0, qk_rope_head_dim even, topk_group <= n_group, E
 * divisible by n_group, at least 2 experts per group when n_group > 1, the kept groups hold at
 * least num_experts_per_tok experts, first_k_dense_replace in [0, L], ...); the MoE relations
 * only when n_routed_experts > 0.  R1_EINVAL with a message naming the key(s).
 *
 * Ceilings (far above what a CPU trains, and low enough that no size computed from them
 * overflows): vocab_size 2^20, hidden_size 16384, intermediate and moe_intermediate_size
 * 65536, 256 layers, 256 heads, kv_lora_rank and q_lora_rank 8192, head dims 1024,
 * max_position_embeddings 2^20, 16 MTP layers, 1024 routed and 64 shared experts,
 * R1_CONFIG_MAX_PARAMS parameters in all, and max_position_embeddings x qk_rope_head_dim at
 * most R1_CONFIG_MAX_ROPE (the RoPE tables; DeepSeek-V3's 163840 x 64 is 2^23.3). */
#define R1_CONFIG_MAX_PARAMS 2147483648.0
#define R1_CONFIG_MAX_ROPE 67108864.0
r1_status r1_config_validate(const r1_config *c, r1_error *err);

/* About how many parameters c makes (embeddings, attention, MLPs and experts, norms, MTP
 * layers), in floating point so that no config overflows it. */
double r1_config_param_estimate(const r1_config *c);

/* 1 when layer l (0-based; l >= num_hidden_layers are the MTP layers) is a MoE layer. */
int r1_config_is_moe(const r1_config *c, int l);

#endif
