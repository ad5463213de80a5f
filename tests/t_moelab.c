/* t_moelab.c — the MoE lab's engine pieces: MaxVio and Jain's index against hand computations,
 * including on a fixed routing forced through r1_model_force_routing; forcing the router's own
 * choice changes nothing; forced routing against the PyTorch reference (tests/ref/forced_ref.py:
 * logits, loss and every gradient of tiny_moe with given experts), when the fixture is there;
 * bad input. */
#include <config.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "r1_generate.h"
#include "r1_inspect.h"
#include "r1_model.h"
#include "r1_safetensors.h"
#include "tap.h"

static double rel_err(const float *a, const float *b, size_t n)
{
    double mx = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        mx = d > mx ? d : mx;
        scale = fabs(b[i]) > scale ? fabs(b[i]) : scale;
    }
    return scale > 0 ? mx / scale : mx;
}

/* A tensor of the fixture, whole (NULL when absent); *n its size. */
static void *read_tensor(const r1_st *st, const char *name, int i32, size_t *n)
{
    r1_dtype dt;
    int nd;
    int64_t sh[R1_ST_MAXDIM];
    *n = 0;
    if (r1_st_info(st, name, &dt, &nd, sh, NULL) != R1_OK)
        return NULL;
    size_t total = 1;
    for (int i = 0; i < nd; i++)
        total *= sh[i];
    void *p = malloc(4 * (total ? total : 1));
    r1_status s = i32 ? r1_st_read_i32(st, name, p, nd, sh, NULL)
                      : r1_st_read_f32(st, name, p, nd, sh, NULL);
    if (!p || s != R1_OK) {
        free(p);
        return NULL;
    }
    *n = total;
    return p;
}

static void check_reference(r1_model *m, const char *src)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/tests/data/forced_routing/expected.safetensors", src);
    r1_st *st = NULL;
    if (r1_st_open(&st, path, NULL) != R1_OK) {
        skip("forced routing against the reference: no fixture %s", path);
        return;
    }
    const r1_config *c = r1_model_config(m);
    int K = c->num_experts_per_tok, V = c->vocab_size;
    size_t n = 0, nf = 0;
    int32_t *tok = read_tensor(st, "tokens", 1, &n);
    int B = 2, T = (int)(n / 2);
    int32_t *forced[64] = {0};
    for (int l = c->first_k_dense_replace; l < c->num_hidden_layers; l++) {
        char name[32];
        snprintf(name, sizeof name, "forced.%d", l);
        forced[l] = read_tensor(st, name, 1, &nf);
        r1_model_force_routing(m, l, forced[l], B * T, NULL);
    }
    r1_fwd_opts o = r1_fwd_defaults();
    o.no_mtp = 1;
    r1_loss loss;
    r1_model_zero_grad(m);
    r1_status s = r1_model_forward(m, tok, B, T, &o, &loss, NULL);
    if (s == R1_OK)
        s = r1_model_backward(m, NULL);
    ok(s == R1_OK, "a forward and backward with the reference's forced experts");
    size_t one = 0;
    float *lw = read_tensor(st, "loss_main", 0, &one), *ln = read_tensor(st, "natural.loss_main",
                                                                          0, &one);
    is_float(loss.main, lw ? lw[0] : NAN, 1e-5, "the loss = the reference's (%.6f; %.6f "
             "with the router's own choice)", loss.main, ln ? ln[0] : NAN);
    float *lg = read_tensor(st, "logits", 0, &n);
    double e = lg ? rel_err(r1_model_logits(m), lg, (size_t)B * T * V) : 1;
    ok(e < 1e-5, "the logits = the reference's (rel %.2g)", e);
    /* every parameter of the main model the reference has a gradient for */
    int np = r1_model_nparams(m), checked = 0, router = 0;
    double worst = 0;
    for (int i = 0; i < np; i++) {
        const r1_param *p = r1_model_param(m, i);
        char name[300];
        snprintf(name, sizeof name, "grad.%s", p->name);
        float *g = read_tensor(st, name, 0, &n);
        if (!g)
            continue;
        if (n == p->numel) {
            worst = fmax(worst, rel_err(r1_model_grads(m) + p->offset, g, n));
            checked++;
            router += strstr(p->name, "mlp.gate.weight") != NULL;
        }
        free(g);
    }
    ok(checked > 20 && router >= 2 && worst < 1e-5, "%d gradients (%d routers among them) = the "
       "reference's with forced routing (worst rel %.2g)", checked, router, worst);
    for (int l = 0; l < 64; l++) {
        if (forced[l])
            r1_model_force_routing(m, l, NULL, 0, NULL);
        free(forced[l]);
    }
    free(tok), free(lw), free(ln), free(lg);
    r1_st_close(st);
    (void)K;
}

/* MTP acceptance (r1_inspect_mtp_accept) against the decoder: on greedy text, depth 1's
 * verdict at each anchor is whether the MTP module's prediction for the next token (what
 * plain decoding with mtp_predict reports) is that token; speculative decoding, which visits
 * some of the anchors, accepts exactly what those verdicts say. */
static void check_acceptance(r1_model *m)
{
    int32_t p0[3] = {1, 17, 26}, p1[4] = {1, 9, 31, 12};
    const int32_t *prompts[2] = {p0, p1};
    int plens[2] = {3, 4}, n = 24;
    r1_gen_cfg g = r1_gen_defaults();
    g.max_tokens = n, g.temperature = 0, g.mtp_predict = 1;
    r1_gen_result *res = NULL;
    r1_error err = {0};
    if (!ok(r1_generate(m, prompts, plens, 2, &g, NULL, &res, &err) == R1_OK,
            "greedy decoding with the MTP module's predictions")) {
        diag("%s", err.msg);
        return;
    }
    long want_tries = 0, want_hits = 0, tries[8] = {0}, hits[8] = {0}, walk_d = 0, walk_a = 0;
    int same = 1;
    for (int r = 0; r < 2; r++) {
        const r1_gen_row *row = &res->row[r];
        int T = plens[r] + row->n;
        int32_t seq[64];
        memcpy(seq, prompts[r], sizeof(int32_t) * plens[r]);
        memcpy(seq + plens[r], row->tokens, sizeof(int32_t) * row->n);
        for (int i = 0; i + 1 < row->n; i++) {
            want_tries++;
            want_hits += row->mtp_ids[i] == row->tokens[i + 1];
        }
        same &= r1_inspect_mtp_accept(m, seq, T, plens[r], tries, hits, &err) == R1_OK;
        /* speculative decoding's walk: a draft from token j guesses j + 1; accepted, the next
         * draft comes from j + 2 */
        for (int j = 0; j + 1 < row->n;) {
            int v = row->mtp_ids[j] == row->tokens[j + 1];
            walk_d++, walk_a += v;
            j += v ? 2 : 1;
        }
    }
    ok(same && tries[0] == want_tries && hits[0] == want_hits && hits[0] > 0 &&
       hits[0] < tries[0], "MTP acceptance: %ld of %ld drafts, as the decoder's predictions say "
       "(%ld of %ld)", hits[0], tries[0], want_hits, want_tries);
    r1_gen_result_free(res);
    g.mtp_predict = 0, g.speculative = 1;
    res = NULL;
    r1_status st = r1_generate(m, prompts, plens, 2, &g, NULL, &res, &err);
    long acc = st == R1_OK ? res->accepted : -1, dr = st == R1_OK ? res->drafted : -1;
    ok(acc == walk_a && dr == walk_d, "speculative decoding accepts %ld of %ld drafts; the "
       "verdicts predict %ld of %ld", acc, dr, walk_a, walk_d);
    r1_gen_result_free(res);
    /* bad input */
    is_int(r1_inspect_mtp_accept(m, p0, 3, 0, tries, hits, &err), R1_EINVAL, "from 0");
    like(err.msg, "from 0: expected 1..3", "is refused by name");
}

int main(void)
{
    r1_set_threads(1);
    float uneven[4] = {3, 1, 0, 0}, even[4] = {2, 2, 2, 2}, none[4] = {0, 0, 0, 0};
    is_float(r1_load_maxvio(uneven, 4), 2.0, 1e-12, "MaxVio of {3,1,0,0}: 3 / 1 - 1 = 2");
    is_float(r1_load_jain(uneven, 4), 0.4, 1e-12, "Jain's index: 16 / (4 x 10) = 0.4");
    is_float(r1_load_maxvio(even, 4), 0.0, 0, "an even load: MaxVio 0");
    is_float(r1_load_jain(even, 4), 1.0, 1e-12, "and Jain's index 1");
    ok(r1_load_maxvio(none, 4) == 0 && r1_load_jain(none, 4) == 0, "nothing routed: 0 and 0");

    const char *src = getenv("top_srcdir");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/data/tiny_moe", src ? src : ".");
    r1_model *m = NULL;
    r1_error err = {0};
    if (r1_model_load(&m, dir, &err) != R1_OK) {
        printf("Bail out! %s\n", err.msg);
        return 1;
    }
    const r1_config *c = r1_model_config(m);
    int E = c->n_routed_experts, K = c->num_experts_per_tok, V = c->vocab_size;
    int32_t tok[2 * 7] = {17, 26, 12, 8, 3, 34, 3, 24, 37, 26, 12, 16, 9, 31};
    int B = 2, T = 7, N = B * T, l = c->first_k_dense_replace;

    /* forcing the router's own choice: the same forward, bit for bit */
    r1_fwd_opts o = r1_fwd_defaults();
    o.no_mtp = 1;
    r1_model_forward(m, tok, B, T, &o, NULL, NULL);
    float *plain = malloc(sizeof(float) * N * V);
    memcpy(plain, r1_model_logits(m), sizeof(float) * N * V);
    int32_t *own = malloc(sizeof(int32_t) * N * K);
    r1_model_routing(m, l, own, NULL);
    ok(r1_model_force_routing(m, l, own, N, &err) == R1_OK, "the router's own choice, forced");
    r1_model_forward(m, tok, B, T, &o, NULL, NULL);
    ok(!memcmp(plain, r1_model_logits(m), sizeof(float) * N * V), "gives the same logits, bit "
       "for bit");

    /* a fixed routing: every token to experts 0..K-1; the load and MaxVio follow by hand */
    int32_t *fixed = malloc(sizeof(int32_t) * N * K);
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++)
            fixed[n * K + k] = k;
    r1_model_balance_update(m, 0); /* start the count */
    r1_model_force_routing(m, l, fixed, N, &err);
    r1_model_forward(m, tok, B, T, &o, NULL, NULL);
    int32_t got[2 * 7 * 8];
    r1_model_routing(m, l, got, NULL);
    ok(!memcmp(got, fixed, sizeof(int32_t) * N * K), "the forward used the given experts");
    float load[64];
    long counted = r1_model_expert_load(m, l, load);
    ok(counted == N && load[0] == N && load[K - 1] == N && load[K] == 0,
       "the expert load counts them (%ld tokens; expert 0: %g)", counted, load[0]);
    is_float(r1_model_expert_load(m, l, load) >= 0 ? r1_load_maxvio(load, E) : -1,
             (double)E / K - 1, 1e-9, "MaxVio of %d tokens on %d of %d experts: E/K - 1 = %g",
             N, K, E, (double)E / K - 1);
    is_float(r1_load_jain(load, E), (double)K / E, 1e-9, "Jain's index: K/E");
    r1_model_force_routing(m, l, NULL, 0, NULL);

    /* bad input */
    is_int(r1_model_force_routing(m, 0, fixed, N, &err), R1_EINVAL, "layer 0 is dense");
    like(err.msg, "layer 0 is not a MoE layer", "says so");
    fixed[3 * K + 1] = fixed[3 * K]; /* token 3: the same expert twice */
    is_int(r1_model_force_routing(m, l, fixed, N, &err), R1_EINVAL, "a repeated expert");
    like(err.msg, "token 3: expected 2 distinct experts in ascending order, in 0..7", "names it");
    fixed[3 * K + 1] = 1;
    r1_model_force_routing(m, l, fixed, N, &err);
    is_int(r1_model_forward(m, tok, 1, T, &o, NULL, &err), R1_EINVAL, "a forward of another size");
    like(err.msg, "the forced routing of layer 1 holds 14 tokens; this forward has 1 x 7",
         "names the layer");
    r1_model_force_routing(m, l, NULL, 0, NULL);
    ok(r1_model_forward(m, tok, B, T, &o, NULL, &err) == R1_OK, "cleared, forwards run again");

    check_acceptance(m);
    check_reference(m, src ? src : ".");
    free(plain), free(own), free(fixed);
    r1_model_free(m);
    return done_testing();
}
