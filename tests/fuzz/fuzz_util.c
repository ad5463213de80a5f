/* fuzz_util.c — the scratch folder and the checks the harnesses share (see fuzz.h).
 *
 * One folder per process, made with mkdtemp on first use; atexit() and a failed check remove it
 * with everything the harnesses left in it (plain files and one level of folders).  A crash or
 * a sanitizer report leaves it behind: the sanitizers' death callback is libFuzzer's, which
 * saves the crashing input, so make fuzz runs the harnesses with TMPDIR in its own scratch
 * folder and removes that. */
#include <config.h>

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"

static char dir[4096];
static char path[8192];

static void remove_tree(const char *d, int depth)
{
    DIR *dp = opendir(d);
    if (!dp)
        return;
    struct dirent *e;
    while ((e = readdir(dp))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char p[8192];
        snprintf(p, sizeof p, "%s/%s", d, e->d_name);
        if (unlink(p) != 0 && depth < 2)
            remove_tree(p, depth + 1);
    }
    closedir(dp);
    rmdir(d);
}

static void cleanup(void)
{
    if (dir[0])
        remove_tree(dir, 0);
    dir[0] = '\0';
}

void fuzz_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "fuzz check failed: %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    cleanup();
    abort();
}

const char *fuzz_path(const char *name)
{
    if (!dir[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/r1fuzz.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(dir)) {
            perror(dir);
            abort();
        }
        atexit(cleanup);
    }
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

const char *fuzz_write(const char *name, const void *data, size_t n)
{
    const char *p = fuzz_path(name);
    FILE *f = fopen(p, "wb");
    FUZZ_CHECK(f != NULL, "cannot create %s", p);
    FUZZ_CHECK(fwrite(data, 1, n, f) == n && fclose(f) == 0, "cannot write %s", p);
    return p;
}

char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    FUZZ_CHECK(s != NULL, "out of memory for %zu bytes", size);
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}
