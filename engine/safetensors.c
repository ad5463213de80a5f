/* safetensors.c — the safetensors reader (single files and sharded folders), the dtype table
 * and the fp16 / bf16 conversions.  The writer is in safetensors_write.c.
 *
 * Reading: r1_st_open reads and checks every header up front and keeps one file descriptor
 * per shard; tensor data is read on demand with pread, so an open r1_st costs only its
 * headers and concurrent reads from several threads are safe.  The r1_st owns its names,
 * paths and descriptors; r1_st_close releases them.
 *
 * Errors: every failure returns a status and fills r1_error with a message naming the file
 * and, where there is one, the tensor.  Malformed files are R1_EFORMAT, missing files and
 * tensors R1_ENOTFOUND, system errors R1_EIO, bad arguments R1_EINVAL. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "r1_bf16.h"
#include "r1_fp8.h"
#include "r1_safetensors.h"

/* safetensors data is little-endian; the reader and the writer copy it as it lies in memory. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "r1lab assumes a little-endian host");

/* The header size limit of the reference implementation. */
#define HEADER_MAX 100000000ull
/* Elements converted per chunk when reading or writing through a conversion. */
#define CHUNK 8192

static const struct {
    const char *name;
    size_t size;
} dtypes[R1_DT_COUNT] = {
    [R1_DT_F32] = {"F32", 4}, [R1_DT_F16] = {"F16", 2},         [R1_DT_BF16] = {"BF16", 2},
    [R1_DT_I32] = {"I32", 4}, [R1_DT_I64] = {"I64", 8},         [R1_DT_U8] = {"U8", 1},
    [R1_DT_I8] = {"I8", 1},   [R1_DT_F8_E4M3] = {"F8_E4M3", 1}, [R1_DT_F8_E5M2] = {"F8_E5M2", 1},
};
#define KNOWN_DTYPES "F32, F16, BF16, I32, I64, U8, I8, F8_E4M3, F8_E5M2"

const char *r1_dtype_name(r1_dtype dt)
{
    return (unsigned)dt < R1_DT_COUNT ? dtypes[dt].name : "?";
}

size_t r1_dtype_size(r1_dtype dt)
{
    return (unsigned)dt < R1_DT_COUNT ? dtypes[dt].size : 0;
}

static int dtype_from_name(const char *s)
{
    for (int i = 0; i < R1_DT_COUNT; i++)
        if (strcmp(s, dtypes[i].name) == 0)
            return i;
    return -1;
}

/* ------------------------------------------------------------------ conversions */

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float r1_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    if (exp == 0x1f) /* inf, or NaN with its payload */
        return bits_f32(sign | 0x7f800000u | (man << 13));
    if (exp != 0) /* normal: rebias 15 -> 127 */
        return bits_f32(sign | ((exp + 112u) << 23) | (man << 13));
    if (man == 0)
        return bits_f32(sign);
    /* subnormal man * 2^-24: shift the leading 1 up to the implicit bit */
    uint32_t e = 113;
    while (!(man & 0x400u)) {
        man <<= 1;
        e--;
    }
    return bits_f32(sign | (e << 23) | ((man & 0x3ffu) << 13));
}

uint16_t r1_f32_to_f16(float f)
{
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    u &= 0x7fffffffu;
    if (u >= 0x7f800000u) /* inf, or NaN kept quiet with the top of its payload */
        return u == 0x7f800000u ? sign | 0x7c00u : sign | 0x7e00u | ((u >> 13) & 0x3ffu);
    if (u >= 0x477ff000u) /* >= 65520, halfway past 65504: rounds (ties to even) to inf */
        return sign | 0x7c00u;
    if (u >= 0x38800000u) { /* normal in f16 (>= 2^-14): rebias 127 -> 15, round 13 bits */
        uint32_t r = (u >> 13) - (112u << 10), rem = u & 0x1fffu;
        if (rem > 0x1000u || (rem == 0x1000u && (r & 1u)))
            r++;
        return sign | (uint16_t)r;
    }
    /* subnormal in f16: the result is m * 2^-24 with m = round(mantissa24 >> (126 - exp)) */
    uint32_t exp = u >> 23;
    if (exp < 102) /* below 2^-25: rounds to zero */
        return sign;
    uint32_t m = (u & 0x7fffffu) | 0x800000u, shift = 126 - exp;
    uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1u)))
        r++; /* may carry into the smallest normal, 0x0400, which is the right encoding */
    return sign | (uint16_t)r;
}

/* ------------------------------------------------------------------ reader state */

typedef struct {
    char *name; /* owned */
    int shard;  /* index into r1_st.shards */
    r1_dtype dt;
    int ndim;
    int64_t shape[R1_ST_MAXDIM];
    uint64_t begin, end; /* byte range relative to the shard's data start */
} tensor;

typedef struct {
    char *path;       /* owned */
    const char *file; /* the last path component, inside path */
    int fd;
    uint64_t data_start; /* 8 + header length */
    uint64_t data_size;
} shard;

typedef struct {
    const char *name; /* borrowed from tensor */
    int i;
} name_ix;

struct r1_st {
    char *path; /* as given to r1_st_open, for messages */
    shard *shards;
    int nshards;
    tensor *t;
    int n, cap;
    name_ix *ix; /* [n] sorted by name */
};

/* Formats "path: tensor \"name\": detail" (or "path: detail" when name is NULL). */
static r1_status st_fail(r1_error *err, r1_status s, const char *path, const char *name,
                         const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static r1_status st_fail(r1_error *err, r1_status s, const char *path, const char *name,
                         const char *fmt, ...)
{
    char detail[R1_ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    if (name)
        return r1_error_set(err, s, "%s: tensor \"%s\": %s", path, name, detail);
    return r1_error_set(err, s, "%s: %s", path, detail);
}

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "an unknown value";
}

/* "[2, 3]" */
static const char *fmt_shape(char *buf, size_t n, int ndim, const int64_t *shape)
{
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < n)
        snprintf(buf + k, n - k, "]");
    return buf;
}

static r1_status read_at(const shard *sh, void *buf, size_t n, uint64_t off, r1_error *err)
{
    char *p = buf;
    while (n) {
        ssize_t r = pread(sh->fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return st_fail(err, R1_EIO, sh->path, NULL, "read failed: %s", strerror(errno));
        if (r == 0)
            return st_fail(err, R1_EIO, sh->path, NULL,
                           "unexpected end of file at byte %llu (was the file truncated?)",
                           (unsigned long long)off);
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return R1_OK;
}

/* ------------------------------------------------------------------ header parsing */

/* Reads a JSON array of non-negative integers of length [lo, hi] into out. */
static int int_array(const json_t *a, size_t lo, size_t hi, int64_t *out, size_t *n)
{
    if (!json_is_array(a) || json_array_size(a) < lo || json_array_size(a) > hi)
        return 0;
    for (size_t i = 0; i < json_array_size(a); i++) {
        const json_t *v = json_array_get(a, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return 0;
        out[i] = json_integer_value(v);
    }
    *n = json_array_size(a);
    return 1;
}

static r1_status parse_entry(tensor *t, const char *name, const json_t *v, const shard *sh,
                             r1_error *err)
{
    const char *path = sh->path;
    if (!json_is_object(v))
        return st_fail(err, R1_EFORMAT, path, name, "expected an object, found %s",
                       json_type_name(v));
    const json_t *dt = json_object_get(v, "dtype"), *shape = json_object_get(v, "shape"),
                 *offs = json_object_get(v, "data_offsets");
    if (!dt || !shape || !offs)
        return st_fail(err, R1_EFORMAT, path, name, "missing \"%s\"",
                       !dt      ? "dtype"
                       : !shape ? "shape"
                                : "data_offsets");
    if (!json_is_string(dt))
        return st_fail(err, R1_EFORMAT, path, name, "\"dtype\" should be a string, found %s",
                       json_type_name(dt));
    int d = dtype_from_name(json_string_value(dt));
    if (d < 0)
        return st_fail(err, R1_EFORMAT, path, name,
                       "unknown dtype \"%s\" (known: " KNOWN_DTYPES ")", json_string_value(dt));
    size_t ndim, no;
    if (!int_array(shape, 0, R1_ST_MAXDIM, t->shape, &ndim))
        return st_fail(err, R1_EFORMAT, path, name,
                       "\"shape\" should be an array of at most %d non-negative integers",
                       R1_ST_MAXDIM);
    int64_t off[2];
    if (!int_array(offs, 2, 2, off, &no))
        return st_fail(err, R1_EFORMAT, path, name,
                       "\"data_offsets\" should be an array of two non-negative integers");
    t->dt = (r1_dtype)d;
    t->ndim = (int)ndim;
    t->begin = (uint64_t)off[0];
    t->end = (uint64_t)off[1];
    if (t->begin > t->end)
        return st_fail(err, R1_EFORMAT, path, name, "data_offsets [%llu, %llu] run backwards",
                       (unsigned long long)t->begin, (unsigned long long)t->end);
    if (t->end > sh->data_size)
        return st_fail(err, R1_EFORMAT, path, name,
                       "data_offsets [%llu, %llu] run past the end of the data (%llu bytes)",
                       (unsigned long long)t->begin, (unsigned long long)t->end,
                       (unsigned long long)sh->data_size);
    uint64_t bytes = dtypes[d].size;
    int overflow = 0;
    for (int i = 0; i < t->ndim; i++)
        overflow |= __builtin_mul_overflow(bytes, (uint64_t)t->shape[i], &bytes);
    char sb[160];
    if (overflow) /* the product wrapped: its remainder would be a misleading size */
        return st_fail(err, R1_EFORMAT, path, name,
                       "shape %s of %s needs more than 2^64 bytes; data_offsets [%llu, %llu] "
                       "hold %llu", fmt_shape(sb, sizeof sb, t->ndim, t->shape), dtypes[d].name,
                       (unsigned long long)t->begin, (unsigned long long)t->end,
                       (unsigned long long)(t->end - t->begin));
    if (bytes != t->end - t->begin)
        return st_fail(err, R1_EFORMAT, path, name,
                       "shape %s of %s needs %llu bytes but data_offsets [%llu, %llu] hold %llu",
                       fmt_shape(sb, sizeof sb, t->ndim, t->shape), dtypes[d].name,
                       (unsigned long long)bytes, (unsigned long long)t->begin,
                       (unsigned long long)t->end, (unsigned long long)(t->end - t->begin));
    return R1_OK;
}

static r1_status check_metadata(const json_t *meta, const char *path, r1_error *err)
{
    if (!json_is_object(meta))
        return st_fail(err, R1_EFORMAT, path, NULL,
                       "\"__metadata__\" should be an object of strings, found %s",
                       json_type_name(meta));
    const char *k;
    json_t *v;
    json_object_foreach ((json_t *)meta, k, v)
        if (!json_is_string(v))
            return st_fail(err, R1_EFORMAT, path, NULL,
                           "\"__metadata__\" entry \"%s\" should be a string, found %s", k,
                           json_type_name(v));
    return R1_OK;
}

typedef struct {
    uint64_t begin, end;
    int i;
} range;

static int range_cmp(const void *a, const void *b)
{
    const range *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : 0;
}

/* Tensors [first, st->n) all come from one shard: no two byte ranges may share a byte. */
static r1_status check_overlaps(const r1_st *st, int first, const char *path, r1_error *err)
{
    int n = 0;
    range *r = malloc(sizeof *r * (size_t)(st->n - first + 1));
    if (!r)
        return st_fail(err, R1_ENOMEM, path, NULL, "out of memory");
    for (int i = first; i < st->n; i++)
        if (st->t[i].end > st->t[i].begin) /* empty tensors occupy no bytes */
            r[n++] = (range){st->t[i].begin, st->t[i].end, i};
    qsort(r, (size_t)n, sizeof *r, range_cmp);
    r1_status s = R1_OK;
    int reach = -1; /* the range reaching furthest so far */
    for (int k = 0; k < n && s == R1_OK; k++) {
        if (reach >= 0 && r[k].begin < r[reach].end) {
            const tensor *a = &st->t[r[reach].i], *b = &st->t[r[k].i];
            s = st_fail(err, R1_EFORMAT, path, NULL,
                        "tensors \"%s\" [%llu, %llu] and \"%s\" [%llu, %llu] overlap", a->name,
                        (unsigned long long)a->begin, (unsigned long long)a->end, b->name,
                        (unsigned long long)b->begin, (unsigned long long)b->end);
        }
        if (reach < 0 || r[k].end > r[reach].end)
            reach = k;
    }
    free(r);
    return s;
}

static r1_status push_tensor(r1_st *st, tensor **out, const char *path)
{
    if (st->n == st->cap) {
        int cap = st->cap ? 2 * st->cap : 64;
        tensor *t = realloc(st->t, sizeof *t * (size_t)cap);
        if (!t)
            return st_fail(NULL, R1_ENOMEM, path, NULL, "out of memory");
        st->t = t;
        st->cap = cap;
    }
    *out = &st->t[st->n];
    memset(*out, 0, sizeof **out);
    return R1_OK;
}

/* Parses the header JSON of sh and appends its tensors to st. */
static r1_status parse_header(r1_st *st, int si, const char *text, size_t len, r1_error *err)
{
    const shard *sh = &st->shards[si];
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return st_fail(err, R1_EFORMAT, sh->path, NULL,
                       "the header is not valid JSON: %s (line %d, column %d)", je.text, je.line,
                       je.column);
    r1_status s = R1_OK;
    if (!json_is_object(root))
        s = st_fail(err, R1_EFORMAT, sh->path, NULL, "the header should be a JSON object, found %s",
                    json_type_name(root));
    int first = st->n;
    const char *name;
    json_t *v;
    json_object_foreach (root, name, v) {
        if (s != R1_OK)
            break;
        if (strcmp(name, "__metadata__") == 0) {
            s = check_metadata(v, sh->path, err);
            continue;
        }
        tensor *t = NULL;
        if ((s = push_tensor(st, &t, sh->path)) != R1_OK) {
            st_fail(err, s, sh->path, NULL, "out of memory");
            break;
        }
        t->shard = si;
        if ((s = parse_entry(t, name, v, sh, err)) != R1_OK)
            break;
        if (!(t->name = strdup(name))) {
            s = st_fail(err, R1_ENOMEM, sh->path, NULL, "out of memory");
            break;
        }
        st->n++;
    }
    json_decref(root);
    if (s == R1_OK)
        s = check_overlaps(st, first, sh->path, err);
    return s;
}

/* Opens the safetensors file at path as a new shard of st and reads its header. */
static r1_status load_shard(r1_st *st, const char *path, r1_error *err)
{
    shard *sh = realloc(st->shards, sizeof *sh * (size_t)(st->nshards + 1));
    if (!sh)
        return st_fail(err, R1_ENOMEM, path, NULL, "out of memory");
    st->shards = sh;
    sh = &st->shards[st->nshards];
    memset(sh, 0, sizeof *sh);
    sh->fd = -1;
    if (!(sh->path = strdup(path)))
        return st_fail(err, R1_ENOMEM, path, NULL, "out of memory");
    const char *slash = strrchr(sh->path, '/');
    sh->file = slash ? slash + 1 : sh->path;
    st->nshards++; /* from here on r1_st_close releases it */

    /* O_NONBLOCK: a FIFO named as a shard must not block the open before the check below
     * (it changes nothing for the regular files that pass) */
    sh->fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (sh->fd < 0)
        return st_fail(err, errno == ENOENT ? R1_ENOTFOUND : R1_EIO, path, NULL, "cannot open: %s",
                       strerror(errno));
    struct stat sb;
    if (fstat(sh->fd, &sb) != 0)
        return st_fail(err, R1_EIO, path, NULL, "cannot stat: %s", strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return st_fail(err, R1_EFORMAT, path, NULL, "not a regular file");
    uint64_t size = (uint64_t)sb.st_size;
    if (size < 8)
        return st_fail(err, R1_EFORMAT, path, NULL,
                       "the file is %llu bytes, too short for the 8-byte header length",
                       (unsigned long long)size);
    unsigned char lenb[8];
    r1_status s = read_at(sh, lenb, 8, 0, err);
    if (s != R1_OK)
        return s;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | lenb[i];
    if (hlen > size - 8)
        return st_fail(err, R1_EFORMAT, path, NULL,
                       "header length %llu runs past the end of the file (%llu bytes)",
                       (unsigned long long)hlen, (unsigned long long)size);
    if (hlen > HEADER_MAX)
        return st_fail(err, R1_EFORMAT, path, NULL,
                       "header length %llu exceeds the limit of %llu bytes",
                       (unsigned long long)hlen, HEADER_MAX);
    sh->data_start = 8 + hlen;
    sh->data_size = size - sh->data_start;
    char *text = malloc(hlen ? hlen : 1);
    if (!text)
        return st_fail(err, R1_ENOMEM, path, NULL, "out of memory");
    s = read_at(sh, text, hlen, 8, err);
    if (s == R1_OK)
        s = parse_header(st, st->nshards - 1, text, hlen, err);
    free(text);
    return s;
}

/* ------------------------------------------------------------------ opening */

static int ix_cmp(const void *a, const void *b)
{
    return strcmp(((const name_ix *)a)->name, ((const name_ix *)b)->name);
}

/* Sorts the names for r1_st_find; two shards may not hold the same name. */
static r1_status build_index(r1_st *st, r1_error *err)
{
    st->ix = malloc(sizeof *st->ix * (size_t)(st->n ? st->n : 1));
    if (!st->ix)
        return st_fail(err, R1_ENOMEM, st->path, NULL, "out of memory");
    for (int i = 0; i < st->n; i++)
        st->ix[i] = (name_ix){st->t[i].name, i};
    qsort(st->ix, (size_t)st->n, sizeof *st->ix, ix_cmp);
    for (int i = 1; i < st->n; i++)
        if (strcmp(st->ix[i - 1].name, st->ix[i].name) == 0)
            return st_fail(err, R1_EFORMAT, st->path, st->ix[i].name, "appears in both %s and %s",
                           st->shards[st->t[st->ix[i - 1].i].shard].path,
                           st->shards[st->t[st->ix[i].i].shard].path);
    return R1_OK;
}

static char *join(const char *dir, const char *file)
{
    size_t n = strlen(dir) + strlen(file) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, file);
    return p;
}

static int shard_by_file(const r1_st *st, const char *file)
{
    for (int i = 0; i < st->nshards; i++)
        if (strcmp(st->shards[i].file, file) == 0)
            return i;
    return -1;
}

/* Opens every shard that index (a parsed model.safetensors.index.json in folder dir) names and
 * checks that the index and the shards agree tensor by tensor. */
static r1_status open_index(r1_st *st, const char *dir, const char *index, r1_error *err)
{
    json_error_t je;
    json_t *root = json_load_file(index, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return st_fail(err, R1_EFORMAT, index, NULL, "not valid JSON: %s (line %d, column %d)",
                       je.text, je.line, je.column);
    r1_status s = R1_OK;
    const json_t *wm = json_object_get(root, "weight_map");
    const char *name;
    json_t *v;
    if (!json_is_object(wm)) {
        s = st_fail(err, R1_EFORMAT, index, NULL, "\"weight_map\" should be an object, found %s",
                    wm ? json_type_name(wm) : "nothing");
        goto out;
    }
    json_object_foreach ((json_t *)wm, name, v) {
        if (!json_is_string(v) || strchr(json_string_value(v), '/')) {
            s = st_fail(err, R1_EFORMAT, index, name,
                        "the shard should be a file name in the same folder, found %s",
                        json_is_string(v) ? json_string_value(v) : json_type_name(v));
            goto out;
        }
        const char *file = json_string_value(v);
        if (shard_by_file(st, file) >= 0)
            continue;
        char *p = join(dir, file);
        if (!p) {
            s = st_fail(err, R1_ENOMEM, index, NULL, "out of memory");
            goto out;
        }
        s = load_shard(st, p, err);
        free(p);
        if (s != R1_OK) {
            r1_error_prefix(err, "%s: tensor \"%s\" is in shard \"%s\"", index, name, file);
            goto out;
        }
    }
    if ((s = build_index(st, err)) != R1_OK)
        goto out;
    json_object_foreach ((json_t *)wm, name, v) {
        int i = r1_st_find(st, name);
        const char *file = json_string_value(v);
        if (i < 0) {
            s = st_fail(err, R1_EFORMAT, index, name,
                        "the index places it in shard \"%s\", which does not hold it", file);
            goto out;
        }
        if (strcmp(st->shards[st->t[i].shard].file, file) != 0) {
            s = st_fail(err, R1_EFORMAT, index, name,
                        "the index places it in shard \"%s\", but it is in \"%s\"", file,
                        st->shards[st->t[i].shard].file);
            goto out;
        }
    }
    for (int i = 0; i < st->n; i++)
        if (!json_object_get(wm, st->t[i].name)) {
            s = st_fail(err, R1_EFORMAT, st->shards[st->t[i].shard].path, st->t[i].name,
                        "not listed in %s", index);
            goto out;
        }
out:
    json_decref(root);
    return s;
}

static r1_status open_folder(r1_st *st, const char *dir, r1_error *err)
{
    char *index = join(dir, "model.safetensors.index.json");
    char *single = join(dir, "model.safetensors");
    r1_status s;
    if (!index || !single)
        s = st_fail(err, R1_ENOMEM, dir, NULL, "out of memory");
    else if (access(index, F_OK) == 0)
        s = open_index(st, dir, index, err);
    else if (access(single, F_OK) == 0) {
        if ((s = load_shard(st, single, err)) == R1_OK)
            s = build_index(st, err);
    } else
        s = st_fail(err, R1_ENOTFOUND, dir, NULL,
                    "the folder holds neither model.safetensors.index.json nor model.safetensors");
    free(index);
    free(single);
    return s;
}

r1_status r1_st_open(r1_st **out, const char *path, r1_error *err)
{
    *out = NULL;
    r1_st *st = calloc(1, sizeof *st);
    if (!st || !(st->path = strdup(path))) {
        free(st);
        return st_fail(err, R1_ENOMEM, path, NULL, "out of memory");
    }
    struct stat sb;
    r1_status s;
    if (stat(path, &sb) != 0)
        s = st_fail(err, errno == ENOENT ? R1_ENOTFOUND : R1_EIO, path, NULL, "cannot open: %s",
                    strerror(errno));
    else if (S_ISDIR(sb.st_mode))
        s = open_folder(st, path, err);
    else if ((s = load_shard(st, path, err)) == R1_OK)
        s = build_index(st, err);
    if (s != R1_OK) {
        r1_st_close(st);
        return s;
    }
    *out = st;
    return R1_OK;
}

void r1_st_close(r1_st *st)
{
    if (!st)
        return;
    for (int i = 0; i < st->nshards; i++) {
        if (st->shards[i].fd >= 0)
            close(st->shards[i].fd);
        free(st->shards[i].path);
    }
    for (int i = 0; i < st->n; i++)
        free(st->t[i].name);
    free(st->shards);
    free(st->t);
    free(st->ix);
    free(st->path);
    free(st);
}

int r1_st_count(const r1_st *st)
{
    return st->n;
}

const char *r1_st_name(const r1_st *st, int i)
{
    return i >= 0 && i < st->n ? st->t[i].name : NULL;
}

int r1_st_find(const r1_st *st, const char *name)
{
    name_ix key = {name, -1};
    const name_ix *hit = st->n ? bsearch(&key, st->ix, (size_t)st->n, sizeof key, ix_cmp) : NULL;
    return hit ? hit->i : -1;
}

/* ------------------------------------------------------------------ reading tensors */

static const tensor *lookup(const r1_st *st, const char *name, r1_error *err)
{
    int i = r1_st_find(st, name);
    if (i < 0) {
        st_fail(err, R1_ENOTFOUND, st->path, name, "no such tensor");
        return NULL;
    }
    return &st->t[i];
}

r1_status r1_st_info(const r1_st *st, const char *name, r1_dtype *dt, int *ndim,
                     int64_t shape[R1_ST_MAXDIM], r1_error *err)
{
    const tensor *t = lookup(st, name, err);
    if (!t)
        return R1_ENOTFOUND;
    if (dt)
        *dt = t->dt;
    if (ndim)
        *ndim = t->ndim;
    if (shape)
        memcpy(shape, t->shape, sizeof t->shape[0] * (size_t)t->ndim);
    return R1_OK;
}

static r1_status check_shape(const r1_st *st, const tensor *t, int ndim, const int64_t *shape,
                             r1_error *err)
{
    const char *path = st->shards[t->shard].path;
    if (ndim < 0 || ndim > R1_ST_MAXDIM)
        return st_fail(err, R1_EINVAL, path, t->name, "expected rank %d is out of range [0, %d]",
                       ndim, R1_ST_MAXDIM);
    int same = ndim == t->ndim;
    for (int i = 0; same && i < ndim; i++)
        same = shape[i] == t->shape[i];
    if (!same) {
        char want[160], got[160];
        return st_fail(err, R1_EFORMAT, path, t->name, "expected shape %s, found %s",
                       fmt_shape(want, sizeof want, ndim, shape),
                       fmt_shape(got, sizeof got, t->ndim, t->shape));
    }
    return R1_OK;
}

static r1_status read_bytes(const r1_st *st, const tensor *t, void *dst, r1_error *err)
{
    const shard *sh = &st->shards[t->shard];
    return read_at(sh, dst, (size_t)(t->end - t->begin), sh->data_start + t->begin, err);
}

/* An FP8 tensor [R, C] (or [C]) with its DeepSeek-V3 block scales: "<name>_scale_inv", one
 * fp32 per 128x128 block ([ceil(R/128), ceil(C/128)], or [ceil(C/128)] for a vector), value =
 * decode(code) * scale of its block. */
static r1_status read_fp8(const r1_st *st, const tensor *t, float *dst, int ndim,
                          const int64_t *shape, r1_error *err)
{
    const char *path = st->shards[t->shard].path;
    r1_status s = check_shape(st, t, ndim, shape, err);
    if (s != R1_OK)
        return s;
    if (t->ndim < 1 || t->ndim > 2)
        return st_fail(err, R1_EUNSUPPORTED, path, t->name,
                       "%s tensors of rank %d are not supported (block scales are defined for "
                       "vectors and matrices)",
                       dtypes[t->dt].name, t->ndim);
    char sname[1024];
    if (snprintf(sname, sizeof sname, "%s_scale_inv", t->name) >= (int)sizeof sname)
        return st_fail(err, R1_EFORMAT, path, t->name, "name too long");
    int R = t->ndim == 2 ? (int)t->shape[0] : 1, C = (int)t->shape[t->ndim - 1];
    int64_t ssh[2] = {(R + R1_FP8_BLOCK - 1) / R1_FP8_BLOCK, (C + R1_FP8_BLOCK - 1) / R1_FP8_BLOCK};
    int64_t *want = t->ndim == 2 ? ssh : ssh + 1;
    if (r1_st_find(st, sname) < 0)
        return st_fail(err, R1_EFORMAT, path, t->name,
                       "dtype %s needs its block scales in tensor \"%s\" (F32, one per 128x128 "
                       "block), which is missing",
                       dtypes[t->dt].name, sname);
    size_t nb = (size_t)ssh[0] * (size_t)ssh[1], n = (size_t)R * (size_t)C;
    float *sc = malloc(sizeof(float) * (nb ? nb : 1));
    if (!sc)
        return st_fail(err, R1_ENOMEM, path, t->name, "out of memory");
    s = r1_st_read_f32(st, sname, sc, t->ndim, want, err);
    if (s != R1_OK) {
        r1_error_prefix(err, "the block scales of FP8 tensor \"%s\" (one per 128x128 block)",
                        t->name);
        free(sc);
        return s;
    }
    /* the codes go to the last quarter of dst, then widen front to back: element i is written
     * to bytes [4i, 4i+4), below code i+1 at byte 3n+i+1 */
    uint8_t *codes = (uint8_t *)dst + 3 * n;
    if ((s = read_bytes(st, t, codes, err)) == R1_OK) {
        int e5 = t->dt == R1_DT_F8_E5M2;
        for (size_t i = 0; i < n; i++) {
            size_t r = i / (size_t)C, c = i % (size_t)C;
            float v = e5 ? r1_e5m2_to_f32(codes[i]) : r1_e4m3_to_f32(codes[i]);
            dst[i] = v * sc[(r / R1_FP8_BLOCK) * (size_t)ssh[1] + c / R1_FP8_BLOCK];
        }
    }
    free(sc);
    return s;
}

r1_status r1_st_read_f32(const r1_st *st, const char *name, float *dst, int ndim,
                         const int64_t *shape, r1_error *err)
{
    const tensor *t = lookup(st, name, err);
    if (!t)
        return R1_ENOTFOUND;
    const char *path = st->shards[t->shard].path;
    if (t->dt == R1_DT_F8_E4M3 || t->dt == R1_DT_F8_E5M2)
        return read_fp8(st, t, dst, ndim, shape, err);
    if (t->dt != R1_DT_F32 && t->dt != R1_DT_F16 && t->dt != R1_DT_BF16)
        return st_fail(err, R1_EFORMAT, path, name,
                       "dtype %s is an integer type; expected F32, F16 or BF16",
                       dtypes[t->dt].name);
    r1_status s = check_shape(st, t, ndim, shape, err);
    if (s != R1_OK)
        return s;
    size_t n = (size_t)(t->end - t->begin) / dtypes[t->dt].size;
    if (t->dt == R1_DT_F32)
        return read_bytes(st, t, dst, err);
    /* Read the 2-byte values into the upper half of dst, then widen front to back: element i
     * is written to bytes [4i, 4i+4), which never reach a value not yet converted. */
    unsigned char *half = (unsigned char *)dst + 2 * n;
    if ((s = read_bytes(st, t, half, err)) != R1_OK)
        return s;
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, half + 2 * i, 2);
        dst[i] = t->dt == R1_DT_F16 ? r1_f16_to_f32(h) : r1_bf16_to_f32(h);
    }
    return R1_OK;
}

r1_status r1_st_read_i32(const r1_st *st, const char *name, int32_t *dst, int ndim,
                         const int64_t *shape, r1_error *err)
{
    const tensor *t = lookup(st, name, err);
    if (!t)
        return R1_ENOTFOUND;
    const shard *sh = &st->shards[t->shard];
    if (t->dt != R1_DT_I32 && t->dt != R1_DT_I64)
        return st_fail(err, R1_EFORMAT, sh->path, name, "dtype %s; expected I32 or I64",
                       dtypes[t->dt].name);
    r1_status s = check_shape(st, t, ndim, shape, err);
    if (s != R1_OK)
        return s;
    if (t->dt == R1_DT_I32)
        return read_bytes(st, t, dst, err);
    size_t n = (size_t)(t->end - t->begin) / 8;
    int64_t *buf = malloc(sizeof *buf * (n < CHUNK ? (n ? n : 1) : CHUNK));
    if (!buf)
        return st_fail(err, R1_ENOMEM, sh->path, name, "out of memory");
    for (size_t at = 0; at < n && s == R1_OK; at += CHUNK) {
        size_t m = n - at < CHUNK ? n - at : CHUNK;
        s = read_at(sh, buf, m * 8, sh->data_start + t->begin + at * 8, err);
        for (size_t i = 0; i < m && s == R1_OK; i++) {
            if (buf[i] < INT32_MIN || buf[i] > INT32_MAX)
                s = st_fail(err, R1_EFORMAT, sh->path, name,
                            "element %zu (%lld) does not fit in 32 bits", at + i,
                            (long long)buf[i]);
            dst[at + i] = (int32_t)buf[i];
        }
    }
    free(buf);
    return s;
}

r1_status r1_st_read_raw(const r1_st *st, const char *name, void *dst, size_t n, r1_error *err)
{
    const tensor *t = lookup(st, name, err);
    if (!t)
        return R1_ENOTFOUND;
    if (n != t->end - t->begin)
        return st_fail(err, R1_EINVAL, st->shards[t->shard].path, name,
                       "the tensor holds %llu bytes, the buffer %zu",
                       (unsigned long long)(t->end - t->begin), n);
    return read_bytes(st, t, dst, err);
}
