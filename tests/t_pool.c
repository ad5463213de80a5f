/* t_pool.c — the engine's loop pool (engine/parallel.c): every iteration of every loop runs
 * exactly once, with its thread id in range, whatever the thread count and however it changes
 * between loops (workers started later must not run a loop from before their start); loops
 * back to back (the workers still spinning) and after pauses longer than the spin (the workers
 * asleep, woken); a loop inside an iteration runs in order on its own thread; results written
 * by the workers are seen by the caller when the loop returns. */
#include <config.h>

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
    atomic_int nested_bad;
    int seed;
} loop;

static void item(void *ctx, int i, int tid)
{
    loop *l = ctx;
    l->count[i]++;
    l->value[i] = l->seed * 131 + i;
    if (tid < 0 || tid >= r1__nworkers())
        atomic_fetch_add(&l->bad_tid, 1);
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

int main(void)
{
    static const int threads[] = {2, 1, 3, 2, 4, 2};
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

    r1_set_threads(2);
    memset(l, 0, sizeof *l);
    r1__parallel_for(16, outer, l);
    int ran = 1;
    for (int i = 0; i < 16; i++)
        ran &= l->count[i] == 1;
    ok(ran && atomic_load(&l->nested_bad) == 0,
       "a loop inside an iteration runs its items in order on that thread");
    ok(!r1__in_parallel(), "outside a loop, r1__in_parallel is 0");
    free(l);
    return done_testing();
}
