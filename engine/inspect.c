/* inspect.c — the reasoning microscope's engine side (r1_inspect.h): the logit lens,
 * attention weights, activation patching and the routing difference of two models, all read
 * off (or steered through) r1_model_forward's kept activations.
 *
 * Ownership: outputs belong to the caller; scratch is freed before returning.  Errors: see
 * r1_inspect.h; the model's last forward is replaced by every call. */
#include <config.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"
#include "r1_inspect.h"
#include "r1_kernels.h"
#include "sample.h"

int r1_inspect_sites(const r1_model *m)
{
    return m->L + 1;
}

r1_status r1_inspect_forward(r1_model *m, const int32_t *tokens, int B, int T,
                             const r1_fwd_opts *opts, r1_error *err)
{
    int saved = m->no_load_count; /* looking inside is not training: the loads stay */
    m->no_load_count = 1;
    r1_status s = r1_model_forward(m, tokens, B, T, opts, NULL, err);
    m->no_load_count = saved;
    return s;
}

/* The residual stream at site i of the last forward: [B*T, C] (borrowed). */
static const float *site_resid(const r1_model *m, int i)
{
    return i < m->L ? m->acts[i].x : m->x_final;
}

static r1_status check_tokens(const r1_model *m, const char *what, const int32_t *tokens, int T,
                              r1_error *err)
{
    const r1_config *c = &m->cfg;
    if (!tokens || T < 1)
        return r1_error_set(err, R1_EINVAL, "%s: no tokens", what);
    if (T > c->max_position_embeddings)
        return r1_error_set(err, R1_EINVAL, "%s: %d tokens exceed max_position_embeddings (%d)",
                            what, T, c->max_position_embeddings);
    for (int t = 0; t < T; t++)
        if (tokens[t] < 0 || tokens[t] >= c->vocab_size)
            return r1_error_set(err, R1_EINVAL, "%s: token %d is %d; expected 0..%d", what, t,
                                (int)tokens[t], c->vocab_size - 1);
    return R1_OK;
}

/* p[V] = softmax(x[V]) in double. */
static void softmax_row(float *p, const float *x, int V)
{
    float mx = x[0];
    for (int v = 1; v < V; v++)
        mx = x[v] > mx ? x[v] : mx;
    double sum = 0;
    for (int v = 0; v < V; v++)
        sum += exp((double)(x[v] - mx));
    for (int v = 0; v < V; v++)
        p[v] = (float)(exp((double)(x[v] - mx)) / sum);
}

r1_status r1_inspect_lens(r1_model *m, const int32_t *tokens, int T, int pos, float *probs,
                          float *mtp, int *has_mtp, r1_error *err)
{
    const r1_config *c = &m->cfg;
    int C = c->hidden_size, V = c->vocab_size;
    if (has_mtp)
        *has_mtp = 0;
    r1_status s = check_tokens(m, "lens", tokens, T, err);
    if (s != R1_OK)
        return s;
    if (pos < 0 || pos >= T)
        return r1_error_set(err, R1_EINVAL, "lens: position %d is outside the %d tokens "
                            "(0..%d)", pos, T, T - 1);
    int want_mtp = mtp && m->D > 0 && pos >= 1;
    r1_fwd_opts o = r1_fwd_defaults();
    o.no_mtp = !want_mtp;
    s = r1_inspect_forward(m, tokens, 1, T, &o, err);
    if (s != R1_OK)
        return s;
    float *hn = malloc(sizeof(float) * C), *lg = malloc(sizeof(float) * V), rstd;
    if (!hn || !lg) {
        free(hn), free(lg);
        return r1_error_set(err, R1_ENOMEM, "lens: out of memory");
    }
    for (int i = 0; i <= m->L; i++) {
        const float *x = site_resid(m, i) + (size_t)pos * C;
        r1_rmsnorm_fwd(hn, &rstd, x, m->final_norm, 1, C, c->rms_norm_eps);
        r1_matmul_fwd(lg, hn, m->head, 1, C, V, 0);
        softmax_row(probs + (size_t)i * V, lg, V);
    }
    if (want_mtp) { /* MTP row pos-1 reads (h_{pos-1}, t_pos) and predicts t_{pos+1} */
        softmax_row(mtp, r1_model_mtp_logits(m, 1) + (size_t)(pos - 1) * V, V);
        if (has_mtp)
            *has_mtp = 1;
    }
    free(hn), free(lg);
    return R1_OK;
}

r1_status r1_inspect_attention(r1_model *m, const int32_t *tokens, int T, int layer, float *out,
                               r1_error *err)
{
    const r1_config *c = &m->cfg;
    int H = c->num_attention_heads;
    r1_status s = check_tokens(m, "attention", tokens, T, err);
    if (s != R1_OK)
        return s;
    int top = m->D > 0 ? m->L : m->L - 1;
    if (layer < 0 || layer > top)
        return r1_error_set(err, R1_EINVAL, "attention: layer %d does not exist; expected "
                            "0..%d%s", layer, top, m->D > 0 ? " (the last is the MTP module's)"
                            : "");
    int Tl = layer < m->L ? T : T - 1;
    if (Tl < 1)
        return r1_error_set(err, R1_EINVAL, "attention: the MTP layer needs at least 2 tokens");
    r1_fwd_opts o = r1_fwd_defaults();
    o.no_mtp = layer < m->L;
    s = r1_inspect_forward(m, tokens, 1, T, &o, err);
    if (s != R1_OK)
        return s;
    /* the forward keeps P[B, H, T', T'] with the masked part written as 0 */
    const float *P = m->acts[layer].P;
    for (size_t i = 0; i < (size_t)H * Tl * Tl; i++) {
        int t = (int)(i / Tl % Tl), u = (int)(i % Tl);
        out[i] = u <= t ? P[i] : 0;
    }
    return R1_OK;
}

/* lp of each of B rows of the last forward: sum over t = Tp..T-1 of log p(tok[t]). */
static void answer_lp(const r1_model *m, const int32_t *tok, int B, int T, int Tp, double *lp)
{
    int V = m->cfg.vocab_size;
    const float *lo = r1_model_logits(m);
    for (int b = 0; b < B; b++) {
        double s = 0;
        for (int t = Tp; t < T; t++) {
            const float *x = lo + ((size_t)b * T + t - 1) * V;
            float mx = x[0];
            for (int v = 1; v < V; v++)
                mx = x[v] > mx ? x[v] : mx;
            double z = 0;
            for (int v = 0; v < V; v++)
                z += exp((double)(x[v] - mx));
            s += (double)(x[tok[t]] - mx) - log(z);
        }
        lp[b] = s;
    }
}

#define PATCH_ROWS 16 /* patched copies per forward */

/* lp[B] of B copies of the corrupted sequence batch[B, T] run with the intervention p. */
static r1_status patched_lp(r1_model *m, const r1__patch *p, const int32_t *batch, int B, int T,
                            int Tp, float *lp, r1_error *err)
{
    r1_fwd_opts o = r1_fwd_defaults();
    o.no_mtp = 1;
    double lps[PATCH_ROWS];
    m->patch = p;
    r1_status s = r1_inspect_forward(m, batch, B, T, &o, err);
    m->patch = NULL;
    if (s != R1_OK)
        return s;
    answer_lp(m, batch, B, T, Tp, lps);
    for (int b = 0; b < B; b++)
        lp[b] = (float)lps[b];
    return r1_interrupted() ? r1_error_set(err, R1_ECANCELED, "patch: interrupted") : R1_OK;
}

/* The checks both kinds of patching make of their clean / corrupt pair. */
static r1_status check_pair(const r1_model *m, const int32_t *clean, const int32_t *corrupt,
                            int T, int Tp, r1_error *err)
{
    r1_status s = check_tokens(m, "patch: the clean sequence", clean, T, err);
    if (s == R1_OK)
        s = check_tokens(m, "patch: the corrupted sequence", corrupt, T, err);
    if (s != R1_OK)
        return s;
    if (Tp < 1 || Tp >= T)
        return r1_error_set(err, R1_EINVAL, "patch: the prompt has %d of the %d tokens; "
                            "expected 1..%d (the rest is the answer scored)", Tp, T, T - 1);
    for (int t = Tp; t < T; t++)
        if (clean[t] != corrupt[t])
            return r1_error_set(err, R1_EINVAL, "patch: the answers differ at token %d (%d "
                                "against %d); both prompts must be followed by the same answer",
                                t, (int)clean[t], (int)corrupt[t]);
    return R1_OK;
}

/* The routed experts' contributions to MoE layer l's output in the last forward (one row):
 * out[E, Tp, C] gets wts * expert output at positions 0..Tp-1, zeros where not picked. */
static void contributions(const r1_model *m, int l, int Tp, float *out)
{
    const layer_act *a = &m->acts[l];
    int C = m->cfg.hidden_size, K = m->cfg.num_experts_per_tok;
    memset(out, 0, sizeof(float) * (size_t)m->cfg.n_routed_experts * Tp * C);
    for (int slot = 0; slot < a->N * K; slot++) {
        int n = a->slot_tok[slot], k = a->slot_k[slot];
        if (n >= Tp)
            continue;
        int e = a->sel[(size_t)n * K + k];
        float wt = a->wts[(size_t)n * K + k];
        const float *eo = a->eo + (size_t)slot * C;
        float *dst = out + ((size_t)e * Tp + n) * C;
        for (int i = 0; i < C; i++)
            dst[i] = wt * eo[i];
    }
}

r1_status r1_inspect_patch(r1_model *m, const int32_t *clean, const int32_t *corrupt, int T,
                           int Tp, float *lp, double *lp_clean, double *lp_corrupt,
                           int (*progress)(void *user, int done, int total), void *user,
                           r1_error *err)
{
    int C = m->cfg.hidden_size, S = m->L + 1;
    r1_status s = check_pair(m, clean, corrupt, T, Tp, err);
    if (s != R1_OK)
        return s;
    r1_fwd_opts o = r1_fwd_defaults();
    o.no_mtp = 1;
    float *saved = malloc(sizeof(float) * (size_t)S * Tp * C);  /* clean residuals */
    float *base = malloc(sizeof(float) * (size_t)S * T * C);    /* corrupt residuals */
    int32_t *batch = malloc(sizeof(int32_t) * (size_t)PATCH_ROWS * T);
    float *vec = malloc(sizeof(float) * (size_t)PATCH_ROWS * C);
    int pos[PATCH_ROWS];
    double lps[PATCH_ROWS];
    if (!saved || !batch || !vec || !base) {
        free(saved), free(batch), free(vec), free(base);
        return r1_error_set(err, R1_ENOMEM, "patch: out of memory");
    }
    s = r1_inspect_forward(m, clean, 1, T, &o, err);
    if (s == R1_OK) {
        answer_lp(m, clean, 1, T, Tp, lps);
        *lp_clean = lps[0];
        for (int i = 0; i < S; i++)
            memcpy(saved + (size_t)i * Tp * C, site_resid(m, i), sizeof(float) * Tp * C);
        s = r1_inspect_forward(m, corrupt, 1, T, &o, err);
    }
    if (s == R1_OK) {
        answer_lp(m, corrupt, 1, T, Tp, lps);
        *lp_corrupt = lps[0];
        for (int i = 0; i < S; i++) /* the layers before a site need not run again */
            memcpy(base + (size_t)i * T * C, site_resid(m, i), sizeof(float) * T * C);
    }
    for (int b = 0; b < PATCH_ROWS; b++)
        memcpy(batch + (size_t)b * T, corrupt, sizeof(int32_t) * T);
    for (int i = 0; i < S && s == R1_OK; i++) {
        for (int p0 = 0; p0 < Tp && s == R1_OK; p0 += PATCH_ROWS) {
            int B = Tp - p0 < PATCH_ROWS ? Tp - p0 : PATCH_ROWS;
            for (int b = 0; b < B; b++) {
                pos[b] = p0 + b;
                memcpy(vec + (size_t)b * C, saved + ((size_t)i * Tp + p0 + b) * C,
                       sizeof(float) * C);
            }
            r1__patch patch = {i, pos, vec, base + (size_t)i * T * C};
            s = patched_lp(m, &patch, batch, B, T, Tp, lp + (size_t)i * Tp + p0, err);
        }
        if (s == R1_OK && progress && progress(user, i + 1, S))
            s = r1_error_set(err, R1_ECANCELED, "patch: canceled");
    }
    free(saved), free(batch), free(vec), free(base);
    return s;
}

r1_status r1_inspect_patch_experts(r1_model *m, const int32_t *clean, const int32_t *corrupt,
                                   int T, int Tp, int layer, float *lp, double *lp_clean,
                                   double *lp_corrupt,
                                   int (*progress)(void *user, int done, int total),
                                   void *user, r1_error *err)
{
    int C = m->cfg.hidden_size, E = m->cfg.n_routed_experts;
    r1_status s = check_pair(m, clean, corrupt, T, Tp, err);
    if (s != R1_OK)
        return s;
    if (layer < 0 || layer >= m->L || !m->layers[layer].moe)
        return r1_error_set(err, R1_EINVAL, "patch: layer %d is not a MoE layer of the main "
                            "model (layers %d..%d route to experts)", layer,
                            m->cfg.first_k_dense_replace, m->L - 1);
    r1_fwd_opts o = r1_fwd_defaults();
    o.no_mtp = 1;
    size_t ec = (size_t)E * Tp * C;
    float *cc = malloc(sizeof(float) * ec), *cx = malloc(sizeof(float) * ec);
    float *base = malloc(sizeof(float) * (size_t)T * C);
    int32_t *batch = malloc(sizeof(int32_t) * (size_t)PATCH_ROWS * T);
    float *vec = malloc(sizeof(float) * (size_t)PATCH_ROWS * C);
    int pos[PATCH_ROWS];
    double lps[PATCH_ROWS];
    if (!cc || !cx || !base || !batch || !vec) {
        free(cc), free(cx), free(base), free(batch), free(vec);
        return r1_error_set(err, R1_ENOMEM, "patch: out of memory");
    }
    s = r1_inspect_forward(m, clean, 1, T, &o, err);
    if (s == R1_OK) {
        answer_lp(m, clean, 1, T, Tp, lps);
        *lp_clean = lps[0];
        contributions(m, layer, Tp, cc);
        s = r1_inspect_forward(m, corrupt, 1, T, &o, err);
    }
    if (s == R1_OK) {
        answer_lp(m, corrupt, 1, T, Tp, lps);
        *lp_corrupt = lps[0];
        contributions(m, layer, Tp, cx);
        memcpy(base, site_resid(m, layer + 1), sizeof(float) * T * C);
    }
    for (int b = 0; b < PATCH_ROWS; b++)
        memcpy(batch + (size_t)b * T, corrupt, sizeof(int32_t) * T);
    for (int e = 0; e < E && s == R1_OK; e++) {
        for (int p0 = 0; p0 < Tp && s == R1_OK; p0 += PATCH_ROWS) {
            int B = Tp - p0 < PATCH_ROWS ? Tp - p0 : PATCH_ROWS;
            for (int b = 0; b < B; b++) { /* the layer's output with expert e's part swapped */
                int p = p0 + b;
                const float *r = base + (size_t)p * C;
                const float *xc = cc + ((size_t)e * Tp + p) * C;
                const float *xx = cx + ((size_t)e * Tp + p) * C;
                pos[b] = p;
                for (int i = 0; i < C; i++)
                    vec[(size_t)b * C + i] = r[i] - xx[i] + xc[i];
            }
            r1__patch patch = {layer + 1, pos, vec, base};
            s = patched_lp(m, &patch, batch, B, T, Tp, lp + (size_t)e * Tp + p0, err);
        }
        if (s == R1_OK && progress && progress(user, e + 1, E))
            s = r1_error_set(err, R1_ECANCELED, "patch: canceled");
    }
    free(cc), free(cx), free(base), free(batch), free(vec);
    return s;
}

r1_status r1_inspect_routing_diff(r1_model *a, r1_model *b, const int32_t *tokens, int T,
                                  int from, double *share, int nshare, r1_error *err)
{
    const r1_config *ca = &a->cfg, *cb = &b->cfg;
    if (ca->vocab_size != cb->vocab_size)
        return r1_error_set(err, R1_EINVAL, "routing difference: the models' vocabularies "
                            "differ (%d and %d tokens)", ca->vocab_size, cb->vocab_size);
    r1_status s = check_tokens(a, "routing difference", tokens, T, err);
    if (s == R1_OK)
        s = check_tokens(b, "routing difference", tokens, T, err);
    if (s != R1_OK)
        return s;
    if (from < 0 || from >= T)
        return r1_error_set(err, R1_EINVAL, "routing difference: from %d is outside the %d "
                            "tokens", from, T);
    for (int l = 0; l < nshare; l++)
        share[l] = NAN;
    int L = a->L < b->L ? a->L : b->L;
    int Ka = ca->num_experts_per_tok, Kb = cb->num_experts_per_tok;
    size_t na = 0, nb = 0;
    for (int l = 0; l < L; l++) {
        na += a->layers[l].moe ? (size_t)T * Ka : 0;
        nb += b->layers[l].moe ? (size_t)T * Kb : 0;
    }
    int32_t *ea = malloc(sizeof(int32_t) * (na + 1)), *eb = malloc(sizeof(int32_t) * (nb + 1));
    float *w = malloc(sizeof(float) * (size_t)T * (Ka > Kb ? Ka : Kb) + 1);
    if (!ea || !eb || !w) {
        free(ea), free(eb), free(w);
        return r1_error_set(err, R1_ENOMEM, "routing difference: out of memory");
    }
    r1_fwd_opts o = r1_fwd_defaults();
    o.no_mtp = 1;
    s = r1_inspect_forward(a, tokens, 1, T, &o, err);
    for (int l = 0, off = 0; s == R1_OK && l < L; l++)
        if (a->layers[l].moe) {
            r1_model_routing(a, l, ea + off, w);
            off += T * Ka;
        }
    if (s == R1_OK)
        s = r1_inspect_forward(b, tokens, 1, T, &o, err);
    for (int l = 0, offa = 0, offb = 0; s == R1_OK && l < L; l++) {
        int ma = a->layers[l].moe, mb = b->layers[l].moe;
        if (ma && mb) {
            r1_model_routing(b, l, eb + offb, w);
            int changed = 0;
            for (int t = from; t < T; t++) {
                /* both lists ascending: the sets are equal when the lists are */
                const int32_t *x = ea + offa + (size_t)t * Ka, *y = eb + offb + (size_t)t * Kb;
                changed += Ka != Kb || memcmp(x, y, sizeof(int32_t) * Ka) != 0;
            }
            if (l < nshare)
                share[l] = (double)changed / (T - from);
        }
        offa += ma ? T * Ka : 0;
        offb += mb ? T * Kb : 0;
    }
    free(ea), free(eb), free(w);
    return s;
}

r1_status r1_inspect_mtp_accept(r1_model *m, const int32_t *tokens, int T, int from, long *tries,
                                long *hits, r1_error *err)
{
    r1_status s = check_tokens(m, "mtp acceptance", tokens, T, err);
    if (s != R1_OK)
        return s;
    if (from < 1 || from > T)
        return r1_error_set(err, R1_EINVAL, "mtp acceptance: from %d: expected 1..%d", from, T);
    int D = m->D, V = m->cfg.vocab_size;
    if (D < 1 || T - from < 2)
        return R1_OK; /* no MTP, or no token a draft could guess */
    r1_fwd_opts o = r1_fwd_defaults();
    if ((s = r1_inspect_forward(m, tokens, 1, T, &o, err)) != R1_OK)
        return s;
    const float *lg = r1_model_logits(m);
    for (int i = from - 1; i + 2 < T; i++)
        for (int k = 1; k <= D && i + k + 1 < T; k++) {
            const float *mk = r1_model_mtp_logits(m, k);
            if (!mk)
                break;
            tries[k - 1]++;
            if (r1__argmax(mk + (size_t)i * V, V) != r1__argmax(lg + (size_t)(i + k) * V, V))
                break;
            hits[k - 1]++;
        }
    return R1_OK;
}
