/* r1_safetensors.h — reading and writing safetensors files (the Hugging Face tensor format:
 * an 8-byte little-endian header length, a JSON header mapping names to dtype, shape and
 * data_offsets, then the raw little-endian data).
 *
 * Reading validates everything before any data is used: the file is long enough for its
 * header, the header is a JSON object, every dtype is known, every shape agrees with its byte
 * range, ranges lie inside the data and do not overlap.  A folder holding
 * model.safetensors.index.json opens all its shards as one set.  Tensors are read on demand
 * and converted to fp32 (F32, F16, BF16) or int32 (I32, I64 in range).
 *
 * Writing collects borrowed tensor pointers, then writes the file to a temporary name,
 * flushes it and renames it, so a crash never leaves a half-written file.  The data of the
 * tensors lies back to back in the order added, starting 8-byte aligned (the header is padded
 * with spaces): the reference reader refuses gaps between tensors, so individual tensors are
 * not padded to alignment.
 *
 * Statuses: R1_EFORMAT for a malformed file or a tensor whose dtype or shape is not what the
 * caller expects, R1_ENOTFOUND for a missing file, shard or tensor, R1_EUNSUPPORTED for an
 * FP8 tensor of rank other than 1 or 2, R1_EIO for system errors, R1_EINVAL for bad arguments.
 * Messages name the file and the tensor. */
#ifndef R1_SAFETENSORS_H
#define R1_SAFETENSORS_H

#include "r1.h"

typedef enum {
    R1_DT_F32 = 0,
    R1_DT_F16,
    R1_DT_BF16,
    R1_DT_I32,
    R1_DT_I64,
    R1_DT_U8,
    R1_DT_I8,
    R1_DT_F8_E4M3,
    R1_DT_F8_E5M2,
    R1_DT_COUNT
} r1_dtype;

#define R1_ST_MAXDIM 8

/* "F32", "BF16", ... as safetensors spells them; element size in bytes. */
const char *r1_dtype_name(r1_dtype dt);
size_t r1_dtype_size(r1_dtype dt);

typedef struct r1_st r1_st; /* an open safetensors file or set of shards */

/* Opens path: a .safetensors file, or a folder with model.safetensors or
 * model.safetensors.index.json ({"weight_map": {tensor: shard file}}; the index and the
 * shards must agree tensor for tensor).  *out is owned by the caller (r1_st_close); it is
 * NULL on failure.  Reads only the headers; r1_st_close(NULL) is a no-op. */
r1_status r1_st_open(r1_st **out, const char *path, r1_error *err);
void r1_st_close(r1_st *st);

/* The tensors by index, in file order (shard by shard for a folder).  r1_st_name's string is
 * borrowed, valid until close; NULL when i is out of range. */
int r1_st_count(const r1_st *st); /* number of tensors */
const char *r1_st_name(const r1_st *st, int i);
int r1_st_find(const r1_st *st, const char *name); /* index, or -1 */

/* dtype, rank and shape of tensor `name`; R1_ENOTFOUND with a message when absent. */
r1_status r1_st_info(const r1_st *st, const char *name, r1_dtype *dt, int *ndim,
                     int64_t shape[R1_ST_MAXDIM], r1_error *err);

/* Reads tensor `name` (F32, F16, BF16, or FP8) into dst as fp32, checking that its shape is
 * exactly shape[0..ndim).  FP8 (F8_E4M3, F8_E5M2) is read as DeepSeek-V3 ships it: the tensor
 * "<name>_scale_inv" holds one scale per 128x128 block ([ceil(rows/128), ceil(cols/128)], F32
 * or any float dtype) and each value is decode(code) * its block's scale; a missing scale
 * tensor or one of the wrong shape is R1_EFORMAT naming both tensors.  Errors name the file,
 * the tensor and the expected and found shapes or dtype: integer dtypes are R1_EFORMAT. */
r1_status r1_st_read_f32(const r1_st *st, const char *name, float *dst, int ndim,
                         const int64_t *shape, r1_error *err);

/* Same for integer tensors (I32, or I64 whose values fit), into int32.  An I64 value out of
 * range is R1_EFORMAT naming the element. */
r1_status r1_st_read_i32(const r1_st *st, const char *name, int32_t *dst, int ndim,
                         const int64_t *shape, r1_error *err);

/* Reads raw bytes of tensor `name` as stored (any dtype) into dst of size n bytes, which must
 * equal the tensor's byte size. */
r1_status r1_st_read_raw(const r1_st *st, const char *name, void *dst, size_t n, r1_error *err);

/* ---- writing ---- */

typedef struct r1_st_writer r1_st_writer;

r1_st_writer *r1_st_writer_new(void);    /* NULL when out of memory; __metadata__ format "pt" */
void r1_st_writer_free(r1_st_writer *w); /* NULL is a no-op */

/* Adds a tensor.  `data` (borrowed until r1_st_writer_write returns) holds the values in
 * dtype `src` (R1_DT_F32 or R1_DT_I32, or raw bytes when src == dst); they are stored as
 * `dst` (F32 -> F32, BF16 (round to nearest even) or F16; I32 -> I32).  The name is copied.
 * R1_EINVAL, naming the tensor, for a name added before, an empty or "__metadata__" name, an
 * unsupported conversion or a negative dimension. */
r1_status r1_st_writer_add(r1_st_writer *w, const char *name, r1_dtype dst, r1_dtype src,
                           const void *data, int ndim, const int64_t *shape, r1_error *err);

/* Adds a string entry to the header's __metadata__ (e.g. "format" = "pt"); a key given again
 * replaces the earlier value. */
r1_status r1_st_writer_meta(r1_st_writer *w, const char *key, const char *value, r1_error *err);

/* Writes every added tensor, in the order added, to path (temporary file "path.tmp.<pid>",
 * fflush, fsync, rename).  On failure (R1_EIO naming path) the temporary file is removed and
 * an existing file at path is left as it was.  The writer can be written again. */
r1_status r1_st_writer_write(r1_st_writer *w, const char *path, r1_error *err);

/* fp16 conversions used by the reader and writer (bf16's are in r1_bf16.h). */
float r1_f16_to_f32(uint16_t h);
uint16_t r1_f32_to_f16(float f); /* round to nearest even */

#endif
