/* t_safetensors.c — the safetensors reader and writer and the fp16 / bf16 conversions: round
 * trips, sharded folders, and every malformed input giving the right status and a message that
 * names the file and the tensor.  Files live in a mkdtemp folder that is removed at the end. */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "r1_bf16.h"
#include "r1_safetensors.h"
#include "tap.h"
#include "testutil.h"

/* 1 when a "*.tmp.*" file is left in folder. */
static int temp_left(const char *folder)
{
    int found = 0;
    DIR *d = opendir(folder);
    struct dirent *e;
    while (d && (e = readdir(d)))
        found |= strstr(e->d_name, ".tmp.") != NULL;
    if (d)
        closedir(d);
    return found;
}

static void put_file(const char *path, const void *bytes, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(bytes, 1, n, f) != n) {
        diag("cannot write %s", path);
        exit(99);
    }
    fclose(f);
}

/* A safetensors file with the given header text and data_len zero bytes of data. */
static void make_st(const char *path, const char *header, size_t data_len)
{
    size_t h = strlen(header);
    unsigned char *b = calloc(1, 8 + h + data_len);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)h >> (8 * i));
    memcpy(b + 8, header, h);
    put_file(path, b, 8 + h + data_len);
    free(b);
}

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ------------------------------------------------------------------ conversions */

/* Round to nearest even by comparing the two bf16 neighbours in double: an independent
 * reference for r1_f32_to_bf16 on finite values. */
static uint16_t bf16_reference(float x)
{
    uint32_t u = bits(x);
    uint16_t lo = (uint16_t)(u >> 16), hi = (uint16_t)(lo + 1);
    double dl = fabs((double)r1_bf16_to_f32(lo) - x), dh;
    if ((hi & 0x7fff) == 0x7f80) /* rounding up reaches inf: the halfway point decides */
        dh = fabs(ldexp(1.0, 128) * (x < 0 ? -1 : 1) - x);
    else
        dh = fabs((double)r1_bf16_to_f32(hi) - x);
    if (dl < dh || (dl == dh && !(lo & 1)))
        return lo;
    return hi;
}

static void test_conversions(void)
{
    /* bf16 */
    is_int(r1_f32_to_bf16(1.0f), 0x3f80, "bf16: 1.0");
    is_int(r1_f32_to_bf16(-0.0f), 0x8000, "bf16: -0 keeps its sign");
    ok(signbit(r1_bf16_to_f32(0x8000)) && r1_bf16_to_f32(0x8000) == 0, "bf16: -0 reads back");
    is_int(r1_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80, "bf16: a tie rounds down to even");
    is_int(r1_f32_to_bf16(1.0f + 0x3p-8f), 0x3f82, "bf16: a tie rounds up to even");
    is_int(r1_f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81, "bf16: past a tie rounds up");
    is_int(r1_f32_to_bf16(INFINITY), 0x7f80, "bf16: inf");
    is_int(r1_f32_to_bf16(-INFINITY), 0xff80, "bf16: -inf");
    is_int(r1_f32_to_bf16(FLT_MAX), 0x7f80, "bf16: FLT_MAX overflows to inf");
    uint16_t n = r1_f32_to_bf16(from_bits(0x7f800001));
    ok((n & 0x7f80) == 0x7f80 && (n & 0x7f), "bf16: a NaN with a low payload stays NaN (0x%04x)",
       n);
    ok(isnan(r1_bf16_to_f32(0x7fc0)), "bf16: NaN reads back as NaN");
    is_int(r1_f32_to_bf16(from_bits(0x00010000)), 0x0001, "bf16: a subnormal is kept");
    is_int(bits(r1_bf16_to_f32(0x0001)), 0x00010000, "bf16: a subnormal reads back");
    is_int(r1_f32_to_bf16(from_bits(0x00008000)), 0x0000,
           "bf16: half the smallest subnormal "
           "ties to 0");
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = r1_bf16_to_f32((uint16_t)h);
        if (!isnan(f) && r1_f32_to_bf16(f) != h)
            bad++;
    }
    is_int(bad, 0, "bf16: every non-NaN value round-trips exactly");
    bad = 0;
    uint32_t seed = 12345;
    for (int i = 0; i < 200000; i++) {
        seed = seed * 1664525u + 1013904223u;
        float x = from_bits(seed);
        if (isfinite(x) && r1_f32_to_bf16(x) != bf16_reference(x))
            bad++;
    }
    is_int(bad, 0, "bf16: 200000 random floats round to nearest even");

    /* f16 */
    is_int(r1_f32_to_f16(1.0f), 0x3c00, "f16: 1.0");
    is_float(r1_f16_to_f32(0x3555), 0.333251953125, 0, "f16: 0x3555 reads as 0.33325");
    is_int(r1_f32_to_f16(-0.0f), 0x8000, "f16: -0 keeps its sign");
    ok(signbit(r1_f16_to_f32(0x8000)) && r1_f16_to_f32(0x8000) == 0, "f16: -0 reads back");
    is_int(r1_f32_to_f16(65504.0f), 0x7bff, "f16: 65504 is the largest finite");
    is_int(r1_f32_to_f16(65519.996f), 0x7bff, "f16: just under the halfway point stays finite");
    is_int(r1_f32_to_f16(65520.0f), 0x7c00, "f16: 65520 (a tie) rounds to inf");
    is_int(r1_f32_to_f16(1e6f), 0x7c00, "f16: 1e6 overflows to inf");
    is_int(r1_f32_to_f16(-1e6f), 0xfc00, "f16: -1e6 overflows to -inf");
    is_int(r1_f32_to_f16(INFINITY), 0x7c00, "f16: inf");
    ok(isinf(r1_f16_to_f32(0xfc00)) && r1_f16_to_f32(0xfc00) < 0, "f16: -inf reads back");
    n = r1_f32_to_f16(NAN);
    ok((n & 0x7c00) == 0x7c00 && (n & 0x3ff), "f16: NaN stays NaN (0x%04x)", n);
    n = r1_f32_to_f16(from_bits(0x7f800001));
    ok((n & 0x7c00) == 0x7c00 && (n & 0x3ff), "f16: a NaN with a low payload stays NaN");
    ok(isnan(r1_f16_to_f32(0x7e00)), "f16: NaN reads back as NaN");
    is_int(r1_f32_to_f16(1.0f + 0x1p-11f), 0x3c00, "f16: a tie rounds down to even");
    is_int(r1_f32_to_f16(1.0f + 0x3p-11f), 0x3c02, "f16: a tie rounds up to even");
    is_int(r1_f32_to_f16(0x1p-14f), 0x0400, "f16: 2^-14 is the smallest normal");
    is_int(r1_f32_to_f16(0x1p-24f), 0x0001, "f16: 2^-24 is the smallest subnormal");
    is_int(r1_f32_to_f16(-0x1p-24f), 0x8001, "f16: -2^-24");
    ok(r1_f16_to_f32(0x0001) == 0x1p-24f, "f16: 0x0001 reads as 2^-24");
    ok(r1_f16_to_f32(0x03ff) == 1023 * 0x1p-24f, "f16: 0x03ff reads as 1023 * 2^-24");
    is_int(r1_f32_to_f16(0x1p-25f), 0x0000, "f16: 2^-25 (a tie) rounds to 0");
    is_int(r1_f32_to_f16(0x3p-25f), 0x0002, "f16: 3 * 2^-25 (a tie) rounds to 2 * 2^-24");
    is_int(r1_f32_to_f16(0x1.8p-25f), 0x0001, "f16: 1.5 * 2^-25 rounds up");
    is_int(r1_f32_to_f16(1023.5f * 0x1p-24f), 0x0400,
           "f16: a tie above the largest subnormal rounds to the smallest normal");
    is_int(r1_f32_to_f16(1e-40f), 0x0000, "f16: an f32 subnormal flushes to 0");
    bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = r1_f16_to_f32((uint16_t)h);
        if (!isnan(f) && r1_f32_to_f16(f) != h)
            bad++;
    }
    is_int(bad, 0, "f16: every non-NaN value round-trips exactly");
#ifdef __FLT16_MAX__
    bad = 0;
    seed = 777;
    for (int i = 0; i < 200000; i++) {
        seed = seed * 1664525u + 1013904223u;
        /* mostly floats near the f16 range, where the rounding is interesting */
        float x = from_bits((seed & 0x80000000u) | ((seed >> 1) % 0x10000000u + 0x30000000u));
        _Float16 h = (_Float16)x;
        uint16_t ref;
        memcpy(&ref, &h, 2);
        if (r1_f32_to_f16(x) != ref)
            bad++;
        if (r1_f16_to_f32(ref) != (float)h)
            bad++;
    }
    is_int(bad, 0, "f16: 200000 random floats agree with the compiler's _Float16");
#else
    ok(1, "f16: compiler comparison # SKIP no _Float16");
#endif
    is_int(r1_dtype_size(R1_DT_BF16), 2, "BF16 is 2 bytes");
    is_str(r1_dtype_name(R1_DT_F8_E4M3), "F8_E4M3", "the FP8 dtype has its safetensors name");
}

/* ------------------------------------------------------------------ round trips */

static void test_round_trip(void)
{
    const char *path = tu_at("rt.safetensors");
    float a[6] = {1.0f / 3, -0.0f, 1e-40f, NAN, INFINITY, -1e30f};
    float b[5] = {1.0f, -2.5f, 3.14159265f, 1e-3f, 65504.0f};
    float c[8] = {0.1f, -0.2f, 1e-5f, 6e-8f, 1000.0f, -65504.0f, 0.33333f, 12345.678f};
    int32_t d[3] = {-7, 0, 2147483647};
    uint8_t e[5] = {1, 2, 3, 254, 255};
    float sc = 42.0f;
    int64_t h[3] = {-5, 0, 1234567};
    int64_t big[2] = {1, (int64_t)1 << 40};
    int64_t sa[2] = {2, 3}, sb[1] = {5}, sc8[2] = {4, 2}, s3[1] = {3}, s5[1] = {5}, s0[2] = {0, 4},
            s2[1] = {2};
    r1_error err = {0};
    r1_st_writer *w = r1_st_writer_new();
    ok(w != NULL, "a writer");
    r1_status s = R1_OK;
    s |= r1_st_writer_add(w, "a.f32", R1_DT_F32, R1_DT_F32, a, 2, sa, &err);
    s |= r1_st_writer_add(w, "b.bf16", R1_DT_BF16, R1_DT_F32, b, 1, sb, &err);
    s |= r1_st_writer_add(w, "e.u8", R1_DT_U8, R1_DT_U8, e, 1, s5, &err);
    s |= r1_st_writer_add(w, "c.f16", R1_DT_F16, R1_DT_F32, c, 2, sc8, &err);
    s |= r1_st_writer_add(w, "d.i32", R1_DT_I32, R1_DT_I32, d, 1, s3, &err);
    s |= r1_st_writer_add(w, "f.scalar", R1_DT_F32, R1_DT_F32, &sc, 0, NULL, &err);
    s |= r1_st_writer_add(w, "g.empty", R1_DT_F32, R1_DT_F32, NULL, 2, s0, &err);
    s |= r1_st_writer_add(w, "h.i64", R1_DT_I64, R1_DT_I64, h, 1, s3, &err);
    s |= r1_st_writer_add(w, "i.i64big", R1_DT_I64, R1_DT_I64, big, 1, s2, &err);
    is_int(s, R1_OK, "nine tensors added");
    is_int(r1_st_writer_meta(w, "purpose", "test", &err), R1_OK, "a metadata entry");
    is_int(r1_st_writer_write(w, path, &err), R1_OK, "written");
    r1_st_writer_free(w);
    ok(!temp_left(tu_dir), "no temporary file is left behind");

    r1_st *st = NULL;
    is_int(r1_st_open(&st, path, &err), R1_OK, "reopened");
    if (!st) {
        diag("%s", err.msg);
        return;
    }
    is_int(r1_st_count(st), 9, "nine tensors");
    is_str(r1_st_name(st, 0), "a.f32", "first in the order added");
    is_str(r1_st_name(st, 2), "e.u8", "third in the order added");
    is_int(r1_st_find(st, "d.i32"), 4, "found by name");
    is_int(r1_st_find(st, "nope"), -1, "an absent name is -1");

    float got[8];
    is_int(r1_st_read_f32(st, "a.f32", got, 2, sa, &err), R1_OK, "F32 read");
    ok(memcmp(got, a, sizeof a) == 0, "F32 is bit-identical (-0, subnormal, NaN, inf)");

    is_int(r1_st_read_f32(st, "b.bf16", got, 1, sb, &err), R1_OK, "BF16 read as f32");
    int fine = 1;
    for (int i = 0; i < 5; i++)
        fine &= fabsf(got[i] - b[i]) <= fabsf(b[i]) * 0x1p-8f &&
                got[i] == r1_bf16_to_f32(r1_f32_to_bf16(b[i]));
    ok(fine, "BF16 values within half a bf16 ulp, rounded as r1_f32_to_bf16 rounds");

    is_int(r1_st_read_f32(st, "c.f16", got, 2, sc8, &err), R1_OK, "F16 read as f32");
    fine = 1;
    for (int i = 0; i < 8; i++)
        fine &=
            (fabsf(got[i] - c[i]) <= fabsf(c[i]) * 0x1p-11f || fabsf(got[i] - c[i]) <= 0x1p-25f) &&
            got[i] == r1_f16_to_f32(r1_f32_to_f16(c[i]));
    ok(fine, "F16 values within half an f16 ulp (or subnormal step)");

    int32_t gi[3];
    is_int(r1_st_read_i32(st, "d.i32", gi, 1, s3, &err), R1_OK, "I32 read");
    ok(memcmp(gi, d, sizeof d) == 0, "I32 round-trips");
    is_int(r1_st_read_i32(st, "h.i64", gi, 1, s3, &err), R1_OK, "I64 read as int32");
    ok(gi[0] == -5 && gi[1] == 0 && gi[2] == 1234567, "I64 values in range convert");
    int32_t gb[2];
    is_int(r1_st_read_i32(st, "i.i64big", gb, 1, s2, &err), R1_EFORMAT,
           "an I64 value past int32 is refused");
    like(err.msg, "i.i64big", "... naming the tensor");
    like(err.msg, "1099511627776", "... and the value");

    uint8_t ge[5];
    is_int(r1_st_read_raw(st, "e.u8", ge, 5, &err), R1_OK, "raw read");
    ok(memcmp(ge, e, 5) == 0, "U8 bytes round-trip");
    is_int(r1_st_read_raw(st, "e.u8", ge, 4, &err), R1_EINVAL, "raw read with the wrong size");
    like(err.msg, "e.u8", "... names the tensor");

    is_int(r1_st_read_f32(st, "f.scalar", got, 0, NULL, &err), R1_OK, "a rank-0 tensor");
    ok(got[0] == 42.0f, "... holds its value");
    is_int(r1_st_read_f32(st, "g.empty", got, 2, s0, &err), R1_OK, "an empty tensor reads");

    r1_dtype dt;
    int nd;
    int64_t shape[R1_ST_MAXDIM];
    is_int(r1_st_info(st, "c.f16", &dt, &nd, shape, &err), R1_OK, "info");
    ok(dt == R1_DT_F16 && nd == 2 && shape[0] == 4 && shape[1] == 2, "info: F16 [4, 2]");
    is_int(r1_st_info(st, "zz", &dt, &nd, shape, &err), R1_ENOTFOUND, "info on an absent name");
    like(err.msg, "zz", "... names the tensor");
    r1_st_close(st);

    /* The header as another reader sees it. */
    FILE *f = fopen(path, "rb");
    unsigned char lb[8];
    uint64_t hl = 0;
    if (f && fread(lb, 1, 8, f) == 8)
        for (int i = 7; i >= 0; i--)
            hl = hl << 8 | lb[i];
    char *text = calloc(1, hl + 1);
    size_t got_n = f ? fread(text, 1, hl, f) : 0;
    if (f) {
        fseek(f, 0, SEEK_END);
        hl = got_n == hl ? hl : 0;
    }
    long size = f ? ftell(f) : 0;
    if (f)
        fclose(f);
    is_int(hl % 8, 0, "the header length is a multiple of 8 (data starts aligned)");
    json_t *root = json_loads(text, 0, NULL);
    json_t *meta = json_object_get(root, "__metadata__");
    is_str(json_string_value(json_object_get(meta, "format")), "pt", "__metadata__ format: pt");
    is_str(json_string_value(json_object_get(meta, "purpose")), "test", "an added entry");
    /* Tensors back to back from 0, ending at the end of the file, as the reference reader
     * requires. */
    static const char *order[] = {"a.f32",    "b.bf16",  "e.u8",  "c.f16",   "d.i32",
                                  "f.scalar", "g.empty", "h.i64", "i.i64big"};
    long long end = 0;
    int contiguous = 1;
    for (int i = 0; i < 9; i++) {
        json_t *o = json_object_get(json_object_get(root, order[i]), "data_offsets");
        contiguous &= json_integer_value(json_array_get(o, 0)) == end;
        end = json_integer_value(json_array_get(o, 1));
    }
    ok(contiguous && size == (long)(8 + hl + end), "data is contiguous and fills the file");
    is_str(json_string_value(json_object_get(json_object_get(root, "b.bf16"), "dtype")), "BF16",
           "the stored dtype is named in the header");
    json_decref(root);
    free(text);
}

/* ------------------------------------------------------------------ sharded folders */

static void write_two(const char *path, const char *n1, const float *x1, const char *n2,
                      const float *x2)
{
    int64_t s2[1] = {2};
    r1_st_writer *w = r1_st_writer_new();
    r1_st_writer_add(w, n1, R1_DT_F32, R1_DT_F32, x1, 1, s2, NULL);
    if (n2)
        r1_st_writer_add(w, n2, R1_DT_BF16, R1_DT_F32, x2, 1, s2, NULL);
    r1_error err;
    if (r1_st_writer_write(w, path, &err) != R1_OK)
        diag("%s", err.msg);
    r1_st_writer_free(w);
}

static void put_text(const char *path, const char *text)
{
    put_file(path, text, strlen(text));
}

static void test_folders(void)
{
    float x[2] = {1, 2}, y[2] = {3, 4}, z[2] = {5, 6}, g[2];
    int64_t s2[1] = {2};
    r1_error err = {0};
    r1_st *st = NULL;

    mkdir(tu_at("sharded"), 0777);
    write_two(tu_at("sharded/model-00001-of-00002.safetensors"), "x", x, "y", y);
    write_two(tu_at("sharded/model-00002-of-00002.safetensors"), "z", z, NULL, NULL);
    put_text(tu_at("sharded/model.safetensors.index.json"),
             "{\"metadata\": {\"total_size\": 20}, \"weight_map\": {"
             "\"x\": \"model-00001-of-00002.safetensors\", "
             "\"z\": \"model-00002-of-00002.safetensors\", "
             "\"y\": \"model-00001-of-00002.safetensors\"}}");
    is_int(r1_st_open(&st, tu_at("sharded"), &err), R1_OK, "a sharded folder opens");
    if (st) {
        is_int(r1_st_count(st), 3, "... with the tensors of both shards");
        ok(r1_st_read_f32(st, "z", g, 1, s2, &err) == R1_OK && g[0] == 5 && g[1] == 6,
           "... a tensor from the second shard");
        ok(r1_st_read_f32(st, "y", g, 1, s2, &err) == R1_OK && g[0] == 3 && g[1] == 4,
           "... a tensor from the first shard");
        r1_st_close(st);
    } else {
        diag("%s", err.msg);
    }

    mkdir(tu_at("single"), 0777);
    write_two(tu_at("single/model.safetensors"), "x", x, NULL, NULL);
    is_int(r1_st_open(&st, tu_at("single"), &err), R1_OK, "a folder with model.safetensors opens");
    ok(st && r1_st_count(st) == 1, "... with its tensor");
    r1_st_close(st);

    mkdir(tu_at("empty"), 0777);
    is_int(r1_st_open(&st, tu_at("empty"), &err), R1_ENOTFOUND, "a folder without weights");
    like(err.msg, "model.safetensors", "... says what it looked for");

    /* An index naming a shard that does not exist. */
    mkdir(tu_at("noshard"), 0777);
    write_two(tu_at("noshard/a.safetensors"), "x", x, NULL, NULL);
    put_text(tu_at("noshard/model.safetensors.index.json"),
             "{\"weight_map\": {\"x\": \"a.safetensors\", \"w\": \"b.safetensors\"}}");
    is_int(r1_st_open(&st, tu_at("noshard"), &err), R1_ENOTFOUND, "a missing shard");
    like(err.msg, "model.safetensors.index.json", "... names the index");
    like(err.msg, "b.safetensors", "... and the shard");
    like(err.msg, "\"w\"", "... and the tensor");

    /* An index placing a tensor in a shard that lacks it. */
    mkdir(tu_at("lacks"), 0777);
    write_two(tu_at("lacks/a.safetensors"), "x", x, NULL, NULL);
    write_two(tu_at("lacks/b.safetensors"), "z", z, NULL, NULL);
    put_text(tu_at("lacks/model.safetensors.index.json"),
             "{\"weight_map\": {\"x\": \"a.safetensors\", \"z\": \"b.safetensors\", "
             "\"q\": \"b.safetensors\"}}");
    is_int(r1_st_open(&st, tu_at("lacks"), &err), R1_EFORMAT, "a tensor missing from its shard");
    like(err.msg, "\"q\"", "... names the tensor");
    like(err.msg, "b.safetensors", "... and the shard");
    like(err.msg, "model.safetensors.index.json", "... and the index");

    /* A shard holding a tensor the index does not list. */
    put_text(tu_at("lacks/model.safetensors.index.json"),
             "{\"weight_map\": {\"x\": \"a.safetensors\"}}");
    write_two(tu_at("lacks/a.safetensors"), "x", x, "extra", y);
    is_int(r1_st_open(&st, tu_at("lacks"), &err), R1_EFORMAT, "a tensor the index does not list");
    like(err.msg, "\"extra\"", "... is named");

    /* The same tensor in two shards. */
    write_two(tu_at("lacks/b.safetensors"), "x", z, NULL, NULL);
    put_text(tu_at("lacks/model.safetensors.index.json"),
             "{\"weight_map\": {\"x\": \"a.safetensors\", \"extra\": \"a.safetensors\", "
             "\"y\": \"b.safetensors\"}}");
    is_int(r1_st_open(&st, tu_at("lacks"), &err), R1_EFORMAT, "a tensor in two shards");
    ok(strstr(err.msg, "a.safetensors") && strstr(err.msg, "b.safetensors") &&
           strstr(err.msg, "\"x\""),
       "... names the tensor and both shards");
}

/* ------------------------------------------------------------------ malformed files */

/* Opens path expecting status want and a message naming the file and each needle. */
static void bad_open(const char *file, r1_status want, const char *n1, const char *n2,
                     const char *what)
{
    r1_error err = {0};
    r1_st *st = NULL;
    const char *path = tu_at(file);
    is_int(r1_st_open(&st, path, &err), want, "%s: refused", what);
    ok(st == NULL, "%s: no handle", what);
    like(err.msg, path, "%s: the message names the file", what);
    if (n1)
        like(err.msg, n1, "%s: the message names %s", what, n1);
    if (n2)
        like(err.msg, n2, "%s: the message names %s", what, n2);
    r1_st_close(st);
}

static void test_malformed(void)
{
    put_file(tu_at("short.safetensors"), "\x10\0\0\0\0", 5);
    bad_open("short.safetensors", R1_EFORMAT, "5 bytes", "8-byte", "a 5-byte file");

    unsigned char past[18] = {0xe8, 0x03, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' '};
    put_file(tu_at("past.safetensors"), past, sizeof past);
    bad_open("past.safetensors", R1_EFORMAT, "1000", "18 bytes", "a header length past the end");

    make_st(tu_at("notjson.safetensors"), "{\"w\": {\"dtype\": ", 0);
    bad_open("notjson.safetensors", R1_EFORMAT, "not valid JSON", "column",
             "a header that is not JSON");

    make_st(tu_at("array.safetensors"), "[1, 2]", 0);
    bad_open("array.safetensors", R1_EFORMAT, "JSON object", NULL, "a header that is an array");

    make_st(tu_at("entry.safetensors"), "{\"w\": 5}", 0);
    bad_open("entry.safetensors", R1_EFORMAT, "\"w\"", "object", "an entry that is a number");

    make_st(tu_at("nodtype.safetensors"), "{\"w\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", 4);
    bad_open("nodtype.safetensors", R1_EFORMAT, "\"w\"", "dtype", "an entry without a dtype");

    make_st(tu_at("dtype.safetensors"),
            "{\"w\": {\"dtype\": \"F64\", \"shape\": [1], \"data_offsets\": [0, 8]}}", 8);
    bad_open("dtype.safetensors", R1_EFORMAT, "\"F64\"", "F32, F16, BF16", "an unknown dtype");

    make_st(tu_at("shapetype.safetensors"),
            "{\"w\": {\"dtype\": \"F32\", \"shape\": [\"2\"], \"data_offsets\": [0, 8]}}", 8);
    bad_open("shapetype.safetensors", R1_EFORMAT, "\"w\"", "shape", "a shape of strings");

    make_st(tu_at("size.safetensors"),
            "{\"w\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [0, 20]}}", 24);
    bad_open("size.safetensors", R1_EFORMAT, "\"w\"", "[2, 3]",
             "a shape disagreeing with its bytes");

    make_st(tu_at("back.safetensors"),
            "{\"w\": {\"dtype\": \"U8\", \"shape\": [0], \"data_offsets\": [8, 4]}}", 24);
    bad_open("back.safetensors", R1_EFORMAT, "\"w\"", "backwards", "offsets running backwards");

    make_st(tu_at("beyond.safetensors"),
            "{\"w\": {\"dtype\": \"F32\", \"shape\": [12], \"data_offsets\": [0, 48]}}", 24);
    bad_open("beyond.safetensors", R1_EFORMAT, "\"w\"", "past the end", "offsets past the end");

    make_st(tu_at("overlap.safetensors"),
            "{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}, "
            "\"b\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [8, 24]}}",
            24);
    bad_open("overlap.safetensors", R1_EFORMAT, "\"a\"", "\"b\"", "overlapping tensors");

    make_st(tu_at("dup.safetensors"),
            "{\"a\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [0, 1]}, "
            "\"a\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [1, 2]}}",
            2);
    bad_open("dup.safetensors", R1_EFORMAT, "duplicate", NULL, "a name given twice");

    make_st(tu_at("meta.safetensors"), "{\"__metadata__\": {\"format\": 1}}", 0);
    bad_open("meta.safetensors", R1_EFORMAT, "__metadata__", "format", "a metadata number");

    bad_open("absent.safetensors", R1_ENOTFOUND, NULL, NULL, "a file that does not exist");

    /* Well-formed files read the wrong way. */
    const char *path = tu_at("kinds.safetensors");
    make_st(path,
            "{\"w\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [0, 24]}, "
            "\"i\": {\"dtype\": \"I32\", \"shape\": [2], \"data_offsets\": [24, 32]}, "
            "\"q\": {\"dtype\": \"F8_E4M3\", \"shape\": [2], \"data_offsets\": [32, 34]}}",
            34);
    r1_error err = {0};
    r1_st *st = NULL;
    is_int(r1_st_open(&st, path, &err), R1_OK, "a file with F32, I32 and F8_E4M3 tensors opens");
    if (!st) {
        diag("%s", err.msg);
        return;
    }
    float buf[6];
    int64_t want[2] = {3, 2}, s2[1] = {2};
    is_int(r1_st_read_f32(st, "w", buf, 2, want, &err), R1_EFORMAT, "a wrong expected shape");
    like(err.msg, path, "... names the file");
    like(err.msg, "\"w\"", "... names the tensor");
    like(err.msg, "expected shape [3, 2]", "... names the expected shape");
    like(err.msg, "found [2, 3]", "... and the shape found");
    is_int(r1_st_read_f32(st, "w", buf, 1, want, &err), R1_EFORMAT, "a wrong expected rank");
    like(err.msg, "found [2, 3]", "... names the shape found");
    is_int(r1_st_read_f32(st, "nope", buf, 1, s2, &err), R1_ENOTFOUND, "a missing tensor");
    like(err.msg, path, "... names the file");
    like(err.msg, "\"nope\"", "... names the tensor");
    is_int(r1_st_read_f32(st, "i", buf, 1, s2, &err), R1_EFORMAT, "I32 read as f32");
    like(err.msg, "I32", "... names the dtype");
    like(err.msg, "\"i\"", "... names the tensor");
    is_int(r1_st_read_f32(st, "q", buf, 1, s2, &err), R1_EFORMAT,
           "FP8 read as f32 without its block scales");
    like(err.msg, "F8_E4M3", "... names the dtype");
    like(err.msg, "\"q_scale_inv\"", "... and the missing scale tensor");
    int32_t ib[2];
    is_int(r1_st_read_i32(st, "w", ib, 1, s2, &err), R1_EFORMAT, "F32 read as int32");
    like(err.msg, "F32", "... names the dtype");
    r1_st_close(st);
}

/* ------------------------------------------------------------------ writer errors */

static void test_writer_errors(void)
{
    float x[4] = {1, 2, 3, 4};
    int64_t s4[1] = {4}, neg[1] = {-1};
    r1_error err = {0};
    r1_st_writer *w = r1_st_writer_new();
    is_int(r1_st_writer_add(w, "w", R1_DT_F32, R1_DT_F32, x, 1, s4, &err), R1_OK, "first add");
    is_int(r1_st_writer_add(w, "w", R1_DT_BF16, R1_DT_F32, x, 1, s4, &err), R1_EINVAL,
           "a duplicate name");
    like(err.msg, "\"w\"", "... is named");
    like(err.msg, "already", "... as already added");
    is_int(r1_st_writer_add(w, "v", R1_DT_I32, R1_DT_F32, x, 1, s4, &err), R1_EINVAL,
           "F32 stored as I32");
    like(err.msg, "\"v\"", "... names the tensor");
    is_int(r1_st_writer_add(w, "__metadata__", R1_DT_F32, R1_DT_F32, x, 1, s4, &err), R1_EINVAL,
           "the name __metadata__");
    is_int(r1_st_writer_add(w, "n", R1_DT_F32, R1_DT_F32, x, 1, neg, &err), R1_EINVAL,
           "a negative dimension");
    like(err.msg, "\"n\"", "... names the tensor");

    const char *nodir = tu_at("no/such/folder/x.safetensors");
    is_int(r1_st_writer_write(w, nodir, &err), R1_EIO, "writing into a missing folder");
    like(err.msg, nodir, "... names the path");

    mkdir(tu_at("isdir"), 0777);
    is_int(r1_st_writer_write(w, tu_at("isdir"), &err), R1_EIO, "writing over a folder");
    ok(!temp_left(tu_dir), "... leaves no temporary file");
    struct stat sb;
    ok(stat(tu_at("isdir"), &sb) == 0 && S_ISDIR(sb.st_mode), "... and the folder in place");

    /* Rewriting an existing file replaces it whole. */
    const char *path = tu_at("again.safetensors");
    is_int(r1_st_writer_write(w, path, &err), R1_OK, "a first write");
    float y[4] = {9, 8, 7, 6}, g[4];
    r1_st_writer *w2 = r1_st_writer_new();
    r1_st_writer_add(w2, "w", R1_DT_F32, R1_DT_F32, y, 1, s4, &err);
    is_int(r1_st_writer_write(w2, path, &err), R1_OK, "a second write over it");
    r1_st *st = NULL;
    ok(r1_st_open(&st, path, &err) == R1_OK && r1_st_read_f32(st, "w", g, 1, s4, &err) == R1_OK &&
           g[0] == 9 && g[3] == 6,
       "... holds the second contents");
    r1_st_close(st);
    r1_st_writer_free(w2);
    r1_st_writer_free(w);
    r1_st_writer_free(NULL);
    r1_st_close(NULL);
    ok(1, "freeing NULL is a no-op");
}

int main(void)
{
    tu_tmpdir("t_safetensors");
    test_conversions();
    test_round_trip();
    test_folders();
    test_malformed();
    test_writer_errors();
    tu_rm(tu_dir);
    return done_testing();
}
