/* status.c — status names, error messages, the log callback, the interrupt flag, the
 * thread setting and the machine record (r1_machine_get, which reads /proc/cpuinfo).
 * Nothing here allocates; the error contract is r1.h's. */
#include <config.h>

#include <cblas.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "r1.h"
#include "r1_bf16.h"

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

void r1_set_threads(int n)
{
    if (n <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 ? (int)c : 1;
    }
    n_threads = n;
    /* OpenBLAS stays single-threaded: the engine's own pool spreads the work (parallel.c) */
    openblas_set_num_threads(1);
}

int r1_threads(void)
{
    if (n_threads == 0)
        r1_set_threads(0);
    return n_threads;
}

/* From /proc/cpuinfo: the model name of the first processor ("model name", or "Processor" /
 * "cpu model" where other architectures put it; "unknown" without one) and which of the
 * extensions that decide the kernels its "flags" line lists. */
static void cpu_info(char *name, size_t n, char *isa, size_t ni)
{
    static const char *const ext[] = {"avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16",
                                      "amx_int8"};
    snprintf(name, n, "unknown");
    isa[0] = 0;
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[4096];
    int got_name = 0, got_flags = 0;
    while ((!got_name || !got_flags) && fgets(line, sizeof line, f)) {
        char *v = strchr(line, ':');
        if (!v)
            continue;
        v += 1 + strspn(v + 1, " \t");
        v[strcspn(v, "\n")] = 0;
        if (!got_name && *v &&
            (!strncmp(line, "model name", 10) || !strncmp(line, "Processor", 9) ||
             !strncmp(line, "cpu model", 9))) {
            snprintf(name, n, "%s", v);
            got_name = 1;
        } else if (!got_flags && !strncmp(line, "flags", 5)) {
            got_flags = 1;
            for (size_t i = 0; i < sizeof ext / sizeof *ext; i++) {
                size_t k = strlen(ext[i]);
                for (const char *p = v; (p = strstr(p, ext[i])); p += k)
                    if ((p == v || p[-1] == ' ') && (p[k] == ' ' || p[k] == 0)) {
                        size_t u = strlen(isa);
                        snprintf(isa + u, ni - u, "%s%s", u ? " " : "", ext[i]);
                        break;
                    }
            }
        }
    }
    fclose(f);
}

/* The CPU does not change under a running process: /proc/cpuinfo is read once (rejection
 * sampling records the machine after every batch). */
static char cpu_name[96], cpu_isa[96];
static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;
static void cpu_read(void) { cpu_info(cpu_name, sizeof cpu_name, cpu_isa, sizeof cpu_isa); }

void r1_machine_get(r1_machine *m)
{
    memset(m, 0, sizeof *m);
    pthread_once(&cpu_once, cpu_read);
    snprintf(m->cpu, sizeof m->cpu, "%s", cpu_name);
    snprintf(m->isa, sizeof m->isa, "%s", cpu_isa);
    /* openblas_get_config() starts "OpenBLAS 0.3.21 ..." followed by its build options */
    const char *cfg = openblas_get_config(), *core = openblas_get_corename();
    char ver[48] = "OpenBLAS";
    if (cfg && !strncmp(cfg, "OpenBLAS ", 9))
        snprintf(ver, sizeof ver, "%.*s", (int)(9 + strcspn(cfg + 9, " ")), cfg);
    snprintf(m->blas, sizeof m->blas, "%s, %s kernels", ver, core && *core ? core : "unknown");
    snprintf(m->kernels, sizeof m->kernels, "%s", r1_isa_name(r1_isa_active()));
    m->threads = r1_threads();
}

const char *r1_version(void) { return PACKAGE_VERSION; }
