/* fuzz_safetensors.c — the safetensors reader (engine/safetensors.c) on one file.
 *
 * The input is either a whole .safetensors file (8-byte little-endian header length, JSON
 * header, data), or — when it starts with '{' — a JSON header alone, which the harness frames
 * with its length and follows with DATA_BYTES bytes of data, so that mutations of the header
 * need not keep the length prefix right.  The file is opened, and every tensor is looked up,
 * described and, when small, read through every path that accepts its dtype (fp32 with
 * conversion and FP8 block scales, int32, raw bytes).
 *
 * Checks: open, info and reads either succeed or fail with a status and a message; every
 * listed name is found at its own index; shapes and byte counts agree with the dtype. */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "r1_safetensors.h"

#define DATA_BYTES 4096
/* Tensors above this many elements are described but not read (keeps an input fast). */
#define READ_MAX (1 << 20)

static void read_tensor(const r1_st *st, const char *name)
{
    r1_error err = {0};
    r1_dtype dt;
    int ndim;
    int64_t shape[R1_ST_MAXDIM];
    r1_status s = r1_st_info(st, name, &dt, &ndim, shape, &err);
    FUZZ_CHECK(s == R1_OK, "r1_st_info refused listed tensor \"%s\": %s", name, err.msg);
    FUZZ_CHECK(ndim >= 0 && ndim <= R1_ST_MAXDIM && r1_dtype_size(dt) > 0,
               "tensor \"%s\": rank %d, dtype %d", name, ndim, (int)dt);
    uint64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        FUZZ_CHECK(shape[i] >= 0, "tensor \"%s\": dimension %d is %lld", name, i,
                   (long long)shape[i]);
        if (shape[i] > READ_MAX || (n *= (uint64_t)shape[i]) > READ_MAX)
            return;
    }
    /* 8 bytes per element fit every conversion: fp32, int32 and the raw bytes of I64 */
    size_t bytes = (size_t)n * r1_dtype_size(dt);
    void *buf = malloc((size_t)n * 8 + 1);
    FUZZ_CHECK(buf != NULL, "out of memory");
    s = r1_st_read_raw(st, name, buf, bytes, &err);
    FUZZ_CHECK(s == R1_OK, "tensor \"%s\": raw read of %zu bytes failed: %s", name, bytes,
               err.msg);
    s = r1_st_read_raw(st, name, buf, bytes + 1, &err);
    FUZZ_CHECK(s == R1_EINVAL, "tensor \"%s\": a raw read into a wrong-sized buffer gave %d",
               name, (int)s);
    err.msg[0] = '\0';
    s = r1_st_read_f32(st, name, buf, ndim, shape, &err);
    FUZZ_CHECK(s == R1_OK || err.msg[0], "tensor \"%s\": read_f32 failed without a message", name);
    err.msg[0] = '\0';
    s = r1_st_read_i32(st, name, buf, ndim, shape, &err);
    FUZZ_CHECK(s == R1_OK || err.msg[0], "tensor \"%s\": read_i32 failed without a message", name);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path;
    if (size > 0 && data[0] == '{') {
        uint8_t *file = calloc(1, 8 + size + DATA_BYTES);
        FUZZ_CHECK(file != NULL, "out of memory");
        for (int i = 0; i < 8; i++)
            file[i] = (uint8_t)((uint64_t)size >> (8 * i));
        memcpy(file + 8, data, size);
        for (size_t i = 0; i < DATA_BYTES; i++) /* small values of every width */
            file[8 + size + i] = (uint8_t)(i % 7 == 0 ? 0x3f : i % 5);
        path = fuzz_write("h.safetensors", file, 8 + size + DATA_BYTES);
        free(file);
    } else {
        path = fuzz_write("f.safetensors", data, size);
    }
    r1_st *st = NULL;
    r1_error err = {0};
    r1_status s = r1_st_open(&st, path, &err);
    FUZZ_CHECK((s == R1_OK) == (st != NULL), "status %d with handle %p", (int)s, (void *)st);
    if (s != R1_OK) {
        FUZZ_CHECK(err.msg[0] != '\0', "r1_st_open failed (%d) without a message", (int)s);
        return 0;
    }
    int n = r1_st_count(st);
    for (int i = 0; i < n; i++) {
        const char *name = r1_st_name(st, i);
        FUZZ_CHECK(name != NULL, "tensor %d of %d has no name", i, n);
        FUZZ_CHECK(r1_st_find(st, name) == i, "tensor \"%s\" is not found at its index %d", name,
                   i);
        read_tensor(st, name);
    }
    FUZZ_CHECK(r1_st_name(st, n) == NULL, "a name past the end");
    r1_st_close(st);
    return 0;
}
