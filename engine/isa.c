/* isa.c — the machine: which kernel path the engine's BF16 products take (contracts in r1.h,
 * "kernel paths"): what the CPU and the operating system offer, found once with cpuid and
 * xgetbv, and the path in use, which R1_ISA or r1_isa_set may lower; and the machine record
 * of every run (r1_machine_get, which also reads /proc/cpuinfo for the CPU's name).
 *
 * Detection.  A path needs the instructions (cpuid) and the OS's promise to save the registers
 * they use (XCR0 from xgetbv): AVX2 + FMA need the YMM state, AVX-512 the opmask and ZMM states.
 * AMX needs more: Linux keeps the 8 KB tile state off by default and grants it per process on
 * request (arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA = 18)); the request is made here,
 * once, when the CPU reports AMX-BF16.  r1_isa_best is the best path the CPU has and this
 * build has kernels for (AMX and AVX-512 BF16 need the compiler's intrinsics).
 *
 * State: the detected bits and the path in use, set once under pthread_once, then changed only
 * by r1_isa_set (an atomic int).  Never prints; a bad R1_ISA is kept as a message for the app
 * (r1_isa_env_error) and the best path is used. */
#include <config.h>

#include <cblas.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define ISA_X86 1
#endif
#if defined(__linux__) && defined(__x86_64__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "r1.h"

static const char *const names[R1_ISA_COUNT] = {"portable", "avx2", "avx512bf16", "amx"};

/* The best path with kernels in this build: AVX-512 BF16 and AMX need the compiler's
 * intrinsics. */
#if defined(HAVE_AMX_INTRIN) && defined(HAVE_AVX512BF16_INTRIN)
#define KERNELS_MAX R1_ISA_AMX
#elif defined(HAVE_AVX512BF16_INTRIN)
#define KERNELS_MAX R1_ISA_AVX512BF16
#else
#define KERNELS_MAX R1_ISA_AVX2
#endif

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int has[R1_ISA_COUNT];
static atomic_int active = R1_ISA_PORTABLE;
static char env_msg[160];
static int env_fatal; /* a name r1lab does not know, not just a path this machine lacks */

#ifdef ISA_X86
static unsigned long long xcr0(void)
{
    unsigned a, b, c, d;
    __cpuid(1, a, b, c, d);
    if (!(c & (1u << 27))) /* OSXSAVE: xgetbv may be used */
        return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (unsigned long long)hi << 32 | lo;
}

/* Asks Linux for the AMX tile data state; 1 when granted. */
static int amx_permitted(void)
{
#if defined(__linux__) && defined(__x86_64__)
    enum { GET_PERM = 0x1022, REQ_PERM = 0x1023, XTILEDATA = 18 };
    unsigned long bits = 0;
    if (syscall(SYS_arch_prctl, REQ_PERM, XTILEDATA) != 0)
        return 0;
    if (syscall(SYS_arch_prctl, GET_PERM, &bits) != 0)
        return 0;
    return (bits >> XTILEDATA) & 1;
#else
    return 0;
#endif
}

static void detect_cpu(void)
{
    unsigned a, b, c, d, max = __get_cpuid_max(0, NULL);
    if (max < 7)
        return;
    __cpuid(1, a, b, c, d);
    int fma = (c >> 12) & 1;
    unsigned long long x = xcr0();
    int ymm = (x & 0x6) == 0x6, zmm = (x & 0xe6) == 0xe6, tiles = (x & 0x60000) == 0x60000;
    unsigned b7, c7, d7, a71 = 0, b71, c71, d71;
    __cpuid_count(7, 0, a, b7, c7, d7);
    if (a >= 1)
        __cpuid_count(7, 1, a71, b71, c71, d71);
    int avx2 = (b7 >> 5) & 1, f = (b7 >> 16) & 1, bw = (b7 >> 30) & 1, vl = (b7 >> 31) & 1;
    int bf16 = (a71 >> 5) & 1, amx_bf16 = (d7 >> 22) & 1, amx_tile = (d7 >> 24) & 1;
    has[R1_ISA_AVX2] = avx2 && fma && ymm;
    has[R1_ISA_AVX512BF16] = has[R1_ISA_AVX2] && f && bw && vl && bf16 && zmm;
    has[R1_ISA_AMX] = has[R1_ISA_AVX512BF16] && amx_bf16 && amx_tile && tiles && amx_permitted();
}
#else
static void detect_cpu(void) {}
#endif

/* Why path i above the best cannot be used. */
static const char *why_not(int i)
{
    return has[i] ? "this build has no kernels for it (the compiler lacked the intrinsics)"
                  : "this CPU does not have it";
}

/* The best path with kernels, once `has` is filled. */
static r1_isa best_known(void)
{
    int b = KERNELS_MAX;
    while (b > 0 && !has[b])
        b--;
    return (r1_isa)b;
}

static void detect(void)
{
    has[R1_ISA_PORTABLE] = 1;
    detect_cpu();
    r1_isa best = best_known();
    const char *e = getenv("R1_ISA");
    r1_isa want = best;
    if (e && *e) {
        int i;
        for (i = 0; i < R1_ISA_COUNT && strcmp(e, names[i]); i++)
            ;
        if (i == R1_ISA_COUNT && (env_fatal = 1))
            snprintf(env_msg, sizeof env_msg,
                     "R1_ISA=%.40s: expected one of amx, avx512bf16, avx2, portable", e);
        else if (i > (int)best)
            snprintf(env_msg, sizeof env_msg,
                     "R1_ISA=%s: %s; using %s", e, why_not(i), names[best]);
        else
            want = (r1_isa)i;
    }
    atomic_store(&active, (int)want);
}

const char *r1_isa_name(r1_isa i)
{
    return (int)i >= 0 && i < R1_ISA_COUNT ? names[i] : "unknown";
}

int r1_isa_cpu_has(r1_isa i)
{
    pthread_once(&once, detect);
    return (int)i >= 0 && i < R1_ISA_COUNT && has[i];
}

r1_isa r1_isa_best(void)
{
    pthread_once(&once, detect);
    return best_known();
}

r1_isa r1_isa_active(void)
{
    pthread_once(&once, detect);
    return (r1_isa)atomic_load_explicit(&active, memory_order_relaxed);
}

r1_status r1_isa_set(r1_isa i, r1_error *err)
{
    r1_isa best = r1_isa_best();
    if ((int)i < 0 || i >= R1_ISA_COUNT)
        return r1_error_set(err, R1_EINVAL, "no kernel path %d", (int)i);
    if (i > best)
        return r1_error_set(err, R1_EINVAL, "kernel path %s: %s (the best here is %s)",
                            names[i], why_not(i), names[best]);
    atomic_store(&active, (int)i);
    return R1_OK;
}

const char *r1_isa_env_error(int *misspelt)
{
    pthread_once(&once, detect);
    if (misspelt)
        *misspelt = env_fatal;
    return env_msg[0] ? env_msg : NULL;
}

const char *r1_isa_state(r1_isa i)
{
    r1_isa best = r1_isa_best();
    if ((int)i < 0 || i >= R1_ISA_COUNT)
        return "unknown";
    return i == r1_isa_active() ? "in use"
           : i <= best          ? "available"
           : has[i]             ? "no kernels in this build"
                                : "not in this CPU";
}

void r1_isa_describe(char *buf, size_t n)
{
    size_t u = 0;
    buf[0] = 0;
    for (int i = R1_ISA_COUNT - 1; i >= 0 && u < n; i--) {
        int k = snprintf(buf + u, n - u, "%s%s (%s)", u ? ", " : "", names[i],
                         r1_isa_state((r1_isa)i));
        u += k > 0 ? (size_t)k : 0;
    }
}

/* ------------------------------------------------------------------ the machine record */

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
