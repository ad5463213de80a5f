/* optim.c — AdamW, gradient clipping and the learning-rate schedule (see r1_optim.h).
 * Fails only with R1_ENOMEM at creation. */
#include <config.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "r1_optim.h"
#include "model_internal.h"
#include "parallel.h"
#include "r1_bf16.h" /* r1_f32_to_bf16 */

struct r1_adamw {
    r1_adamw_cfg cfg;
    size_t n;
    float *m, *v;   /* [n] */
    int t;
};

r1_adamw_cfg r1_adamw_defaults(void)
{
    r1_adamw_cfg c = {1e-3f, 1e-4f, 0, 0, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f, 0};
    return c;
}

float r1_lr_at(const r1_adamw_cfg *c, int step)
{
    if (c->warmup > 0 && step < c->warmup)
        return c->lr * (float)(step + 1) / (float)c->warmup;
    if (c->total <= c->warmup || c->total <= 0)
        return c->lr;
    double p = (double)(step - c->warmup) / (double)(c->total - c->warmup);
    if (p > 1)
        p = 1;
    return c->min_lr + (c->lr - c->min_lr) * 0.5f * (float)(1 + cos(M_PI * p));
}

r1_status r1_adamw_new(r1_adamw **out, const r1_model *m, const r1_adamw_cfg *cfg,
                       r1_error *err)
{
    r1_adamw *o = calloc(1, sizeof *o);
    if (!o)
        return r1_error_set(err, R1_ENOMEM, "out of memory");
    o->cfg = cfg ? *cfg : r1_adamw_defaults();
    o->n = r1_model_numel(m);
    o->m = calloc(o->n, sizeof(float));
    o->v = calloc(o->n, sizeof(float));
    if (!o->m || !o->v) {
        r1_adamw_free(o);
        return r1_error_set(err, R1_ENOMEM, "out of memory for the optimizer state");
    }
    *out = o;
    return R1_OK;
}

void r1_adamw_free(r1_adamw *o)
{
    if (!o)
        return;
    free(o->m);
    free(o->v);
    free(o);
}

#define ADAM_PIECES 16

/* The norm's sum of squares in ADAM_PIECES fixed ranges side by side, each range in 8 double
 * lanes (element i in lane i % 8 of its range, in order), the lanes then the ranges added in
 * a fixed order: the bits depend on the parameter count alone, never on the threads.  One
 * chain of dependent double additions on one thread had been ~4% of a small training step. */
typedef struct {
    const float *g;
    size_t n;
    int simd;
    double part[ADAM_PIECES];
} norm_job;

#if defined(HAVE_AVX512BF16_INTRIN) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#define OPTIM_SIMD 1
/* The lanes below in one register: a float's square is exact in double, so each lane's sums
 * round as the scalar loop's do, FMA or not.  The scalar loop, on SSE2, had been bound by its
 * conversions (16 ms of a bf16 step of small, 250 MB of gradients), not by memory: small's
 * optimizer step 54-62 -> 42-45 ms (best of 12, 2 threads, alternating). */
__attribute__((target("avx512f"))) static size_t norm_avx512(double s[8], const float *g,
                                                           size_t i, size_t hi)
{
    __m512d acc = _mm512_setzero_pd();
    for (; i + 8 <= hi; i += 8) {
        __m512d x = _mm512_cvtps_pd(_mm256_loadu_ps(g + i));
        acc = _mm512_add_pd(acc, _mm512_mul_pd(x, x));
    }
    _mm512_storeu_pd(s, acc);
    return i;
}
#else
#define OPTIM_SIMD 0
static size_t norm_avx512(double s[8], const float *g, size_t i, size_t hi)
{
    (void)s, (void)g, (void)hi;
    return i;
}
#endif

static void norm_piece(void *ctx, int piece, int tid)
{
    (void)tid;
    norm_job *j = ctx;
    size_t lo = j->n * (size_t)piece / ADAM_PIECES, hi = j->n * (size_t)(piece + 1) / ADAM_PIECES;
    double s[8] = {0};
    size_t i = j->simd ? norm_avx512(s, j->g, lo, hi) : lo;
    for (; i + 8 <= hi; i += 8)
        for (int l = 0; l < 8; l++)
            s[l] += (double)j->g[i + l] * j->g[i + l];
    for (int l = 0; i < hi; i++, l++)
        s[l] += (double)j->g[i] * j->g[i];
    j->part[piece] = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

double r1_grad_norm(r1_model *m)
{
    norm_job j = {r1_model_grads(m), r1_model_numel(m),
                  OPTIM_SIMD && r1_isa_active() >= R1_ISA_AVX512BF16, {0}};
    r1__parallel_for_work((long)j.n, ADAM_PIECES, norm_piece, &j);
    double s = 0;
    for (int i = 0; i < ADAM_PIECES; i++)
        s += j.part[i];
    return sqrt(s);
}

typedef struct {
    r1_adamw *o;
    r1_model *m;
    float *p, *g, lr, bc1, bc2;
    int simd;
    float clip;    /* the gradients' scale (1: not clipped) */
    uint16_t *w16; /* the model's bf16 copy when it is fresh: kept so, weight by weight */
} adam_job;

#if OPTIM_SIMD
/* The scalar update below, 16 lanes at a time, operation for operation: each product, sum,
 * quotient and square root rounded once, as the scalar code rounds them (the _round_ forms
 * keep the compiler from fusing a multiply and an add), so the bits are the same.  Returns
 * the first index it did not do. */
__attribute__((target("avx512f"))) static size_t adam_avx512(float *p, float *g, float *m,
                                                           float *v, size_t a, size_t b,
                                                           float b1, float b2, float bc1,
                                                           float bc2, float lr, float eps,
                                                           float wd, float clip)
{
    const int rn = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    __m512 B1 = _mm512_set1_ps(b1), B2 = _mm512_set1_ps(b2), C1 = _mm512_set1_ps(1 - b1);
    __m512 C2 = _mm512_set1_ps(1 - b2), BC1 = _mm512_set1_ps(bc1), BC2 = _mm512_set1_ps(bc2);
    __m512 LR = _mm512_set1_ps(lr), EPS = _mm512_set1_ps(eps), WD = _mm512_set1_ps(wd);
    __m512 CL = _mm512_set1_ps(clip);
    size_t i = a;
    for (; i + 16 <= b; i += 16) {
        __m512 gi = _mm512_loadu_ps(g + i), pi = _mm512_loadu_ps(p + i);
        if (clip != 1) { /* the clipped gradient stays in g, as the scalar pass leaves it */
            gi = _mm512_mul_round_ps(gi, CL, rn);
            _mm512_storeu_ps(g + i, gi);
        }
        __m512 mi = _mm512_add_round_ps(_mm512_mul_round_ps(B1, _mm512_loadu_ps(m + i), rn),
                                        _mm512_mul_round_ps(C1, gi, rn), rn);
        /* (1 - b2) * g * g: left to right, as C evaluates it */
        __m512 vi = _mm512_add_round_ps(_mm512_mul_round_ps(B2, _mm512_loadu_ps(v + i), rn),
                                        _mm512_mul_round_ps(_mm512_mul_round_ps(C2, gi, rn), gi,
                                                            rn),
                                        rn);
        _mm512_storeu_ps(m + i, mi);
        _mm512_storeu_ps(v + i, vi);
        __m512 mh = _mm512_div_round_ps(mi, BC1, rn), vh = _mm512_div_round_ps(vi, BC2, rn);
        __m512 q = _mm512_div_round_ps(mh, _mm512_add_round_ps(_mm512_sqrt_ps(vh), EPS, rn), rn);
        __m512 upd = _mm512_mul_round_ps(LR, _mm512_add_round_ps(q, _mm512_mul_round_ps(WD, pi, rn),
                                                                 rn), rn);
        _mm512_storeu_ps(p + i, _mm512_sub_round_ps(pi, upd, rn));
    }
    return i;
}
#else
static size_t adam_avx512(float *p, float *g, float *m, float *v, size_t a, size_t b, float b1,
                          float b2, float bc1, float bc2, float lr, float eps, float wd,
                          float clip)
{
    (void)p, (void)g, (void)m, (void)v, (void)b, (void)b1, (void)b2, (void)bc1, (void)bc2;
    (void)lr, (void)eps, (void)wd, (void)clip;
    return a;
}
#endif

/* The update of elements [n·i/16, n·(i+1)/16) of the flat parameter array, tensor by tensor
 * (for the decay flag). */
static void adam_piece(void *ctx, int piece, int tid)
{
    (void)tid;
    adam_job *j = ctx;
    const r1_adamw_cfg *c = &j->o->cfg;
    size_t n = j->o->n, lo = n * (size_t)piece / ADAM_PIECES;
    size_t hi = n * (size_t)(piece + 1) / ADAM_PIECES;
    float b1 = c->beta1, b2 = c->beta2, lr = j->lr, bc1 = j->bc1, bc2 = j->bc2;
    for (int k = 0; k < r1_model_nparams(j->m); k++) {
        const r1_param *t = r1_model_param(j->m, k);
        size_t a = t->offset > lo ? t->offset : lo;
        size_t b = t->offset + t->numel < hi ? t->offset + t->numel : hi;
        if (a >= b)
            continue;
        float wd = t->decay ? c->weight_decay : 0;
        float *pp = j->p, *gg = j->g, *mm = j->o->m, *vv = j->o->v;
        size_t a0 = a;
        /* The vector update clips as it goes: a separate pass had read and written g once
         * more (small's 62 M weights, bf16, clipping, 2 threads, best of 12, alternating: the
         * optimizer step 42-45 -> 33-38 ms).  Writing the bf16 copy in the same pass too
         * measured slower, again: 49-52 against 35-39. */
        if (!c->bf16_moments && j->simd)
            a = adam_avx512(pp, gg, mm, vv, a, b, b1, b2, bc1, bc2, lr, c->eps, wd, j->clip);
        if (j->clip != 1)
            for (size_t i = a; i < b; i++)
                gg[i] *= j->clip;
        for (size_t i = a; i < b; i++) {
            mm[i] = b1 * mm[i] + (1 - b1) * gg[i];
            vv[i] = b2 * vv[i] + (1 - b2) * gg[i] * gg[i];
            if (c->bf16_moments) { /* what a bf16 store and load would give */
                mm[i] = r1_bf16_to_f32(r1_f32_to_bf16(mm[i]));
                vv[i] = r1_bf16_to_f32(r1_f32_to_bf16(vv[i]));
            }
            float mh = mm[i] / bc1, vh = vv[i] / bc2;
            /* decoupled weight decay (Loshchilov & Hutter) */
            pp[i] -= lr * (mh / (sqrtf(vh) + c->eps) + wd * pp[i]);
        }
        if (j->w16) /* while the updated weights are still in cache */
            r1_bf16_from_f32(j->w16 + a0, pp + a0, b - a0);
    }
}

float r1_adamw_step(r1_adamw *o, r1_model *m, double *gnorm)
{
    const r1_adamw_cfg *c = &o->cfg;
    uint16_t *w16;
    float *p = r1__params_update(m, &w16), *g = r1_model_grads(m);
    double norm = r1_grad_norm(m);
    if (gnorm)
        *gnorm = norm;
    if (!isfinite(norm)) /* a NaN or inf anywhere: applying it would poison every weight */
        return r1_lr_at(c, o->t);
    /* clipping scales each gradient in its piece, just before its update */
    float f = c->clip > 0 && norm > c->clip ? (float)(c->clip / norm) : 1;
    float lr = r1_lr_at(c, o->t);
    o->t++;
    adam_job j = {o, m, p, g, lr, 1 - powf(c->beta1, (float)o->t),
                  1 - powf(c->beta2, (float)o->t),
                  OPTIM_SIMD && r1_isa_active() >= R1_ISA_AVX512BF16, f, w16};
    /* every element on its own, so the pieces (and the threads) change no bit */
    r1__parallel_for_work((long)o->n * 4, ADAM_PIECES, adam_piece, &j);
    return lr;
}

int r1_adamw_steps(const r1_adamw *o) { return o->t; }
void r1_adamw_set_steps(r1_adamw *o, int t) { o->t = t; }
float *r1_adamw_m(r1_adamw *o) { return o->m; }
float *r1_adamw_v(r1_adamw *o) { return o->v; }
r1_adamw_cfg *r1_adamw_config(r1_adamw *o) { return &o->cfg; }
