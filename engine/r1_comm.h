/* r1_comm.h — the few collective operations data-parallel training needs, as an interface the
 * caller fills: the engine never links a transport itself.  r1lab's command line and Lua fill it
 * from MPI (app/mpi.c) when launched under mpirun; NULL everywhere means one process.
 *
 * Every operation is collective: all ranks call it, in the same order, with the same n.  The
 * sums are in a fixed order (rank 0's part + rank 1's + ..., the same bits on every rank, never
 * depending on timing), so every rank takes the same optimizer step.  A failing operation (a rank
 * died, a time-out) returns an error naming what failed; the trainer then stops, and the last
 * checkpoint stays loadable.  Nothing here allocates but r1_comm_gather. */
#ifndef R1_COMM_H
#define R1_COMM_H

#include <stddef.h>

#include "r1.h"

typedef struct r1_comm {
    int rank, size;
    void *user;
    /* x[n] <- the sum over the ranks of their x[n], on every rank */
    r1_status (*sum_f32)(void *user, float *x, size_t n, r1_error *err);
    r1_status (*sum_f64)(void *user, double *x, size_t n, r1_error *err);
    /* x[n] <- the element-wise largest over the ranks, on every rank */
    r1_status (*max_f64)(void *user, double *x, size_t n, r1_error *err);
    /* all <- every rank's bytes one after another in rank order, on every rank; rank r gives
     * counts[r] bytes (mine), every rank knows all the counts */
    r1_status (*gather_bytes)(void *user, const void *mine, void *all, const size_t *counts,
                              r1_error *err);
} r1_comm;

/* The rows [*lo, *hi) of a batch of B rows that rank r of size takes (contiguous shares, the
 * first B mod size ranks one row more).  comm NULL: all of them. */
void r1_comm_rows(const r1_comm *c, int B, int *lo, int *hi);

/* 1 when this process writes the files of the run (rank 0, or no comm). */
int r1_comm_leads(const r1_comm *c);

/* The sums, or nothing with one process (comm NULL or size 1). */
r1_status r1_comm_sum_f32(const r1_comm *c, float *x, size_t n, r1_error *err);
r1_status r1_comm_sum_f64(const r1_comm *c, double *x, size_t n, r1_error *err);
r1_status r1_comm_max_f64(const r1_comm *c, double *x, size_t n, r1_error *err);

/* *all <- every rank's n bytes of mine one after another in rank order, on every rank (a
 * malloc'ed buffer of *total bytes, the caller frees it; a copy of mine with one process).
 * For the variable-length results a rank makes (rejection sampling's completions). */
r1_status r1_comm_gather(const r1_comm *c, const void *mine, size_t n, char **all,
                         size_t *total, r1_error *err);

/* The time this process has spent in the operations above (waiting for the others included)
 * and the bytes it gave them, since it started: for measuring what data parallelism costs. */
void r1_comm_spent(double *seconds, unsigned long long *bytes);

/* Sums every MoE layer's routed-token counts of m over the ranks (before the balancing
 * update, so that the routing bias moves by the whole batch's load). */
typedef struct r1_model r1_model;
r1_status r1_comm_sum_loads(const r1_comm *c, r1_model *m, r1_error *err);

#endif
