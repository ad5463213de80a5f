/* comm.c — the helpers of r1_comm.h around the caller's collective operations. */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "r1_comm.h"
#include "r1_model.h"

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

/* what the collectives cost this process (r1_comm_spent): the caller's thread alone calls them */
static double spent_s;
static unsigned long long spent_bytes;

void r1_comm_spent(double *seconds, unsigned long long *bytes)
{
    *seconds = spent_s;
    *bytes = spent_bytes;
}

static r1_status counted(r1_status st, double t0, size_t bytes)
{
    spent_s += r1_now() - t0;
    spent_bytes += bytes;
    return st;
}

r1_status r1_comm_sum_f32(const r1_comm *c, float *x, size_t n, r1_error *err)
{
    if (!c || c->size <= 1)
        return R1_OK;
    double t0 = r1_now();
    return counted(c->sum_f32(c->user, x, n, err), t0, n * sizeof *x);
}

r1_status r1_comm_sum_f64(const r1_comm *c, double *x, size_t n, r1_error *err)
{
    if (!c || c->size <= 1)
        return R1_OK;
    double t0 = r1_now();
    return counted(c->sum_f64(c->user, x, n, err), t0, n * sizeof *x);
}

r1_status r1_comm_max_f64(const r1_comm *c, double *x, size_t n, r1_error *err)
{
    if (!c || c->size <= 1)
        return R1_OK;
    double t0 = r1_now();
    return counted(c->max_f64(c->user, x, n, err), t0, n * sizeof *x);
}

r1_status r1_comm_gather(const r1_comm *c, const void *mine, size_t n, char **all,
                         size_t *total, r1_error *err)
{
    *all = NULL;
    *total = 0;
    int N = c && c->size > 1 ? c->size : 1;
    double *len = calloc((size_t)N, sizeof(double)); /* byte counts: exact in a double */
    size_t *counts = calloc((size_t)N, sizeof(size_t));
    r1_status st = len && counts ? R1_OK : r1_error_set(err, R1_ENOMEM, "out of memory");
    if (st == R1_OK) {
        len[N > 1 ? c->rank : 0] = (double)n;
        st = r1_comm_sum_f64(c, len, (size_t)N, err); /* every rank learns every count */
    }
    size_t t = 0;
    for (int r = 0; st == R1_OK && r < N; r++)
        t += counts[r] = (size_t)len[r];
    char *buf = st == R1_OK ? malloc(t ? t : 1) : NULL;
    if (st == R1_OK && !buf)
        st = r1_error_set(err, R1_ENOMEM, "out of memory for %zu gathered bytes", t);
    double t0 = r1_now();
    if (st == R1_OK && N > 1)
        st = counted(c->gather_bytes(c->user, mine, buf, counts, err), t0, t);
    else if (st == R1_OK && n)
        memcpy(buf, mine, n);
    free(len), free(counts);
    if (st != R1_OK) {
        free(buf);
        return st;
    }
    *all = buf;
    *total = t;
    return R1_OK;
}

r1_status r1_comm_sum_loads(const r1_comm *c, r1_model *m, r1_error *err)
{
    r1_status st = R1_OK;
    int E = r1_model_config(m)->n_routed_experts;
    for (int l = 0; st == R1_OK && c && c->size > 1 && l < r1_model_nlayers_total(m); l++) {
        long *ntk = NULL;
        double *cnt = r1_model_load_counts(m, l, &ntk);
        double nt = cnt ? (double)*ntk : 0;
        if (cnt && (st = r1_comm_sum_f64(c, cnt, E, err)) == R1_OK &&
            (st = r1_comm_sum_f64(c, &nt, 1, err)) == R1_OK)
            *ntk = (long)nt;
    }
    return st;
}
