/* status.c — status names, error messages, the log callback, the interrupt flag and the
 * thread setting.
 * Nothing here allocates; the error contract is r1.h's. */
#include <config.h>

#include <cblas.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "r1.h"

const char *r1_status_str(r1_status s)
{
    switch (s) {
    case R1_OK: return "ok";
    case R1_EINVAL: return "invalid argument";
    case R1_EIO: return "input/output error";
    case R1_EFORMAT: return "malformed file";
    case R1_ENOMEM: return "out of memory";
    case R1_ECANCELED: return "canceled";
    case R1_EUNSUPPORTED: return "unsupported";
    case R1_ENOTFOUND: return "not found";
    }
    return "unknown status";
}

r1_status r1_error_set(r1_error *err, r1_status status, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->status = status;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return status;
}

void r1_error_prefix(r1_error *err, const char *fmt, ...)
{
    if (!err)
        return;
    char head[R1_ERRLEN], old[R1_ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    /* Truncation is acceptable here: the head names the file, the tail the detail. */
    size_t h = strlen(head);
    if (h > R1_ERRLEN - 3)
        h = R1_ERRLEN - 3;
    memcpy(err->msg, head, h);
    memcpy(err->msg + h, ": ", 2);
    size_t room = R1_ERRLEN - h - 3, o = strlen(old);
    if (o > room)
        o = room;
    memcpy(err->msg + h + 2, old, o);
    err->msg[h + 2 + o] = '\0';
}

static r1_log_fn log_fn;
static void *log_user;

void r1_set_log(r1_log_fn fn, void *user)
{
    log_fn = fn;
    log_user = user;
}

void r1_log(r1_log_level level, const char *fmt, ...)
{
    if (!log_fn)
        return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    log_fn(level, buf, log_user);
}

static volatile sig_atomic_t interrupt_flag;

void r1_interrupt(void) { interrupt_flag = 1; }
int r1_interrupted(void) { return interrupt_flag != 0; }
void r1_interrupt_clear(void) { interrupt_flag = 0; }

static int n_threads;

/* OpenBLAS's pthreads build starts a server thread per core when it loads, and each spins in
 * sched_yield for about 2^28 cycles (0.1 s) before it sleeps.  r1lab never hands OpenBLAS a
 * threaded call, so those threads only compete with the engine's own pool for the cores in a
 * program's first tenth of a second: a short run on 2 threads, decoding the built-in model, ran
 * slower than on 1 (make bench's "one thread against two").  OpenBLAS exports the shutdown it
 * calls itself before a fork; a weak reference, so another BLAS (or OpenBLAS's OpenMP build,
 * which lacks it) links and runs without it.  A later threaded call would start them again. */
extern int blas_thread_shutdown_(void) __attribute__((weak));

void r1_set_threads(int n)
{
    if (n <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 ? (int)c : 1;
    }
    n_threads = n;
    /* OpenBLAS stays single-threaded: the engine's own pool spreads the work (parallel.c) */
    openblas_set_num_threads(1);
    static int shut;
    if (!shut && blas_thread_shutdown_) {
        shut = 1;
        blas_thread_shutdown_();
    }
}

int r1_threads(void)
{
    if (n_threads == 0)
        r1_set_threads(0);
    return n_threads;
}

const char *r1_version(void) { return PACKAGE_VERSION; }
