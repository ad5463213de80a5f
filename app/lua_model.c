/* lua_model.c — r1.model: r1.load, r1.init, and the methods save, save_gguf, config, params,
 * forward, tokenizer, fp8, close (generate and ask are lua_generate.c's).  A model userdata
 * owns its r1_model (freed by __close/__gc; a closed model raises on use).  Engine errors
 * become Lua errors carrying the engine's message, raised after the C resources of the call
 * are released. */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "lua_r1.h"
#include "r1_fp8.h"
#include "r1_gguf.h"

lua_model *lua_model_check(lua_State *L, int idx)
{
    lua_model *u = luaL_checkudata(L, idx, LUA_R1_MODEL);
    if (!u->m)
        luaL_error(L, "attempt to use a closed model");
    return u;
}

lua_model *lua_model_idle(lua_State *L, int idx, const char *what)
{
    lua_model *u = lua_model_check(L, idx);
    if (u->busy)
        luaL_error(L, "%s: the model is in use by %s (a callback may read it, save it or look "
                   "at its config, but not %s it until %s returns)", what, u->busy,
                   !strcmp(what, "m:close") ? "close" : "run or train", u->busy);
    return u;
}

void lua_model_hold(lua_model *u, const char *by)
{
    if (u)
        u->busy = by;
}

void lua_model_drop(lua_model *u)
{
    if (u)
        u->busy = NULL;
}

static lua_model *push_model(lua_State *L)
{
    lua_model *u = lua_newuserdatauv(L, sizeof *u, 0); /* box first */
    memset(u, 0, sizeof *u);
    luaL_setmetatable(L, LUA_R1_MODEL);
    return u;
}

/* What a model holds in engine memory, roughly: parameters and their gradients. */
static size_t model_bytes(const r1_model *m)
{
    return r1_model_numel(m) * 2 * sizeof(float);
}

/* r1.load(dir) -> model */
static int l_load(lua_State *L)
{
    const char *dir = luaL_checkstring(L, 1);
    lua_model *u = push_model(L);
    r1_error err = {0};
    if (r1_model_load(&u->m, dir, &err) != R1_OK)
        return luaL_error(L, "%s", err.msg);
    snprintf(u->dir, sizeof u->dir, "%s", dir);
    if (*r1_model_notice(u->m)) { /* through print: the output pane in the workbench */
        lua_getglobal(L, "print");
        lua_pushfstring(L, "r1.load: notice: %s", r1_model_notice(u->m));
        lua_call(L, 1, 0);
    }
    char path[1100];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    FILE *f = fopen(path, "r");
    if (f) { /* a model folder with its tokenizer: text in, text out */
        fclose(f);
        if (r1_tokenizer_load(&u->tok, path, &err) != R1_OK ||
            r1_tokenizer_check_vocab(u->tok, r1_model_config(u->m)->vocab_size, path, &err) !=
                R1_OK)
            return luaL_error(L, "%s", err.msg);
    }
    lua_r1_gc_hint(L, model_bytes(u->m));
    return 1;
}

/* The integer and float fields of r1_config that a Lua table may set. */
#define CI(f) {#f, offsetof(r1_config, f), 0}
#define CF(f) {#f, offsetof(r1_config, f), 1}
static const struct {
    const char *name;
    size_t off;
    int is_float;
} cfg_fields[] = {CI(vocab_size), CI(hidden_size), CI(intermediate_size),
                  CI(moe_intermediate_size), CI(num_hidden_layers), CI(num_attention_heads),
                  CI(first_k_dense_replace), CI(q_lora_rank), CI(kv_lora_rank),
                  CI(qk_nope_head_dim), CI(qk_rope_head_dim), CI(v_head_dim),
                  CI(n_routed_experts), CI(n_shared_experts), CI(num_experts_per_tok),
                  CI(n_group), CI(topk_group), CI(norm_topk_prob), CF(routed_scaling_factor),
                  CI(num_nextn_predict_layers), CF(rope_theta), CF(rms_norm_eps),
                  CI(max_position_embeddings), CI(tie_word_embeddings), CI(bos_token_id),
                  CI(eos_token_id), CF(initializer_range)};
#define NFIELDS (sizeof cfg_fields / sizeof *cfg_fields)

/* r1.init(preset | config.json | {preset=, key=value...}, {seed=}) -> model */
static int l_init(lua_State *L)
{
    r1_config c;
    r1_error err = {0};
    uint64_t seed = (uint64_t)lua_r1_opt_int(L, 2, "seed", 1234);
    if (lua_type(L, 1) == LUA_TSTRING) {
        const char *s = lua_tostring(L, 1);
        if (r1_config_preset(&c, s, NULL) != R1_OK && r1_config_load(&c, s, &err) != R1_OK)
            return luaL_error(L, "%s", err.msg);
    } else {
        luaL_checktype(L, 1, LUA_TTABLE);
        const char *preset = lua_r1_opt_str(L, 1, "preset", "tiny");
        if (r1_config_preset(&c, preset, &err) != R1_OK)
            return luaL_error(L, "r1.init: unknown preset '%s' (tiny or small)", preset);
        lua_pushnil(L);
        while (lua_next(L, 1)) {
            const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
            if (!k)
                return luaL_error(L, "r1.init: config keys are strings");
            if (strcmp(k, "preset") != 0) {
                size_t i = 0;
                while (i < NFIELDS && strcmp(cfg_fields[i].name, k) != 0)
                    i++;
                if (i == NFIELDS)
                    return luaL_error(L, "r1.init: unknown config key '%s'", k);
                char *p = (char *)&c + cfg_fields[i].off;
                if (lua_isboolean(L, -1))
                    *(int *)p = lua_toboolean(L, -1);
                else if (cfg_fields[i].is_float)
                    *(float *)p = (float)luaL_checknumber(L, -1);
                else if (lua_isinteger(L, -1))
                    *(int *)p = (int)lua_tointeger(L, -1);
                else if (lua_isnil(L, -1))
                    *(int *)p = 0; /* q_lora_rank = nil, n_routed_experts = nil */
                else
                    return luaL_error(L, "r1.init: config key '%s' expects an integer, got %s",
                                      k, luaL_typename(L, -1));
            }
            lua_pop(L, 1);
        }
    }
    lua_model *u = push_model(L);
    if (r1_model_new(&u->m, &c, &err) != R1_OK)
        return luaL_error(L, "%s", err.msg);
    r1_model_init(u->m, seed);
    if (c.vocab_size == R1_TOK_VOCAB) /* the built-in tokenizer fits this vocabulary */
        u->tok = r1_tokenizer_new_builtin();
    lua_r1_gc_hint(L, model_bytes(u->m));
    return 1;
}

/* m:save(dir, {dtype = "f32" | "bf16" | "fp8"}); fp8 is DeepSeek-V3's FP8 layout */
static int m_save(lua_State *L)
{
    lua_model *u = lua_model_check(L, 1);
    const char *dir = luaL_checkstring(L, 2);
    const char *dt = lua_r1_opt_str(L, 3, "dtype", "f32");
    r1_dtype dtype = !strcmp(dt, "bf16")  ? R1_DT_BF16
                     : !strcmp(dt, "fp8") ? R1_DT_F8_E4M3
                                          : R1_DT_F32;
    if (strcmp(dt, "bf16") && strcmp(dt, "f32") && strcmp(dt, "fp8"))
        return luaL_error(L, "m:save: dtype expects \"f32\", \"bf16\" or \"fp8\", got \"%s\"",
                          dt);
    r1_error err = {0};
    if (r1_model_save(u->m, dir, dtype, &err) != R1_OK)
        return luaL_error(L, "%s", err.msg);
    /* tokenizer.json, and beside it tokenizer_config.json and generation_config.json */
    if (u->tok && r1_tokenizer_save(u->tok, dir, &err) != R1_OK)
        return luaL_error(L, "%s", err.msg);
    lua_settop(L, 1);
    return 1;
}

/* m:save_gguf(path, {dtype = "f32" | "bf16" | "f16", mtp = true | false}): the model and its
 * tokenizer as a GGUF file for llama.cpp (r1_gguf.h), the MTP layers unless mtp is false;
 * returns the model */
static int m_save_gguf(lua_State *L)
{
    lua_model *u = lua_model_check(L, 1);
    const char *path = luaL_checkstring(L, 2);
    const char *dt = lua_r1_opt_str(L, 3, "dtype", "f32");
    r1_gguf_opts o = r1_gguf_defaults();
    o.mtp = lua_r1_opt_bool(L, 3, "mtp", 1);
    o.dtype = !strcmp(dt, "bf16") ? R1_DT_BF16 : !strcmp(dt, "f16") ? R1_DT_F16 : R1_DT_F32;
    if (strcmp(dt, "bf16") && strcmp(dt, "f16") && strcmp(dt, "f32"))
        return luaL_error(L, "m:save_gguf: dtype expects \"f32\", \"bf16\" or \"f16\", got "
                          "\"%s\"", dt);
    if (!u->tok)
        return luaL_error(L, "m:save_gguf: the model has no tokenizer (a GGUF carries the "
                          "vocabulary): load it from a folder with tokenizer.json");
    const char *slash = strrchr(u->dir, '/');
    o.name = u->dir[0] ? (slash && slash[1] ? slash + 1 : u->dir) : "r1lab";
    r1_error err = {0};
    if (r1_gguf_save(u->m, u->tok, path, &o, &err) != R1_OK)
        return luaL_error(L, "%s", err.msg);
    lua_settop(L, 1);
    return 1;
}

/* m:config() -> table of the deepseek_v3 keys */
static int m_config(lua_State *L)
{
    lua_model *u = lua_model_check(L, 1);
    const r1_config *c = r1_model_config(u->m);
    lua_createtable(L, 0, NFIELDS);
    for (size_t i = 0; i < NFIELDS; i++) {
        const char *p = (const char *)c + cfg_fields[i].off;
        if (cfg_fields[i].is_float)
            lua_pushnumber(L, *(const float *)p);
        else if (!strcmp(cfg_fields[i].name, "norm_topk_prob") ||
                 !strcmp(cfg_fields[i].name, "tie_word_embeddings"))
            lua_pushboolean(L, *(const int *)p);
        else
            lua_pushinteger(L, *(const int *)p);
        lua_setfield(L, -2, cfg_fields[i].name);
    }
    return 1;
}

/* Which group a parameter name belongs to, for m:params(). */
static const char *group_of(const char *name, int L)
{
    int l = -1;
    if (sscanf(name, "model.layers.%d.", &l) == 1 && l >= L)
        return "mtp";
    if (strstr(name, "embed_tokens"))
        return "embedding";
    if (!strcmp(name, "lm_head.weight"))
        return "head";
    if (strstr(name, "self_attn"))
        return "attention";
    if (strstr(name, "mlp.experts."))
        return "routed_experts";
    if (strstr(name, "shared_experts"))
        return "shared_experts";
    if (strstr(name, "mlp.gate.weight"))
        return "router";
    if (strstr(name, "mlp."))
        return "dense_mlp";
    return "norms";
}

/* m:params() -> {total=, embedding=, attention=, dense_mlp=, router=, routed_experts=,
 *               shared_experts=, norms=, head=, mtp=, active_per_token=} */
static int m_params(lua_State *L)
{
    lua_model *u = lua_model_check(L, 1);
    const r1_config *c = r1_model_config(u->m);
    lua_newtable(L);
    const char *groups[] = {"embedding", "attention", "dense_mlp", "router", "routed_experts",
                            "shared_experts", "norms", "head", "mtp"};
    for (size_t g = 0; g < sizeof groups / sizeof *groups; g++) {
        lua_pushinteger(L, 0);
        lua_setfield(L, -2, groups[g]);
    }
    double total = 0, routed = 0;
    for (int i = 0; i < r1_model_nparams(u->m); i++) {
        const r1_param *p = r1_model_param(u->m, i);
        const char *g = group_of(p->name, c->num_hidden_layers);
        lua_getfield(L, -1, g);
        lua_Integer v = lua_tointeger(L, -1) + (lua_Integer)p->numel;
        lua_pop(L, 1);
        lua_pushinteger(L, v);
        lua_setfield(L, -2, g);
        total += p->numel;
        if (!strcmp(g, "routed_experts"))
            routed += p->numel;
    }
    lua_pushinteger(L, (lua_Integer)total);
    lua_setfield(L, -2, "total");
    /* a token uses K of the E routed experts */
    double active = total - (c->n_routed_experts
                                 ? routed * (1.0 - (double)c->num_experts_per_tok /
                                                       c->n_routed_experts)
                                 : 0);
    lua_pushinteger(L, (lua_Integer)active);
    lua_setfield(L, -2, "active_per_token");
    return 1;
}

/* Reads ids or a table of equal-length id rows at idx into tokens[B*T], a userdata buffer
 * left on the stack. */
static int32_t *read_rows(lua_State *L, int idx, int *B, int *T)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_rawgeti(L, idx, 1);
    int nested = lua_istable(L, -1);
    lua_pop(L, 1);
    if (!nested) {
        *B = 1;
        return lua_r1_ids(L, idx, idx, T);
    }
    int rows = (int)lua_rawlen(L, idx), cols = -1;
    for (int r = 0; r < rows; r++) {
        lua_rawgeti(L, idx, r + 1);
        luaL_argcheck(L, lua_istable(L, -1), idx, "expected a list of token lists");
        int n = (int)lua_rawlen(L, -1);
        lua_pop(L, 1);
        if (cols >= 0 && n != cols)
            luaL_error(L, "bad argument #%d (row %d has %d tokens, row 1 has %d)", idx, r + 1, n,
                       cols);
        cols = n;
    }
    int32_t *all = lua_newuserdatauv(L, sizeof(int32_t) * (size_t)(rows * cols + 1), 0);
    for (int r = 0; r < rows; r++) {
        lua_rawgeti(L, idx, r + 1);
        int n;
        int32_t *row = lua_r1_ids(L, lua_gettop(L), idx, &n);
        memcpy(all + (size_t)r * cols, row, sizeof(int32_t) * n);
        lua_pop(L, 2);
    }
    *B = rows;
    *T = cols;
    return all;
}

/* m:forward(ids | {ids, ids...}, {mtp_lambda=}) -> {logits=, mtp_logits=, loss=, main=, mtp=,
 * routing = {[layer] = {experts=, weights=}}} (layer numbers as in the HF names) */
static int m_forward(lua_State *L)
{
    lua_model *u = lua_model_idle(L, 1, "m:forward");
    r1_fwd_opts fo = r1_fwd_defaults();
    fo.mtp_lambda = (float)lua_r1_opt_num(L, 3, "mtp_lambda", fo.mtp_lambda);
    int B, T;
    int32_t *tok = read_rows(L, 2, &B, &T);
    r1_error err = {0};
    r1_loss loss;
    r1_status s = r1_model_forward(u->m, tok, B, T, &fo, &loss, &err);
    if (s != R1_OK)
        return luaL_error(L, "%s", err.msg);
    const r1_config *c = r1_model_config(u->m);
    int V = c->vocab_size, K = c->num_experts_per_tok;
    lua_newtable(L);
    int64_t sh[3] = {B, T, V};
    lua_tensor *t = lua_tensor_push(L, 3, sh, 0);
    memcpy(t->data, r1_model_logits(u->m), sizeof(float) * t->n);
    lua_setfield(L, -2, "logits");
    if (r1_model_mtp_logits(u->m, 1)) {
        int64_t ms[3] = {B, T - 1, V};
        t = lua_tensor_push(L, 3, ms, 0);
        memcpy(t->data, r1_model_mtp_logits(u->m, 1), sizeof(float) * t->n);
        lua_setfield(L, -2, "mtp_logits");
    }
    lua_pushnumber(L, loss.loss);
    lua_setfield(L, -2, "loss");
    lua_pushnumber(L, loss.main);
    lua_setfield(L, -2, "main");
    lua_pushnumber(L, loss.mtp);
    lua_setfield(L, -2, "mtp");
    lua_newtable(L);
    for (int l = 0; l < r1_model_nlayers_total(u->m); l++) {
        int len = r1_model_routing(u->m, l, NULL, NULL);
        if (len < 0)
            continue;
        lua_createtable(L, 0, 2);
        int64_t rs[3] = {B, len, K};
        lua_tensor *e = lua_tensor_push(L, 3, rs, 1);
        lua_setfield(L, -2, "experts");
        lua_tensor *w = lua_tensor_push(L, 3, rs, 0);
        lua_setfield(L, -2, "weights");
        r1_model_routing(u->m, l, e->data, w->data);
        lua_rawseti(L, -2, l);
    }
    lua_setfield(L, -2, "routing");
    return 1;
}

/* m:tokenizer() -> a tokenizer userdata (a copy of the model's) or nil */
static int m_tokenizer(lua_State *L)
{
    lua_model *u = lua_model_check(L, 1);
    if (!u->tok) {
        lua_pushnil(L);
        return 1;
    }
    lua_tokenizer *t = lua_tokenizer_push(L);
    char path[1100];
    snprintf(path, sizeof path, "%s/tokenizer.json", u->dir);
    r1_error err = {0};
    if (u->dir[0] && r1_tokenizer_load(&t->t, path, &err) == R1_OK)
        return 1;
    t->t = r1_tokenizer_new_builtin();
    return 1;
}

static int m_close(lua_State *L)
{
    lua_model *u = luaL_checkudata(L, 1, LUA_R1_MODEL);
    if (u->m && u->busy) /* (the collector never gets here while the work holds the model) */
        lua_model_idle(L, 1, "m:close");
    r1_model_free(u->m);
    r1_tokenizer_free(u->tok);
    u->m = NULL;
    u->tok = NULL;
    return 0;
}

static int m_tostring(lua_State *L)
{
    lua_model *u = luaL_checkudata(L, 1, LUA_R1_MODEL);
    if (!u->m) {
        lua_pushliteral(L, "r1.model (closed)");
        return 1;
    }
    const r1_config *c = r1_model_config(u->m);
    lua_pushfstring(L, "r1.model (%d layers, hidden %d, %d routed experts top-%d, %I params%s%s)",
                    c->num_hidden_layers, c->hidden_size, c->n_routed_experts,
                    c->num_experts_per_tok, (lua_Integer)r1_model_numel(u->m),
                    u->dir[0] ? ", " : "", u->dir);
    return 1;
}

/* m:fp8([mode]) -> the mode before: "off" | "tiles" | "tensor".  With a mode, the forward and
 * backward passes that follow emulate FP8 GEMMs in every linear layer (r1_model_set_fp8). */
static int m_fp8(lua_State *L)
{
    lua_model *u = lua_model_idle(L, 1, "m:fp8");
    static const char *const modes[] = {"off", "tiles", "tensor", NULL};
    lua_pushstring(L, r1_fp8_mode_name(r1_model_fp8(u->m)));
    if (!lua_isnoneornil(L, 2))
        r1_model_set_fp8(u->m, (r1_fp8_mode)luaL_checkoption(L, 2, NULL, modes));
    return 1;
}

/* m:precision([p]) -> the precision before: "fp32" | "bf16" | "fp8" | "fp8-tensor".  With p,
 * the forward and backward passes that follow run their linear layers' GEMMs in it
 * (r1_model_set_precision); training stages set their own `precision` for their steps. */
static int m_precision(lua_State *L)
{
    lua_model *u = lua_model_idle(L, 1, "m:precision");
    static const char *const names[] = {"fp32", "bf16", "fp8", "fp8-tensor", NULL};
    lua_pushstring(L, r1_precision_name(r1_model_precision(u->m)));
    if (!lua_isnoneornil(L, 2))
        r1_model_set_precision(u->m, (r1_precision)luaL_checkoption(L, 2, NULL, names));
    return 1;
}

/* m:path() -> the folder the model was loaded from, nil for a model made by r1.init */
static int m_path(lua_State *L)
{
    lua_model *u = lua_model_check(L, 1);
    if (u->dir[0])
        lua_pushstring(L, u->dir);
    else
        lua_pushnil(L);
    return 1;
}

/* generate and ask are added by lua_generate.c */
static const luaL_Reg model_methods[] = {
    {"save", m_save},       {"save_gguf", m_save_gguf}, {"config", m_config},
    {"params", m_params},   {"forward", m_forward},     {"close", m_close},
    {"tokenizer", m_tokenizer}, {"fp8", m_fp8},         {"precision", m_precision},
    {"path", m_path},       {NULL, NULL}};
static const luaL_Reg model_meta[] = {
    {"__gc", m_close}, {"__close", m_close}, {"__tostring", m_tostring}, {NULL, NULL}};
static const luaL_Reg model_funcs[] = {{"load", l_load}, {"init", l_init}, {NULL, NULL}};

void lua_model_open(lua_State *L)
{
    luaL_newmetatable(L, LUA_R1_MODEL);
    luaL_setfuncs(L, model_meta, 0);
    luaL_newlib(L, model_methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    luaL_setfuncs(L, model_funcs, 0); /* into the module table on top */
}
