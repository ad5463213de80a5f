/* lua_inspect.c — the reasoning microscope from Lua (engine/r1_inspect.h): m:lens,
 * m:attention, r1.patch and r1.compare.  Token arguments are a list of ids or a string, which
 * is encoded as it stands (chat = true wraps it as a question, as m:ask does).  Positions and
 * indices are 1-based like every Lua list; layers are the model's own layer numbers (0-based,
 * as in the Hugging Face tensor names and the routing tables).  Buffers are userdata on the
 * stack, so an error leaks nothing. */
#include <config.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lua_r1.h"
#include "r1_inspect.h"

/* The tokens at idx as a userdata buffer left on the stack (see the top comment). */
static int32_t *tokens_arg(lua_State *L, lua_model *u, int idx, int chat, int *n)
{
    if (lua_type(L, idx) == LUA_TSTRING) {
        if (!u->tok)
            luaL_error(L, "bad argument #%d (this model has no tokenizer: give token ids)",
                       idx);
        return lua_r1_encode(L, u->tok, lua_tostring(L, idx), chat, n);
    }
    luaL_checktype(L, idx, LUA_TTABLE);
    return lua_r1_ids(L, idx, idx, n);
}

/* The k most likely tokens of p[V] as a list of {token, text, p} (ties: lower id first). */
static void push_top(lua_State *L, const r1_tokenizer *tok, const float *p, int V, int k)
{
    lua_createtable(L, k, 0);
    unsigned char *used = lua_newuserdatauv(L, (size_t)V, 0);
    memset(used, 0, (size_t)V);
    for (int j = 0; j < k && j < V; j++) {
        int best = -1;
        for (int v = 0; v < V; v++)
            if (!used[v] && (best < 0 || p[v] > p[best]))
                best = v;
        used[best] = 1;
        lua_r1_push_candidate(L, tok, best, p[best]);
        lua_rawseti(L, -3, j + 1);
    }
    lua_pop(L, 1);
}

/* m:lens(tokens, pos [, {k = 3, chat = false}]) -> {pos, token, text, sites = {{site, name,
 * top = {{token, text, p}...}, p_next}...}, mtp = {top, p_next} | nil}: what the residual
 * stream after each layer predicts for the token after position pos. */
static int m_lens(lua_State *L)
{
    lua_model *u = lua_model_idle(L, 1, "m:lens");
    int k = lua_r1_opt_int_in(L, 4, "k", 3, 1, 32);
    int chat = lua_r1_opt_bool(L, 4, "chat", 0);
    int T;
    int32_t *ids = tokens_arg(L, u, 2, chat, &T);
    lua_Integer pos = luaL_checkinteger(L, 3);
    if (pos < 1 || pos > T)
        return luaL_error(L, "m:lens: position %d is outside the %d tokens (1..%d)", (int)pos,
                          T, T);
    const r1_config *c = r1_model_config(u->m);
    int V = c->vocab_size, S = r1_inspect_sites(u->m);
    float *probs = lua_newuserdatauv(L, sizeof(float) * (size_t)S * V, 0);
    float *mtp = lua_newuserdatauv(L, sizeof(float) * V, 0);
    int has_mtp = 0;
    r1_error err = {0};
    lua_model_hold(u, "m:lens");
    r1_status s = r1_inspect_lens(u->m, ids, T, (int)pos - 1, probs, mtp, &has_mtp, &err);
    lua_model_drop(u);
    if (s != R1_OK)
        return luaL_error(L, "m:%s", err.msg); /* "lens: ..." */
    int next = pos < T ? ids[pos] : -1;
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, pos);
    lua_setfield(L, -2, "pos");
    lua_pushinteger(L, ids[pos - 1]);
    lua_setfield(L, -2, "token");
    if (u->tok) {
        lua_pushstring(L, r1_tokenizer_token(u->tok, ids[pos - 1]));
        lua_setfield(L, -2, "text");
    }
    if (next >= 0) {
        lua_pushinteger(L, next);
        lua_setfield(L, -2, "next");
    }
    lua_createtable(L, S, 0);
    for (int i = 0; i < S; i++) {
        lua_createtable(L, 0, 4);
        lua_pushinteger(L, i);
        lua_setfield(L, -2, "site");
        if (i == 0)
            lua_pushliteral(L, "embed");
        else
            lua_pushfstring(L, "layer %d", i - 1);
        lua_setfield(L, -2, "name");
        push_top(L, u->tok, probs + (size_t)i * V, V, k);
        lua_setfield(L, -2, "top");
        if (next >= 0) {
            lua_pushnumber(L, probs[(size_t)i * V + next]);
            lua_setfield(L, -2, "p_next");
        }
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "sites");
    if (has_mtp) {
        lua_createtable(L, 0, 2);
        push_top(L, u->tok, mtp, V, k);
        lua_setfield(L, -2, "top");
        if (next >= 0) {
            lua_pushnumber(L, mtp[next]);
            lua_setfield(L, -2, "p_next");
        }
        lua_setfield(L, -2, "mtp");
    }
    return 1;
}

/* m:attention(tokens, layer [, {chat = false}]) -> r1.tensor [heads, T, T] (T - 1 for the MTP
 * module's layer): row t holds token t's attention weights over tokens 1..t. */
static int m_attention(lua_State *L)
{
    lua_model *u = lua_model_idle(L, 1, "m:attention");
    int chat = lua_r1_opt_bool(L, 4, "chat", 0);
    int T;
    int32_t *ids = tokens_arg(L, u, 2, chat, &T);
    int layer = (int)luaL_checkinteger(L, 3);
    const r1_config *c = r1_model_config(u->m);
    int L0 = c->num_hidden_layers, top = c->num_nextn_predict_layers > 0 ? L0 : L0 - 1;
    if (layer < 0 || layer > top)
        return luaL_error(L, "m:attention: layer %d does not exist; expected 0..%d%s", layer,
                          top, top == L0 ? " (the last is the MTP module's)" : "");
    int Tl = layer < L0 ? T : T - 1;
    if (Tl < 1)
        return luaL_error(L, "m:attention: the MTP layer needs at least 2 tokens");
    int64_t sh[3] = {c->num_attention_heads, Tl, Tl};
    lua_tensor *t = lua_tensor_push(L, 3, sh, 0);
    r1_error err = {0};
    lua_model_hold(u, "m:attention");
    r1_status s = r1_inspect_attention(u->m, ids, T, layer, t->data, &err);
    lua_model_drop(u);
    if (s != R1_OK)
        return luaL_error(L, "m:%s", err.msg); /* "attention: ..." */
    return 1;
}

/* Greedy completion ids of a prompt (userdata buffer on the stack) through m:generate, so that
 * the workbench shows it; *n its length. */
static int32_t *complete(lua_State *L, int model, const int32_t *prompt, int np, int max_tokens,
                         int *n)
{
    lua_getfield(L, model, "generate");
    lua_pushvalue(L, model);
    lua_createtable(L, np, 0);
    for (int i = 0; i < np; i++) {
        lua_pushinteger(L, prompt[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, max_tokens);
    lua_setfield(L, -2, "max_tokens");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "mtp");
    lua_call(L, 3, 1);
    lua_getfield(L, -1, "tokens");
    int32_t *ids = lua_r1_ids(L, lua_gettop(L), 0, n);
    lua_remove(L, -2); /* tokens list */
    lua_remove(L, -2); /* result */
    return ids;
}

static int progress_cb(void *user, int done, int total);

typedef struct {
    lua_State *L;
    int fn, ref, failed;
    int done, total;
} patch_cb;

static int push_progress(lua_State *L, void *ud)
{
    patch_cb *p = ud;
    lua_pushinteger(L, p->done);
    lua_pushinteger(L, p->total);
    return 2;
}

static int progress_cb(void *user, int done, int total)
{
    patch_cb *p = user;
    if (!p->fn)
        return 0;
    p->done = done, p->total = total;
    int stop = lua_r1_callback(p->L, p->fn, push_progress, p, &p->ref);
    p->failed = stop < 0;
    return stop != 0;
}

/* r1.patch{model = m, clean = q1, corrupt = q2, answer = text | ids, max_tokens = 256,
 *          target = "resid" | "experts", layer = N, on_progress = fn(done, total)}
 * -> {share = tensor [sites, positions], lp = tensor [sites, positions], lp_clean, lp_corrupt,
 *     sites = {"embed", "layer 0", ...}, tokens = {prompt token texts}, answer = text}
 * Questions are wrapped as m:ask wraps them (id lists are used as they are) and must have the
 * same number of tokens; the answer scored is the clean prompt's greedy completion unless
 * given.  share[i][p] = (lp[i][p] - lp_corrupt) / (lp_clean - lp_corrupt): how much of the
 * clean answer's log-probability returns when site i at prompt position p is copied from the
 * clean run into the corrupted one.  target = "experts" patches instead each routed expert's
 * part of MoE layer N's output (gate weight times output): rows are the layer's experts. */
static int l_patch(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "model");
    int model = lua_gettop(L);
    lua_model *u = lua_model_idle(L, model, "r1.patch");
    const char *target = lua_r1_opt_str(L, 1, "target", "resid");
    int experts = !strcmp(target, "experts");
    if (strcmp(target, "resid") && !experts)
        return luaL_error(L, "r1.patch: target \"%s\" is not known; expected \"resid\" (the "
                          "residual stream after each layer) or \"experts\" (one MoE layer's "
                          "routed experts, with layer = N)", target);
    const r1_config *cf = r1_model_config(u->m);
    int layer = lua_r1_opt_int_in(L, 1, "layer", -1, -1, 1 << 16);
    if (experts && layer < 0)
        return luaL_error(L, "r1.patch: target \"experts\" needs layer = N (a MoE layer, %d..%d)",
                          cf->first_k_dense_replace, cf->num_hidden_layers - 1);
    int max_tokens = lua_r1_opt_int_in(L, 1, "max_tokens", 256, 1, 1 << 16);
    int np, nc;
    lua_getfield(L, 1, "clean");
    if (lua_isnil(L, -1))
        return luaL_error(L, "r1.patch: 'clean' (the clean prompt) is missing");
    int32_t *clean = tokens_arg(L, u, lua_gettop(L), 1, &np);
    lua_getfield(L, 1, "corrupt");
    if (lua_isnil(L, -1))
        return luaL_error(L, "r1.patch: 'corrupt' (the corrupted prompt) is missing");
    int32_t *corrupt = tokens_arg(L, u, lua_gettop(L), 1, &nc);
    if (np != nc)
        return luaL_error(L, "r1.patch: the clean and corrupted prompts must have the same "
                          "number of tokens (%d and %d); change a digit, not a length", np, nc);
    int na;
    int32_t *ans;
    lua_getfield(L, 1, "answer");
    if (lua_isnil(L, -1))
        ans = complete(L, model, clean, np, max_tokens, &na);
    else
        ans = tokens_arg(L, u, lua_gettop(L), 0, &na);
    if (na < 1)
        return luaL_error(L, "r1.patch: the answer is empty");
    int T = np + na, S = experts ? cf->n_routed_experts : r1_inspect_sites(u->m);
    int32_t *a = lua_newuserdatauv(L, sizeof(int32_t) * T, 0);
    int32_t *b = lua_newuserdatauv(L, sizeof(int32_t) * T, 0);
    memcpy(a, clean, sizeof(int32_t) * np), memcpy(a + np, ans, sizeof(int32_t) * na);
    memcpy(b, corrupt, sizeof(int32_t) * np), memcpy(b + np, ans, sizeof(int32_t) * na);
    patch_cb cb = {L, 0, LUA_NOREF, 0, 0, 0};
    if (lua_r1_opt_fn(L, 1, "on_progress"))
        cb.fn = lua_gettop(L);
    int64_t sh[2] = {S, np};
    lua_tensor *lp = lua_tensor_push(L, 2, sh, 0);
    int lpi = lua_gettop(L);
    double lp_clean = 0, lp_corrupt = 0;
    r1_error err = {0};
    lua_model_hold(u, "r1.patch");
    r1_status s = experts ? r1_inspect_patch_experts(u->m, a, b, T, np, layer, lp->data,
                                                     &lp_clean, &lp_corrupt, progress_cb, &cb,
                                                     &err)
                          : r1_inspect_patch(u->m, a, b, T, np, lp->data, &lp_clean,
                                             &lp_corrupt, progress_cb, &cb, &err);
    lua_model_drop(u);
    if (cb.failed)
        return lua_r1_raise_ref(L, cb.ref);
    if (s == R1_ECANCELED && r1_interrupted())
        return luaL_error(L, "interrupted");
    if (s != R1_OK)
        return luaL_error(L, "r1.%s", err.msg); /* err.msg starts with "patch: " */
    lua_createtable(L, 0, 8);
    lua_tensor *sh_t = lua_tensor_push(L, 2, sh, 0);
    double den = lp_clean - lp_corrupt;
    for (size_t i = 0; i < sh_t->n; i++)
        ((float *)sh_t->data)[i] =
            fabs(den) > 1e-9 ? (float)((((float *)lp->data)[i] - lp_corrupt) / den) : NAN;
    lua_setfield(L, -2, "share");
    lua_pushvalue(L, lpi);
    lua_setfield(L, -2, "lp");
    lua_pushnumber(L, lp_clean);
    lua_setfield(L, -2, "lp_clean");
    lua_pushnumber(L, lp_corrupt);
    lua_setfield(L, -2, "lp_corrupt");
    lua_createtable(L, S, 0);
    for (int i = 0; i < S; i++) {
        if (experts)
            lua_pushfstring(L, "L%d e%d", layer, i);
        else if (i == 0)
            lua_pushliteral(L, "embed");
        else
            lua_pushfstring(L, "layer %d", i - 1);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "sites");
    if (u->tok) {
        lua_createtable(L, np, 0);
        for (int p = 0; p < np; p++) {
            lua_pushstring(L, r1_tokenizer_token(u->tok, clean[p]));
            lua_rawseti(L, -2, p + 1);
        }
        lua_setfield(L, -2, "tokens");
        lua_r1_push_decoded(L, u->tok, ans, na);
        lua_setfield(L, -2, "answer");
        lua_createtable(L, np, 0);
        for (int p = 0; p < np; p++) {
            lua_pushstring(L, r1_tokenizer_token(u->tok, corrupt[p]));
            lua_rawseti(L, -2, p + 1);
        }
        lua_setfield(L, -2, "corrupt_tokens");
    }
    return 1;
}

/* Raises unless the two models can read the same token ids: same vocabulary size and, when
 * both have tokenizers, the same token texts. */
static void same_vocab(lua_State *L, const lua_model *a, const lua_model *b)
{
    int va = r1_model_config(a->m)->vocab_size, vb = r1_model_config(b->m)->vocab_size;
    if (va != vb)
        luaL_error(L, "r1.compare: the models' vocabularies differ (%d and %d tokens); both "
                   "must read the same token ids", va, vb);
    if (!a->tok != !b->tok)
        luaL_error(L, "r1.compare: model %s has no tokenizer; both need one, or neither",
                   a->tok ? "b" : "a");
    for (int i = 0; a->tok && i < va; i++)
        if (strcmp(r1_tokenizer_token(a->tok, i), r1_tokenizer_token(b->tok, i)))
            luaL_error(L, "r1.compare: the models' vocabularies differ at token %d (\"%s\" and "
                       "\"%s\")", i, r1_tokenizer_token(a->tok, i),
                       r1_tokenizer_token(b->tok, i));
}

/* r1.compare{a = m1, b = m2, prompt = text | ids, max_tokens = 256, chat = true}
 * -> {a = result, b = result (m:generate's, greedy), diverge = index of the first generated
 * token that differs (nil when none does), same = bool, routing = {[layer] = share of the
 * tokens of a's completion whose expert set differs between the models, read on a's text}} */
static int l_compare(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "a");
    int ia = lua_gettop(L);
    lua_model *a = lua_model_idle(L, ia, "r1.compare");
    lua_getfield(L, 1, "b");
    int ib = lua_gettop(L);
    lua_model *b = lua_model_idle(L, ib, "r1.compare");
    same_vocab(L, a, b);
    int max_tokens = lua_r1_opt_int_in(L, 1, "max_tokens", 256, 1, 1 << 16);
    int chat = lua_r1_opt_bool(L, 1, "chat", 1);
    lua_getfield(L, 1, "prompt");
    if (lua_isnil(L, -1))
        return luaL_error(L, "r1.compare: 'prompt' is missing");
    int np;
    int32_t *prompt = tokens_arg(L, a, lua_gettop(L), chat, &np);
    lua_createtable(L, 0, 6);
    int out = lua_gettop(L);
    int nr[2];
    int32_t *gen[2];
    for (int k = 0; k < 2; k++) { /* m:generate with the prompt as ids */
        lua_getfield(L, k ? ib : ia, "generate");
        lua_pushvalue(L, k ? ib : ia);
        lua_createtable(L, np, 0);
        for (int i = 0; i < np; i++) {
            lua_pushinteger(L, prompt[i]);
            lua_rawseti(L, -2, i + 1);
        }
        lua_createtable(L, 0, 1);
        lua_pushinteger(L, max_tokens);
        lua_setfield(L, -2, "max_tokens");
        lua_call(L, 3, 1);
        lua_pushvalue(L, -1);
        lua_setfield(L, out, k ? "b" : "a");
        lua_getfield(L, -1, "tokens");
        gen[k] = lua_r1_ids(L, lua_gettop(L), 0, &nr[k]);
    }
    int diverge = 0;
    for (int i = 0; !diverge && i < (nr[0] > nr[1] ? nr[0] : nr[1]); i++)
        if (i >= nr[0] || i >= nr[1] || gen[0][i] != gen[1][i])
            diverge = i + 1;
    lua_pushboolean(L, !diverge);
    lua_setfield(L, out, "same");
    if (diverge) {
        lua_pushinteger(L, diverge);
        lua_setfield(L, out, "diverge");
    }
    /* routing: both models read a's text, teacher-forced */
    int T = np + nr[0];
    int32_t *seq = lua_newuserdatauv(L, sizeof(int32_t) * T, 0);
    memcpy(seq, prompt, sizeof(int32_t) * np);
    memcpy(seq + np, gen[0], sizeof(int32_t) * nr[0]);
    const r1_config *ca = r1_model_config(a->m), *cb = r1_model_config(b->m);
    int nl = ca->num_hidden_layers > cb->num_hidden_layers ? ca->num_hidden_layers
                                                           : cb->num_hidden_layers;
    double *share = lua_newuserdatauv(L, sizeof(double) * nl, 0);
    r1_error err = {0};
    if (nr[0] > 0) {
        lua_model_hold(a, "r1.compare");
        if (a != b)
            lua_model_hold(b, "r1.compare");
        r1_status s = r1_inspect_routing_diff(a->m, b->m, seq, T, np, share, nl, &err);
        lua_model_drop(a);
        lua_model_drop(b);
        if (s != R1_OK)
            return luaL_error(L, "r1.compare: %s", err.msg);
    }
    lua_newtable(L);
    for (int l = 0; nr[0] > 0 && l < nl; l++)
        if (!isnan(share[l])) {
            lua_pushnumber(L, share[l]);
            lua_rawseti(L, -2, l);
        }
    lua_setfield(L, out, "routing");
    lua_pushvalue(L, out);
    return 1;
}

void lua_inspect_open(lua_State *L)
{
    static const luaL_Reg funcs[] = {{"patch", l_patch}, {"compare", l_compare}, {NULL, NULL}};
    luaL_setfuncs(L, funcs, 0);
    luaL_getmetatable(L, LUA_R1_MODEL);
    lua_getfield(L, -1, "__index");
    lua_pushcfunction(L, m_lens);
    lua_setfield(L, -2, "lens");
    lua_pushcfunction(L, m_attention);
    lua_setfield(L, -2, "attention");
    lua_pop(L, 2);
}
