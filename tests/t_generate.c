/* t_generate.c — r1_generate: batched rows equal rows alone, seeded sampling repeats, top-k and
 * top-p never emit an excluded token, the model log-probs equal the full forward's, stop
 * conditions, the streamed events, speculative decoding (greedy identical; sampled with the
 * same token distribution, by a chi-square test), and bad input. */
#include <config.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "r1_generate.h"
#include "r1_rng.h"
#include "tap.h"

static float test_log_softmax(const float *x, int V, int t)
{
    double mx = x[0], sum = 0;
    for (int v = 1; v < V; v++)
        mx = x[v] > mx ? x[v] : mx;
    for (int v = 0; v < V; v++)
        sum += exp(x[v] - mx);
    return (float)(x[t] - mx - log(sum));
}

static r1_model *random_tiny(uint64_t seed, float std)
{
    r1_config c;
    r1_config_preset(&c, "tiny", NULL);
    c.num_hidden_layers = 3;
    c.initializer_range = std;
    r1_model *m;
    r1_model_new(&m, &c, NULL);
    r1_model_init(m, seed);
    return m;
}

static r1_gen_result *gen1(r1_model *m, const int32_t *p, int n, const r1_gen_cfg *c)
{
    r1_gen_result *res = NULL;
    r1_generate(m, &p, &n, 1, c, NULL, &res, NULL);
    return res;
}

static int same_tokens(const r1_gen_row *a, const r1_gen_row *b)
{
    return a->n == b->n && !memcmp(a->tokens, b->tokens, sizeof(int32_t) * a->n);
}

typedef struct {
    int events, bad_order, stop_after;
    float lp_sum;
} evlog;

static int on_token(void *user, const r1_token_event *ev)
{
    evlog *l = user;
    if (ev->index != l->events || ev->pos != 3 + ev->index) /* the prompts here are 3 long */
        l->bad_order++;
    l->events++;
    l->lp_sum += ev->logprob_model;
    return l->stop_after && l->events >= l->stop_after;
}

typedef struct {
    const r1_gen_row *row; /* the result the events are compared with (set after the run) */
    int n, top_n, mtp_known, bad_order;
    int32_t top[64][8];
    float ent[64];
    int32_t mtp[64];
} inslog;

static int on_inspect(void *user, const r1_token_event *ev)
{
    inslog *l = user;
    if (ev->row != 0 || ev->index >= 64)
        return 0;
    l->bad_order += ev->index != l->n || ev->pos != 3 + ev->index;
    l->n++;
    l->top_n = ev->n_top;
    for (int j = 0; j < ev->n_top && j < 8; j++)
        l->top[ev->index][j] = ev->top_ids[j];
    l->ent[ev->index] = ev->entropy;
    l->mtp[ev->index] = ev->mtp_token;
    l->mtp_known += ev->mtp_token >= 0;
    return 0;
}

/* The microscope's per-token records (top_n alternatives, entropy, the MTP module's
 * prediction) against a full forward over prompt + completion. */
static void check_inspector(r1_model *m)
{
    int32_t p0[3] = {5, 6, 7}, p1[5] = {40, 41, 42, 43, 44};
    const int32_t *ps[2] = {p0, p1};
    int lens[2] = {3, 5};
    r1_gen_cfg c = r1_gen_defaults();
    c.max_tokens = 24, c.top_n = 5, c.mtp_predict = 1, c.temperature = 0.9f, c.seed = 11;
    inslog lg;
    memset(&lg, 0, sizeof lg);
    r1_observer o = {.token = on_inspect, .user = &lg};
    r1_gen_result *res = NULL;
    r1_error err = {0};
    ok(r1_generate(m, ps, lens, 2, &c, &o, &res, &err) == R1_OK, "generation with top_n 5 and "
       "mtp_predict: %s", err.msg);
    int V = r1_model_config(m)->vocab_size, bad_top = 0, bad_ent = 0, bad_mtp = 0, ties = 0;
    double worst_p = 0, worst_e = 0, worst_m = 0;
    for (int r = 0; r < 2; r++) {
        const r1_gen_row *o2 = &res->row[r];
        int T = lens[r] + o2->n;
        int32_t seq[64];
        memcpy(seq, ps[r], sizeof(int32_t) * lens[r]);
        memcpy(seq + lens[r], o2->tokens, sizeof(int32_t) * o2->n);
        r1_model_forward(m, seq, 1, T, NULL, NULL, NULL);
        const float *lo = r1_model_logits(m), *ml = r1_model_mtp_logits(m, 1);
        for (int i = 0; i < o2->n; i++) {
            int pos = lens[r] + i;
            const float *x = lo + (size_t)(pos - 1) * V;
            double mx = x[0], sum = 0, h = 0;
            for (int v = 1; v < V; v++)
                mx = x[v] > mx ? x[v] : mx;
            for (int v = 0; v < V; v++)
                sum += exp(x[v] - mx);
            for (int v = 0; v < V; v++) {
                double q = exp(x[v] - mx) / sum;
                h -= q > 0 ? q * log(q) : 0;
            }
            for (int j = 0; j < 5; j++) {
                int id = o2->top_ids[i * 5 + j];
                double q = exp(x[id] - mx) / sum;
                worst_p = fmax(worst_p, fabs(q - o2->top_p[i * 5 + j]));
                int rank = 0; /* tokens strictly more likely than id */
                for (int v = 0; v < V; v++)
                    rank += x[v] > x[id] + 1e-5f;
                bad_top += rank > j || (j && o2->top_p[i * 5 + j] > o2->top_p[i * 5 + j - 1]);
            }
            worst_e = fmax(worst_e, fabs(h - o2->entropy[i]));
            bad_ent += !(o2->entropy[i] >= 0 && o2->entropy[i] <= log(V) + 1e-4);
            /* MTP row pos-1 reads (h_{pos-1}, t_pos) and predicts t_{pos+1} */
            const float *y = ml + (size_t)(pos - 1) * V;
            int best = 0, second = -1;
            for (int v = 1; v < V; v++)
                if (y[v] > y[best])
                    second = best, best = v;
                else if (second < 0 || y[v] > y[second])
                    second = v;
            if (y[best] - y[second] < 1e-4f)
                ties++;
            else
                bad_mtp += o2->mtp_ids[i] != best;
            worst_m = fmax(worst_m, fabs(expf(test_log_softmax(y, V, best)) - o2->mtp_p[i]));
        }
    }
    ok(!bad_top, "the top 5 are the 5 most likely tokens of the full forward, in order (%d bad)",
       bad_top);
    ok(worst_p < 2e-5, "their probabilities equal the forward's softmax (worst %.2g)", worst_p);
    ok(!bad_ent && worst_e < 1e-4, "the entropy equals the forward's (worst %.2g)", worst_e);
    ok(!bad_mtp && worst_m < 1e-4, "the MTP prediction of every token is the argmax of the "
       "forward's MTP logits at the position before it (%d wrong, %d near ties, worst p %.2g)",
       bad_mtp, ties, worst_m);
    int same = lg.n == res->row[0].n && lg.top_n == 5 && lg.mtp_known == lg.n && !lg.bad_order;
    for (int i = 0; same && i < lg.n; i++)
        same = !memcmp(lg.top[i], res->row[0].top_ids + i * 5, sizeof(int32_t) * 5) &&
               lg.ent[i] == res->row[0].entropy[i] && lg.mtp[i] == res->row[0].mtp_ids[i];
    ok(same, "every token's event, in order, carries its alternatives, entropy and MTP "
       "prediction (%d events)", lg.n);
    /* speculative decoding (greedy) keeps the same records */
    c.temperature = 0;
    r1_gen_result *plain = NULL, *spec = NULL;
    r1_generate(m, ps, lens, 2, &c, NULL, &plain, NULL);
    c.speculative = 1;
    r1_generate(m, ps, lens, 2, &c, NULL, &spec, NULL);
    int agree = plain && spec;
    double worst = 0;
    for (int r = 0; agree && r < 2; r++) {
        const r1_gen_row *a = &plain->row[r], *b = &spec->row[r];
        agree = a->n == b->n && !memcmp(a->tokens, b->tokens, sizeof(int32_t) * a->n) &&
                !memcmp(a->top_ids, b->top_ids, sizeof(int32_t) * 5 * a->n) &&
                !memcmp(a->mtp_ids, b->mtp_ids, sizeof(int32_t) * a->n);
        for (int i = 0; agree && i < a->n; i++)
            worst = fmax(worst, fabs(a->mtp_p[i] - b->mtp_p[i]));
    }
    ok(agree && worst < 1e-4, "speculative greedy decoding records the same alternatives and "
       "MTP predictions (worst p %.2g)", worst);
    r1_gen_result_free(plain);
    r1_gen_result_free(spec);
    r1_gen_result_free(res);
    c = r1_gen_defaults();
    c.top_n = R1_TOP_MAX + 1;
    res = NULL;
    is_int(r1_generate(m, ps, lens, 1, &c, NULL, &res, &err), R1_EINVAL, "top_n past the limit");
    like(err.msg, "top_n is 33; expected 0 (off) to 32", "says so");
}

/* Ranks of each generated token under the full forward: checks filters and model log-probs. */
static void check_filters(r1_model *m)
{
    int32_t prompt[4] = {10, 11, 12, 13};
    int V = r1_model_config(m)->vocab_size;
    r1_gen_cfg c = r1_gen_defaults();
    c.temperature = 1.5f, c.max_tokens = 40;
    int worst_k = 0, k_ok = 1, p_ok = 1, lp_ok = 1;
    for (int trial = 0; trial < 2; trial++) {
        c.top_k = trial == 0 ? 3 : 0;
        c.top_p = trial == 0 ? 1 : 0.5f;
        c.seed = 42 + trial;
        r1_gen_result *res = gen1(m, prompt, 4, &c);
        r1_gen_row *o = &res->row[0];
        int T = 4 + o->n;
        int32_t *seq = malloc(sizeof(int32_t) * T);
        memcpy(seq, prompt, sizeof prompt);
        memcpy(seq + 4, o->tokens, sizeof(int32_t) * o->n);
        r1_model_forward(m, seq, 1, T, NULL, NULL, NULL);
        const float *lg = r1_model_logits(m);
        for (int i = 0; i < o->n; i++) {
            const float *z = lg + (size_t)(3 + i) * V;
            int t = o->tokens[i], rank = 0;
            double mx = z[0], sum = 0, above = 0;
            for (int v = 1; v < V; v++)
                mx = fmax(mx, z[v]);
            for (int v = 0; v < V; v++)
                sum += exp((z[v] - mx) / c.temperature);
            for (int v = 0; v < V; v++)
                if (z[v] > z[t]) {
                    rank++;
                    above += exp((z[v] - mx) / c.temperature) / sum;
                }
            if (trial == 0) {
                k_ok &= rank < 3;
                worst_k = rank > worst_k ? rank : worst_k;
            } else {
                p_ok &= above < 0.5; /* the mass before t is below top_p */
            }
            double s1 = 0; /* the plain model: temperature 1, no filter */
            for (int v = 0; v < V; v++)
                s1 += exp(z[v] - mx);
            double lsm = z[t] - mx - log(s1);
            lp_ok &= fabs(lsm - o->logprobs_model[i]) < 1e-4;
        }
        free(seq);
        r1_gen_result_free(res);
    }
    ok(k_ok, "top-k 3 never emits a token outside the top 3 (worst rank %d)", worst_k);
    ok(p_ok, "top-p 0.5 never emits a token outside the nucleus");
    ok(lp_ok, "the model log-prob of every token equals the full forward's log-softmax");
}

/* Chi-square homogeneity of two histograms (cells pooled until both expectations >= 5). */
static double chi2(const int *a, const int *b, int n, int *df)
{
    double na = 0, nb = 0;
    for (int i = 0; i < n; i++)
        na += a[i], nb += b[i];
    double x2 = 0, ca = 0, cb = 0;
    int cells = 0;
    for (int i = 0; i < n; i++) {
        ca += a[i], cb += b[i];
        double tot = ca + cb;
        if (tot * na / (na + nb) >= 5 && tot * nb / (na + nb) >= 5) {
            double ea = tot * na / (na + nb), eb = tot * nb / (na + nb);
            x2 += (ca - ea) * (ca - ea) / ea + (cb - eb) * (cb - eb) / eb;
            cells++;
            ca = cb = 0;
        }
    }
    *df = cells - 1;
    return x2;
}

int main(void)
{
    r1_set_threads(1);
    r1_model *m = random_tiny(3, 0.2f);
    r1_gen_cfg c = r1_gen_defaults();
    c.max_tokens = 30;

    /* batched rows = rows alone (greedy), rows with different prompt lengths */
    int32_t p0[3] = {5, 6, 7}, p1[7] = {40, 41, 42, 43, 44, 45, 46}, p2[1] = {9};
    const int32_t *ps[3] = {p0, p1, p2};
    int lens[3] = {3, 7, 1};
    r1_gen_result *all = NULL;
    r1_error err = {0};
    ok(r1_generate(m, ps, lens, 3, &c, NULL, &all, &err) == R1_OK, "batched generation");
    int same = 1;
    for (int r = 0; r < 3; r++) {
        r1_gen_result *one = gen1(m, ps[r], lens[r], &c);
        same &= same_tokens(&all->row[r], &one->row[0]);
        r1_gen_result_free(one);
    }
    ok(same, "each batched row (prompts of 3, 7 and 1 tokens) equals the row alone");
    is_int(all->row[0].n, 30, "greedy runs to max_tokens");
    is_int(all->row[0].finish, R1_FINISH_LENGTH, "and says so");
    r1_gen_result_free(all);

    /* a prompt repeated further down the batch (prefilled once, its cache copied) starts from
     * its own last logits, not from those of the prompt prefilled in between: A, B, A, and
     * with the MTP module's predictions (its hidden state copied too) */
    {
        const int32_t *aba[3] = {p0, p1, p0}; /* B at least as long: the scratch all B's */
        int abal[3] = {3, 7, 3};
        for (int mtp = 0; mtp < 2; mtp++) {
            r1_gen_cfg cm = c;
            cm.mtp_predict = mtp;
            r1_gen_result *r3 = NULL, *alone = NULL;
            ok(r1_generate(m, aba, abal, 3, &cm, NULL, &r3, &err) == R1_OK, "A, B, A generates");
            r1_generate(m, &aba[0], &abal[0], 1, &cm, NULL, &alone, NULL);
            ok(same_tokens(&r3->row[2], &alone->row[0]) && same_tokens(&r3->row[0], &r3->row[2]),
               mtp ? "with MTP predictions, the repeated prompt's row equals the prompt alone"
                   : "the repeated prompt's row (A, B, A) equals the prompt alone");
            r1_gen_result_free(r3);
            r1_gen_result_free(alone);
        }
    }

    /* seeded sampling */
    c.temperature = 1.0f, c.seed = 7;
    r1_gen_result *a = gen1(m, p0, 3, &c), *b = gen1(m, p0, 3, &c);
    c.seed = 8;
    r1_gen_result *d = gen1(m, p0, 3, &c);
    ok(same_tokens(&a->row[0], &b->row[0]), "the same seed gives the same text");
    ok(!same_tokens(&a->row[0], &d->row[0]), "another seed gives another text");
    r1_gen_result_free(a), r1_gen_result_free(b), r1_gen_result_free(d);
    check_filters(m);
    check_inspector(m);

    /* stops: a stop token, a stop sequence, the callback */
    c = r1_gen_defaults();
    c.max_tokens = 30;
    r1_gen_result *g = gen1(m, p0, 3, &c);
    int32_t stop_tok = g->row[0].tokens[4];
    int at = 0;
    while (g->row[0].tokens[at] != stop_tok)
        at++;
    c.stop_ids = &stop_tok, c.n_stop_ids = 1;
    r1_gen_result *h = gen1(m, p0, 3, &c);
    is_int(h->row[0].n, at + 1, "generation stops after the first stop token (kept)");
    is_int(h->row[0].finish, R1_FINISH_STOP, "finish reason: stop");
    const int32_t *seq = g->row[0].tokens + 2;
    int sl = 3;
    c.n_stop_ids = 0, c.stop_seqs = &seq, c.stop_lens = &sl, c.n_stop_seqs = 1;
    r1_gen_result *h2 = gen1(m, p0, 3, &c);
    ok(h2->row[0].n <= 5 && h2->row[0].n >= 3 &&
           !memcmp(h2->row[0].tokens + h2->row[0].n - 3, seq, 12),
       "a stop sequence ends generation right after it");
    r1_gen_result_free(h), r1_gen_result_free(h2), r1_gen_result_free(g);
    c = r1_gen_defaults();
    c.max_tokens = 30;
    evlog lg = {0, 0, 0, 0};
    r1_gen_result *ev = NULL;
    const int32_t *pp = p0;
    int l3 = 3;
    r1_observer o = {.token = on_token, .user = &lg};
    r1_generate(m, &pp, &l3, 1, &c, &o, &ev, NULL);
    is_int(lg.events, 30, "one event per generated token");
    is_int(lg.bad_order, 0, "events come in order, at positions after the prompt");
    double lps = 0;
    for (int i = 0; i < 30; i++)
        lps += ev->row[0].logprobs_model[i];
    is_float(lg.lp_sum, lps, 1e-4, "events carry the tokens' log-probs");
    ok(ev->n_moe == 2 && ev->K == 4, "routing of the 2 MoE layers, top-4");
    int rsorted = 1;
    for (int i = 0; i < 30 * 2; i++)
        for (int k = 1; k < 4; k++)
            rsorted &= ev->row[0].experts[i * 4 + k] > ev->row[0].experts[i * 4 + k - 1];
    ok(rsorted, "every token's experts are recorded, ascending");
    r1_gen_result_free(ev);
    lg = (evlog){0, 0, 5, 0};
    is_int(r1_generate(m, &pp, &l3, 1, &c, &o, &ev, &err), R1_ECANCELED,
           "the callback cancels");
    ok(ev && ev->row[0].finish == R1_FINISH_CANCEL && ev->row[0].n <= 6,
       "and the tokens so far are kept");
    r1_gen_result_free(ev);

    /* speculative greedy = plain greedy */
    int same_spec = 1;
    long drafted = 0, accepted = 0;
    for (int trial = 0; trial < 3; trial++) {
        r1_gen_cfg cs = r1_gen_defaults();
        cs.max_tokens = 40;
        r1_gen_result *plain = NULL, *spec = NULL;
        r1_generate(m, ps, lens, 3, &cs, NULL, &plain, NULL);
        cs.speculative = 1;
        r1_generate(m, ps, lens, 3, &cs, NULL, &spec, NULL);
        for (int r = 0; r < 3; r++)
            same_spec &= same_tokens(&plain->row[r], &spec->row[r]);
        drafted += spec->drafted, accepted += spec->accepted;
        r1_gen_result_free(plain), r1_gen_result_free(spec);
    }
    ok(same_spec, "speculative greedy output is identical to plain greedy");
    diag("random model: %ld of %ld drafts accepted", accepted, drafted);

    /* speculative sampling keeps the distribution: the 2nd and 3rd tokens of 2000 rows */
    enum { ROWS = 500, REPS = 4 };
    int V = r1_model_config(m)->vocab_size;
    int *hp = calloc(2 * V, sizeof(int)), *hs = calloc(2 * V, sizeof(int));
    const int32_t *rp[ROWS];
    int rl[ROWS];
    int32_t prompt[2] = {20, 21};
    for (int i = 0; i < ROWS; i++)
        rp[i] = prompt, rl[i] = 2;
    long sd = 0, sa = 0;
    for (int rep = 0; rep < REPS; rep++)
        for (int spec = 0; spec <= 1; spec++) {
            r1_gen_cfg cs = r1_gen_defaults();
            cs.max_tokens = 3, cs.temperature = 1.0f, cs.seed = 1000 + rep, cs.speculative = spec;
            r1_gen_result *res = NULL;
            r1_generate(m, rp, rl, ROWS, &cs, NULL, &res, NULL);
            for (int i = 0; i < ROWS; i++)
                for (int j = 1; j < 3; j++)
                    (spec ? hs : hp)[(j - 1) * V + res->row[i].tokens[j]]++;
            if (spec)
                sd += res->drafted, sa += res->accepted;
            r1_gen_result_free(res);
        }
    for (int j = 0; j < 2; j++) {
        int df;
        double x2 = chi2(hp + j * V, hs + j * V, V, &df);
        /* the 0.1% critical value of chi-square, Wilson-Hilferty approximation */
        double z = 3.09, crit = df * pow(1 - 2.0 / (9 * df) + z * sqrt(2.0 / (9 * df)), 3);
        ok(df > 5 && x2 < crit,
           "speculative sampling: token %d has the plain sampler's distribution "
           "(chi2 %.1f, df %d, 0.1%% critical %.1f)",
           j + 2, x2, df, crit);
    }
    diag("sampling at temperature 1: %ld of %ld drafts accepted", sa, sd);
    ok(sd > 0 && sa > 0 && sa < sd, "drafts were both accepted and rejected");
    free(hp), free(hs);

    /* bad input */
    int zero = 0, one = 1, big = 2;
    int32_t outside = 128;
    r1_gen_result *res = NULL;
    is_int(r1_generate(m, &pp, &zero, 1, NULL, NULL, &res, &err), R1_EINVAL,
           "an empty prompt");
    like(err.msg, "prompt 0 is empty", "says so");
    const int32_t *po = &outside;
    is_int(r1_generate(m, &po, &one, 1, NULL, NULL, &res, &err), R1_EINVAL,
           "a token out of range");
    like(err.msg, "token 0 of prompt 0 is 128", "names it");
    r1_gen_cfg cl = r1_gen_defaults();
    cl.max_tokens = 1023;
    is_int(r1_generate(m, &pp, &big, 1, &cl, NULL, &res, &err), R1_EINVAL,
           "max tokens past max_position_embeddings");
    like(err.msg, "max_position_embeddings (1024)", "names the limit");
    r1_model_free(m);
    char dir[4096];
    const char *src = getenv("top_srcdir");
    snprintf(dir, sizeof dir, "%s/tests/data/tiny_dense", src ? src : ".");
    r1_model_load(&m, dir, NULL);
    cl = r1_gen_defaults();
    cl.speculative = 1, cl.max_tokens = 4;
    int32_t small_p = 3;
    const int32_t *sp = &small_p;
    is_int(r1_generate(m, &sp, &one, 1, &cl, NULL, &res, &err), R1_EUNSUPPORTED,
           "speculation without an MTP module");
    like(err.msg, "needs an MTP module", "says so");
    ok(res == NULL, "failed calls return no result");
    cl.speculative = 0, cl.mtp_predict = 1;
    is_int(r1_generate(m, &sp, &one, 1, &cl, NULL, &res, &err), R1_EUNSUPPORTED,
           "MTP predictions without an MTP module");
    like(err.msg, "mtp_predict needs an MTP module", "says so");
    r1_model_free(m);
    return done_testing();
}
