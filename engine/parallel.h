/* parallel.h — internal to libr1: a small pool that runs the iterations of a loop on
 * r1_threads() threads (the caller included), with OpenBLAS single-threaded inside, so that
 * many small GEMMs (one per expert, one per sequence) run side by side instead of each being
 * split across cores.  Iterations are handed out one at a time (experts are uneven).
 * Never fails: without threads, or when a pool cannot start, the loop runs serially. */
#ifndef R1_PARALLEL_H
#define R1_PARALLEL_H

#include <stddef.h>

#include "r1.h"

/* fn(ctx, i, tid) for i in [0, n); tid in [0, r1__nworkers()) identifies the running thread
 * (for per-thread scratch).  Returns when every iteration is done.  Not reentrant. */
void r1__parallel_for(int n, void (*fn)(void *ctx, int i, int tid), void *ctx);

#define R1_MAX_WORKERS 16 /* tid < R1_MAX_WORKERS always: size per-thread scratch by it */

/* Products below this many multiply-adds stay whole: cutting costs more. */
#define R1_PAR_MIN (1L << 18)
#define R1_PIECE_MIN 64 /* rows (or outputs) of a piece, at least */

/* Below this many multiply-adds, the pieces of a product run one after the other on the
 * calling thread: waking a second thread costs more (decoding a token of `tiny` on 2 threads
 * ran slower than on 1; its largest product is 2^17).  The pieces, and so the bits, are the
 * same either way.  2^22 had also kept a GRPO step's RMSNorms, RoPE and 64-row decoding heads
 * (2^20 to 2^21) on one core while the other slept: 2^20 took 5% off the step (8 runs each,
 * alternating) and `tiny` batch-16 decoding from 5.4-6.0 k to 7.0-7.1 k tokens/s. */
#define R1_PAR_WAKE (1L << 20)
/* ... unless every worker is still spinning from the last loop (a training pass, one loop
 * after another): then from this many on.  A tiny bf16 step at GRPO's shape ran its RMSNorms
 * and RoPE on the calling thread alone (4-6% of the step) while the other core spun. */
#define R1_PAR_WARM (1L << 18)

/* Runs fn over [0, n) side by side when work is at least R1_PAR_WAKE (R1_PAR_WARM with the
 * workers spinning), else in order here. */
void r1__parallel_for_work(long work, int n, void (*fn)(void *ctx, int i, int tid), void *ctx);

/* p[0, n) = 0, in pieces side by side when large: a backward pass zeroes its gradient buffers
 * (a layer's several MB) before the products add into them, and had done so on the calling
 * thread alone (memset was 2.8% of a `tiny` step, all of it on that thread).  A float weighs
 * ZERO_COST multiply-adds for the thresholds. */
#define ZERO_COST 4
void r1__zero(float *p, size_t n);

/* How many pieces a product is cut into, to run them side by side.  The cut depends on the
 * shape alone, never on the thread count or on whether the caller already runs inside a
 * parallel loop (a nested loop runs the same pieces in order on its own thread): OpenBLAS
 * rounds a row differently when it sits in a product of another size (its edge and
 * small-matrix kernels sum in another order), so a cut that followed the threads made a run on
 * 1 thread differ in the last bits from the same run on 2, and training turns last bits into
 * another model.  Up to R1_MAX_WORKERS pieces of at least 64 rows (or outputs) each. */
static inline int r1__pieces(long work, int n)
{
    if (work < R1_PAR_MIN)
        return 1;
    int p = n / R1_PIECE_MIN;
    return p < 1 ? 1 : p > R1_MAX_WORKERS ? R1_MAX_WORKERS : p;
}

/* A product of a few rows (a decoding step's, at most R1_ROWS_FEW tokens) reads each weight
 * for one multiply-add a row: it waits on the caches and memory, not on the FMAs, and is worth
 * a second thread from fewer multiply-adds than the thresholds above (set by compute-bound
 * GEMMs).  Its multiply-adds are weighed R1_ROW_WEIGHT times for the cut and the pool.
 * Measured side by side (Zen 5, 2 threads, medians of 3-4 alternating runs, fp32 rows):
 * `small` batch 1 376 -> 572 tokens/s and the built-in model 4072 -> 4673 at 8; 16 slowed the
 * built-in model (4363: its products of 16k-30k multiply-adds cut too), 4 gained less on
 * `small` (418). */
#define R1_ROWS_FEW 4
#define R1_ROW_WEIGHT 8
static inline long r1__weigh_rows(long work, int rows)
{
    return rows <= R1_ROWS_FEW ? work * R1_ROW_WEIGHT : work;
}

/* Piece i of `parts` over [0, n): [*lo, *hi), the pieces' length rounded up to a multiple of
 * align (a tile's rows or columns); pieces past the end are empty. */
static inline void r1__piece(int n, int parts, int i, int align, int *lo, int *hi)
{
    int step = (n + parts - 1) / parts;
    step = (step + align - 1) / align * align;
    *lo = i * step < n ? i * step : n;
    *hi = (i + 1) * step < n ? (i + 1) * step : n;
}

/* 1 inside an iteration of r1__parallel_for (where a nested loop runs serially). */
int r1__in_parallel(void);

/* How many threads r1__parallel_for may use. */
int r1__nworkers(void);

/* How a product C[M,N] of `work` multiply-adds whose sums do not depend on the cut (r1lab's
 * GEMMs) is cut for the threads there are: by rows (*cut_rows) or by columns, into the pieces
 * r1__pieces allows, at most one a thread (one inside a parallel loop).  Returns the pieces. */
static inline int r1__gemm_cut(long work, int M, int N, int *cut_rows)
{
    int threads = r1__in_parallel() ? 1 : r1__nworkers();
    int rows = r1__pieces(work, M), cols = r1__pieces(work, N);
    *cut_rows = rows > 1 || cols <= 1;
    int parts = *cut_rows ? rows : cols;
    return parts < threads ? parts : threads;
}

/* Under an address-space limit (ulimit -v), OpenBLAS spins forever when it cannot get a work
 * buffer.  r1__blas_room() is 1 when a buffer would fit now (always, and free, without a
 * limit); when it would not, it records that and is 0, and the caller skips the BLAS call.
 * The entry points (forward, backward, a decoding step) then fail with r1__blas_status:
 * R1_ENOMEM naming the limit, and the flag cleared.  Every BLAS call goes through R1_BLAS. */
int r1__blas_room(void);
r1_status r1__blas_status(r1_error *err);
#define R1_BLAS(call)                                                                              \
    do {                                                                                           \
        if (r1__blas_room())                                                                       \
            call;                                                                                  \
    } while (0)

#endif
