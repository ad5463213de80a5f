/* safetensors_write.c — the safetensors writer (r1_st_writer, declared in r1_safetensors.h).
 *
 * Ownership: the writer owns copies of the tensor names and the metadata; tensor data is
 * borrowed until r1_st_writer_write returns.  The file goes through atomic_file.h (temporary
 * name, fflush, fsync, rename), so a failed or interrupted write leaves the old file, if any,
 * in place and no temporary file behind.
 *
 * Errors: bad arguments to add / meta are R1_EINVAL with a message naming the tensor or key;
 * file errors R1_EIO naming the path; R1_ENOMEM. */
#include <config.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "r1_bf16.h"
#include "atomic_file.h"
#include "r1_safetensors.h"

/* Elements converted per chunk when storing F32 as BF16 or F16. */
#define CHUNK 8192

/* Data is written as it lies in memory; safetensors is little-endian. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "r1lab assumes a little-endian host");

typedef struct {
    char *name; /* owned */
    r1_dtype dst, src;
    const void *data; /* borrowed until r1_st_writer_write returns */
    int ndim;
    int64_t shape[R1_ST_MAXDIM];
    uint64_t nelem;
} wtensor;

struct r1_st_writer {
    wtensor *t;
    int n, cap;
    json_t *meta; /* object of strings */
};

r1_st_writer *r1_st_writer_new(void)
{
    r1_st_writer *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->meta = json_object();
    if (!w->meta || json_object_set_new(w->meta, "format", json_string("pt")) != 0) {
        r1_st_writer_free(w);
        return NULL;
    }
    return w;
}

void r1_st_writer_free(r1_st_writer *w)
{
    if (!w)
        return;
    for (int i = 0; i < w->n; i++)
        free(w->t[i].name);
    free(w->t);
    json_decref(w->meta);
    free(w);
}

static int utf8_ok(const char *s)
{
    json_t *j = json_string(s); /* NULL when s is not valid UTF-8 */
    json_decref(j);
    return j != NULL;
}

r1_status r1_st_writer_add(r1_st_writer *w, const char *name, r1_dtype dst, r1_dtype src,
                           const void *data, int ndim, const int64_t *shape, r1_error *err)
{
    if (!name || !*name || strcmp(name, "__metadata__") == 0 || !utf8_ok(name))
        return r1_error_set(err, R1_EINVAL,
                            "safetensors writer: tensor name \"%s\" is not "
                            "allowed (empty, \"__metadata__\" or not UTF-8)",
                            name ? name : "");
    if ((unsigned)dst >= R1_DT_COUNT || (unsigned)src >= R1_DT_COUNT)
        return r1_error_set(err, R1_EINVAL, "safetensors writer: tensor \"%s\": bad dtype", name);
    if (!(src == dst || (src == R1_DT_F32 && (dst == R1_DT_BF16 || dst == R1_DT_F16))))
        return r1_error_set(err, R1_EINVAL,
                            "safetensors writer: tensor \"%s\": cannot store %s "
                            "data as %s (F32 converts to BF16 or F16; otherwise the dtypes must "
                            "agree)",
                            name, r1_dtype_name(src), r1_dtype_name(dst));
    if (ndim < 0 || ndim > R1_ST_MAXDIM)
        return r1_error_set(err, R1_EINVAL,
                            "safetensors writer: tensor \"%s\": rank %d is out "
                            "of range [0, %d]",
                            name, ndim, R1_ST_MAXDIM);
    uint64_t nelem = 1, bytes;
    int overflow = 0;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return r1_error_set(err, R1_EINVAL,
                                "safetensors writer: tensor \"%s\": dimension "
                                "%d is negative (%lld)",
                                name, i, (long long)shape[i]);
        overflow |= __builtin_mul_overflow(nelem, (uint64_t)shape[i], &nelem);
    }
    overflow |= __builtin_mul_overflow(nelem, (uint64_t)8, &bytes);
    if (overflow || bytes > (uint64_t)SIZE_MAX / 2)
        return r1_error_set(err, R1_EINVAL, "safetensors writer: tensor \"%s\" is too large", name);
    if (!data && nelem)
        return r1_error_set(err, R1_EINVAL, "safetensors writer: tensor \"%s\": no data", name);
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return r1_error_set(err, R1_EINVAL,
                                "safetensors writer: tensor \"%s\" was already "
                                "added",
                                name);
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 64;
        wtensor *t = realloc(w->t, sizeof *t * (size_t)cap);
        if (!t)
            return r1_error_set(err, R1_ENOMEM, "safetensors writer: out of memory");
        w->t = t;
        w->cap = cap;
    }
    wtensor *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    if (!(t->name = strdup(name)))
        return r1_error_set(err, R1_ENOMEM, "safetensors writer: out of memory");
    t->dst = dst;
    t->src = src;
    t->data = data;
    t->ndim = ndim;
    if (ndim)
        memcpy(t->shape, shape, sizeof *shape * (size_t)ndim);
    t->nelem = nelem;
    w->n++;
    return R1_OK;
}

r1_status r1_st_writer_meta(r1_st_writer *w, const char *key, const char *value, r1_error *err)
{
    if (!key || !*key || !value)
        return r1_error_set(err, R1_EINVAL,
                            "safetensors writer: metadata needs a key and a "
                            "value");
    json_t *v = json_string(value);
    if (!v || json_object_set_new(w->meta, key, v) != 0)
        return r1_error_set(err, R1_EINVAL,
                            "safetensors writer: metadata \"%s\": the key and "
                            "the value must be valid UTF-8",
                            key);
    return R1_OK;
}

/* The JSON header: __metadata__ first, then the tensors in the order added, their data laid
 * out back to back from offset 0.  The reference reader (huggingface/safetensors) refuses any
 * gap between tensors, so only the data start is aligned, through the header padding. */
static char *build_header(const r1_st_writer *w, size_t *len)
{
    /* json_*_set_new, json_array_append_new and json_pack's "o" take their value even when
     * they fail (and fail on NULL), so nothing below leaks on out-of-memory. */
    json_t *root = json_object();
    int bad = json_object_set(root, "__metadata__", w->meta) != 0;
    uint64_t off = 0;
    for (int i = 0; i < w->n && !bad; i++) {
        const wtensor *t = &w->t[i];
        uint64_t end = off + t->nelem * r1_dtype_size(t->dst);
        json_t *shape = json_array();
        for (int d = 0; d < t->ndim; d++)
            bad |= json_array_append_new(shape, json_integer(t->shape[d])) != 0;
        json_t *e = json_pack("{s:s, s:o, s:[I, I]}", "dtype", r1_dtype_name(t->dst), "shape",
                              shape, "data_offsets", (json_int_t)off, (json_int_t)end);
        bad |= json_object_set_new(root, t->name, e) != 0;
        off = end;
    }
    char *text = bad ? NULL : json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (text)
        *len = strlen(text);
    return text;
}

static r1_status write_data(r1_afile *af, const wtensor *t, r1_error *err)
{
    if (t->src == t->dst)
        return r1_afile_write(af, t->data, (size_t)t->nelem * r1_dtype_size(t->dst), err);
    uint16_t buf[CHUNK];
    const float *x = t->data;
    r1_status s = R1_OK;
    for (uint64_t at = 0; at < t->nelem && s == R1_OK; at += CHUNK) {
        size_t m = t->nelem - at < CHUNK ? (size_t)(t->nelem - at) : CHUNK;
        for (size_t i = 0; i < m; i++)
            buf[i] = t->dst == R1_DT_BF16 ? r1_f32_to_bf16(x[at + i]) : r1_f32_to_f16(x[at + i]);
        s = r1_afile_write(af, buf, m * 2, err);
    }
    return s;
}

r1_status r1_st_writer_write(r1_st_writer *w, const char *path, r1_error *err)
{
    size_t len = 0;
    char *header = build_header(w, &len);
    if (!header)
        return r1_error_set(err, R1_ENOMEM, "%s: out of memory building the header", path);
    size_t padded = (len + 7) / 8 * 8; /* the data starts 8-byte aligned */
    unsigned char lenb[8];
    for (int i = 0; i < 8; i++)
        lenb[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    r1_afile af;
    r1_status s = r1_afile_open(&af, path, err);
    if (s != R1_OK) {
        free(header);
        return s;
    }
    static const char spaces[] = "       "; /* at most 7 bytes of padding */
    s = r1_afile_write(&af, lenb, 8, err);
    if (s == R1_OK)
        s = r1_afile_write(&af, header, len, err);
    if (s == R1_OK)
        s = r1_afile_write(&af, spaces, padded - len, err);
    for (int i = 0; i < w->n && s == R1_OK; i++)
        s = write_data(&af, &w->t[i], err);
    free(header);
    if (s != R1_OK) {
        r1_afile_abort(&af);
        return s;
    }
    return r1_afile_commit(&af, err);
}
