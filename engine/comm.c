/* comm.c — the helpers of r1_comm.h around the caller's collective operations. */
#include <config.h>

#include "r1_comm.h"

void r1_comm_rows(const r1_comm *c, int B, int *lo, int *hi)
{
    if (!c || c->size <= 1) {
        *lo = 0, *hi = B;
        return;
    }
    int q = B / c->size, r = B % c->size;
    *lo = c->rank * q + (c->rank < r ? c->rank : r);
    *hi = *lo + q + (c->rank < r);
}

int r1_comm_leads(const r1_comm *c)
{
    return !c || c->rank == 0;
}

r1_status r1_comm_sum_f32(const r1_comm *c, float *x, size_t n, r1_error *err)
{
    return c && c->size > 1 ? c->sum_f32(c->user, x, n, err) : R1_OK;
}

r1_status r1_comm_sum_f64(const r1_comm *c, double *x, size_t n, r1_error *err)
{
    return c && c->size > 1 ? c->sum_f64(c->user, x, n, err) : R1_OK;
}

r1_status r1_comm_max_f64(const r1_comm *c, double *x, size_t n, r1_error *err)
{
    return c && c->size > 1 ? c->max_f64(c->user, x, n, err) : R1_OK;
}
