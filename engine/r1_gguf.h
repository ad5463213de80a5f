/* SPDX-License-Identifier: GPL-3.0-or-later */
/* r1_gguf.h — GGUF files: the format llama.cpp and Ollama load models from.
 *
 * A GGUF v3 file (ggml's docs/gguf.md) is, all little-endian:
 *
 *     "GGUF"  u32 version  u64 tensor_count  u64 kv_count
 *     kv_count   x  (string key, u32 value type, value)
 *     tensor_count x (string name, u32 n_dims, u64 ne[n_dims], u32 ggml type, u64 offset)
 *     zero padding to the alignment (general.alignment, 32 when absent)
 *     the tensors' data, each at its offset from here, each padded to the alignment
 *
 * where a string is a u64 length and that many bytes (no NUL), and an array value is a u32
 * element type, a u64 count and the elements.  Shapes are in ggml's order: ne[0] is the
 * innermost (fastest-varying) dimension, so a row-major PyTorch [rows, cols] matrix is
 * ne = {cols, rows}.
 *
 *   - r1_gguf_save writes an r1_model and its r1_tokenizer as a llama.cpp `deepseek2` model
 *     (gguf_export.c says which llama.cpp names and keys it follows);
 *   - r1_gguf_writer is the general writer under it;
 *   - r1_gguf_open reads a file's key/value pairs and tensor infos and then tensors' bytes on
 *     demand: enough to check a file r1lab wrote, or to say what is wrong with a bad one.
 *
 * Ownership: handles from _new / _open are the caller's (_free / _close; NULL is a no-op).
 * Strings and infos a reader returns are borrowed until r1_gguf_close.  Writers copy keys,
 * names and strings; tensor data is borrowed until r1_gguf_writer_write returns.
 *
 * Errors: R1_EINVAL for bad arguments (naming the key or tensor); R1_EIO naming the path when a
 * file cannot be read or written (written files go through a temporary name, fsync and rename,
 * so a failure leaves no half-written file); R1_EFORMAT for a malformed file, the message naming
 * the file, the byte offset, the field or key, and what was expected; R1_EUNSUPPORTED for a
 * well-formed file r1lab does not read (another version, nested arrays); R1_ENOTFOUND;
 * R1_ENOMEM. */
#ifndef R1_GGUF_H
#define R1_GGUF_H

#include "r1.h"
#include "r1_model.h"
#include "r1_tokenizer.h"

/* The metadata value types of the specification. */
typedef enum {
    R1_GGUF_U8 = 0,
    R1_GGUF_I8 = 1,
    R1_GGUF_U16 = 2,
    R1_GGUF_I16 = 3,
    R1_GGUF_U32 = 4,
    R1_GGUF_I32 = 5,
    R1_GGUF_F32 = 6,
    R1_GGUF_BOOL = 7,
    R1_GGUF_STRING = 8,
    R1_GGUF_ARRAY = 9,
    R1_GGUF_U64 = 10,
    R1_GGUF_I64 = 11,
    R1_GGUF_F64 = 12,
    R1_GGUF_NTYPES = 13
} r1_gguf_type;

/* The ggml tensor types r1lab writes and reads (ggml's enum ggml_type). */
#define R1_GGML_F32 0u
#define R1_GGML_F16 1u
#define R1_GGML_BF16 30u

#define R1_GGUF_VERSION 3
#define R1_GGUF_ALIGNMENT 32  /* the default; r1lab writes general.alignment = 32 */
#define R1_GGUF_MAX_DIMS 4    /* ggml's GGML_MAX_DIMS */
#define R1_GGUF_MAX_NAME 63   /* ggml keeps tensor names in 64 bytes with the NUL */

/* "u8", "i32", "f32", "string", "array", ... ; "?" for another value. */
const char *r1_gguf_type_name(r1_gguf_type t);
/* "F32", "F16", "BF16", or "type N" in a static buffer of the calling thread for the others. */
const char *r1_ggml_type_name(uint32_t type);

/* ------------------------------------------------------------------ exporting a model */

typedef struct {
    r1_dtype dtype;   /* the matrices: R1_DT_F32, R1_DT_BF16 or R1_DT_F16 (norms, biases and
                       * the router stay F32, as llama.cpp's converter keeps them) */
    const char *name; /* general.name; NULL: "r1lab" */
    int mtp;          /* the MTP layers as blk.L.nextn.* (1), or the main model alone (0):
                       * llama.cpp builds before its deepseek2 loaded nextn tensors (its
                       * converter drops them) refuse a file with them */
} r1_gguf_opts;

/* F32, name NULL, MTP layers kept. */
r1_gguf_opts r1_gguf_defaults(void);

/* Writes model m with tokenizer tok to path as a llama.cpp `deepseek2` GGUF: every
 * hyper-parameter of m's config that llama.cpp reads, the vocabulary as a byte-level BPE
 * without merges (so that llama.cpp's tokenizer gives r1lab's ids), the special tokens as
 * control tokens, bos/eos/pad ids, the chat template, and every tensor (the MTP layers as
 * blk.L.nextn.*, unless opts->mtp is 0).  A model without shared experts gets zero-filled ones
 * (llama.cpp's deepseek2 requires them; zero weights add exactly zero).  Temporary name, fsync, rename.
 * R1_EINVAL for a bad dtype, a tokenizer larger than the model's vocabulary, or a token text
 * no byte-level vocabulary can hold; R1_EUNSUPPORTED for a config llama.cpp cannot run (named);
 * R1_EIO naming path; R1_ENOMEM. */
r1_status r1_gguf_save(const r1_model *m, const r1_tokenizer *tok, const char *path,
                       const r1_gguf_opts *opts, r1_error *err);

/* ------------------------------------------------------------------ the writer */

typedef struct r1_gguf_writer r1_gguf_writer;

r1_gguf_writer *r1_gguf_writer_new(void); /* NULL when out of memory */
void r1_gguf_writer_free(r1_gguf_writer *w);

/* Key/value pairs, written in the order added.  A key must be ASCII, non-empty, at most 65535
 * bytes and new to this writer (R1_EINVAL naming it otherwise). */
r1_status r1_gguf_writer_u32(r1_gguf_writer *w, const char *key, uint32_t v, r1_error *err);
r1_status r1_gguf_writer_i32(r1_gguf_writer *w, const char *key, int32_t v, r1_error *err);
r1_status r1_gguf_writer_f32(r1_gguf_writer *w, const char *key, float v, r1_error *err);
r1_status r1_gguf_writer_bool(r1_gguf_writer *w, const char *key, int v, r1_error *err);
r1_status r1_gguf_writer_str(r1_gguf_writer *w, const char *key, const char *v, r1_error *err);
/* Arrays: n strings (each NUL-terminated), n int32, n float. */
r1_status r1_gguf_writer_arr_str(r1_gguf_writer *w, const char *key, const char *const *v,
                                 uint64_t n, r1_error *err);
r1_status r1_gguf_writer_arr_i32(r1_gguf_writer *w, const char *key, const int32_t *v,
                                 uint64_t n, r1_error *err);
r1_status r1_gguf_writer_arr_f32(r1_gguf_writer *w, const char *key, const float *v,
                                 uint64_t n, r1_error *err);

/* Fills dst[n] with the fp32 values of a tensor being written (see r1_gguf_writer_tensor);
 * returns 0, or non-zero when it cannot (out of memory), which fails the write with R1_ENOMEM. */
typedef int (*r1_gguf_fill_fn)(void *user, float *dst, size_t n);

/* Adds a tensor of shape ne[0..ndim) (ggml order, ndim 1..4) stored as type (R1_GGML_F32, F16
 * or BF16; bf16 and f16 round to nearest even with the engine's r1_f32_to_bf16 / _f16).  Its
 * values are either data (fp32, borrowed until r1_gguf_writer_write returns) or, when data is
 * NULL, produced by fill(user, ...) at write time, one tensor at a time.  R1_EINVAL naming the
 * tensor for a name added before, empty or longer than R1_GGUF_MAX_NAME, a bad type or rank. */
r1_status r1_gguf_writer_tensor(r1_gguf_writer *w, const char *name, uint32_t type, int ndim,
                                const uint64_t *ne, const float *data, r1_gguf_fill_fn fill,
                                void *user, r1_error *err);

/* Writes the file (temporary name, fsync, rename).  R1_EIO naming path; R1_ENOMEM. */
r1_status r1_gguf_writer_write(r1_gguf_writer *w, const char *path, r1_error *err);

/* ------------------------------------------------------------------ the reader */

typedef struct r1_gguf r1_gguf;

/* One key/value pair.  Scalars: u for the unsigned types and bool, i for the signed, f for
 * f32/f64, str/len for a string.  Arrays: type R1_GGUF_ARRAY, arr_type the elements' type, n
 * their count; numeric elements lie packed little-endian at data (n times their size); string
 * elements through r1_gguf_arr_str. */
typedef struct {
    const char *key;
    r1_gguf_type type;
    r1_gguf_type arr_type;
    uint64_t n;
    uint64_t u;
    int64_t i;
    double f;
    const char *str; /* NUL-terminated copy (a string may hold NULs: len is the truth) */
    uint64_t len;
    const void *data;
} r1_gguf_kv;

typedef struct {
    const char *name;
    int ndim;
    uint64_t ne[R1_GGUF_MAX_DIMS]; /* ggml order; 1 past ndim */
    uint32_t type;                 /* ggml type */
    uint64_t offset;               /* from the start of the data section */
    uint64_t nbytes;               /* for F32, F16, BF16; 0 for types r1lab does not read */
} r1_gguf_tensor;

/* Opens and validates path: the magic, the version (2 or 3), every key and value, every tensor
 * info (rank, dimensions, offsets aligned, inside the file, in order, not overlapping), and
 * general.alignment (u32, a power of two).  *out is NULL on failure. */
r1_status r1_gguf_open(r1_gguf **out, const char *path, r1_error *err);
void r1_gguf_close(r1_gguf *g);

uint32_t r1_gguf_version(const r1_gguf *g);
uint64_t r1_gguf_alignment(const r1_gguf *g);
uint64_t r1_gguf_data_offset(const r1_gguf *g); /* where the data section starts in the file */

int r1_gguf_kv_count(const r1_gguf *g);
const r1_gguf_kv *r1_gguf_kv_at(const r1_gguf *g, int i); /* NULL when out of range */
const r1_gguf_kv *r1_gguf_kv_find(const r1_gguf *g, const char *key); /* NULL when absent */
/* Element j of a string array (NUL-terminated copy; *len its length if len is not NULL), or
 * NULL when kv is not a string array or j is out of range. */
const char *r1_gguf_arr_str(const r1_gguf_kv *kv, uint64_t j, uint64_t *len);

int r1_gguf_tensor_count(const r1_gguf *g);
const r1_gguf_tensor *r1_gguf_tensor_at(const r1_gguf *g, int i);
int r1_gguf_tensor_find(const r1_gguf *g, const char *name); /* index, or -1 */

/* Reads tensor i's bytes as stored into dst, which holds n bytes, exactly its nbytes.
 * R1_EINVAL for i out of range or n of another size; R1_EUNSUPPORTED for a type r1lab does not
 * read; R1_EIO / R1_EFORMAT naming the file and tensor when the bytes cannot be read. */
r1_status r1_gguf_read_tensor(const r1_gguf *g, int i, void *dst, size_t n, r1_error *err);

#endif
