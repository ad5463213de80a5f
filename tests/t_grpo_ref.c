/* t_grpo_ref.c — the GRPO objective against the independent PyTorch implementation
 * (tests/ref/grpo_ref.py).  tests/data/grpo/ holds a batch for the tiny_moe model (3 prompts x
 * a group of 4, completions of 1 to 7 tokens, one zero-variance group), old and reference
 * log-probs moved away from the current ones, and per case (each aggregation, beta = 0 and
 * beta > 0, and the GRPO family's options: GSPO, CISPO, entropy selection and bonus, the
 * off-policy mask, the bias-corrected KL) what PyTorch computed.  Here: the advantages from the
 * rewards (GDPO's decoupled ones too), the per-token log-probs (r1_grpo_logprobs, and lp_now of
 * the objective), then per case the objective, the KL, the clip fraction, the entropy, the
 * tokens kept and completions masked, and the gradient of -J for every parameter (for the
 * family's cases: of the output head and final norm, which read the logits' gradient whole).
 *
 * Errors are max |got - want| / max |want| over the compared values (per tensor for the
 * gradients), so a small quantity is not hidden behind a floor of 1; the objective's error is
 * taken relative to J_scale (see check_case).  Needs no Python: only the committed files. */
#include <config.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "r1_grpo.h"
#include "r1_safetensors.h"
#include "tap.h"

#define TOL 1e-5      /* log-probs, objective, KL, entropy */
#define GRAD_TOL 1e-5 /* every gradient, relative to the largest value of its tensor */

/* max |a - b| / max |b| (0 when both are all zero) */
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

/* Reads a float tensor whole (NULL when absent); *n gets its size. */
static float *read_f32(const r1_st *st, const char *name, size_t *n)
{
    r1_dtype dt;
    int nd;
    int64_t sh[R1_ST_MAXDIM];
    if (r1_st_info(st, name, &dt, &nd, sh, NULL) != R1_OK)
        return NULL;
    size_t total = 1;
    for (int i = 0; i < nd; i++)
        total *= sh[i];
    float *p = malloc(sizeof(float) * (total ? total : 1));
    if (p && r1_st_read_f32(st, name, p, nd, sh, NULL) != R1_OK) {
        free(p);
        return NULL;
    }
    *n = total;
    return p;
}

static int32_t *read_i32(const r1_st *st, const char *name, size_t *n)
{
    r1_dtype dt;
    int nd;
    int64_t sh[R1_ST_MAXDIM];
    if (r1_st_info(st, name, &dt, &nd, sh, NULL) != R1_OK || nd != 1)
        return NULL;
    int32_t *p = malloc(sizeof(int32_t) * (sh[0] ? sh[0] : 1));
    if (p && r1_st_read_i32(st, name, p, 1, sh, NULL) != R1_OK) {
        free(p);
        return NULL;
    }
    *n = (size_t)sh[0];
    return p;
}

/* One scalar "<case>.<what>" of the fixture (NAN when absent). */
static double scalar(const r1_st *st, const char *cs, const char *what)
{
    char name[128];
    size_t n = 0;
    snprintf(name, sizeof name, "%s.%s", cs, what);
    float *v = read_f32(st, name, &n);
    double x = v && n == 1 ? v[0] : NAN;
    free(v);
    return x;
}

/* |got - want| / |want| (absolute when want is 0) */
static double rel1(double got, double want)
{
    return want != 0 ? fabs(got - want) / fabs(want) : fabs(got - want);
}

/* The batch and what every case shares. */
typedef struct {
    r1_model *m;
    r1_st *ex;
    r1_grpo_batch b;
    const int32_t **seqs;
    int32_t *tokens, *plens, *lens;
    float *lp, *lp_old, *lp_ref, *lp_samp, *adv_f[2]; /* adv_f[std_scale] */
    double *adv[2];
    size_t ntok;
} fixture;

/* The MTP module (layers >= num_hidden_layers) takes no part in the objective. */
static int is_mtp_param(const r1_model *m, const char *name)
{
    int l;
    return sscanf(name, "model.layers.%d.", &l) == 1 && l >= r1_model_config(m)->num_hidden_layers;
}

/* Every gradient of the case against the fixture, the worst tensor named.  Without the MTP
 * loss the MTP module's tensors have no reference; their gradient must be exactly zero. */
static void check_grads(fixture *f, const char *cs, int with_mtp, int head_only)
{
    r1_model *m = f->m;
    const float *g = r1_model_grads(m);
    int bad = 0, compared = 0, missing = 0, stray = 0;
    double worst = 0, gmax = 0;
    const char *worst_name = "";
    for (int i = 0; i < r1_model_nparams(m); i++) {
        const r1_param *p = r1_model_param(m, i);
        char name[300];
        size_t n = 0;
        snprintf(name, sizeof name, "%s.grad.%s", cs, p->name);
        float *want = read_f32(f->ex, name, &n);
        if (!want) {
            if (!head_only && (with_mtp || !is_mtp_param(m, p->name))) {
                missing++;
                diag("%s: no reference", name);
            }
            for (size_t k = 0; k < p->numel; k++)
                stray += is_mtp_param(m, p->name) && g[p->offset + k] != 0;
            continue;
        }
        if (n != p->numel) {
            bad++;
            diag("%s: %zu values, the model has %zu", name, n, p->numel);
            free(want);
            continue;
        }
        for (size_t k = 0; k < n; k++)
            gmax = fabs(want[k]) > gmax ? fabs(want[k]) : gmax;
        double e = rel_err(g + p->offset, want, n);
        if (e > worst) {
            worst = e;
            worst_name = p->name;
        }
        bad += e > GRAD_TOL;
        compared++;
        free(want);
    }
    ok(bad == 0 && missing == 0 && compared >= (head_only ? 2 : 10) && gmax > 1e-3,
       "%s: every gradient of the loss matches (%d tensors, worst rel %.2e at %s; |grad| up to "
       "%.3g)", cs,
       compared, worst, worst_name, gmax);
    if (!with_mtp && !head_only)
        ok(stray == 0, "%s: the MTP module, which the objective does not use, has zero gradient",
           cs);
}

static void check_case(fixture *f, const json_t *jc)
{
    const char *cs = json_string_value(json_object_get(jc, "name"));
    const char *agg = json_string_value(json_object_get(jc, "agg"));
    static const char *const aggs[3] = {"seq", "token", "const"}; /* in r1_grpo_agg order */
    int a = 0;
    while (agg && a < 3 && strcmp(agg, aggs[a]) != 0)
        a++;
    if (!ok(cs && a < 3, "a case with a name and an aggregation (seq, token or const)"))
        return;
    r1_grpo_cfg c = r1_grpo_defaults();
    c.agg = (r1_grpo_agg)a;
    c.beta = (float)json_number_value(json_object_get(jc, "beta"));
    c.eps_low = (float)json_number_value(json_object_get(jc, "eps_low"));
    c.eps_high = (float)json_number_value(json_object_get(jc, "eps_high"));
    c.max_new = (int)json_integer_value(json_object_get(jc, "max_new"));
    c.std_scale = (int)json_integer_value(json_object_get(jc, "std_scale"));
    c.micro = (int)json_integer_value(json_object_get(jc, "micro"));
    c.mtp_lambda = (float)json_number_value(json_object_get(jc, "mtp_lambda")); /* absent: 0 */
    /* the family's options (absent in a case: their defaults) */
    const char *loss = json_string_value(json_object_get(jc, "loss"));
    const char *level = json_string_value(json_object_get(jc, "importance_sampling_level"));
    if (loss && !strcmp(loss, "cispo"))
        c.agg = R1_GRPO_CISPO; /* a token mean, as the case's "token" says */
    c.is_level = level && !strcmp(level, "sequence");
    const json_t *v = json_object_get(jc, "top_entropy_quantile");
    c.top_entropy_quantile = v ? (float)json_number_value(v) : 1.0f;
    c.entropy_coef = (float)json_number_value(json_object_get(jc, "entropy_coef"));
    c.off_policy_mask = (float)json_number_value(json_object_get(jc, "off_policy_mask_threshold"));
    c.bias_correction_kl = json_is_true(json_object_get(jc, "use_bias_correction_kl"));
    f->b.adv = f->adv[c.std_scale ? 1 : 0];
    f->b.lp_samp = f->lp_samp;

    float *lp_now = malloc(sizeof(float) * f->ntok);
    r1_grpo_obj o;
    r1_error err = {0};
    r1_model_zero_grad(f->m);
    /* as the trainer calls it: no reference log-probs when beta = 0 */
    r1_status s = r1_grpo_objective(f->m, &c, &f->b, f->lp_old, c.beta > 0 ? f->lp_ref : NULL,
                                    lp_now, &o, &err);
    if (!ok(s == R1_OK, "%s: %s%s%s, beta %g, eps %g/%g, max_new %d, micro %d: the objective "
            "runs", cs, agg, loss ? " " : "", loss ? loss : "", c.beta, c.eps_low, c.eps_high,
            c.max_new, c.micro)) {
        diag("%s", err.msg);
        free(lp_now);
        return;
    }
    double e = rel_err(lp_now, f->lp, f->ntok);
    ok(e < TOL, "%s: its log-probs match (max rel %.2e)", cs, e);
    /* J sums terms of both signs and can come out near 0, so its error is measured against
     * J_scale, the same aggregation of their absolute values */
    double want = scalar(f->ex, cs, "objective"), js = scalar(f->ex, cs, "objective_scale");
    e = fabs(o.objective - want) / js;
    ok(e < TOL && js > 0.05, "%s: J = %.9f, PyTorch %.9f (err %.2e of J_scale %.3f; %.2e of J)", cs,
       o.objective, want, e, js, rel1(o.objective, want));
    want = scalar(f->ex, cs, "kl");
    e = rel1(o.kl, want);
    if (c.beta > 0)
        ok(e < TOL && want > 0, "%s: KL %.7f, PyTorch %.7f (rel %.2e)", cs, o.kl, want, e);
    else
        ok(o.kl == 0 && want == 0, "%s: beta = 0: no reference, KL reported as 0 (%g)", cs, o.kl);
    want = scalar(f->ex, cs, "clip_frac");
    /* a count over the tokens: exact, since no rho is within 2e-3 of a clip boundary */
    ok(fabs(o.clip_frac * f->ntok - want * f->ntok) < 1e-3 && want > 0 && want < 1,
       "%s: %.0f of %zu tokens clipped, PyTorch %.0f", cs, o.clip_frac * f->ntok, f->ntok,
       want * f->ntok);
    want = scalar(f->ex, cs, "entropy");
    e = rel1(o.entropy, want);
    ok(e < TOL, "%s: entropy %.6f, PyTorch %.6f (rel %.2e)", cs, o.entropy, want, e);
    if (c.mtp_lambda > 0) {
        want = scalar(f->ex, cs, "mtp");
        e = rel1(o.mtp_loss, want);
        ok(e < TOL && want > 0, "%s: the MTP loss on the completions %.6f, PyTorch %.6f (rel %.2e)",
           cs, o.mtp_loss, want, e);
    } else
        ok(o.mtp_loss == 0, "%s: mtp_lambda 0: no MTP loss (%g)", cs, o.mtp_loss);
    /* counts: exact, since no entropy and no mean log-ratio sits near a threshold */
    want = scalar(f->ex, cs, "entropy_kept");
    ok(fabs(o.entropy_kept - want) * f->ntok < 1e-3 && (c.top_entropy_quantile == 1) == (want == 1),
       "%s: %.0f of %zu tokens kept by the entropy selection, PyTorch %.0f", cs,
       o.entropy_kept * f->ntok, f->ntok, want * f->ntok);
    want = scalar(f->ex, cs, "masked");
    ok(fabs(o.masked - want) * f->b.nseq < 1e-3 && (c.off_policy_mask > 0) == (want > 0),
       "%s: %.0f of %d completions masked as off-policy, PyTorch %.0f", cs,
       o.masked * f->b.nseq, f->b.nseq, want * f->b.nseq);
    const json_t *gr = json_object_get(jc, "grads");
    int head = json_is_string(gr) && !strcmp(json_string_value(gr), "head");
    if (json_is_true(gr) || head)
        check_grads(f, cs, c.mtp_lambda > 0, head);
    free(lp_now);
}

static void fixture_free(fixture *f)
{
    r1_model_free(f->m);
    r1_st_close(f->ex);
    free(f->seqs);
    free(f->tokens), free(f->plens), free(f->lens);
    free(f->lp), free(f->lp_old), free(f->lp_ref), free(f->lp_samp);
    for (int i = 0; i < 2; i++)
        free(f->adv_f[i]), free(f->adv[i]);
}

/* Loads the model and the inputs; returns 0 (after a failed test) when something is missing. */
static int fixture_load(fixture *f, const char *dir, const json_t *meta)
{
    char path[4200];
    r1_error err = {0};
    const char *model = json_string_value(json_object_get(meta, "model"));
    snprintf(path, sizeof path, "%s/%s", dir, model ? model : "");
    if (!ok(model && r1_model_load(&f->m, path, &err) == R1_OK, "the model %s loads", path)) {
        diag("%s", err.msg);
        return 0;
    }
    snprintf(path, sizeof path, "%s/expected.safetensors", dir);
    if (!ok(r1_st_open(&f->ex, path, &err) == R1_OK, "the expected values open")) {
        diag("%s", err.msg);
        return 0;
    }
    size_t ntokens = 0, nseq = 0, n2 = 0, n[6] = {0};
    f->tokens = read_i32(f->ex, "tokens", &ntokens);
    f->plens = read_i32(f->ex, "plens", &nseq);
    f->lens = read_i32(f->ex, "lens", &n2);
    f->lp = read_f32(f->ex, "lp", &f->ntok);
    f->lp_old = read_f32(f->ex, "lp_old", &n[0]);
    f->lp_ref = read_f32(f->ex, "lp_ref", &n[1]);
    f->lp_samp = read_f32(f->ex, "lp_samp", &n[4]);
    f->adv_f[1] = read_f32(f->ex, "adv", &n[2]);
    f->adv_f[0] = read_f32(f->ex, "adv_noscale", &n[3]);
    f->seqs = malloc(sizeof(int32_t *) * (nseq ? nseq : 1));
    f->adv[0] = malloc(sizeof(double) * (nseq ? nseq : 1));
    f->adv[1] = malloc(sizeof(double) * (nseq ? nseq : 1));
    int sane = f->tokens && f->plens && f->lens && f->lp && f->lp_old && f->lp_ref && f->adv_f[0] &&
               f->adv_f[1] && f->seqs && f->adv[0] && f->adv[1] && n2 == nseq && n[0] == f->ntok &&
               n[1] == f->ntok && n[2] == nseq && n[3] == nseq && f->lp_samp && n[4] == f->ntok;
    size_t at = 0, comp = 0;
    for (size_t k = 0; sane && k < nseq; k++) {
        f->seqs[k] = f->tokens + at;
        at += f->lens[k];
        comp += f->lens[k] - f->plens[k];
        for (int s = 0; s < 2; s++)
            f->adv[s][k] = f->adv_f[s][k];
    }
    sane = sane && at == ntokens && comp == f->ntok;
    if (!ok(sane, "the inputs: %zu sequences, %zu tokens, %zu completion tokens", nseq, ntokens,
            f->ntok))
        return 0;
    f->b = (r1_grpo_batch){(int)nseq, f->seqs, f->plens, f->lens, f->adv[1], NULL, 0, NULL,
                           NULL, 0, 0};
    return 1;
}

/* r1_grpo_advantages on the fixture's rewards, with and without std scaling. */
static void check_advantages(fixture *f, const json_t *meta)
{
    int P = (int)json_integer_value(json_object_get(meta, "prompts"));
    int G = (int)json_integer_value(json_object_get(meta, "group"));
    size_t n = 0;
    float *rw = read_f32(f->ex, "rewards", &n);
    if (!ok(rw && P > 0 && G > 1 && G <= 64 && n == (size_t)P * G && P * G == f->b.nseq,
            "rewards for %d groups of %d", P, G)) {
        free(rw);
        return;
    }
    for (int s = 0; s < 2; s++) {
        r1_grpo_cfg c = r1_grpo_defaults();
        c.std_scale = s;
        double worst = 0, r[64], a[64];
        int zero = 0;
        for (int i = 0; i < P; i++) {
            for (int j = 0; j < G; j++)
                r[j] = rw[i * G + j];
            zero += r1_grpo_advantages(&c, r, G, a);
            for (int j = 0; j < G; j++) {
                double e = fabs(a[j] - f->adv_f[s][i * G + j]) / fmax(1, fabs(a[j]));
                worst = e > worst ? e : worst;
            }
        }
        ok(worst < 1e-6, "advantages %s std scaling match (max rel %.2e)", s ? "with" : "without",
           worst);
        is_int(zero, 1, "and one group of equal rewards is flagged");
    }
    free(rw);
    /* GDPO: each reward normalised in its group, the weighted sum over the whole batch */
    size_t n2 = 0, nw = 0, na = 0;
    float *r2 = read_f32(f->ex, "rewards2", &n2), *w2 = read_f32(f->ex, "weights2", &nw);
    float *want = read_f32(f->ex, "adv_gdpo", &na);
    if (ok(r2 && w2 && want && nw >= 1 && nw <= 8 && n2 == (size_t)P * G * nw && na == n2 / nw,
           "GDPO's rewards: %d groups of %d, %zu rewards each", P, G, nw)) {
        double r[64 * 8], wts[8], a[64 * 64];
        for (size_t k = 0; k < nw; k++)
            wts[k] = w2[k];
        int zero = 0;
        for (int i = 0; i < P; i++) {
            for (size_t j = 0; j < (size_t)G * nw; j++)
                r[j] = r2[(size_t)i * G * nw + j];
            zero += r1_grpo_advantages_decoupled(r, G, (int)nw, wts, a + (size_t)i * G);
        }
        r1_grpo_batch_normalize(a, P * G);
        double worst = 0;
        for (int j = 0; j < P * G; j++)
            worst = fmax(worst, fabs(a[j] - want[j]) / fmax(1, fabs(want[j])));
        ok(worst < 1e-6 && zero == 0, "GDPO's advantages match (max rel %.2e)", worst);
    }
    free(r2), free(w2), free(want);
}

int main(void)
{
    r1_set_threads(1);
    const char *top = getenv("top_srcdir");
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s/tests/data/grpo", top ? top : ".");
    snprintf(path, sizeof path, "%s/grpo.json", dir);
    json_error_t je;
    json_t *meta = json_load_file(path, 0, &je);
    if (!ok(meta != NULL, "%s reads", path)) {
        diag("%s:%d: %s", path, je.line, je.text);
        return done_testing();
    }
    fixture f;
    memset(&f, 0, sizeof f);
    if (fixture_load(&f, dir, meta)) {
        check_advantages(&f, meta);
        /* forward only, in micro-batches of 3 and of the whole batch */
        float *lp = malloc(sizeof(float) * f.ntok);
        r1_error err = {0};
        int micro[2] = {3, f.b.nseq};
        for (int i = 0; i < 2; i++) {
            r1_status s = r1_grpo_logprobs(f.m, &f.b, micro[i], lp, &err);
            double e = s == R1_OK ? rel_err(lp, f.lp, f.ntok) : 1;
            ok(e < TOL, "r1_grpo_logprobs, micro %d: %zu log-probs match PyTorch (max rel %.2e)",
               micro[i], f.ntok, e);
        }
        free(lp);
        const json_t *cases = json_object_get(meta, "cases");
        ok(json_array_size(cases) >= 13, "%zu cases", json_array_size(cases));
        for (size_t i = 0; i < json_array_size(cases); i++)
            check_case(&f, json_array_get(cases, i));
    }
    fixture_free(&f);
    json_decref(meta);
    return done_testing();
}
