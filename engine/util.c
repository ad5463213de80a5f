/* util.c — the engine's ground floor of small helpers every module shares (see r1.h): the
 * monotonic clock, mkdir -p and the JSON parse error (json_util.h).  Errors: r1_mkdirs names the folder it could not create. */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "json_util.h"
#include "r1.h"

double r1_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

r1_status r1_mkdirs(const char *dir, int mode, r1_error *err)
{
    char p[4096];
    if (!dir || !*dir)
        return r1_error_set(err, R1_EINVAL, "an empty folder name");
    if (strlen(dir) >= sizeof p)
        return r1_error_set(err, R1_EINVAL, "%.60s...: the folder name is too long", dir);
    snprintf(p, sizeof p, "%s", dir);
    for (char *q = p + 1;; q++) {
        if (*q == '/' || !*q) {
            char c = *q;
            *q = 0;
            struct stat sb;
            if (mkdir(p, (mode_t)mode) != 0 && errno != EEXIST)
                return r1_error_set(err, R1_EIO, "%s: cannot create the folder: %s", p,
                                    strerror(errno));
            if (stat(p, &sb) != 0 || !S_ISDIR(sb.st_mode))
                return r1_error_set(err, R1_EIO, "%s: exists and is not a folder", p);
            *q = c;
            if (!c)
                break;
        }
    }
    return R1_OK;
}

r1_status r1_json_fail(r1_error *err, const char *name, const json_error_t *je)
{
    return r1_error_set(err, R1_EFORMAT, "%s: not valid JSON: %s (line %d, column %d)", name,
                        je->text, je->line, je->column);
}

json_t *r1_machine_json(void)
{
    r1_machine mc;
    r1_machine_get(&mc);
    return json_pack("{s:s, s:s, s:s, s:s, s:i}", "cpu", mc.cpu, "isa", mc.isa, "blas", mc.blas,
                     "kernels", mc.kernels, "threads", mc.threads);
}
