/* mpi_cmp.c — compares the parameters of two model folders for t_mpi.sh: prints the largest
 * absolute difference over every tensor (and which), the largest absolute weight, and the
 * number of tensors; with TOL, also how many weights differ by more than TOL, of how many, and
 * in how many tensors.  Exit 1 when a folder does not load or their shapes differ. */
#include <stdlib.h>
#include <config.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "r1_model.h"

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: mpi_cmp DIR_A DIR_B [TOL]\n");
        return 2;
    }
    r1_model *a = NULL, *b = NULL;
    r1_error err = {0};
    if (r1_model_load(&a, argv[1], &err) != R1_OK || r1_model_load(&b, argv[2], &err) != R1_OK) {
        fprintf(stderr, "mpi_cmp: %s\n", err.msg);
        return 1;
    }
    if (r1_model_numel(a) != r1_model_numel(b) || r1_model_nparams(a) != r1_model_nparams(b)) {
        fprintf(stderr, "mpi_cmp: the two models differ in shape\n");
        return 1;
    }
    const float *pa = r1_model_params(a), *pb = r1_model_params(b);
    double worst = 0, wmax = 0, tol = argc == 4 ? atof(argv[3]) : INFINITY;
    const char *at = "";
    size_t beyond = 0, total = 0;
    int tensors = 0;
    for (int i = 0; i < r1_model_nparams(a); i++) {
        const r1_param *p = r1_model_param(a, i);
        size_t here = 0;
        for (size_t k = 0; k < p->numel; k++) {
            double d = fabs((double)pa[p->offset + k] - pb[p->offset + k]);
            wmax = fmax(wmax, fabs(pa[p->offset + k]));
            here += !(d <= tol);
            if (d > worst) {
                worst = d;
                at = p->name;
            }
        }
        beyond += here;
        tensors += here > 0;
        total += p->numel;
    }
    printf("max_abs_diff %.3e at %s; max_abs_weight %.3f; %d tensors", worst, at, wmax,
           r1_model_nparams(a));
    if (argc == 4)
        printf("; %zu of %zu weights beyond %g, in %d tensors", beyond, total, tol, tensors);
    printf("\n");
    r1_model_free(a);
    r1_model_free(b);
    return 0;
}
