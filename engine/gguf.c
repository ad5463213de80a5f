/* SPDX-License-Identifier: GPL-3.0-or-later */
/* gguf.c — the GGUF format: a writer (r1_gguf_writer) and a validating reader (r1_gguf),
 * written from the specification in ggml's docs/gguf.md (version 3); see r1_gguf.h for the
 * layout.  The mapping of an r1lab model onto llama.cpp's names is gguf_export.c.
 *
 * Ownership: the writer owns copies of its keys, strings and tensor names; tensor data is
 * borrowed until r1_gguf_writer_write returns.  The reader owns everything it returns and
 * keeps the file open for r1_gguf_read_tensor (pread, so concurrent reads are fine).
 *
 * Errors: see r1_gguf.h.  The reader never trusts a count or a length before checking it
 * against the bytes left in the file, so a malformed file costs no more memory than its size
 * and every message names the byte offset and the field. */
#include <config.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic_file.h"
#include "r1_bf16.h"
#include "r1_gguf.h"
#include "r1_safetensors.h"

/* The file is written and read as the host holds numbers; GGUF is little-endian. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "r1lab assumes a little-endian host");

#define CHUNK 8192 /* elements converted per write when storing bf16 / f16 */

static const char *const type_names[R1_GGUF_NTYPES] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};
/* bytes of one scalar of each type; 0 for string and array */
static const unsigned type_size[R1_GGUF_NTYPES] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

const char *r1_gguf_type_name(r1_gguf_type t)
{
    return (unsigned)t < R1_GGUF_NTYPES ? type_names[t] : "?";
}

const char *r1_ggml_type_name(uint32_t type)
{
    static _Thread_local char buf[24];
    if (type == R1_GGML_F32)
        return "F32";
    if (type == R1_GGML_F16)
        return "F16";
    if (type == R1_GGML_BF16)
        return "BF16";
    snprintf(buf, sizeof buf, "type %u", (unsigned)type);
    return buf;
}

static uint64_t elem_bytes(uint32_t type)
{
    return type == R1_GGML_F32 ? 4 : type == R1_GGML_F16 || type == R1_GGML_BF16 ? 2 : 0;
}

/* A key as the specification has them: 1..65535 bytes of printable ASCII (no spaces). */
static int key_ok(const char *key, uint64_t n)
{
    int ok = n > 0 && n <= 65535;
    for (uint64_t i = 0; ok && i < n; i++)
        ok = (unsigned char)key[i] > 32 && (unsigned char)key[i] < 127;
    return ok;
}

static uint64_t align_up(uint64_t x, uint64_t a)
{
    return (x + a - 1) / a * a;
}

/* ================================================================== the writer */

typedef struct {
    unsigned char *p;
    size_t n, cap;
    int oom;
} bytes;

static void put(bytes *b, const void *src, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n)
            cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void put_u32(bytes *b, uint32_t v)
{
    put(b, &v, 4);
}

static void put_u64(bytes *b, uint64_t v)
{
    put(b, &v, 8);
}

static void put_str(bytes *b, const char *s)
{
    size_t n = strlen(s);
    put_u64(b, n);
    put(b, s, n);
}

typedef struct {
    char *name; /* owned */
    uint32_t type;
    int ndim;
    uint64_t ne[R1_GGUF_MAX_DIMS];
    uint64_t nelem;
    const float *data; /* borrowed, or NULL: fill */
    r1_gguf_fill_fn fill;
    void *user;
} wtensor;

struct r1_gguf_writer {
    bytes kv;    /* the serialised pairs */
    char **keys; /* owned copies, for the duplicate check */
    int nkv, capkv;
    wtensor *t;
    int nt, capt;
};

r1_gguf_writer *r1_gguf_writer_new(void)
{
    return calloc(1, sizeof(r1_gguf_writer));
}

void r1_gguf_writer_free(r1_gguf_writer *w)
{
    if (!w)
        return;
    for (int i = 0; i < w->nkv; i++)
        free(w->keys[i]);
    for (int i = 0; i < w->nt; i++)
        free(w->t[i].name);
    free(w->keys);
    free(w->t);
    free(w->kv.p);
    free(w);
}

/* Checks key and starts its pair: the key and the value's type. */
static r1_status begin_kv(r1_gguf_writer *w, const char *key, r1_gguf_type type, r1_error *err)
{
    if (!key || !key_ok(key, strlen(key)))
        return r1_error_set(err, R1_EINVAL,
                            "gguf writer: key \"%s\" is not allowed (1..65535 printable ASCII "
                            "characters without spaces)",
                            key ? key : "");
    for (int i = 0; i < w->nkv; i++)
        if (!strcmp(w->keys[i], key))
            return r1_error_set(err, R1_EINVAL, "gguf writer: key \"%s\" was already added",
                                key);
    if (w->nkv == w->capkv) {
        int cap = w->capkv ? 2 * w->capkv : 32;
        char **k = realloc(w->keys, sizeof *k * (size_t)cap);
        if (!k)
            return r1_error_set(err, R1_ENOMEM, "gguf writer: out of memory");
        w->keys = k;
        w->capkv = cap;
    }
    if (!(w->keys[w->nkv] = strdup(key)))
        return r1_error_set(err, R1_ENOMEM, "gguf writer: out of memory");
    w->nkv++;
    put_str(&w->kv, key);
    put_u32(&w->kv, (uint32_t)type);
    return R1_OK;
}

static r1_status end_kv(r1_gguf_writer *w, r1_error *err)
{
    return w->kv.oom ? r1_error_set(err, R1_ENOMEM, "gguf writer: out of memory") : R1_OK;
}

static r1_status scalar(r1_gguf_writer *w, const char *key, r1_gguf_type type, const void *v,
                        r1_error *err)
{
    r1_status s = begin_kv(w, key, type, err);
    if (s != R1_OK)
        return s;
    put(&w->kv, v, type_size[type]);
    return end_kv(w, err);
}

r1_status r1_gguf_writer_u32(r1_gguf_writer *w, const char *key, uint32_t v, r1_error *err)
{
    return scalar(w, key, R1_GGUF_U32, &v, err);
}

r1_status r1_gguf_writer_i32(r1_gguf_writer *w, const char *key, int32_t v, r1_error *err)
{
    return scalar(w, key, R1_GGUF_I32, &v, err);
}

r1_status r1_gguf_writer_f32(r1_gguf_writer *w, const char *key, float v, r1_error *err)
{
    return scalar(w, key, R1_GGUF_F32, &v, err);
}

r1_status r1_gguf_writer_bool(r1_gguf_writer *w, const char *key, int v, r1_error *err)
{
    uint8_t b = v != 0;
    return scalar(w, key, R1_GGUF_BOOL, &b, err);
}

r1_status r1_gguf_writer_str(r1_gguf_writer *w, const char *key, const char *v, r1_error *err)
{
    if (!v)
        return r1_error_set(err, R1_EINVAL, "gguf writer: key \"%s\": no string", key);
    r1_status s = begin_kv(w, key, R1_GGUF_STRING, err);
    if (s != R1_OK)
        return s;
    put_str(&w->kv, v);
    return end_kv(w, err);
}

static r1_status array(r1_gguf_writer *w, const char *key, r1_gguf_type type, const void *v,
                       uint64_t n, r1_error *err)
{
    if (!v && n)
        return r1_error_set(err, R1_EINVAL, "gguf writer: key \"%s\": no array", key);
    r1_status s = begin_kv(w, key, R1_GGUF_ARRAY, err);
    if (s != R1_OK)
        return s;
    put_u32(&w->kv, (uint32_t)type);
    put_u64(&w->kv, n);
    if (type == R1_GGUF_STRING) {
        const char *const *sv = v;
        for (uint64_t i = 0; i < n; i++)
            put_str(&w->kv, sv[i]);
    } else if (n) {
        put(&w->kv, v, (size_t)n * type_size[type]);
    }
    return end_kv(w, err);
}

r1_status r1_gguf_writer_arr_str(r1_gguf_writer *w, const char *key, const char *const *v,
                                 uint64_t n, r1_error *err)
{
    for (uint64_t i = 0; v && i < n; i++)
        if (!v[i])
            return r1_error_set(err, R1_EINVAL, "gguf writer: key \"%s\": element %llu is NULL",
                                key, (unsigned long long)i);
    return array(w, key, R1_GGUF_STRING, v, n, err);
}

r1_status r1_gguf_writer_arr_i32(r1_gguf_writer *w, const char *key, const int32_t *v,
                                 uint64_t n, r1_error *err)
{
    return array(w, key, R1_GGUF_I32, v, n, err);
}

r1_status r1_gguf_writer_arr_f32(r1_gguf_writer *w, const char *key, const float *v,
                                 uint64_t n, r1_error *err)
{
    return array(w, key, R1_GGUF_F32, v, n, err);
}

r1_status r1_gguf_writer_tensor(r1_gguf_writer *w, const char *name, uint32_t type, int ndim,
                                const uint64_t *ne, const float *data, r1_gguf_fill_fn fill,
                                void *user, r1_error *err)
{
    size_t len = name ? strlen(name) : 0;
    if (!len || len > R1_GGUF_MAX_NAME)
        return r1_error_set(err, R1_EINVAL,
                            "gguf writer: tensor name \"%s\" is empty or longer than %d bytes",
                            name ? name : "", R1_GGUF_MAX_NAME);
    if (!elem_bytes(type))
        return r1_error_set(err, R1_EINVAL,
                            "gguf writer: tensor \"%s\": type %u is not F32, F16 or BF16", name,
                            (unsigned)type);
    if (ndim < 1 || ndim > R1_GGUF_MAX_DIMS)
        return r1_error_set(err, R1_EINVAL,
                            "gguf writer: tensor \"%s\": rank %d is out of range [1, %d]", name,
                            ndim, R1_GGUF_MAX_DIMS);
    if (!data && !fill)
        return r1_error_set(err, R1_EINVAL, "gguf writer: tensor \"%s\": no data", name);
    uint64_t nelem = 1;
    for (int d = 0; d < ndim; d++)
        if (ne[d] > (uint64_t)INT64_MAX || __builtin_mul_overflow(nelem, ne[d], &nelem) ||
            nelem > (uint64_t)SIZE_MAX / 8)
            return r1_error_set(err, R1_EINVAL, "gguf writer: tensor \"%s\" is too large", name);
    for (int i = 0; i < w->nt; i++)
        if (!strcmp(w->t[i].name, name))
            return r1_error_set(err, R1_EINVAL, "gguf writer: tensor \"%s\" was already added",
                                name);
    if (w->nt == w->capt) {
        int cap = w->capt ? 2 * w->capt : 64;
        wtensor *t = realloc(w->t, sizeof *t * (size_t)cap);
        if (!t)
            return r1_error_set(err, R1_ENOMEM, "gguf writer: out of memory");
        w->t = t;
        w->capt = cap;
    }
    wtensor *t = &w->t[w->nt];
    memset(t, 0, sizeof *t);
    if (!(t->name = strdup(name)))
        return r1_error_set(err, R1_ENOMEM, "gguf writer: out of memory");
    t->type = type;
    t->ndim = ndim;
    for (int d = 0; d < R1_GGUF_MAX_DIMS; d++)
        t->ne[d] = d < ndim ? ne[d] : 1;
    t->nelem = nelem;
    t->data = data;
    t->fill = fill;
    t->user = user;
    w->nt++;
    return R1_OK;
}

static r1_status write_pad(r1_afile *af, uint64_t n, r1_error *err)
{
    static const unsigned char zeros[R1_GGUF_ALIGNMENT];
    return r1_afile_write(af, zeros, (size_t)n, err);
}

/* One tensor's data: its fp32 values (borrowed or filled), converted to its type. */
static r1_status write_data(r1_afile *af, const wtensor *t, const char *path, r1_error *err)
{
    float *own = NULL;
    const float *x = t->data;
    if (!x) {
        if (!(own = malloc(sizeof(float) * (t->nelem ? (size_t)t->nelem : 1))) ||
            t->fill(t->user, own, (size_t)t->nelem) != 0) {
            free(own);
            return r1_error_set(err, R1_ENOMEM, "%s: tensor \"%s\": out of memory", path,
                                t->name);
        }
        x = own;
    }
    r1_status s = R1_OK;
    if (t->type == R1_GGML_F32) {
        s = r1_afile_write(af, x, (size_t)t->nelem * 4, err);
    } else {
        uint16_t buf[CHUNK];
        for (uint64_t at = 0; at < t->nelem && s == R1_OK; at += CHUNK) {
            size_t m = t->nelem - at < CHUNK ? (size_t)(t->nelem - at) : CHUNK;
            if (t->type == R1_GGML_BF16)
                r1_bf16_from_f32(buf, x + at, m);
            else
                for (size_t i = 0; i < m; i++)
                    buf[i] = r1_f32_to_f16(x[at + i]);
            s = r1_afile_write(af, buf, m * 2, err);
        }
    }
    free(own);
    return s;
}

r1_status r1_gguf_writer_write(r1_gguf_writer *w, const char *path, r1_error *err)
{
    const uint64_t A = R1_GGUF_ALIGNMENT;
    bytes head = {0};
    put(&head, "GGUF", 4);
    put_u32(&head, R1_GGUF_VERSION);
    put_u64(&head, (uint64_t)w->nt);
    put_u64(&head, (uint64_t)w->nkv);
    put(&head, w->kv.p, w->kv.n);
    uint64_t off = 0;
    for (int i = 0; i < w->nt; i++) {
        const wtensor *t = &w->t[i];
        put_str(&head, t->name);
        put_u32(&head, (uint32_t)t->ndim);
        for (int d = 0; d < t->ndim; d++)
            put_u64(&head, t->ne[d]);
        put_u32(&head, t->type);
        put_u64(&head, off);
        off += align_up(t->nelem * elem_bytes(t->type), A);
    }
    if (head.oom) {
        free(head.p);
        return r1_error_set(err, R1_ENOMEM, "%s: out of memory building the header", path);
    }
    r1_afile af;
    r1_status s = r1_afile_open(&af, path, err);
    if (s != R1_OK) {
        free(head.p);
        return s;
    }
    s = r1_afile_write(&af, head.p, head.n, err);
    if (s == R1_OK)
        s = write_pad(&af, align_up(head.n, A) - head.n, err);
    free(head.p);
    for (int i = 0; i < w->nt && s == R1_OK; i++) {
        uint64_t nb = w->t[i].nelem * elem_bytes(w->t[i].type);
        s = write_data(&af, &w->t[i], path, err);
        if (s == R1_OK)
            s = write_pad(&af, align_up(nb, A) - nb, err);
    }
    if (s != R1_OK) {
        r1_afile_abort(&af);
        return s;
    }
    return r1_afile_commit(&af, err);
}

/* ================================================================== the reader */

typedef struct {
    char *s; /* NUL-terminated copy */
    uint64_t len;
} rstr;

struct r1_gguf {
    char *path;
    FILE *f;
    uint64_t size, data_off, alignment;
    uint32_t version;
    r1_gguf_kv *kv;
    int nkv;
    r1_gguf_tensor *t;
    int nt;
};

/* The parsing cursor: where we are, how much file there is, and whom to blame. */
typedef struct {
    FILE *f;
    uint64_t pos, size;
    const char *path;
    r1_error *err;
} cursor;

static r1_status bad(cursor *c, uint64_t at, r1_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static r1_status bad(cursor *c, uint64_t at, r1_status st, const char *fmt, ...)
{
    char msg[R1_ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return r1_error_set(c->err, st, "%s: offset %llu: %s", c->path, (unsigned long long)at, msg);
}

/* Reads n bytes of the field `what` (for the message). */
static r1_status rd(cursor *c, void *dst, uint64_t n, const char *what)
{
    if (n > c->size - c->pos)
        return bad(c, c->pos, R1_EFORMAT,
                   "truncated: %s needs %llu bytes but the file ends at %llu", what,
                   (unsigned long long)n, (unsigned long long)c->size);
    if (n && fread(dst, 1, (size_t)n, c->f) != (size_t)n)
        return r1_error_set(c->err, R1_EIO, "%s: offset %llu: cannot read %s: %s", c->path,
                            (unsigned long long)c->pos, what,
                            ferror(c->f) ? strerror(errno) : "unexpected end of file");
    c->pos += n;
    return R1_OK;
}

/* A string: u64 length, then the bytes, copied with a NUL. */
static r1_status rd_str(cursor *c, rstr *out, const char *what)
{
    uint64_t at = c->pos, n;
    r1_status s = rd(c, &n, 8, what);
    if (s != R1_OK)
        return s;
    if (n > c->size - c->pos)
        return bad(c, at, R1_EFORMAT,
                   "%s: length %llu runs past the end of the file (%llu bytes left)", what,
                   (unsigned long long)n, (unsigned long long)(c->size - c->pos));
    if (!(out->s = malloc((size_t)n + 1)))
        return r1_error_set(c->err, R1_ENOMEM, "%s: out of memory", c->path);
    out->len = n;
    out->s[n] = 0;
    if ((s = rd(c, out->s, n, what)) != R1_OK) {
        free(out->s);
        out->s = NULL;
    }
    return s;
}

static void free_kv(r1_gguf_kv *kv)
{
    free((char *)kv->key);
    free((char *)kv->str);
    if (kv->type == R1_GGUF_ARRAY && kv->arr_type == R1_GGUF_STRING && kv->data) {
        rstr *v = (rstr *)kv->data;
        for (uint64_t j = 0; j < kv->n; j++)
            free(v[j].s);
    }
    free((void *)kv->data);
}

void r1_gguf_close(r1_gguf *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->nkv; i++)
        free_kv(&g->kv[i]);
    for (int i = 0; i < g->nt; i++)
        free((char *)g->t[i].name);
    free(g->kv);
    free(g->t);
    if (g->f)
        fclose(g->f);
    free(g->path);
    free(g);
}

/* A scalar of type t into kv's u / i / f. */
static r1_status rd_scalar(cursor *c, r1_gguf_kv *kv, r1_gguf_type t)
{
    unsigned char b[8] = {0};
    uint64_t at = c->pos;
    r1_status s = rd(c, b, type_size[t], "the value");
    if (s != R1_OK)
        return s;
    uint64_t u = 0;
    memcpy(&u, b, type_size[t]);
    kv->u = u;
    switch (t) {
    case R1_GGUF_I8: kv->i = (int8_t)u; break;
    case R1_GGUF_I16: kv->i = (int16_t)u; break;
    case R1_GGUF_I32: kv->i = (int32_t)u; break;
    case R1_GGUF_I64: kv->i = (int64_t)u; break;
    case R1_GGUF_F32: {
        float f;
        memcpy(&f, b, 4);
        kv->f = f;
        break;
    }
    case R1_GGUF_F64: memcpy(&kv->f, b, 8); break;
    case R1_GGUF_BOOL:
        if (u > 1)
            return bad(c, at, R1_EFORMAT, "key \"%s\": a bool must be 0 or 1, found %llu",
                       kv->key, (unsigned long long)u);
        break;
    default: break;
    }
    return R1_OK;
}

static r1_status rd_array(cursor *c, r1_gguf_kv *kv)
{
    uint32_t et;
    uint64_t at = c->pos;
    r1_status s = rd(c, &et, 4, "the array's element type");
    if (s == R1_OK && et >= R1_GGUF_NTYPES)
        return bad(c, at, R1_EFORMAT, "key \"%s\": unknown array element type %u (expected 0..%d)",
                   kv->key, (unsigned)et, R1_GGUF_NTYPES - 1);
    if (s == R1_OK && et == R1_GGUF_ARRAY)
        return bad(c, at, R1_EUNSUPPORTED, "key \"%s\": nested arrays are not supported",
                   kv->key);
    at = c->pos;
    if (s != R1_OK || (s = rd(c, &kv->n, 8, "the array's length")) != R1_OK)
        return s;
    kv->arr_type = (r1_gguf_type)et;
    /* every element takes at least one byte (a string at least its 8-byte length) */
    uint64_t least = et == R1_GGUF_STRING ? 8 : type_size[et];
    if (kv->n > (c->size - c->pos) / least)
        return bad(c, at, R1_EFORMAT,
                   "key \"%s\": an array of %llu %s runs past the end of the file", kv->key,
                   (unsigned long long)kv->n, type_names[et]);
    if (et != R1_GGUF_STRING) {
        void *p = malloc(kv->n ? (size_t)(kv->n * least) : 1);
        if (!p)
            return r1_error_set(c->err, R1_ENOMEM, "%s: out of memory", c->path);
        kv->data = p;
        if ((s = rd(c, p, kv->n * least, "the array's elements")) != R1_OK)
            return s;
        if (et == R1_GGUF_BOOL)
            for (uint64_t j = 0; j < kv->n; j++)
                if (((unsigned char *)p)[j] > 1)
                    return bad(c, c->pos - kv->n + j, R1_EFORMAT,
                               "key \"%s\": element %llu: a bool must be 0 or 1", kv->key,
                               (unsigned long long)j);
        return R1_OK;
    }
    rstr *v = calloc(kv->n ? (size_t)kv->n : 1, sizeof *v);
    if (!v)
        return r1_error_set(c->err, R1_ENOMEM, "%s: out of memory", c->path);
    kv->data = v;
    for (uint64_t j = 0; j < kv->n && s == R1_OK; j++)
        s = rd_str(c, &v[j], "an array element");
    return s;
}

/* One key/value pair into kv (which owns what it got, even on failure). */
static r1_status rd_kv(cursor *c, r1_gguf_kv *kv, const r1_gguf_kv *prev, int nprev)
{
    uint64_t at = c->pos;
    rstr key = {0};
    r1_status s = rd_str(c, &key, "a key");
    if (s != R1_OK)
        return s;
    kv->key = key.s;
    if (!key_ok(key.s, key.len))
        return bad(c, at, R1_EFORMAT, "a key must be 1..65535 printable ASCII characters");
    for (int i = 0; i < nprev; i++)
        if (!strcmp(prev[i].key, kv->key))
            return bad(c, at, R1_EFORMAT, "key \"%s\" appears twice", kv->key);
    uint32_t t;
    at = c->pos;
    if ((s = rd(c, &t, 4, "the value type")) != R1_OK)
        return s;
    if (t >= R1_GGUF_NTYPES)
        return bad(c, at, R1_EFORMAT, "key \"%s\": unknown value type %u (expected 0..%d)",
                   kv->key, (unsigned)t, R1_GGUF_NTYPES - 1);
    kv->type = (r1_gguf_type)t;
    kv->n = 1;
    if (t == R1_GGUF_ARRAY)
        return rd_array(c, kv);
    if (t != R1_GGUF_STRING)
        return rd_scalar(c, kv, kv->type);
    rstr v = {0};
    s = rd_str(c, &v, "a string value");
    kv->str = v.s;
    kv->len = v.len;
    return s;
}

/* One tensor info into t (which owns its name even on failure). */
static r1_status rd_tensor(cursor *c, r1_gguf_tensor *t, const r1_gguf_tensor *prev, int nprev,
                           uint64_t alignment)
{
    uint64_t at = c->pos;
    rstr name = {0};
    r1_status s = rd_str(c, &name, "a tensor name");
    if (s != R1_OK)
        return s;
    t->name = name.s;
    if (!name.len || name.len > R1_GGUF_MAX_NAME || strlen(name.s) != name.len)
        return bad(c, at, R1_EFORMAT,
                   "tensor name \"%s\": expected 1..%d bytes without NUL, found %llu",
                   name.s, R1_GGUF_MAX_NAME, (unsigned long long)name.len);
    for (int i = 0; i < nprev; i++)
        if (!strcmp(prev[i].name, t->name))
            return bad(c, at, R1_EFORMAT, "tensor \"%s\" appears twice", t->name);
    uint32_t nd;
    at = c->pos;
    if ((s = rd(c, &nd, 4, "the tensor's rank")) != R1_OK)
        return s;
    if (nd < 1 || nd > R1_GGUF_MAX_DIMS)
        return bad(c, at, R1_EFORMAT, "tensor \"%s\": rank %u, expected 1..%d", t->name,
                   (unsigned)nd, R1_GGUF_MAX_DIMS);
    t->ndim = (int)nd;
    uint64_t nelem = 1;
    int overflow = 0;
    for (int d = 0; d < R1_GGUF_MAX_DIMS; d++) {
        t->ne[d] = 1;
        if (d < t->ndim && (s = rd(c, &t->ne[d], 8, "a tensor dimension")) != R1_OK)
            return s;
        overflow |= t->ne[d] > (uint64_t)INT64_MAX || __builtin_mul_overflow(nelem, t->ne[d],
                                                                            &nelem);
    }
    if (overflow || nelem > (uint64_t)INT64_MAX / 8)
        return bad(c, at, R1_EFORMAT, "tensor \"%s\": its dimensions overflow", t->name);
    if ((s = rd(c, &t->type, 4, "the tensor's type")) != R1_OK)
        return s;
    t->nbytes = nelem * elem_bytes(t->type);
    at = c->pos;
    if ((s = rd(c, &t->offset, 8, "the tensor's offset")) != R1_OK)
        return s;
    if (t->offset % alignment)
        return bad(c, at, R1_EFORMAT,
                   "tensor \"%s\": data offset %llu is not a multiple of the alignment %llu",
                   t->name, (unsigned long long)t->offset, (unsigned long long)alignment);
    return R1_OK;
}

/* general.alignment, when present: a u32 power of two. */
static r1_status find_alignment(cursor *c, r1_gguf *g)
{
    g->alignment = R1_GGUF_ALIGNMENT;
    const r1_gguf_kv *a = r1_gguf_kv_find(g, "general.alignment");
    if (!a)
        return R1_OK;
    if (a->type != R1_GGUF_U32 || !a->u || (a->u & (a->u - 1)))
        return r1_error_set(c->err, R1_EFORMAT,
                            "%s: key \"general.alignment\": expected a u32 power of two, found "
                            "%s %llu",
                            c->path, r1_gguf_type_name(a->type), (unsigned long long)a->u);
    g->alignment = a->u;
    return R1_OK;
}

static int by_offset(const void *a, const void *b)
{
    const r1_gguf_tensor *x = *(const r1_gguf_tensor *const *)a;
    const r1_gguf_tensor *y = *(const r1_gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Every tensor r1lab can size lies inside the file, and no two overlap. */
static r1_status check_extents(cursor *c, r1_gguf *g)
{
    uint64_t room = g->size - g->data_off;
    const r1_gguf_tensor **v = malloc(sizeof *v * (size_t)(g->nt ? g->nt : 1));
    if (!v)
        return r1_error_set(c->err, R1_ENOMEM, "%s: out of memory", c->path);
    int n = 0;
    r1_status s = R1_OK;
    for (int i = 0; i < g->nt && s == R1_OK; i++) {
        const r1_gguf_tensor *t = &g->t[i];
        if (t->offset > room || t->nbytes > room - t->offset)
            s = r1_error_set(c->err, R1_EFORMAT,
                             "%s: tensor \"%s\": data [%llu, %llu) past the data section's "
                             "start %llu lies beyond the end of the file at %llu (truncated?)",
                             c->path, t->name, (unsigned long long)t->offset,
                             (unsigned long long)(t->offset + t->nbytes),
                             (unsigned long long)g->data_off, (unsigned long long)g->size);
        else if (t->nbytes)
            v[n++] = t;
    }
    if (s == R1_OK)
        qsort(v, (size_t)n, sizeof *v, by_offset);
    for (int i = 1; i < n && s == R1_OK; i++)
        if (v[i - 1]->offset + v[i - 1]->nbytes > v[i]->offset)
            s = r1_error_set(c->err, R1_EFORMAT, "%s: the data of tensors \"%s\" and \"%s\" "
                             "overlap", c->path, v[i - 1]->name, v[i]->name);
    free(v);
    return s;
}

static r1_status parse(cursor *c, r1_gguf *g)
{
    char magic[4];
    uint64_t nt, nkv;
    r1_status s = rd(c, magic, 4, "the magic \"GGUF\"");
    if (s != R1_OK)
        return s;
    if (memcmp(magic, "GGUF", 4) != 0)
        return bad(c, 0, R1_EFORMAT,
                   "bad magic %02x %02x %02x %02x: expected \"GGUF\" (47 47 55 46); not a GGUF "
                   "file", (unsigned char)magic[0], (unsigned char)magic[1],
                   (unsigned char)magic[2], (unsigned char)magic[3]);
    if ((s = rd(c, &g->version, 4, "the version")) != R1_OK)
        return s;
    if (g->version != 2 && g->version != 3)
        return bad(c, 4, R1_EUNSUPPORTED, "GGUF version %u: r1lab reads versions 2 and 3",
                   (unsigned)g->version);
    if ((s = rd(c, &nt, 8, "the tensor count")) != R1_OK ||
        (s = rd(c, &nkv, 8, "the key/value count")) != R1_OK)
        return s;
    /* a pair takes at least 8 + 1 + 4 + 1 bytes, a tensor info 8 + 1 + 4 + 8 + 4 + 8 */
    uint64_t left = c->size - c->pos;
    if (nkv > left / 14 || nt > left / 33 || nt > (uint64_t)(INT32_MAX / 2) ||
        nkv > (uint64_t)(INT32_MAX / 2))
        return bad(c, 8, R1_EFORMAT,
                   "truncated or corrupt: %llu tensors and %llu key/value pairs cannot fit in the "
                   "%llu bytes left",
                   (unsigned long long)nt, (unsigned long long)nkv, (unsigned long long)left);
    if (!(g->kv = calloc(nkv ? (size_t)nkv : 1, sizeof *g->kv)) ||
        !(g->t = calloc(nt ? (size_t)nt : 1, sizeof *g->t)))
        return r1_error_set(c->err, R1_ENOMEM, "%s: out of memory", c->path);
    for (uint64_t i = 0; i < nkv; i++) {
        s = rd_kv(c, &g->kv[i], g->kv, g->nkv);
        g->nkv++; /* owned either way */
        if (s != R1_OK)
            return s;
    }
    if ((s = find_alignment(c, g)) != R1_OK)
        return s;
    for (uint64_t i = 0; i < nt; i++) {
        s = rd_tensor(c, &g->t[i], g->t, g->nt, g->alignment);
        g->nt++;
        if (s != R1_OK)
            return s;
    }
    g->data_off = align_up(c->pos, g->alignment);
    if (nt && g->data_off > g->size)
        return bad(c, c->pos, R1_EFORMAT,
                   "truncated: the data section should start at %llu but the file ends at %llu",
                   (unsigned long long)g->data_off, (unsigned long long)g->size);
    return check_extents(c, g);
}

r1_status r1_gguf_open(r1_gguf **out, const char *path, r1_error *err)
{
    *out = NULL;
    r1_gguf *g = calloc(1, sizeof *g);
    if (!g || !(g->path = strdup(path))) {
        free(g);
        return r1_error_set(err, R1_ENOMEM, "%s: out of memory", path);
    }
    struct stat sb;
    if (!(g->f = fopen(path, "rb")) || fstat(fileno(g->f), &sb) != 0) {
        int e = errno;
        r1_gguf_close(g);
        return r1_error_set(err, e == ENOENT ? R1_ENOTFOUND : R1_EIO, "%s: cannot open: %s",
                            path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        r1_gguf_close(g);
        return r1_error_set(err, R1_EIO, "%s: not a regular file", path);
    }
    g->size = (uint64_t)sb.st_size;
    cursor c = {g->f, 0, g->size, g->path, err};
    r1_status s = parse(&c, g);
    if (s != R1_OK) {
        r1_gguf_close(g);
        return s;
    }
    *out = g;
    return R1_OK;
}

uint32_t r1_gguf_version(const r1_gguf *g)
{
    return g->version;
}

uint64_t r1_gguf_alignment(const r1_gguf *g)
{
    return g->alignment;
}

uint64_t r1_gguf_data_offset(const r1_gguf *g)
{
    return g->data_off;
}

int r1_gguf_kv_count(const r1_gguf *g)
{
    return g->nkv;
}

const r1_gguf_kv *r1_gguf_kv_at(const r1_gguf *g, int i)
{
    return i >= 0 && i < g->nkv ? &g->kv[i] : NULL;
}

const r1_gguf_kv *r1_gguf_kv_find(const r1_gguf *g, const char *key)
{
    for (int i = 0; i < g->nkv; i++)
        if (g->kv[i].key && !strcmp(g->kv[i].key, key))
            return &g->kv[i];
    return NULL;
}

const char *r1_gguf_arr_str(const r1_gguf_kv *kv, uint64_t j, uint64_t *len)
{
    if (!kv || kv->type != R1_GGUF_ARRAY || kv->arr_type != R1_GGUF_STRING || j >= kv->n)
        return NULL;
    const rstr *v = kv->data;
    if (len)
        *len = v[j].len;
    return v[j].s;
}

int r1_gguf_tensor_count(const r1_gguf *g)
{
    return g->nt;
}

const r1_gguf_tensor *r1_gguf_tensor_at(const r1_gguf *g, int i)
{
    return i >= 0 && i < g->nt ? &g->t[i] : NULL;
}

int r1_gguf_tensor_find(const r1_gguf *g, const char *name)
{
    for (int i = 0; i < g->nt; i++)
        if (!strcmp(g->t[i].name, name))
            return i;
    return -1;
}

r1_status r1_gguf_read_tensor(const r1_gguf *g, int i, void *dst, size_t n, r1_error *err)
{
    const r1_gguf_tensor *t = r1_gguf_tensor_at(g, i);
    if (!t)
        return r1_error_set(err, R1_EINVAL, "%s: no tensor %d (the file has %d)", g->path, i,
                            g->nt);
    if (!t->nbytes && elem_bytes(t->type) == 0)
        return r1_error_set(err, R1_EUNSUPPORTED,
                            "%s: tensor \"%s\": r1lab reads F32, F16 and BF16, not %s", g->path,
                            t->name, r1_ggml_type_name(t->type));
    if (n != t->nbytes)
        return r1_error_set(err, R1_EINVAL,
                            "%s: tensor \"%s\" holds %llu bytes, the buffer %zu", g->path,
                            t->name, (unsigned long long)t->nbytes, n);
    uint64_t at = g->data_off + t->offset, done = 0;
    while (done < n) {
        ssize_t r = pread(fileno(g->f), (char *)dst + done, n - done, (off_t)(at + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r1_error_set(err, r < 0 ? R1_EIO : R1_EFORMAT,
                                "%s: tensor \"%s\": cannot read its bytes at offset %llu: %s",
                                g->path, t->name, (unsigned long long)(at + done),
                                r < 0 ? strerror(errno) : "the file ended (truncated?)");
        done += (uint64_t)r;
    }
    return R1_OK;
}
