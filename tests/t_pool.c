/* t_pool.c — the engine's loop pool (engine/parallel.c): every iteration of every loop runs
 * exactly once, with its thread id in range, whatever the thread count and however it changes
 * between loops (workers started later must not run a loop from before their start); loops
 * back to back (the workers still spinning) and after pauses longer than the spin (the workers
 * asleep, woken); loops below R1_PAR_WAKE (side by side only while the workers spin, on the
 * caller alone when they sleep); a loop inside an iteration runs in order on its own thread;
 * results written by the workers are seen by the caller when the loop returns; and no thread
 * of OpenBLAS's own stays behind to compete with the pool. */
#include <config.h>

#include <dirent.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "parallel.h"
#include "r1.h"
#include "tap.h"

#define NMAX 64

typedef struct {
    int count[NMAX];   /* runs of each iteration in this loop */
    int value[NMAX];   /* what each iteration wrote, read by the caller afterwards */
    atomic_int bad_tid;
    atomic_int off_caller; /* iterations run by a worker (tid > 0) */
    int slow;              /* each iteration busy for ~20 us (a woken worker gets some) */
    atomic_int nested_bad;
    int seed;
} loop;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void item(void *ctx, int i, int tid)
{
    loop *l = ctx;
    for (double t0 = now_s(); l->slow && now_s() - t0 < 20e-6;)
        ;
    l->count[i]++;
    l->value[i] = l->seed * 131 + i;
    if (tid < 0 || tid >= r1__nworkers())
        atomic_fetch_add(&l->bad_tid, 1);
    if (tid > 0)
        atomic_fetch_add(&l->off_caller, 1);
}

static void inner(void *ctx, int i, int tid)
{
    int *order = ctx;
    if (tid != 0 || !r1__in_parallel())
        order[NMAX - 1] = -1;
    order[i] = order[NMAX - 2]++; /* in order, on this thread alone */
}

static void outer(void *ctx, int i, int tid)
{
    (void)tid;
    loop *l = ctx;
    int order[NMAX] = {0};
    r1__parallel_for(8, inner, order);
    for (int k = 0; k < 8; k++)
        if (order[k] != k)
            atomic_fetch_add(&l->nested_bad, 1);
    if (order[NMAX - 1] == -1)
        atomic_fetch_add(&l->nested_bad, 1);
    l->count[i]++;
}

static void pause_us(long us)
{
    struct timespec t = {0, us * 1000};
    nanosleep(&t, NULL);
}

/* Threads of this process now (Linux's /proc/self/task), or -1 where it cannot tell. */
static int tasks(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

int main(void)
{
    static const int threads[] = {2, 1, 3, 2, 4, 2};
    /* OpenBLAS's pthreads build started a server thread per further core when it loaded; the
     * first setting of the thread count stops them (status.c), and the pool starts none before
     * its first loop: the process is this thread alone */
    int before = tasks();
    r1_set_threads(2);
    int after = tasks();
    if (after < 0)
        skip("no /proc/self/task to count this process's threads");
    else
        ok(after == 1, "after r1_set_threads, before any loop, the process runs 1 thread (%d; "
           "%d before, OpenBLAS's idle servers among them)", after, before);
    loop *l = malloc(sizeof *l);
    int wrong = 0, loops = 0, tids = 0;
    for (size_t s = 0; s < sizeof threads / sizeof *threads; s++) {
        r1_set_threads(threads[s]);
        for (int k = 0; k < 4000; k++, loops++) {
            memset(l, 0, sizeof *l);
            l->seed = k;
            int n = 1 + (k * 7) % (NMAX - 1);
            if (k % 500 == 499)
                pause_us(2000); /* longer than the spin: the workers sleep */
            r1__parallel_for(n, item, l);
            for (int i = 0; i < NMAX; i++)
                wrong += l->count[i] != (i < n) || (i < n && l->value[i] != k * 131 + i);
            tids += atomic_load(&l->bad_tid);
        }
    }
    ok(wrong == 0, "%d loops on 2, 1, 3, 2, 4, 2 threads: every iteration ran once and its "
       "result is seen (%d wrong)", loops, wrong);
    ok(tids == 0, "every iteration's thread id is below the thread count (%d out of range)", tids);

    /* loops below R1_PAR_WAKE: side by side only while the workers spin from the loop
     * before (R1_PAR_WARM and up), else in order on the caller; every item once either way */
    r1_set_threads(2);
    wrong = tids = 0;
    int serial_bad = 0;
    for (int k = 0; k < 4000; k++) {
        memset(l, 0, sizeof *l);
        l->seed = k;
        int n = 1 + (k * 5) % (NMAX - 1);
        if (k % 400 == 399) { /* asleep: a loop below R1_PAR_WAKE stays on this thread */
            pause_us(20000);
            l->slow = 1; /* ~1 ms of work: a worker woken would take part of it */
            r1__parallel_for_work(R1_PAR_WAKE - 1, 50, item, l);
            serial_bad += atomic_load(&l->off_caller) != 0;
            memset(l, 0, sizeof *l);
            l->seed = k;
        }
        long work = k % 3 == 0 ? R1_PAR_WAKE : k % 3 == 1 ? R1_PAR_WARM : R1_PAR_WARM - 1;
        r1__parallel_for_work(work, n, item, l);
        for (int i = 0; i < NMAX; i++)
            wrong += l->count[i] != (i < n) || (i < n && l->value[i] != k * 131 + i);
        tids += atomic_load(&l->bad_tid);
    }
    ok(wrong == 0 && tids == 0, "4000 loops of work past, at and below R1_PAR_WARM, the workers "
       "spinning or asleep: every iteration ran once (%d wrong, %d thread ids out of range)",
       wrong, tids);
    ok(serial_bad == 0, "... and with the workers asleep, a loop below R1_PAR_WAKE ran on the "
       "caller alone (%d did not)", serial_bad);

    memset(l, 0, sizeof *l);
    r1__parallel_for(16, outer, l);
    int ran = 1;
    for (int i = 0; i < 16; i++)
        ran &= l->count[i] == 1;
    ok(ran && atomic_load(&l->nested_bad) == 0,
       "a loop inside an iteration runs its items in order on that thread");
    ok(!r1__in_parallel(), "outside a loop, r1__in_parallel is 0");
    free(l);

    /* r1__zero: every length from a few floats to pieces side by side (2 threads), nothing
     * written outside [0, n) */
    r1_set_threads(2);
    static const size_t lens[] = {0, 1, 17, 16383, 16384, 70001, 1 << 20, (1 << 20) + 5};
    int zeroed = 1, kept = 1;
    for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
        size_t n = lens[li];
        float *b = malloc(sizeof(float) * (n + 2));
        for (size_t i = 0; i < n + 2; i++)
            b[i] = 1.5f;
        r1__zero(b + 1, n);
        for (size_t i = 1; i <= n; i++)
            zeroed &= b[i] == 0 && !signbit(b[i]);
        kept &= b[0] == 1.5f && b[n + 1] == 1.5f;
        free(b);
    }
    ok(zeroed && kept, "r1__zero clears [0, n) for 8 lengths up to 2^20 + 5 and writes nothing "
       "beside it");
    return done_testing();
}
