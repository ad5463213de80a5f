/* bench_comm.c — what data parallelism's gradient sum costs on this machine, for `make bench`
 * (run under mpirun; a benchmark, it asserts nothing).  For every preset's gradient (all its
 * parameters, fp32) it times r1lab's fixed-order sum (app/world.c: all-to-all of the chunks,
 * each rank adds its chunk in rank order, all-gather) beside Open MPI's own MPI_Allreduce,
 * whose order of additions may change with the timing.  Best of 5 after a warm-up; rank 0
 * prints one line per preset. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>

#include "r1.h"
#include "r1_comm.h"
#include "r1_model.h"
#include "world.h"

#ifdef HAVE_MPI
#include <mpi.h>

int main(int argc, char **argv)
{
    char err[256];
    if (world_init(&argc, &argv, err, sizeof err) || !world_comm()) {
        fprintf(stderr, "bench_comm: run it under mpirun -np 2 or more (%s)\n", err);
        world_finish(1);
        return 1;
    }
    const r1_comm *c = world_comm();
    static const char *const presets[] = {"tiny", "small"};
    for (int p = 0; p < 2; p++) {
        r1_config cfg;
        r1_model *m = NULL;
        r1_error e = {0};
        if (r1_config_preset(&cfg, presets[p], &e) != R1_OK || r1_model_new(&m, &cfg, &e) != R1_OK) {
            fprintf(stderr, "bench_comm: %s\n", e.msg);
            world_finish(1);
            return 1;
        }
        size_t n = r1_model_numel(m);
        r1_model_free(m);
        float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n);
        for (size_t i = 0; x && y && i < n; i++)
            x[i] = y[i] = (float)(i % 1000) * 1e-3f;
        double best_r1 = 1e30, best_mpi = 1e30;
        for (int it = 0; x && y && it < 6; it++) {
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = MPI_Wtime();
            if (r1_comm_sum_f32(c, x, n, &e) != R1_OK) {
                fprintf(stderr, "bench_comm: %s\n", e.msg);
                break;
            }
            double t1 = MPI_Wtime();
            MPI_Barrier(MPI_COMM_WORLD);
            double t2 = MPI_Wtime();
            MPI_Allreduce(MPI_IN_PLACE, y, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            double t3 = MPI_Wtime();
            if (it > 0) { /* the first touches the buffers and sets up the transport */
                best_r1 = t1 - t0 < best_r1 ? t1 - t0 : best_r1;
                best_mpi = t3 - t2 < best_mpi ? t3 - t2 : best_mpi;
            }
        }
        if (c->rank == 0)
            printf("%-6s %10zu floats (%6.1f MB): r1lab fixed order %8.1f ms (%5.2f GB/s), "
                   "MPI_Allreduce %8.1f ms (%5.2f GB/s), %d ranks\n",
                   presets[p], n, n * 4 / 1e6, best_r1 * 1e3, n * 4 / best_r1 / 1e9,
                   best_mpi * 1e3, n * 4 / best_mpi / 1e9, c->size);
        free(x), free(y);
    }
    world_finish(0);
    return 0;
}
#else
int main(void)
{
    printf("bench_comm: built without MPI\n");
    return 0;
}
#endif
