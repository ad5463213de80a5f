/* r1.h — libr1, the r1lab engine: the umbrella header and the base layer.
 *
 * libr1 trains and runs miniature DeepSeek-V3 models (MLA attention, DeepSeekMoE, multi-token
 * prediction) on the CPU, with OpenBLAS for the matrix products.  It never prints, never exits
 * and never touches the terminal: every fallible function returns an r1_status and, when the
 * caller passes an r1_error, a message that names the file, field or position and what was
 * expected.  Logging goes through a callback the program installs.
 *
 * Ownership: whoever calls x_new / x_load owns the handle and calls x_free; every x_free accepts
 * NULL.  Pointers documented as borrowed stay valid until the owning handle is freed.
 */
#ifndef R1_H
#define R1_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ status and errors */

typedef enum {
    R1_OK = 0,
    R1_EINVAL = -1,       /* a bad argument or setting */
    R1_EIO = -2,          /* a file could not be opened, read or written */
    R1_EFORMAT = -3,      /* a file is malformed: truncated, bad JSON, bad dtype or shape */
    R1_ENOMEM = -4,       /* out of memory */
    R1_ECANCELED = -5,    /* a callback or the interrupt flag stopped the work */
    R1_EUNSUPPORTED = -6, /* well-formed but outside what r1lab implements */
    R1_ENOTFOUND = -7     /* a named file, tensor or key does not exist */
} r1_status;

/* A short English name for a status ("invalid argument", ...).  Never NULL. */
const char *r1_status_str(r1_status s);

#define R1_ERRLEN 512

/* The error detail of a failed call.  Functions that take an r1_error * fill it on failure
 * (NULL is allowed and means "status only"); on success they leave it untouched. */
typedef struct {
    r1_status status;
    char msg[R1_ERRLEN];
} r1_error;

/* Records status and a printf-style message in err (err may be NULL); returns status so that
 * callers can write `return r1_error_set(err, R1_EFORMAT, "...")`. */
r1_status r1_error_set(r1_error *err, r1_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes the message already in err with "prefix: " (used to add the file name). */
void r1_error_prefix(r1_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------------------ logging */

typedef enum { R1_LOG_DEBUG = 0, R1_LOG_INFO = 1, R1_LOG_WARN = 2 } r1_log_level;
typedef void (*r1_log_fn)(r1_log_level level, const char *msg, void *user);

/* Installs the process-wide log callback (NULL: messages are dropped). */
void r1_set_log(r1_log_fn fn, void *user);
void r1_log(r1_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------------------ interruption */

/* The interrupt flag: set from a signal handler (async-signal-safe), checked by every long
 * engine loop between steps and tokens, which then return R1_ECANCELED. */
void r1_interrupt(void);
int r1_interrupted(void);
void r1_interrupt_clear(void);

/* ------------------------------------------------------------------ threads */

/* Sets how many threads the engine uses (OpenBLAS and its own workers together), so that
 * the two never oversubscribe the cores.  0 means "all online cores". */
void r1_set_threads(int n);
int r1_threads(void);

/* Takes OpenBLAS's work buffer (about 128 MiB of address space each) on every thread of the
 * pool now, while the address space is free: OpenBLAS spins forever when it cannot get one
 * later.  R1_ENOMEM naming the limit when an address-space limit (ulimit -v) leaves too little
 * room.  Call it at start, after r1_set_threads; calling it again is cheap. */
r1_status r1_blas_reserve(r1_error *err);

/* ------------------------------------------------------------------ kernel paths (isa.c) */

/* The engine's own products (BF16 training and decoding, FP8 through BF16) have one kernel per
 * path, chosen at run time by what the CPU and the OS offer: AMX tiles (tdpbf16ps, after Linux
 * grants the tile state), AVX-512 BF16 (vdpbf16ps), AVX2 + FMA (bf16 widened to fp32), or
 * portable C.  fp32 products of training and prompts run on r1lab's own fp32 GEMM on the
 * avx512bf16 and amx paths (each output one FMA chain over k in order: a row's bits its own,
 * whatever the batch), on OpenBLAS's sgemm on the others; decoding's few rows on r1lab's dot
 * products on every path (r1_isa_fp32_gemm says which).  The environment variable
 * R1_ISA (one of the names below) forces a lower path at start, for tests and comparisons.
 * AVX-512 BF16, AVX2 and portable sum each output in the same order, so they agree to the last
 * bit except on denormals, which AVX-512 BF16 flushes to zero; AMX sums a tile's products in
 * the hardware's order, so its outputs differ from theirs in the last bits (within the same
 * bound, r1_gemm16.h).  AMX's GEMM is training's and FP8's; decoding's few-row products stay
 * on the AVX-512 BF16 kernels there. */
typedef enum {
    R1_ISA_PORTABLE = 0,
    R1_ISA_AVX2 = 1,
    R1_ISA_AVX512BF16 = 2,
    R1_ISA_AMX = 3,
    R1_ISA_COUNT = 4
} r1_isa;
const char *r1_isa_name(r1_isa i);  /* "portable", "avx2", "avx512bf16", "amx" */
int r1_isa_cpu_has(r1_isa i);       /* 1 when the CPU and the OS offer it */
r1_isa r1_isa_best(void);           /* the best path the CPU offers and the engine has */
r1_isa r1_isa_active(void);         /* the path in use */
/* Uses path i from now on (process-wide; calls already running finish on the old one).
 * R1_EINVAL when i is better than r1_isa_best(), naming why. */
r1_status r1_isa_set(r1_isa i, r1_error *err);
/* The message for an R1_ISA the engine could not follow (a name it does not know: *misspelt
 * = 1; or a path this machine lacks), or NULL.  Either way the best path is in use. */
const char *r1_isa_env_error(int *misspelt);
/* Path i now: "in use", "available", "no kernels in this build" or "not in this CPU". */
const char *r1_isa_state(r1_isa i);
/* "amx (not in this CPU), avx512bf16 (in use), avx2 (available), portable (available)" */
void r1_isa_describe(char *buf, size_t n);
/* Who runs training's fp32 products on the path in use: "r1lab" or "OpenBLAS". */
const char *r1_isa_fp32_gemm(void);

/* ------------------------------------------------------------------ the machine */

/* What a run's last bits depend on, recorded in every run folder (the checkpoint's
 * trainer_state.json, "machine") and in the model card: the CPU, the BLAS library with the
 * kernels it picked for this CPU (OPENBLAS_CORETYPE overrides them), the engine's own kernel
 * path, and the thread count (which does not change results: products are cut by their shape,
 * engine/ops.c).  Strings are always terminated; "unknown" where the system does not say. */
typedef struct {
    char cpu[96];     /* the CPU's model name, e.g. "AMD EPYC 9R14 96-Core Processor" */
    char isa[96];     /* the vector and matrix extensions it has, of avx2 avx512f avx512_bf16
                       * avx512_fp16 amx_bf16 amx_int8, space-separated ("" for none) */
    char blas[96];    /* e.g. "OpenBLAS 0.3.21, Haswell kernels" */
    char kernels[32]; /* the engine's kernel path in use: r1_isa_name(r1_isa_active()) */
    int threads;      /* r1_threads() */
} r1_machine;
void r1_machine_get(r1_machine *m);

/* ------------------------------------------------------------------ small helpers (util.c) */

/* Seconds on the monotonic clock (for durations and rates; not the time of day). */
double r1_now(void);

/* mkdir -p: creates dir and its missing parents with mode (masked by the umask).  R1_EIO
 * naming the folder that could not be created or that is not a folder. */
r1_status r1_mkdirs(const char *dir, int mode, r1_error *err);

/* The library version, "MAJOR.MINOR.PATCH". */
const char *r1_version(void);

#ifdef __cplusplus
}
#endif
#endif /* R1_H */
