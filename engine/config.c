/* config.c — the model configuration: HF deepseek_v3 config.json read and written with jansson,
 * the built-in presets and the checks on sizes and relations.
 *
 * Ownership: r1_config is a plain value the caller owns; nothing here keeps pointers.  On
 * failure the output struct is left untouched.
 *
 * Errors: a file that cannot be opened is R1_ENOTFOUND / R1_EIO; malformed JSON, a missing
 * required key, a value of the wrong type or out of range is R1_EFORMAT; a key (or a key's
 * value) that selects behaviour r1lab does not implement is R1_EUNSUPPORTED.  Messages start
 * with the file name and name the key.  r1_config_validate on a struct returns R1_EINVAL. */
#include <config.h>

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"
#include "json_util.h"
#include "r1_config.h"
#include "r1_safetensors.h"
#include "r1_tokenizer.h"

/* ------------------------------------------------------------------ the key tables */

typedef enum {
    K_INT,      /* integer */
    K_INT_NULL, /* integer, or null meaning 0 (q_lora_rank, n_routed_experts) */
    K_TOKEN,    /* integer, or null meaning -1 (bos/eos) */
    K_FLOAT,    /* any JSON number, stored as float */
    K_BOOL      /* true / false, stored as 0 / 1 */
} kind;

typedef enum {
    OPTIONAL, /* absent: the default from defaults() */
    REQUIRED,
    MOE /* required when n_routed_experts > 0 */
} need;

/* The keys stored in r1_config, in the order r1_config_save writes them (alphabetical, as HF
 * does).  q_lora_rank and n_routed_experts are required although null is allowed: HF reads an
 * absent key as its own default (1536, 256 experts), which would be a different model. */
static const struct field {
    const char *key;
    kind k;
    need n;
    size_t off;
} fields[] = {
/* clang-format off */
#define F(key, k, n) {#key, k, n, offsetof(r1_config, key)}
    F(bos_token_id, K_TOKEN, OPTIONAL),
    F(eos_token_id, K_TOKEN, OPTIONAL),
    F(first_k_dense_replace, K_INT, MOE),
    F(hidden_size, K_INT, REQUIRED),
    F(initializer_range, K_FLOAT, OPTIONAL),
    F(intermediate_size, K_INT, REQUIRED),
    F(kv_lora_rank, K_INT, REQUIRED),
    F(max_position_embeddings, K_INT, REQUIRED),
    F(moe_intermediate_size, K_INT, MOE),
    F(n_group, K_INT, MOE),
    F(n_routed_experts, K_INT_NULL, REQUIRED),
    F(n_shared_experts, K_INT, MOE),
    F(norm_topk_prob, K_BOOL, MOE),
    F(num_attention_heads, K_INT, REQUIRED),
    F(num_experts_per_tok, K_INT, MOE),
    F(num_hidden_layers, K_INT, REQUIRED),
    F(num_nextn_predict_layers, K_INT, OPTIONAL),
    F(q_lora_rank, K_INT_NULL, REQUIRED),
    F(qk_nope_head_dim, K_INT, REQUIRED),
    F(qk_rope_head_dim, K_INT, REQUIRED),
    F(rms_norm_eps, K_FLOAT, REQUIRED),
    F(rope_theta, K_FLOAT, REQUIRED),
    F(routed_scaling_factor, K_FLOAT, MOE),
    F(tie_word_embeddings, K_BOOL, OPTIONAL),
    F(topk_group, K_INT, MOE),
    F(v_head_dim, K_INT, REQUIRED),
    F(vocab_size, K_INT, REQUIRED),
#undef F
    /* clang-format on */
};
#define NFIELDS ((int)(sizeof fields / sizeof fields[0]))

typedef enum {
    C_STRING,    /* any string */
    C_STRING_IS, /* exactly the string s */
    C_INT,       /* any integer */
    C_INT_IS,    /* exactly the integer x */
    C_INT_OR_NULL,
    C_NUMBER,    /* any number */
    C_NUMBER_IS, /* exactly the number x */
    C_BOOL,
    C_BOOL_IS, /* exactly the boolean x */
    C_NULL,    /* only null */
    C_OBJECT,
    C_STRINGS, /* an array of strings */
    C_FP8,     /* DeepSeek-V3's quantization_config, exactly (check_fp8) */
    C_ROPE,    /* null, or an object describing plain RoPE (check_rope) */
    C_REFUSE   /* present at all: unsupported, with reason s */
} check_kind;

/* Keys accepted and checked but not stored: HF bookkeeping, and settings whose only value
 * r1lab implements is the one listed. */
static const struct check {
    const char *key;
    check_kind k;
    const char *s;
    double x;
} checks[] = {
    {"_name_or_path", C_STRING, NULL, 0},
    {"architectures", C_STRINGS, NULL, 0},
    {"attention_bias", C_BOOL_IS, NULL, 0},
    {"attention_dropout", C_NUMBER_IS, NULL, 0},
    {"dtype", C_STRING, NULL, 0}, /* what transformers 5 writes for torch_dtype */
    {"auto_map", C_OBJECT, NULL, 0},
    {"aux_loss_alpha", C_NUMBER, NULL, 0},
    {"ep_size", C_INT_IS, NULL, 1},
    {"head_dim", C_INT_OR_NULL, NULL, 0},
    {"hidden_act", C_STRING_IS, "silu", 0},
    {"model_type", C_STRING_IS, "deepseek_v3", 0},
    {"moe_layer_freq", C_INT_IS, NULL, 1},
    {"num_key_value_heads", C_INT, NULL, 0}, /* compared with num_attention_heads later */
    {"output_router_logits", C_BOOL, NULL, 0},
    {"pad_token_id", C_INT_OR_NULL, NULL, 0},
    {"pretraining_tp", C_INT_IS, NULL, 1},
    {"qk_head_dim", C_INT, NULL, 0}, /* compared with qk_nope + qk_rope later */
    {"quantization_config", C_FP8, NULL, 0},
    {"rope_interleave", C_BOOL_IS, NULL, 1},
    {"rope_parameters", C_ROPE, NULL, 0}, /* transformers 5's name for rope_scaling */
    {"rope_scaling", C_ROPE, NULL, 0},
    {"router_aux_loss_coef", C_NUMBER, NULL, 0},
    {"scoring_func", C_STRING_IS, "sigmoid", 0},
    {"seq_aux", C_BOOL, NULL, 0},
    {"topk_method", C_STRING_IS, "noaux_tc", 0},
    {"torch_dtype", C_STRING, NULL, 0},
    {"transformers_version", C_STRING, NULL, 0},
    {"use_cache", C_BOOL, NULL, 0},
};
#define NCHECKS ((int)(sizeof checks / sizeof checks[0]))

/* ------------------------------------------------------------------ parsing */

static r1_status key_fail(r1_error *err, r1_status s, const char *name, const char *key,
                          const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static r1_status key_fail(r1_error *err, r1_status s, const char *name, const char *key,
                          const char *fmt, ...)
{
    char detail[R1_ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return r1_error_set(err, s, "%s: key \"%s\": %s", name, key, detail);
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "an unknown value";
}

static r1_status type_fail(r1_error *err, const char *name, const char *key, const char *want,
                           const json_t *v)
{
    return key_fail(err, R1_EFORMAT, name, key, "expected %s, found %s", want, type_name(v));
}

static r1_status get_int(int *out, const json_t *v, const char *name, const char *key,
                         r1_error *err)
{
    if (!json_is_integer(v))
        return type_fail(err, name, key, "an integer", v);
    json_int_t x = json_integer_value(v);
    if (x < INT_MIN || x > INT_MAX)
        return key_fail(err, R1_EFORMAT, name, key, "%lld is out of range for a 32-bit integer",
                        (long long)x);
    *out = (int)x;
    return R1_OK;
}

static r1_status store(r1_config *c, const struct field *f, const json_t *v, const char *name,
                       r1_error *err)
{
    void *p = (char *)c + f->off;
    switch (f->k) {
    case K_INT_NULL:
    case K_TOKEN:
        if (json_is_null(v)) {
            *(int *)p = f->k == K_TOKEN ? -1 : 0;
            return R1_OK;
        }
        if (!json_is_integer(v))
            return type_fail(err, name, f->key, "an integer or null", v);
        return get_int(p, v, name, f->key, err);
    case K_INT: return get_int(p, v, name, f->key, err);
    case K_FLOAT: {
        if (!json_is_number(v))
            return type_fail(err, name, f->key, "a number", v);
        double x = json_number_value(v);
        if (!isfinite((float)x))
            return key_fail(err, R1_EFORMAT, name, f->key, "%g is out of range for a 32-bit float",
                            x);
        *(float *)p = (float)x;
        return R1_OK;
    }
    case K_BOOL:
        if (!json_is_boolean(v))
            return type_fail(err, name, f->key, "a boolean", v);
        *(int *)p = json_is_true(v);
        return R1_OK;
    }
    return R1_OK;
}

/* quantization_config: only the FP8 layout DeepSeek-V3 ships, {"activation_scheme": "dynamic",
 * "fmt": "e4m3", "quant_method": "fp8", "weight_block_size": [128, 128]}.  Nothing is stored:
 * the tensors' dtypes and their *_scale_inv tensors say which weights are FP8 (safetensors.c
 * reads them as fp32). */
static r1_status check_fp8(const json_t *v, const char *name, r1_error *err)
{
    const char *key = "quantization_config";
    if (!json_is_object(v))
        return type_fail(err, name, key, "an object", v);
    static const char *const want[][2] = {
        {"quant_method", "fp8"}, {"fmt", "e4m3"}, {"activation_scheme", "dynamic"}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const json_t *x = json_object_get(v, want[i][0]);
        if (!json_is_string(x) || strcmp(json_string_value(x), want[i][1]) != 0)
            return key_fail(err, R1_EUNSUPPORTED, name, key,
                            "\"%s\" should be \"%s\", found %s%s%s (r1lab reads only "
                            "DeepSeek-V3's FP8 layout)",
                            want[i][0], want[i][1], json_is_string(x) ? "\"" : "",
                            !x                  ? "nothing"
                            : json_is_string(x) ? json_string_value(x)
                                                : type_name(x),
                            json_is_string(x) ? "\"" : "");
    }
    const json_t *b = json_object_get(v, "weight_block_size");
    if (!json_is_array(b) || json_array_size(b) != 2 ||
        json_integer_value(json_array_get(b, 0)) != 128 ||
        json_integer_value(json_array_get(b, 1)) != 128)
        return key_fail(err, R1_EUNSUPPORTED, name, key,
                        "\"weight_block_size\" must be [128, 128] (DeepSeek-V3's blocks)");
    const char *k;
    json_t *x;
    json_object_foreach ((json_t *)v, k, x) {
        if (strcmp(k, "quant_method") && strcmp(k, "fmt") && strcmp(k, "activation_scheme") &&
            strcmp(k, "weight_block_size"))
            return key_fail(err, R1_EUNSUPPORTED, name, key,
                            "unknown entry \"%s\" (r1lab reads only DeepSeek-V3's FP8 layout)",
                            k);
    }
    return R1_OK;
}

/* rope_scaling / rope_parameters: null, or an object that describes plain RoPE: rope_type (or
 * type) "default" when present, and nothing else but rope_theta (read by parse_root).  YaRN
 * and the other scalings change the positions' frequencies, which r1lab does not implement. */
static r1_status check_rope(const char *key, const json_t *v, const char *name, r1_error *err)
{
    if (json_is_null(v))
        return R1_OK;
    if (!json_is_object(v))
        return type_fail(err, name, key, "null or an object", v);
    const char *k;
    json_t *x;
    json_object_foreach ((json_t *)v, k, x) {
        if (!strcmp(k, "rope_type") || !strcmp(k, "type")) {
            if (!json_is_string(x) || strcmp(json_string_value(x), "default") != 0)
                return key_fail(err, R1_EUNSUPPORTED, name, key,
                                "\"%s\" is %s%s%s: r1lab implements only plain RoPE "
                                "(\"default\"; YaRN and other scalings are not supported)",
                                k, json_is_string(x) ? "\"" : "",
                                json_is_string(x) ? json_string_value(x) : type_name(x),
                                json_is_string(x) ? "\"" : "");
        } else if (!strcmp(k, "rope_theta")) {
            if (!json_is_number(x) || !(json_number_value(x) > 0))
                return key_fail(err, R1_EFORMAT, name, key,
                                "\"rope_theta\" should be a positive number, found %s",
                                type_name(x));
        } else {
            return key_fail(err, R1_EUNSUPPORTED, name, key,
                            "unknown entry \"%s\" (r1lab implements only plain RoPE: "
                            "rope_type \"default\" and rope_theta)", k);
        }
    }
    return R1_OK;
}

/* Checks a key that is accepted but not stored. */
static r1_status check(const struct check *k, const json_t *v, const char *name, r1_error *err)
{
    const char *key = k->key;
    switch (k->k) {
    case C_STRING:
    case C_STRING_IS:
        if (!json_is_string(v))
            return type_fail(err, name, key, "a string", v);
        if (k->k == C_STRING_IS && strcmp(json_string_value(v), k->s) != 0)
            return key_fail(err, R1_EUNSUPPORTED, name, key,
                            "\"%s\" is not supported (r1lab implements only \"%s\")",
                            json_string_value(v), k->s);
        return R1_OK;
    case C_INT:
    case C_INT_IS:
        if (!json_is_integer(v))
            return type_fail(err, name, key, "an integer", v);
        if (k->k == C_INT_IS && json_integer_value(v) != (json_int_t)k->x)
            return key_fail(err, R1_EUNSUPPORTED, name, key,
                            "%lld is not supported (r1lab implements only %lld)",
                            (long long)json_integer_value(v), (long long)k->x);
        return R1_OK;
    case C_INT_OR_NULL:
        return json_is_integer(v) || json_is_null(v)
                   ? R1_OK
                   : type_fail(err, name, key, "an integer or null", v);
    case C_NUMBER:
    case C_NUMBER_IS:
        if (!json_is_number(v))
            return type_fail(err, name, key, "a number", v);
        if (k->k == C_NUMBER_IS && json_number_value(v) != k->x)
            return key_fail(err, R1_EUNSUPPORTED, name, key,
                            "%g is not supported (r1lab implements only %g)", json_number_value(v),
                            k->x);
        return R1_OK;
    case C_BOOL:
    case C_BOOL_IS:
        if (!json_is_boolean(v))
            return type_fail(err, name, key, "a boolean", v);
        if (k->k == C_BOOL_IS && json_is_true(v) != (k->x != 0))
            return key_fail(err, R1_EUNSUPPORTED, name, key,
                            "%s is not supported (r1lab implements only %s)",
                            json_is_true(v) ? "true" : "false", k->x != 0 ? "true" : "false");
        return R1_OK;
    case C_NULL:
        return json_is_null(v) ? R1_OK
                               : key_fail(err, R1_EUNSUPPORTED, name, key,
                                          "%s is not supported (r1lab implements only null)", key);
    case C_OBJECT: return json_is_object(v) ? R1_OK : type_fail(err, name, key, "an object", v);
    case C_STRINGS:
        if (!json_is_array(v))
            return type_fail(err, name, key, "an array of strings", v);
        for (size_t i = 0; i < json_array_size(v); i++)
            if (!json_is_string(json_array_get(v, i)))
                return type_fail(err, name, key, "an array of strings", json_array_get(v, i));
        return R1_OK;
    case C_FP8: return check_fp8(v, name, err);
    case C_ROPE: return check_rope(key, v, name, err);
    case C_REFUSE: return key_fail(err, R1_EUNSUPPORTED, name, key, "%s", k->s);
    }
    return R1_OK;
}

static const struct field *find_field(const char *key)
{
    for (int i = 0; i < NFIELDS; i++)
        if (strcmp(fields[i].key, key) == 0)
            return &fields[i];
    return NULL;
}

static const struct check *find_check(const char *key)
{
    for (int i = 0; i < NCHECKS; i++)
        if (strcmp(checks[i].key, key) == 0)
            return &checks[i];
    return NULL;
}

static void defaults(r1_config *c)
{
    memset(c, 0, sizeof *c);
    c->bos_token_id = -1;
    c->eos_token_id = -1;
    c->initializer_range = 0.02f;
    c->routed_scaling_factor = 1.0f; /* only a dense model can lack it */
}

static r1_status parse_root(r1_config *out, const json_t *root, const char *name, r1_error *err)
{
    if (!json_is_object(root))
        return r1_error_set(err, R1_EFORMAT, "%s: expected a JSON object, found %s", name,
                            type_name(root));
    /* model_type first: a llama config should be told so, not that "rope_scaling" is odd. */
    const json_t *mt = json_object_get(root, "model_type");
    if (!mt)
        return key_fail(err, R1_EFORMAT, name, "model_type", "missing (expected \"deepseek_v3\")");
    r1_status s = check(find_check("model_type"), mt, name, err);
    if (s != R1_OK)
        return s;

    r1_config c;
    defaults(&c);
    const char *key;
    json_t *v;
    json_object_foreach ((json_t *)root, key, v) {
        const struct field *f = find_field(key);
        const struct check *k = f ? NULL : find_check(key);
        if (f)
            s = store(&c, f, v, name, err);
        else if (k)
            s = check(k, v, name, err);
        else
            s = key_fail(err, R1_EUNSUPPORTED, name, key,
                         "unknown key (not a deepseek_v3 setting r1lab implements)");
        if (s != R1_OK)
            return s;
    }
    /* rope_theta inside rope_parameters (transformers 5) when the top level has none; both
     * present must agree */
    for (int i = 0; i < 2; i++) {
        const char *rk = i ? "rope_scaling" : "rope_parameters";
        const json_t *th = json_object_get(json_object_get(root, rk), "rope_theta");
        const json_t *top = json_object_get(root, "rope_theta");
        if (!th)
            continue;
        if (!top)
            c.rope_theta = (float)json_number_value(th);
        else if ((float)json_number_value(th) != c.rope_theta)
            return key_fail(err, R1_EFORMAT, name, rk,
                            "rope_theta %g differs from the top-level rope_theta %g",
                            json_number_value(th), (double)c.rope_theta);
    }
    for (int i = 0; i < NFIELDS; i++) {
        const struct field *f = &fields[i];
        if (json_object_get(root, f->key))
            continue;
        if (!strcmp(f->key, "rope_theta") && c.rope_theta > 0)
            continue; /* it came from rope_parameters */
        if (f->n == REQUIRED)
            return key_fail(err, R1_EFORMAT, name, f->key, "missing");
        if (f->n == MOE && c.n_routed_experts > 0)
            return key_fail(err, R1_EFORMAT, name, f->key,
                            "missing (required when n_routed_experts is %d)", c.n_routed_experts);
    }
    /* a dense model's first_k_dense_replace means nothing; read as the saver writes it (every
     * layer below it, as Hugging Face's deepseek_v3 reads it), so configs round-trip */
    if (c.n_routed_experts == 0)
        c.first_k_dense_replace = c.num_hidden_layers;
    const json_t *qkh = json_object_get(root, "qk_head_dim");
    if (qkh && json_integer_value(qkh) != c.qk_nope_head_dim + c.qk_rope_head_dim)
        return key_fail(err, R1_EFORMAT, name, "qk_head_dim",
                        "%lld, but qk_nope_head_dim + qk_rope_head_dim is %d + %d = %d",
                        (long long)json_integer_value(qkh), c.qk_nope_head_dim,
                        c.qk_rope_head_dim, c.qk_nope_head_dim + c.qk_rope_head_dim);
    const json_t *kvh = json_object_get(root, "num_key_value_heads");
    if (kvh && json_integer_value(kvh) != c.num_attention_heads)
        return key_fail(err, R1_EUNSUPPORTED, name, "num_key_value_heads",
                        "%lld differs from num_attention_heads (%d); MLA has one key/value head "
                        "per attention head",
                        (long long)json_integer_value(kvh), c.num_attention_heads);
    if ((s = r1_config_validate(&c, err)) != R1_OK) {
        if (err)
            err->status = R1_EFORMAT;
        r1_error_prefix(err, "%s", name);
        return R1_EFORMAT;
    }
    *out = c;
    return R1_OK;
}

r1_status r1_config_parse(r1_config *c, const char *json, const char *name, r1_error *err)
{
    json_error_t je;
    json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return r1_json_fail(err, name, &je);
    r1_status s = parse_root(c, root, name, err);
    json_decref(root);
    return s;
}

r1_status r1_config_load(r1_config *c, const char *path, r1_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return r1_error_set(err, errno == ENOENT ? R1_ENOTFOUND : R1_EIO, "%s: cannot open: %s",
                            path, strerror(errno));
    json_error_t je;
    json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES, &je);
    fclose(f);
    if (!root)
        return r1_json_fail(err, path, &je);
    r1_status s = parse_root(c, root, path, err);
    json_decref(root);
    return s;
}

/* ------------------------------------------------------------------ validation */

#define NEED(cond, ...)                                                                            \
    do {                                                                                           \
        if (!(cond))                                                                               \
            return r1_error_set(err, R1_EINVAL, __VA_ARGS__);                                      \
    } while (0)
#define POSITIVE(key) NEED(c->key > 0, #key " must be positive (found %d)", c->key)
#define FPOSITIVE(key)                                                                             \
    NEED(isfinite(c->key) && c->key > 0, #key " must be a positive number (found %g)",             \
         (double)c->key)

#define AT_MOST(key, max)                                                                          \
    NEED(c->key <= (max), #key " %d is above r1lab's ceiling of %d", c->key, (max))

double r1_config_param_estimate(const r1_config *c)
{
    double H = c->hidden_size, nh = c->num_attention_heads, qk = c->qk_nope_head_dim + c->qk_rope_head_dim;
    double q = c->q_lora_rank > 0 ? H * c->q_lora_rank + c->q_lora_rank + c->q_lora_rank * nh * qk
                                  : H * nh * qk;
    double attn = q + H * (c->kv_lora_rank + c->qk_rope_head_dim) + c->kv_lora_rank +
                  c->kv_lora_rank * nh * (c->qk_nope_head_dim + c->v_head_dim) +
                  nh * c->v_head_dim * H + 2 * H;
    double dense = 3 * H * c->intermediate_size;
    double moe = c->n_routed_experts > 0
                     ? (double)c->n_routed_experts * (3 * H * c->moe_intermediate_size + H + 1) +
                           3 * H * c->moe_intermediate_size * c->n_shared_experts
                     : dense;
    double total = 2.0 * c->vocab_size * H + H;
    for (int l = 0; l < c->num_hidden_layers; l++)
        total += attn + (r1_config_is_moe(c, l) ? moe : dense);
    total += c->num_nextn_predict_layers * (attn + moe + 2 * H * H + 3 * H);
    return total;
}

r1_status r1_config_validate(const r1_config *c, r1_error *err)
{
    /* ceilings far above any model a CPU can train, low enough that no size computed from
     * them overflows an int (the probe's M3: hidden_size 2e9 wrapped the layout) */
    AT_MOST(vocab_size, 1 << 20);
    AT_MOST(hidden_size, 16384);
    AT_MOST(intermediate_size, 65536);
    AT_MOST(num_hidden_layers, 256);
    AT_MOST(num_attention_heads, 256);
    AT_MOST(kv_lora_rank, 8192);
    AT_MOST(q_lora_rank, 8192);
    AT_MOST(qk_nope_head_dim, 1024);
    AT_MOST(qk_rope_head_dim, 1024);
    AT_MOST(v_head_dim, 1024);
    AT_MOST(max_position_embeddings, 1 << 20);
    AT_MOST(num_nextn_predict_layers, 16);
    AT_MOST(n_routed_experts, 1024);
    AT_MOST(n_shared_experts, 64);
    AT_MOST(moe_intermediate_size, 65536);
    POSITIVE(vocab_size);
    POSITIVE(hidden_size);
    POSITIVE(intermediate_size);
    POSITIVE(num_hidden_layers);
    POSITIVE(num_attention_heads);
    POSITIVE(kv_lora_rank);
    POSITIVE(qk_nope_head_dim);
    POSITIVE(qk_rope_head_dim);
    POSITIVE(v_head_dim);
    POSITIVE(max_position_embeddings);
    NEED(c->qk_rope_head_dim % 2 == 0,
         "qk_rope_head_dim must be even, RoPE rotates pairs (found %d)", c->qk_rope_head_dim);
    NEED(c->q_lora_rank >= 0, "q_lora_rank must be 0 (null) or positive (found %d)",
         c->q_lora_rank);
    NEED(c->num_nextn_predict_layers >= 0,
         "num_nextn_predict_layers must not be negative (found %d)", c->num_nextn_predict_layers);
    FPOSITIVE(rms_norm_eps);
    FPOSITIVE(rope_theta);
    NEED(isfinite(c->initializer_range) && c->initializer_range >= 0,
         "initializer_range must be a non-negative number (found %g)",
         (double)c->initializer_range);
    NEED(c->bos_token_id >= -1 && c->bos_token_id < c->vocab_size,
         "bos_token_id %d is outside the vocabulary [0, vocab_size %d)", c->bos_token_id,
         c->vocab_size);
    NEED(c->eos_token_id >= -1 && c->eos_token_id < c->vocab_size,
         "eos_token_id %d is outside the vocabulary [0, vocab_size %d)", c->eos_token_id,
         c->vocab_size);
    NEED(c->norm_topk_prob == 0 || c->norm_topk_prob == 1, "norm_topk_prob must be 0 or 1");
    NEED(c->tie_word_embeddings == 0 || c->tie_word_embeddings == 1,
         "tie_word_embeddings must be 0 or 1");
    NEED(c->n_routed_experts >= 0, "n_routed_experts must be 0 (null) or positive (found %d)",
         c->n_routed_experts);
    NEED(c->n_routed_experts == 0 || (c->moe_intermediate_size > 0 && c->n_shared_experts >= 0),
         "moe_intermediate_size must be positive and n_shared_experts not negative");
    /* the RoPE tables (cos and sin, P x qk_rope_head_dim / 2 floats each) are no parameters,
     * but r1_model_new fills them: 2^20 x 1024 took 4 GiB for a model of 636 parameters */
    NEED((double)c->max_position_embeddings * c->qk_rope_head_dim <= R1_CONFIG_MAX_ROPE,
         "max_position_embeddings x qk_rope_head_dim is %.3g, above r1lab's ceiling of %.3g "
         "(2^26, 256 MiB of RoPE tables)",
         (double)c->max_position_embeddings * c->qk_rope_head_dim, (double)R1_CONFIG_MAX_ROPE);
    double np = r1_config_param_estimate(c);
    NEED(np <= R1_CONFIG_MAX_PARAMS,
         "the config makes about %.3g parameters, above r1lab's ceiling of %.3g (2^31: with "
         "gradients and AdamW moments that is 32 GiB)", np, (double)R1_CONFIG_MAX_PARAMS);
    if (c->n_routed_experts == 0)
        return R1_OK; /* dense: the MoE settings are not used */

    int E = c->n_routed_experts, K = c->num_experts_per_tok, G = c->n_group;
    POSITIVE(moe_intermediate_size);
    NEED(c->n_shared_experts >= 0, "n_shared_experts must not be negative (found %d)",
         c->n_shared_experts);
    NEED(K >= 1 && K <= E, "num_experts_per_tok (%d) must be in [1, n_routed_experts %d]", K, E);
    NEED(G >= 1, "n_group must be positive (found %d)", G);
    NEED(E % G == 0, "n_routed_experts (%d) must be divisible by n_group (%d)", E, G);
    NEED(G == 1 || E / G >= 2,
         "each of the n_group (%d) groups must hold at least 2 of the n_routed_experts (%d): a "
         "group scores the sum of its two best experts",
         G, E);
    NEED(c->topk_group >= 1 && c->topk_group <= G, "topk_group (%d) must be in [1, n_group %d]",
         c->topk_group, G);
    NEED((long)c->topk_group * (E / G) >= K,
         "topk_group (%d) groups of n_routed_experts / n_group (%d) experts hold fewer than "
         "num_experts_per_tok (%d)",
         c->topk_group, E / G, K);
    FPOSITIVE(routed_scaling_factor);
    /* above num_hidden_layers every layer is dense, as Hugging Face reads it (and the MTP
     * layers at L.. are MoE only from first_k_dense_replace on) */
    NEED(c->first_k_dense_replace >= 0, "first_k_dense_replace (%d) must be >= 0",
         c->first_k_dense_replace);
    return R1_OK;
}

int r1_config_is_moe(const r1_config *c, int l)
{
    return c->n_routed_experts > 0 && l >= c->first_k_dense_replace;
}

/* ------------------------------------------------------------------ saving */

/* The shortest decimal that reads back (through strtod, as jansson reads) as exactly f, so the
 * file says 1e-06 rather than 9.9999999747524271e-07.  Written with 9 significant digits,
 * which reproduce any such decimal and, at worst, any float. */
static json_t *real_of(float f)
{
    char buf[32];
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, (double)f);
        double d = strtod(buf, NULL);
        if ((float)d == f)
            return json_real(d);
    }
    return json_real((double)f);
}

static json_t *value_of(const r1_config *c, const struct field *f)
{
    const void *p = (const char *)c + f->off;
    switch (f->k) {
    case K_INT: return json_integer(*(const int *)p);
    case K_INT_NULL: return *(const int *)p ? json_integer(*(const int *)p) : json_null();
    case K_TOKEN: return *(const int *)p >= 0 ? json_integer(*(const int *)p) : json_null();
    case K_FLOAT: return real_of(*(const float *)p);
    case K_BOOL: return json_boolean(*(const int *)p);
    }
    return NULL;
}

/* config.json's object; stored is the dtype the weights are written in (F32, BF16 or
 * F8_E4M3), which torch_dtype names. */
static json_t *to_json(const r1_config *c, r1_dtype stored)
{
    int fp8 = stored == R1_DT_F8_E4M3;
    /* a dense model says so the way Hugging Face's deepseek_v3 reads it: every layer below
     * first_k_dense_replace, no routed experts */
    r1_config dense;
    if (c->n_routed_experts == 0) {
        dense = *c;
        dense.first_k_dense_replace = c->num_hidden_layers;
        c = &dense;
    }
    /* json_object_set_new takes its value even when it fails (and fails on a NULL value), so
     * a short-circuited chain leaks nothing. */
    json_t *o = json_object();
    if (!o)
        return NULL;
    int bad = json_object_set_new(o, "architectures", json_pack("[s]", "DeepseekV3ForCausalLM"));
    for (int i = 0; i < NFIELDS && !bad; i++)
        bad = json_object_set_new(o, fields[i].key, value_of(c, &fields[i])) != 0;
    /* no routed experts is written 0, not null: transformers 5 declares n_routed_experts a
     * plain int and its strict config check refuses null (q_lora_rank stays null: Optional) */
    if (!bad && c->n_routed_experts == 0)
        bad = json_object_set_new(o, "n_routed_experts", json_integer(0)) != 0;
    bad = bad || json_object_set_new(o, "model_type", json_string("deepseek_v3")) ||
          json_object_set_new(o, "num_key_value_heads", json_integer(c->num_attention_heads)) ||
          json_object_set_new(o, "hidden_act", json_string("silu")) ||
          json_object_set_new(o, "topk_method", json_string("noaux_tc")) ||
          json_object_set_new(o, "scoring_func", json_string("sigmoid")) ||
          json_object_set_new(o, "moe_layer_freq", json_integer(1)) ||
          json_object_set_new(o, "rope_scaling", json_null()) ||
          json_object_set_new(o, "rope_interleave", json_true()) ||
          json_object_set_new(o, "attention_bias", json_false()) ||
          json_object_set_new(o, "attention_dropout", json_real(0.0)) ||
          /* the dtype the weights are stored in; an FP8 checkpoint says bfloat16, as
           * DeepSeek-V3's does: its other tensors are */
          json_object_set_new(o, "torch_dtype",
                              json_string(stored == R1_DT_F32 ? "float32" : "bfloat16"));
    if (!bad && fp8)
        bad = json_object_set_new(o, "quantization_config",
                                  json_pack("{s:s, s:s, s:s, s:[i, i]}", "activation_scheme",
                                            "dynamic", "fmt", "e4m3", "quant_method", "fp8",
                                            "weight_block_size", 128, 128)) != 0;
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

r1_status r1__config_prepare(const r1_config *c, const char *path, int stored,
                             r1_afile *af, r1_error *err)
{
    r1_status s = r1_config_validate(c, err);
    if (s != R1_OK) {
        r1_error_prefix(err, "%s: refusing to save an invalid config", path);
        return s;
    }
    json_t *o = to_json(c, (r1_dtype)stored);
    char *text = o ? json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(o);
    if (!text)
        return r1_error_set(err, R1_ENOMEM, "%s: out of memory", path);
    if ((s = r1_afile_open(af, path, err)) == R1_OK) {
        s = r1_afile_write(af, text, strlen(text), err);
        if (s == R1_OK)
            s = r1_afile_write(af, "\n", 1, err);
        if (s == R1_OK)
            s = r1_afile_finish(af, err);
        else
            r1_afile_abort(af);
    }
    free(text);
    return s;
}

static r1_status save(const r1_config *c, const char *path, r1_dtype stored, r1_error *err)
{
    r1_afile af;
    r1_status s = r1__config_prepare(c, path, stored, &af, err);
    return s == R1_OK ? r1_afile_commit(&af, err) : s;
}

r1_status r1_config_save(const r1_config *c, const char *path, r1_error *err)
{
    return save(c, path, R1_DT_F32, err);
}

r1_status r1_config_save_fp8(const r1_config *c, const char *path, r1_error *err)
{
    return save(c, path, R1_DT_F8_E4M3, err);
}

/* ------------------------------------------------------------------ presets */

static void preset_tiny(r1_config *c)
{
    defaults(c);
    c->vocab_size = R1_TOK_VOCAB; /* the built-in character-level tokenizer */
    c->hidden_size = 192;
    c->intermediate_size = 512;
    c->moe_intermediate_size = 64;
    c->num_hidden_layers = 6;
    c->num_attention_heads = 6;
    c->first_k_dense_replace = 1;
    c->q_lora_rank = 96;
    c->kv_lora_rank = 64;
    c->qk_nope_head_dim = 32;
    c->qk_rope_head_dim = 16;
    c->v_head_dim = 32;
    c->n_routed_experts = 16;
    c->n_shared_experts = 1;
    c->num_experts_per_tok = 4;
    c->n_group = 4;
    c->topk_group = 2;
    c->norm_topk_prob = 1;
    c->routed_scaling_factor = 2.5f;
    c->num_nextn_predict_layers = 1;
    c->rope_theta = 10000.0f;
    c->rms_norm_eps = 1e-6f;
    c->max_position_embeddings = 1024;
    c->tie_word_embeddings = 0;
    c->bos_token_id = R1_TOK_BOS;
    c->eos_token_id = R1_TOK_EOS;
    c->initializer_range = 0.02f;
}

static void preset_small(r1_config *c)
{
    preset_tiny(c);
    c->vocab_size = 512;
    c->hidden_size = 512;
    c->intermediate_size = 1408;
    c->moe_intermediate_size = 128;
    c->num_hidden_layers = 8;
    c->num_attention_heads = 8;
    c->q_lora_rank = 256;
    c->kv_lora_rank = 128;
    c->qk_nope_head_dim = 64;
    c->qk_rope_head_dim = 32;
    c->v_head_dim = 64;
    c->n_routed_experts = 32;
    c->max_position_embeddings = 2048;
}

r1_status r1_config_preset(r1_config *c, const char *name, r1_error *err)
{
    if (name && strcmp(name, "tiny") == 0)
        preset_tiny(c);
    else if (name && strcmp(name, "small") == 0)
        preset_small(c);
    else
        return r1_error_set(err, R1_ENOTFOUND, "no preset \"%s\" (known: tiny, small)",
                            name ? name : "(null)");
    return R1_OK;
}
