/* parallel.c — the loop pool of parallel.h.  Workers are created on first use and sleep on a
 * condition variable between loops; the caller works too.  OpenBLAS itself always runs
 * single-threaded (r1_set_threads keeps it at 1): its idle threads spin in sched_yield, which
 * measured as a fifth of a training step's CPU time, so the engine splits its large products
 * across this pool instead (ops.c), and the two never oversubscribe the cores. */
#include <config.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "parallel.h"
#include "r1.h"

#define MAXW R1_MAX_WORKERS

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t go = PTHREAD_COND_INITIALIZER, done = PTHREAD_COND_INITIALIZER;
static int started;          /* worker threads running */
static unsigned long gen;    /* loop generation: workers wake when it changes */
static int busy;             /* workers still inside the current loop */
static void (*cur_fn)(void *, int, int);
static void *cur_ctx;
static int cur_n;
static int cur_nw;            /* threads allowed in the current loop */
static atomic_int next_i;
static __thread int in_loop; /* this thread is running a loop's iteration */

int r1__nworkers(void)
{
    int n = r1_threads();
    return n < 1 ? 1 : n > MAXW ? MAXW : n;
}

static void run_items(int tid)
{
    in_loop = 1;
    for (;;) {
        int i = atomic_fetch_add(&next_i, 1);
        if (i >= cur_n)
            break;
        cur_fn(cur_ctx, i, tid);
    }
    in_loop = 0;
}

int r1__in_parallel(void) { return in_loop; }

static void *worker(void *arg)
{
    int tid = (int)(long)arg;
    unsigned long seen = 0;
    pthread_mutex_lock(&mu);
    for (;;) {
        while (gen == seen)
            pthread_cond_wait(&go, &mu);
        seen = gen;
        int mine = tid < cur_nw;
        pthread_mutex_unlock(&mu);
        if (mine) /* a pool larger than the current thread setting: extra workers sit out */
            run_items(tid);
        pthread_mutex_lock(&mu);
        if (--busy == 0)
            pthread_cond_signal(&done);
    }
    return NULL;
}

/* R1LAB_SERIAL=1 in the environment runs every loop serially (for A/B benchmarks). */
static int serial_env(void)
{
    static int v = -1;
    if (v < 0) {
        const char *s = getenv("R1LAB_SERIAL");
        v = s && *s && *s != '0';
    }
    return v;
}

void r1__parallel_for_work(long work, int n, void (*fn)(void *ctx, int i, int tid), void *ctx)
{
    if (work >= R1_PAR_WAKE) {
        r1__parallel_for(n, fn, ctx);
        return;
    }
    for (int i = 0; i < n; i++)
        fn(ctx, i, 0);
}

void r1__parallel_for(int n, void (*fn)(void *ctx, int i, int tid), void *ctx)
{
    int nw = serial_env() ? 1 : r1__nworkers();
    if (n <= 0)
        return;
    if (nw <= 1 || n == 1 || in_loop) { /* nested loops run serially in their thread */
        for (int i = 0; i < n; i++)
            fn(ctx, i, 0);
        return;
    }
    pthread_mutex_lock(&mu);
    while (started < nw - 1) {
        pthread_t t;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&t, &at, worker, (void *)(long)(started + 1));
        pthread_attr_destroy(&at);
        if (rc != 0)
            break;
        started++;
    }
    int helpers = started < nw - 1 ? started : nw - 1;
    if (helpers == 0) {
        pthread_mutex_unlock(&mu);
        for (int i = 0; i < n; i++)
            fn(ctx, i, 0);
        return;
    }
    cur_fn = fn;
    cur_ctx = ctx;
    cur_n = n;
    cur_nw = nw;
    atomic_store(&next_i, 0);
    busy = started; /* every started worker wakes, takes what is left, and reports */
    gen++;
    pthread_cond_broadcast(&go);
    pthread_mutex_unlock(&mu);
    run_items(0);
    pthread_mutex_lock(&mu);
    while (busy > 0)
        pthread_cond_wait(&done, &mu);
    pthread_mutex_unlock(&mu);
}
