/* world.h — this process's place in an MPI job.  r1lab started by mpirun (Open MPI sets
 * OMPI_COMM_WORLD_SIZE) joins MPI_COMM_WORLD and hands the engine's data-parallel stages an
 * r1_comm over it; started any other way, or built without MPI, it is one process and
 * world_comm() is NULL.  Only app/ knows MPI: the engine sees the r1_comm interface. */
#ifndef R1_WORLD_H
#define R1_WORLD_H

#include <stddef.h>

#include "r1_comm.h"

/* Joins the job when launched by mpirun (nothing otherwise).  Returns 0, or non-zero with a
 * message in err when MPI would not start. */
int world_init(int *argc, char ***argv, char *err, size_t cap);

/* Leaves the job: with status 0 as every rank does (MPI_Finalize), otherwise by stopping every
 * rank of the job (MPI_Abort), so that none waits for this one forever. */
void world_finish(int status);

const r1_comm *world_comm(void); /* NULL: one process */
/* "Open MPI v4.1.4 (data-parallel under mpirun)" or "none (built without MPI)" */
void world_describe(char *buf, size_t cap);
int world_rank(void);            /* 0 with one process */
int world_size(void);            /* 1 with one process */
int world_local_size(void);      /* ranks on this machine (1 with one process) */

#endif
