/* paths.c — locating the data directory (see paths.h).  No allocation; never fails: when
 * nothing matches it falls back to the installed $(pkgdatadir). */
#include <config.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "paths.h"

static char datadir[PATH_MAX];

/* True when path starts with dir followed by '/'. */
static int under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && path[n] == '/';
}

const char *paths_datadir(void)
{
    if (datadir[0])
        return datadir;
    const char *env = getenv("R1LAB_DATADIR");
    if (env && *env) {
        snprintf(datadir, sizeof datadir, "%s", env);
        return datadir;
    }
    /* Running from the build tree (app/r1lab, possibly under libtool's .libs/)? */
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = '\0';
        char build[PATH_MAX];
        char *real = realpath(R1_ABS_BUILDDIR, build);
        if (real && under(exe, real)) {
            snprintf(datadir, sizeof datadir, "%s", R1_ABS_SRCDIR);
            return datadir;
        }
    }
    snprintf(datadir, sizeof datadir, "%s", R1_PKGDATADIR);
    return datadir;
}

const char *paths_self(void)
{
    static char self[PATH_MAX];
    if (!self[0]) {
        ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
        if (len > 0)
            self[len] = '\0';
        else
            snprintf(self, sizeof self, "r1lab");
    }
    return self;
}

char *paths_data(char *buf, unsigned long n, const char *rel)
{
    snprintf(buf, n, "%s/%s", paths_datadir(), rel);
    return buf;
}
