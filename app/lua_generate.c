/* lua_generate.c — generation from Lua: m:generate and m:ask, added to the r1.model methods
 * by lua_generate_open.  Tokens stream to an on_token callback (called protected) and, in the
 * workbench, to the Reasoning, Answer and Routing panes; the results carry text, reasoning,
 * answer, tokens, log-probs and routing.  Engine errors become Lua errors after the C
 * resources of the call are released (every buffer is a userdata on the stack). */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "lua_r1.h"
#include "r1_generate.h"
#include "r1_inspect.h"
#include "r1_rewards.h"

typedef struct {
    lua_State *L;
    int fn;        /* stack index of on_token, 0 when none */
    int failed;    /* the callback raised: its error is on the registry ref */
    int ref;
    const r1_tokenizer *tok; /* for token texts (may be NULL) */
    const lua_r1_observer *obs; /* who watches the tokens, or NULL */
    int part[64];  /* per row (first 64): 1 think, 2 answer, 3 other */
} gen_cb;

/* Follows the think / answer tags: which part of the completion a token belongs to. */
static int next_part(int part, int32_t token)
{
    switch (token) {
    case R1_TOK_THINK: return 1;
    case R1_TOK_THINK_END: return 3;
    case R1_TOK_ANSWER: return 2;
    case R1_TOK_ANSWER_END: return 3;
    }
    return part;
}

static void post_token(gen_cb *g, const r1_token_event *te)
{
    int *part = te->row < 64 ? &g->part[te->row] : NULL;
    int p = part ? *part : 3;
    int np = next_part(p, te->token);
    if (part)
        *part = np;
    if (!g->obs)
        return;
    /* a tag token belongs to the part it opens or closes */
    int shown = te->token == R1_TOK_THINK_END ? 1 : te->token == R1_TOK_ANSWER_END ? 2 : np;
    g->obs->token(te, g->tok ? r1_tokenizer_token(g->tok, te->token) : NULL, shown, g->tok);
}

static void push_routing(lua_State *L, int n_moe, const int *layers, int K, const int32_t *e,
                         const float *w)
{
    lua_createtable(L, n_moe, 0);
    for (int j = 0; j < n_moe; j++) {
        lua_createtable(L, 0, 3);
        lua_pushinteger(L, layers[j]);
        lua_setfield(L, -2, "layer");
        lua_createtable(L, K, 0);
        lua_createtable(L, K, 0);
        for (int k = 0; k < K; k++) {
            lua_pushinteger(L, e[j * K + k]);
            lua_rawseti(L, -3, k + 1);
            lua_pushnumber(L, w[j * K + k]);
            lua_rawseti(L, -2, k + 1);
        }
        lua_setfield(L, -3, "weights");
        lua_setfield(L, -2, "experts");
        lua_rawseti(L, -2, j + 1);
    }
}

void lua_r1_push_candidate(lua_State *L, const r1_tokenizer *tok, int32_t id, double p)
{
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, id);
    lua_setfield(L, -2, "token");
    if (tok) {
        lua_pushstring(L, r1_tokenizer_token(tok, id));
        lua_setfield(L, -2, "text");
    }
    lua_pushnumber(L, p);
    lua_setfield(L, -2, "p");
}

/* The microscope's fields of one token (top, entropy, mtp) into the table on top. */
static void push_inspect(lua_State *L, const r1_tokenizer *tok, int n, const int32_t *ids,
                         const float *p, float entropy, int32_t mtp, float mtp_p)
{
    if (n > 0) {
        lua_createtable(L, n, 0);
        for (int j = 0; j < n && ids[j] >= 0; j++) {
            lua_r1_push_candidate(L, tok, ids[j], p[j]);
            lua_rawseti(L, -2, j + 1);
        }
        lua_setfield(L, -2, "top");
        lua_pushnumber(L, entropy);
        lua_setfield(L, -2, "entropy");
    }
    if (mtp >= 0) {
        lua_r1_push_candidate(L, tok, mtp, mtp_p);
        lua_setfield(L, -2, "mtp");
    }
}

typedef struct {
    gen_cb *g;
    const r1_token_event *te;
} token_arg;

/* on_token's argument: the token as a table (built inside the protected call). */
static int push_token(lua_State *L, void *ud)
{
    const token_arg *a = ud;
    const r1_token_event *te = a->te;
    lua_createtable(L, 0, 8);
    lua_pushinteger(L, te->row + 1);
    lua_setfield(L, -2, "row");
    lua_pushinteger(L, te->index + 1);
    lua_setfield(L, -2, "index");
    lua_pushinteger(L, te->pos);
    lua_setfield(L, -2, "pos");
    lua_pushinteger(L, te->token);
    lua_setfield(L, -2, "token");
    if (a->g->tok) {
        lua_pushstring(L, r1_tokenizer_token(a->g->tok, te->token));
        lua_setfield(L, -2, "text");
    }
    lua_pushnumber(L, te->logprob_model);
    lua_setfield(L, -2, "logprob");
    lua_pushnumber(L, te->logprob);
    lua_setfield(L, -2, "logprob_sampling");
    lua_pushboolean(L, te->drafted);
    lua_setfield(L, -2, "drafted");
    push_routing(L, te->n_moe, te->moe_layers, te->K, te->experts, te->weights);
    lua_setfield(L, -2, "routing");
    push_inspect(L, a->g->tok, te->n_top, te->top_ids, te->top_p, te->entropy, te->mtp_token,
                 te->mtp_p);
    return 1;
}

/* Calls the Lua on_token protected: an error must not unwind through r1_generate. */
static int on_token(void *user, const r1_token_event *te)
{
    gen_cb *g = user;
    post_token(g, te);
    if (!g->fn)
        return 0;
    token_arg a = {g, te};
    int stop = lua_r1_callback(g->L, g->fn, push_token, &a, &g->ref);
    g->failed = stop < 0;
    return stop != 0;
}

/* Pushes the prompt at idx as token ids (a userdata buffer on the stack): a list of ids, or a
 * string encoded with the model's tokenizer (chat: as the chat format's generation prompt). */
static int32_t *prompt_ids(lua_State *L, lua_model *u, int idx, int arg, int chat, int *n)
{
    if (lua_type(L, idx) == LUA_TSTRING) {
        if (!u->tok)
            luaL_error(L, "bad argument #%d (this model has no tokenizer: give token ids)", arg);
        size_t len;
        const char *text = lua_tolstring(L, idx, &len);
        if (strlen(text) != len) /* the tokenizer reads C strings: the rest would be lost */
            luaL_error(L, "bad argument #%d (the text holds a NUL byte at position %d)", arg,
                       (int)strlen(text) + 1);
        return lua_r1_encode(L, u->tok, text, chat, n);
    }
    return lua_r1_ids(L, idx, arg, n);
}

static int push_results(lua_State *L, lua_model *u, const r1_gen_result *res, int R, int batch,
                        const gen_cb *cbp, const r1_task *task, const char *target,
                        const int32_t *prompt0, int np0);

/* The workbench's context: the model (at stack index 1), row 0's prompt and tokens, and the
 * task problem, kept in the registry for ui.context() (the microscope's keys read it). */
static void set_context(lua_State *L, const int32_t *prompt, int np, const r1_gen_row *row,
                        const r1_task *task, const char *target)
{
    lua_createtable(L, 0, 5);
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, "model");
    lua_createtable(L, np, 0);
    for (int i = 0; i < np; i++) {
        lua_pushinteger(L, prompt[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "prompt_ids");
    lua_createtable(L, row->n, 0);
    for (int i = 0; i < row->n; i++) {
        lua_pushinteger(L, row->tokens[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "tokens");
    if (task && target) {
        lua_pushstring(L, r1_task_name(task));
        lua_setfield(L, -2, "task");
        lua_pushstring(L, target);
        lua_setfield(L, -2, "target");
    }
    lua_setfield(L, LUA_REGISTRYINDEX, "r1lab.context");
}

/* The generation behind m:generate and m:ask.  Arguments: 1 model, 2 prompt(s), 3 options.
 * chat: strings are chat prompts; task/target (may be NULL): judge row 1 for the workbench.
 * Leaves the result (a table, or a list of tables for a batch) on the stack. */
static int generate(lua_State *L, const char *what, int chat, const r1_task *task,
                    const char *target)
{
    lua_model *u = lua_model_idle(L, 1, what);
    if (lua_type(L, 2) != LUA_TSTRING)
        luaL_checktype(L, 2, LUA_TTABLE);
    if (!lua_isnoneornil(L, 3))
        luaL_checktype(L, 3, LUA_TTABLE);
    r1_gen_cfg cfg = r1_gen_defaults();
    /* text questions get room to reason; id prompts the engine's default */
    int text_prompt = lua_type(L, 2) == LUA_TSTRING;
    cfg.max_tokens = lua_r1_opt_int_in(L, 3, "max_tokens", text_prompt ? 256 : cfg.max_tokens, 1,
                                       1 << 20);
    cfg.temperature = (float)lua_r1_opt_num(L, 3, "temperature", cfg.temperature);
    cfg.top_k = lua_r1_opt_int_in(L, 3, "top_k", cfg.top_k, 0, 1 << 20);
    cfg.top_p = (float)lua_r1_opt_num(L, 3, "top_p", cfg.top_p);
    cfg.min_p = (float)lua_r1_opt_num(L, 3, "min_p", cfg.min_p);
    cfg.repetition_penalty =
        (float)lua_r1_opt_num(L, 3, "repetition_penalty", cfg.repetition_penalty);
    cfg.seed = (uint64_t)lua_r1_opt_int(L, 3, "seed", 0);
    cfg.speculative = lua_r1_opt_bool(L, 3, "speculative", 0);
    /* the microscope's records: on by default (they cost the decoding loop little) */
    cfg.top_n = lua_r1_opt_int_in(L, 3, "top_n", 5, 0, R1_TOP_MAX);
    cfg.mtp_predict = lua_r1_opt_bool(L, 3, "mtp",
                                      r1_model_config(u->m)->num_nextn_predict_layers > 0);
    const char *wt = lua_r1_opt_str(L, 3, "weights", "fp32");
    if (strcmp(wt, "fp32") && strcmp(wt, "bf16") && strcmp(wt, "fp8"))
        return luaL_error(L,
                          "bad option 'weights' (\"fp32\", \"bf16\" or \"fp8\" expected, got "
                          "\"%s\")",
                          wt);
    cfg.bf16 = !strcmp(wt, "bf16");
    cfg.fp8 = !strcmp(wt, "fp8");
    chat = lua_r1_opt_bool(L, 3, "chat", chat);
    gen_cb cb;
    memset(&cb, 0, sizeof cb);
    cb.L = L, cb.ref = LUA_NOREF, cb.tok = u->tok, cb.obs = lua_r1_observer_watches_generation();
    int32_t eos = R1_TOK_EOS, *stop = &eos;
    int nstop = u->tok ? 1 : 0;
    if (lua_istable(L, 3)) {
        lua_getfield(L, 3, "stop");
        if (!lua_isnil(L, -1))
            stop = lua_r1_ids(L, lua_gettop(L), 3, &nstop); /* the buffer stays on the stack */
        if (lua_r1_opt_fn(L, 3, "on_token"))
            cb.fn = lua_gettop(L);
    }
    cfg.stop_ids = stop;
    cfg.n_stop_ids = nstop;
    /* prompts: one prompt (ids or text), or a list of them */
    int batch = 0;
    if (lua_istable(L, 2)) {
        lua_rawgeti(L, 2, 1);
        batch = lua_istable(L, -1) || lua_type(L, -1) == LUA_TSTRING;
        lua_pop(L, 1);
    }
    int R = batch ? (int)lua_rawlen(L, 2) : 1;
    luaL_argcheck(L, R >= 1, 2, "no prompts");
    /* every buffer is a userdata on the stack: an error below leaks nothing; one slot per
     * prompt (Lua guarantees only LUA_MINSTACK free slots: past them a push writes outside
     * the stack) */
    luaL_checkstack(L, R + LUA_MINSTACK, "too many prompts");
    int32_t **ps = lua_newuserdatauv(L, sizeof(int32_t *) * R, 0);
    int *lens = lua_newuserdatauv(L, sizeof(int) * R, 0);
    for (int r = 0; r < R; r++) {
        if (batch) {
            lua_rawgeti(L, 2, r + 1);
            ps[r] = prompt_ids(L, u, lua_gettop(L), 2, chat, &lens[r]);
            lua_remove(L, -2); /* keep the buffer, drop the source value */
        } else {
            ps[r] = prompt_ids(L, u, 2, 2, chat, &lens[r]);
        }
        if (r < 64)
            cb.part[r] = lens[r] && ps[r][lens[r] - 1] == R1_TOK_THINK ? 1 : 3;
    }
    if (cb.obs) {
        char *text = NULL;
        if (u->tok) {
            r1_tokenizer_decode(u->tok, ps[0], lens[0], &text, NULL);
        } else { /* no tokenizer: the ids themselves */
            size_t cap = (size_t)lens[0] * 12 + 1, k = 0;
            text = malloc(cap);
            for (int t = 0; text && t < lens[0]; t++)
                k += (size_t)snprintf(text + k, cap - k, t ? " %d" : "%d", (int)ps[0][t]);
            if (text && lens[0] == 0)
                text[0] = '\0';
        }
        cb.obs->gen_begin(text, R);
        free(text);
    }
    int keep = lua_gettop(L);
    r1_error err = {0};
    r1_gen_result *res = NULL;
    r1_observer obs = {.token = on_token, .user = &cb};
    lua_model_hold(u, what);
    r1_status s = r1_generate(u->m, (const int32_t *const *)ps, lens, R, &cfg, &obs, &res, &err);
    lua_model_drop(u);
    lua_settop(L, keep);
    /* own the result in a userdata box: building the Lua tables below may raise */
    r1_gen_result **box = lua_newuserdatauv(L, sizeof *box, 0);
    *box = res;
    luaL_setmetatable(L, "r1.genresult");
    if (cb.failed) { /* re-raise the callback's error; the box frees the result */
        return lua_r1_raise_ref(L, cb.ref);
    }
    if (s != R1_OK && s != R1_ECANCELED)
        return luaL_error(L, "%s", err.msg);
    if (s == R1_ECANCELED && r1_interrupted())
        return luaL_error(L, "interrupted");
    return push_results(L, u, res, R, batch, &cb, task, target, ps[0], lens[0]);
}

/* Builds m:generate's result table (a list of them when batch) from res, telling the
 * observer the end of row 0 (judged by task and target, when given) and keeping row 0 as the
 * workbench's context (ui.context).  prompt0[np0] is row 0's prompt. */
static int push_results(lua_State *L, lua_model *u, const r1_gen_result *res, int R, int batch,
                        const gen_cb *cbp, const r1_task *task, const char *target,
                        const int32_t *prompt0, int np0)
{
    const gen_cb cb = *cbp;
    r1_error err = {0};
    static const char *finish[] = {"stop", "length", "cancel"};
    if (batch)
        lua_createtable(L, R, 0);
    for (int r = 0; r < R; r++) {
        r1_gen_row *o = &res->row[r];
        lua_createtable(L, 0, 10);
        lua_createtable(L, o->n, 0);
        lua_createtable(L, o->n, 0);
        lua_createtable(L, o->n, 0);
        lua_createtable(L, o->n, 0);
        for (int i = 0; i < o->n; i++) {
            lua_pushinteger(L, o->tokens[i]);
            lua_rawseti(L, -5, i + 1);
            lua_pushnumber(L, o->logprobs_model[i]);
            lua_rawseti(L, -4, i + 1);
            lua_pushnumber(L, o->logprobs[i]);
            lua_rawseti(L, -3, i + 1);
            push_routing(L, res->n_moe, res->moe_layers, res->K,
                         o->experts + (size_t)i * res->n_moe * res->K,
                         o->weights + (size_t)i * res->n_moe * res->K);
            lua_rawseti(L, -2, i + 1);
        }
        lua_setfield(L, -5, "routing");
        lua_setfield(L, -4, "logprobs_sampling");
        lua_setfield(L, -3, "logprobs");
        lua_setfield(L, -2, "tokens");
        /* res.top[i], res.entropy[i], res.mtp[i] beside the per-token lists */
        int tn = res->top_n;
        if (tn || o->mtp_ids) {
            lua_createtable(L, tn ? o->n : 0, 0);
            lua_createtable(L, tn ? o->n : 0, 0);
            lua_createtable(L, o->mtp_ids ? o->n : 0, 0);
            for (int i = 0; i < o->n; i++) {
                if (tn) {
                    lua_createtable(L, tn, 0);
                    for (int j = 0; j < tn && o->top_ids[i * tn + j] >= 0; j++) {
                        lua_r1_push_candidate(L, u->tok, o->top_ids[i * tn + j], o->top_p[i * tn + j]);
                        lua_rawseti(L, -2, j + 1);
                    }
                    lua_rawseti(L, -4, i + 1);
                    lua_pushnumber(L, o->entropy[i]);
                    lua_rawseti(L, -3, i + 1);
                }
                if (o->mtp_ids && o->mtp_ids[i] >= 0) {
                    lua_r1_push_candidate(L, u->tok, o->mtp_ids[i], o->mtp_p[i]);
                    lua_rawseti(L, -2, i + 1);
                }
            }
            lua_setfield(L, -4, "mtp");
            lua_setfield(L, -3, "entropy");
            lua_setfield(L, -2, "top");
        }
        lua_pushstring(L, finish[o->finish]);
        lua_setfield(L, -2, "finish");
        if (u->tok) {
            char *text = NULL;
            if (r1_tokenizer_decode(u->tok, o->tokens, o->n, &text, &err) != R1_OK)
                return luaL_error(L, "%s", err.msg);
            lua_pushstring(L, text);
            free(text);
            lua_setfield(L, -2, "text");
            lua_getfield(L, -1, "text");
            r1_completion_parts parts;
            r1_reward_split(lua_tostring(L, -1), &parts);
            lua_pushlstring(L, parts.think, parts.think_len);
            lua_setfield(L, -3, "think");
            if (parts.answer) {
                lua_pushlstring(L, parts.answer, parts.answer_len);
                lua_setfield(L, -3, "answer");
            }
            if (r == 0 && cb.obs)
                cb.obs->gen_end(lua_tostring(L, -1),
                                task && target
                                    ? r1_task_verify(task, target, lua_tostring(L, -1), NULL)
                                    : -1);
            lua_pop(L, 1);
        } else if (r == 0 && cb.obs) {
            cb.obs->gen_end(NULL, -1);
        }
        if (batch)
            lua_rawseti(L, -2, r + 1);
    }
    set_context(L, prompt0, np0, &res->row[0], task, target);
    lua_pushinteger(L, res->accepted);
    lua_setfield(L, -2, "accepted");
    lua_pushinteger(L, res->drafted);
    lua_setfield(L, -2, "drafted");
    lua_pushnumber(L, res->seconds);
    lua_setfield(L, -2, "seconds");
    lua_pushinteger(L, (lua_Integer)res->weight_bytes); /* bf16 / fp8 weights; 0 for fp32 */
    lua_setfield(L, -2, "weight_bytes");
    lua_pushinteger(L, (lua_Integer)res->weight_bytes_fp32);
    lua_setfield(L, -2, "weight_bytes_fp32");
    return 1;
}

/* m:generate(prompt | {prompts}, {max_tokens, temperature, top_k, top_p, min_p,
 *            repetition_penalty, seed, speculative, chat, stop = {ids}, on_token = fn,
 *            top_n = 5, mtp = true})
 * -> {text, think, answer, tokens, logprobs, logprobs_sampling, routing, top, entropy, mtp,
 * finish} (a list of them for a batch).  A text prompt is wrapped in the chat format unless
 * chat = false. */
static int m_generate(lua_State *L)
{
    return generate(L, "m:generate", 1, NULL, NULL);
}

/* m:ask(question [, {task=, target=, max_tokens=, ...}]) -> answer, result: the chat format,
 * greedy by default; with task and target the workbench marks the answer right or wrong. */
static int m_ask(lua_State *L)
{
    lua_model *u = lua_model_idle(L, 1, "m:ask");
    luaL_checkstring(L, 2);
    if (!u->tok)
        return luaL_error(L, "m:ask: this model has no tokenizer (tokenizer.json)");
    const r1_task *task = NULL;
    const char *tname = lua_r1_opt_str(L, 3, "task", NULL);
    const char *target = lua_r1_opt_str(L, 3, "target", NULL);
    r1_error err = {0};
    if (tname && r1_task_find(&task, tname, &err) != R1_OK)
        return luaL_error(L, "%s", err.msg);
    lua_settop(L, 3);
    generate(L, "m:ask", 1, task, target);
    lua_getfield(L, -1, "answer");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_getfield(L, -1, "text");
    }
    lua_insert(L, -2);
    return 2;
}

/* A one-row r1_gen_result for tokens[n] read after prompt[np] by one forward of m (the kept
 * activations of m are replaced); NULL when out of memory. */
static r1_gen_result *replay(r1_model *m, const int32_t *prompt, int np, const int32_t *tokens,
                             int n, int top_n, r1_error *err, r1_status *st)
{
    const r1_config *c = r1_model_config(m);
    int V = c->vocab_size, K = c->num_experts_per_tok, T = np + n;
    *st = R1_ENOMEM;
    r1_gen_result *res = calloc(1, sizeof *res);
    int32_t *seq = malloc(sizeof(int32_t) * (size_t)T);
    if (!res || !seq || !(res->row = calloc(1, sizeof(r1_gen_row))) ||
        !(res->moe_layers = calloc((size_t)c->num_hidden_layers + 1, sizeof(int)))) {
        free(seq);
        r1_gen_result_free(res);
        r1_error_set(err, R1_ENOMEM, "out of memory");
        return NULL;
    }
    memcpy(seq, prompt, sizeof(int32_t) * np);
    memcpy(seq + np, tokens, sizeof(int32_t) * n);
    res->rows = 1, res->K = K, res->top_n = top_n;
    *st = r1_inspect_forward(m, seq, 1, T, NULL, err);
    free(seq);
    if (*st != R1_OK) {
        r1_gen_result_free(res);
        return NULL;
    }
    for (int l = 0; l < c->num_hidden_layers; l++)
        if (r1_model_routing(m, l, NULL, NULL) >= 0)
            res->moe_layers[res->n_moe++] = l;
    r1_gen_row *o = &res->row[0];
    size_t rk = (size_t)(res->n_moe ? res->n_moe : 1) * K, nn = n ? (size_t)n : 1;
    o->n = n;
    o->finish = n && tokens[n - 1] == R1_TOK_EOS ? R1_FINISH_STOP : R1_FINISH_LENGTH;
    o->tokens = malloc(sizeof(int32_t) * nn);
    o->logprobs = malloc(sizeof(float) * nn);
    o->logprobs_model = malloc(sizeof(float) * nn);
    o->experts = calloc(nn * rk, sizeof(int32_t));
    o->weights = calloc(nn * rk, sizeof(float));
    o->top_ids = malloc(sizeof(int32_t) * nn * (top_n ? top_n : 1));
    o->top_p = malloc(sizeof(float) * nn * (top_n ? top_n : 1));
    o->entropy = malloc(sizeof(float) * nn);
    const float *ml = r1_model_mtp_logits(m, 1);
    if (ml) {
        o->mtp_ids = malloc(sizeof(int32_t) * nn);
        o->mtp_p = malloc(sizeof(float) * nn);
    }
    int32_t *re = malloc(sizeof(int32_t) * (size_t)T * K);
    float *rw = malloc(sizeof(float) * (size_t)T * K);
    if (!o->tokens || !o->logprobs || !o->logprobs_model || !o->experts || !o->weights ||
        !o->top_ids || !o->top_p || !o->entropy || (ml && (!o->mtp_ids || !o->mtp_p)) || !re ||
        !rw) {
        free(re), free(rw);
        r1_gen_result_free(res);
        *st = r1_error_set(err, R1_ENOMEM, "out of memory");
        return NULL;
    }
    const float *lo = r1_model_logits(m);
    for (int i = 0; i < n; i++) {
        const float *x = lo + (size_t)(np + i - 1) * V; /* the logits token i was read from */
        o->tokens[i] = tokens[i];
        o->logprobs[i] = o->logprobs_model[i] = r1_log_softmax_at(x, V, tokens[i]);
        r1_top_tokens(x, V, top_n, o->top_ids + (size_t)i * top_n, o->top_p + (size_t)i * top_n,
                      o->entropy + i);
        if (ml) /* MTP row np+i-1 reads (h, token i) and predicts token i + 1 */
            r1_top_tokens(ml + (size_t)(np + i - 1) * V, V, 1, o->mtp_ids + i, o->mtp_p + i,
                          NULL);
    }
    for (int j = 0; j < res->n_moe; j++) {
        r1_model_routing(m, res->moe_layers[j], re, rw);
        for (int i = 0; i < n; i++) {
            memcpy(o->experts + ((size_t)i * res->n_moe + j) * K, re + (size_t)(np + i) * K,
                   sizeof(int32_t) * K);
            memcpy(o->weights + ((size_t)i * res->n_moe + j) * K, rw + (size_t)(np + i) * K,
                   sizeof(float) * K);
        }
    }
    free(re), free(rw);
    *st = R1_OK;
    return res;
}

/* m:replay(prompt, tokens [, {task, target, chat = true}]) -> a result like m:generate's for
 * a completion given rather than generated: one forward pass over prompt + tokens reads every
 * token's log-probability, alternatives, entropy, MTP prediction and routing.  The workbench
 * shows it as a generation (the microscope's keys then work on it). */
static int m_replay(lua_State *L)
{
    lua_model *u = lua_model_idle(L, 1, "m:replay");
    if (!lua_isnoneornil(L, 4))
        luaL_checktype(L, 4, LUA_TTABLE);
    lua_settop(L, 4);
    int chat = lua_r1_opt_bool(L, 4, "chat", 1);
    const char *tname = lua_r1_opt_str(L, 4, "task", NULL);
    const char *target = lua_r1_opt_str(L, 4, "target", NULL);
    const r1_task *task = NULL;
    r1_error err = {0};
    if (tname && r1_task_find(&task, tname, &err) != R1_OK)
        return luaL_error(L, "m:replay: %s", err.msg);
    int np, n;
    int32_t *prompt = prompt_ids(L, u, 2, 2, chat, &np);
    int32_t *toks = lua_type(L, 3) == LUA_TSTRING && u->tok
                        ? lua_r1_encode(L, u->tok, lua_tostring(L, 3), 0, &n)
                        : lua_r1_ids(L, 3, 3, &n);
    if (np < 1)
        return luaL_error(L, "m:replay: the prompt is empty");
    const r1_config *c = r1_model_config(u->m);
    if (np + n > c->max_position_embeddings)
        return luaL_error(L, "m:replay: %d tokens exceed max_position_embeddings (%d)", np + n,
                          c->max_position_embeddings);
    gen_cb cb;
    memset(&cb, 0, sizeof cb);
    cb.L = L, cb.ref = LUA_NOREF, cb.tok = u->tok, cb.obs = lua_r1_observer_watches_generation();
    cb.part[0] = np && prompt[np - 1] == R1_TOK_THINK ? 1 : 3;
    r1_status s;
    lua_model_hold(u, "m:replay");
    r1_gen_result *res = replay(u->m, prompt, np, toks, n, 5, &err, &s);
    lua_model_drop(u);
    r1_gen_result **box = lua_newuserdatauv(L, sizeof *box, 0);
    *box = res;
    luaL_setmetatable(L, "r1.genresult");
    if (!res)
        return luaL_error(L, "m:replay: %s", err.msg);
    if (cb.obs) {
        char *text = NULL;
        if (u->tok)
            r1_tokenizer_decode(u->tok, prompt, np, &text, NULL);
        cb.obs->gen_begin(text, 1);
        free(text);
        const r1_gen_row *o = &res->row[0];
        for (int i = 0; i < n; i++) {
            size_t off = (size_t)i * res->n_moe * res->K;
            r1_token_event ev = {0, i, np + i, o->tokens[i], o->logprobs[i], o->logprobs[i], 0,
                                 res->n_moe, res->moe_layers, res->K, o->experts + off,
                                 o->weights + off, 5, o->top_ids + (size_t)i * 5,
                                 o->top_p + (size_t)i * 5, o->entropy[i],
                                 o->mtp_ids ? o->mtp_ids[i] : -1,
                                 o->mtp_ids ? o->mtp_p[i] : 0};
            post_token(&cb, &ev);
        }
    }
    return push_results(L, u, res, 1, 0, &cb, task, target, prompt, np);
}

static int genresult_gc(lua_State *L)
{
    r1_gen_result **box = lua_touserdata(L, 1);
    r1_gen_result_free(*box);
    *box = NULL;
    return 0;
}

void lua_generate_open(lua_State *L)
{
    luaL_newmetatable(L, "r1.genresult");
    lua_pushcfunction(L, genresult_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_getmetatable(L, LUA_R1_MODEL); /* made by lua_model_open */
    lua_getfield(L, -1, "__index");
    lua_pushcfunction(L, m_generate);
    lua_setfield(L, -2, "generate");
    lua_pushcfunction(L, m_ask);
    lua_setfield(L, -2, "ask");
    lua_pushcfunction(L, m_replay);
    lua_setfield(L, -2, "replay");
    lua_pop(L, 2);
}
