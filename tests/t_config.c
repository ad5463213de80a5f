/* t_config.c — config.json parsing, saving, presets and validation: a full HF-style config,
 * save→load round trips (bit-identical structs), and every bad input giving the right status
 * and a message naming the file and the key.  Files live in a mkdtemp folder removed at the
 * end. */
#include <config.h>

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "r1_config.h"
#include "tap.h"
#include "testutil.h"

static const char *NAME = "bad/config.json";

static const char *BASE =
    "{\n"
    "  \"_name_or_path\": \"r1lab/test\",\n"
    "  \"architectures\": [\"DeepseekV3ForCausalLM\"],\n"
    "  \"attention_bias\": false,\n"
    "  \"attention_dropout\": 0.0,\n"
    "  \"auto_map\": {\"AutoConfig\": \"configuration_deepseek.DeepseekV3Config\"},\n"
    "  \"aux_loss_alpha\": 0.001,\n"
    "  \"bos_token_id\": 0,\n"
    "  \"eos_token_id\": 1,\n"
    "  \"ep_size\": 1,\n"
    "  \"first_k_dense_replace\": 1,\n"
    "  \"hidden_act\": \"silu\",\n"
    "  \"hidden_size\": 256,\n"
    "  \"initializer_range\": 0.02,\n"
    "  \"intermediate_size\": 640,\n"
    "  \"kv_lora_rank\": 64,\n"
    "  \"max_position_embeddings\": 4096,\n"
    "  \"model_type\": \"deepseek_v3\",\n"
    "  \"moe_intermediate_size\": 96,\n"
    "  \"moe_layer_freq\": 1,\n"
    "  \"n_group\": 4,\n"
    "  \"n_routed_experts\": 16,\n"
    "  \"n_shared_experts\": 1,\n"
    "  \"norm_topk_prob\": true,\n"
    "  \"num_attention_heads\": 4,\n"
    "  \"num_experts_per_tok\": 4,\n"
    "  \"num_hidden_layers\": 3,\n"
    "  \"num_key_value_heads\": 4,\n"
    "  \"num_nextn_predict_layers\": 1,\n"
    "  \"pad_token_id\": null,\n"
    "  \"pretraining_tp\": 1,\n"
    "  \"q_lora_rank\": 128,\n"
    "  \"qk_nope_head_dim\": 32,\n"
    "  \"qk_rope_head_dim\": 16,\n"
    "  \"rms_norm_eps\": 1e-06,\n"
    "  \"rope_interleave\": true,\n"
    "  \"rope_scaling\": null,\n"
    "  \"rope_theta\": 10000,\n"
    "  \"routed_scaling_factor\": 2.5,\n"
    "  \"scoring_func\": \"sigmoid\",\n"
    "  \"seq_aux\": true,\n"
    "  \"tie_word_embeddings\": false,\n"
    "  \"topk_group\": 2,\n"
    "  \"topk_method\": \"noaux_tc\",\n"
    "  \"torch_dtype\": \"bfloat16\",\n"
    "  \"transformers_version\": \"4.46.3\",\n"
    "  \"use_cache\": true,\n"
    "  \"v_head_dim\": 32,\n"
    "  \"vocab_size\": 1000\n"
    "}\n";

#define slurp tu_slurp

/* BASE with the members of the JSON object `set` merged in and `del` (if any) removed. */
static char *variant(const char *set, const char *del)
{
    json_t *root = json_loads(BASE, 0, NULL);
    if (set) {
        json_t *o = json_loads(set, 0, NULL);
        if (!o)
            diag("bad test JSON: %s", set);
        json_object_update(root, o);
        json_decref(o);
    }
    if (del)
        json_object_del(root, del);
    char *text = json_dumps(root, JSON_INDENT(2));
    json_decref(root);
    return text;
}

/* Parses a variant expecting status want and a message naming the file, key and needle. */
static void bad(const char *set, const char *del, r1_status want, const char *key,
                const char *needle, const char *what)
{
    char *text = variant(set, del);
    r1_config c, before;
    memset(&c, 0x5a, sizeof c);
    before = c;
    r1_error err = {0};
    is_int(r1_config_parse(&c, text, NAME, &err), want, "%s: status", what);
    like(err.msg, NAME, "%s: the message names the file", what);
    like(err.msg, key, "%s: the message names %s", what, key);
    if (needle)
        like(err.msg, needle, "%s: the message says \"%s\"", what, needle);
    ok(memcmp(&c, &before, sizeof c) == 0, "%s: the struct is untouched", what);
    free(text);
}

static r1_config expected_base(void)
{
    r1_config e;
    memset(&e, 0, sizeof e);
    e.vocab_size = 1000;
    e.hidden_size = 256;
    e.intermediate_size = 640;
    e.moe_intermediate_size = 96;
    e.num_hidden_layers = 3;
    e.num_attention_heads = 4;
    e.first_k_dense_replace = 1;
    e.q_lora_rank = 128;
    e.kv_lora_rank = 64;
    e.qk_nope_head_dim = 32;
    e.qk_rope_head_dim = 16;
    e.v_head_dim = 32;
    e.n_routed_experts = 16;
    e.n_shared_experts = 1;
    e.num_experts_per_tok = 4;
    e.n_group = 4;
    e.topk_group = 2;
    e.norm_topk_prob = 1;
    e.routed_scaling_factor = 2.5f;
    e.num_nextn_predict_layers = 1;
    e.rope_theta = 10000.0f;
    e.rms_norm_eps = 1e-6f;
    e.max_position_embeddings = 4096;
    e.tie_word_embeddings = 0;
    e.bos_token_id = 0;
    e.eos_token_id = 1;
    e.initializer_range = 0.02f;
    return e;
}

static void test_parse(void)
{
    r1_config c, e = expected_base();
    r1_error err = {0};
    is_int(r1_config_parse(&c, BASE, "config.json", &err), R1_OK, "a full HF config parses");
    if (err.msg[0])
        diag("%s", err.msg);
    ok(memcmp(&c, &e, sizeof c) == 0, "every field as written");
    is_int(c.hidden_size, 256, "hidden_size");
    is_float(c.rms_norm_eps, 1e-6, 1e-12, "rms_norm_eps");
    is_float(c.rope_theta, 10000, 0, "rope_theta given as an integer");

    FILE *f = fopen(tu_at("config.json"), "w");
    fputs(BASE, f);
    fclose(f);
    r1_config d;
    is_int(r1_config_load(&d, tu_at("config.json"), &err), R1_OK, "loaded from a file");
    ok(memcmp(&c, &d, sizeof c) == 0, "... the same as parsed from the string");

    char *t = variant("{\"q_lora_rank\": null}", NULL);
    is_int(r1_config_parse(&c, t, "config.json", &err), R1_OK, "q_lora_rank null parses");
    is_int(c.q_lora_rank, 0, "... as 0");
    free(t);

    t = variant("{\"n_routed_experts\": null, \"bos_token_id\": null}", "n_group");
    is_int(r1_config_parse(&c, t, "config.json", &err), R1_OK,
           "n_routed_experts null parses without the MoE keys");
    is_int(c.n_routed_experts, 0, "... as a dense model");
    is_int(c.bos_token_id, -1, "bos_token_id null is -1");
    ok(!r1_config_is_moe(&c, 0) && !r1_config_is_moe(&c, 2) && !r1_config_is_moe(&c, 3),
       "a dense model has no MoE layer, MTP included");
    free(t);

    t = variant(NULL, "num_nextn_predict_layers");
    is_int(r1_config_parse(&c, t, "config.json", &err), R1_OK, "optional keys may be absent");
    is_int(c.num_nextn_predict_layers, 0, "... num_nextn_predict_layers defaults to 0");
    free(t);

    e = expected_base();
    ok(!r1_config_is_moe(&e, 0) && r1_config_is_moe(&e, 1) && r1_config_is_moe(&e, 2),
       "layers from first_k_dense_replace on are MoE");
    ok(r1_config_is_moe(&e, 3), "the MTP layer (index num_hidden_layers) is MoE too");
}

static void test_presets(void)
{
    r1_config c;
    r1_error err = {0};
    is_int(r1_config_preset(&c, "tiny", &err), R1_OK, "preset tiny");
    is_int(r1_config_validate(&c, &err), R1_OK, "tiny validates");
    ok(c.hidden_size == 192 && c.num_hidden_layers == 6 && c.n_routed_experts == 16 &&
           c.num_experts_per_tok == 4 && c.q_lora_rank == 96 && c.vocab_size == 128 &&
           c.max_position_embeddings == 1024 && c.bos_token_id == 1 && c.eos_token_id == 2,
       "tiny has its sizes");
    ok(!r1_config_is_moe(&c, 0) && r1_config_is_moe(&c, 1) && r1_config_is_moe(&c, 6),
       "tiny: layer 0 dense, 1..5 and the MTP layer MoE");
    is_int(r1_config_preset(&c, "small", &err), R1_OK, "preset small");
    is_int(r1_config_validate(&c, &err), R1_OK, "small validates");
    ok(c.hidden_size == 512 && c.num_hidden_layers == 8 && c.n_routed_experts == 32 &&
           c.intermediate_size == 1408 && c.qk_rope_head_dim == 32 &&
           c.max_position_embeddings == 2048 && c.vocab_size == 512,
       "small has its sizes");
    is_int(r1_config_preset(&c, "huge", &err), R1_ENOTFOUND, "an unknown preset");
    like(err.msg, "huge", "... is named");
}

static void round_trip(const r1_config *c, const char *what)
{
    r1_error err = {0};
    r1_config d;
    memset(&d, 0, sizeof d);
    const char *path = tu_at("saved.json");
    is_int(r1_config_save(c, path, &err), R1_OK, "%s: saved", what);
    is_int(r1_config_load(&d, path, &err), R1_OK, "%s: loaded back", what);
    if (err.msg[0])
        diag("%s", err.msg);
    ok(memcmp(c, &d, sizeof d) == 0, "%s: identical after the round trip", what);
}

static void test_save(void)
{
    r1_config c;
    r1_error err = {0};
    r1_config_preset(&c, "tiny", NULL);
    round_trip(&c, "tiny");
    char *text = slurp(tu_at("saved.json"));
    like(text, "\n  \"architectures\": [", "saved pretty-printed with an indent of 2");
    like(text, "\"model_type\": \"deepseek_v3\"", "saved with model_type");
    like(text, "\"rms_norm_eps\": 1e-6,", "floats saved in their shortest form");
    like(text, "\"initializer_range\": 0.02,", "... 0.02 as 0.02");
    like(text, "\"rope_scaling\": null", "rope_scaling null");
    like(text, "\"num_key_value_heads\": 6", "num_key_value_heads");
    like(text, "\"hidden_act\": \"silu\"", "hidden_act");
    like(text, "\"torch_dtype\": \"float32\"", "torch_dtype float32: the dtype written");
    free(text);
    r1_config_preset(&c, "small", NULL);
    round_trip(&c, "small");

    /* DeepSeek-V3's FP8 entry: written by r1_config_save_fp8, read back, nothing stored */
    r1_config_preset(&c, "tiny", NULL);
    is_int(r1_config_save_fp8(&c, tu_at("fp8.json"), &err), R1_OK, "saved with quantization_config");
    text = slurp(tu_at("fp8.json"));
    like(text, "\"quant_method\": \"fp8\"", "... quant_method fp8");
    like(text, "\"fmt\": \"e4m3\"", "... fmt e4m3");
    like(text, "\"activation_scheme\": \"dynamic\"", "... activation_scheme dynamic");
    like(text, "\"weight_block_size\": [\n      128,\n      128\n    ]",
         "... weight_block_size [128, 128]");
    like(text, "\"torch_dtype\": \"bfloat16\"", "... torch_dtype bfloat16, as DeepSeek's");
    free(text);
    r1_config d;
    is_int(r1_config_load(&d, tu_at("fp8.json"), &err), R1_OK, "a config with it loads");
    ok(memcmp(&c, &d, sizeof d) == 0, "... and is the same config");

    r1_config_parse(&c, BASE, "config.json", NULL);
    round_trip(&c, "the parsed config");

    r1_config_preset(&c, "tiny", NULL);
    c.q_lora_rank = 0;
    c.n_routed_experts = 0;
    c.bos_token_id = -1;
    c.first_k_dense_replace = c.num_hidden_layers; /* how a dense model is saved */
    round_trip(&c, "dense, no q_lora");
    text = slurp(tu_at("saved.json"));
    like(text, "\"first_k_dense_replace\": 6,", "a dense model: every layer below "
         "first_k_dense_replace, as Hugging Face's deepseek_v3 reads it");
    like(text, "\"q_lora_rank\": null", "q_lora_rank 0 saved as null");
    like(text, "\"n_routed_experts\": 0,", "n_routed_experts 0 saved as 0 (transformers 5 "
         "refuses null for this int field)");
    like(text, "\"bos_token_id\": null", "bos_token_id -1 saved as null");
    free(text);

    r1_config_preset(&c, "tiny", NULL);
    c.rms_norm_eps = 1e-45f; /* the smallest subnormal */
    c.rope_theta = 3.4028235e38f;
    c.initializer_range = nextafterf(0.02f, 1.0f);
    c.routed_scaling_factor = 1.0f / 3.0f;
    round_trip(&c, "awkward floats");

    c.topk_group = 5;
    is_int(r1_config_save(&c, tu_at("invalid.json"), &err), R1_EINVAL, "an invalid config");
    like(err.msg, "topk_group", "... is refused naming the key");
    ok(access(tu_at("invalid.json"), F_OK) != 0, "... and nothing is written");
    r1_config_preset(&c, "tiny", NULL);
    is_int(r1_config_save(&c, tu_at("no/such/dir/config.json"), &err), R1_EIO,
           "saving into a missing folder");
    like(err.msg, "no/such/dir/config.json", "... names the path");
}

static void test_bad(void)
{
    /* ceilings (the probe's M3: these overflowed the layout or allocated gigabytes) */
    bad("{\"hidden_size\": 2000000000}", NULL, R1_EFORMAT, "hidden_size",
        "above r1lab's ceiling of 16384", "hidden_size 2e9");
    bad("{\"moe_intermediate_size\": 65536, \"n_shared_experts\": 65536}", NULL, R1_EFORMAT,
        "n_shared_experts", "ceiling of 64", "65536 shared experts");
    bad("{\"vocab_size\": 1000000, \"hidden_size\": 16384}", NULL, R1_EFORMAT, "parameters",
        "ceiling of 2.15e+09", "a config of too many parameters in all");
    bad(NULL, "hidden_size", R1_EFORMAT, "\"hidden_size\"", "missing", "a missing key");
    bad(NULL, "n_group", R1_EFORMAT, "\"n_group\"", "missing", "a missing MoE key");
    bad(NULL, "q_lora_rank", R1_EFORMAT, "\"q_lora_rank\"", "missing", "q_lora_rank absent");
    bad(NULL, "model_type", R1_EFORMAT, "model_type", "missing", "model_type absent");
    bad("{\"hidden_size\": \"256\"}", NULL, R1_EFORMAT, "\"hidden_size\"",
        "expected an integer, found a string", "a string for an integer");
    bad("{\"num_hidden_layers\": 3.0}", NULL, R1_EFORMAT, "\"num_hidden_layers\"",
        "expected an integer, found a real number", "a real for an integer");
    bad("{\"rms_norm_eps\": \"1e-6\"}", NULL, R1_EFORMAT, "\"rms_norm_eps\"",
        "expected a number, found a string", "a string for a number");
    bad("{\"norm_topk_prob\": 1}", NULL, R1_EFORMAT, "\"norm_topk_prob\"",
        "expected a boolean, found an integer", "an integer for a boolean");
    bad("{\"q_lora_rank\": \"none\"}", NULL, R1_EFORMAT, "\"q_lora_rank\"",
        "expected an integer or null", "a string for a nullable integer");
    bad("{\"hidden_size\": 10000000000}", NULL, R1_EFORMAT, "\"hidden_size\"", "out of range",
        "an integer past 32 bits");
    bad("{\"rope_theta\": 1e300}", NULL, R1_EFORMAT, "\"rope_theta\"", "out of range",
        "a number past float");
    bad("{\"architectures\": \"DeepseekV3ForCausalLM\"}", NULL, R1_EFORMAT, "architectures",
        "expected an array of strings", "architectures not an array");
    bad("{\"model_type\": \"llama\"}", NULL, R1_EUNSUPPORTED, "model_type", "\"llama\"",
        "model_type llama");
    bad("{\"rope_scaling\": {\"type\": \"yarn\", \"factor\": 40}}", NULL, R1_EUNSUPPORTED,
        "rope_scaling", "not supported", "rope_scaling set");
    bad("{\"hidden_act\": \"gelu\"}", NULL, R1_EUNSUPPORTED, "hidden_act", "\"gelu\"",
        "hidden_act gelu");
    bad("{\"scoring_func\": \"softmax\"}", NULL, R1_EUNSUPPORTED, "scoring_func", "softmax",
        "scoring_func softmax");
    bad("{\"topk_method\": \"greedy\"}", NULL, R1_EUNSUPPORTED, "topk_method", "greedy",
        "topk_method greedy");
    bad("{\"attention_bias\": true}", NULL, R1_EUNSUPPORTED, "attention_bias", "true",
        "attention_bias true");
    bad("{\"rope_interleave\": false}", NULL, R1_EUNSUPPORTED, "rope_interleave", "false",
        "rope_interleave false");
    bad("{\"moe_layer_freq\": 2}", NULL, R1_EUNSUPPORTED, "moe_layer_freq", "2",
        "moe_layer_freq 2");
    bad("{\"num_key_value_heads\": 2}", NULL, R1_EUNSUPPORTED, "num_key_value_heads",
        "num_attention_heads", "num_key_value_heads differing");
    bad("{\"quantization_config\": {\"quant_method\": \"awq\", \"bits\": 4}}", NULL,
        R1_EUNSUPPORTED, "quantization_config", "\"quant_method\" should be \"fp8\"",
        "another quantization method");
    bad("{\"quantization_config\": {\"activation_scheme\": \"dynamic\", \"fmt\": \"e5m2\", "
        "\"quant_method\": \"fp8\", \"weight_block_size\": [128, 128]}}",
        NULL, R1_EUNSUPPORTED, "quantization_config", "\"fmt\" should be \"e4m3\"",
        "FP8 as e5m2");
    bad("{\"quantization_config\": {\"activation_scheme\": \"dynamic\", \"fmt\": \"e4m3\", "
        "\"quant_method\": \"fp8\", \"weight_block_size\": [64, 64]}}",
        NULL, R1_EUNSUPPORTED, "quantization_config", "[128, 128]", "FP8 with 64x64 blocks");
    bad("{\"quantization_config\": \"fp8\"}", NULL, R1_EFORMAT, "quantization_config",
        "an object", "quantization_config as a string");
    bad("{\"sliding_window\": 4096}", NULL, R1_EUNSUPPORTED, "\"sliding_window\"", "unknown key",
        "an unknown key");
    bad("{\"topk_group\": 5}", NULL, R1_EFORMAT, "topk_group", "n_group", "topk_group > n_group");
    bad("{\"n_group\": 3}", NULL, R1_EFORMAT, "n_group", "divisible", "E not divisible by G");
    bad("{\"n_group\": 16, \"topk_group\": 4}", NULL, R1_EFORMAT, "n_group", "at least 2",
        "one expert per group");
    bad("{\"num_experts_per_tok\": 17}", NULL, R1_EFORMAT, "num_experts_per_tok",
        "n_routed_experts", "K > E");
    bad("{\"topk_group\": 1, \"num_experts_per_tok\": 5}", NULL, R1_EFORMAT, "topk_group",
        "num_experts_per_tok", "too few experts in the kept groups");
    bad("{\"qk_rope_head_dim\": 15}", NULL, R1_EFORMAT, "qk_rope_head_dim", "even",
        "an odd rope dimension");
    bad("{\"first_k_dense_replace\": -1}", NULL, R1_EFORMAT, "first_k_dense_replace",
        ">= 0", "a negative first_k_dense_replace");
    bad("{\"qk_head_dim\": 40}", NULL, R1_EFORMAT, "qk_head_dim", "qk_nope_head_dim + "
        "qk_rope_head_dim is", "qk_head_dim that is not the sum");
    bad("{\"rope_parameters\": {\"rope_type\": \"yarn\", \"factor\": 40}}", NULL,
        R1_EUNSUPPORTED, "rope_parameters", "\"yarn\": r1lab implements only plain RoPE",
        "YaRN in rope_parameters");
    bad("{\"rope_scaling\": {\"type\": \"linear\"}}", NULL, R1_EUNSUPPORTED, "rope_scaling",
        "only plain RoPE", "linear scaling in rope_scaling");
    bad("{\"rope_parameters\": {\"rope_type\": \"default\", \"factor\": 2}}", NULL,
        R1_EUNSUPPORTED, "rope_parameters", "unknown entry \"factor\"",
        "an entry plain RoPE does not have");
    bad("{\"rope_parameters\": {\"rope_theta\": 500}}", NULL, R1_EFORMAT, "rope_parameters",
        "differs from the top-level rope_theta", "two rope_theta that disagree");
    bad("{\"vocab_size\": 0}", NULL, R1_EFORMAT, "vocab_size", "positive", "vocab_size 0");
    bad("{\"eos_token_id\": 1000}", NULL, R1_EFORMAT, "eos_token_id", "vocab_size",
        "eos outside the vocabulary");

    r1_config c;
    r1_error err = {0};
    is_int(r1_config_parse(&c, "{\"model_type\": \"deepseek_v3\",", NAME, &err), R1_EFORMAT,
           "text that is not JSON");
    like(err.msg, NAME, "... names the file");
    like(err.msg, "line 1", "... and the position");
    is_int(r1_config_parse(&c, "[1, 2]", NAME, &err), R1_EFORMAT, "a JSON array");
    like(err.msg, "JSON object", "... is not an object");
    is_int(
        r1_config_parse(&c, "{\"model_type\": \"deepseek_v3\", \"model_type\": \"x\"}", NAME, &err),
        R1_EFORMAT, "a key given twice");
    like(err.msg, "model_type", "... is named");
    const char *missing = tu_at("absent/config.json");
    is_int(r1_config_load(&c, missing, &err), R1_ENOTFOUND, "a missing file");
    like(err.msg, missing, "... is named");

    r1_config_preset(&c, "tiny", NULL);
    c.topk_group = 5;
    is_int(r1_config_validate(&c, &err), R1_EINVAL, "validate: topk_group > n_group");
    like(err.msg, "topk_group (5)", "... names the key and the value");
    r1_config_preset(&c, "tiny", NULL);
    c.n_routed_experts = 0;
    c.n_group = 0; /* ignored by a dense model */
    is_int(r1_config_validate(&c, &err), R1_OK, "validate: a dense model ignores n_group");
}

/* What transformers writes today loads: dtype for torch_dtype, qk_head_dim, rope_parameters
 * (and rope_scaling) describing plain RoPE, rope_theta only inside rope_parameters, and
 * first_k_dense_replace past the layers (every layer dense). */
static void test_transformers(void)
{
    r1_config want = expected_base(), c;
    r1_error err = {0};
    char *text = variant("{\"dtype\": \"bfloat16\", \"qk_head_dim\": 48, "
                         "\"rope_parameters\": {\"rope_type\": \"default\", "
                         "\"rope_theta\": 10000.0}}", "torch_dtype");
    is_int(r1_config_parse(&c, text, NAME, &err), R1_OK, "transformers 5's keys: dtype, "
           "qk_head_dim, rope_parameters");
    if (err.msg[0])
        diag("%s", err.msg);
    ok(memcmp(&c, &want, sizeof c) == 0, "... the same config as without them");
    free(text);
    text = variant("{\"rope_parameters\": {\"rope_theta\": 50000.0, "
                   "\"rope_type\": \"default\"}}", "rope_theta");
    is_int(r1_config_parse(&c, text, NAME, &err), R1_OK, "rope_theta only inside rope_parameters");
    ok(c.rope_theta == 50000.0f, "... is read from there (%g)", (double)c.rope_theta);
    free(text);
    text = variant("{\"rope_scaling\": {\"type\": \"default\"}}", NULL);
    is_int(r1_config_parse(&c, text, NAME, &err), R1_OK, "rope_scaling of type default");
    free(text);
    text = variant("{\"first_k_dense_replace\": 7}", NULL);
    is_int(r1_config_parse(&c, text, NAME, &err), R1_OK,
           "first_k_dense_replace past num_hidden_layers (3)");
    int moe = 0;
    for (int l = 0; l < c.num_hidden_layers + c.num_nextn_predict_layers; l++)
        moe += r1_config_is_moe(&c, l);
    is_int(moe, 0, "... every layer, the MTP module's too, is dense");
    free(text);
}

int main(void)
{
    tu_tmpdir("t_config");
    test_parse();
    test_presets();
    test_save();
    test_bad();
    test_transformers();
    tu_rm(tu_dir);
    return done_testing();
}
