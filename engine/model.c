/* model.c — r1_model's parameters: their layout in one block, random initialisation, Hugging
 * Face checkpoints (load and save), the router biases and the auxiliary-loss-free balancing.
 *
 * Layout: every trainable tensor is registered once, in a fixed order, with its HF name; a
 * first pass counts, a second assigns offsets into the parameter block (the gradient block
 * mirrors it).  The router biases (e_score_correction_bias) are not trained by gradients and
 * live in a block of their own.  Errors: R1_ENOMEM, and for checkpoints the statuses of
 * r1_config_load / r1_st_open plus R1_EFORMAT naming the file and the tensor. */
#include <config.h>

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "atomic_file.h"
#include "model_internal.h"
#include "parallel.h"
#include "r1_fp8.h"
#include "r1_kernels.h"
#include "r1_rng.h"

/* ------------------------------------------------------------------ layout */

typedef struct {
    r1_model *m;
    int pass;       /* 0: count, 1: assign */
    size_t off;     /* scalars so far */
    int n;          /* tensors so far */
    size_t nbytes;  /* name bytes so far */
} layout;

static float *reg(layout *ly, int decay, int ndim, int64_t d0, int64_t d1, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static float *reg(layout *ly, int decay, int ndim, int64_t d0, int64_t d1, const char *fmt, ...)
{
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    size_t numel = (size_t)d0 * (size_t)(ndim > 1 ? d1 : 1);
    float *p = NULL;
    if (ly->pass == 1) {
        r1_model *m = ly->m;
        r1_param *t = &m->ptab[ly->n];
        char *dst = m->names + ly->nbytes;
        memcpy(dst, name, strlen(name) + 1);
        t->name = dst;
        t->ndim = ndim;
        t->shape[0] = d0;
        t->shape[1] = ndim > 1 ? d1 : 0;
        t->shape[2] = 0;
        t->numel = numel;
        t->offset = ly->off;
        t->decay = decay;
        p = m->params + ly->off;
    }
    ly->off += numel;
    ly->nbytes += strlen(name) + 1;
    ly->n++;
    return p;
}

#define MAT(rows, cols, ...) reg(ly, 1, 2, (rows), (cols), __VA_ARGS__)
#define VEC(n, ...) reg(ly, 0, 1, (n), 0, __VA_ARGS__)

/* Registers the tensors of decoder layer l (pass 1 also sets the layer's pointers). */
static void layout_layer(layout *ly, int l)
{
    r1_model *m = ly->m;
    const r1_config *c = &m->cfg;
    layer_w *w = &m->layers[l];
    int C = c->hidden_size, H = c->num_attention_heads, dq = m->dq;
    int dn = c->qk_nope_head_dim, dr = c->qk_rope_head_dim, dv = c->v_head_dim;
    int qr = c->q_lora_rank, kvr = c->kv_lora_rank;
    const char *pre = "model.layers";
    if (l >= m->L) {
        w->enorm = VEC(C, "%s.%d.enorm.weight", pre, l);
        w->hnorm = VEC(C, "%s.%d.hnorm.weight", pre, l);
        w->eh_proj = MAT(C, 2 * C, "%s.%d.eh_proj.weight", pre, l);
    }
    w->attn_norm = VEC(C, "%s.%d.input_layernorm.weight", pre, l);
    if (qr) {
        w->q_a = MAT(qr, C, "%s.%d.self_attn.q_a_proj.weight", pre, l);
        w->q_a_norm = VEC(qr, "%s.%d.self_attn.q_a_layernorm.weight", pre, l);
        w->q_b = MAT(H * dq, qr, "%s.%d.self_attn.q_b_proj.weight", pre, l);
    } else {
        w->q_proj = MAT(H * dq, C, "%s.%d.self_attn.q_proj.weight", pre, l);
    }
    w->kv_a = MAT(kvr + dr, C, "%s.%d.self_attn.kv_a_proj_with_mqa.weight", pre, l);
    w->kv_a_norm = VEC(kvr, "%s.%d.self_attn.kv_a_layernorm.weight", pre, l);
    w->kv_b = MAT(H * (dn + dv), kvr, "%s.%d.self_attn.kv_b_proj.weight", pre, l);
    w->o_proj = MAT(C, H * dv, "%s.%d.self_attn.o_proj.weight", pre, l);
    w->ffn_norm = VEC(C, "%s.%d.post_attention_layernorm.weight", pre, l);
    w->moe = r1_config_is_moe(c, l);
    if (!w->moe) {
        int I = c->intermediate_size;
        w->gate = MAT(I, C, "%s.%d.mlp.gate_proj.weight", pre, l);
        w->up = MAT(I, C, "%s.%d.mlp.up_proj.weight", pre, l);
        w->down = MAT(C, I, "%s.%d.mlp.down_proj.weight", pre, l);
    } else {
        int E = c->n_routed_experts, Ie = c->moe_intermediate_size;
        w->router = MAT(E, C, "%s.%d.mlp.gate.weight", pre, l);
        /* experts stored expert-major per projection so each is one [E][..] array */
        for (int e = 0; e < E; e++) {
            float *p = MAT(Ie, C, "%s.%d.mlp.experts.%d.gate_proj.weight", pre, l, e);
            if (e == 0)
                w->eg = p;
        }
        for (int e = 0; e < E; e++) {
            float *p = MAT(Ie, C, "%s.%d.mlp.experts.%d.up_proj.weight", pre, l, e);
            if (e == 0)
                w->eu = p;
        }
        for (int e = 0; e < E; e++) {
            float *p = MAT(C, Ie, "%s.%d.mlp.experts.%d.down_proj.weight", pre, l, e);
            if (e == 0)
                w->ed = p;
        }
        if (m->Is) {
            w->sg = MAT(m->Is, C, "%s.%d.mlp.shared_experts.gate_proj.weight", pre, l);
            w->su = MAT(m->Is, C, "%s.%d.mlp.shared_experts.up_proj.weight", pre, l);
            w->sd = MAT(C, m->Is, "%s.%d.mlp.shared_experts.down_proj.weight", pre, l);
        }
    }
    if (l >= m->L)
        w->head_norm = VEC(C, "%s.%d.shared_head.norm.weight", pre, l);
}

static void layout_model(layout *ly)
{
    r1_model *m = ly->m;
    const r1_config *c = &m->cfg;
    int C = c->hidden_size, V = c->vocab_size;
    m->embed = MAT(V, C, "model.embed_tokens.weight");
    for (int l = 0; l < m->L; l++)
        layout_layer(ly, l);
    m->final_norm = VEC(C, "model.norm.weight");
    m->head = c->tie_word_embeddings ? m->embed : MAT(V, C, "lm_head.weight");
    for (int l = m->L; l < m->Ltot; l++)
        layout_layer(ly, l);
}

/* ------------------------------------------------------------------ new / free */


r1_status r1_model_new(r1_model **out, const r1_config *c, r1_error *err)
{
    *out = NULL;
    r1_status st = r1_config_validate(c, err);
    if (st != R1_OK)
        return st;
    r1_model *m = calloc(1, sizeof *m);
    if (!m)
        return r1_error_set(err, R1_ENOMEM, "out of memory");
    m->cfg = *c;
    m->L = c->num_hidden_layers;
    m->D = c->num_nextn_predict_layers;
    m->Ltot = m->L + m->D;
    m->dq = c->qk_nope_head_dim + c->qk_rope_head_dim;
    m->Is = c->n_routed_experts > 0 ? c->moe_intermediate_size * c->n_shared_experts : 0;
    m->layers = calloc(m->Ltot, sizeof(layer_w));
    if (!m->layers)
        goto oom;
    layout ly = {m, 0, 0, 0, 0};
    layout_model(&ly);
    m->numel = ly.off;
    m->nparams = ly.n;
    m->params = calloc(m->numel, sizeof(float));
    m->grads = calloc(m->numel, sizeof(float));
    m->ptab = calloc(m->nparams, sizeof(r1_param));
    m->names = malloc(ly.nbytes);
    if (!m->params || !m->grads || !m->ptab || !m->names)
        goto oom;
    layout ly2 = {m, 1, 0, 0, 0};
    layout_model(&ly2);
    int E = c->n_routed_experts;
    for (int l = 0; l < m->Ltot; l++) {
        layer_w *w = &m->layers[l];
        if (!w->moe)
            continue;
        w->bias = calloc(E, sizeof(float));
        w->load = calloc(E, sizeof(double));
        if (!w->bias || !w->load)
            goto oom;
    }
    int P = c->max_position_embeddings, half = c->qk_rope_head_dim / 2;
    m->rope_cos = malloc(sizeof(float) * (size_t)P * half);
    m->rope_sin = malloc(sizeof(float) * (size_t)P * half);
    if (!m->rope_cos || !m->rope_sin)
        goto oom;
    r1_rope_table(m->rope_cos, m->rope_sin, P, c->qk_rope_head_dim, c->rope_theta);
    *out = m;
    return R1_OK;
oom:
    r1_model_free(m);
    return r1_error_set(err, R1_ENOMEM, "out of memory for a model of this config");
}

void r1_model_free(r1_model *m)
{
    if (!m)
        return;
    r1__free_acts(m);
    if (m->layers)
        for (int l = 0; l < m->Ltot; l++) {
            free(m->layers[l].bias);
            free(m->layers[l].load);
        }
    free(m->layers);
    free(m->params);
    free(m->wt16);
    free(m->wpk);
    free(m->wpk_mem);
    free(m->grads);
    free(m->ptab);
    free(m->names);
    free(m->rope_cos);
    free(m->rope_sin);
    free(m);
}

/* ------------------------------------------------------------------ accessors */

const r1_config *r1_model_config(const r1_model *m) { return &m->cfg; }
const char *r1_model_notice(const r1_model *m) { return m->notice; }
const char *r1_model_errmsg(const r1_model *m) { return m->errmsg; }
int r1_model_nparams(const r1_model *m) { return m->nparams; }
size_t r1_model_numel(const r1_model *m) { return m->numel; }
float *r1_model_params(r1_model *m)
{
    m->wt16_ok = 0; /* the caller may write them */
    return m->params;
}
float *r1_model_grads(r1_model *m) { return m->grads; }
int r1_model_nlayers_total(const r1_model *m) { return m->Ltot; }

const r1_param *r1_model_param(const r1_model *m, int i)
{
    return i >= 0 && i < m->nparams ? &m->ptab[i] : NULL;
}

const r1_param *r1_model_param_find(const r1_model *m, const char *name)
{
    for (int i = 0; i < m->nparams; i++)
        if (strcmp(m->ptab[i].name, name) == 0)
            return &m->ptab[i];
    return NULL;
}

/* In pieces side by side: small's 250 MB on the calling thread alone had been 11 ms of a
 * training step with the other core waiting. */
void r1_model_zero_grad(r1_model *m) { r1__zero(m->grads, m->numel); }

float *r1_model_router_bias(r1_model *m, int l)
{
    return l >= 0 && l < m->Ltot ? m->layers[l].bias : NULL;
}

void r1_model_init(r1_model *m, uint64_t seed)
{
    r1_rng rng;
    r1_rng_seed(&rng, seed);
    m->wt16_ok = 0;
    float std = m->cfg.initializer_range;
    for (int i = 0; i < m->nparams; i++) {
        const r1_param *p = &m->ptab[i];
        float *x = m->params + p->offset;
        for (size_t j = 0; j < p->numel; j++)
            x[j] = p->decay ? (float)(r1_rng_normal(&rng) * std) : 1.0f;
    }
    for (int l = 0; l < m->Ltot; l++)
        if (m->layers[l].bias)
            memset(m->layers[l].bias, 0, sizeof(float) * m->cfg.n_routed_experts);
}

/* ------------------------------------------------------------------ balancing */

double *r1_model_load_counts(r1_model *m, int l, long **tokens)
{
    if (l < 0 || l >= m->Ltot || !m->layers[l].moe)
        return NULL;
    if (tokens)
        *tokens = &m->layers[l].load_tokens;
    return m->layers[l].load;
}

long r1_model_expert_load(const r1_model *m, int l, float *load)
{
    if (l < 0 || l >= m->Ltot || !m->layers[l].moe)
        return -1;
    const layer_w *w = &m->layers[l];
    if (load)
        for (int e = 0; e < m->cfg.n_routed_experts; e++)
            load[e] = (float)w->load[e];
    return w->load_tokens;
}

double r1_load_maxvio(const float *load, int E)
{
    double sum = 0, mx = 0;
    for (int e = 0; e < E; e++) {
        sum += load[e];
        mx = load[e] > mx ? load[e] : mx;
    }
    return sum > 0 ? mx / (sum / E) - 1 : 0;
}

double r1_load_jain(const float *load, int E)
{
    double sum = 0, sq = 0;
    for (int e = 0; e < E; e++) {
        sum += load[e];
        sq += (double)load[e] * load[e];
    }
    return sq > 0 ? sum * sum / (E * sq) : 0;
}

void r1_model_balance_update(r1_model *m, float gamma)
{
    int E = m->cfg.n_routed_experts;
    for (int l = 0; l < m->Ltot; l++) {
        layer_w *w = &m->layers[l];
        if (!w->moe)
            continue;
        double mean = 0;
        for (int e = 0; e < E; e++)
            mean += w->load[e];
        mean /= E;
        /* DeepSeek-V3's auxiliary-loss-free balancing: raise the bias of underloaded experts,
         * lower it for overloaded ones, by a fixed step γ. */
        for (int e = 0; e < E; e++) {
            double d = mean - w->load[e];
            w->bias[e] += d > 0 ? gamma : d < 0 ? -gamma : 0;
            w->load[e] = 0;
        }
        w->load_tokens = 0;
    }
}

/* ------------------------------------------------------------------ checkpoints */

static void join(char *buf, size_t n, const char *dir, const char *file)
{
    snprintf(buf, n, "%s/%s", dir, file);
}

/* Reads an optional copy of a shared tensor and checks it equals `main` ([rows, C]). */
static r1_status check_copy(const r1_st *st, const char *name, const float *main, int64_t rows,
                            int64_t C, const char *file, r1_error *err)
{
    if (r1_st_find(st, name) < 0)
        return R1_OK;
    size_t n = (size_t)rows * C;
    float *tmp = malloc(sizeof(float) * n);
    if (!tmp)
        return r1_error_set(err, R1_ENOMEM, "out of memory");
    int64_t shape[2] = {rows, C};
    r1_status s = r1_st_read_f32(st, name, tmp, 2, shape, err);
    if (s == R1_OK && memcmp(tmp, main, sizeof(float) * n) != 0)
        s = r1_error_set(err, R1_EFORMAT,
                         "%s: tensor %s is a copy of a shared tensor but differs from it", file,
                         name);
    free(tmp);
    return s;
}

/* Marks "<name>_scale_inv" as read: r1_st_read_f32 used it if name is FP8.  A scale beside a
 * tensor that is not FP8 is refused rather than ignored. */
static r1_status mark_scale(const r1_st *st, const char *name, char *used, const char *file,
                            r1_error *err)
{
    char sname[300];
    snprintf(sname, sizeof sname, "%s_scale_inv", name);
    int i = r1_st_find(st, sname);
    if (i < 0)
        return R1_OK;
    r1_dtype dt = R1_DT_F32;
    r1_st_info(st, name, &dt, NULL, NULL, NULL);
    if (dt != R1_DT_F8_E4M3 && dt != R1_DT_F8_E5M2)
        return r1_error_set(err, R1_EFORMAT,
                            "%s: tensor %s holds FP8 block scales, but %s is %s, not FP8", file,
                            sname, name, r1_dtype_name(dt));
    used[i] = 1;
    return R1_OK;
}

r1_status r1_model_load(r1_model **out, const char *dir, r1_error *err)
{
    *out = NULL;
    char path[4096];
    r1_config c;
    join(path, sizeof path, dir, "config.json");
    r1_status s = r1_config_load(&c, path, err);
    if (s != R1_OK)
        return s;
    r1_st *st;
    if ((s = r1_st_open(&st, dir, err)) != R1_OK)
        return s;
    /* a config that promises MTP layers over weights that have none (what a Hugging Face
     * fine-tune saves: its model class has no MTP module): the model loads without them */
    char notice[R1_ERRLEN] = "";
    if (c.num_nextn_predict_layers > 0) {
        char pre[64];
        snprintf(pre, sizeof pre, "model.layers.%d.", c.num_hidden_layers);
        int any = 0;
        for (int i = 0; i < r1_st_count(st) && !any; i++)
            any = strncmp(r1_st_name(st, i), pre, strlen(pre)) == 0;
        if (!any) {
            snprintf(notice, sizeof notice, "%.300s: num_nextn_predict_layers is %d but the "
                     "weights have no MTP layer (%s*); loaded without MTP", path,
                     c.num_nextn_predict_layers, pre);
            c.num_nextn_predict_layers = 0;
        }
    }
    r1_model *m;
    if ((s = r1_model_new(&m, &c, err)) != R1_OK) {
        r1_error_prefix(err, "%s", path);
        r1_st_close(st);
        return s;
    }
    snprintf(m->notice, sizeof m->notice, "%s", notice);
    const char *file = dir;
    char *used = calloc(r1_st_count(st) + 1, 1);
    if (!used) {
        s = r1_error_set(err, R1_ENOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < m->nparams; i++) {
        const r1_param *p = &m->ptab[i];
        int idx = r1_st_find(st, p->name);
        if (idx < 0) {
            if (p->ndim == 1)
                s = r1_error_set(err, R1_EFORMAT, "%s: tensor %s is missing (shape [%lld])",
                                 file, p->name, (long long)p->shape[0]);
            else
                s = r1_error_set(err, R1_EFORMAT,
                                 "%s: tensor %s is missing (shape [%lld, %lld])", file, p->name,
                                 (long long)p->shape[0], (long long)p->shape[1]);
            goto done;
        }
        used[idx] = 1;
        if ((s = r1_st_read_f32(st, p->name, m->params + p->offset, p->ndim, p->shape, err)))
            goto done;
        if ((s = mark_scale(st, p->name, used, file, err))) /* FP8 block scales */
            goto done;
    }
    int E = c.n_routed_experts, C = c.hidden_size, V = c.vocab_size;
    for (int l = 0; l < m->Ltot; l++) {
        char name[256];
        if (m->layers[l].moe) {
            snprintf(name, sizeof name, "model.layers.%d.mlp.gate.e_score_correction_bias", l);
            int idx = r1_st_find(st, name);
            if (idx < 0) {
                s = r1_error_set(err, R1_EFORMAT, "%s: tensor %s is missing (shape [%d])", file,
                                 name, E);
                goto done;
            }
            used[idx] = 1;
            int64_t shape[1] = {E};
            if ((s = r1_st_read_f32(st, name, m->layers[l].bias, 1, shape, err)))
                goto done;
        }
        if (l >= m->L) { /* DESIGN: the MTP layers carry copies of the embedding and head */
            snprintf(name, sizeof name, "model.layers.%d.embed_tokens.weight", l);
            if ((s = check_copy(st, name, m->embed, V, C, file, err)))
                goto done;
            if (r1_st_find(st, name) >= 0)
                used[r1_st_find(st, name)] = 1;
            snprintf(name, sizeof name, "model.layers.%d.shared_head.head.weight", l);
            if ((s = check_copy(st, name, m->head, V, C, file, err)))
                goto done;
            if (r1_st_find(st, name) >= 0)
                used[r1_st_find(st, name)] = 1;
        }
    }
    if (c.tie_word_embeddings && r1_st_find(st, "lm_head.weight") >= 0) {
        if ((s = check_copy(st, "lm_head.weight", m->embed, V, C, file, err)))
            goto done;
        used[r1_st_find(st, "lm_head.weight")] = 1;
    }
    for (int i = 0; i < r1_st_count(st); i++)
        if (!used[i]) {
            s = r1_error_set(err, R1_EFORMAT,
                             "%s: unexpected tensor %s (not part of a deepseek_v3 model with "
                             "this config.json)",
                             file, r1_st_name(st, i));
            goto done;
        }
done:
    free(used);
    r1_st_close(st);
    if (s != R1_OK) {
        r1_model_free(m);
        return s;
    }
    *out = m;
    return R1_OK;
}

/* FP8 checkpoints: parameter p as E4M3 codes plus "<name>_scale_inv" (DeepSeek-V3's layout),
 * both borrowed from q. */
static r1_status add_fp8(r1_st_writer *w, const r1_model *m, const r1__fp8w *q,
                         const r1_param *p, r1_error *err)
{
    const uint8_t *codes;
    const float *sc;
    if (!r1__fp8w_get(q, m, m->params + p->offset, &codes, &sc))
        return r1_error_set(err, R1_EINVAL, "save: %s has no FP8 copy", p->name); /* a bug */
    r1_status s = r1_st_writer_add(w, p->name, R1_DT_F8_E4M3, R1_DT_F8_E4M3, codes, 2, p->shape,
                                   err);
    char name[300];
    snprintf(name, sizeof name, "%s_scale_inv", p->name);
    int64_t sh[2] = {(p->shape[0] + R1_FP8_BLOCK - 1) / R1_FP8_BLOCK,
                     (p->shape[1] + R1_FP8_BLOCK - 1) / R1_FP8_BLOCK};
    return s ? s : r1_st_writer_add(w, name, R1_DT_F32, R1_DT_F32, sc, 2, sh, err);
}

r1_status r1_model_save(const r1_model *m, const char *dir, r1_dtype dtype, r1_error *err)
{
    if (dtype != R1_DT_F32 && dtype != R1_DT_BF16 && dtype != R1_DT_F8_E4M3)
        return r1_error_set(err, R1_EINVAL, "save: weights are stored as F32, BF16 or F8_E4M3");
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return r1_error_set(err, R1_EIO, "%s: cannot create the folder: %s", dir,
                            strerror(errno));
    /* FP8: the linear weights as E4M3 with 128x128 block scales, the rest BF16, as
     * DeepSeek-V3 ships its checkpoints (r1_fp8_is_stored) */
    int f8 = dtype == R1_DT_F8_E4M3;
    r1__fp8w *q = NULL;
    r1_status s = f8 ? r1__fp8w_new(&q, m, 0, err) : R1_OK;
    if (s != R1_OK)
        return s;
    r1_dtype stored = dtype;
    if (f8)
        dtype = R1_DT_BF16;
    /* both files are written in full before either replaces its old self, so a failure
     * (a full disk) leaves the folder's previous model loadable: config.json waits, synced,
     * under its temporary name while the weights are written, and goes into place after them */
    char path[4096];
    join(path, sizeof path, dir, "config.json");
    r1_afile cf;
    s = r1__config_prepare(&m->cfg, path, stored, &cf, err);
    r1_st_writer *w = s == R1_OK ? r1_st_writer_new() : NULL;
    if (!w) {
        if (s == R1_OK)
            r1_afile_abort(&cf);
        r1__fp8w_free(q);
        return s != R1_OK ? s : r1_error_set(err, R1_ENOMEM, "out of memory");
    }
    const r1_config *c = &m->cfg;
    int64_t vc[2] = {c->vocab_size, c->hidden_size};
    char name[256];
    for (int i = 0; i < m->nparams && s == R1_OK; i++) {
        const r1_param *p = &m->ptab[i];
        if (f8 && p->ndim == 2 && r1_fp8_is_stored(p->name))
            s = add_fp8(w, m, q, p, err);
        else
            s = r1_st_writer_add(w, p->name, dtype, R1_DT_F32, m->params + p->offset, p->ndim,
                                 p->shape, err);
    }
    for (int l = 0; l < m->Ltot && s == R1_OK; l++) {
        const layer_w *lw = &m->layers[l];
        if (lw->moe) {
            /* the selection bias stays F32: small and precision-sensitive */
            int64_t e[1] = {c->n_routed_experts};
            snprintf(name, sizeof name, "model.layers.%d.mlp.gate.e_score_correction_bias", l);
            s = r1_st_writer_add(w, name, R1_DT_F32, R1_DT_F32, lw->bias, 1, e, err);
        }
        if (l >= m->L && s == R1_OK) {
            snprintf(name, sizeof name, "model.layers.%d.embed_tokens.weight", l);
            s = r1_st_writer_add(w, name, dtype, R1_DT_F32, m->embed, 2, vc, err);
            snprintf(name, sizeof name, "model.layers.%d.shared_head.head.weight", l);
            if (s == R1_OK)
                s = r1_st_writer_add(w, name, dtype, R1_DT_F32, m->head, 2, vc, err);
        }
    }
    join(path, sizeof path, dir, "model.safetensors");
    /* the old weights stay reachable under a second name until the config is in place too,
     * so a config that cannot be renamed puts them back */
    char bak[4200];
    r1_sibling_name(bak, sizeof bak, path, "bak");
    int backed = s == R1_OK && link(path, bak) == 0;
    if (s == R1_OK)
        s = r1_st_writer_write(w, path, err);
    r1_st_writer_free(w);
    r1__fp8w_free(q);
    if (s == R1_OK)
        s = r1_afile_commit(&cf, err);
    else
        r1_afile_abort(&cf);
    if (s != R1_OK && backed && access(bak, F_OK) == 0)
        rename(bak, path); /* the new weights out, the old ones back: the folder as it was */
    if (backed)
        unlink(bak);
    return s;
}

/* ------------------------------------------------------------------ cost */

double r1_model_flops_per_token(const r1_model *m, int T)
{
    const r1_config *c = &m->cfg;
    double C = c->hidden_size, H = c->num_attention_heads, dq = m->dq, dv = c->v_head_dim;
    double dn = c->qk_nope_head_dim, dr = c->qk_rope_head_dim, kvr = c->kv_lora_rank;
    double qr = c->q_lora_rank, V = c->vocab_size;
    double attn_w = (qr ? C * qr + qr * H * dq : C * H * dq) + C * (kvr + dr) +
                    kvr * H * (dn + dv) + H * dv * C;
    double attn_sc = H * (dq + dv) * (T + 1) / 2.0; /* causal: mean context (T+1)/2 */
    double flops = 0;
    for (int l = 0; l < m->Ltot; l++) {
        double w = attn_w;
        if (m->layers[l].moe)
            w += C * c->n_routed_experts +
                 3.0 * C * c->moe_intermediate_size * (c->num_experts_per_tok +
                                                       c->n_shared_experts);
        else
            w += 3.0 * C * c->intermediate_size;
        if (l >= m->L)
            w += 2 * C * C + C * V; /* eh_proj and the shared head */
        flops += 2 * w + 2 * attn_sc;
    }
    return flops + 2 * C * V; /* the main head */
}

r1_status r1_model_mix_params(r1_model *dst, const r1_model *src, float alpha, r1_error *err)
{
    if (memcmp(&dst->cfg, &src->cfg, sizeof dst->cfg) != 0)
        return r1_error_set(err, R1_EINVAL, "mix: the two models have different configs");
    if (!(alpha >= 0 && alpha <= 1))
        return r1_error_set(err, R1_EINVAL, "mix: alpha %g outside 0..1", alpha);
    float b = 1 - alpha;
    dst->wt16_ok = 0;
    for (size_t i = 0; i < src->numel; i++)
        dst->params[i] = alpha * src->params[i] + b * dst->params[i];
    for (int l = 0; l < src->Ltot; l++)
        for (int e = 0; src->layers[l].bias && e < src->cfg.n_routed_experts; e++)
            dst->layers[l].bias[e] = alpha * src->layers[l].bias[e] + b * dst->layers[l].bias[e];
    return R1_OK;
}

r1_status r1_model_copy_params(r1_model *dst, const r1_model *src, r1_error *err)
{
    if (memcmp(&dst->cfg, &src->cfg, sizeof dst->cfg) != 0)
        return r1_error_set(err, R1_EINVAL, "copy: the two models have different configs");
    dst->wt16_ok = 0;
    memcpy(dst->params, src->params, sizeof(float) * src->numel);
    for (int l = 0; l < src->Ltot; l++)
        if (src->layers[l].bias)
            memcpy(dst->layers[l].bias, src->layers[l].bias,
                   sizeof(float) * src->cfg.n_routed_experts);
    return R1_OK;
}
