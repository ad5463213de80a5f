/* parallel.c — the loop pool of parallel.h.  Workers are created on first use; between loops
 * they spin a little, then sleep on a condition variable (SPIN_NS); the caller works too.
 * OpenBLAS itself always runs
 * single-threaded (r1_set_threads keeps it at 1): its idle threads spin in sched_yield, which
 * measured as a fifth of a training step's CPU time, so the engine splits its large products
 * across this pool instead (ops.c), and the two never oversubscribe the cores. */
#include <config.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "parallel.h"
#include "r1.h"

#define MAXW R1_MAX_WORKERS

/* How long a thread waits for the other side by spinning before it sleeps: a worker for the
 * next loop, the caller for the workers to finish.  A training step runs thousands of loops of
 * a few tens of microseconds; waking a sleeping thread costs a futex call on each side and, in
 * a virtual machine, an interrupt between cores (perf: pvm_irq_enable under try_to_wake_up and
 * the futex wait was a tenth of a small step on this project's 2-core VM).  Spinning about
 * 50 us bridges the serial work between loops; beyond it the thread sleeps as before, so an
 * idle pool costs nothing. */
#define SPIN_NS 50000L

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t go = PTHREAD_COND_INITIALIZER, done = PTHREAD_COND_INITIALIZER;
static atomic_int started;       /* worker threads running (changed under mu) */
static atomic_ulong gen;         /* loop generation: published after the loop's fields */
static atomic_ulong busy;        /* workers still inside the current loop */
static atomic_int sleepers;      /* workers asleep on go (changed under mu) */
static int caller_asleep;        /* the caller asleep on done (under mu) */
static void (*cur_fn)(void *, int, int);
static void *cur_ctx;
static int cur_n;
static int cur_nw;            /* threads allowed in the current loop */
static atomic_int next_i;
static unsigned long born_gen[MAXW]; /* gen when worker tid was created (under mu) */
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

static long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

static inline void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Spins until *v equals x (until_equal) or differs from it: 1; or SPIN_NS have passed: 0. */
static int spin(atomic_ulong *v, unsigned long x, int until_equal)
{
    long t0 = now_ns();
    for (int k = 0;; k++) {
        if ((atomic_load_explicit(v, memory_order_acquire) == x) == until_equal)
            return 1;
        relax();
        if ((k & 255) == 255 && now_ns() - t0 > SPIN_NS)
            return 0;
    }
}

static void *worker(void *arg)
{
    int tid = (int)(long)arg;
    pthread_mutex_lock(&mu);
    unsigned long seen = born_gen[tid]; /* loops before its birth are not its business */
    pthread_mutex_unlock(&mu);
    for (;;) {
        if (!spin(&gen, seen, 0)) {
            pthread_mutex_lock(&mu);
            sleepers++;
            while (atomic_load(&gen) == seen) /* the caller wakes sleepers under mu */
                pthread_cond_wait(&go, &mu);
            sleepers--;
            pthread_mutex_unlock(&mu);
        }
        seen = atomic_load_explicit(&gen, memory_order_acquire);
        if (tid < cur_nw) /* a pool larger than the current thread setting: extra workers sit out */
            run_items(tid);
        if (atomic_fetch_sub_explicit(&busy, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&mu); /* the last one out wakes a sleeping caller */
            if (caller_asleep)
                pthread_cond_signal(&done);
            pthread_mutex_unlock(&mu);
        }
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
    /* the workers still spinning from the last loop (none asleep) take a smaller loop as
     * cheaply as they take the next item: a heuristic (read without the lock), which moves
     * only where pieces run, never what they compute */
    int warm = started > 0 && atomic_load_explicit(&sleepers, memory_order_relaxed) == 0;
    if (work >= R1_PAR_WAKE || (warm && work >= R1_PAR_WARM)) {
        r1__parallel_for(n, fn, ctx);
        return;
    }
    for (int i = 0; i < n; i++)
        fn(ctx, i, 0);
}

typedef struct {
    float *p;
    size_t n;
    int parts;
} zero_job;

static void zero_piece(void *ctx, int i, int tid)
{
    (void)tid;
    const zero_job *j = ctx;
    size_t step = (j->n + (size_t)j->parts - 1) / (size_t)j->parts;
    size_t lo = (size_t)i * step, hi = lo + step < j->n ? lo + step : j->n;
    if (lo < hi)
        memset(j->p + lo, 0, sizeof(float) * (hi - lo));
}

void r1__zero(float *p, size_t n)
{
    size_t parts = n / (1 << 14); /* pieces of at least 64 KB */
    parts = parts < 1 ? 1 : parts > R1_MAX_WORKERS ? R1_MAX_WORKERS : parts;
    zero_job j = {p, n, (int)parts};
    r1__parallel_for_work((long)n * ZERO_COST, j.parts, zero_piece, &j);
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
        born_gen[started + 1] = atomic_load(&gen);
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
    pthread_mutex_unlock(&mu);
    cur_fn = fn;
    cur_ctx = ctx;
    cur_n = n;
    cur_nw = nw;
    atomic_store(&next_i, 0);
    atomic_store(&busy, started); /* every started worker takes what is left, and reports */
    atomic_fetch_add_explicit(&gen, 1, memory_order_release);
    pthread_mutex_lock(&mu);
    if (sleepers) /* a worker checks gen under mu before it sleeps: none is missed */
        pthread_cond_broadcast(&go);
    pthread_mutex_unlock(&mu);
    run_items(0);
    if (!spin(&busy, 0, 1)) {
        pthread_mutex_lock(&mu);
        caller_asleep = 1;
        while (atomic_load(&busy) > 0)
            pthread_cond_wait(&done, &mu);
        caller_asleep = 0;
        pthread_mutex_unlock(&mu);
    }
}
