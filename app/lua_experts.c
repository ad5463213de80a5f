/* lua_experts.c — expert analytics from Lua: r1.experts reads task problems with their worked
 * solutions (in the chat format, as SFT shows them) through the model and reports how its MoE
 * layers use their experts: each layer's load with MaxVio and Jain's index, which experts each
 * class of token goes to (digits, operators, the words of each language, the chat tags,
 * whitespace), and the most frequent layer-to-layer paths of the top expert.  The forwards do
 * not count towards the balancing's expert load (r1_inspect_forward).  Buffers are userdata
 * on the stack, so an error leaks nothing. */
#include <config.h>

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "lua_r1.h"
#include "r1_inspect.h"

enum { C_DIGIT, C_OPERATOR, C_WORD_EN, C_WORD_ES, C_TAG, C_SPACE, C_OTHER, NCLASS };
static const char *const class_names[NCLASS] = {"digit", "operator", "word_en", "word_es",
                                                "tag",   "space",    "other"};

/* The class of a token's text; lang 1 is Spanish. */
static int token_class(const char *s, int lang)
{
    size_t n = strlen(s);
    if (n > 2 && s[0] == '<' && s[n - 1] == '>')
        return C_TAG;
    if (n == 0)
        return C_OTHER;
    unsigned char c = (unsigned char)s[0];
    if (isdigit(c))
        return C_DIGIT;
    if (strchr("+-*/=()x", c) && n == 1)
        return C_OPERATOR;
    if (isspace(c))
        return C_SPACE;
    if (isalpha(c) || c >= 0x80)
        return lang ? C_WORD_ES : C_WORD_EN;
    return C_OTHER;
}

static int path_cmp(const void *a, const void *b, void *n)
{
    return memcmp(a, b, sizeof(int32_t) * *(int *)n);
}

/* qsort_r is a GNU extension; the sort needs the path length, kept here for the comparator */
static int path_len;
static int path_cmp_fixed(const void *a, const void *b)
{
    return path_cmp(a, b, &path_len);
}

/* r1.experts{model = m, tasks = "add:1-3,mul:1" | {...}, n = 16, lang = "both", seed = 1}
 * -> {tokens, layers = {{layer, load = {E shares}, maxvio, jain}}, classes = {NAME = {tokens,
 *     layers = {{E shares}} (per MoE layer, the class's routed slots by expert), top = {the
 *     busiest expert per MoE layer}}}, paths = {{experts = {top expert per MoE layer}, count,
 *     share}} (the 10 most frequent)} */
static int l_experts(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "model");
    int mi = lua_gettop(L);
    lua_model *u = lua_model_idle(L, mi, "r1.experts");
    if (!u->tok)
        return luaL_error(L, "r1.experts: the model has no tokenizer (its classes are by text)");
    int n = lua_r1_opt_int_in(L, 1, "n", 16, 1, 100000);
    int seed = lua_r1_opt_int_in(L, 1, "seed", 1, 0, 1 << 30);
    const char *lang = lua_r1_opt_str(L, 1, "lang", "both");
    if (strcmp(lang, "both") && strcmp(lang, "en") && strcmp(lang, "es"))
        return luaL_error(L, "r1.experts: lang \"%s\": expected \"both\", \"en\" or \"es\"", lang);
    const char *spec = lua_r1_opt_str(L, 1, "tasks", "add:1-3");
    const r1_config *c = r1_model_config(u->m);
    int E = c->n_routed_experts, K = c->num_experts_per_tok, V = c->vocab_size;
    int moe[64], nm = 0;
    for (int l = 0; l < c->num_hidden_layers && nm < 64; l++)
        if (r1_model_router_bias(u->m, l))
            moe[nm++] = l;
    if (!nm)
        return luaL_error(L, "r1.experts: the model has no routed experts");
    for (const char *q = spec; *q;) { /* every entry checked before anything is allocated */
        size_t len = strcspn(q, ",");
        char one[64];
        snprintf(one, sizeof one, "%.*s", (int)(len < 63 ? len : 63), q);
        q += len + (q[len] == ',');
        const r1_task *task;
        int lo, hi;
        lua_r1_task_spec(L, "r1.experts", 1, one, 0, &task, &lo, &hi);
    }
    /* counts: [NCLASS, nm, E] slots, per class tokens, per layer load; paths [tokens, nm] */
    double *cnt = lua_newuserdatauv(L, sizeof(double) * NCLASS * nm * E, 0);
    memset(cnt, 0, sizeof(double) * NCLASS * nm * E);
    long ctok[NCLASS] = {0}, total = 0, cap = 1 << 14;
    int32_t *paths = malloc(sizeof(int32_t) * cap * nm);
    if (!paths)
        return luaL_error(L, "out of memory");
    int32_t *sel = lua_newuserdatauv(L, sizeof(int32_t) * c->max_position_embeddings * K, 0);
    float *wt = lua_newuserdatauv(L, sizeof(float) * c->max_position_embeddings * K, 0);
    int32_t *ids = lua_newuserdatauv(L, sizeof(int32_t) * c->max_position_embeddings, 0);
    int32_t *top = lua_newuserdatauv(L, sizeof(int32_t) * c->max_position_embeddings * nm, 0);
    /* the entries of the task list, comma separated */
    const char *p = spec;
    int entry = 0;
    r1_error err = {0};
    while (*p) {
        size_t len = strcspn(p, ",");
        char one[64];
        snprintf(one, sizeof one, "%.*s", (int)(len < 63 ? len : 63), p);
        p += len + (p[len] == ',');
        const r1_task *task;
        int lo, hi;
        entry++;
        lua_r1_task_spec(L, "r1.experts", entry, one, 0, &task, &lo, &hi);
        for (int d = lo; d <= hi; d++)
            for (int k = 0; k < n; k++) {
                int es = !strcmp(lang, "es") || (!strcmp(lang, "both") && k % 2);
                r1_task_sample s;
                if (r1_task_generate(task, (uint64_t)(seed + k), d, es ? R1_LANG_ES : R1_LANG_EN,
                                     &s, &err) != R1_OK) {
                    free(paths);
                    return luaL_error(L, "r1.experts: %s", err.msg);
                }
                int T = 0, start = 0; /* the training sequence, as SFT shows it */
                if (r1_tokenizer_encode_chat(u->tok, s.prompt, s.reasoning, s.answer, ids,
                                             c->max_position_embeddings, &T, &start,
                                             &err) != R1_OK || T < 1) {
                    free(paths);
                    return luaL_error(L, "r1.experts: %s", err.msg);
                }
                lua_model_hold(u, "r1.experts");
                r1_fwd_opts o = r1_fwd_defaults();
                o.no_mtp = 1;
                r1_status st = r1_inspect_forward(u->m, ids, 1, T, &o, &err);
                lua_model_drop(u);
                if (st != R1_OK) {
                    free(paths);
                    return luaL_error(L, "r1.experts: %s", err.msg);
                }
                for (int j = 0; j < nm; j++) {
                    r1_model_routing(u->m, moe[j], sel, wt);
                    for (int t = 0; t < T; t++) {
                        int cl = token_class(r1_tokenizer_token(u->tok, ids[t]), es);
                        int best = 0;
                        for (int q = 0; q < K; q++) {
                            int e = sel[t * K + q];
                            cnt[((size_t)cl * nm + j) * E + e] += 1;
                            best = wt[t * K + q] > wt[t * K + best] ? q : best;
                        }
                        top[(size_t)t * nm + j] = sel[t * K + best];
                        if (j == 0)
                            ctok[cl]++;
                    }
                }
                if (total + T > cap) {
                    while (total + T > cap)
                        cap *= 2;
                    int32_t *np = realloc(paths, sizeof(int32_t) * cap * nm);
                    if (!np) {
                        free(paths);
                        return luaL_error(L, "out of memory");
                    }
                    paths = np;
                }
                memcpy(paths + (size_t)total * nm, top, sizeof(int32_t) * T * nm);
                total += T;
            }
    }
    (void)V;
    /* the most frequent paths: sort, count the runs, keep the 10 largest */
    path_len = nm;
    qsort(paths, (size_t)total, sizeof(int32_t) * nm, path_cmp_fixed);
    long best_n[10] = {0};
    long best_at[10] = {0};
    for (long i = 0; i < total;) {
        long j = i + 1;
        while (j < total && !memcmp(paths + i * nm, paths + j * nm, sizeof(int32_t) * nm))
            j++;
        long run = j - i;
        for (int r = 0; r < 10; r++)
            if (run > best_n[r]) {
                memmove(best_n + r + 1, best_n + r, sizeof(long) * (9 - r));
                memmove(best_at + r + 1, best_at + r, sizeof(long) * (9 - r));
                best_n[r] = run, best_at[r] = i;
                break;
            }
        i = j;
    }
    /* the result (paths is copied into Lua before it is freed) */
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, total);
    lua_setfield(L, -2, "tokens");
    lua_createtable(L, 10, 0);
    for (int r = 0; r < 10 && best_n[r] > 0; r++) {
        lua_createtable(L, 0, 3);
        lua_createtable(L, nm, 0);
        for (int j = 0; j < nm; j++) {
            lua_pushinteger(L, paths[best_at[r] * nm + j]);
            lua_rawseti(L, -2, j + 1);
        }
        lua_setfield(L, -2, "experts");
        lua_pushinteger(L, best_n[r]);
        lua_setfield(L, -2, "count");
        lua_pushnumber(L, (double)best_n[r] / (total ? total : 1));
        lua_setfield(L, -2, "share");
        lua_rawseti(L, -2, r + 1);
    }
    free(paths);
    lua_setfield(L, -2, "paths");
    lua_createtable(L, nm, 0);
    float load[256];
    for (int j = 0; j < nm; j++) {
        double sum = 0;
        for (int e = 0; e < E && e < 256; e++) {
            load[e] = 0;
            for (int cl = 0; cl < NCLASS; cl++)
                load[e] += (float)cnt[((size_t)cl * nm + j) * E + e];
            sum += load[e];
        }
        lua_createtable(L, 0, 4);
        lua_pushinteger(L, moe[j]);
        lua_setfield(L, -2, "layer");
        lua_createtable(L, E, 0);
        for (int e = 0; e < E && e < 256; e++) {
            lua_pushnumber(L, sum > 0 ? load[e] / sum : 0);
            lua_rawseti(L, -2, e + 1);
        }
        lua_setfield(L, -2, "load");
        lua_pushnumber(L, r1_load_maxvio(load, E < 256 ? E : 256));
        lua_setfield(L, -2, "maxvio");
        lua_pushnumber(L, r1_load_jain(load, E < 256 ? E : 256));
        lua_setfield(L, -2, "jain");
        lua_rawseti(L, -2, j + 1);
    }
    lua_setfield(L, -2, "layers");
    lua_createtable(L, 0, NCLASS);
    for (int cl = 0; cl < NCLASS; cl++) {
        lua_createtable(L, 0, 3);
        lua_pushinteger(L, ctok[cl]);
        lua_setfield(L, -2, "tokens");
        lua_createtable(L, nm, 0);
        lua_createtable(L, nm, 0);
        for (int j = 0; j < nm; j++) {
            const double *v = cnt + ((size_t)cl * nm + j) * E;
            double sum = 0;
            int busiest = 0;
            for (int e = 0; e < E; e++) {
                sum += v[e];
                busiest = v[e] > v[busiest] ? e : busiest;
            }
            lua_createtable(L, E, 0);
            for (int e = 0; e < E; e++) {
                lua_pushnumber(L, sum > 0 ? v[e] / sum : 0);
                lua_rawseti(L, -2, e + 1);
            }
            lua_rawseti(L, -3, j + 1);
            lua_pushinteger(L, busiest);
            lua_rawseti(L, -2, j + 1);
        }
        lua_setfield(L, -3, "top");
        lua_setfield(L, -2, "layers");
        lua_setfield(L, -2, class_names[cl]);
    }
    lua_setfield(L, -2, "classes");
    return 1;
}

void lua_experts_open(lua_State *L)
{
    lua_pushcfunction(L, l_experts);
    lua_setfield(L, -2, "experts");
}
