/* tap.h — a small Test Anything Protocol producer for the C tests.
 *
 * plan(n) or no_plan(), then ok(cond, fmt, ...), is_int, is_float (absolute+relative
 * tolerance), is_str, diag(fmt, ...); done_testing() prints the plan when none was given
 * and returns the exit status (0 when every test passed).  Header-only, one test program
 * per translation unit. */
#ifndef R1_TAP_H
#define R1_TAP_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed, tap_planned;

static inline void plan(int n)
{
    tap_planned = n;
    printf("1..%d\n", n);
}

static inline void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void diag(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("# ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    fflush(stdout);
}

static inline int tap_vok(int cond, const char *fmt, va_list ap)
{
    ++tap_n;
    if (!cond)
        ++tap_failed;
    printf("%s %d - ", cond ? "ok" : "not ok", tap_n);
    vprintf(fmt, ap);
    putchar('\n');
    fflush(stdout);
    return cond;
}

static inline int ok(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline int ok(int cond, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = tap_vok(cond, fmt, ap);
    va_end(ap);
    return r;
}

#define is_int(got, want, ...)                                                                     \
    do {                                                                                           \
        long long tap_g = (long long)(got), tap_w = (long long)(want);                             \
        if (!ok(tap_g == tap_w, __VA_ARGS__))                                                      \
            diag("  got %lld, expected %lld", tap_g, tap_w);                                       \
    } while (0)

/* |got - want| <= tol * max(1, |want|) */
#define is_float(got, want, tol, ...)                                                              \
    do {                                                                                           \
        double tap_g = (double)(got), tap_w = (double)(want), tap_t = (double)(tol);               \
        double tap_s = fabs(tap_w) > 1.0 ? fabs(tap_w) : 1.0;                                      \
        if (!ok(fabs(tap_g - tap_w) <= tap_t * tap_s, __VA_ARGS__))                                \
            diag("  got %.9g, expected %.9g (tolerance %.3g)", tap_g, tap_w, tap_t);               \
    } while (0)

#define is_str(got, want, ...)                                                                     \
    do {                                                                                           \
        const char *tap_g = (got), *tap_w = (want);                                                \
        if (!ok(tap_g && tap_w && strcmp(tap_g, tap_w) == 0, __VA_ARGS__))                         \
            diag("  got \"%s\", expected \"%s\"", tap_g ? tap_g : "(null)", tap_w);                \
    } while (0)

/* Passes when haystack contains needle (used to check that error messages name things). */
#define like(haystack, needle, ...)                                                                \
    do {                                                                                           \
        const char *tap_h = (haystack), *tap_nd = (needle);                                        \
        if (!ok(tap_h && strstr(tap_h, tap_nd) != NULL, __VA_ARGS__))                              \
            diag("  \"%s\" does not contain \"%s\"", tap_h ? tap_h : "(null)", tap_nd);            \
    } while (0)

/* A test this machine cannot run, reported as passed with its reason (TAP's "# SKIP"). */
static inline void skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void skip(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("ok %d # SKIP ", ++tap_n);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

static inline int done_testing(void)
{
    if (!tap_planned)
        printf("1..%d\n", tap_n);
    else if (tap_planned != tap_n)
        diag("planned %d tests but ran %d", tap_planned, tap_n);
    fflush(stdout);
    return (tap_failed || (tap_planned && tap_planned != tap_n)) ? 1 : 0;
}

#endif
