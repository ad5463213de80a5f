/* launch.h — background jobs the workbench watches: r1.launch{np = N, script = FILE} and
 * `:mpirun N FILE` start `mpirun -np N r1lab run FILE` with rank 0's training reports relayed
 * (relay.h), and a reader thread turns the job's output into the workbench's output pane and
 * its reports into the panes (through the binding's observer at launch time; printed on
 * stdout and dropped without one).  The job runs in its own process group with stdin from
 * /dev/null, so neither the terminal's keys nor its signals reach it; jobs still running when
 * the program ends are stopped (launch_stop_all).  Thread-safe. */
#ifndef R1_APP_LAUNCH_H
#define R1_APP_LAUNCH_H

#include <stddef.h>

#include "lua_r1.h"

typedef struct launch_job launch_job;

typedef struct {
    int np;                     /* ranks (>= 1) */
    const char *script;         /* the Lua script each rank runs */
    const char *const *args;    /* its arguments (nargs of them) */
    int nargs;
    int threads;                /* engine threads per rank (0: mpirun's share of the cores) */
    const char *hostfile;       /* mpirun --hostfile (NULL: this machine) */
    const char *const *extra;   /* more mpirun options, before the program (nextra) */
    int nextra;
    const char *mpirun;         /* the launcher (NULL: $R1LAB_MPIRUN or "mpirun") */
} launch_opts;

/* Starts a job; NULL with a message in err (the script missing, np < 1, no mpirun, fork
 * failed).  The job's output and reports go to the observer obs (may be NULL). */
launch_job *launch_start(const launch_opts *o, const lua_r1_observer *obs, char *err,
                         size_t cap);

int launch_id(const launch_job *j);               /* 1, 2, ... in the order started */
const char *launch_command(const launch_job *j);  /* the command line, for messages */
/* 1 while the job runs; else 0 with *status its exit status (128 + N: killed by signal N) */
int launch_poll(launch_job *j, int *status);
/* Waits for the end, at most timeout_ms (< 0: no limit); 0 and *status when it ended, 1 on
 * time-out.  stop (may be NULL) is asked every 100 ms: non-zero returns 2. */
int launch_wait(launch_job *j, int timeout_ms, int (*stop)(void), int *status);
/* Stops the job: SIGTERM to its process group, SIGKILL after 5 s (waits for the end). */
void launch_stop(launch_job *j);
/* Sends sig to the job's process group without waiting; 0, or -1 when it has ended. */
int launch_signal(launch_job *j, int sig);
/* The jobs started (records live as long as the program: a few bytes each), one per line:
 * id, running or ended with its status, the command. */
void launch_list(char *buf, size_t cap);
/* A job by id (NULL: none). */
launch_job *launch_find(int id);
/* Stops every running job and waits for them (at exit). */
void launch_stop_all(void);

#endif
